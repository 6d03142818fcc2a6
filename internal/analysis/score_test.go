package analysis_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/analysis/judge"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// kayentaJudged makes the metric a kayenta judge of one point a minute.
func kayentaJudged(compare string) func(*spec.Metric) {
	return func(m *spec.Metric) {
		m.Provider = spec.Provider{Builtin: &spec.BuiltinProvider{}}
		m.Judge = &spec.Judge{Compare: compare, Method: spec.JudgeMethodKayenta, Direction: spec.DirectionIncrease, OnLimit: spec.OnLimitPass}
		v := spec.Duration(time.Minute)
		m.Interval = &v
	}
}

// TestKayentaScore runs two kayenta metrics through Record with the real
// judge: the score is 0 while the metrics have no label (Kayenta's "half
// or more Nodata" rule) and decides nothing then, 100 once both pass, and
// 50 (Fail) when one is High. The High metric is not critical, so it does
// not fail on its own: the score fails the run, as soon as both metrics
// have a label (50 ≤ marginal 75). The score is in the run's status and
// survives a JSON round trip of the run.
func TestKayentaScore(t *testing.T) {
	d := newDriver(t, metric("errors-a", kayentaJudged(spec.JudgeCompareErrorRate)),
		metric("errors-b", kayentaJudged(spec.JudgeCompareErrorRate)), metric("plain", success("result > 0")))
	d.judges = judge.New
	if d.run.Score != nil {
		t.Fatalf("a new run has a score: %+v", d.run.Score)
	}
	var a, b [4]int64 // cumulative canary requests, errors, stable requests, errors
	minute := func(look int, bRegressed bool) {
		t.Helper()
		a[0], a[1], a[2], a[3] = a[0]+1000, a[1]+10+int64(look%3), a[2]+1000, a[3]+10+int64((look+1)%3)
		b[0], b[2], b[3] = b[0]+1000, b[2]+1000, b[3]+10+int64(look%2)
		b[1] += 10 + int64((look+1)%2)
		if bRegressed {
			b[1] += 90
		}
		d.record(0, versions(a[0], a[1], a[2], a[3]))
		d.record(1, versions(b[0], b[1], b[2], b[3]))
	}
	minute(0, false)
	if s := d.run.Score; s == nil || s.Score != 0 || s.Classification != "Fail" || s.Reason != "50% or more metrics Nodata" ||
		!reflect.DeepEqual(s.Labels, map[string]string{"errors-a": "Nodata", "errors-b": "Nodata"}) {
		t.Fatalf("before any label: %+v", d.run.Score)
	}
	for look := 1; look < 6; look++ {
		minute(look, false)
	}
	if s := d.run.Score; s.Score != 100 || s.Classification != "Pass" || s.Labels["errors-a"] != "Pass" || s.Labels["errors-b"] != "Pass" {
		t.Fatalf("two passing metrics: %+v (%s; %s)", s, d.last(0).Message, d.last(1).Message)
	}
	if st := analysis.Status(d.run); st.Score == nil || st.Score.Score != 100 || st.Score.PassAt != 95 || st.Score.MarginalAt != 75 {
		t.Fatalf("status score %+v", st.Score)
	}
	raw, err := json.Marshal(d.run)
	if err != nil {
		t.Fatal(err)
	}
	var back analysis.Run
	if err := json.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(back, d.run) {
		t.Fatalf("JSON round trip changed the run (%v)", err)
	}
	// A fresh run whose second metric regressed from the start.
	d = newDriver(t, d.metrics...)
	d.judges = judge.New
	a, b = [4]int64{}, [4]int64{}
	for look := 0; look < 10 && d.run.Phase == analysis.PhaseRunning; look++ {
		minute(look, true)
	}
	s := d.run.Score
	if s.Score != 50 || s.Classification != "Fail" || s.Labels["errors-b"] != "High" || s.Labels["errors-a"] != "Pass" || !s.Decided {
		t.Fatalf("one High metric: %+v (run %s; b: %s)", s, d.run.Phase, d.last(1).Message)
	}
	want := `kayenta score 50 ≤ marginal 75 once every kayenta metric has a label (pass ≥ 95, marginal ≤ 75 fails): "errors-a" Pass, "errors-b" High`
	if d.run.Phase != analysis.PhaseFailed || d.run.Message != want {
		t.Errorf("run %s: %s\nwant Failed: %s", d.run.Phase, d.run.Message, want)
	}
	if mr := d.metric(1); mr.Failed != 0 || mr.Phase == analysis.PhaseFailed || !strings.Contains(mr.Message, "kayenta score 50") {
		t.Errorf("the High metric did not fail on its own: %+v", countersOf(mr))
	}
	if st := analysis.Status(d.run); !st.Score.Decided {
		t.Errorf("the status does not say the score decided: %+v", st.Score)
	}
}

// The shape examples/kayenta-judge.yaml uses: interval 60s is the step,
// count 1 ends the metric at the judge's first verdict, and the minutes
// without one are Running (or, below minSamples points, NoData)
// measurements that do not count.
func TestKayentaMetricWithIntervalAndCount(t *testing.T) {
	m := metric("errors", kayentaJudged(spec.JudgeCompareErrorRate), count(1))
	maxPoints := int64(6)
	m.Judge.MaxSamples = &maxPoints
	d := newDriver(t, m)
	d.judges = judge.New
	var c [4]int64
	for look := 0; look < 6; look++ {
		if d.run.Phase != analysis.PhaseRunning {
			t.Fatalf("run ended %s at look %d: %s", d.run.Phase, look, d.run.Message)
		}
		c = [4]int64{c[0] + 1000, c[1] + 10 + int64(look%3), c[2] + 1000, c[3] + 10 + int64((look+1)%3)}
		d.record(0, versions(c[0], c[1], c[2], c[3]))
	}
	if got := countersOf(d.metric(0)); got != (counters{Phase: analysis.PhaseSuccessful, Count: 1, Successful: 1, NoData: 4}) {
		t.Fatalf("after 6 points: %+v (%s)", got, d.last(0).Message)
	}
	if d.run.Phase != analysis.PhaseSuccessful || !strings.Contains(d.run.Message, "maxSamples 6 points reached") {
		t.Errorf("run %s: %s", d.run.Phase, d.run.Message)
	}
	if at := d.run.FinishedAt.Sub(t0); at != 5*time.Minute {
		t.Errorf("run finished after %s, want 5m (six points a minute apart)", at)
	}
}
