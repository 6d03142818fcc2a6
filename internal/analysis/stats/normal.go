package stats

import "math"

// NormCDF returns Φ(x), the standard normal distribution function. It goes
// through math.Erfc rather than 1+erf so that the lower tail keeps full
// relative precision down to about x = −38.
func NormCDF(x float64) float64 {
	return 0.5 * math.Erfc(-x/math.Sqrt2)
}

// NormSF returns the upper tail 1 − Φ(x). Computing it directly (instead of
// 1 − NormCDF) keeps the tiny p-values of strong regressions (p ≈ 1e-40)
// instead of rounding them to zero.
func NormSF(x float64) float64 {
	return 0.5 * math.Erfc(x/math.Sqrt2)
}

// LogNormSF returns ln(1 − Φ(x)). For x beyond the range where the tail
// underflows it falls back to the Mills-ratio expansion, so that a log
// p-value stays finite and ordered even when the p-value itself is 0.
func LogNormSF(x float64) float64 {
	if x < 30 {
		return math.Log(NormSF(x))
	}
	// Mills ratio: Q(x) = φ(x)/x · (1 − 1/x² + 3/x⁴ − 15/x⁶ + …).
	x2 := x * x
	series := 1 - 1/x2 + 3/(x2*x2) - 15/(x2*x2*x2)
	return -0.5*x2 - math.Log(x) - 0.5*math.Log(2*math.Pi) + math.Log(series)
}

// NormQuantile returns Φ⁻¹(p), the standard normal quantile, by Wichura's
// algorithm AS 241 (PPND16), accurate to about 1e-16 relative. It returns
// −Inf at 0, +Inf at 1 and NaN outside [0, 1], so critical values like
// z_{1−α} can be taken at any α a user configures.
func NormQuantile(p float64) float64 {
	switch {
	case math.IsNaN(p) || p < 0 || p > 1:
		return math.NaN()
	case p == 0:
		return math.Inf(-1)
	case p == 1:
		return math.Inf(1)
	}
	q := p - 0.5
	if math.Abs(q) <= 0.425 {
		r := 0.180625 - q*q
		return q * (((((((2509.0809287301226727*r+
			33430.575583588128105)*r+67265.770927008700853)*r+
			45921.953931549871457)*r+13731.693765509461125)*r+
			1971.5909503065514427)*r+133.14166789178437745)*r +
			3.387132872796366608) /
			(((((((5226.495278852545925*r+
				28729.085735721942674)*r+39307.89580009271061)*r+
				21213.794301586595867)*r+5394.1960214247511077)*r+
				687.1870074920579083)*r+42.313330701600911252)*r + 1)
	}
	r := p
	if q > 0 {
		r = 1 - p
	}
	r = math.Sqrt(-math.Log(r))
	var x float64
	if r <= 5 {
		r -= 1.6
		x = (((((((7.7454501427834140764e-4*r+
			0.0227238449892691845833)*r+0.24178072517745061177)*r+
			1.27045825245236838258)*r+3.64784832476320460504)*r+
			5.7694972214606914055)*r+4.6303378461565452959)*r +
			1.42343711074968357734) /
			(((((((1.05075007164441684324e-9*r+
				5.475938084995344946e-4)*r+0.0151986665636164571966)*r+
				0.14810397642748007459)*r+0.68976733498510000455)*r+
				1.6763848301838038494)*r+2.05319162663775882187)*r + 1)
	} else {
		r -= 5
		x = (((((((2.01033439929228813265e-7*r+
			2.71155556874348757815e-5)*r+0.0012426609473880784386)*r+
			0.026532189526576123093)*r+0.29656057182850489123)*r+
			1.7848265399172913358)*r+5.4637849111641143699)*r +
			6.6579046435011037772) /
			(((((((2.04426310338993978564e-15*r+
				1.4215117583164458887e-7)*r+1.8463183175100546818e-5)*r+
				7.868691311456132591e-4)*r+0.0148753612908506148525)*r+
				0.13692988092273580531)*r+0.59983220655588793769)*r + 1)
	}
	if q < 0 {
		x = -x
	}
	return x
}

// LogBeta returns ln B(a, b) = lnΓ(a) + lnΓ(b) − lnΓ(a+b) for a, b > 0.
// Working in log space keeps binomial and beta-binomial terms finite for the
// request counts of a busy service (n in the millions).
func LogBeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// LogChoose returns ln C(n, k) for real n ≥ k ≥ 0 (−Inf when k is outside
// [0, n]), via lgamma so it never overflows.
func LogChoose(n, k float64) float64 {
	if k < 0 || k > n {
		return math.Inf(-1)
	}
	if k == 0 || k == n {
		return 0
	}
	ln1, _ := math.Lgamma(n + 1)
	lk1, _ := math.Lgamma(k + 1)
	lnk1, _ := math.Lgamma(n - k + 1)
	return ln1 - lk1 - lnk1
}

// LogSumExp returns ln(Σ exp(xs[i])) without overflow; −Inf for an empty
// slice or when every term is −Inf. Mixtures of e-values and sums of
// probabilities kept in log space go through it.
func LogSumExp(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		if x > m {
			m = x
		}
	}
	if math.IsInf(m, -1) {
		return m
	}
	s := 0.0
	for _, x := range xs {
		s += math.Exp(x - m)
	}
	return m + math.Log(s)
}

// BinomialLogPMF returns ln P(X = x) for X ~ Binomial(n, p), −Inf outside
// the support. It uses Loader's saddle-point form (the one behind R's dbinom
// and scipy's binom.pmf) instead of differences of lgamma: with a million
// requests ln C(n, x) is ~10⁷ and differences of lgamma values that large
// keep only ~1e−9 of relative precision, Loader's form keeps ~1e−15.
// p = 0 and p = 1 are point masses.
func BinomialLogPMF(x, n int64, p float64) float64 {
	if x < 0 || x > n || math.IsNaN(p) || p < 0 || p > 1 {
		return math.Inf(-1)
	}
	return loaderLogBinom(float64(x), float64(n), p, 1-p)
}

// HypergeomLogPMF returns ln P(X = x) for the number X of marked items in k
// draws without replacement from n1 marked and n2 unmarked items (Fisher's
// exact test's null), as a ratio of three saddle-point binomial terms with
// the common p = k/(n1+n2), which keeps full precision for large counts.
func HypergeomLogPMF(x, n1, n2, k int64) float64 {
	if x < 0 || x > n1 || k-x < 0 || k-x > n2 || k > n1+n2 {
		return math.Inf(-1)
	}
	n := float64(n1 + n2)
	p := float64(k) / n
	q := float64(n1+n2-k) / n
	return loaderLogBinom(float64(x), float64(n1), p, q) +
		loaderLogBinom(float64(k-x), float64(n2), p, q) -
		loaderLogBinom(float64(k), n, p, q)
}

// loaderLogBinom is ln of Loader's (2000) binomial probability for
// integer-valued x in [0, n], with q = 1 − p given separately so callers
// can pass it exactly.
func loaderLogBinom(x, n, p, q float64) float64 {
	switch {
	case p == 0:
		if x == 0 {
			return 0
		}
		return math.Inf(-1)
	case q == 0:
		if x == n {
			return 0
		}
		return math.Inf(-1)
	case x == 0:
		if n == 0 {
			return 0
		}
		if p < 0.1 {
			return -devianceTerm(n, n*q) - n*p
		}
		return n * math.Log(q)
	case x == n:
		if q < 0.1 {
			return -devianceTerm(n, n*p) - n*q
		}
		return n * math.Log(p)
	}
	lc := stirlingError(n) - stirlingError(x) - stirlingError(n-x) - devianceTerm(x, n*p) - devianceTerm(n-x, n*q)
	return lc - 0.5*(math.Log(2*math.Pi)+math.Log(x)+math.Log1p(-x/n))
}

// stirlingError returns ln(n!) − ln(√(2πn)·(n/e)ⁿ) for integer n ≥ 1: the
// small remainder of Stirling's formula, from lgamma for n ≤ 15 (absolute
// error ~1e−14) and from its asymptotic series above (error < 1e−16).
func stirlingError(n float64) float64 {
	if n <= 15 {
		lg, _ := math.Lgamma(n + 1)
		return lg - (n+0.5)*math.Log(n) + n - 0.5*math.Log(2*math.Pi)
	}
	const (
		s0 = 1.0 / 12
		s1 = 1.0 / 360
		s2 = 1.0 / 1260
		s3 = 1.0 / 1680
		s4 = 1.0 / 1188
	)
	nn := n * n
	switch {
	case n > 500:
		return (s0 - s1/nn) / n
	case n > 80:
		return (s0 - (s1-s2/nn)/nn) / n
	case n > 35:
		return (s0 - (s1-(s2-s3/nn)/nn)/nn) / n
	}
	return (s0 - (s1-(s2-(s3-s4/nn)/nn)/nn)/nn) / n
}

// devianceTerm returns x·ln(x/m) + m − x without the cancellation of the
// direct formula when x ≈ m (Loader's bd0): there it sums the series
// 2x·Σ v^(2j+1)/(2j+1) − (x − m)·…, v = (x−m)/(x+m), until it stops changing.
func devianceTerm(x, m float64) float64 {
	if math.Abs(x-m) < 0.1*(x+m) {
		v := (x - m) / (x + m)
		s := (x - m) * v
		ej := 2 * x * v
		v *= v
		for j := 1; j < 1000; j++ {
			ej *= v
			s1 := s + ej/float64(2*j+1)
			if s1 == s {
				return s1
			}
			s = s1
		}
		return s
	}
	return x*math.Log(x/m) + m - x
}

// binomialMode is an index of the largest Binomial(n, p) probability.
func binomialMode(n int64, p float64) int64 {
	m := int64(math.Floor(float64(n+1) * p))
	if m > n {
		m = n
	}
	if m < 0 {
		m = 0
	}
	return m
}

// BinomialSF returns P(X ≥ x) for X ~ Binomial(n, p), summed in log space
// from the tail's largest term outward; a tail p-value of 1e-300 keeps its
// relative precision instead of being the difference of two numbers near 1.
func BinomialSF(x, n int64, p float64) float64 {
	if x <= 0 {
		return 1
	}
	if x > n {
		return 0
	}
	lp := func(k int64) float64 { return BinomialLogPMF(k, n, p) }
	return math.Min(1, math.Exp(LogConcaveSum(lp, x, n, binomialMode(n, p))))
}

// BinomialCDF returns P(X ≤ x) for X ~ Binomial(n, p), with the same care
// for small tails as BinomialSF.
func BinomialCDF(x, n int64, p float64) float64 {
	if x < 0 {
		return 0
	}
	if x >= n {
		return 1
	}
	lp := func(k int64) float64 { return BinomialLogPMF(k, n, p) }
	return math.Min(1, math.Exp(LogConcaveSum(lp, 0, x, binomialMode(n, p))))
}

// LogConcaveSum returns ln Σ_{x=lo}^{hi} exp(lp(x)) for a log-concave
// sequence lp (binomial, hypergeometric and Poisson probabilities are) whose
// maximum over all integers is at or near mode. It starts at the largest term
// of [lo, hi] and walks outward, stopping on each side once the remaining
// terms provably cannot change the sum in double precision: past the peak
// the term ratio r is non-increasing, so the rest is at most t·r/(1−r). The
// cost is therefore O(standard deviation), not O(hi − lo), which keeps exact
// tests cheap for millions of requests.
func LogConcaveSum(lp func(int64) float64, lo, hi, mode int64) float64 {
	if lo > hi {
		return math.Inf(-1)
	}
	m := min(max(mode, lo), hi)
	ref := lp(m)
	if math.IsInf(ref, -1) || math.IsNaN(ref) {
		// The peak is outside the support: fall back to a plain sum.
		terms := make([]float64, 0, hi-lo+1)
		for x := lo; x <= hi; x++ {
			terms = append(terms, lp(x))
		}
		return LogSumExp(terms)
	}
	const negligible = 1e-18
	sum := 1.0
	walk := func(start, stop, step int64) {
		prev := 1.0
		for x := start; (step > 0 && x <= stop) || (step < 0 && x >= stop); x += step {
			t := math.Exp(lp(x) - ref)
			sum += t
			if t == 0 {
				return
			}
			if r := t / prev; r < 1 && t*r/(1-r) < negligible*sum {
				return
			}
			prev = t
		}
	}
	walk(m+1, hi, 1)
	walk(m-1, lo, -1)
	return ref + math.Log(sum)
}

// Tail is the alternative hypothesis of a fixed-horizon test, always stated
// for the canary (the first sample): TailGreater means the canary is larger
// (more errors, slower), TailLess smaller, TailTwoSided either.
type Tail int

// The alternatives of a test.
const (
	TailGreater Tail = iota
	TailLess
	TailTwoSided
)

// String returns scipy's name of the alternative.
func (t Tail) String() string {
	switch t {
	case TailGreater:
		return "greater"
	case TailLess:
		return "less"
	case TailTwoSided:
		return "two-sided"
	}
	return "unknown"
}
