package stats

import "math"

// One-sided anytime-valid confidence bounds for one Bernoulli rate (one
// version's per-request error rate), for the absolute margin of the
// sequential error-rate judge: "the canary's rate is at most the stable's
// plus Δ" needs each rate on its own, which the rate-ratio test of §4.3
// cannot give (a ratio says nothing when both rates are near zero).
//
// Test of H₀: p ≥ u after x errors in n requests, against alternatives
// p₁ below it: each likelihood ratio
//
//	L = (p₁/u)^x · ((1 − p₁)/(1 − u))^(n − x)
//
// is a non-negative martingale under p = u and, its ratio being monotone
// in p, a supermartingale for every p ≥ u; so is any fixed mixture of them
// (Ville's inequality then bounds the chance that it ever reaches 1/α by
// α, whatever the stopping). The mixture puts half its weight on p₁ = 0 —
// a canary without any error is the case the margin exists for, and that
// component alone shows p < u after ln(2/α)/−ln(1−u) error-free requests —
// and half, equally, on the alternatives whose odds are u's odds times
// e^(−0.1·j), j = 1 … 20 (for small rates, p₁ ≈ u·e^(−0.1·j)). The lower
// bound mirrors it with odds times e^(0.1·j). Both e-values are monotone
// in u, so the bounds are found by bisection, and the rejection at a given
// u is the same event as the bound passing u.

const (
	bernMixCount = 20
	bernMixStep  = 0.1
)

// BernoulliUpperLogE returns ln of the mixture e-value against H₀: p ≥ u
// after x events in n trials; 0 (e = 1) without data or for u ≥ 1, where
// nothing can be rejected.
func BernoulliUpperLogE(x, n int64, u float64) float64 {
	if n <= 0 || !(u > 0) || u >= 1 || x < 0 || x > n {
		return 0
	}
	fx, fr := float64(x), float64(n-x)
	terms := make([]float64, 0, bernMixCount+1)
	weights := make([]float64, 0, bernMixCount+1)
	if x == 0 {
		// r = 0: the whole ratio is (1/(1−u))^n.
		terms = append(terms, -fr*math.Log1p(-u))
		weights = append(weights, 0.5)
	}
	for j := 1; j <= bernMixCount; j++ {
		terms = append(terms, bernLogLR(fx, fr, u, -bernMixStep*float64(j)))
		weights = append(weights, 0.5/bernMixCount)
	}
	return logWeightedSumExp(terms, weights)
}

// BernoulliLowerLogE returns ln of the mixture e-value against H₀: p ≤ l;
// 0 without data or for l ≤ 0.
func BernoulliLowerLogE(x, n int64, l float64) float64 {
	if n <= 0 || !(l > 0) || l >= 1 || x < 0 || x > n {
		return 0
	}
	fx, fr := float64(x), float64(n-x)
	terms := make([]float64, bernMixCount)
	weights := make([]float64, bernMixCount)
	for j := range bernMixCount {
		terms[j] = bernLogLR(fx, fr, l, bernMixStep*float64(j+1))
		weights[j] = 1.0 / bernMixCount
	}
	return logWeightedSumExp(terms, weights)
}

// bernLogLR is ln of the likelihood ratio of p₁ against p₀ after x events
// and f non-events, where p₁'s odds are p₀'s times e^logOdds:
// x·ln(p₁/p₀) + f·ln((1−p₁)/(1−p₀)), with ln(p₁/p₀) = logOdds + ln((1−p₁)/(1−p₀))
// and (1−p₁)/(1−p₀) = 1/(1 − p₀ + p₀·e^logOdds).
func bernLogLR(x, f, p0, logOdds float64) float64 {
	lq := -math.Log1p(p0 * math.Expm1(logOdds)) // ln((1−p₁)/(1−p₀))
	return x*(logOdds+lq) + f*lq
}

// BernoulliUpperBound returns the smallest u whose H₀: p ≥ u the mixture
// rejects at level alpha (e-value ≥ 1/alpha) after x events in n trials:
// with probability ≥ 1 − alpha the rate stays below it at every n. It is 1
// when nothing below 1 is rejected. Relative precision about 1e-11.
func BernoulliUpperBound(x, n int64, alpha float64) float64 {
	thr := -math.Log(alpha)
	const top = 1 - 1e-12
	if n <= 0 || BernoulliUpperLogE(x, n, top) < thr {
		return 1
	}
	// The e-value is at most 1 at the observed rate; search ln u above it.
	lo := math.Log(max(float64(x)/float64(n), 1e-15))
	return math.Exp(bernBisectLog(math.Log(top), lo, func(u float64) bool { return BernoulliUpperLogE(x, n, u) >= thr }))
}

// BernoulliLowerBound returns the largest l whose H₀: p ≤ l is rejected at
// level alpha, or 0 when none is.
func BernoulliLowerBound(x, n int64, alpha float64) float64 {
	thr := -math.Log(alpha)
	const bottom = 1e-15
	if n <= 0 || x == 0 || BernoulliLowerLogE(x, n, bottom) < thr {
		return 0
	}
	hi := math.Log(float64(x) / float64(n))
	return math.Exp(bernBisectLog(math.Log(bottom), hi, func(l float64) bool { return BernoulliLowerLogE(x, n, l) >= thr }))
}

// bernBisectLog bisects ln p from in (where holds is true) towards out, 40
// halvings (a relative precision of about 1e-11 over the widest search): a
// fixed cost per bound, which the benchmark's millions of calls need, at a
// precision far below any rate's sampling error.
func bernBisectLog(in, out float64, holds func(p float64) bool) float64 {
	for range 40 {
		mid := in + (out-in)/2
		if holds(math.Exp(mid)) {
			in = mid
		} else {
			out = mid
		}
	}
	return in
}

// logWeightedSumExp returns ln Σ wᵢ·exp(xᵢ) without overflow.
func logWeightedSumExp(xs, ws []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = max(m, x)
	}
	if math.IsInf(m, -1) {
		return m
	}
	s := 0.0
	for i, x := range xs {
		s += ws[i] * math.Exp(x-m)
	}
	return m + math.Log(s)
}
