package analysis_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/analysis/judge"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// TestContinuousJudge follows a judge metric without interval and count
// (SPEC §5.4): evaluated every second on cumulative data, one Running
// measurement carrying the latest evidence, ended by the first decisive
// verdict, with the judge's state threaded through and its message in the
// run's (SPEC §4's example).
func TestContinuousJudge(t *testing.T) {
	e := 412.0
	ev := model.Evidence{Method: "sequential rate-ratio", EValue: &e, Threshold: 100,
		Canary: model.EvidenceSample{Requests: 812, Errors: 25, ErrorRate: 0.031}, Stable: model.EvidenceSample{Requests: 15402, Errors: 31, ErrorRate: 0.002}}
	f := &fakeJudge{script: []fakeAnswer{
		decide(judge.Continue, "canary 1.0% vs stable 0.2% (n=100/2000): e-value 3 < 100"),
		decide(judge.Continue, "canary 2.0% vs stable 0.2% (n=400/7000): e-value 40 < 100"),
		{d: judge.Decision{Verdict: judge.Failed, Evidence: ev, Message: "canary 3.1% vs stable 0.2% (n=812/15402), e-value 412 > 100"}},
	}}
	d := newDriver(t, metric("error-rate", judged))
	d.judges = f.factory()

	d.record(0, versions(100, 1, 2000, 4))
	if got := countersOf(d.metric(0)); got != (counters{Phase: analysis.PhaseRunning}) {
		t.Fatalf("after Continue: %+v", got)
	}
	if m := d.last(0); m.Phase != analysis.PhaseRunning || m.Evidence == nil {
		t.Fatalf("after Continue the measurement is %s with evidence %v", m.Phase, m.Evidence)
	}
	if got := d.metric(0).NextAt.Sub(d.now); got != analysis.JudgeInterval {
		t.Fatalf("next evaluation in %s, want %s", got, analysis.JudgeInterval)
	}
	d.record(0, versions(400, 8, 7000, 14))
	if n := len(d.metric(0).Measurements); n != 1 {
		t.Fatalf("an undecided judge keeps one measurement, has %d", n)
	}
	if m := d.last(0); !m.StartedAt.Equal(t0) || !m.FinishedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("the running measurement spans %s..%s, want 0s..1s", m.StartedAt.Sub(t0), m.FinishedAt.Sub(t0))
	}
	d.record(0, versions(812, 25, 15402, 31))

	if got := countersOf(d.metric(0)); got != (counters{Phase: analysis.PhaseFailed, Count: 1, Failed: 1}) {
		t.Fatalf("after Failed: %+v", got)
	}
	if want := `metric "error-rate" assessed Failed: canary 3.1% vs stable 0.2% (n=812/15402), e-value 412 > 100`; d.run.Message != want {
		t.Errorf("run message\n got %q\nwant %q", d.run.Message, want)
	}
	if d.run.Phase != analysis.PhaseFailed || !d.run.FinishedAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("run %s finished %v", d.run.Phase, d.run.FinishedAt)
	}
	last := d.last(0)
	if last.Phase != analysis.PhaseFailed || !last.StartedAt.Equal(t0) || last.Evidence == nil || *last.Evidence.EValue != 412 {
		t.Errorf("final measurement %+v", last)
	}

	// The judge saw nil, then each state it returned; cumulative inputs
	// from Result.Versions; the time since the run started.
	wantStates := []string{"", "s1", "s2"}
	for n, c := range f.calls {
		if string(c.state) != wantStates[n] {
			t.Errorf("call %d got state %q, want %q", n+1, c.state, wantStates[n])
		}
		if c.in.Elapsed != time.Duration(n)*time.Second {
			t.Errorf("call %d elapsed %s", n+1, c.in.Elapsed)
		}
	}
	if c := f.calls[2].in; c.Canary.Requests != 812 || c.Canary.Errors != 25 || c.Stable.Requests != 15402 || c.Stable.Errors != 31 {
		t.Errorf("judge input %+v", c)
	}
	if got := string(d.metric(0).JudgeState); got != "s3" {
		t.Errorf("stored judge state %q, want s3", got)
	}
}

// TestJudgeVerdicts covers every other path through a judge metric.
func TestJudgeVerdicts(t *testing.T) {
	factoryErr := func(spec.Judge) (judge.Judge, error) { return nil, errors.New("unknown comparison") }
	tests := []struct {
		name    string
		metric  spec.Metric
		script  []fakeAnswer
		factory analysis.JudgeFactory // nil: the fake
		outs    []analysis.Outcome
		want    counters
		run     analysis.Phase
		message string // substring of the last measurement's message
		state   string
	}{
		{name: "continuous judge succeeds", metric: metric("error-rate", judged),
			script: []fakeAnswer{decide(judge.Continue, "undecided"), decide(judge.Successful, "canary no worse than 1.5x stable")},
			outs:   []analysis.Outcome{versions(10, 0, 100, 0), versions(5000, 2, 50000, 20)},
			want:   counters{Phase: analysis.PhaseSuccessful, Count: 1, Successful: 1}, run: analysis.PhaseSuccessful,
			message: "canary no worse than 1.5x stable", state: "s2"},
		{name: "continuous judge at its limit: inconclusive", metric: metric("error-rate", judged),
			script: []fakeAnswer{decide(judge.Inconclusive, "maxSamples reached without a decision (onLimit: inconclusive)")},
			outs:   []analysis.Outcome{versions(10, 0, 100, 0)},
			want:   counters{Phase: analysis.PhaseInconclusive, Count: 1, Inconclusive: 1}, run: analysis.PhaseInconclusive},
		{name: "continuous judge ignores failureLimit", metric: metric("error-rate", judged, failureLimit(3)),
			script: []fakeAnswer{decide(judge.Failed, "proven worse")},
			outs:   []analysis.Outcome{versions(10, 5, 100, 0)},
			want:   counters{Phase: analysis.PhaseFailed, Count: 1, Failed: 1}, run: analysis.PhaseFailed},
		{name: "below minSamples waits", metric: metric("error-rate", judged),
			script: []fakeAnswer{decide(judge.NoData, "canary 3 < minSamples 100")},
			outs:   []analysis.Outcome{versions(3, 0, 40, 0)},
			want:   counters{Phase: analysis.PhaseRunning, NoData: 1}, run: analysis.PhaseRunning,
			message: "no data: canary 3 < minSamples 100; waiting for data (onNoData: wait)", state: "s1"},
		{name: "no per-version data is an error", metric: metric("error-rate", judged),
			outs: []analysis.Outcome{vec(1)},
			want: counters{Phase: analysis.PhaseRunning, Error: 1, ConsecutiveErrors: 1}, run: analysis.PhaseRunning,
			message: "the judge needs per-version samples"},
		{name: "judge cannot be built", metric: metric("error-rate", judged), factory: factoryErr,
			outs: []analysis.Outcome{versions(1, 0, 1, 0)},
			want: counters{Phase: analysis.PhaseRunning, Error: 1, ConsecutiveErrors: 1}, run: analysis.PhaseRunning,
			message: "build judge: unknown comparison"},
		{name: "judge error keeps the old state", metric: metric("error-rate", judged),
			script: []fakeAnswer{decide(judge.Continue, "undecided"), {err: errors.New("histogram grids differ")}},
			outs:   []analysis.Outcome{versions(1, 0, 1, 0), versions(2, 0, 2, 0)},
			want:   counters{Phase: analysis.PhaseRunning, Error: 1, ConsecutiveErrors: 1}, run: analysis.PhaseRunning,
			message: "judge failed: histogram grids differ", state: "s1"},
		{name: "unknown verdict is an error", metric: metric("error-rate", judged),
			script: []fakeAnswer{decide(judge.Verdict("Maybe"), "?")},
			outs:   []analysis.Outcome{versions(1, 0, 1, 0)},
			want:   counters{Phase: analysis.PhaseRunning, Error: 1, ConsecutiveErrors: 1}, run: analysis.PhaseRunning,
			message: `unknown verdict "Maybe"`},
		{name: "provider error skips the judge", metric: metric("error-rate", judged),
			outs: []analysis.Outcome{queryErr()},
			want: counters{Phase: analysis.PhaseRunning, Error: 1, ConsecutiveErrors: 1}, run: analysis.PhaseRunning},

		// With interval and count the judge is one measurement per
		// interval and the usual limits apply; Continue is not counted.
		{name: "interval judge counts decisive verdicts", metric: metric("error-rate", judged, interval(time.Minute), count(3), failureLimit(1)),
			script: []fakeAnswer{decide(judge.Continue, "undecided"), decide(judge.Failed, "worse"), decide(judge.Successful, "ok"), decide(judge.Successful, "ok")},
			outs:   []analysis.Outcome{versions(1, 0, 1, 0), versions(2, 0, 2, 0), versions(3, 0, 3, 0), versions(4, 0, 4, 0)},
			want:   counters{Phase: analysis.PhaseSuccessful, Count: 3, Successful: 2, Failed: 1}, run: analysis.PhaseSuccessful},
		{name: "interval judge fails past failureLimit", metric: metric("error-rate", judged, interval(time.Minute), count(3), failureLimit(1)),
			script: []fakeAnswer{decide(judge.Failed, "worse"), decide(judge.Failed, "worse again")},
			outs:   []analysis.Outcome{versions(1, 0, 1, 0), versions(2, 0, 2, 0)},
			want:   counters{Phase: analysis.PhaseFailed, Count: 2, Failed: 2}, run: analysis.PhaseFailed},

		// A condition next to a judge acts as a guard: the worse verdict wins.
		{name: "failureCondition guard beats an undecided judge", metric: metric("latency", judged, failure("result.canary.requests > 1000")),
			script: []fakeAnswer{decide(judge.Continue, "undecided")},
			outs:   []analysis.Outcome{versions(5000, 0, 100, 0)},
			want:   counters{Phase: analysis.PhaseFailed, Count: 1, Failed: 1}, run: analysis.PhaseFailed,
			message: `result {"canary":{"requests":5000},"stable":{"requests":100}} met failureCondition result.canary.requests > 1000; judge: undecided`},
		{name: "a quiet guard leaves the judge in charge", metric: metric("latency", judged, failure("result.canary.requests > 1000")),
			script: []fakeAnswer{decide(judge.Continue, "undecided")},
			outs:   []analysis.Outcome{versions(50, 0, 100, 0)},
			want:   counters{Phase: analysis.PhaseRunning}, run: analysis.PhaseRunning, message: "undecided"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeJudge{script: tt.script}
			d := newDriver(t, tt.metric)
			d.judges = f.factory()
			if tt.factory != nil {
				d.judges = tt.factory
			}
			d.records(0, tt.outs...)
			if got := countersOf(d.metric(0)); got != tt.want {
				t.Errorf("got  %+v\nwant %+v\n%s", got, tt.want, d.metric(0).Message)
			}
			if d.run.Phase != tt.run {
				t.Errorf("run phase %s, want %s", d.run.Phase, tt.run)
			}
			if !strings.Contains(d.last(0).Message, tt.message) {
				t.Errorf("last message %q, want it to contain %q", d.last(0).Message, tt.message)
			}
			if tt.state != "" && string(d.metric(0).JudgeState) != tt.state {
				t.Errorf("judge state %q, want %q", d.metric(0).JudgeState, tt.state)
			}
		})
	}
}

// TestOnNoData books a measurement that found nothing by each policy of
// SPEC §5.2; the measurement shows NoData whatever the policy.
func TestOnNoData(t *testing.T) {
	tests := []struct {
		policy string
		want   counters
		run    analysis.Phase
		note   string
	}{
		{"", counters{Phase: analysis.PhaseRunning, NoData: 1}, analysis.PhaseRunning, "waiting for data (onNoData: wait)"},
		{spec.OnNoDataWait, counters{Phase: analysis.PhaseRunning, NoData: 1}, analysis.PhaseRunning, "waiting for data (onNoData: wait)"},
		{spec.OnNoDataInconclusive, counters{Phase: analysis.PhaseInconclusive, Count: 1, Inconclusive: 1, NoData: 1}, analysis.PhaseInconclusive, "counted as Inconclusive (onNoData: inconclusive)"},
		{spec.OnNoDataFail, counters{Phase: analysis.PhaseFailed, Count: 1, Failed: 1, NoData: 1}, analysis.PhaseFailed, "counted as Failed (onNoData: fail)"},
		{spec.OnNoDataPass, counters{Phase: analysis.PhaseSuccessful, Count: 1, Successful: 1, NoData: 1}, analysis.PhaseSuccessful, "counted as Successful (onNoData: pass)"},
	}
	for _, tt := range tests {
		t.Run("policy "+tt.policy, func(t *testing.T) {
			d := newDriver(t, metric("m", success("result[0] >= 0.95"), onNoData(tt.policy)))
			d.record(0, noData())
			if got := countersOf(d.metric(0)); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if d.run.Phase != tt.run {
				t.Errorf("run %s, want %s", d.run.Phase, tt.run)
			}
			m := d.last(0)
			if m.Phase != analysis.PhaseNoData || !strings.HasSuffix(m.Message, tt.note) {
				t.Errorf("measurement %s %q, want NoData ending %q", m.Phase, m.Message, tt.note)
			}
			waiting := tt.policy == "" || tt.policy == spec.OnNoDataWait
			if got := analysis.NoDataSince(d.run); got.IsZero() == waiting {
				t.Errorf("run NoDataSince %v with policy %q", got, tt.policy)
			}
		})
	}
}

// TestNoDataWait follows a metric waiting for data: NoData never fails it,
// NoDataSince keeps the start of the wait across retries and errors, and
// the first real answer ends the wait.
func TestNoDataWait(t *testing.T) {
	d := newDriver(t,
		metric("success-rate", success("result[0] >= 0.95"), interval(time.Minute), count(2)),
		metric("latency", success("result[0] < 300"), interval(time.Minute), count(2)),
	)
	d.record(1, vec(120))
	d.record(0, queryErr())
	if !analysis.NoDataSince(d.run).IsZero() {
		t.Fatal("an error is not a wait for data")
	}
	d.record(0, noData()) // at 10s: errors retry after 10s
	since := t0.Add(10 * time.Second)
	if d.metric(0).ConsecutiveErrors != 0 {
		t.Error("the provider answered: the error streak ends")
	}
	for range 100 {
		d.record(0, noData())
	}
	d.record(0, queryErr())
	d.record(0, noData())
	if got := analysis.NoDataSince(d.run); !got.Equal(since) {
		t.Fatalf("NoDataSince %v, want %v", got, since)
	}
	if d.run.Phase != analysis.PhaseRunning || d.metric(0).Phase != analysis.PhaseRunning {
		t.Fatalf("run %s metric %s: no data must never end it under wait", d.run.Phase, d.metric(0).Phase)
	}
	if want := `metric "success-rate" has had no data since 2026-03-14T12:00:10Z`; d.run.Message != want {
		t.Errorf("run message %q, want %q", d.run.Message, want)
	}
	d.record(0, vec(0.99))
	if !analysis.NoDataSince(d.run).IsZero() || !d.metric(0).NoDataSince.IsZero() {
		t.Fatal("data arrived: the wait is over")
	}
	if got := countersOf(d.metric(0)); got != (counters{Phase: analysis.PhaseRunning, Count: 1, Successful: 1, Error: 2, NoData: 102}) {
		t.Errorf("counters %+v", got)
	}
}

// TestNoDataSinceIgnoresDryRun: a dry-run metric without data must not
// pause a rollout, unless every metric is dry-run.
// TestNoDataSinceCountsDryRun: a run waits for its dry-run metrics (as in
// Argo), so one waiting for data is what the run waits for.
func TestNoDataSinceCountsDryRun(t *testing.T) {
	d := newDriver(t, metric("shadow", success("true"), interval(time.Minute), dryRun), metric("real", success("true"), interval(time.Minute)))
	d.record(0, noData())
	if got := analysis.NoDataSince(d.run); !got.Equal(t0) {
		t.Errorf("NoDataSince %v, want %v from the dry-run metric", got, t0)
	}
	only := newDriver(t, metric("shadow", success("true"), interval(time.Minute), dryRun))
	only.record(0, noData())
	if got := analysis.NoDataSince(only.run); !got.Equal(t0) {
		t.Errorf("all-dry-run NoDataSince %v, want %v", got, t0)
	}
}

// TestRunningMeasurementReplaced: an undecided evaluation is always the
// last measurement and the next one replaces it, so the history never
// shows a stale Running entry.
func TestRunningMeasurementReplaced(t *testing.T) {
	f := &fakeJudge{script: []fakeAnswer{decide(judge.Continue, "undecided 1"), decide(judge.Continue, "undecided 2")}}
	d := newDriver(t, metric("error-rate", judged))
	d.judges = f.factory()
	d.record(0, versions(1, 0, 1, 0))
	d.record(0, queryErr()) // at 1s
	ms := d.metric(0).Measurements
	if len(ms) != 1 || ms[0].Phase != analysis.PhaseError || !ms[0].StartedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("after an error: %+v", ms)
	}
	d.record(0, versions(2, 0, 2, 0)) // at 11s: errors retry after 10s
	ms = d.metric(0).Measurements
	if len(ms) != 2 || ms[0].Phase != analysis.PhaseError || ms[1].Phase != analysis.PhaseRunning || !ms[1].StartedAt.Equal(t0.Add(11*time.Second)) {
		t.Fatalf("after the next evaluation: %+v", ms)
	}
}
