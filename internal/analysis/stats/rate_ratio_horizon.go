package stats

import (
	"fmt"
	"math"
)

// RateRatioScore is the one-look (fixed-horizon) test of §4.3's model, kept
// as running sums so that a sequential judge can add it at its horizon: the
// score test of H₀: ψ ≤ ψ₀ on batches whose splits differ. Given batch k's
// event total e_k, the canary's events are Binomial(e_k, θ_k(ψ₀)) at the
// boundary, independent across batches, so
//
//	U = Σ (x_k − e_k·θ_k),  V = Σ e_k·θ_k(1 − θ_k),  K₃ = Σ e_k·θ_k(1 − θ_k)(1 − 2θ_k)
//
// are the statistic's centred sum, variance and third cumulant. One look at
// a horizon fixed in advance (a time, or a request count, which does not
// depend on the errors) rejects when the continuity-corrected U/√V exceeds
// the normal quantile with the Cornish–Fisher correction for the skewness
// K₃/V^1.5: with errors rare, θ_k is small and the sum of binomials is
// skewed to the right, which the plain normal quantile would under-cover.
// Against the pooled conditional binomial test (what one fixed test on
// the cumulative counts does) it stays exact in its first three moments
// when the split changed between batches.
type RateRatioScore struct {
	// LogPsi0 is ln ψ₀, the null's boundary.
	LogPsi0 float64 `json:"logPsi0"`
	U       float64 `json:"u"`
	V       float64 `json:"v"`
	K3      float64 `json:"k3"`
}

// Add returns the sums with one batch more; a batch without a defined
// split or without events changes nothing.
func (s RateRatioScore) Add(b RateRatioBatch) RateRatioScore {
	rho, ok := b.Split()
	e := b.CanaryEvents + b.BaselineEvents
	if !ok || !(e > 0) {
		return s
	}
	psi := math.Exp(s.LogPsi0)
	th := rho * psi / (rho*psi + 1 - rho)
	v := e * th * (1 - th)
	s.U += b.CanaryEvents - e*th
	s.V += v
	s.K3 += v * (1 - 2*th)
	return s
}

// Z returns the continuity-corrected standardised score, (U − ½)/√V, and
// false without variance (no events yet).
func (s RateRatioScore) Z() (float64, bool) {
	if !(s.V > 0) {
		return 0, false
	}
	return (s.U - 0.5) / math.Sqrt(s.V), true
}

// Critical returns the level-alpha critical value of Z: z₁₋α + (z² − 1)·γ/6
// with γ = K₃/V^1.5.
func (s RateRatioScore) Critical(alpha float64) (float64, error) {
	if !(alpha > 0 && alpha < 1) {
		return 0, fmt.Errorf("alpha must be in (0, 1), not %v", alpha)
	}
	z := NormQuantile(1 - alpha)
	if !(s.V > 0) {
		return z, nil
	}
	g := s.K3 / math.Pow(s.V, 1.5)
	return z + (z*z-1)*g/6, nil
}

// Reject reports whether the one look rejects H₀ at level alpha.
func (s RateRatioScore) Reject(alpha float64) bool {
	z, ok := s.Z()
	if !ok {
		return false
	}
	c, err := s.Critical(alpha)
	return err == nil && z >= c
}
