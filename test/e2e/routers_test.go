package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// routedHAProxy is an HAProxy configured from the shipped example
// (examples/haproxy/haproxy.cfg), as a user would copy it, that coalmine
// drives through its runtime API.
type routedHAProxy struct {
	t      *testing.T
	bin    string
	Addr   string // the frontend
	Sock   string // the runtime API socket
	Map    string
	cfg    string
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *syncBuffer
}

// startRoutedHAProxy starts HAProxy from the example configuration, with
// its paths in a temporary directory, its frontend on a free port and its
// access logs sent to syslog (udp://host:port).
func startRoutedHAProxy(t *testing.T, syslog string) *routedHAProxy {
	t.Helper()
	bin := requireTool(t, "haproxy")
	example, err := os.ReadFile("../../examples/haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := &routedHAProxy{t: t, bin: bin, Addr: freeAddr(t), Sock: filepath.Join(dir, "admin.sock"), Map: filepath.Join(dir, "coalmine.map")}
	cfg := string(example)
	for old, repl := range map[string]string{
		"/etc/haproxy/":             dir + "/",
		"/run/haproxy/admin.sock":   h.Sock,
		"bind :8080":                "bind " + h.Addr,
		"log 127.0.0.1:5514 local0": "log " + strings.TrimPrefix(syslog, "udp://") + " local0",
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("examples/haproxy/haproxy.cfg no longer holds %q; update this test", old)
		}
		cfg = strings.ReplaceAll(cfg, old, repl)
	}
	for _, f := range []string{"coalmine.map", "coalmine.regex.map"} {
		writeFile(t, filepath.Join(dir, f), "")
	}
	h.cfg = filepath.Join(dir, "haproxy.cfg")
	writeFile(t, h.cfg, cfg)
	if out, err := exec.Command(bin, "-c", "-f", h.cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c on the example: %v\n%s", err, out)
	}
	h.start()
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("haproxy logs:\n%s", h.logs.String())
		}
	})
	return h
}

func (h *routedHAProxy) start() {
	h.t.Helper()
	h.logs = &syncBuffer{}
	h.cmd = exec.Command(h.bin, "-db", "-f", h.cfg)
	h.cmd.Stdout, h.cmd.Stderr = h.logs, h.logs
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.exited = make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(h.exited) }()
	eventually(h.t, 10*time.Second, "haproxy to listen", func() bool {
		c, err := net.Dial("tcp", h.Addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func (h *routedHAProxy) stop() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	select {
	case <-h.exited:
		return
	default:
	}
	_ = h.cmd.Process.Kill()
	<-h.exited
}

// runtime sends one command to HAProxy's runtime API and returns the answer.
func (h *routedHAProxy) runtime(cmd string) string {
	h.t.Helper()
	c, err := net.DialTimeout("unix", h.Sock, 2*time.Second)
	if err != nil {
		h.t.Fatalf("haproxy runtime API: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "%s\n", cmd)
	var b strings.Builder
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}

// mapWeight is the canary weight (basis points) HAProxy holds for shop.
func (h *routedHAProxy) mapWeight() string {
	for _, l := range strings.Split(h.runtime("show map "+h.Map), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[1] == "shop:weight" {
			return f[2]
		}
	}
	return ""
}

const haproxyRolloutTemplate = `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  progressDeadline: %s
  trafficRouting:
    router:
      haproxy: {runtimeAPI: "unix://%s", map: %s}
    assignment: {userHeader: X-User-ID}
    headerRoutes:
      - name: testers
        match: [{headerName: X-Canary, headerValue: {exact: always}}]
  strategy:
    canary:
      steps:
%s---
apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: judge}
spec:
  metrics:
%s`

// newHAProxyServer prepares coalmine driving h, receiving its access logs
// on syslog.
func newHAProxyServer(t *testing.T, h *routedHAProxy, syslog, stableURL, canaryURL, steps, metrics string) *server {
	t.Helper()
	stub := &backend{URL: stableURL}
	s := newServer(t, stub, stub, "--access-log", syslog)
	s.writeConfig(fmt.Sprintf(haproxyRolloutTemplate, stableURL, canaryURL, "5m", h.Sock, h.Map, steps, metrics))
	return s
}

const judgedSteps = `        - setWeight: 5
        - analysis: {templates: [{templateName: judge}]}
        - setWeight: 100
`

// freeUDP returns a udp:// address on loopback that is free now.
func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return "udp://" + c.LocalAddr().String()
}

// With HAProxy in front and only its access logs as telemetry, a canary
// failing 10% of requests at 5% weight and 400 req/s is rolled back by the
// error-rate judge, and HAProxy sends everyone to stable.
func TestHAProxyRouterRollsBackAFailingCanaryFromAccessLogs(t *testing.T) {
	syslog := freeUDP(t)
	h := startRoutedHAProxy(t, syslog)
	s := newHAProxyServer(t, h, syslog, startServiceBackend(t, "v1", 0.001, 2*time.Millisecond),
		startServiceBackend(t, "v2", 0.10, 2*time.Millisecond), judgedSteps, errorRateJudge)
	s.start()
	s.waitFor("the analysis step", 10*time.Second, func(st status) bool { return st.StepIndex == 1 })
	if w := h.mapWeight(); w != "500" {
		t.Fatalf("HAProxy holds weight %q at the analysis step, want 500 basis points", w)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	began := time.Now()
	load(ctx, h.Addr, 400)
	st := s.waitFor("rollback", 15*time.Second, func(st status) bool { return st.Phase == "Degraded" })
	t.Logf("rolled back %.1fs after traffic started: %s", time.Since(began).Seconds(), st.Message)
	if !strings.Contains(st.Message, "error-rate") {
		t.Errorf("message %q does not name the metric", st.Message)
	}
	if w := h.mapWeight(); w != "0" {
		t.Fatalf("after the rollback HAProxy holds weight %q, want 0", w)
	}
	for range 50 {
		if v := lbVersionFor(t, h.Addr); v != "v1" {
			t.Fatalf("after the rollback HAProxy served %q", v)
		}
	}
}

// An A/A canary behind HAProxy (both 0.5% errors) completes, judged from
// the access logs alone.
func TestHAProxyRouterCompletesAnIdenticalCanary(t *testing.T) {
	syslog := freeUDP(t)
	h := startRoutedHAProxy(t, syslog)
	s := newHAProxyServer(t, h, syslog, startServiceBackend(t, "v1", 0.005, 2*time.Millisecond),
		startServiceBackend(t, "v2", 0.005, 2*time.Millisecond), judgedSteps, aaJudge)
	s.start()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	load(ctx, h.Addr, 400)
	st := s.waitFor("completion", 40*time.Second, func(st status) bool { return st.Phase == "Healthy" || st.Phase == "Degraded" })
	if st.Phase != "Healthy" || st.StableVersion != "v2" {
		t.Fatalf("A/A canary behind HAProxy: %+v", st)
	}
	// After the promotion the stable backend serves the new version.
	eventually(t, 5*time.Second, "HAProxy's stable backend to serve v2", func() bool {
		resp, err := client.Get("http://" + h.Addr + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.HasSuffix(string(body), "v2") // "v2", or "boom from v2" for its 0.5% errors
	})
	if w := h.mapWeight(); w != "0" {
		t.Fatalf("after completion HAProxy holds weight %q, want 0", w)
	}
}

// An HAProxy that stops mid-rollout pauses the rollout with the reason: no
// step completes that was not applied, and the rollout resumes on its own
// once HAProxy is back (its map entries lost in the restart are given
// again).
func TestHAProxyRouterUnreachablePausesTheRolloutUntilItIsBack(t *testing.T) {
	syslog := freeUDP(t)
	h := startRoutedHAProxy(t, syslog)
	steps := `        - setWeight: 10
        - pause: {}
        - setWeight: 50
        - pause: {}
`
	s := newHAProxyServer(t, h, syslog, startBackend(t, "v1").URL, startBackend(t, "v2").URL, steps, errorRateJudge)
	s.start()
	s.waitFor("the first pause", 10*time.Second, func(st status) bool { return st.StepIndex == 1 && st.ObservedWeight == 10 })
	if w := h.mapWeight(); w != "1000" {
		t.Fatalf("HAProxy holds weight %q, want 1000", w)
	}
	if out := s.mustCLI("get", "rollout", "shop"); !strings.Contains(out, "haproxy") {
		t.Errorf("get rollout does not name the router:\n%s", out)
	}
	for range 20 {
		if v := lbVersionFor(t, h.Addr, "X-Canary", "always"); v != "v2" {
			t.Fatalf("the header route sent a tester to %q through HAProxy", v)
		}
	}

	h.stop()
	s.mustCLI("promote", "shop")
	eventually(t, 10*time.Second, "the router error to show", func() bool {
		out, _ := s.cli("get", "rollout", "shop")
		return strings.Contains(out, "NOT ROUTING")
	})
	// A few resyncs pass: still the step must not complete.
	time.Sleep(2500 * time.Millisecond)
	var v struct {
		Status struct {
			status
			RouterError string `json:"routerError"`
		} `json:"status"`
	}
	s.getJSON("/api/v1/rollouts/shop", &v)
	if v.Status.StepIndex != 2 || v.Status.RouterError == "" {
		t.Fatalf("with HAProxy down: step %d, routerError %q; want step 2 (setWeight 50) not done, with the reason", v.Status.StepIndex, v.Status.RouterError)
	}
	t.Logf("while HAProxy was down: %s", v.Status.RouterError)
	if out := s.mustCLI("get", "rollout", "shop"); !strings.Contains(out, "NOT ROUTING") {
		t.Errorf("get rollout does not say the router is not routing:\n%s", out)
	}
	if !hasEvent(s.events(), "router-unavailable") {
		t.Error("no router-unavailable event")
	}
	// coalmine is not in HAProxy's request path: ready, and degraded with why.
	if code, body := s.readyz(); code != 200 || !strings.Contains(body, "degraded") || !strings.Contains(body, "shop") {
		t.Errorf("/readyz with HAProxy down: %d %q, want 200 and degraded naming the rollout", code, body)
	}

	h.start()
	st := s.waitFor("the rollout to resume once HAProxy is back", 15*time.Second, func(st status) bool { return st.StepIndex == 3 })
	if st.ObservedWeight != 50 {
		t.Fatalf("after HAProxy came back: observed weight %v, want 50", st.ObservedWeight)
	}
	if w := h.mapWeight(); w != "5000" {
		t.Fatalf("restarted HAProxy holds weight %q, want 5000", w)
	}
	if !hasEvent(s.events(), "router-available") {
		t.Error("no router-available event")
	}
}

func hasEvent(evs []event, typ string) bool {
	for _, e := range evs {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// lbVersionFor asks a load balancer in front of two test upstreams which
// version serves a request with the given header pairs (the body names it;
// a load balancer adds no X-Coalmine-Version).
func lbVersionFor(t *testing.T, addr string, headers ...string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("request through the load balancer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d through the load balancer: %s", resp.StatusCode, body)
	}
	return string(body)
}
