package rollout

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
)

// scriptedProvider answers queries with the values a test sets: a number
// the conditions judge, no data, or an error.
type scriptedProvider struct {
	mu    sync.Mutex
	value any
	err   error
	calls int
}

func (p *scriptedProvider) set(v any, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.value, p.err = v, err
}

func (p *scriptedProvider) Query(context.Context, provider.Query) (provider.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return provider.Result{Value: p.value}, p.err
}

// analysisHarness is a controller with one rollout whose steps include an
// analysis, its measurements answered by a scripted provider.
type analysisHarness struct {
	t     *testing.T
	ctx   context.Context
	clock *fakeClock
	prov  *scriptedProvider
	c     *Controller
}

func successRateTemplate() spec.AnalysisTemplate {
	interval := spec.Duration(10 * time.Second)
	count := 3
	t := spec.AnalysisTemplate{APIVersion: spec.APIVersion, Kind: spec.KindAnalysisTemplate, Metadata: spec.Metadata{Name: "success-rate"},
		Spec: spec.AnalysisTemplateSpec{Metrics: []spec.Metric{{
			Name: "success-rate", Interval: &interval, Count: &count,
			SuccessCondition: "result >= 0.99",
			Provider:         spec.Provider{Web: &spec.WebProvider{URL: "http://metrics.invalid/rate", JSONPath: "{$.rate}"}},
		}}}}
	t.SetDefaults()
	return t
}

func newAnalysisHarness(t *testing.T, r spec.Rollout) *analysisHarness {
	t.Helper()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &analysisHarness{t: t, ctx: context.Background(), clock: newFakeClock(), prov: &scriptedProvider{}}
	h.c = New(Config{Router: newFakeRouter(st), Store: st, Now: h.clock.Now, Providers: Providers{Web: h.prov}})
	if err := h.c.Load(h.ctx, []spec.Rollout{r}, []spec.AnalysisTemplate{successRateTemplate()}, true); err != nil {
		t.Fatal(err)
	}
	return h
}

// tick reconciles and takes the measurements that are due.
func (h *analysisHarness) tick() model.Status {
	h.t.Helper()
	for range 3 {
		if err := h.c.Reconcile(h.ctx, "shop"); err != nil {
			h.t.Fatal(err)
		}
		h.c.MeasureNow(h.ctx)
	}
	v, err := h.c.Get(h.ctx, "shop")
	if err != nil {
		h.t.Fatal(err)
	}
	return v.Status
}

func (h *analysisHarness) eventTypes() []string {
	evs, err := h.c.Events(h.ctx, "shop", 0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func analysisRollout() spec.Rollout {
	return testRollout("shop", "v1", "v2", []spec.Step{setWeightStep(20), analysisStep("success-rate"), setWeightStep(100)})
}

func TestAnalysisStepPassesAndTheRolloutCompletes(t *testing.T) {
	h := newAnalysisHarness(t, analysisRollout())
	h.prov.set(0.999, nil)
	st := h.tick()
	if st.StepIndex != 1 || len(st.AnalysisRuns) != 1 || st.AnalysisRuns[0].Phase != "Running" {
		t.Fatalf("after the first measurement: step %d runs %+v", st.StepIndex, st.AnalysisRuns)
	}
	for range 3 {
		h.clock.Advance(10 * time.Second)
		st = h.tick()
	}
	if st.Phase != model.PhaseHealthy || st.StableVersion != "v2" {
		t.Fatalf("after 3 good measurements: %+v", st)
	}
	types := strings.Join(h.eventTypes(), " ")
	for _, want := range []string{"analysis-started", "analysis-successful", "rollout-completed"} {
		if !strings.Contains(types, want) {
			t.Errorf("events %s lack %s", types, want)
		}
	}
	runs, err := h.c.AnalysisRuns(h.ctx, "shop")
	if err != nil || len(runs) != 1 || runs[0].Phase != "Successful" || runs[0].Metrics[0].Successful != 3 {
		t.Fatalf("analysis runs after completion: %v %+v", err, runs)
	}
}

func TestAnalysisStepFailureAbortsWithTheReason(t *testing.T) {
	h := newAnalysisHarness(t, analysisRollout())
	h.prov.set(0.90, nil)
	st := h.tick()
	if st.Phase != model.PhaseDegraded || st.Weight != 0 {
		t.Fatalf("a failing measurement: %+v", st)
	}
	if !strings.Contains(st.Message, `metric "success-rate" assessed Failed`) || !strings.Contains(st.Message, "0.9") {
		t.Errorf("message %q does not explain the failure with its number", st.Message)
	}
	if types := strings.Join(h.eventTypes(), " "); !strings.Contains(types, "analysis-failed") || !strings.Contains(types, "rollout-aborted") {
		t.Errorf("events: %s", types)
	}
}

func TestAnalysisWithoutDataPausesAndResumesWhenDataComes(t *testing.T) {
	h := newAnalysisHarness(t, analysisRollout())
	h.prov.set(nil, fmt.Errorf("rate: %w", provider.ErrNoData))
	st := h.tick()
	if st.Phase != model.PhaseProgressing {
		t.Fatalf("no data at first: %+v", st)
	}
	// progressDeadline (10m by default) passes without data.
	for range 61 {
		h.clock.Advance(10 * time.Second)
		st = h.tick()
	}
	if st.Phase != model.PhasePaused || st.PauseReason != model.PauseNoData {
		t.Fatalf("no data past progressDeadline: %+v", st)
	}
	if types := strings.Join(h.eventTypes(), " "); !strings.Contains(types, "analysis-nodata") || strings.Contains(types, "rollout-aborted") {
		t.Errorf("events: %s", types)
	}
	// Data comes: the run goes on and passes.
	h.prov.set(1.0, nil)
	for range 4 {
		h.clock.Advance(10 * time.Second)
		st = h.tick()
	}
	if st.Phase != model.PhaseHealthy {
		t.Fatalf("after data came back: %+v", st)
	}
}

func TestAnalysisProviderErrorsEndInErrorAfterTheLimit(t *testing.T) {
	h := newAnalysisHarness(t, analysisRollout())
	h.prov.set(nil, fmt.Errorf("connect to metrics.invalid: connection refused"))
	var st model.Status
	for range 8 {
		st = h.tick()
		h.clock.Advance(10 * time.Second)
	}
	if st.Phase != model.PhaseDegraded || !strings.Contains(st.Message, "Error") || !strings.Contains(st.Message, "connection refused") {
		t.Fatalf("after consecutive errors: %+v", st)
	}
}

func TestPromoteLeavesAnInconclusiveAnalysis(t *testing.T) {
	tpl := successRateTemplate()
	tpl.Spec.Metrics[0].FailureCondition = "result < 0.5"
	r := analysisRollout()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := &analysisHarness{t: t, ctx: context.Background(), clock: newFakeClock(), prov: &scriptedProvider{}}
	h.c = New(Config{Router: newFakeRouter(st), Store: st, Now: h.clock.Now, Providers: Providers{Web: h.prov}})
	if err := h.c.Load(h.ctx, []spec.Rollout{r}, []spec.AnalysisTemplate{tpl}, true); err != nil {
		t.Fatal(err)
	}
	h.prov.set(0.8, nil) // neither condition holds: Inconclusive
	s := h.tick()
	if s.Phase != model.PhasePaused || s.PauseReason != model.PauseInconclusive {
		t.Fatalf("inconclusive: %+v", s)
	}
	if _, err := h.c.Promote(h.ctx, "shop", false); err != nil {
		t.Fatal(err)
	}
	if s = h.tick(); s.Phase != model.PhaseHealthy {
		t.Fatalf("after promote: %+v", s)
	}
}

// A restart in the middle of an analysis keeps its counters and goes on.
func TestAnalysisCountersSurviveARestart(t *testing.T) {
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock, prov := newFakeClock(), &scriptedProvider{}
	start := func() *Controller {
		c := New(Config{Router: newFakeRouter(st), Store: st, Now: clock.Now, Providers: Providers{Web: prov}})
		if err := c.Load(context.Background(), []spec.Rollout{analysisRollout()}, []spec.AnalysisTemplate{successRateTemplate()}, true); err != nil {
			t.Fatal(err)
		}
		return c
	}
	h := &analysisHarness{t: t, ctx: context.Background(), clock: clock, prov: prov, c: start()}
	prov.set(1.0, nil)
	h.tick()
	clock.Advance(10 * time.Second)
	s := h.tick()
	if got := s.AnalysisRuns[0].Metrics[0].Successful; got != 2 {
		t.Fatalf("before the restart: %d successful measurements, want 2", got)
	}
	h.c = start() // kill -9 and start again
	v, _ := h.c.Get(h.ctx, "shop")
	if got := v.Status.AnalysisRuns[0].Metrics[0].Successful; got != 2 {
		t.Fatalf("after the restart: %d successful measurements, want 2", got)
	}
	clock.Advance(10 * time.Second)
	if s = h.tick(); s.Phase != model.PhaseHealthy {
		t.Fatalf("the third measurement after the restart should complete the rollout: %+v", s)
	}
	if prov.calls != 3 {
		t.Errorf("%d queries, want 3: a restart must not measure again what was measured", prov.calls)
	}
}
