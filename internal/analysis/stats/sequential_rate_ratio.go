package stats

import (
	"fmt"
	"math"
)

// This file holds the rate-ratio test of statistics.md §4.3, the error-count
// test that stays valid when the traffic split changes between batches (a
// progressive rollout 5 % → 25 % → 50 %).
//
// Model: per batch k, canary and baseline events are Poisson with exposures
// (request counts) r_c,k and r_b,k and per-request rates λ_c, λ_b; ψ = λ_c/λ_b.
// Given the batch's event total e_k, the canary's events are
// Binomial(e_k, θ_k(ψ)) with θ_k(ψ) = ρ_kψ/(ρ_kψ + 1 − ρ_k) and
// ρ_k = r_c,k/(r_c,k + r_b,k). For every fixed ψ₁ and ψ₀ the product over
// batches of the likelihood ratios of ψ₁ against ψ₀ is a test martingale
// for H₀: ψ = ψ₀ — whatever the time profile of the traffic and the split
// schedule — and, by monotone likelihood ratio, a supermartingale for the
// composite H₀: ψ ≤ ψ₀ when ψ₁ > ψ₀ (and ψ ≥ ψ₀ when ψ₁ < ψ₀). Mixing over a
// grid of ψ₁ fixed in advance gives a test of a composite alternative; the
// same grid inverted gives a confidence sequence for ψ.
//
// Under a per-request Bernoulli model the batch's conditional null is
// hypergeometric rather than binomial; the hypergeometric is smaller in
// convex order, so the binomial likelihood ratio stays a supermartingale at
// ψ₀ = 1, and the binomial is an excellent approximation when error rates
// are small (≪ 10 %), which is the case the test is built for.

// RateRatioBatch is one batch of §4.3: event counts (errors, or latency
// observations above a threshold) and exposures (requests, or latency
// observations) of both arms. Fields are float64 so that the same code
// serves counts and, in tests, expected values.
type RateRatioBatch struct {
	CanaryEvents, BaselineEvents     float64
	CanaryExposure, BaselineExposure float64
}

// Split returns ρ_k, the canary's share of the batch's exposure, and false
// when it is undefined or degenerate (an arm without exposure): such a
// batch carries no information on ψ and is skipped.
func (b RateRatioBatch) Split() (float64, bool) {
	tot := b.CanaryExposure + b.BaselineExposure
	if !(b.CanaryExposure > 0) || !(b.BaselineExposure > 0) || math.IsInf(tot, 0) {
		return 0, false
	}
	return b.CanaryExposure / tot, true
}

// RateRatioLogLR returns ln of the batch's likelihood ratio of ψ = e^logPsi
// against ψ = 1: e_c·ln ψ − (e_c + e_b)·ln(1 + ρ(ψ − 1)), which is
// e_c ln(θ/ρ) + e_b ln((1−θ)/(1−ρ)) written without cancellation. A batch
// without a defined split gives 0.
func RateRatioLogLR(b RateRatioBatch, logPsi float64) float64 {
	rho, ok := b.Split()
	if !ok {
		return 0
	}
	return b.CanaryEvents*logPsi - (b.CanaryEvents+b.BaselineEvents)*math.Log1p(rho*math.Expm1(logPsi))
}

// RateRatioGrid is the running log-likelihood of ψ on a uniform grid of
// ln ψ, relative to ψ = 1: LogLR[i] = Σ_k RateRatioLogLR(batch_k, LogPsi(i)).
// Because the increments of a concave log-likelihood are what the tests
// need, one grid serves every null on it: the e-value of H₀: ψ ≤ ψ_i
// against the alternatives ψ_{i+1..i+w} is a mixture of
// exp(LogLR[i+j] − LogLR[i]).
//
// It is a plain value that serialises to JSON (a persisted sequential test
// is this grid); Update returns a new value and leaves the receiver alone.
type RateRatioGrid struct {
	// Center is ln ψ at index Mid; Step is the grid spacing in ln ψ.
	Center float64 `json:"center"`
	Step   float64 `json:"step"`
	Mid    int     `json:"mid"`
	// LogLR has one entry per grid point.
	LogLR []float64 `json:"logLR"`
}

// NewRateRatioGrid returns an empty grid of points ln ψ = center + (i−mid)·step
// for i = 0 … n−1. Centring the grid on the tolerance ln(1+δ) makes the
// null of a non-inferiority margin an exact grid point.
func NewRateRatioGrid(center, step float64, mid, n int) (RateRatioGrid, error) {
	if !(step > 0) || math.IsInf(step, 0) || math.IsNaN(center) || math.IsInf(center, 0) {
		return RateRatioGrid{}, fmt.Errorf("rate-ratio grid needs a finite centre and a positive step, not %v and %v", center, step)
	}
	if n < 1 || mid < 0 || mid >= n {
		return RateRatioGrid{}, fmt.Errorf("rate-ratio grid centre index %d outside 0..%d", mid, n-1)
	}
	return RateRatioGrid{Center: center, Step: step, Mid: mid, LogLR: make([]float64, n)}, nil
}

// LogPsi returns ln ψ at grid index i.
func (g RateRatioGrid) LogPsi(i int) float64 {
	return g.Center + float64(i-g.Mid)*g.Step
}

// Update adds one batch. A batch without a defined split changes nothing.
func (g RateRatioGrid) Update(b RateRatioBatch) RateRatioGrid {
	next := g
	next.LogLR = append([]float64(nil), g.LogLR...)
	if _, ok := b.Split(); !ok {
		return next
	}
	for i := range next.LogLR {
		next.LogLR[i] += RateRatioLogLR(b, g.LogPsi(i))
	}
	return next
}

// LogE returns ln of the grid-mixture e-value against the null at index
// null, with the alternatives at null+1 … null+width (up, for H₀: ψ ≤ ψ_null)
// or null−1 … null−width (down, for H₀: ψ ≥ ψ_null) equally weighted.
// The second result is false when the alternatives leave the grid.
func (g RateRatioGrid) LogE(null, width int, up bool) (float64, bool) {
	if width < 1 || null < 0 || null >= len(g.LogLR) {
		return 0, false
	}
	dir := 1
	if !up {
		dir = -1
	}
	if end := null + dir*width; end < 0 || end >= len(g.LogLR) {
		return 0, false
	}
	terms := make([]float64, width)
	for j := 1; j <= width; j++ {
		terms[j-1] = g.LogLR[null+dir*j] - g.LogLR[null]
	}
	return seqLogMeanExp(terms), true
}

// LowerBound returns the lower end of the confidence sequence for ψ
// obtained by inverting the upward tests of width alternatives at level
// e^−logThreshold: the largest grid ψ_i whose H₀: ψ ≤ ψ_i is rejected (every
// smaller ψ is rejected too, because the log-likelihood is concave in ln ψ),
// or 0 when none is. It is conservative by up to one grid step. Nulls whose
// alternatives leave the grid are not tested, so a true bound beyond the
// top of the grid is reported as the last testable point.
func (g RateRatioGrid) LowerBound(width int, logThreshold float64) float64 {
	lower := 0.0
	for i := range g.LogLR {
		le, ok := g.LogE(i, width, true)
		if !ok || le < logThreshold {
			break
		}
		lower = math.Exp(g.LogPsi(i))
	}
	return lower
}

// UpperBound is LowerBound's mirror: the smallest grid ψ_i whose
// H₀: ψ ≥ ψ_i is rejected by the downward tests, or +Inf when none is.
func (g RateRatioGrid) UpperBound(width int, logThreshold float64) float64 {
	upper := math.Inf(1)
	for i := len(g.LogLR) - 1; i >= 0; i-- {
		le, ok := g.LogE(i, width, false)
		if !ok || le < logThreshold {
			break
		}
		upper = math.Exp(g.LogPsi(i))
	}
	return upper
}
