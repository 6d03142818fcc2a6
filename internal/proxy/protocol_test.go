package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// headerRecorder is a backend handler that keeps the headers of every
// request it answers.
type headerRecorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (h *headerRecorder) handle(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c := r.Clone(context.Background())
	c.Body = nil
	h.mu.Lock()
	h.reqs = append(h.reqs, c)
	h.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

func (h *headerRecorder) all() []*http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*http.Request(nil), h.reqs...)
}

func TestMalformedRequests(t *testing.T) {
	rec := &headerRecorder{}
	stable := newBackend(t, stableVersion, rec.handle)
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(4)
	defer closeIdle(c)

	for _, tc := range []struct {
		name string
		raw  string
	}{
		{"content-length and transfer-encoding",
			"POST /smuggle HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"transfer-encoding and content-length",
			"POST /smuggle HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
		{"lower-case names",
			"POST /smuggle HTTP/1.1\r\nhost: shop.test\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n"},
		{"content-length and identity transfer-encoding",
			"POST /smuggle HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nhello"},
		{"differing content-lengths",
			"POST /smuggle HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
		{"content-length list",
			"POST /smuggle HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5, 6\r\n\r\nhello!"},
		{"unknown transfer-encoding",
			"POST /smuggle HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{"garbage request line", "GARBAGE\r\n\r\n"},
		{"request line without version", "GET /\r\nHost: shop.test\r\n\r\n"},
		{"space before colon", "GET / HTTP/1.1\r\nHost: shop.test\r\nX-Bad : 1\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawRequest(t, g.addr, tc.raw)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %q", resp.StatusCode, body)
			}
			if got := resp.Header.Get(hdrError); got != "bad-request" {
				t.Errorf("%s = %q, want bad-request", hdrError, got)
			}
			mustContain(t, "body", body, "coalmine: ")
			if !resp.Close {
				t.Errorf("the connection stays open after a request with broken framing")
			}
			if res := get(t, c, g.url+"/after", nil); res.status != http.StatusOK || res.backend != stableVersion {
				t.Fatalf("a normal request afterwards: status %d from %q", res.status, res.backend)
			}
		})
	}
	for _, req := range rec.all() {
		if req.URL.Path != "/after" {
			t.Errorf("the backend received %s %s %v; an ambiguous request must never reach it", req.Method, req.URL, req.Header)
		}
	}
}

func TestForwardedAndHopByHopHeaders(t *testing.T) {
	rec := &headerRecorder{}
	stable := newBackend(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Keep-Alive", "timeout=99")
		w.Header().Set("Connection", "X-Resp-Secret")
		w.Header().Set("X-Resp-Secret", "1")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("X-End-To-End", "kept")
		rec.handle(w, r)
	})
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))

	resp, body := rawRequest(t, g.addr, "GET /fwd?q=1 HTTP/1.1\r\n"+
		"Host: shop.example:8443\r\n"+
		"X-Forwarded-For: 203.0.113.7\r\n"+
		"Connection: X-Secret\r\n"+
		"X-Secret: 1\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"TE: trailers\r\n"+
		"X-Client: kept\r\n"+
		"\r\n")
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	reqs := rec.all()
	if len(reqs) != 1 {
		t.Fatalf("backend received %d requests", len(reqs))
	}
	h := reqs[0].Header
	if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the client's value with 127.0.0.1 appended", got)
	}
	if got := h.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto = %q, want http", got)
	}
	if got := h.Get("X-Forwarded-Host"); got != "shop.example:8443" {
		t.Errorf("X-Forwarded-Host = %q, want the Host shop.example:8443", got)
	}
	if reqs[0].Host != "shop.example:8443" || reqs[0].URL.RequestURI() != "/fwd?q=1" {
		t.Errorf("backend saw Host %q and target %q, want them unchanged", reqs[0].Host, reqs[0].URL.RequestURI())
	}
	for _, name := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Te"} {
		if v, ok := h[name]; ok {
			t.Errorf("hop-by-hop request header %s: %q was forwarded", name, v)
		}
	}
	if v := h.Get("Connection"); strings.Contains(strings.ToLower(v), "x-secret") {
		t.Errorf("Connection: %q was forwarded", v)
	}
	if h.Get("X-Client") != "kept" {
		t.Errorf("end-to-end request header X-Client lost: %v", h)
	}

	for _, name := range []string{"Keep-Alive", "X-Resp-Secret", "Proxy-Authenticate"} {
		if v, ok := resp.Header[name]; ok {
			t.Errorf("hop-by-hop response header %s: %q was passed to the client", name, v)
		}
	}
	if v := resp.Header.Get("Connection"); strings.Contains(strings.ToLower(v), "x-resp-secret") {
		t.Errorf("response Connection: %q was passed to the client", v)
	}
	if resp.Header.Get("X-End-To-End") != "kept" || resp.Header.Get(hdrVersion) != stableVersion {
		t.Errorf("response headers %v, want X-End-To-End kept and %s", resp.Header, hdrVersion)
	}
}

// wsBackend answers an upgrade to websocket with 101 and a greeting, then
// echoes every byte until the client closes; other upgrades get 400.
func wsBackend(t *testing.T, seen chan<- http.Header) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.URL.Path != "/ws" {
			http.Error(w, "upgrade refused", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		// The 101 and the first frame in one write, so the proxy finds bytes
		// buffered after the headers.
		_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nwelcome\n")
		_, _ = io.Copy(conn, brw)
	}
}

func TestUpgradePassThrough(t *testing.T) {
	seen := make(chan http.Header, 4)
	stable := newBackend(t, stableVersion, wsBackend(t, seen))
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))

	conn, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read 101: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Get(hdrVersion); got != stableVersion {
		t.Errorf("101 has %s %q, want %s", hdrVersion, got, stableVersion)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		t.Errorf("101 headers %v, want Upgrade: websocket and Connection: Upgrade", resp.Header)
	}
	h := <-seen
	if !strings.EqualFold(h.Get("Upgrade"), "websocket") || !strings.EqualFold(h.Get("Connection"), "upgrade") {
		t.Errorf("backend saw upgrade headers %v", h)
	}
	if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("backend saw X-Forwarded-For %q", got)
	}

	line, err := br.ReadString('\n')
	if err != nil || line != "welcome\n" {
		t.Fatalf("first upstream bytes after the 101: %q, %v", line, err)
	}
	for _, msg := range []string{"ping\n", strings.Repeat("x", 100<<10) + "\n", "bye\n"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatalf("write through the tunnel: %v", err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("read echo of %d bytes: %v", len(msg), err)
		}
		if string(got) != msg {
			t.Fatalf("echo differs from the %d bytes sent", len(msg))
		}
	}
	// Closing our side ends the backend's echo, which closes the tunnel.
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after closing our side: %q, %v; want a clean EOF", rest, err)
	}
}

func TestUpgradeRefused(t *testing.T) {
	seen := make(chan http.Header, 4)
	stable := newBackend(t, stableVersion, wsBackend(t, seen))
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))

	start := time.Now()
	resp, body := rawRequest(t, g.addr, "GET /refuse HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	took := time.Since(start)
	if resp.StatusCode != http.StatusBadRequest || body != "upgrade refused\n" {
		t.Fatalf("status %d %q, want the upstream's 400 upgrade refused", resp.StatusCode, body)
	}
	if got := resp.Header.Get(hdrError); got != "" {
		t.Errorf("the upstream's refusal carries %s %q", hdrError, got)
	}
	if got := resp.Header.Get(hdrVersion); got != stableVersion {
		t.Errorf("%s = %q", hdrVersion, got)
	}
	// The default response timeout is 30s; relaying a small answer must not
	// wait for it.
	if took > 3*time.Second {
		t.Errorf("the refusal took %v to relay", took)
	}
}

func TestGracefulDrain(t *testing.T) {
	blk := newBlocker()
	defer blk.free()
	stable := newBackend(t, stableVersion, blk.handle)
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(4)
	defer closeIdle(c)

	inflight := make(chan result, 1)
	go func() {
		res, err := tryGet(c, g.url+"/slow", nil)
		if err != nil {
			res.body = err.Error()
		}
		inflight <- res
	}()
	blk.wait(t, 1)

	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		drained <- g.p.Shutdown(ctx)
	}()
	eventually(t, 5*time.Second, "new connections are refused once the drain started", func() bool {
		conn, err := net.DialTimeout("tcp", g.addr, time.Second)
		if err == nil {
			conn.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	select {
	case err := <-drained:
		t.Fatalf("Shutdown returned %v while a request was in flight", err)
	case res := <-inflight:
		t.Fatalf("the in-flight request ended before its backend answered: %d %q", res.status, res.body)
	default:
	}

	blk.free()
	if res := <-inflight; res.status != http.StatusOK || res.body != "released" {
		t.Fatalf("in-flight request: status %d %q, want 200 released", res.status, res.body)
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last request finished")
	}
	if _, err := net.DialTimeout("tcp", g.addr, time.Second); err == nil {
		t.Fatal("the listener accepts connections after Shutdown")
	}
}

func TestExpectContinue(t *testing.T) {
	stable := newBackend(t, stableVersion, shaHandler)
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	want := fmt.Sprintf("%s %d", sha(body), len(body))

	t.Run("net/http client", func(t *testing.T) {
		c := newClient(2)
		defer closeIdle(c)
		// A long timeout: if the proxy never sent 100 Continue the client
		// would wait this long before sending the body.
		c.Transport.(*http.Transport).ExpectContinueTimeout = 10 * time.Second
		req, err := http.NewRequest(http.MethodPost, g.url+"/upload", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Expect", "100-continue")
		start := time.Now()
		res, err := do(c, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.status != http.StatusOK || res.body != want {
			t.Fatalf("status %d %q, want 200 %q", res.status, res.body, want)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("the upload took %v: the client waited for a 100 Continue that never came", took)
		}
	})

	t.Run("raw", func(t *testing.T) {
		conn, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(body))
		br := bufio.NewReader(conn)
		interim, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read the interim response before sending the body: %v", err)
		}
		if interim.StatusCode != http.StatusContinue {
			t.Fatalf("first response %d, want 100 Continue before the body is sent", interim.StatusCode)
		}
		if _, err := conn.Write(body); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(got) != want {
			t.Fatalf("status %d %q, want 200 %q", resp.StatusCode, got, want)
		}
	})
}

func TestLargeResponseStreaming(t *testing.T) {
	block := randomBytes(t, 1<<20)
	const blocks = 50
	h := sha256.New()
	for i := 0; i < blocks; i++ {
		h.Write(block)
	}
	want := fmt.Sprintf("%x", h.Sum(nil))
	stable := newBackend(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sized" {
			w.Header().Set("Content-Length", fmt.Sprint(blocks*len(block)))
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := 0; i < blocks; i++ {
			if _, err := w.Write(block); err != nil {
				return
			}
		}
	})
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(2)
	defer closeIdle(c)

	for _, path := range []string{"/sized", "/chunked"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			resp, err := c.Get(g.url + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil {
				t.Fatalf("after %d bytes: %v", n, err)
			}
			if resp.StatusCode != http.StatusOK || n != blocks<<20 || fmt.Sprintf("%x", h.Sum(nil)) != want {
				t.Fatalf("status %d, %d bytes with sha256 %x; want 200, %d bytes with %s", resp.StatusCode, n, h.Sum(nil), blocks<<20, want)
			}
		})
	}
}

// TestConnectionHeaderNamingFraming: the Connection header lists hop-by-hop
// fields to drop, but a client (or a broken middlebox) that lists a framing
// or routing field there must not make the proxy lose the body or the Host.
func TestConnectionHeaderNamingFraming(t *testing.T) {
	rec := &recorder{}
	stable := newBackend(t, stableVersion, rec.handle)
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))

	for _, tc := range []struct{ name, raw string }{
		{"content-length", "POST /c HTTP/1.1\r\nHost: shop.test\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"},
		{"transfer-encoding", "POST /c HTTP/1.1\r\nHost: shop.test\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rec.count()
			resp, body := rawRequest(t, g.addr, tc.raw)
			want := fmt.Sprintf("%s %d", sha([]byte("hello")), 5)
			if resp.StatusCode != http.StatusOK || body != want {
				t.Fatalf("status %d %q, want 200 %q: the backend did not get the 5-byte body", resp.StatusCode, body, want)
			}
			if got := rec.all()[before:]; len(got) != 1 || got[0].n != 5 {
				t.Fatalf("backend received %+v", got)
			}
		})
	}
}

// TestBodylessResponses: HEAD, 204 and 304 answers have no body whatever
// their headers say; the proxy must pass their headers through and keep the
// client connection in step for the next request.
func TestBodylessResponses(t *testing.T) {
	stable := newBackend(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/file":
			w.Header().Set("Content-Length", "12345")
			w.Header().Set("ETag", `"v1-file"`)
			if r.Method == http.MethodHead {
				return
			}
			_, _ = w.Write(bytes.Repeat([]byte("f"), 12345))
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/notmodified":
			w.Header().Set("ETag", `"v1-file"`)
			w.WriteHeader(http.StatusNotModified)
		}
	})
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(1)
	defer closeIdle(c)

	for round := 0; round < 2; round++ {
		req, _ := http.NewRequest(http.MethodHead, g.url+"/file", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength != 12345 || resp.Header.Get("ETag") != `"v1-file"` {
			t.Errorf("HEAD: status %d, Content-Length %d, ETag %q; want 200, 12345 and the ETag", resp.StatusCode, resp.ContentLength, resp.Header.Get("ETag"))
		}

		res := get(t, c, g.url+"/nocontent", nil)
		if res.status != http.StatusNoContent || res.body != "" || res.version != stableVersion {
			t.Errorf("204: status %d, body %q, version %q", res.status, res.body, res.version)
		}

		res = get(t, c, g.url+"/notmodified", map[string]string{"If-None-Match": `"v1-file"`})
		if res.status != http.StatusNotModified || res.body != "" || res.header.Get("ETag") != `"v1-file"` {
			t.Errorf("304: status %d, body %q, ETag %q", res.status, res.body, res.header.Get("ETag"))
		}

		res = get(t, c, g.url+"/file", nil)
		if res.status != http.StatusOK || len(res.body) != 12345 {
			t.Fatalf("GET after bodyless answers: status %d with %d bytes, want 200 with 12345", res.status, len(res.body))
		}
	}
}
