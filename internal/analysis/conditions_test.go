package analysis_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// TestMeasurementVerdict covers SPEC §5.1's condition rules and every
// worked example of Argo's "Handling Metric Results" (NaN, infinity, empty
// arrays, Datadog's nil), on a one-shot metric so the measurement decides
// the metric and the run.
func TestMeasurementVerdict(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name    string
		success string
		failure string
		out     analysis.Outcome
		want    analysis.Phase // measurement phase
		metric  analysis.Phase // metric (= run) phase after it
		message string         // exact, or a substring when prefixed with "~"
		value   string         // the stored JSON value
		counted bool
	}{
		// SPEC §5.1 rules.
		{name: "only success, true", success: "result[0] >= 0.99", out: vec(0.995), want: analysis.PhaseSuccessful, metric: analysis.PhaseSuccessful,
			message: "result [0.995] satisfied result[0] >= 0.99", value: "[0.995]", counted: true},
		{name: "only success, false", success: "result[0] >= 0.99", out: vec(0.97), want: analysis.PhaseFailed, metric: analysis.PhaseFailed,
			message: "result [0.97] did not satisfy result[0] >= 0.99", value: "[0.97]", counted: true},
		{name: "only failure, true", failure: "result[0] >= 10", out: vec(12), want: analysis.PhaseFailed, metric: analysis.PhaseFailed,
			message: "result [12] met failureCondition result[0] >= 10", counted: true},
		{name: "only failure, false", failure: "result[0] >= 10", out: vec(3), want: analysis.PhaseSuccessful, metric: analysis.PhaseSuccessful,
			message: "result [3] did not meet failureCondition result[0] >= 10", counted: true},
		{name: "both, failure wins", success: "result[0] >= 0", failure: "result[0] >= 10", out: vec(12), want: analysis.PhaseFailed, metric: analysis.PhaseFailed,
			message: "result [12] met failureCondition result[0] >= 10", counted: true},
		{name: "both, success", success: "result[0] >= 0.90", failure: "result[0] < 0.50", out: vec(0.95), want: analysis.PhaseSuccessful, metric: analysis.PhaseSuccessful,
			message: "result [0.95] satisfied result[0] >= 0.90", counted: true},
		// Argo "Inconclusive Runs": both set, neither met.
		{name: "both, neither true", success: "result[0] >= 0.90", failure: "result[0] < 0.50", out: vec(0.7), want: analysis.PhaseInconclusive, metric: analysis.PhaseInconclusive,
			message: "result [0.7] met neither successCondition result[0] >= 0.90 nor failureCondition result[0] < 0.50", counted: true},
		// Argo "Inconclusive Runs": a metric without conditions.
		{name: "no conditions: Successful unless it errors, as in Argo", out: vec(1), want: analysis.PhaseSuccessful, metric: analysis.PhaseSuccessful,
			message: "result [1] (no condition: a measurement that works is Successful, as in Argo)", counted: true},
		{name: "multi-line condition reads as one line", success: "len(result) > 0\n  && result[0] >= 0.99", out: vec(0.5), want: analysis.PhaseFailed, metric: analysis.PhaseFailed,
			message: "result [0.5] did not satisfy len(result) > 0 && result[0] >= 0.99", counted: true},

		// Argo NaN examples.
		{name: "NaN accepted by isNaN", success: "isNaN(result) || result >= 0.95", out: val(nan), want: analysis.PhaseSuccessful, metric: analysis.PhaseSuccessful,
			message: `result "NaN" satisfied isNaN(result) || result >= 0.95`, value: `"NaN"`, counted: true},
		{name: "NaN meets neither condition", success: "result >= 0.95", failure: "result < 0.95", out: val(nan), want: analysis.PhaseInconclusive, metric: analysis.PhaseInconclusive, counted: true},
		{name: "NaN fails a plain success condition", success: "result >= 0.95", out: val(nan), want: analysis.PhaseFailed, metric: analysis.PhaseFailed, counted: true},
		// Argo infinity examples.
		{name: "+Inf satisfies >=", success: "result >= 0.95", out: val(inf), want: analysis.PhaseSuccessful, metric: analysis.PhaseSuccessful, value: `"+Inf"`, counted: true},
		{name: "+Inf caught by isInf", failure: "isInf(result)", out: val(inf), want: analysis.PhaseFailed, metric: analysis.PhaseFailed, counted: true},

		// Argo empty-array examples, with the list returned as a value: the
		// condition handles emptiness itself and decides as written.
		{name: "empty list accepted by len(result) == 0", success: "len(result) == 0 || result[0] >= 0.95", out: vec(), want: analysis.PhaseSuccessful, metric: analysis.PhaseSuccessful, value: "[]", counted: true},
		{name: "empty list refused by len(result) > 0", success: "len(result) > 0 && result[0] >= 0.95", out: vec(), want: analysis.PhaseFailed, metric: analysis.PhaseFailed, counted: true},
		// An empty result that breaks the condition is no data, not an
		// error and not a failure; onNoData wait keeps the metric running.
		{name: "result[0] on an empty list is no data", success: "result[0] >= 0.95", out: vec(), want: analysis.PhaseNoData, metric: analysis.PhaseRunning,
			message: "no data: result [] is empty, so successCondition result[0] >= 0.95 could not be evaluated (~"},
		// Argo's Datadog example: nil compared with a number; default() handles it.
		{name: "nil result is no data", success: "result < 0.05", out: val(nil), want: analysis.PhaseNoData, metric: analysis.PhaseRunning,
			message: "~no data: result null is empty, so successCondition result < 0.05 could not be evaluated"},
		{name: "default() handles nil", success: "default(result, 0) < 0.05", out: val(nil), want: analysis.PhaseSuccessful, metric: analysis.PhaseSuccessful, counted: true},
		// A condition that breaks on a real value is an Error.
		{name: "condition error on a value", success: "result.rate > 1", out: vec(0.5), want: analysis.PhaseError, metric: analysis.PhaseRunning,
			message: "~successCondition result.rate > 1 could not be evaluated on result [0.5]: "},

		// Argo web examples.
		{name: "web string compared", success: "result == 'true'", out: val("true"), want: analysis.PhaseSuccessful, metric: analysis.PhaseSuccessful, value: `"true"`, counted: true},
		{name: "web number as string via asFloat", success: "asFloat(result) >= 0.90", out: val("0.95"), want: analysis.PhaseSuccessful, metric: analysis.PhaseSuccessful, counted: true},

		// Provider outcomes.
		{name: "provider found no data", success: "result[0] >= 0.95", out: noData(), want: analysis.PhaseNoData, metric: analysis.PhaseRunning,
			message: "no data: prometheus query up: empty vector: no data; waiting for data (onNoData: wait)"},
		// A condition written for an empty result decides when the
		// provider finds nothing, as in Argo: Prometheus gives [] (so
		// default() keeps the list), others nil.
		{name: "no data, len() still waits", success: "len(result) > 0 && result[0] >= 0.95", out: noData(), want: analysis.PhaseNoData, metric: analysis.PhaseRunning},
		{name: "no data, isNil() decides on []", success: "isNil(result) || result[0] >= 0.95", out: noData(), want: analysis.PhaseNoData, metric: analysis.PhaseRunning},
		{name: "no data, default() on a list still waits", success: "default(result, 0) < 0.05", out: noData(), want: analysis.PhaseNoData, metric: analysis.PhaseRunning},
		{name: "provider error", success: "result[0] >= 0.95", out: queryErr(), want: analysis.PhaseError, metric: analysis.PhaseRunning,
			message: "query failed: query prometheus http://prom:9090: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, metric("m", success(tt.success), failure(tt.failure)))
			d.record(0, tt.out)
			got := d.last(0)
			if got.Phase != tt.want {
				t.Fatalf("measurement phase = %s, want %s (%s)", got.Phase, tt.want, got.Message)
			}
			if mr := d.metric(0); mr.Phase != tt.metric {
				t.Errorf("metric phase = %s, want %s (%s)", mr.Phase, tt.metric, mr.Message)
			}
			if tt.metric.Completed() && d.run.Phase != tt.metric {
				t.Errorf("run phase = %s, want %s", d.run.Phase, tt.metric)
			}
			switch {
			case strings.HasPrefix(tt.message, "~"):
				if !strings.Contains(got.Message, tt.message[1:]) {
					t.Errorf("message = %q, want it to contain %q", got.Message, tt.message[1:])
				}
			case strings.HasSuffix(tt.message, "~"):
				if !strings.HasPrefix(got.Message, strings.TrimSuffix(tt.message, "~")) {
					t.Errorf("message = %q, want it to start with %q", got.Message, strings.TrimSuffix(tt.message, "~"))
				}
			case tt.message != "" && got.Message != tt.message:
				t.Errorf("message = %q, want %q", got.Message, tt.message)
			}
			if tt.value != "" && string(got.Value) != tt.value {
				t.Errorf("value = %s, want %s", got.Value, tt.value)
			}
			if c := d.metric(0).Count; (c == 1) != tt.counted {
				t.Errorf("count = %d, counted = %v", c, tt.counted)
			}
		})
	}
}

// TestEmptyResultIsNeverAFailure pins the distinction SPEC §5.2 and
// DESIGN ask for: the same empty answer is NoData, however often it
// comes, while a real value below the threshold is a failure.
func TestEmptyResultIsNeverAFailure(t *testing.T) {
	d := newDriver(t, metric("success-rate", success("result[0] >= 0.99")))
	for range 50 {
		d.record(0, vec())
	}
	if got, want := countersOf(d.metric(0)), (counters{Phase: analysis.PhaseRunning, NoData: 50}); got != want {
		t.Fatalf("after 50 empty results: %+v, want %+v", got, want)
	}
	if d.run.Phase != analysis.PhaseRunning {
		t.Fatalf("run phase = %s", d.run.Phase)
	}
	d.record(0, vec(0.5))
	if got, want := countersOf(d.metric(0)), (counters{Phase: analysis.PhaseFailed, Count: 1, Failed: 1, NoData: 50}); got != want {
		t.Fatalf("after a real value: %+v, want %+v", got, want)
	}
}

// TestNoDataWithIsNilOnWeb: a web value that is missing or null reaches a
// condition written for it as nil, as in Argo (isNil(result), default()).
func TestNoDataWithIsNilOnWeb(t *testing.T) {
	web := func(m *spec.Metric) {
		m.Provider = spec.Provider{Web: &spec.WebProvider{URL: "http://x.example/", JSONPath: "{$.ok}"}}
	}
	for _, tc := range []struct {
		cond string
		want analysis.Phase
	}{
		{"isNil(result) || result == true", analysis.PhaseSuccessful},
		{"default(result, false) == true", analysis.PhaseFailed},
		{"result == true", analysis.PhaseNoData},
	} {
		d := newDriver(t, metric("m", web, success(tc.cond)))
		d.record(0, analysis.Outcome{Err: fmt.Errorf("the value is null: %w", provider.ErrNoData)})
		if got := d.last(0); got.Phase != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.cond, got.Phase, got.Message, tc.want)
		}
	}
}
