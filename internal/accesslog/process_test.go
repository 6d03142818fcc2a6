package accesslog

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// requireBinary finds a load balancer's binary: on PATH, or in /usr/sbin
// (where Debian installs HAProxy and NGINX, often off a user's PATH). When
// it is missing the test skips on a developer's machine and fails in CI
// (COALMINE_REQUIRE_INTEGRATION=1).
func requireBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; isExecutable(p) {
		return p
	}
	if os.Getenv("COALMINE_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("%s is required (COALMINE_REQUIRE_INTEGRATION=1) but not installed: apt-get install -y %s", name, pkg)
	}
	t.Skipf("%s is not installed (apt-get install -y %s, or set COALMINE_REQUIRE_INTEGRATION=1 to fail instead); skipping", name, pkg)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a process's output for the failure message.
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

// startProcess runs a load balancer in the foreground until the test ends
// and waits until it accepts connections on listen.
func startProcess(t *testing.T, listen string, name string, args ...string) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so stopping it stops its workers too (an
	// NGINX worker left behind would keep the output pipe open), and a
	// bounded wait for that pipe in any case.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		syscall.Kill(-pgid, syscall.SIGKILL) // workers that outlived the master
		<-exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited before accepting connections:\n%s", name, out)
		default:
		}
		if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections on %s:\n%s", name, listen, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// upstream is a real HTTP server for one version: every failEvery-th
// request (when failEvery > 0) is answered with failCode, and every answer
// waits delay first.
type upstream struct {
	*httptest.Server
	n atomic.Int64
}

func startUpstream(t *testing.T, version string, failEvery int, failCode int, delay time.Duration) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := u.n.Add(1)
		time.Sleep(delay)
		if failEvery > 0 && n%int64(failEvery) == 0 {
			w.WriteHeader(failCode)
		}
		fmt.Fprintln(w, version)
	}))
	t.Cleanup(u.Close)
	return u
}

// hostPort returns an httptest server's host:port.
func hostPort(s *httptest.Server) string { return s.Listener.Addr().String() }

// tally sends n requests to url with the given header set (name "" for
// none) and returns the status codes the client saw.
func tally(t *testing.T, client *http.Client, url, header string, n int) map[int]int64 {
	t.Helper()
	seen := map[int]int64{}
	for range n {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			req.Header.Set(header, "1")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		seen[resp.StatusCode]++
	}
	return seen
}
