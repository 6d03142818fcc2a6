// Package demo runs a whole canary release on this machine with nothing
// installed: two versions of a small service, the real proxy and store,
// a load generator, and a walk through the steps that rolls back a canary
// that misbehaves.
package demo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/app"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/rollout"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// Scenario says how the canary behaves.
type Scenario string

// Scenarios.
const (
	Healthy Scenario = "healthy"
	Errors  Scenario = "errors"
	Latency Scenario = "latency"
)

// Valid reports whether s is a known scenario.
func (s Scenario) Valid() bool { return s == Healthy || s == Errors || s == Latency }

// Options configure a demo run.
type Options struct {
	Scenario    Scenario
	KeepRunning bool
	Out         io.Writer
	// StepDuration is how long each weight is held (default 4s).
	StepDuration time.Duration
	// RPS is the load generator's rate (default 400).
	RPS int
	// Live redraws the progress line in place (for a terminal); otherwise a
	// new line is printed every two seconds, which reads well in CI logs.
	Live bool
}

// Outcome is how the release ended.
type Outcome struct {
	Completed  bool
	RolledBack bool
	Reason     string
}

// Expected reports whether the outcome is the one the scenario should give.
func (o Outcome) Expected(s Scenario) bool {
	if s == Healthy {
		return o.Completed
	}
	return o.RolledBack
}

// service is one demo version: base latency, error rate.
type service struct {
	version   string
	latency   time.Duration
	errorRate float64
}

func (s service) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			io.WriteString(w, "ok")
			return
		}
		// Latency with a long tail: base × (0.5 .. 1.5), 1% of requests ×4.
		d := time.Duration(float64(s.latency) * (0.5 + rand.Float64()))
		if rand.Float64() < 0.01 {
			d *= 4
		}
		time.Sleep(d)
		w.Header().Set("Content-Type", "text/plain")
		if rand.Float64() < s.errorRate {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "boom from "+s.version+"\n")
			return
		}
		io.WriteString(w, "hello from "+s.version+"\n")
	})
}

func serve(ctx context.Context, h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Run plays the scenario and returns its outcome.
func Run(ctx context.Context, o Options) (Outcome, error) {
	if o.StepDuration <= 0 {
		o.StepDuration = 4 * time.Second
	}
	if o.RPS <= 0 {
		o.RPS = 400
	}
	out := o.Out
	stable := service{version: "v1", latency: 8 * time.Millisecond, errorRate: 0.002}
	canary := service{version: "v2", latency: 8 * time.Millisecond, errorRate: 0.002}
	switch o.Scenario {
	case Errors:
		canary.errorRate = 0.08
	case Latency:
		canary.latency = 12 * time.Millisecond
	}

	stableURL, stopStable, err := serve(ctx, stable.handler())
	if err != nil {
		return Outcome{}, err
	}
	defer stopStable()
	canaryURL, stopCanary, err := serve(ctx, canary.handler())
	if err != nil {
		return Outcome{}, err
	}
	defer stopCanary()
	listen, err := freeAddr()
	if err != nil {
		return Outcome{}, err
	}
	dataDir, err := os.MkdirTemp("", "coalmine-demo-")
	if err != nil {
		return Outcome{}, err
	}
	defer os.RemoveAll(dataDir)

	r := spec.Rollout{APIVersion: spec.APIVersion, Kind: spec.KindRollout, Metadata: spec.Metadata{Name: "demo"},
		Spec: spec.RolloutSpec{
			Listen: listen,
			Stable: spec.VersionSpec{Version: "v1", Endpoints: []string{stableURL}},
			Canary: &spec.VersionSpec{Version: "v2", Endpoints: []string{canaryURL}},
		}}
	// Each weight is followed by an analysis step: the sequential judges
	// compare canary with stable on the proxy's own measurements, and the
	// controller promotes or rolls back on their verdict, exactly as it
	// does for a real service.
	for _, pct := range []float64{1, 5, 25, 50} {
		r.Spec.Strategy.Canary.Steps = append(r.Spec.Strategy.Canary.Steps, spec.Step{SetWeight: &pct},
			spec.Step{Analysis: &spec.AnalysisStep{Templates: []spec.TemplateRef{{TemplateName: "canary-vs-stable"}}}})
	}
	full := 100.0
	r.Spec.Strategy.Canary.Steps = append(r.Spec.Strategy.Canary.Steps, spec.Step{SetWeight: &full})
	r.SetDefaults()
	r.Spec.TrafficRouting.Assignment.UserHeader = "X-User-ID"
	if errs := r.Validate(); len(errs) > 0 {
		return Outcome{}, fmt.Errorf("demo rollout is invalid: %w", errs)
	}
	tpl := judgesTemplate(o.StepDuration)
	a, err := app.Start(ctx, app.Config{Rollouts: []spec.Rollout{r}, Templates: []spec.AnalysisTemplate{tpl}, Admin: "127.0.0.1:0", DataDir: dataDir})
	if err != nil {
		return Outcome{}, err
	}
	defer a.Shutdown(context.Background()) //nolint:errcheck

	fmt.Fprintf(out, "coalmine demo (scenario %s)\n", o.Scenario)
	fmt.Fprintf(out, "  stable v1 at %s, canary v2 at %s (%s)\n", stableURL, canaryURL, describe(o.Scenario))
	fmt.Fprintf(out, "  proxy at http://%s, %d requests/s from 5,000 users\n", listen, o.RPS)
	fmt.Fprintf(out, "  dashboard at http://%s/ (open it in a browser to watch the release)\n", a.AdminAddr())
	fmt.Fprintf(out, "  admin API at http://%s: in another terminal, while the demo runs, try\n", a.AdminAddr())
	fmt.Fprintf(out, "      %s get rollout demo --server http://%s\n", selfCommand(), a.AdminAddr())
	fmt.Fprintf(out, "      curl -s http://%s/metrics | grep coalmine_requests_total\n", a.AdminAddr())
	fmt.Fprintf(out, "  traffic below: requests, error rate and latency of each version since the step began,\n")
	fmt.Fprintf(out, "  the data the judges read (their n= counts lag by up to a second)\n\n")

	loadCtx, stopLoad := context.WithCancel(ctx)
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); generate(loadCtx, "http://"+listen+"/", o.RPS, &sent) }()
	defer func() { stopLoad(); wg.Wait() }()

	stats := a.Telemetry.Rollout("demo")
	outcome := Outcome{}
	ctl := a.Controller
	every := 2 * time.Second
	if o.Live {
		every = 500 * time.Millisecond
	}
	lastStep := -1
	for {
		select {
		case <-ctx.Done():
			return outcome, ctx.Err()
		case <-time.After(every):
		}
		v, err := ctl.Get(ctx, "demo")
		if err != nil {
			return outcome, err
		}
		st := v.Status
		if st.Phase == model.PhaseHealthy {
			outcome = Outcome{Completed: true, Reason: st.Message}
			break
		}
		if st.Phase == model.PhaseDegraded {
			outcome = Outcome{RolledBack: true, Reason: st.Message}
			break
		}
		if st.StepIndex != lastStep {
			if o.Live && lastStep >= 0 {
				fmt.Fprintln(out)
			}
			lastStep = st.StepIndex
			fmt.Fprintf(out, "step %d/%d: %s, canary weight %g%%\n", st.StepIndex+1, st.StepCount, rollout.DescribeStep(v.Spec.Strategy.Canary.Steps[min(st.StepIndex, st.StepCount-1)]), st.Weight)
		}
		s, c := summaries(stats, time.Since(stepStart(st)))
		judged := ""
		if !o.Live { // the live line redraws in place: one line only
			judged = judgeLine(st)
		}
		if o.Live {
			fmt.Fprintf(out, "\r\x1b[2K  stable %s | canary %s%s", line(s), line(c), judged)
		} else {
			fmt.Fprintf(out, "  stable %s | canary %s%s\n", line(s), line(c), judged)
		}
	}
	if o.Live {
		fmt.Fprintln(out)
	}

	fmt.Fprintln(out)
	if outcome.RolledBack {
		fmt.Fprintf(out, "ROLLED BACK: %s\nEvery user is back on v1.\n", outcome.Reason)
	} else {
		fmt.Fprintf(out, "COMPLETED: %s\n", outcome.Reason)
	}
	fmt.Fprintf(out, "(%d requests sent.)\n", sent.Load())
	if o.KeepRunning {
		fmt.Fprintf(out, "\nStill running (--keep-running): proxy http://%s, dashboard and admin API http://%s/. Ctrl-C to stop.\n", listen, a.AdminAddr())
		fmt.Fprintf(out, "In another terminal, every measurement and every event:\n")
		fmt.Fprintf(out, "    %s get analysisruns demo --server http://%s\n", selfCommand(), a.AdminAddr())
		fmt.Fprintf(out, "    %s get events demo --server http://%s\n", selfCommand(), a.AdminAddr())
		<-ctx.Done()
	} else {
		fmt.Fprintf(out, "The demo has stopped and its server with it. To look at every measurement, the events\n")
		fmt.Fprintf(out, "and the dashboard afterwards, run it again with --keep-running:\n")
		fmt.Fprintf(out, "    %s demo --scenario %s --keep-running\n", selfCommand(), o.Scenario)
	}
	return outcome, nil
}

func describe(s Scenario) string {
	switch s {
	case Errors:
		return "the canary fails 8% of requests"
	case Latency:
		return "the canary is 50% slower"
	}
	return "the canary behaves like stable"
}

// summaries are both versions' traffic over the last window: since the
// step began, which is what an analysis step's judges read (a sliding
// window's counts went down and disagreed with the judges' n=).
func summaries(rs *telemetry.RolloutStats, window time.Duration) (stable, canary telemetry.Summary) {
	window = max(window, time.Millisecond)
	for _, v := range rs.Versions() {
		if v.Role() == spec.RoleCanary {
			canary = v.Summary(window)
		} else {
			stable = v.Summary(window)
		}
	}
	return stable, canary
}

// stepStart is when the rollout's current step began (now when unknown).
func stepStart(st model.Status) time.Time {
	if st.StepStartedAt != nil {
		return *st.StepStartedAt
	}
	return time.Now()
}

// selfCommand is how the user runs coalmine: "go run ./cmd/coalmine" under
// go run (the binary is in a temporary build directory), else the path
// the binary was started with.
func selfCommand() string {
	exe := os.Args[0]
	if strings.Contains(exe, "go-build") {
		return "go run ./cmd/coalmine"
	}
	return exe
}

func line(s telemetry.Summary) string {
	return fmt.Sprintf("%6d req %5.1f%% err p50 %5.1fms p99 %5.1fms", s.Requests, 100*s.ErrorRate, s.P50, s.P99)
}

// judgesTemplate is the demo's analysis: the sequential judges on error
// rate and latency, each step judged for at most stepDuration (then it
// passes, as onLimit pass says).
func judgesTemplate(stepDuration time.Duration) spec.AnalysisTemplate {
	alpha, errTol, latTol := 0.01, 0.5, 0.25
	maxDur := spec.Duration(stepDuration)
	t := spec.AnalysisTemplate{APIVersion: spec.APIVersion, Kind: spec.KindAnalysisTemplate, Metadata: spec.Metadata{Name: "canary-vs-stable"},
		Spec: spec.AnalysisTemplateSpec{Metrics: []spec.Metric{
			{Name: "error-rate", Provider: spec.Provider{Builtin: &spec.BuiltinProvider{}},
				Judge: &spec.Judge{Compare: spec.JudgeCompareErrorRate, Method: spec.JudgeMethodSequential, Alpha: &alpha, MaxRelativeIncrease: &errTol, MaxDuration: &maxDur}},
			{Name: "latency", Provider: spec.Provider{Builtin: &spec.BuiltinProvider{}},
				Judge: &spec.Judge{Compare: spec.JudgeCompareLatency, Method: spec.JudgeMethodSequential, Alpha: &alpha, MaxRelativeIncrease: &latTol, MaxDuration: &maxDur}},
		}}}
	t.SetDefaults()
	return t
}

// judgeLine is the latest judge evidence of the running analysis, if any.
func judgeLine(st model.Status) string {
	var parts []string
	for _, r := range st.AnalysisRuns {
		for _, m := range r.Metrics {
			if n := len(m.Measurements); n > 0 {
				parts = append(parts, m.Name+": "+m.Measurements[n-1].Message)
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "\n    " + strings.Join(parts, "\n    ")
}

// generate sends rps requests per second from random users until ctx ends.
func generate(ctx context.Context, url string, rps int, sent *atomic.Int64) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const workers = 32
	tick := time.NewTicker(time.Second / time.Duration(rps))
	defer tick.Stop()
	jobs := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				req.Header.Set("X-User-ID", "user-"+strconv.Itoa(rand.IntN(5000)))
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body) //nolint:errcheck
					resp.Body.Close()
					sent.Add(1)
				}
			}
		}()
	}
	defer func() { close(jobs); wg.Wait() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			select {
			case jobs <- struct{}{}:
			default: // workers saturated: skip rather than queue without bound
			}
		}
	}
}
