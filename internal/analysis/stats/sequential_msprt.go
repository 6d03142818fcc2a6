package stats

import "math"

// This file holds the mixture sequential probability ratio test of
// statistics.md §4.4 (Johari, Pekelis & Walsh) for means of continuous
// metrics: observations z_i with mean θ and known variance V, a normal
// mixing prior θ ~ N(θ₀, τ²). Per-step metric values are autocorrelated, so
// callers should pair canary and baseline by step and prefer coarse steps.

// MSPRTNormalLogLambda returns ln Λ_n after n observations with sum sum:
//
//	Λ_n = sqrt(V/(V + nτ²)) · exp(n²τ²(z̄ − θ₀)² / (2V(V + nτ²))).
//
// It is 0 (Λ = 1) for n = 0 and, for the plug-in use, whenever V is 0.
func MSPRTNormalLogLambda(n int, sum, v, tau2, theta0 float64) float64 {
	if n == 0 || v == 0 {
		return 0
	}
	fn := float64(n)
	d := sum/fn - theta0
	return 0.5*math.Log(v/(v+fn*tau2)) + fn*fn*tau2*d*d/(2*v*(v+fn*tau2))
}

// MSPRTNormal is the running state of the normal-mixture mSPRT with a
// known variance: count, sum and the largest ln Λ so far. It serialises to
// JSON; Update returns a new value.
type MSPRTNormal struct {
	V         float64 `json:"v"`
	Tau2      float64 `json:"tau2"`
	Theta0    float64 `json:"theta0"`
	N         int     `json:"n"`
	Sum       float64 `json:"sum"`
	LogLambda float64 `json:"logLambda"`
	// MaxLogLambda is max(0, max over looks of ln Λ): ln of 1/p.
	MaxLogLambda float64 `json:"maxLogLambda"`
}

// Update adds observations.
func (m MSPRTNormal) Update(zs ...float64) MSPRTNormal {
	for _, z := range zs {
		m.N++
		m.Sum += z
		m.LogLambda = MSPRTNormalLogLambda(m.N, m.Sum, m.V, m.Tau2, m.Theta0)
		m.MaxLogLambda = max(m.MaxLogLambda, m.LogLambda)
	}
	return m
}

// PValue returns the always-valid p-value min(1, min over looks of 1/Λ).
func (m MSPRTNormal) PValue() float64 { return math.Exp(-m.MaxLogLambda) }

// MSPRTBernoulli is the Optimizely-style plug-in mSPRT on paired Bernoulli
// streams (canary, baseline): z̄ = p̄_c − p̄_b with the running variance
// V_n = p̄_c(1−p̄_c) + p̄_b(1−p̄_b) in place of V, θ₀ = 0. Plugging in an
// estimated variance makes it only asymptotically valid; prefer the exact
// count tests (BetaBinomialLogBF, RateRatioGrid) for error rates. While
// V_n = 0 the statistic is not updated.
type MSPRTBernoulli struct {
	Tau2         float64 `json:"tau2"`
	N            int     `json:"n"`
	Canary       float64 `json:"canary"`
	Baseline     float64 `json:"baseline"`
	V            float64 `json:"v"`
	LogLambda    float64 `json:"logLambda"`
	MaxLogLambda float64 `json:"maxLogLambda"`
}

// Update adds one pair of observations (each 0 or 1).
func (m MSPRTBernoulli) Update(canary, baseline float64) MSPRTBernoulli {
	m.N++
	m.Canary += canary
	m.Baseline += baseline
	n := float64(m.N)
	pc, pb := m.Canary/n, m.Baseline/n
	m.V = pc*(1-pc) + pb*(1-pb)
	if m.V > 0 {
		m.LogLambda = MSPRTNormalLogLambda(m.N, m.Canary-m.Baseline, m.V, m.Tau2, 0)
		m.MaxLogLambda = max(m.MaxLogLambda, m.LogLambda)
	}
	return m
}

// PValue returns the (asymptotically) always-valid p-value.
func (m MSPRTBernoulli) PValue() float64 { return math.Exp(-m.MaxLogLambda) }
