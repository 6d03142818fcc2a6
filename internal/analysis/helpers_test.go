package analysis_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/analysis/judge"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// t0 is when every test run starts.
var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// metric builds a prometheus metric with the given options; limits left
// nil take their defaults, as an unloaded template would.
func metric(name string, opts ...func(*spec.Metric)) spec.Metric {
	m := spec.Metric{Name: name, Provider: spec.Provider{Prometheus: &spec.PrometheusProvider{Address: "http://prom:9090", Query: "up"}}}
	for _, o := range opts {
		o(&m)
	}
	return m
}

func success(c string) func(*spec.Metric) { return func(m *spec.Metric) { m.SuccessCondition = c } }
func failure(c string) func(*spec.Metric) { return func(m *spec.Metric) { m.FailureCondition = c } }
func interval(d time.Duration) func(*spec.Metric) {
	return func(m *spec.Metric) { v := spec.Duration(d); m.Interval = &v }
}
func initialDelay(d time.Duration) func(*spec.Metric) {
	return func(m *spec.Metric) { v := spec.Duration(d); m.InitialDelay = &v }
}
func count(n int) func(*spec.Metric)        { return func(m *spec.Metric) { m.Count = &n } }
func failureLimit(n int) func(*spec.Metric) { return func(m *spec.Metric) { m.FailureLimit = &n } }
func inconclusiveLimit(n int) func(*spec.Metric) {
	return func(m *spec.Metric) { m.InconclusiveLimit = &n }
}
func consecutiveErrorLimit(n int) func(*spec.Metric) {
	return func(m *spec.Metric) { m.ConsecutiveErrorLimit = &n }
}
func consecutiveSuccessLimit(n int) func(*spec.Metric) {
	return func(m *spec.Metric) { m.ConsecutiveSuccessLimit = &n }
}
func onNoData(p string) func(*spec.Metric) { return func(m *spec.Metric) { m.OnNoData = p } }
func dryRun(m *spec.Metric)                { m.DryRun = true }

// judged makes the metric a builtin judge metric (SPEC §5.4).
func judged(m *spec.Metric) {
	m.Provider = spec.Provider{Builtin: &spec.BuiltinProvider{}}
	m.Judge = &spec.Judge{Compare: spec.JudgeCompareErrorRate, Method: spec.JudgeMethodSequential}
}

// Outcomes.
func val(v any) analysis.Outcome { return analysis.Outcome{Result: provider.Result{Value: v}} }
func vec(xs ...float64) analysis.Outcome {
	l := make([]any, len(xs))
	for i, x := range xs {
		l[i] = x
	}
	return val(l)
}
func noData() analysis.Outcome {
	return analysis.Outcome{Err: fmt.Errorf("prometheus query up: empty vector: %w", provider.ErrNoData)}
}
func queryErr() analysis.Outcome {
	return analysis.Outcome{Err: errors.New("query prometheus http://prom:9090: connection refused")}
}
func versions(canaryReq, canaryErr, stableReq, stableErr int64) analysis.Outcome {
	return analysis.Outcome{Result: provider.Result{
		Value: map[string]any{"canary": map[string]any{"requests": canaryReq}, "stable": map[string]any{"requests": stableReq}},
		Versions: &provider.Versions{
			Canary: provider.Sample{Requests: canaryReq, Errors: canaryErr},
			Stable: provider.Sample{Requests: stableReq, Errors: stableErr},
		},
	}}
}

// driver plays a controller: it measures a metric when it is due and
// books the outcome with Record.
type driver struct {
	t       *testing.T
	metrics []spec.Metric
	run     analysis.Run
	judges  analysis.JudgeFactory
	now     time.Time
}

func newDriver(t *testing.T, metrics ...spec.Metric) *driver {
	t.Helper()
	return &driver{t: t, metrics: metrics, run: analysis.NewRun("run-1", analysis.KindStep, 3, []string{"tmpl"}, metrics, t0), now: t0}
}

// record books out for metric i at the metric's NextAt (the query takes
// no time), as a controller that measures exactly when due would.
func (d *driver) record(i int, out analysis.Outcome) {
	d.t.Helper()
	at := d.run.Metrics[i].NextAt
	if at.IsZero() {
		d.t.Fatalf("metric %d (%s) is not scheduled: phase %s", i, d.run.Metrics[i].Name, d.run.Metrics[i].Phase)
	}
	d.recordAt(i, out, at)
}

func (d *driver) recordAt(i int, out analysis.Outcome, at time.Time) {
	d.t.Helper()
	if out.StartedAt.IsZero() {
		out.StartedAt, out.FinishedAt = at, at
	}
	r, err := analysis.Record(d.run, d.metrics, i, out, d.judges, at)
	if err != nil {
		d.t.Fatalf("Record(metric %d at %s): %v", i, at.Sub(t0), err)
	}
	d.run, d.now = r, at
}

func (d *driver) records(i int, outs ...analysis.Outcome) {
	d.t.Helper()
	for _, o := range outs {
		d.record(i, o)
	}
}

func (d *driver) metric(i int) analysis.MetricRun { return d.run.Metrics[i] }

func (d *driver) last(i int) analysis.Measurement {
	ms := d.run.Metrics[i].Measurements
	if len(ms) == 0 {
		d.t.Fatalf("metric %d has no measurements", i)
	}
	return ms[len(ms)-1]
}

// counters is the part of a MetricRun most tests compare.
type counters struct {
	Phase                                                  analysis.Phase
	Count, Successful, Failed, Inconclusive, Error, NoData int
	ConsecutiveErrors                                      int
}

func countersOf(mr analysis.MetricRun) counters {
	return counters{mr.Phase, mr.Count, mr.Successful, mr.Failed, mr.Inconclusive, mr.Error, mr.NoData, mr.ConsecutiveErrors}
}

// fakeJudge answers scripted decisions and remembers what it was asked.
// Its state after call n is "sN".
type fakeJudge struct {
	script []fakeAnswer
	calls  []fakeCall
}

type fakeAnswer struct {
	d   judge.Decision
	err error
}

type fakeCall struct {
	state []byte
	in    judge.Input
}

func (f *fakeJudge) Assess(state []byte, in judge.Input) (judge.Decision, []byte, error) {
	n := len(f.calls)
	f.calls = append(f.calls, fakeCall{state, in})
	if n >= len(f.script) {
		return judge.Decision{}, nil, fmt.Errorf("fake judge: no answer scripted for call %d", n+1)
	}
	a := f.script[n]
	if a.err != nil {
		return judge.Decision{}, []byte("must not be stored"), a.err
	}
	return a.d, []byte(fmt.Sprintf("s%d", n+1)), nil
}

func (f *fakeJudge) factory() analysis.JudgeFactory {
	return func(spec.Judge) (judge.Judge, error) { return f, nil }
}

func decide(v judge.Verdict, msg string) fakeAnswer {
	return fakeAnswer{d: judge.Decision{Verdict: v, Message: msg}}
}
