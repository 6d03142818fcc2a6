package judge

import (
	"flag"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

var measureNeeds = flag.Bool("needs", false, "TestSequentialLatencyPassNeeds: simulate 100 A/A runs per row and print the table of docs/analysis.md (takes a minute or two)")

// seqPassNeeds simulates A/A rollouts at the statistical benchmark's
// headline traffic (1000 requests a second, 5 % to the canary, latency
// log-normal σ = 0.5, the 1 % grid) with its tolerance (×1.05) and α
// (0.01), feeding one sequential latency judge per entry of sets, and
// returns for each set the canary observations at which it passed early,
// sorted (+Inf: not within maxSeconds).
func seqPassNeeds(t *testing.T, sets [][]float64, runs, maxSeconds int) [][]float64 {
	t.Helper()
	judges := make([]*seqLatencyJudge, len(sets))
	for i, qs := range sets {
		judges[i] = seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareLatency, Quantiles: qs,
			MaxRelativeIncrease: seqPtr(0.05), Alpha: seqPtr(0.01)}).(*seqLatencyJudge)
	}
	needs := make([][]float64, len(sets))
	for r := range runs {
		sim := newSeqSim(uint64(5000 + r))
		states := make([]seqLatencyState, len(sets))
		at := make([]float64, len(sets))
		for i, j := range judges {
			states[i], _ = j.load(nil)
			at[i] = math.Inf(1)
		}
		open := len(sets)
		for sec := 0; sec < maxSeconds && open > 0; sec++ {
			in := sim.step(1000, 0.05, seqArm{median: 0.02}, seqArm{median: 0.02})
			hc, hs := seqHistogram(in.Canary.Latency), seqHistogram(in.Stable.Latency)
			for i, j := range judges {
				if !math.IsInf(at[i], 1) {
					continue
				}
				states[i] = j.update(states[i], hc, hs)
				if states[i].MaxLogE >= j.c.logThreshold() {
					t.Fatalf("run %d: A/A failed for %v", r, sets[i])
				}
				if states[i].Passed {
					at[i] = float64(in.Canary.Requests)
					open--
				}
			}
		}
		for i := range sets {
			needs[i] = append(needs[i], at[i])
		}
	}
	for i := range needs {
		slices.Sort(needs[i])
	}
	return needs
}

// TestSequentialLatencyPassNeeds measures, per judged quantile, how many
// canary observations the non-inferiority test needs to pass an A/A
// canary at the benchmark's tolerance: the table of docs/analysis.md
// ("How many requests a latency pass needs"). It runs with -needs only.
func TestSequentialLatencyPassNeeds(t *testing.T) {
	if !*measureNeeds {
		t.Skip("run with -needs to measure (go test ./internal/analysis/judge -run PassNeeds -needs -v)")
	}
	sets := [][]float64{{0.5}, {0.9}, {0.95}, {0.99}, seqDefaultQuantiles, {0.5, 0.9, 0.99}}
	const runs, maxSeconds = 100, 1800
	needs := seqPassNeeds(t, sets, runs, maxSeconds)
	var b strings.Builder
	fmt.Fprintf(&b, "\n| judged quantiles | median | p90 | p95 | passed within 6,000 |\n|---|---|---|---|---|\n")
	for i, qs := range sets {
		names := make([]string, len(qs))
		for k, q := range qs {
			names[k] = seqQuantileName(q)
		}
		n := needs[i]
		within := 0
		for _, x := range n {
			if x <= 6000 {
				within++
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d%% |\n", strings.Join(names, ", "),
			seqNeedCell(n[len(n)/2]), seqNeedCell(n[len(n)*9/10]), seqNeedCell(n[len(n)*95/100]), 100*within/len(n))
	}
	t.Logf("canary observations to an early pass over %d A/A runs (50 canary/s, 950 stable/s, σ = 0.5, ×1.05, α = 0.01; more than %d s: never)%s",
		runs, maxSeconds, b.String())
}

func seqNeedCell(x float64) string {
	if math.IsInf(x, 1) {
		return "never"
	}
	return fmt.Sprintf("%.0f", x)
}
