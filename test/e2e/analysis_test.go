package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startServiceBackend is an upstream with an error rate and a latency
// (base × 0.5..1.5), like a real service with a bad or a good release.
func startServiceBackend(t *testing.T, version string, errorRate float64, latency time.Duration) string {
	t.Helper()
	return serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			io.WriteString(w, "ok")
			return
		}
		if latency > 0 {
			time.Sleep(time.Duration(float64(latency) * (0.5 + rand.Float64())))
		}
		if rand.Float64() < errorRate {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "boom from "+version)
			return
		}
		io.WriteString(w, version)
	})
}

// load sends rps requests per second from 10,000 users until ctx ends.
func load(ctx context.Context, addr string, rps int) *atomic.Int64 {
	var sent atomic.Int64
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	jobs := make(chan struct{}, 128)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
				req.Header.Set("X-User-ID", "u"+strconv.Itoa(rand.IntN(10000)))
				if resp, err := c.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body) //nolint:errcheck
					resp.Body.Close()
					sent.Add(1)
				}
			}
		}()
	}
	go func() {
		tick := time.NewTicker(time.Second / time.Duration(rps))
		defer tick.Stop()
		defer func() { close(jobs); wg.Wait() }()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case jobs <- struct{}{}:
				default:
				}
			}
		}
	}()
	return &sent
}

const analysisTemplate = `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  healthCheck: {interval: 200ms}
  progressDeadline: %s
  trafficRouting:
    assignment: {userHeader: X-User-ID}
  strategy:
    canary:
      steps:
        - setWeight: 5
        - analysis: {templates: [{templateName: judge}]}
        - setWeight: 100
---
apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: judge}
spec:
  metrics:
%s`

const errorRateJudge = `    - name: error-rate
      provider: {builtin: {}}
      judge: {compare: error-rate, method: sequential, maxRelativeIncrease: 0.5, alpha: 0.01, maxDuration: 20s}
`

// aaJudge is errorRateJudge at α = 0.001, so that this test's own false
// alarm rate (it runs on every CI build) is one in a thousand.
const aaJudge = `    - name: error-rate
      provider: {builtin: {}}
      judge: {compare: error-rate, method: sequential, maxRelativeIncrease: 0.5, alpha: 0.001, maxDuration: 20s}
`

const latencyJudge = `    - name: latency
      provider: {builtin: {}}
      judge: {compare: latency, method: sequential, maxRelativeIncrease: 0.2, alpha: 0.01, maxDuration: 20s}
`

func newAnalysisServer(t *testing.T, stableURL, canaryURL, deadline, metrics string) *server {
	t.Helper()
	stub := &backend{URL: stableURL}
	s := newServer(t, stub, stub)
	s.writeConfig(fmt.Sprintf(analysisTemplate, s.Listen, stableURL, canaryURL, deadline, metrics))
	return s
}

// A canary failing 10% of requests against a stable at 0.1%, at 5% weight
// and 400 req/s, is rolled back within 15 s of traffic starting, with both
// error rates and the evidence in the message.
func TestAnalysisRollsBackAFailingCanaryWithin15s(t *testing.T) {
	s := newAnalysisServer(t, startServiceBackend(t, "v1", 0.001, 2*time.Millisecond),
		startServiceBackend(t, "v2", 0.10, 2*time.Millisecond), "5m", errorRateJudge)
	s.start()
	s.waitFor("the analysis step", 10*time.Second, func(st status) bool { return st.StepIndex == 1 })

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	began := time.Now()
	load(ctx, s.Listen, 400)
	st := s.waitFor("rollback", 15*time.Second, func(st status) bool { return st.Phase == "Degraded" })
	t.Logf("rolled back %.1fs after traffic started: %s", time.Since(began).Seconds(), st.Message)
	for _, want := range []string{"error-rate", "canary", "stable", "%"} {
		if !strings.Contains(st.Message, want) {
			t.Errorf("message %q does not mention %q", st.Message, want)
		}
	}
	if !strings.Contains(st.Message, "e-value") && !strings.Contains(st.Message, "p=") {
		t.Errorf("message %q gives no evidence", st.Message)
	}
	if st.Weight != 0 || st.ObservedWeight != 0 {
		t.Errorf("after rollback the canary still gets %v%%", st.ObservedWeight)
	}
}

// An identical canary (both 0.5% errors) is not rolled back and completes.
func TestAnalysisPassesAnIdenticalCanary(t *testing.T) {
	s := newAnalysisServer(t, startServiceBackend(t, "v1", 0.005, 2*time.Millisecond),
		startServiceBackend(t, "v2", 0.005, 2*time.Millisecond), "5m", aaJudge)
	s.start()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	load(ctx, s.Listen, 400)
	st := s.waitFor("completion", 40*time.Second, func(st status) bool { return st.Phase == "Healthy" || st.Phase == "Degraded" })
	if st.Phase != "Healthy" || st.StableVersion != "v2" {
		t.Fatalf("A/A canary: %+v", st)
	}
}

// A canary 50% slower is caught.
func TestAnalysisCatchesASlowCanary(t *testing.T) {
	s := newAnalysisServer(t, startServiceBackend(t, "v1", 0, 10*time.Millisecond),
		startServiceBackend(t, "v2", 0, 15*time.Millisecond), "5m", latencyJudge)
	s.start()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	load(ctx, s.Listen, 400)
	st := s.waitFor("rollback of the slow canary", 30*time.Second, func(st status) bool { return st.Phase == "Degraded" || st.Phase == "Healthy" })
	if st.Phase != "Degraded" || !strings.Contains(st.Message, "latency") {
		t.Fatalf("slow canary: %+v", st)
	}
}

// A canary that receives no traffic pauses with reason NoData after
// progressDeadline and is never rolled back for lack of data.
func TestAnalysisWithoutTrafficPausesNoData(t *testing.T) {
	s := newAnalysisServer(t, startServiceBackend(t, "v1", 0, 0),
		startServiceBackend(t, "v2", 0, 0), "3s", errorRateJudge)
	s.start()
	st := s.waitFor("NoData pause", 20*time.Second, func(st status) bool { return st.PauseReason == "NoData" || st.Phase == "Degraded" })
	if st.Phase != "Paused" || st.PauseReason != "NoData" {
		t.Fatalf("no traffic: %+v", st)
	}
	time.Sleep(3 * time.Second) // the pause must hold: nothing rolls it back
	if st := s.status(); st.Phase != "Paused" || st.PauseReason != "NoData" {
		t.Fatalf("no traffic, later: %+v", st)
	}
	var runs struct {
		Items []struct {
			Phase   string `json:"phase"`
			Metrics []struct {
				Phase  string `json:"phase"`
				NoData int    `json:"noData"`
			} `json:"metrics"`
		} `json:"items"`
	}
	s.getJSON("/api/v1/rollouts/shop/analysisruns", &runs)
	if len(runs.Items) == 0 || len(runs.Items[0].Metrics) == 0 {
		t.Fatalf("analysis runs: %+v", runs)
	}
	if out, code := s.cli("get", "analysisruns", "shop"); code != 0 || !strings.Contains(out, "NoData") {
		t.Fatalf("get analysisruns: exit %d: %s", code, out)
	}
}

// Neither version has any error: the error-rate judge's absolute margin
// lets the canary pass as soon as its anytime bound is under the margin,
// long before maxDuration (the ratio of two zero rates is never bounded,
// so without the margin the step would wait for the limit). Issue 15.
func TestAnalysisPassesACanaryWithoutErrorsBeforeMaxDuration(t *testing.T) {
	const judgeWithoutErrors = `    - name: error-rate
      provider: {builtin: {}}
      judge: {compare: error-rate, maxRelativeIncrease: 0.5, maxAbsoluteIncrease: 1, alpha: 0.01, maxDuration: 3m}
`
	s := newAnalysisServer(t, startServiceBackend(t, "v1", 0, 2*time.Millisecond),
		startServiceBackend(t, "v2", 0, 2*time.Millisecond), "5m", judgeWithoutErrors)
	s.start()
	s.waitFor("the analysis step", 10*time.Second, func(st status) bool { return st.StepIndex == 1 })
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	began := time.Now()
	load(ctx, s.Listen, 400)
	// 1% margin, α' = 3/8 of 0.01, half the mixture on a rate of 0:
	// about ln(1/0.001875)/0.01 ≈ 630 canary requests, 32 s at 20 req/s.
	st := s.waitFor("completion", 2*time.Minute, func(st status) bool { return st.Phase == "Healthy" || st.Phase == "Degraded" })
	took := time.Since(began)
	if st.Phase != "Healthy" || st.StableVersion != "v2" {
		t.Fatalf("A/A canary without errors: %+v", st)
	}
	var runs struct {
		Items []struct {
			Phase   string `json:"phase"`
			Metrics []struct {
				Name         string `json:"name"`
				Phase        string `json:"phase"`
				Measurements []struct {
					Phase   string `json:"phase"`
					Message string `json:"message"`
				} `json:"measurements"`
			} `json:"metrics"`
		} `json:"items"`
	}
	s.getJSON("/api/v1/rollouts/shop/analysisruns", &runs)
	if len(runs.Items) == 0 || len(runs.Items[0].Metrics) == 0 || len(runs.Items[0].Metrics[0].Measurements) == 0 {
		t.Fatalf("analysis runs: %+v", runs)
	}
	ms := runs.Items[0].Metrics[0].Measurements
	last := ms[len(ms)-1]
	if last.Phase != "Successful" || !strings.Contains(last.Message, "non-inferiority shown") || strings.Contains(last.Message, "onLimit") {
		t.Fatalf("the judge did not pass the canary on evidence: %+v", last)
	}
	t.Logf("completed %.1fs after traffic started (maxDuration 3m): %s", took.Seconds(), last.Message)
}
