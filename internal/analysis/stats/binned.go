package stats

import "math"

// This file holds the sequential tests of equality in distribution on
// fixed bins of statistics.md §4.5.2. Under H₀ (same latency distribution)
// and the exposure model of §4.3, the canary's count in bin j given the
// bin's total is binomial with success probability ρ, the canary's traffic
// share; applying the Beta–binomial Bayes factor of §4.2 in every bin and
// multiplying gives a test martingale. The bins must be fixed before the
// data are seen (the grid's buckets, or a deterministic merge of them).
// These tests are two-sided: they reject a faster canary as readily as a
// slower one.

// BinnedLogBF returns ln BF = Σ_j [ln B(a+C_j, b+B_j) − ln B(a, b) − C_j ln ρ − B_j ln(1−ρ)]
// on cumulative per-bin counts of the canary (C) and the baseline (B),
// with a = kρ, b = k(1−ρ) and a known, constant canary share rho.
func BinnedLogBF(canary, baseline []float64, rho, k float64) float64 {
	s := 0.0
	for j := range canary {
		s += BetaBinomialLogBF(canary[j], baseline[j], rho, k)
	}
	return s
}

// BinnedUniversalLogE returns the split-free e-value of §4.5.2 (universal
// inference, Wasserman, Ramdas & Balakrishnan 2020): the null likelihood is
// replaced by its maximum over the unknown share θ,
//
//	ln E = Σ_j [ln B(a+C_j, b+B_j) − ln B(a, b)] − [N_c ln θ̂ + N_b ln(1−θ̂)],  θ̂ = N_c/(N_c+N_b),
//
// with a = k·priorMean, b = k(1−priorMean). E is below the fixed-θ Bayes
// factor for every θ, so P(∃t: E_t ≥ 1/α) ≤ α still holds when the split is
// constant but unknown.
func BinnedUniversalLogE(canary, baseline []float64, priorMean, k float64) float64 {
	a, b := k*priorMean, k*(1-priorMean)
	var s, nc, nb float64
	for j := range canary {
		s += LogBeta(a+canary[j], b+baseline[j]) - LogBeta(a, b)
		nc += canary[j]
		nb += baseline[j]
	}
	if n := nc + nb; n > 0 {
		th := nc / n
		s -= seqXLogY(nc, th) + seqXLogY(nb, 1-th)
	}
	return s
}

// BinnedTest is the running state of a binned test: cumulative per-bin
// counts and the largest ln e-value so far. Universal selects
// BinnedUniversalLogE (Rho is then the prior mean only). It serialises to
// JSON; Update returns a new value.
type BinnedTest struct {
	Rho       float64   `json:"rho"`
	K         float64   `json:"k"`
	Universal bool      `json:"universal,omitempty"`
	Canary    []float64 `json:"canary"`
	Baseline  []float64 `json:"baseline"`
	MaxLogE   float64   `json:"maxLogE"`
}

// NewBinnedTest returns an empty test over bins bins.
func NewBinnedTest(bins int, rho, k float64, universal bool) BinnedTest {
	return BinnedTest{Rho: rho, K: k, Universal: universal, Canary: make([]float64, bins), Baseline: make([]float64, bins)}
}

// Update adds one batch of per-bin counts.
func (t BinnedTest) Update(canary, baseline []float64) BinnedTest {
	next := t
	next.Canary = append([]float64(nil), t.Canary...)
	next.Baseline = append([]float64(nil), t.Baseline...)
	for j := range canary {
		next.Canary[j] += canary[j]
		next.Baseline[j] += baseline[j]
	}
	next.MaxLogE = max(t.MaxLogE, next.LogE())
	return next
}

// LogE returns the current ln e-value (ln BF, or ln E when universal).
func (t BinnedTest) LogE() float64 {
	if t.Universal {
		return BinnedUniversalLogE(t.Canary, t.Baseline, t.Rho, t.K)
	}
	return BinnedLogBF(t.Canary, t.Baseline, t.Rho, t.K)
}

// PValue returns the always-valid p-value min(1, min over looks of 1/E).
func (t BinnedTest) PValue() float64 { return math.Exp(-t.MaxLogE) }
