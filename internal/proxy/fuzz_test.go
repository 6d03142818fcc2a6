package proxy_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// FuzzProxyRequest writes arbitrary bytes to a running proxy as a request
// and checks what a hostile client must never achieve: the proxy keeps
// serving (a normal GET afterwards succeeds), no version is blamed (the
// backends never fail, so any 5xx or proxy error charged to a version is
// the client's fault counted wrongly, and with outlier detection at its
// default five of them would eject an endpoint), and coalmine's own error
// answers never echo what the client sent. The seeds cover the framing
// cases the proxy must reject, the limits (414, 431) and the features it
// must pass through.
func FuzzProxyRequest(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"GET /items?id=1 HTTP/1.1\r\nHost: shop.test\r\nX-User-ID: u1\r\nCookie: coalmine_subject=0123456789abcdef0123456789abcdef\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nhello",
		"POST /orders HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /smuggle HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"POST /smuggle HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"POST /expect HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
		"GET /ws HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: X-Secret, close\r\nX-Secret: 1\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n",
		"GARBAGE\r\n\r\n",
		"GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: shop.test\r\nCookie: session=" + strings.Repeat("s", 9000) + "\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"POST / HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
		"POST / HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 100\r\n\r\nshort",
		"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
		"GET http://elsewhere.test/x HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: shop.test\r\nX-Folded: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: shop.test\r\nAuthorization: Bearer secret-token-value\r\nX: \x01\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: shop.test\r\n\r\n",
		"\x00\xff\r\n\r\n",
		"",
	} {
		f.Add([]byte(seed))
	}

	stable := newBackend(f, stableVersion, nil)
	canary := newBackend(f, canaryVersion, nil)
	r := rolloutSpec(f, []string{stable.url}, []string{canary.url}, func(s *spec.RolloutSpec) {
		s.TrafficRouting.Assignment.UserHeader = "X-User-ID"
		// Bytes that look like a request with a body that never comes must
		// not hold the proxy for long.
		s.TrafficRouting.Timeouts.Response = spec.Duration(2 * time.Second)
		// Outlier detection keeps its default: client faults must not count.
	})
	g := startProxy(f, r, tableConfig(r, 5000))
	c := newClient(2)
	f.Cleanup(func() { closeIdle(c) })

	f.Fuzz(func(t *testing.T, raw []byte) {
		conn, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatalf("dial proxy: %v", err)
		}
		_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = conn.Write(raw)
		answer, _ := io.ReadAll(conn) // until the proxy closes or the deadline
		conn.Close()
		if echoed := echoedLine(raw, answer); echoed != "" {
			t.Fatalf("coalmine's answer to %q echoes %q:\n%s", raw, echoed, answer)
		}

		res, err := tryGet(c, g.url+"/after", nil)
		if err != nil {
			t.Fatalf("the proxy stopped serving after %q: %v", raw, err)
		}
		if res.status != http.StatusOK || (res.backend != stableVersion && res.backend != canaryVersion) {
			t.Fatalf("after %q: status %d from %q: %q", raw, res.status, res.backend, res.body)
		}
		for _, role := range []spec.Role{spec.RoleStable, spec.RoleCanary} {
			for _, kind := range []string{"connect", "timeout", "upstream-protocol", "no-healthy-endpoint", "overflow"} {
				if n := g.proxyErrors(t, role, kind); n != 0 {
					t.Fatalf("after %q the %s version has %v %s proxy errors: a client's fault was charged to it", raw, role, n, kind)
				}
			}
		}
		for _, v := range []*telemetry.VersionStats{g.versionStats(spec.RoleStable, stableVersion), g.versionStats(spec.RoleCanary, canaryVersion)} {
			if sum := v.Summary(0); sum.Errors != 0 || sum.FailedAttempts != 0 {
				t.Fatalf("after %q the %s version counts %d errors and %d failed attempts: a client's fault was charged to it", raw, v.Role(), sum.Errors, sum.FailedAttempts)
			}
		}
	})
}

// echoedLine returns a line of the request (12 bytes or more) that a
// response generated by coalmine carries back, or "". Only coalmine's own
// answers (X-Coalmine-Error) are checked; the test backends never echo.
func echoedLine(raw, answer []byte) string {
	head, body, ok := bytes.Cut(answer, []byte("\r\n\r\n"))
	if !ok || !bytes.Contains(head, []byte("X-Coalmine-Error:")) {
		return ""
	}
	for _, line := range bytes.Split(raw, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) >= 12 && bytes.Contains(body, line) {
			return string(line)
		}
	}
	return ""
}
