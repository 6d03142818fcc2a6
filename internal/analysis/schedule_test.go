package analysis_test

import (
	"slices"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/analysis/judge"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// TestDue checks when measurements fall due, after Argo's
// generateMetricTasks and calculateNextReconcileTime tests: interval,
// initialDelay, error retries, no-data retries and continuous judges.
func TestDue(t *testing.T) {
	pass := vec(0.99)

	t.Run("one measurement, due at once", func(t *testing.T) {
		d := newDriver(t, metric("m", success("result[0] >= 0.95")))
		expectDue(t, d, 0, []int{0}, -1)
		d.record(0, pass)
		expectDue(t, d, time.Hour, nil, -1)
	})

	// Argo TestGenerateMetricTasksInterval: not due within the interval,
	// due once it has passed (measured from the last FinishedAt).
	t.Run("interval 60s, count 5", func(t *testing.T) {
		d := newDriver(t, metric("success-rate", success("result[0] >= 0.95"), interval(60*time.Second), count(5)))
		d.recordAt(0, analysis.Outcome{Result: pass.Result, StartedAt: t0, FinishedAt: t0.Add(2 * time.Second)}, t0.Add(2*time.Second))
		expectDue(t, d, 50*time.Second, nil, 62*time.Second)
		expectDue(t, d, 62*time.Second, []int{0}, -1)
		for i := 2; i <= 5; i++ {
			d.record(0, pass)
			if i < 5 && d.metric(0).NextAt != d.now.Add(time.Minute) {
				t.Fatalf("measurement %d: next at %s, want a minute later", i, d.metric(0).NextAt.Sub(t0))
			}
		}
		if d.run.Phase != analysis.PhaseSuccessful {
			t.Fatalf("run phase %s after 5 measurements", d.run.Phase)
		}
		expectDue(t, d, time.Hour, nil, -1)
	})

	// Argo docs "Delay Analysis Runs" and TestGenerateMetricTasksHonorInitialDelay.
	t.Run("initialDelay 5m", func(t *testing.T) {
		d := newDriver(t, metric("success-rate", success("result[0] >= 0.90"), initialDelay(5*time.Minute)))
		expectDue(t, d, 0, nil, 5*time.Minute)
		expectDue(t, d, 5*time.Minute-time.Second, nil, 5*time.Minute)
		expectDue(t, d, 5*time.Minute, []int{0}, -1)
	})

	t.Run("errors retried after 10s whatever the interval", func(t *testing.T) {
		d := newDriver(t, metric("m", success("result[0] >= 0.95"), interval(5*time.Minute)))
		d.record(0, queryErr())
		if got := d.metric(0).NextAt.Sub(t0); got != analysis.ErrorRetryInterval {
			t.Fatalf("retry after %s, want %s", got, analysis.ErrorRetryInterval)
		}
		d.record(0, pass)
		if got := d.metric(0).NextAt.Sub(d.now); got != 5*time.Minute {
			t.Fatalf("after a success next in %s, want the interval", got)
		}
	})

	// The no-data retry rule chosen where SPEC is silent: the metric's
	// cadence, which is 10s for a metric without interval.
	for _, tt := range []struct {
		name   string
		metric spec.Metric
		want   time.Duration
	}{
		{"no data retried after the interval", metric("m", success("result[0] >= 0.95"), interval(2*time.Minute)), 2 * time.Minute},
		{"no data on a one-shot metric retried after 10s", metric("m", success("result[0] >= 0.95")), 10 * time.Second},
		{"no data on a continuous judge retried every second", metric("m", judged), time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, tt.metric)
			f := &fakeJudge{script: []fakeAnswer{decide(judge.NoData, "canary 3 requests, stable 40 < minSamples 100")}}
			d.judges = f.factory()
			out := noData()
			if tt.metric.Judge != nil {
				out = versions(3, 0, 40, 0)
			}
			d.record(0, out)
			if got := d.metric(0).NextAt.Sub(t0); got != tt.want {
				t.Fatalf("retry after %s, want %s", got, tt.want)
			}
		})
	}

	t.Run("next is the earliest of the others", func(t *testing.T) {
		d := newDriver(t,
			metric("a", success("result[0] >= 0.95"), interval(time.Minute)),
			metric("b", success("result[0] >= 0.95"), interval(30*time.Second)),
			metric("c", success("result[0] >= 0.95"), initialDelay(10*time.Minute)),
			metric("d", success("result[0] >= 0.95")),
		)
		expectDue(t, d, 0, []int{0, 1, 3}, 10*time.Minute)
		d.record(0, pass)
		d.record(1, pass)
		d.record(3, pass) // one-shot: done
		expectDue(t, d, 0, nil, 30*time.Second)
		expectDue(t, d, 45*time.Second, []int{1}, time.Minute)
	})

	t.Run("a metric spec that does not match is never due", func(t *testing.T) {
		d := newDriver(t, metric("a", success("true")), metric("b", success("true")))
		due, _ := analysis.Due(d.run, []spec.Metric{metric("a"), metric("x")}, t0)
		if !slices.Equal(due, []int{0}) {
			t.Fatalf("due %v, want [0]", due)
		}
		if _, err := analysis.Record(d.run, []spec.Metric{metric("a"), metric("x")}, 0, pass, nil, t0); err == nil {
			t.Fatal("Record accepted metrics that do not match the run")
		}
		if _, err := analysis.Record(d.run, d.metrics, 2, pass, nil, t0); err == nil {
			t.Fatal("Record accepted an index out of range")
		}
	})
}

func expectDue(t *testing.T, d *driver, at time.Duration, wantDue []int, wantNext time.Duration) {
	t.Helper()
	due, next := analysis.Due(d.run, d.metrics, t0.Add(at))
	if !slices.Equal(due, wantDue) {
		t.Errorf("at %s: due %v, want %v", at, due, wantDue)
	}
	var want time.Time
	if wantNext >= 0 {
		want = t0.Add(wantNext)
	}
	if !next.Equal(want) {
		t.Errorf("at %s: next %v, want %v", at, next, want)
	}
}
