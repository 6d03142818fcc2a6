package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// haproxyBinary finds HAProxy, or skips the test (fails it when
// COALMINE_REQUIRE_INTEGRATION=1).
func haproxyBinary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("COALMINE_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("haproxy is not installed and COALMINE_REQUIRE_INTEGRATION=1: install HAProxy 2.6 or later (%v)", err)
		}
		t.Skipf("haproxy is not installed (%v): skipping the tests against a real HAProxy", err)
	}
	return path
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// upstream is a real HTTP server that answers with its version.
func upstream(t testing.TB, version string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, version)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// lab is one HAProxy started by a test with the lines ConfigSections
// gives, its stats socket and maps in the test's temporary directory.
type lab struct {
	t       testing.TB
	bin     string
	dir     string
	cfgPath string
	socket  string
	port    int
	apiPort int // a second stats socket, on TCP
	rollout string
	cfg     spec.HAProxyRouter
	cmd     *exec.Cmd
	done    chan struct{}
	stderr  *bytes.Buffer
}

const testUserHeader = "X-User-Id"

var testHeaderNames = []string{"X-Canary", "X-Group"}

func newLab(t testing.TB) *lab {
	t.Helper()
	l := &lab{t: t, bin: haproxyBinary(t), dir: t.TempDir(), port: freePort(t), apiPort: freePort(t), rollout: "shop"}
	l.socket = filepath.Join(l.dir, "admin.sock")
	l.cfg = spec.HAProxyRouter{
		RuntimeAPI: "unix://" + l.socket,
		Map:        filepath.Join(l.dir, "coalmine.map"),
		Timeout:    spec.Duration(2 * time.Second),
	}
	for _, f := range []string{l.cfg.Map, RegexMap(l.cfg.Map)} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := ConfigSections(l.rollout, l.cfg, testUserHeader, testHeaderNames)
	cfg := "global\n" +
		"    stats socket " + l.socket + " level admin\n" +
		"    stats socket ipv4@127.0.0.1:" + strconv.Itoa(l.apiPort) + " level admin\n" +
		"    nbthread 2\n" +
		s.Global +
		"defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n" +
		"frontend fe\n    bind 127.0.0.1:" + strconv.Itoa(l.port) + "\n" + s.Frontend +
		s.StableBackend + s.CanaryBackend
	l.cfgPath = filepath.Join(l.dir, "haproxy.cfg")
	if err := os.WriteFile(l.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(l.bin, "-c", "-f", l.cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c rejects the generated configuration: %v\n%s\n%s", err, out, cfg)
	}
	l.start()
	t.Cleanup(l.stop)
	return l
}

// start runs HAProxy in the foreground (-db) and waits until its socket
// and frontend answer.
func (l *lab) start() {
	l.t.Helper()
	os.Remove(l.socket)
	l.stderr = &bytes.Buffer{}
	l.cmd = exec.Command(l.bin, "-db", "-f", l.cfgPath)
	l.cmd.Stdout = io.Discard
	l.cmd.Stderr = &lockedWriter{w: l.stderr}
	if err := l.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(l.cmd, l.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err1 := net.Dial("unix", l.socket)
		if err1 == nil {
			c.Close()
		}
		f, err2 := net.Dial("tcp", l.addr())
		if err2 == nil {
			f.Close()
		}
		if err1 == nil && err2 == nil {
			return
		}
		select {
		case <-l.done:
			l.t.Fatalf("haproxy exited at start: %s", l.stderr)
		default:
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("haproxy did not open its socket and frontend within 10s: %v, %v", err1, err2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *lab) stop() {
	if l.cmd == nil || l.cmd.Process == nil {
		return
	}
	l.cmd.Process.Kill()
	<-l.done
	l.cmd = nil
}

func (l *lab) addr() string { return "127.0.0.1:" + strconv.Itoa(l.port) }

func (l *lab) driver() *Driver {
	l.t.Helper()
	d, err := New(l.rollout, l.cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	return d
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// client is a keep-alive HTTP client for the frontend.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
}

// get sends one request with the given headers and returns the body (the
// version that served it).
func get(c *http.Client, addr string, headers map[string]string) (string, error) {
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	if err != nil {
		return "", err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return string(body), nil
}

func desired(gen uint64, weight spec.Weight, stable, canary []string) router.Desired {
	d := router.Desired{
		Rollout:    "shop",
		Revision:   7,
		Generation: gen,
		Weight:     weight,
		Stable:     router.Target{Version: "v1", Endpoints: stable},
		UserHeader: testUserHeader,
	}
	if canary != nil {
		d.Canary = &router.Target{Version: "v2", Endpoints: canary}
	}
	return d
}

func mustApply(t testing.TB, d *Driver, want router.Desired) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Apply(ctx, want); err != nil {
		t.Fatal(err)
	}
}

func strp(s string) *string { return &s }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// netListenUnix listens on a unix socket that accepts connections and
// never answers, holding them until the listener closes.
func netListenUnix(path string) (net.Listener, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln, nil
}
