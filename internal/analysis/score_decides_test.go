package analysis_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/analysis/judge"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// kayentaScored makes the metric a continuous kayenta judge metric in the
// given score groups.
func kayentaScored(groups ...string) func(*spec.Metric) {
	return func(m *spec.Metric) {
		m.Provider = spec.Provider{Builtin: &spec.BuiltinProvider{}}
		m.Judge = &spec.Judge{Compare: spec.JudgeCompareErrorRate, Method: spec.JudgeMethodKayenta, Groups: groups}
	}
}

func critical(m *spec.Metric) { m.Judge.Critical = true }

// labelled is a scripted judge answer with a kayenta label.
func labelled(v judge.Verdict, label string) fakeAnswer {
	return fakeAnswer{d: judge.Decision{Verdict: v, Message: "label " + label, Evidence: model.Evidence{Label: label}}}
}

func f64p(x float64) *float64 { return &x }

// scoreDriver is a run of a Pass metric "a" (group "errors") and a metric
// "b" (group "latency") that is High from its first label, with the given
// scoring; the fake judge answers in the order the test records.
func scoreDriver(t *testing.T, scoring *spec.KayentaScore, bOpts ...func(*spec.Metric)) (*driver, *fakeJudge) {
	d := newDriver(t, metric("a", kayentaScored("errors")), metric("b", append([]func(*spec.Metric){kayentaScored("latency")}, bOpts...)...))
	d.run.Scoring = scoring
	f := &fakeJudge{}
	d.judges = f.factory()
	return d, f
}

// Kayenta's end-of-run rule with group weights: a at weight 90 passes, b
// at 10 is High, so the score is 90: above marginal 75, so the run goes
// on while b keeps running with its label, and b ends Failed at its limit
// without failing the run; the run's last score then decides it, below
// pass 95 Failed, at or above pass 90 Successful.
func TestKayentaScoreDecidesAtTheEnd(t *testing.T) {
	for _, tc := range []struct {
		pass      float64
		want      analysis.Phase
		wantStart string
	}{
		{95, analysis.PhaseFailed, "kayenta score 90 below pass 95 at the end of the run (pass ≥ 95, marginal ≤ 75 fails): "},
		{90, analysis.PhaseSuccessful, "kayenta score 90 ≥ pass 90 (pass ≥ 90, marginal ≤ 75 fails): "},
	} {
		d, f := scoreDriver(t, &spec.KayentaScore{GroupWeights: map[string]float64{"errors": 90, "latency": 10}, Pass: f64p(tc.pass)})
		f.script = []fakeAnswer{
			labelled(judge.Continue, "Pass"), labelled(judge.Continue, "High"),
			labelled(judge.Continue, "Pass"), labelled(judge.Continue, "High"),
			labelled(judge.Successful, "Pass"), labelled(judge.Failed, "High"),
		}
		for look := 0; look < 3; look++ {
			d.record(0, versions(100, 1, 100, 1))
			if look < 2 || d.run.Phase == analysis.PhaseRunning {
				d.record(1, versions(100, 9, 100, 1))
			}
			if look < 2 && d.run.Phase != analysis.PhaseRunning {
				t.Fatalf("pass %v, look %d: run %s with score %+v: %s", tc.pass, look, d.run.Phase, d.run.Score, d.run.Message)
			}
		}
		if mr := d.metric(1); mr.Phase != analysis.PhaseFailed || !mr.ScoredFailure {
			t.Errorf("b: %s (scoredFailure %v), want Failed on its label alone", mr.Phase, mr.ScoredFailure)
		}
		want := tc.wantStart + `"a" Pass, "b" High`
		if d.run.Phase != tc.want || d.run.Message != want {
			t.Errorf("pass %v: run %s: %s\nwant %s: %s", tc.pass, d.run.Phase, d.run.Message, tc.want, want)
		}
		s := d.run.Score
		if s == nil || s.Score != 90 || !s.Decided || s.PassAt != tc.pass || s.MarginalAt != 75 ||
			!reflect.DeepEqual(s.GroupScores, map[string]float64{"errors": 100, "latency": 0}) {
			t.Errorf("pass %v: score %+v", tc.pass, s)
		}
	}
}

// Equal weights (the default) make the same labels score 50, at or below
// marginal: the run fails as soon as both metrics have a label, without
// waiting for b's limit (Kayenta's multi-interval rule).
func TestKayentaScoreFailsEarlyAtMarginal(t *testing.T) {
	d, f := scoreDriver(t, nil)
	f.script = []fakeAnswer{labelled(judge.Continue, "Pass"), labelled(judge.NoData, ""), labelled(judge.Continue, "Pass"), labelled(judge.Continue, "High")}
	d.record(0, versions(100, 1, 100, 1))
	d.record(1, versions(100, 9, 100, 1))
	if d.run.Phase != analysis.PhaseRunning || d.run.Score.Score != 0 || d.run.Score.Decided {
		t.Fatalf("with b unlabelled the score (0, half Nodata) must not decide: run %s, %+v", d.run.Phase, d.run.Score)
	}
	d.record(0, versions(200, 2, 200, 2))
	d.record(1, versions(200, 18, 200, 2))
	if d.run.Phase != analysis.PhaseFailed || !d.run.Score.Decided || !strings.HasPrefix(d.run.Message, "kayenta score 50 ≤ marginal 75") {
		t.Errorf("run %s: %s (%+v)", d.run.Phase, d.run.Message, d.run.Score)
	}
	if d.metric(0).Phase != analysis.PhaseSuccessful && d.metric(0).Phase != analysis.PhaseSkipped {
		t.Errorf("a was not terminated: %s", d.metric(0).Phase)
	}
}

// A critical metric still fails the run on its own High at once, though
// its weight (10) would leave the score at 90 ≥ pass 85 otherwise; the
// High also zeroes the score (Kayenta's critical override).
func TestKayentaCriticalMetricFailsTheRunAlone(t *testing.T) {
	d, f := scoreDriver(t, &spec.KayentaScore{GroupWeights: map[string]float64{"errors": 90, "latency": 10}, Pass: f64p(85)}, critical)
	f.script = []fakeAnswer{labelled(judge.Continue, "Pass"), labelled(judge.Failed, "High")}
	d.record(0, versions(100, 1, 100, 1))
	d.record(1, versions(100, 9, 100, 1))
	if d.run.Phase != analysis.PhaseFailed || !strings.HasPrefix(d.run.Message, `metric "b" assessed Failed`) || d.metric(1).ScoredFailure {
		t.Errorf("run %s: %s", d.run.Phase, d.run.Message)
	}
	if s := d.run.Score; s.Score != 0 || s.Reason != "critical failure" {
		t.Errorf("score %+v, want 0 for a critical failure", s)
	}
}

// A condition beside a kayenta judge is a guard: its failure fails the run
// on its own, as before, even though the judge's evidence (with its label)
// is kept on the measurement.
func TestKayentaConditionBesideTheJudgeStillFailsAlone(t *testing.T) {
	d, f := scoreDriver(t, nil, failure("result.canary.requests > 50"))
	f.script = []fakeAnswer{labelled(judge.Continue, "Pass"), labelled(judge.Continue, "High")}
	d.record(0, versions(100, 1, 100, 1))
	d.record(1, versions(100, 9, 100, 1))
	if d.run.Phase != analysis.PhaseFailed || !strings.HasPrefix(d.run.Message, `metric "b" assessed Failed`) {
		t.Errorf("run %s: %s", d.run.Phase, d.run.Message)
	}
}

// A run terminated after a metric ended Failed on its label alone gets
// its phase from the score, not from that metric.
func TestKayentaScoreOnTerminate(t *testing.T) {
	d, f := scoreDriver(t, &spec.KayentaScore{GroupWeights: map[string]float64{"errors": 90, "latency": 10}, Pass: f64p(90)})
	f.script = []fakeAnswer{labelled(judge.Continue, "Pass"), labelled(judge.Failed, "High")}
	d.record(0, versions(100, 1, 100, 1))
	d.record(1, versions(100, 9, 100, 1))
	if d.run.Phase != analysis.PhaseRunning || !d.metric(1).ScoredFailure {
		t.Fatalf("run %s, b %s: %s", d.run.Phase, d.metric(1).Phase, d.run.Message)
	}
	r := analysis.Terminate(d.run, d.now.Add(time.Minute), "rollout promoted")
	if r.Phase != analysis.PhaseSuccessful || !r.Score.Decided || !strings.HasPrefix(r.Message, "run terminated (rollout promoted); kayenta score 90 ≥ pass 90") {
		t.Errorf("run %s: %s", r.Phase, r.Message)
	}
	d.run.Scoring = &spec.KayentaScore{GroupWeights: map[string]float64{"errors": 90, "latency": 10}, Pass: f64p(95)}
	d.run.Score.PassAt = 95
	r = analysis.Terminate(d.run, d.now.Add(time.Minute), "rollout promoted")
	if r.Phase != analysis.PhaseFailed || !strings.Contains(r.Message, "kayenta score 90 below pass 95") {
		t.Errorf("run %s: %s", r.Phase, r.Message)
	}
}

// A run without kayenta metrics has no score, and none of the score's
// rules touch it: a failed judge metric fails the run on its own.
func TestRunWithoutKayentaMetricsHasNoScore(t *testing.T) {
	d := newDriver(t, metric("seq", judged), metric("plain", success("result > 0")))
	f := &fakeJudge{script: []fakeAnswer{decide(judge.Failed, "worse")}}
	d.judges = f.factory()
	d.record(1, val(1.0))
	d.record(0, versions(100, 9, 100, 1))
	if d.run.Score != nil || d.run.Phase != analysis.PhaseFailed || !strings.HasPrefix(d.run.Message, `metric "seq" assessed Failed`) ||
		strings.Contains(d.run.Message, "kayenta") {
		t.Errorf("run %s, score %+v: %s", d.run.Phase, d.run.Score, d.run.Message)
	}
}
