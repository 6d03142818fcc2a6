package proxy_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// h2Client speaks HTTP/2 only: over TLS by ALPN, or h2c with prior
// knowledge on plain text.
func h2Client(tlsOn bool) *http.Client {
	var p http.Protocols
	if tlsOn {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Protocols:       &p,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a test certificate
	}}
}

func h2Rollout(t *testing.T, stable, canary []string, tlsOn bool, mod func(s *spec.RolloutSpec)) *spec.Rollout {
	t.Helper()
	return rolloutSpec(t, stable, canary, func(s *spec.RolloutSpec) {
		s.Protocols = []string{spec.ProtocolH1, spec.ProtocolH2, spec.ProtocolH2C}
		if tlsOn {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
			writeSelfSigned(t, "proxy", certFile, keyFile)
			s.TLS = &spec.TLSConfig{CertFile: certFile, KeyFile: keyFile}
		}
		if mod != nil {
			mod(s)
		}
	})
}

// HTTP/2 web traffic, over TLS and h2c, is routed as HTTP/1.1 is: a new
// subject gets the subject cookie, keeps its version with it, and the
// upstream sees the forwarding headers.
func TestHTTP2WebTrafficGetsTheSubjectCookie(t *testing.T) {
	for _, tlsOn := range []bool{true, false} {
		name := "h2c"
		if tlsOn {
			name = "TLS h2"
		}
		t.Run(name, func(t *testing.T) {
			var sawXFF, sawProto string
			stable := newBackend(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
				sawXFF, sawProto = r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto")
				_, _ = io.WriteString(w, stableVersion)
			})
			canary := newBackend(t, canaryVersion, nil)
			r := h2Rollout(t, []string{stable.url}, []string{canary.url}, tlsOn, nil)
			g := startProxy(t, r, tableConfig(r, 5000))
			scheme := "http://"
			if tlsOn {
				scheme = "https://"
			}
			cl := h2Client(tlsOn)
			resp, err := cl.Get(scheme + g.addr + "/page")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Fatalf("answered over %s, want HTTP/2", resp.Proto)
			}
			var cookie *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == spec.DefaultCookieName {
					cookie = c
				}
			}
			if cookie == nil {
				t.Fatalf("no subject cookie in %v", resp.Header)
			}
			first := resp.Header.Get(hdrVersion)
			for range 10 {
				req, _ := http.NewRequest(http.MethodGet, scheme+g.addr+"/page", nil)
				req.AddCookie(cookie)
				resp, err := cl.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if v := resp.Header.Get(hdrVersion); v != first {
					t.Fatalf("subject moved from %s to %s", first, v)
				}
				if len(resp.Cookies()) != 0 {
					t.Fatalf("a known subject got a new cookie")
				}
			}
			// Reach stable for the forwarding headers.
			for i := 0; i < 50 && sawXFF == ""; i++ {
				resp, err := cl.Get(scheme + g.addr + "/page")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			wantProto := "http"
			if tlsOn {
				wantProto = "https"
			}
			if sawXFF != "127.0.0.1" || sawProto != wantProto {
				t.Errorf("upstream saw X-Forwarded-For %q, X-Forwarded-Proto %q", sawXFF, sawProto)
			}
		})
	}
}

// HTTP/1.x keeps working on a listener that also takes h2c, including a
// request shorter than the HTTP/2 preface.
func TestHTTP1OnAnH2CListener(t *testing.T) {
	be := newBackend(t, stableVersion, nil)
	r := h2Rollout(t, []string{be.url}, nil, false, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	resp, err := http.Get(g.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.Header.Get(hdrVersion) != stableVersion {
		t.Fatalf("HTTP/1.1 answer %s %v", resp.Proto, resp.Header)
	}
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil { // 18 bytes
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("HTTP/1.0 answer %q %v", line, err)
	}
}

// An HTTP/1.1 client reaches an h2c:// endpoint through the HTTP/2 path.
func TestHTTP1ClientToAnH2CEndpoint(t *testing.T) {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	be := newBackendServer(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}, func(s *http.Server) { s.Protocols = &protos })
	r := h2Rollout(t, []string{"h2c://" + strings.TrimPrefix(be.url, "http://")}, nil, false, func(s *spec.RolloutSpec) {
		s.HealthCheck.Path = healthPath
	})
	g := startProxy(t, r, tableConfig(r, 0))
	g.waitUp(t)
	resp, err := http.Get(g.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "HTTP/2.0" || resp.Header.Get(hdrVersion) != stableVersion {
		t.Fatalf("answer %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// TestHTTP1BodiesToAnH2CEndpoint: an HTTP/1.1 request to an h2c endpoint
// carries a streamed (chunked) body whole; a body that stops arriving is
// refused and nothing is sent upstream (the adaptor alone would send the
// read error's text as the body).
func TestHTTP1BodiesToAnH2CEndpoint(t *testing.T) {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	got := make(chan string, 4)
	be := newBackendServer(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
		_, _ = io.WriteString(w, "ok")
	}, func(s *http.Server) { s.Protocols = &protos })
	r := h2Rollout(t, []string{"h2c://" + strings.TrimPrefix(be.url, "http://")}, nil, false, func(s *spec.RolloutSpec) {
		s.HealthCheck.Path = healthPath
	})
	g := startProxy(t, r, tableConfig(r, 0))
	g.waitUp(t)
	big := strings.Repeat("x", 3<<20) // beyond what the server buffers: a stream
	resp, err := http.Post(g.url+"/pay", "text/plain", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chunked 3 MiB body: %d", resp.StatusCode)
	}
	if b := <-got; b != big {
		t.Fatalf("the upstream got %d bytes, want %d", len(b), len(big))
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "POST /pay HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n"+strings.Repeat("y", 8192))
	conn.(*net.TCPConn).CloseWrite()
	ans, _ := bufio.NewReader(conn).ReadString('\n')
	if strings.Contains(ans, " 200 ") {
		t.Fatalf("a body that stopped arriving was answered %q", ans)
	}
	select {
	case b := <-got:
		t.Fatalf("the upstream got a request with a %d-byte body from a client that stopped sending: %.60q", len(b), b)
	case <-time.After(300 * time.Millisecond):
	}
}
