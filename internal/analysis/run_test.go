package analysis_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/analysis/judge"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// TestRunVerdict aggregates metric verdicts into the run's (SPEC §5.1,
// Argo's assessRunStatus): the worst decides, the first Failed, Error or
// Inconclusive metric ends the run at once, and a run is Successful only
// when every decisive metric is.
func TestRunVerdict(t *testing.T) {
	pass, fail, unsure := vec(0.99), vec(0.1), vec(0.7)
	oneShot := func(name string, opts ...func(*spec.Metric)) spec.Metric {
		return metric(name, append([]func(*spec.Metric){success("result[0] >= 0.95"), failure("result[0] < 0.5")}, opts...)...)
	}
	forever := func(name string) spec.Metric { return oneShot(name, interval(time.Minute)) }
	type rec struct {
		i   int
		out analysis.Outcome
	}
	tests := []struct {
		name    string
		metrics []spec.Metric
		recs    []rec
		run     analysis.Phase
		metricP []analysis.Phase
		message string
	}{
		// Argo TestAssessRunStatus: one metric still running = run running.
		{"one metric still running", []spec.Metric{oneShot("latency"), oneShot("success-rate", interval(time.Minute), count(2))},
			[]rec{{0, pass}, {1, pass}},
			analysis.PhaseRunning, []analysis.Phase{analysis.PhaseSuccessful, analysis.PhaseRunning}, ""},
		// ... and the worst of the completed metrics.
		{"worst of completed: Failed", []spec.Metric{oneShot("latency"), oneShot("success-rate")},
			[]rec{{0, pass}, {1, fail}},
			analysis.PhaseFailed, []analysis.Phase{analysis.PhaseSuccessful, analysis.PhaseFailed},
			`metric "success-rate" assessed Failed: 1 of 1 measurements failed > failureLimit 0; last: result [0.1] met failureCondition result[0] < 0.5`},
		{"worst of completed: Inconclusive", []spec.Metric{oneShot("latency"), oneShot("success-rate")},
			[]rec{{0, pass}, {1, unsure}},
			analysis.PhaseInconclusive, []analysis.Phase{analysis.PhaseSuccessful, analysis.PhaseInconclusive}, `metric "success-rate" assessed Inconclusive: `},
		{"all successful", []spec.Metric{oneShot("latency"), oneShot("success-rate")},
			[]rec{{0, pass}, {1, pass}},
			analysis.PhaseSuccessful, []analysis.Phase{analysis.PhaseSuccessful, analysis.PhaseSuccessful},
			`every metric assessed Successful ("latency", "success-rate")`},
		// Fast fail: the first Failed metric ends the run while the other
		// still measures; the other is terminated (Argo: Successful).
		{"fast fail", []spec.Metric{forever("latency"), oneShot("success-rate")},
			[]rec{{0, pass}, {1, fail}},
			analysis.PhaseFailed, []analysis.Phase{analysis.PhaseSuccessful, analysis.PhaseFailed}, `metric "success-rate" assessed Failed`},
		{"fast error", []spec.Metric{forever("latency"), oneShot("success-rate", consecutiveErrorLimit(1))},
			[]rec{{0, pass}, {1, queryErr()}, {1, queryErr()}},
			analysis.PhaseError, []analysis.Phase{analysis.PhaseSuccessful, analysis.PhaseError}, `metric "success-rate" assessed Error: 2 consecutive errors > consecutiveErrorLimit 1`},
		// Argo's IsTerminating stops a run on Inconclusive too.
		{"inconclusive ends the run", []spec.Metric{forever("latency"), oneShot("success-rate")},
			[]rec{{1, unsure}},
			analysis.PhaseInconclusive, []analysis.Phase{analysis.PhaseSkipped, analysis.PhaseInconclusive}, ""},
		// Argo docs "Background Analysis": no end time; only a failure or
		// Terminate ends it.
		{"background runs until terminated", []spec.Metric{forever("success-rate")},
			[]rec{{0, pass}, {0, pass}, {0, pass}, {0, pass}, {0, pass}, {0, pass}},
			analysis.PhaseRunning, []analysis.Phase{analysis.PhaseRunning}, ""},

		// Argo docs "Dry-Run Mode": total-5xx-errors in dry-run fails, the
		// run passes; the message reports the dry-run result.
		{"dry-run failure is not decisive", []spec.Metric{
			metric("total-5xx-errors", failure("result[0] >= 10"), interval(5*time.Minute), count(4), failureLimit(3), dryRun),
			metric("total-4xx-errors", failure("result[0] >= 10"), interval(5*time.Minute), count(4), failureLimit(3)),
		},
			[]rec{{0, vec(12)}, {1, vec(1)}, {0, vec(12)}, {1, vec(1)}, {0, vec(12)}, {1, vec(1)}, {0, vec(12)}, {1, vec(1)}},
			analysis.PhaseSuccessful, []analysis.Phase{analysis.PhaseFailed, analysis.PhaseSuccessful},
			`metric "total-4xx-errors" assessed Successful: count 4 reached: 4 successful; last: result [1] did not meet failureCondition result[0] >= 10; dry-run, not decisive: "total-5xx-errors" Failed`},
		// Argo docs: dryRun `.*`: every metric fails, the run passes.
		{"every metric dry-run", []spec.Metric{
			metric("total-5xx-errors", failure("result[0] >= 10"), dryRun),
			metric("total-4xx-errors", failure("result[0] >= 10"), dryRun),
		},
			[]rec{{0, vec(12)}, {1, vec(12)}},
			analysis.PhaseSuccessful, []analysis.Phase{analysis.PhaseFailed, analysis.PhaseFailed},
			`every metric is dry-run, so none decides; dry-run, not decisive: "total-5xx-errors" Failed, "total-4xx-errors" Failed`},
		{"every metric dry-run waits for all of them", []spec.Metric{
			metric("a", failure("result[0] >= 10"), dryRun),
			metric("b", failure("result[0] >= 10"), interval(time.Minute), dryRun),
		},
			[]rec{{0, vec(12)}, {1, vec(1)}, {1, vec(1)}},
			analysis.PhaseRunning, []analysis.Phase{analysis.PhaseFailed, analysis.PhaseRunning}, ""},
		// consecutiveSuccessLimit as in Argo's assessMetricStatus: the
		// streak ends the metric early; count reached without it is
		// Inconclusive, or Failed when failureLimit is -1.
		{"consecutive successes end the metric early", []spec.Metric{oneShot("m", interval(time.Minute), count(5), consecutiveSuccessLimit(2))},
			[]rec{{0, pass}, {0, pass}},
			analysis.PhaseSuccessful, []analysis.Phase{analysis.PhaseSuccessful}, `metric "m" assessed Successful: 2 successful measurements in a row reached consecutiveSuccessLimit`},
		{"count reached without the streak", []spec.Metric{oneShot("m", interval(time.Minute), count(3), consecutiveSuccessLimit(2), failureLimit(1))},
			[]rec{{0, pass}, {0, fail}, {0, pass}},
			analysis.PhaseInconclusive, []analysis.Phase{analysis.PhaseInconclusive}, `metric "m" assessed Inconclusive: count 3 reached without 2 successful measurements in a row`},
		{"count reached without the streak, no failure limit", []spec.Metric{oneShot("m", interval(time.Minute), count(3), consecutiveSuccessLimit(2), failureLimit(-1))},
			[]rec{{0, pass}, {0, fail}, {0, pass}},
			analysis.PhaseFailed, []analysis.Phase{analysis.PhaseFailed}, `metric "m" assessed Failed: count 3 reached without 2 successful measurements in a row`},
		{"an error breaks the streak", []spec.Metric{oneShot("m", interval(time.Minute), count(5), consecutiveSuccessLimit(2))},
			[]rec{{0, pass}, {0, queryErr()}, {0, pass}},
			analysis.PhaseRunning, []analysis.Phase{analysis.PhaseRunning}, ""},
		// As in Argo, the run waits for its dry-run metrics: with the
		// decisive metric done, the run goes on until the dry-run one has
		// measured its count.
		{"dry-run metric holds the run until it ends", []spec.Metric{
			metric("shadow", success("true"), interval(time.Minute), count(2), dryRun),
			oneShot("success-rate"),
		},
			[]rec{{0, vec(1)}, {1, pass}},
			analysis.PhaseRunning, []analysis.Phase{analysis.PhaseRunning, analysis.PhaseSuccessful}, ""},
		{"dry-run metric ends, then the run", []spec.Metric{
			metric("shadow", success("false"), interval(time.Minute), count(2), dryRun),
			oneShot("success-rate"),
		},
			[]rec{{0, vec(1)}, {1, pass}},
			analysis.PhaseSuccessful, []analysis.Phase{analysis.PhaseFailed, analysis.PhaseSuccessful}, ""},
		{"dry-run metric keeps measuring after its own failure", []spec.Metric{
			metric("shadow", success("false"), dryRun),
			forever("success-rate"),
		},
			[]rec{{0, vec(1)}, {1, pass}, {1, pass}},
			analysis.PhaseRunning, []analysis.Phase{analysis.PhaseFailed, analysis.PhaseRunning}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, tt.metrics...)
			for _, r := range tt.recs {
				d.record(r.i, r.out)
			}
			if d.run.Phase != tt.run {
				t.Errorf("run phase %s, want %s (%s)", d.run.Phase, tt.run, d.run.Message)
			}
			for i, want := range tt.metricP {
				if got := d.metric(i).Phase; got != want {
					t.Errorf("metric %s phase %s, want %s (%s)", d.metric(i).Name, got, want, d.metric(i).Message)
				}
			}
			if !strings.HasPrefix(d.run.Message, tt.message) {
				t.Errorf("run message\n got %q\nwant prefix %q", d.run.Message, tt.message)
			}
			if tt.run.Completed() {
				if !d.run.FinishedAt.Equal(d.now) {
					t.Errorf("finished at %v, want %v", d.run.FinishedAt, d.now)
				}
				if due, next := analysis.Due(d.run, d.metrics, d.now.Add(time.Hour)); due != nil || !next.IsZero() {
					t.Errorf("an ended run has due %v next %v", due, next)
				}
				_, err := analysis.Record(d.run, d.metrics, 0, pass, nil, d.now)
				if !errors.Is(err, analysis.ErrNotRunning) {
					t.Errorf("Record on an ended run: %v, want ErrNotRunning", err)
				}
			}
		})
	}
}

func TestRecordOnEndedMetric(t *testing.T) {
	d := newDriver(t, metric("a", success("true")), metric("b", success("true"), interval(time.Minute)))
	d.record(0, vec(1))
	if _, err := analysis.Record(d.run, d.metrics, 0, vec(1), nil, d.now); !errors.Is(err, analysis.ErrNotRunning) {
		t.Fatalf("Record on an ended metric: %v, want ErrNotRunning", err)
	}
}

// TestTerminate ends a run from outside (promote, abort), following Argo:
// what is still running ends Successful, except a metric waiting for data,
// which ends NoData so that no data is never folded into success.
func TestTerminate(t *testing.T) {
	later := t0.Add(time.Hour)
	t.Run("running metrics end Successful, unmeasured ones Skipped", func(t *testing.T) {
		d := newDriver(t,
			metric("success-rate", success("result[0] >= 0.95"), interval(time.Minute)),
			metric("latency", success("result[0] < 300"), initialDelay(2*time.Hour)), // never measured: no verdict (Argo says Successful)
		)
		d.records(0, vec(0.99), vec(0.98))
		r := analysis.Terminate(d.run, later, "rollout promoted")
		if r.Phase != analysis.PhaseSuccessful || !r.FinishedAt.Equal(later) {
			t.Fatalf("run %s at %v", r.Phase, r.FinishedAt)
		}
		for i, want := range []analysis.Phase{analysis.PhaseSuccessful, analysis.PhaseSkipped} {
			if mr := r.Metrics[i]; mr.Phase != want || !mr.NextAt.IsZero() {
				t.Errorf("metric %s %s next %v, want %s", mr.Name, mr.Phase, mr.NextAt, want)
			}
		}
		if want := `run terminated (rollout promoted); every metric assessed Successful ("success-rate"); not measured: "latency"`; r.Message != want {
			t.Errorf("message %q, want %q", r.Message, want)
		}
		if want := "success-rate: Successful (terminated: rollout promoted; 2 successful)"; r.Metrics[0].Message != want {
			t.Errorf("metric message %q, want %q", r.Metrics[0].Message, want)
		}
		if d.run.Phase != analysis.PhaseRunning || d.run.Metrics[0].Phase != analysis.PhaseRunning {
			t.Error("Terminate modified the run it was given")
		}
		if again := analysis.Terminate(r, later.Add(time.Hour), "again"); !reflect.DeepEqual(again, r) {
			t.Error("terminating an ended run changed it")
		}
	})
	t.Run("a metric waiting for data ends NoData", func(t *testing.T) {
		d := newDriver(t,
			metric("success-rate", success("result[0] >= 0.95"), interval(time.Minute)),
			metric("latency", success("result[0] < 300"), interval(time.Minute)),
		)
		d.record(0, vec(0.99))
		d.record(1, noData())
		r := analysis.Terminate(d.run, later, "rollout promoted")
		if r.Phase != analysis.PhaseNoData || r.Metrics[1].Phase != analysis.PhaseNoData || r.Metrics[0].Phase != analysis.PhaseSuccessful {
			t.Fatalf("run %s, metrics %s %s", r.Phase, r.Metrics[0].Phase, r.Metrics[1].Phase)
		}
		if want := `run terminated (rollout promoted); metric "latency" assessed NoData: no data since 2026-03-14T12:00:00Z (1 no data)`; r.Message != want {
			t.Errorf("message\n got %q\nwant %q", r.Message, want)
		}
		if got := analysis.Event(analysis.PhaseRunning, r.Phase); got != analysis.EventNoData {
			t.Errorf("event %q", got)
		}
	})
	t.Run("an undecided judge evaluation is closed, without a verdict", func(t *testing.T) {
		f := &fakeJudge{script: []fakeAnswer{decide(judge.Continue, "e-value 3 < 100")}}
		d := newDriver(t, metric("error-rate", judged))
		d.judges = f.factory()
		d.record(0, versions(10, 0, 100, 0))
		r := analysis.Terminate(d.run, later, "rollout aborted")
		m := r.Metrics[0].Measurements[0]
		if m.Phase != analysis.PhaseSkipped || !m.FinishedAt.Equal(later) || m.Message != "terminated (rollout aborted) before the judge decided; last: e-value 3 < 100" {
			t.Errorf("measurement %+v", m)
		}
		if mr := r.Metrics[0]; mr.Phase != analysis.PhaseSkipped || mr.Message != "error-rate: Skipped: no verdict, the run ended (rollout aborted) before the judge decided; last: e-value 3 < 100" {
			t.Errorf("metric %s %q, want Skipped saying the judge had not decided", mr.Phase, mr.Message)
		}
		if d.run.Metrics[0].Measurements[0].Phase != analysis.PhaseRunning {
			t.Error("Terminate modified the measurements of the run it was given")
		}
	})
}

// TestRecordDoesNotAlias makes sure a Run handed to Record stays as it
// was: the controller may keep the old state until the new one is saved.
func TestRecordDoesNotAlias(t *testing.T) {
	d := newDriver(t, metric("a", success("result[0] > 0"), interval(time.Minute)), metric("b", success("true"), interval(time.Minute)))
	d.records(0, vec(1), vec(2))
	before := d.run
	snapshot, _ := json.Marshal(before)
	if _, err := analysis.Record(before, d.metrics, 0, vec(3), nil, d.now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(before)
	if string(snapshot) != string(after) {
		t.Fatalf("Record modified its input:\n%s\n%s", snapshot, after)
	}
}

// TestJSONRoundTrip: a run persisted and read back is equal, and goes on
// exactly as the original would (restart safety, SPEC §4).
func TestJSONRoundTrip(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	start := time.Date(2026, 3, 14, 13, 0, 0, 123456789, cet) // t0 in another zone, with nanoseconds
	ps, e := 0.004, math.Inf(1)
	f := &fakeJudge{script: []fakeAnswer{
		{d: judge.Decision{Verdict: judge.Continue, Message: "undecided", Evidence: model.Evidence{
			Method: "sequential", PValue: &ps, EValue: &e, Interval: []float64{1.2, math.Inf(1)}, Threshold: 100, Alpha: 0.01,
			Canary: model.EvidenceSample{Requests: 10, Quantiles: map[string]float64{"p99": 250}},
		}}},
		decide(judge.Continue, "undecided"),
		decide(judge.Successful, "fine"),
	}}
	metrics := []spec.Metric{
		metric("error-rate", judged),
		metric("success-rate", success("isNaN(result[0]) || result[0] >= 0.95"), interval(time.Minute), count(3), failureLimit(1)),
		metric("shadow", failure("result[0] > 1"), interval(time.Minute), dryRun),
		metric("latency", success("result[0] < 300"), interval(time.Minute), onNoData(spec.OnNoDataWait)),
	}
	run := analysis.NewRun("checkout-7-step-4", analysis.KindBackground, 1, []string{"golden-signals", "canary-vs-stable"}, metrics, start)
	play := func(r analysis.Run, at time.Time, i int, out analysis.Outcome, j analysis.JudgeFactory) analysis.Run {
		t.Helper()
		out.StartedAt, out.FinishedAt = at, at.Add(150*time.Millisecond)
		r, err := analysis.Record(r, metrics, i, out, j, at.Add(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	run = play(run, start, 0, versions(10, 0, 100, 0), f.factory())
	run = play(run, start, 1, vec(math.NaN(), 0.5), nil)
	run = play(run, start, 2, vec(3), nil)
	run = play(run, start, 3, noData(), nil)
	run = play(run, start.Add(10*time.Second), 1, queryErr(), nil)

	b, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	var back analysis.Run
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(run, back) {
		b2, _ := json.Marshal(back)
		t.Fatalf("round trip differs:\n%s\n%s", b, b2)
	}
	if run.Metrics[0].Measurements[0].Evidence.EValue != nil || run.Metrics[0].Measurements[0].Evidence.Interval[1] != math.MaxFloat64 {
		t.Errorf("non-finite evidence not made storable: %+v", run.Metrics[0].Measurements[0].Evidence)
	}
	if got := string(run.Metrics[1].Measurements[0].Value); got != `["NaN",0.5]` {
		t.Errorf("NaN value stored as %s", got)
	}

	// Both copies go on identically, including the judge's state.
	f2 := &fakeJudge{script: f.script}
	f2.calls = append(f2.calls, f.calls...)
	cont := func(r analysis.Run, fj *fakeJudge) analysis.Run {
		r = play(r, start.Add(time.Second), 0, versions(20, 0, 200, 0), fj.factory())
		r = play(r, start.Add(20*time.Second), 1, vec(0.99), nil)
		r = play(r, start.Add(2*time.Second), 0, versions(30, 0, 300, 0), fj.factory())
		return analysis.Terminate(r, start.Add(time.Hour), "rollout completed")
	}
	a, z := cont(run, f), cont(back, f2)
	if !reflect.DeepEqual(a, z) {
		ja, _ := json.Marshal(a)
		jz, _ := json.Marshal(z)
		t.Fatalf("a restored run went on differently:\n%s\n%s", ja, jz)
	}
	if string(f2.calls[len(f2.calls)-1].state) != "s2" {
		t.Errorf("the restored judge resumed from state %q, want s2", f2.calls[len(f2.calls)-1].state)
	}
	if a.Phase != analysis.PhaseNoData {
		t.Errorf("final phase %s, want NoData (latency was waiting for data)", a.Phase)
	}
}
