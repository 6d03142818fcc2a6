package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A user walks the main path: serve, set a weight with the CLI, see the
// split, kill -9, restart, and find the same weight and the same users.
func TestWeightBySplitSurvivesKill9(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.start()

	if got := assign(t, s.Listen, 500); share(got, "v2") != 0 {
		t.Fatalf("canary got %.1f%% of users before any weight was set", share(got, "v2"))
	}
	out, code := s.cli("set", "weight", "shop", "10")
	if code != 0 || !strings.Contains(out, "10%") {
		t.Fatalf("set weight: exit %d: %s", code, out)
	}
	first := assign(t, s.Listen, 4000)
	if sh := share(first, "v2"); sh < 8.5 || sh > 11.5 {
		t.Fatalf("canary share %.2f%% at weight 10", sh)
	}
	if v := versionFor(t, s.Listen, "someone", "X-Canary", "true"); v != "v2" {
		t.Fatalf("header route served %s", v)
	}

	s.signal(syscall.SIGKILL)
	s.waitExit(10 * time.Second)
	s.start()

	out, code = s.cli("get", "rollout", "shop", "-o", "json")
	if code != 0 {
		t.Fatalf("get rollout: exit %d: %s", code, out)
	}
	var view struct {
		Status struct {
			Weight, ObservedWeight float64
			Revision               int64
		}
	}
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	if view.Status.Weight != 10 || view.Status.Revision != 1 {
		t.Fatalf("after kill -9: weight %v revision %d, want 10 and 1", view.Status.Weight, view.Status.Revision)
	}
	eventually(t, 5*time.Second, "observed weight 10", func() bool {
		out, _ := s.cli("get", "rollout", "shop", "-o", "json")
		return json.Unmarshal([]byte(out), &view) == nil && view.Status.ObservedWeight == 10
	})
	again := assign(t, s.Listen, 4000)
	for i := range first {
		if first[i] != again[i] {
			t.Fatalf("user-%d was on %s before the restart and on %s after", i, first[i], again[i])
		}
	}
}

// Changing the weight while wrk runs at full load fails no request.
func TestWeightChangesUnderWrkLoadFailNothing(t *testing.T) {
	wrk := requireTool(t, "wrk")
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.start()

	cmd := exec.Command(wrk, "-t2", "-c64", "-d4s", "http://"+s.Listen+"/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	changes := 0
	weights := []string{"0", "5", "50", "100", "0.01", "25"}
loop:
	for i := 0; ; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("wrk: %v\n%s", err, out.String())
			}
			break loop
		default:
		}
		body := fmt.Sprintf(`{"percent": %s}`, weights[i%len(weights)])
		req, _ := http.NewRequest(http.MethodPut, s.Admin+"/api/v1/rollouts/shop/weight", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PUT weight: %d", resp.StatusCode)
		}
		changes++
		time.Sleep(20 * time.Millisecond)
	}
	report := out.String()
	t.Logf("%d weight changes during:\n%s", changes, report)
	if changes < 20 {
		t.Fatalf("only %d weight changes happened during the load", changes)
	}
	if m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(report); m == nil || m[1] == "0" {
		t.Fatalf("wrk sent no requests:\n%s", report)
	}
	if strings.Contains(report, "Non-2xx") || strings.Contains(report, "Socket errors") {
		t.Fatalf("requests failed while the weight changed:\n%s", report)
	}
}

// SIGTERM lets a request in flight finish, then exits 0.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.start()
	stable.setDelay(700 * time.Millisecond)

	result := make(chan error, 1)
	go func() {
		resp, err := client.Get("http://" + s.Listen + "/")
		if err != nil {
			result <- err
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "v1" {
			result <- fmt.Errorf("status %d body %q", resp.StatusCode, body)
			return
		}
		result <- nil
	}()
	select {
	case <-stable.slowArrived: // the request is now in flight at the backend
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the backend")
	}
	s.signal(syscall.SIGTERM)
	if err := <-result; err != nil {
		t.Fatalf("in-flight request during drain: %v", err)
	}
	if code := s.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
}

// SIGHUP with an invalid file keeps the running configuration; a valid
// change is applied.
func TestSIGHUPReload(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.start()

	valid, _ := os.ReadFile(s.Config)
	s.writeConfig("apiVersion: coalmine.dev/v1alpha1\nkind: Rollout\nmetadata: {name: shop}\nspec: {listen: nope}\n")
	s.signal(syscall.SIGHUP)
	eventually(t, 5*time.Second, "the reload to be rejected", func() bool {
		return strings.Contains(s.logs.String(), "reload rejected")
	})
	if v := versionFor(t, s.Listen, "u", "X-Canary", "true"); v != "v2" {
		t.Fatalf("after a rejected reload the header route served %s", v)
	}

	s.writeConfig(strings.Replace(string(valid), `exact: "true"`, `exact: "yes"`, 1))
	s.signal(syscall.SIGHUP)
	eventually(t, 5*time.Second, "the reload to apply", func() bool {
		return strings.Contains(s.logs.String(), "configuration reloaded")
	})
	if v := versionFor(t, s.Listen, "u", "X-Canary", "yes"); v != "v2" {
		t.Fatalf("after a valid reload the new header route served %s", v)
	}
}

func TestAdminRefusesNonLoopbackWithoutToken(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	out, code := run(t, "serve", "-f", s.Config, "--admin", "0.0.0.0:0", "--data-dir", s.DataDir)
	if code != 2 || !strings.Contains(out, "token") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

func TestTokenIsRequired(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.env = []string{"COALMINE_TOKEN=s3cret-token"}
	s.start()
	resp, err := client.Get(s.Admin + "/api/v1/rollouts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("without token: %d, want 401", resp.StatusCode)
	}
	if out, code := s.cli("get", "rollouts"); code != 4 {
		t.Fatalf("CLI without token: exit %d, want 4: %s", code, out)
	}
	if out, code := s.cli("get", "rollouts", "--token", "s3cret-token"); code != 0 || !strings.Contains(out, "shop") {
		t.Fatalf("CLI with token: exit %d: %s", code, out)
	}
	if strings.Contains(s.logs.String(), "s3cret-token") {
		t.Fatal("the token appeared in the logs")
	}
}

func TestLintAndServeRejectBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	os.WriteFile(bad, []byte("apiVersion: coalmine.dev/v1alpha1\nkind: Rollout\nmetadata: {name: shop}\nspec:\n  listen: 127.0.0.1:1\n  stable: {version: v1, endpoints: [http://127.0.0.1:2]}\n  strategy: {canary: {steps: [{setWeight: 150}]}}\n"), 0o600)
	out, code := run(t, "lint", "-f", bad)
	if code != 2 || !strings.Contains(out, "bad.yaml:7:") || !strings.Contains(out, "setWeight") {
		t.Fatalf("lint: exit %d:\n%s", code, out)
	}
	out, code = run(t, "serve", "-f", bad, "--data-dir", dir+"/data", "--admin", freeAddr(t))
	if code != 2 || !strings.Contains(out, "setWeight") {
		t.Fatalf("serve: exit %d:\n%s", code, out)
	}
	// Every example is linted (with its secrets provided) by test/examples;
	// here the binary checks one that needs no secret.
	if out, code := run(t, "lint", "-f", "../../examples/percentage-steps.yaml"); code != 0 {
		t.Fatalf("the percentage-steps example does not lint: exit %d:\n%s", code, out)
	}
}

func metrics(t *testing.T, s *server) string {
	t.Helper()
	resp, err := client.Get(s.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// /metrics carries the names of SPEC §6.3 with live counts.
func TestMetricsExposition(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.start()
	s.cli("set", "weight", "shop", "50")
	var n atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				versionFor(t, s.Listen, "u"+strconv.Itoa(g*100+i))
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	m := metrics(t, s)
	for _, want := range []string{
		`coalmine_requests_total{code="200",role="stable",rollout="shop",source="live",version="v1"}`,
		`coalmine_requests_total{code="200",role="canary",rollout="shop",source="live",version="v2"}`,
		`coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="0.005"}`,
		`coalmine_canary_weight_percent{rollout="shop"} 50`,
		`coalmine_rollout_phase{phase="Paused",rollout="shop"} 1`,
		`coalmine_endpoint_healthy{endpoint="` + canary.URL + `",role="canary",rollout="shop"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	total := 0
	sc := bufio.NewScanner(strings.NewReader(m))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, `coalmine_requests_total{`) && strings.Contains(line, `source="live"`) {
			v, _ := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
			total += v
		}
	}
	if int64(total) != n.Load() {
		t.Errorf("coalmine_requests_total sums to %d, sent %d", total, n.Load())
	}
}
