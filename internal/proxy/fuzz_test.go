package proxy_test

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// FuzzProxyRequest writes arbitrary bytes to a running proxy as a request
// and checks that it keeps serving: whatever the bytes were, a normal GET
// afterwards succeeds. The seeds cover the framing cases the proxy must
// reject and the features it must pass through.
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
		// Fuzzed requests may fail upstream on purpose; do not let them eject
		// the endpoints the follow-up GET needs.
		s.OutlierDetection.ConsecutiveErrors = 1 << 20
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
		_, _ = io.Copy(io.Discard, conn) // until the proxy closes or the deadline
		conn.Close()

		res, err := tryGet(c, g.url+"/after", nil)
		if err != nil {
			t.Fatalf("the proxy stopped serving after %q: %v", raw, err)
		}
		if res.status != http.StatusOK || (res.backend != stableVersion && res.backend != canaryVersion) {
			t.Fatalf("after %q: status %d from %q: %q", raw, res.status, res.backend, res.body)
		}
	})
}
