package analysis_test

import (
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// TestMetricLimits replays measurement sequences against failureLimit,
// inconclusiveLimit, consecutiveErrorLimit and count (SPEC §5.1), with
// Argo's worked examples from its docs and its assessMetricStatus tests.
func TestMetricLimits(t *testing.T) {
	pass, fail := vec(0.99), vec(0.5) // against result[0] >= 0.95
	unsure := vec(0.7)                // with failureCondition result[0] < 0.5: neither
	tests := []struct {
		name   string
		metric spec.Metric
		outs   []analysis.Outcome
		want   counters
	}{
		// Argo TestAssessMetricStatusFailureLimit: failureLimit 2, 3 failed = Failed ...
		{"failureLimit 2, 3 failures", metric("m", success("result[0] >= 0.95"), interval(time.Minute), failureLimit(2)),
			[]analysis.Outcome{fail, fail, fail},
			counters{Phase: analysis.PhaseFailed, Count: 3, Failed: 3}},
		// ... and with failureLimit 3 it keeps running.
		{"failureLimit 3, 3 failures", metric("m", success("result[0] >= 0.95"), interval(time.Minute), failureLimit(3)),
			[]analysis.Outcome{fail, fail, fail},
			counters{Phase: analysis.PhaseRunning, Count: 3, Failed: 3}},
		// Argo docs "Failure Conditions and Failure Limit": total-errors,
		// failureCondition result[0] >= 10, failureLimit 3, every 5m: the
		// limit trips when failed (4) > failureLimit (3).
		{"docs total-errors: 3 failures tolerated", metric("total-errors", failure("result[0] >= 10"), interval(5*time.Minute), failureLimit(3)),
			[]analysis.Outcome{vec(12), vec(3), vec(15), vec(11)},
			counters{Phase: analysis.PhaseRunning, Count: 4, Successful: 1, Failed: 3}},
		{"docs total-errors: 4th failure fails", metric("total-errors", failure("result[0] >= 10"), interval(5*time.Minute), failureLimit(3)),
			[]analysis.Outcome{vec(12), vec(3), vec(15), vec(11), vec(10)},
			counters{Phase: analysis.PhaseFailed, Count: 5, Successful: 1, Failed: 4}},
		// Default failureLimit 0: the first failure fails.
		{"default failureLimit 0", metric("m", success("result[0] >= 0.95"), interval(time.Minute)),
			[]analysis.Outcome{pass, pass, fail},
			counters{Phase: analysis.PhaseFailed, Count: 3, Successful: 2, Failed: 1}},
		{"failureLimit -1 never fails", metric("m", success("result[0] >= 0.95"), interval(time.Minute), failureLimit(spec.Unlimited)),
			[]analysis.Outcome{fail, fail, fail, fail, fail, fail, fail, fail},
			counters{Phase: analysis.PhaseRunning, Count: 8, Failed: 8}},
		{"failureLimit -1 with count ends Successful", metric("m", success("result[0] >= 0.95"), interval(time.Minute), count(3), failureLimit(spec.Unlimited)),
			[]analysis.Outcome{fail, fail, fail},
			counters{Phase: analysis.PhaseSuccessful, Count: 3, Failed: 3}},

		// Argo TestAssessMetricStatusInconclusiveLimit.
		{"inconclusiveLimit 2, 3 inconclusive", metric("m", success("result[0] >= 0.95"), failure("result[0] < 0.5"), interval(time.Minute), inconclusiveLimit(2)),
			[]analysis.Outcome{unsure, unsure, unsure},
			counters{Phase: analysis.PhaseInconclusive, Count: 3, Inconclusive: 3}},
		{"inconclusiveLimit 3, 3 inconclusive", metric("m", success("result[0] >= 0.95"), failure("result[0] < 0.5"), interval(time.Minute), inconclusiveLimit(3)),
			[]analysis.Outcome{unsure, unsure, unsure},
			counters{Phase: analysis.PhaseRunning, Count: 3, Inconclusive: 3}},
		{"inconclusiveLimit -1", metric("m", success("result[0] >= 0.95"), failure("result[0] < 0.5"), interval(time.Minute), inconclusiveLimit(spec.Unlimited)),
			[]analysis.Outcome{unsure, unsure, unsure, unsure},
			counters{Phase: analysis.PhaseRunning, Count: 4, Inconclusive: 4}},

		// Argo TestAssessMetricStatusConsecutiveErrors: default limit 4,
		// so the 5th error in a row errors the metric.
		{"4 consecutive errors tolerated", metric("m", success("result[0] >= 0.95"), interval(time.Minute)),
			[]analysis.Outcome{queryErr(), queryErr(), queryErr(), queryErr()},
			counters{Phase: analysis.PhaseRunning, Error: 4, ConsecutiveErrors: 4}},
		{"5 consecutive errors", metric("m", success("result[0] >= 0.95"), interval(time.Minute)),
			[]analysis.Outcome{queryErr(), queryErr(), queryErr(), queryErr(), queryErr()},
			counters{Phase: analysis.PhaseError, Error: 5, ConsecutiveErrors: 5}},
		{"a success resets the streak", metric("m", success("result[0] >= 0.95"), interval(time.Minute)),
			[]analysis.Outcome{queryErr(), queryErr(), queryErr(), queryErr(), pass, queryErr(), queryErr(), queryErr(), queryErr()},
			counters{Phase: analysis.PhaseRunning, Count: 1, Successful: 1, Error: 8, ConsecutiveErrors: 4}},
		{"consecutiveErrorLimit 0", metric("m", success("result[0] >= 0.95"), consecutiveErrorLimit(0)),
			[]analysis.Outcome{queryErr()},
			counters{Phase: analysis.PhaseError, Error: 1, ConsecutiveErrors: 1}},
		{"consecutiveErrorLimit -1", metric("m", success("result[0] >= 0.95"), consecutiveErrorLimit(spec.Unlimited)),
			[]analysis.Outcome{queryErr(), queryErr(), queryErr(), queryErr(), queryErr(), queryErr(), queryErr()},
			counters{Phase: analysis.PhaseRunning, Error: 7, ConsecutiveErrors: 7}},
		// Errors are not counted in count (SPEC §5.1).
		{"errors not counted", metric("m", success("result[0] >= 0.95"), interval(time.Minute), count(2)),
			[]analysis.Outcome{pass, queryErr(), queryErr(), pass},
			counters{Phase: analysis.PhaseSuccessful, Count: 2, Successful: 2, Error: 2}},

		// Argo TestAssessMetricStatusCountReached and docs "count: 5,
		// interval: 60s".
		{"count 5 reached", metric("success-rate", success("result[0] >= 0.95"), interval(60*time.Second), count(5)),
			[]analysis.Outcome{pass, pass, pass, pass, pass},
			counters{Phase: analysis.PhaseSuccessful, Count: 5, Successful: 5}},
		{"count reached with failures within the limit is Successful", metric("m", success("result[0] >= 0.95"), interval(time.Minute), count(5), failureLimit(1)),
			[]analysis.Outcome{pass, fail, pass, pass, pass},
			counters{Phase: analysis.PhaseSuccessful, Count: 5, Successful: 4, Failed: 1}},
		{"count not reached", metric("m", success("result[0] >= 0.95"), interval(time.Minute), count(5)),
			[]analysis.Outcome{pass, pass, pass, pass},
			counters{Phase: analysis.PhaseRunning, Count: 4, Successful: 4}},
		// Argo docs "Inline Analysis": no interval = a single measurement.
		{"no interval, no count: one measurement", metric("success-rate", success("result[0] >= 0.95")),
			[]analysis.Outcome{pass},
			counters{Phase: analysis.PhaseSuccessful, Count: 1, Successful: 1}},
		// Argo docs "Background Analysis": interval without count runs
		// until stopped or failed.
		{"interval without count runs on", metric("success-rate", success("result[0] >= 0.95"), interval(5*time.Minute), failureLimit(3)),
			[]analysis.Outcome{pass, fail, pass, fail, pass, fail, pass, pass, pass, pass, pass, pass},
			counters{Phase: analysis.PhaseRunning, Count: 12, Successful: 9, Failed: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, tt.metric)
			d.records(0, tt.outs...)
			if got := countersOf(d.metric(0)); got != tt.want {
				t.Errorf("got  %+v\nwant %+v\n%s", got, tt.want, d.metric(0).Message)
			}
			if tt.want.Phase.Completed() {
				if d.run.Phase != tt.want.Phase {
					t.Errorf("run phase = %s, want %s", d.run.Phase, tt.want.Phase)
				}
				if !d.metric(0).NextAt.IsZero() {
					t.Errorf("an ended metric is still scheduled at %s", d.metric(0).NextAt)
				}
			} else if d.run.Phase != analysis.PhaseRunning {
				t.Errorf("run phase = %s, want Running", d.run.Phase)
			}
		})
	}
}

// TestMessages pins the sentences the status shows: each names the
// numbers against the limit and the last measurement (SPEC §4).
func TestMessages(t *testing.T) {
	m := metric("error-rate", success("result[0] >= 0.99"), interval(time.Minute), count(5), failureLimit(1))
	d := newDriver(t, m)
	d.records(0, vec(0.995), vec(0.999), vec(0.991))
	d.record(0, vec(0.97))
	if got, want := d.metric(0).Message, "error-rate: Running (4 of 5 measurements: 3 successful, 1 failed); last: result [0.97] did not satisfy result[0] >= 0.99"; got != want {
		t.Errorf("running metric message\n got %q\nwant %q", got, want)
	}
	d.record(0, vec(0.97))
	if got, want := d.metric(0).Message, "error-rate: Failed (2 of 5 measurements failed > failureLimit 1); last: result [0.97] did not satisfy result[0] >= 0.99"; got != want {
		t.Errorf("metric message\n got %q\nwant %q", got, want)
	}
	if got, want := d.run.Message, `metric "error-rate" assessed Failed: 2 of 5 measurements failed > failureLimit 1; last: result [0.97] did not satisfy result[0] >= 0.99`; got != want {
		t.Errorf("run message\n got %q\nwant %q", got, want)
	}

	e := newDriver(t, metric("p99", success("result[0] < 300"), interval(time.Minute)))
	e.records(0, queryErr(), queryErr(), queryErr(), queryErr(), queryErr())
	if got, want := e.run.Message, `metric "p99" assessed Error: 5 consecutive errors > consecutiveErrorLimit 4; last: query failed: query prometheus http://prom:9090: connection refused`; got != want {
		t.Errorf("error run message\n got %q\nwant %q", got, want)
	}

	s := newDriver(t, metric("success-rate", success("result[0] >= 0.95"), interval(time.Minute), count(2)))
	s.records(0, vec(0.99), vec(0.98))
	if got, want := s.run.Message, `metric "success-rate" assessed Successful: count 2 reached: 2 successful; last: result [0.98] satisfied result[0] >= 0.95`; got != want {
		t.Errorf("successful run message\n got %q\nwant %q", got, want)
	}
}

// TestMeasurementsBounded keeps the last MaxMeasurements measurements,
// newest last, while the counters keep the totals.
func TestMeasurementsBounded(t *testing.T) {
	d := newDriver(t, metric("m", success("result[0] >= 0"), interval(time.Minute)))
	for i := range 25 {
		d.record(0, vec(float64(i)))
	}
	mr := d.metric(0)
	if len(mr.Measurements) != analysis.MaxMeasurements {
		t.Fatalf("kept %d measurements, want %d", len(mr.Measurements), analysis.MaxMeasurements)
	}
	if first, last := string(mr.Measurements[0].Value), string(mr.Measurements[9].Value); first != "[15]" || last != "[24]" {
		t.Errorf("kept values %s..%s, want [15]..[24]", first, last)
	}
	if mr.Count != 25 || mr.Successful != 25 {
		t.Errorf("count %d successful %d, want 25", mr.Count, mr.Successful)
	}
}
