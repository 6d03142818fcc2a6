package stats

import "math"

// Numerical helpers of the sequential methods. They carry a seq prefix so
// that they cannot collide with helpers of the fixed-horizon methods that
// live in the same package.

// seqXLogY returns x·ln y with the convention 0·ln 0 = 0, which the count
// likelihoods need for empty cells (a Beta-binomial term with no canary
// events, a universal-inference maximum at θ̂ = 0).
func seqXLogY(x, y float64) float64 {
	if x == 0 {
		return 0
	}
	return x * math.Log(y)
}

// seqLogAddExp returns ln(eᵃ + eᵇ) without overflow.
func seqLogAddExp(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	if math.IsInf(b, -1) {
		return a
	}
	return a + math.Log1p(math.Exp(b-a))
}

// seqLogMeanExp returns ln((1/n)·Σ exp(xs[i])), the log of an equally
// weighted mixture of e-values given in log space.
func seqLogMeanExp(xs []float64) float64 {
	if len(xs) == 0 {
		return math.Inf(-1)
	}
	m := math.Inf(-1)
	for _, x := range xs {
		m = max(m, x)
	}
	if math.IsInf(m, -1) {
		return m
	}
	s := 0.0
	for _, x := range xs {
		s += math.Exp(x - m)
	}
	return m + math.Log(s/float64(len(xs)))
}

// seqLogBetaCF returns ln I_x(a, b), the regularised incomplete beta
// function, by the continued fraction (modified Lentz). It converges fast
// for x < (a+1)/(a+b+2); callers use the symmetry I_x(a,b) = 1 − I_{1−x}(b,a)
// on the other side.
func seqLogBetaCF(x, a, b float64) float64 {
	const (
		maxIter = 100000
		eps     = 1e-16
		tiny    = 1e-300
	)
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1-qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= maxIter; m++ {
		fm := float64(m)
		m2 := 2 * fm
		aa := fm * (b - fm) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return a*math.Log(x) + b*math.Log1p(-x) - LogBeta(a, b) + math.Log(h/a)
}

// seqLogBetaSF returns ln(1 − I_x(a, b)), the log upper tail of a
// Beta(a, b) distribution at x. The one-sided Lindon–Malek Bayes factor
// divides by such tails, and for large counts they are far below 1e-300, so
// the result stays in log space.
func seqLogBetaSF(x, a, b float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return math.Inf(-1)
	}
	if x >= (a+1)/(a+b+2) {
		return seqLogBetaCF(1-x, b, a)
	}
	return math.Log1p(-math.Exp(seqLogBetaCF(x, a, b)))
}

// seqBisect returns the last point, going from in (where the monotone
// predicate holds) towards out (where it does not), at which it still
// holds, to the resolution of float64. It is the root finder of the
// confidence-sequence end points: slower than Brent but exact to the last
// bit, which keeps the reference vectors at 1e-9.
func seqBisect(in, out float64, holds func(float64) bool) float64 {
	for range 2000 {
		mid := in + (out-in)/2
		if mid == in || mid == out {
			break
		}
		if holds(mid) {
			in = mid
		} else {
			out = mid
		}
	}
	return in
}
