package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/router/nginx"
)

// routedNGINX is an NGINX configured as examples/nginx/nginx.conf (the
// same generator wrote both), run in a temporary directory, that coalmine
// drives by rewriting its include files and reloading it, and by swapping
// its weight files.
type routedNGINX struct {
	t       *testing.T
	base    []string // nginx -p DIR -c CONF -e LOG
	dir     string
	Addr    string
	Include string
	Status  string
	cmd     *exec.Cmd
	stopped chan struct{}
	out     *syncBuffer
}

func newRoutedNGINX(t *testing.T, syslog string) *routedNGINX {
	t.Helper()
	bin := requireTool(t, "nginx")
	dir := t.TempDir()
	// Run as root, NGINX's workers run as nobody: like a real NGINX's,
	// they must reach the weight files coalmine writes under dir.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n := &routedNGINX{t: t, dir: dir, Addr: freeAddr(t), Include: filepath.Join(dir, "coalmine", "shop.conf"), Status: freeAddr(t)}
	text, err := nginx.ConfigExample(nginx.ExampleOptions{
		Rollout: "shop", IncludeFile: n.Include, Listen: n.Addr,
		Syslog:  strings.TrimPrefix(syslog, "udp://"),
		PidFile: filepath.Join(dir, "nginx.pid"), ErrorLog: filepath.Join(dir, "error.log"), TempDir: filepath.Join(dir, "tmp"),
	})
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, text)
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o777); err != nil {
		t.Fatal(err)
	}
	n.base = []string{bin, "-p", dir + "/", "-c", conf, "-e", filepath.Join(dir, "error.log")}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error log:\n%s", log)
		}
	})
	return n
}

// routerYAML is the rollout's router block for this NGINX.
func (n *routedNGINX) routerYAML() string {
	q := func(argv []string) string {
		b, _ := json.Marshal(argv)
		return string(b)
	}
	return fmt.Sprintf(`nginx: {includeFile: %q, testCommand: %s, reloadCommand: %s, statusAddress: %q}`,
		n.Include, q(append(append([]string{}, n.base...), "-t")), q(append(append([]string{}, n.base...), "-s", "reload")), n.Status)
}

// start runs NGINX in the foreground in its own process group (so kill
// takes its workers too). The include file must exist: coalmine's first
// apply writes it.
func (n *routedNGINX) start() {
	n.t.Helper()
	eventually(n.t, 10*time.Second, "coalmine to write the include file", func() bool {
		_, err := os.Stat(n.Include)
		return err == nil
	})
	n.out = &syncBuffer{}
	cmd := exec.Command(n.base[0], append(n.base[1:], "-g", "daemon off;")...)
	cmd.Stdout, cmd.Stderr = n.out, n.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.cmd, n.stopped = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(n.stopped)
	eventually(n.t, 10*time.Second, "nginx to listen", func() bool {
		select {
		case <-n.stopped:
			n.t.Fatalf("nginx exited: %s", n.out.String())
		default:
		}
		c, err := net.Dial("tcp", n.Addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// kill stops NGINX hard, master and workers.
func (n *routedNGINX) kill() {
	if n.cmd == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.stopped
	n.cmd = nil
	eventually(n.t, 5*time.Second, "nginx's workers to let go of the port", func() bool {
		c, err := net.Dial("tcp", n.Addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// weight is the canary weight (basis points) NGINX's workers route with,
// from the status location the include file declares.
func (n *routedNGINX) weight() int {
	n.t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + n.Status + "/coalmine/shop")
	if err != nil {
		n.t.Fatalf("nginx status: %v", err)
	}
	defer resp.Body.Close()
	var st nginx.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		n.t.Fatalf("nginx status: %v", err)
	}
	return int(st.Weight)
}

const nginxRolloutTemplate = `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  progressDeadline: 5m
  trafficRouting:
    router:
      %s
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

// startNGINXRollout starts coalmine driving n (which it starts once
// coalmine wrote the include file) and receiving its access logs.
func startNGINXRollout(t *testing.T, n *routedNGINX, syslog, stableURL, canaryURL, steps, metrics string) *server {
	t.Helper()
	stub := &backend{URL: stableURL}
	s := newServer(t, stub, stub, "--access-log", syslog)
	s.writeConfig(fmt.Sprintf(nginxRolloutTemplate, stableURL, canaryURL, n.routerYAML(), steps, metrics))
	s.start()
	n.start()
	return s
}

// With NGINX in front and only its JSON access logs as telemetry, a canary
// failing 10% of requests at 5% weight and 400 req/s is rolled back, and
// NGINX sends everyone to stable.
func TestNGINXRouterRollsBackAFailingCanaryFromAccessLogs(t *testing.T) {
	syslog := freeUDP(t)
	n := newRoutedNGINX(t, syslog)
	s := startNGINXRollout(t, n, syslog, startServiceBackend(t, "v1", 0.001, 2*time.Millisecond),
		startServiceBackend(t, "v2", 0.10, 2*time.Millisecond), judgedSteps, errorRateJudge)
	s.waitFor("the analysis step at 5% read back from NGINX", 20*time.Second, func(st status) bool { return st.StepIndex == 1 })
	if w := n.weight(); w != 500 {
		t.Fatalf("NGINX routes with weight %d at the analysis step, want 500 basis points", w)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	began := time.Now()
	load(ctx, n.Addr, 400)
	st := s.waitFor("rollback", 15*time.Second, func(st status) bool { return st.Phase == "Degraded" })
	t.Logf("rolled back %.1fs after traffic started: %s", time.Since(began).Seconds(), st.Message)
	if !strings.Contains(st.Message, "error-rate") {
		t.Errorf("message %q does not name the metric", st.Message)
	}
	eventually(t, 5*time.Second, "NGINX to route with weight 0", func() bool { return n.weight() == 0 })
	for range 50 {
		resp, err := client.Get("http://" + n.Addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if !strings.HasSuffix(body.String(), "v1") {
			t.Fatalf("after the rollback NGINX served %q", body.String())
		}
	}
}

// An A/A canary behind NGINX completes, judged from the access logs alone,
// and NGINX's stable upstream then serves the new version.
func TestNGINXRouterCompletesAnIdenticalCanary(t *testing.T) {
	syslog := freeUDP(t)
	n := newRoutedNGINX(t, syslog)
	s := startNGINXRollout(t, n, syslog, startServiceBackend(t, "v1", 0.005, 2*time.Millisecond),
		startServiceBackend(t, "v2", 0.005, 2*time.Millisecond), judgedSteps, aaJudge)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	load(ctx, n.Addr, 400)
	st := s.waitFor("completion", 45*time.Second, func(st status) bool { return st.Phase == "Healthy" || st.Phase == "Degraded" })
	if st.Phase != "Healthy" || st.StableVersion != "v2" {
		t.Fatalf("A/A canary behind NGINX: %+v", st)
	}
}

// NGINX killed mid-rollout pauses the rollout with the reason; started
// again, it is given the routing and the rollout goes on.
func TestNGINXRouterKilledPausesTheRolloutUntilItIsBack(t *testing.T) {
	syslog := freeUDP(t)
	n := newRoutedNGINX(t, syslog)
	steps := `        - setWeight: 10
        - pause: {}
        - setWeight: 50
        - pause: {}
`
	s := startNGINXRollout(t, n, syslog, startBackend(t, "v1").URL, startBackend(t, "v2").URL, steps, errorRateJudge)
	s.waitFor("the first pause at 10% read back from NGINX", 20*time.Second, func(st status) bool { return st.StepIndex == 1 && st.ObservedWeight == 10 })
	for range 20 {
		if v := lbVersionFor(t, n.Addr, "X-Canary", "always"); v != "v2" {
			t.Fatalf("the header route sent a tester to %q through NGINX", v)
		}
	}
	n.kill()
	s.mustCLI("promote", "shop")
	eventually(t, 15*time.Second, "the router error to show", func() bool {
		out, _ := s.cli("get", "rollout", "shop")
		return strings.Contains(out, "NOT ROUTING")
	})
	time.Sleep(2500 * time.Millisecond) // a few resyncs: still the step must not complete
	if st := s.status(); st.StepIndex != 2 {
		t.Fatalf("with NGINX down the rollout moved to step %d", st.StepIndex)
	}
	n.start()
	st := s.waitFor("the rollout to resume once NGINX is back", 20*time.Second, func(st status) bool { return st.StepIndex == 3 })
	if st.ObservedWeight != 50 || n.weight() != 5000 {
		t.Fatalf("after NGINX came back: observed %v%%, NGINX weight %d", st.ObservedWeight, n.weight())
	}
	if !hasEvent(s.events(), "router-unavailable") || !hasEvent(s.events(), "router-available") {
		t.Error("the router events are missing")
	}
}
