package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The one look holds its level at the null's boundary when the split
// changes between batches and errors are rare (skewed counts): the reason
// for the per-batch θ and the Cornish–Fisher correction.
func TestRateRatioScoreHoldsItsLevel(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	const alpha, runs = 0.05, 4000
	psi0 := 1.5
	r := rand.New(rand.NewPCG(11, 12))
	rejected := 0
	for range runs {
		s := RateRatioScore{LogPsi0: math.Log(psi0)}
		for k := range 120 {
			w := 0.05
			if k >= 60 {
				w = 0.25 // a weight step half-way
			}
			nc := poissonSmall(r, 100*w)
			ns := poissonSmall(r, 100*(1-w))
			ec := binomSmall(r, nc, 0.005*psi0)
			es := binomSmall(r, ns, 0.005)
			s = s.Add(RateRatioBatch{CanaryEvents: float64(ec), BaselineEvents: float64(es),
				CanaryExposure: float64(nc), BaselineExposure: float64(ns)})
		}
		if s.Reject(alpha) {
			rejected++
		}
	}
	rate := float64(rejected) / runs
	se := math.Sqrt(alpha * (1 - alpha) / runs)
	t.Logf("rejected %d of %d at the boundary (α = %v)", rejected, runs, alpha)
	if rate > alpha+3*se {
		t.Errorf("the look rejects %.2f%% at the null's boundary, above α = %v", 100*rate, alpha)
	}
	if rate < alpha/3 {
		t.Errorf("the look rejects only %.2f%% at the boundary: far more conservative than α = %v", 100*rate, alpha)
	}
}

// Beyond the null it rejects, and below it it does not.
func TestRateRatioScoreDirection(t *testing.T) {
	s0 := RateRatioScore{LogPsi0: math.Log(1.5)}
	worse, better := s0, s0
	for range 600 {
		worse = worse.Add(RateRatioBatch{CanaryEvents: 2, BaselineEvents: 19, CanaryExposure: 100, BaselineExposure: 1900})
		better = better.Add(RateRatioBatch{CanaryEvents: 1, BaselineEvents: 19, CanaryExposure: 100, BaselineExposure: 1900})
	}
	if !worse.Reject(0.01) {
		z, _ := worse.Z()
		t.Errorf("ratio 2 over 600 batches not rejected against 1.5 (z = %v)", z)
	}
	if better.Reject(0.01) {
		t.Error("ratio 1 rejected against 1.5")
	}
	if s0.Reject(0.01) {
		t.Error("no data rejected")
	}
	if _, err := s0.Critical(0); err == nil {
		t.Error("alpha 0 accepted")
	}
	// A batch without a split or events changes nothing.
	if s0.Add(RateRatioBatch{CanaryEvents: 1, CanaryExposure: 0, BaselineExposure: 10}) != s0 ||
		s0.Add(RateRatioBatch{CanaryExposure: 10, BaselineExposure: 10}) != s0 {
		t.Error("an empty batch moved the sums")
	}
}

func poissonSmall(r *rand.Rand, lam float64) int {
	l, k, p := math.Exp(-lam), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func binomSmall(r *rand.Rand, n int, p float64) int {
	k := 0
	for range n {
		if r.Float64() < p {
			k++
		}
	}
	return k
}
