package analysis

import "testing"

// TestPhaseOrder pins the worst-verdict order of SPEC §5.1 (Successful <
// Running < Inconclusive < Error < Failed, as Argo's IsWorse), with NoData
// between Running and Inconclusive.
func TestPhaseOrder(t *testing.T) {
	order := []Phase{PhaseSuccessful, PhaseRunning, PhaseNoData, PhaseInconclusive, PhaseError, PhaseFailed}
	for i, p := range order {
		for j, q := range order {
			if got, want := q.worse(p), j > i; got != want {
				t.Errorf("%s worse than %s = %v, want %v", q, p, got, want)
			}
		}
	}
	for _, p := range order {
		if got, want := p.Completed(), p != PhaseRunning; got != want {
			t.Errorf("%s.Completed() = %v", p, got)
		}
	}
	if Phase("").Completed() || Phase("Pending").rank() != PhaseRunning.rank() {
		t.Error("unknown phases must count as running")
	}
}
