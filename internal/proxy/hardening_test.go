package proxy_test

import (
	"bufio"
	"context"
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

// The idle timeout is the longest silence, exactly: a stream whose gaps
// are each shorter than the idle time is never cut, however its gaps fall
// against the deadline refreshes.
func TestIdleTimeoutIsTheLongestSilence(t *testing.T) {
	stable := newBackend(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		for _, gap := range []time.Duration{0, 100 * time.Millisecond, 800 * time.Millisecond, 50 * time.Millisecond, 850 * time.Millisecond} {
			time.Sleep(gap)
			_, _ = io.WriteString(w, "x")
			f.Flush()
		}
	})
	r := rolloutSpec(t, []string{stable.url}, nil, func(s *spec.RolloutSpec) {
		s.TrafficRouting.Timeouts.Idle = spec.Duration(time.Second)
	})
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(1)
	defer closeIdle(c)
	res := get(t, c, g.url+"/stream", nil)
	if res.status != http.StatusOK || res.body != "xxxxx" {
		t.Fatalf("status %d body %q, want all five bytes (no gap reached the 1s idle time)", res.status, res.body)
	}
}

// An HTTP/1.0 request without Host reaches the upstream with the
// endpoint's address as Host.
func TestHTTP10WithoutHostGetsTheEndpointsHost(t *testing.T) {
	hosts := make(chan string, 1)
	stable := newBackend(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		hosts <- r.Host
		_, _ = io.WriteString(w, stableVersion)
	})
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	resp, _ := rawRequest(t, g.addr, "GET /x HTTP/1.0\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got, want := <-hosts, strings.TrimPrefix(stable.url, "http://"); got != want {
		t.Fatalf("the upstream saw Host %q, want the endpoint's %q", got, want)
	}
}

// On a TLS listener an over-long request line is 414 too: the line is
// counted in the plaintext, not in the ciphertext.
func TestTLSRequestLineTooLong(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writeSelfSigned(t, "coalmine", cert, key)
	stable := newBackend(t, stableVersion, nil)
	r := rolloutSpec(t, []string{stable.url}, nil, func(s *spec.RolloutSpec) {
		s.TLS = &spec.TLSConfig{CertFile: cert, KeyFile: key}
	})
	g := startProxy(t, r, tableConfig(r, 0))
	for raw, want := range map[string]int{
		"GET /" + strings.Repeat("a", 20000) + " HTTP/1.1\r\nHost: shop\r\n\r\n":             http.StatusRequestURITooLong,
		"GET / HTTP/1.1\r\nHost: shop\r\nCookie: " + strings.Repeat("c", 20000) + "\r\n\r\n": http.StatusRequestHeaderFieldsTooLarge,
	} {
		conn, err := tls.Dial("tcp", g.addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test's own certificate
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, raw)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if resp.StatusCode != want {
			t.Errorf("%.40q…: status %d, want %d", raw, resp.StatusCode, want)
		}
	}
}

// Changed client limits take effect on a running rollout.
func TestClientLimitsApplyOnUpdate(t *testing.T) {
	stable := newBackend(t, stableVersion, nil)
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	header := "GET / HTTP/1.1\r\nHost: shop\r\nX-Big: " + strings.Repeat("b", 4000) + "\r\n\r\n"
	if resp, _ := rawRequest(t, g.addr, header); resp.StatusCode != http.StatusOK {
		t.Fatalf("a 4 KB header at the default limit: %d", resp.StatusCode)
	}
	r2 := rolloutSpec(t, []string{stable.url}, nil, func(s *spec.RolloutSpec) {
		s.Listen = g.addr
		s.TrafficRouting.ClientLimits.MaxHeaderBytes = 2048
	})
	if err := g.p.Apply(context.Background(), r2, g.table); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the new limit on the running listener", func() bool {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.WriteString(c, header)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		return err == nil && resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge
	})
}

// An upstream that answers an upload before reading it (or gives up on a
// slow one) cuts the body short: that is not the version's error and does
// not eject it.
func TestUpstreamCuttingAnUploadIsNotTheVersionsError(t *testing.T) {
	stable := newBackendServer(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		// Answer at once and close, without reading the body.
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusUnauthorized)
	}, nil)
	r := rolloutSpec(t, []string{stable.url}, nil, func(s *spec.RolloutSpec) {
		s.OutlierDetection.ConsecutiveErrors = 2
	})
	g := startProxy(t, r, tableConfig(r, 0))
	for range 6 {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			_, _ = io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: 8388608\r\n\r\n")
			chunk := make([]byte, 64<<10)
			for i := 0; i < 128; i++ {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
		_, _ = http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
	}
	if sum := g.versionStats(spec.RoleStable, stableVersion).Summary(0); sum.Errors != 0 {
		t.Errorf("the cut uploads count %d errors against stable", sum.Errors)
	}
	if e := g.endpoint(t, stable.url); e.Ejected {
		t.Errorf("the cut uploads ejected the endpoint: %+v", e)
	}
}

// An https endpoint that accepts TCP but never speaks TLS fails within
// the connect timeout, as a connection failure, not after the idle time.
func TestTLSHandshakeIsBoundedByTheConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, silent
		}
	}()
	r := rolloutSpec(t, []string{"https://" + ln.Addr().String()}, nil, func(s *spec.RolloutSpec) {
		s.TrafficRouting.Timeouts.Connect = spec.Duration(300 * time.Millisecond)
		s.TrafficRouting.Timeouts.Idle = spec.Duration(10 * time.Second)
		s.HealthCheck = nil // a TCP connection proves it: the case at hand
	})
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(1)
	defer closeIdle(c)
	start := time.Now()
	res := get(t, c, g.url+"/", nil)
	if took := time.Since(start); res.status != http.StatusBadGateway || res.errHdr != "connect" || took > 3*time.Second {
		t.Fatalf("status %d %q after %v, want 502 connect within about the 300ms connect timeout", res.status, res.errHdr, took)
	}
}

// A 502 for a bad upstream answer never quotes the upstream's bytes: on a
// desynchronised connection they can be another user's data.
func TestBadUpstreamAnswerIsNotEchoed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = bufio.NewReader(c).ReadString('\n')
				_, _ = io.WriteString(c, "alice-session=SECRET123 not http at all\r\n\r\n")
			}()
		}
	}()
	r := rolloutSpec(t, []string{"http://" + ln.Addr().String()}, nil, func(s *spec.RolloutSpec) { s.HealthCheck = nil })
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(1)
	defer closeIdle(c)
	res := get(t, c, g.url+"/", nil)
	if res.status != http.StatusBadGateway || strings.Contains(res.body, "SECRET123") {
		t.Fatalf("status %d body %q, want a 502 that does not quote the upstream", res.status, res.body)
	}
}

// CheckListen accepts the rollout's own address in another spelling (its
// own socket holds the port), and refuses an address another process
// holds.
func TestCheckListen(t *testing.T) {
	stable := newBackend(t, stableVersion, nil)
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	_, port, _ := net.SplitHostPort(g.addr)
	for _, addr := range []string{g.addr, "0.0.0.0:" + port, ":" + port, "localhost:" + port} {
		if err := g.p.CheckListen(g.name, addr); err != nil {
			t.Errorf("CheckListen(%s) of the rollout's own port: %v", addr, err)
		}
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := g.p.CheckListen(g.name, busy.Addr().String()); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("CheckListen of a busy address: %v", err)
	}
}

// Changing a listener's settings (not its address) refuses no connection:
// the new listener serves before the old one drains.
func TestListenerRestartRefusesNothing(t *testing.T) {
	stable := newBackend(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(2 * time.Second)
		}
		_, _ = io.WriteString(w, stableVersion)
	})
	r := rolloutSpec(t, []string{stable.url}, nil, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(4)
	defer closeIdle(c)
	slow := make(chan result, 1)
	go func() { res, _ := tryGet(c, g.url+"/slow", nil); slow <- res }()
	time.Sleep(200 * time.Millisecond) // the slow request is in flight
	r2 := rolloutSpec(t, []string{stable.url}, nil, func(s *spec.RolloutSpec) {
		s.Listen = g.addr
		s.TrafficRouting.ClientLimits.MaxConnections = 500
	})
	start := time.Now()
	if err := g.p.Apply(context.Background(), r2, g.table); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Apply took %v: it waited for the old listener's drain", took)
	}
	for i := range 20 {
		conn, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatalf("connection %d during the restart: %v", i, err)
		}
		conn.Close()
	}
	if res := <-slow; res.status != http.StatusOK {
		t.Errorf("the request in flight during the restart: %d", res.status)
	}
}
