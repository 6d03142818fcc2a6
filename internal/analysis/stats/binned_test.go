package stats

import (
	"math"
	"testing"
)

func TestSequentialBinnedDistributionTest(t *testing.T) {
	run := func(t *testing.T, method string, universal bool) {
		for _, v := range loadVectors(t, method) {
			t.Run(v.Case, func(t *testing.T) {
				var in struct {
					Batches [][2][]float64 `json:"batches_canary_counts_baseline_counts"`
				}
				var p struct {
					Rho       float64 `json:"rho_canary"`
					PriorMean float64 `json:"prior_mean"`
					K         float64 `json:"prior_concentration_k"`
				}
				var out struct {
					Sequence []struct {
						LogBF  *num `json:"log_bf"`
						LogE   *num `json:"log_e"`
						PValue num  `json:"p_value"`
					} `json:"sequence"`
				}
				seqDecode(t, v.Inputs, &in)
				seqDecode(t, v.Params, &p)
				seqDecode(t, v.Outputs, &out)
				rho := p.Rho
				if universal {
					rho = p.PriorMean
				}
				test := NewBinnedTest(len(in.Batches[0][0]), rho, p.K, universal)
				for i, b := range in.Batches {
					test = test.Update(b[0], b[1])
					w := out.Sequence[i]
					want := w.LogBF
					if universal {
						want = w.LogE
					}
					seqCheck(t, "ln e", test.LogE(), float64(*want))
					seqCheck(t, "p", test.PValue(), float64(w.PValue))
				}
			})
		}
	}
	t.Run("known_split", func(t *testing.T) { run(t, "sequential_binned_distribution_test", false) })
	t.Run("universal", func(t *testing.T) { run(t, "sequential_binned_distribution_test_universal", true) })
}

func TestBinnedUniversalIsDominatedByFixedSplit(t *testing.T) {
	// E ≤ BF(θ) for every θ: the maximised null likelihood is at least
	// the likelihood at any fixed share.
	c := []float64{3, 8, 12, 4, 1}
	b := []float64{30, 41, 20, 9, 2}
	e := BinnedUniversalLogE(c, b, 0.2, 10)
	for _, th := range []float64{0.05, 0.1, 0.2, 0.3, 0.5} {
		// Same prior (mean 0.2), null share th.
		bf := 0.0
		for j := range c {
			bf += LogBeta(2+c[j], 8+b[j]) - LogBeta(2, 8) - c[j]*math.Log(th) - b[j]*math.Log(1-th)
		}
		if e > bf+1e-12 {
			t.Errorf("universal ln E %v exceeds the fixed-share ln BF %v at θ=%v", e, bf, th)
		}
	}
}
