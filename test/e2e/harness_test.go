// Package e2e builds the coalmine binary and drives it as a user would:
// real backends on loopback, the real proxy, the CLI and the admin API.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/store/postgres/pgtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "coalmine-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "coalmine")
	build := exec.Command("go", "build", "-race", "-o", binary, "../../cmd/coalmine")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build coalmine:", err)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.Stop() // the PostgreSQL cluster a test may have started
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTool skips when an external tool is missing on a developer's
// machine, and fails in CI (COALMINE_REQUIRE_INTEGRATION=1).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("COALMINE_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s is required (COALMINE_REQUIRE_INTEGRATION=1) but not installed: apt-get install -y %s", name, name)
		}
		t.Skipf("%s is not installed (apt-get install -y %s); skipping", name, name)
	}
	return p
}

// backend is a real HTTP upstream that names its version.
type backend struct {
	URL     string
	version string
	srv     *http.Server
	ln      net.Listener
	mu      sync.Mutex
	delay   time.Duration
	// slowArrived receives one value each time a delayed request arrives.
	slowArrived chan struct{}
}

func startBackend(t *testing.T, version string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{URL: "http://" + ln.Addr().String(), version: version, ln: ln, slowArrived: make(chan struct{}, 16)}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		d := b.delay
		b.mu.Unlock()
		if d > 0 && r.URL.Path != "/health" {
			select {
			case b.slowArrived <- struct{}{}:
			default:
			}
			time.Sleep(d)
		}
		w.Header().Set("X-Backend", version)
		io.WriteString(w, version)
	})}
	go b.srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *backend) setDelay(d time.Duration) {
	b.mu.Lock()
	b.delay = d
	b.mu.Unlock()
}

// serveHTTP runs h on a free loopback port until the test ends and returns
// its base URL.
func serveHTTP(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// readyz returns the server's /readyz status and body (0 when it does not
// answer).
func (s *server) readyz() (int, string) {
	resp, err := client.Get(s.Admin + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a running `coalmine serve`.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	Admin   string // http://host:port
	Listen  string // host:port of the rollout
	DataDir string
	Config  string
	logs    *syncBuffer
	exited  chan struct{}
	extra   []string
	env     []string
	// wrap runs the binary through another command, such as
	// sh -c 'ulimit -n 256 && exec "$0" "$@"'.
	wrap []string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const rolloutTemplate = `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata:
  name: shop
spec:
  listen: %s
  stable:
    version: v1
    endpoints: [%s]
  canary:
    version: v2
    endpoints: [%s]
  healthCheck:
    path: /health
    interval: 200ms
  trafficRouting:
    assignment:
      userHeader: X-User-ID
    headerRoutes:
      - name: testers
        match: [{headerName: X-Canary, headerValue: {exact: "true"}}]
  strategy:
    canary:
      steps:
        - pause: {}
        - setWeight: 10
        - pause: {}
`

// newServer writes a config for stable and canary and prepares a server
// with a fresh data dir; call start to run it.
func newServer(t *testing.T, stable, canary *backend, extra ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, Listen: freeAddr(t), DataDir: filepath.Join(dir, "data"), Config: filepath.Join(dir, "rollout.yaml"), extra: extra}
	s.Admin = "http://" + freeAddr(t)
	s.writeConfig(fmt.Sprintf(rolloutTemplate, s.Listen, stable.URL, canary.URL))
	return s
}

func (s *server) writeConfig(yaml string) {
	if err := os.WriteFile(s.Config, []byte(yaml), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) start() {
	s.t.Helper()
	s.startWith(true)
}

// startWith starts the server and waits until it is ready (/readyz 200),
// or only alive (/healthz 200) when ready is false, for a server that
// starts but reports something in /readyz.
func (s *server) startWith(ready bool) {
	t := s.t
	t.Helper()
	args := append([]string{"serve", "-f", s.Config, "--admin", strings.TrimPrefix(s.Admin, "http://"), "--data-dir", s.DataDir, "--log-format", "text"}, s.extra...)
	s.logs = &syncBuffer{}
	if len(s.wrap) > 0 {
		s.cmd = exec.Command(s.wrap[0], append(append(s.wrap[1:len(s.wrap):len(s.wrap)], binary), args...)...)
	} else {
		s.cmd = exec.Command(binary, args...)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	s.cmd.Env = append(os.Environ(), s.env...)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("coalmine logs:\n%s", s.logs.String())
		}
	})
	probe := "/readyz"
	if !ready {
		probe = "/healthz"
	}
	eventually(t, 20*time.Second, "coalmine serve to become ready", func() bool {
		select {
		case <-s.exited:
			t.Fatalf("coalmine serve exited early:\n%s", s.logs.String())
		default:
		}
		resp, err := http.Get(s.Admin + probe)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (s *server) signal(sig syscall.Signal) {
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) waitExit(timeout time.Duration) int {
	s.t.Helper()
	select {
	case <-s.exited:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		s.t.Fatalf("coalmine did not exit within %v", timeout)
	}
	return -1
}

// cli runs the binary as a client of this server.
func (s *server) cli(args ...string) (string, int) {
	s.t.Helper()
	return run(s.t, append(args, "--server", s.Admin)...)
}

func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("run coalmine %v: %v", args, err)
	}
	return string(out), 0
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is an HTTP client with enough idle connections for bulk loops.
var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxIdleConns: 64}}

// versionFor sends one request as user and returns the version that served it.
func versionFor(t *testing.T, addr, user string, headers ...string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	if user != "" {
		req.Header.Set("X-User-ID", user)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("request through the proxy: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Coalmine-Version"); got != string(body) {
		t.Fatalf("X-Coalmine-Version %q but %q answered", got, body)
	}
	return string(body)
}

// assign maps n users to versions, 16 at a time.
func assign(t *testing.T, addr string, n int) []string {
	t.Helper()
	out := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = versionFor(t, addr, fmt.Sprintf("user-%d", i))
		}()
	}
	wg.Wait()
	return out
}

func share(vs []string, version string) float64 {
	n := 0
	for _, v := range vs {
		if v == version {
			n++
		}
	}
	return 100 * float64(n) / float64(len(vs))
}
