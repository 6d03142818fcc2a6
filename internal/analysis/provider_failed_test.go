package analysis_test

import (
	"testing"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/provider"
)

// TestProviderFailedIsAFailure: a command that exits non-zero is a Failed
// measurement, counted against failureLimit, whatever the conditions say
// (a condition only reads the output of a command that succeeded).
func TestProviderFailedIsAFailure(t *testing.T) {
	failed := analysis.Outcome{Err: provider.Failed("command ./smoke.sh exited with status %d; stderr: GET /health: 500", 1)}
	for _, cond := range []string{"", "true", "result == nil"} {
		t.Run("successCondition "+cond, func(t *testing.T) {
			d := newDriver(t, metric("smoke", success(cond), failureLimit(1), interval(10)))
			d.record(0, failed)
			got := d.last(0)
			if got.Phase != analysis.PhaseFailed || got.Message != "command ./smoke.sh exited with status 1; stderr: GET /health: 500" {
				t.Fatalf("measurement = %s %q", got.Phase, got.Message)
			}
			if c := countersOf(d.metric(0)); c.Failed != 1 || c.Count != 1 || c.Phase != analysis.PhaseRunning {
				t.Fatalf("after one failure within failureLimit 1: %+v", c)
			}
			d.record(0, failed)
			if c := countersOf(d.metric(0)); c.Failed != 2 || c.Phase != analysis.PhaseFailed {
				t.Fatalf("after two failures: %+v", c)
			}
		})
	}
}
