package stats

import (
	"fmt"
	"math"
)

// twoSidedRelErr is the tolerance of the two-sided exact p-value rule "sum
// the probabilities of every outcome no more likely than the observed one":
// an outcome counts when P(x) ≤ P(observed)·(1 + 1e−7). R (fisher.test,
// binom.test) and scipy's binomtest use it so that outcomes of equal
// probability are not split by rounding in the log-gamma terms.
const twoSidedRelErr = 1e-7

// Fisher is the outcome of Fisher's exact test on the 2×2 table
// [[a, b], [c, d]] = [[canary errors, canary ok], [baseline errors, baseline
// ok]] (statistics.md §3.3).
type Fisher struct {
	// PGreater tests for higher error odds in the canary, PLess for lower.
	PGreater, PLess, PTwoSided float64
	// SampleOddsRatio is ad/bc (scipy's statistic): 0, +Inf or NaN when a
	// cell is 0. Report it, do not gate on it.
	SampleOddsRatio float64
	// ConditionalMLEOddsRatio is the conditional maximum-likelihood odds
	// ratio (R's estimate): 0 or +Inf at the ends of the support, NaN when
	// the margins leave a single possible table.
	ConditionalMLEOddsRatio float64
}

// FisherExact runs Fisher's exact test. Probabilities are computed in log
// space with lgamma and summed outward from their peak, so millions of
// requests cost about as much as the spread of the error count.
func FisherExact(a, b, c, d int64) (Fisher, error) {
	if a < 0 || b < 0 || c < 0 || d < 0 {
		return Fisher{}, fmt.Errorf("fisher exact test on [[%d %d] [%d %d]]: counts must be non-negative", a, b, c, d)
	}
	h := newHypergeom(a+b, c+d, a+c)
	out := Fisher{
		PGreater:                h.sf(a),
		PLess:                   h.cdf(a),
		PTwoSided:               h.twoSided(a),
		SampleOddsRatio:         sampleOddsRatio(a, b, c, d),
		ConditionalMLEOddsRatio: h.conditionalMLE(a),
	}
	return out, nil
}

func sampleOddsRatio(a, b, c, d int64) float64 {
	num, den := float64(a)*float64(d), float64(b)*float64(c)
	switch {
	case num == 0 && den == 0:
		return math.NaN()
	case den == 0:
		return math.Inf(1)
	}
	return num / den
}

// hypergeom is the null distribution of the canary's error count a given
// the margins: n1 canary requests, n2 baseline requests, k errors in all.
type hypergeom struct {
	n1, n2, k int64
	lo, hi    int64 // support
}

func newHypergeom(n1, n2, k int64) hypergeom {
	return hypergeom{
		n1: n1, n2: n2, k: k,
		lo: max(0, k-n2),
		hi: min(k, n1),
	}
}

// logPMF returns ln P(a = x) = ln[C(n1, x)·C(n2, k−x)/C(N, k)].
func (h hypergeom) logPMF(x int64) float64 {
	return HypergeomLogPMF(x, h.n1, h.n2, h.k)
}

// mode is the hypergeometric's most likely value ⌊(n1+1)(k+1)/(N+2)⌋.
func (h hypergeom) mode() int64 {
	m := int64(math.Floor(float64(h.n1+1) * float64(h.k+1) / float64(h.n1+h.n2+2)))
	return min(max(m, h.lo), h.hi)
}

func (h hypergeom) sum(from, to int64) float64 {
	from, to = max(from, h.lo), min(to, h.hi)
	return math.Min(1, math.Exp(LogConcaveSum(h.logPMF, from, to, h.mode())))
}

func (h hypergeom) sf(a int64) float64 {
	if a <= h.lo {
		return 1
	}
	return h.sum(a, h.hi)
}

func (h hypergeom) cdf(a int64) float64 {
	if a >= h.hi {
		return 1
	}
	return h.sum(h.lo, a)
}

func (h hypergeom) twoSided(a int64) float64 {
	return twoSidedExact(h.logPMF, h.lo, h.hi, h.mode(), a, h.sum)
}

// twoSidedExact sums the probabilities of all outcomes in [lo, hi] no more
// likely than the observed one (within twoSidedRelErr) for a unimodal
// distribution with peak at mode. By unimodality that set is a left tail
// [lo, xl] and a right tail [xr, hi], whose ends are found by bisection;
// sum(from, to) adds the probabilities of a range.
func twoSidedExact(lp func(int64) float64, lo, hi, mode, obs int64, sum func(from, to int64) float64) float64 {
	if obs < lo || obs > hi || lo == hi {
		return 1
	}
	limit := lp(obs) + math.Log1p(twoSidedRelErr)
	if lp(mode) <= limit {
		return 1 // the observed outcome is (as likely as) the most likely one
	}
	// Largest x in [lo, mode) with lp(x) ≤ limit (lp rises up to the mode).
	xl := lo - 1
	if lp(lo) <= limit {
		l, r := lo, mode // lp(l) ≤ limit < lp(r)
		for r-l > 1 {
			m := l + (r-l)/2
			if lp(m) <= limit {
				l = m
			} else {
				r = m
			}
		}
		xl = l
	}
	// Smallest x in (mode, hi] with lp(x) ≤ limit.
	xr := hi + 1
	if lp(hi) <= limit {
		l, r := mode, hi // lp(l) > limit ≥ lp(r)
		for r-l > 1 {
			m := l + (r-l)/2
			if lp(m) <= limit {
				r = m
			} else {
				l = m
			}
		}
		xr = r
	}
	p := 0.0
	if xl >= lo {
		p += sum(lo, xl)
	}
	if xr <= hi {
		p += sum(xr, hi)
	}
	return math.Min(1, p)
}

// conditionalMLE solves E[a; ψ] = a for the odds ratio ψ of Fisher's
// noncentral hypergeometric distribution (the estimate R reports). The mean
// rises monotonically in t = ln ψ with slope Var[a; ψ], so a safeguarded
// Newton iteration on t converges to full precision in a few steps.
func (h hypergeom) conditionalMLE(a int64) float64 {
	switch {
	case h.lo == h.hi:
		return math.NaN()
	case a == h.lo:
		return 0
	case a == h.hi:
		return math.Inf(1)
	}
	// moments returns the mean and variance of a under odds ratio e^t.
	moments := func(t float64) (mean, variance float64) {
		return logConcaveMoments(func(x int64) float64 { return h.logPMF(x) + t*float64(x) }, h.lo, h.hi)
	}
	target := float64(a)
	// Bracket the root: the mean is below target at tl and above at th.
	tl, th := -1.0, 1.0
	for m, _ := moments(tl); m > target; m, _ = moments(tl) {
		tl *= 2
	}
	for m, _ := moments(th); m < target; m, _ = moments(th) {
		th *= 2
	}
	t := 0.5 * (tl + th)
	for range 200 {
		m, v := moments(t)
		if m == target {
			break
		}
		if m < target {
			tl = t
		} else {
			th = t
		}
		next := t - (m-target)/v
		if v == 0 || !(next > tl && next < th) {
			next = 0.5 * (tl + th) // Newton left the bracket: bisect
		}
		if math.Abs(next-t) <= 1e-15*math.Max(1, math.Abs(t)) {
			t = next
			break
		}
		t = next
	}
	return math.Exp(t)
}

// ZTest is the outcome of a two-proportion z-test (statistics.md §3.2).
type ZTest struct {
	// Diff = p̂₁ − p̂₂ (canary minus baseline error rate); SE its standard
	// error under the chosen variant.
	Diff, SE float64
	// Z is the statistic of the greater alternative, (Δ − k)/SE with the
	// continuity correction k; ZLess = (Δ + k)/SE, ZTwoSided = max(|Δ| − k, 0)/SE.
	Z, ZLess, ZTwoSided        float64
	PGreater, PLess, PTwoSided float64
}

// TwoProportionZTest compares the canary's error rate x1/n1 with the
// baseline's x2/n2. Pooled uses p̄ = (x₁+x₂)/(n₁+n₂) in the standard error
// (the test of H₀: p₁ = p₂, equal to Pearson's χ²); unpooled uses each
// arm's own rate (for an interval on Δ) and falls back to pooled when both
// rates are 0 or 1. Continuity adds Yates' correction ½(1/n₁ + 1/n₂). A zero
// standard error (no errors anywhere, or all requests failed) gives z = 0
// and p = 1: there is nothing to tell the versions apart.
func TwoProportionZTest(x1, n1, x2, n2 int64, pooled, continuity bool) (ZTest, error) {
	if n1 <= 0 || n2 <= 0 {
		return ZTest{}, fmt.Errorf("two-proportion z-test with %d canary and %d baseline requests: %w", n1, n2, ErrEmptySample)
	}
	if x1 < 0 || x2 < 0 || x1 > n1 || x2 > n2 {
		return ZTest{}, fmt.Errorf("two-proportion z-test: errors %d/%d and %d/%d must be within [0, requests]", x1, n1, x2, n2)
	}
	f1, f2 := float64(n1), float64(n2)
	p1, p2 := float64(x1)/f1, float64(x2)/f2
	pbar := float64(x1+x2) / (f1 + f2)
	seP := math.Sqrt(pbar * (1 - pbar) * (1/f1 + 1/f2))
	se := seP
	if !pooled {
		se = math.Sqrt(p1*(1-p1)/f1 + p2*(1-p2)/f2)
		if se == 0 {
			se = seP
		}
	}
	k := 0.0
	if continuity {
		k = 0.5 * (1/f1 + 1/f2)
	}
	out := ZTest{Diff: p1 - p2, SE: se, PGreater: 1, PLess: 1, PTwoSided: 1}
	if se == 0 {
		return out, nil
	}
	out.Z = (out.Diff - k) / se
	out.ZLess = (out.Diff + k) / se
	out.ZTwoSided = math.Max(math.Abs(out.Diff)-k, 0) / se
	out.PGreater = NormSF(out.Z)
	out.PLess = NormCDF(out.ZLess)
	out.PTwoSided = math.Min(1, 2*NormSF(out.ZTwoSided))
	return out, nil
}

// RateRatioTest is the outcome of the conditional binomial (Poisson
// rate-ratio) test of statistics.md §3.4.
type RateRatioTest struct {
	// Rho = n₁/(n₁+n₂) is the canary's share of the requests.
	Rho float64
	// NullRatio is ψ₀, the rate ratio canary/baseline under H₀, and Theta0
	// = ρψ₀/(ρψ₀ + 1 − ρ) the canary's share of the errors it implies.
	NullRatio, Theta0 float64
	// TotalErrors is K = e₁ + e₂, the number of trials of the binomial.
	TotalErrors int64
	// PGreater = P(Bin(K, θ₀) ≥ e₁) tests ψ > ψ₀; PLess = P(Bin(K, θ₀) ≤ e₁)
	// tests ψ < ψ₀; PTwoSided sums outcomes no more likely than e₁.
	PGreater, PLess, PTwoSided float64
	// RateRatio is the estimate (e₁/n₁)/(e₂/n₂): +Inf without baseline
	// errors, NaN without any.
	RateRatio float64
}

// ConditionalBinomialTest tests the error-rate ratio ψ = λ₁/λ₂ of canary
// (e1 errors in n1 requests) and baseline (e2 in n2) against ψ₀ = nullRatio.
// Given the total K = e₁ + e₂, the canary's errors are Binomial(K, θ) with
// θ = ρψ/(ρψ + 1 − ρ), ρ = n₁/(n₁+n₂), whatever the common error rate, so
// the test is exact under the Poisson model and needs no variance estimate.
// A non-unit ψ₀ builds a tolerance into the null: with ψ₀ = 1.5,
// PGreater < α proves the canary's error rate is more than 1.5 times the
// baseline's, which is what "maxRelativeIncrease: 0.5" asks.
func ConditionalBinomialTest(e1, n1, e2, n2 int64, nullRatio float64) (RateRatioTest, error) {
	if err := checkCounts(e1, n1, e2, n2); err != nil {
		return RateRatioTest{}, fmt.Errorf("conditional binomial test: %w", err)
	}
	if !(nullRatio > 0) || math.IsInf(nullRatio, 0) {
		return RateRatioTest{}, fmt.Errorf("conditional binomial test: null rate ratio %v must be positive and finite", nullRatio)
	}
	rho := float64(n1) / float64(n1+n2)
	theta0 := rho * nullRatio / (rho*nullRatio + 1 - rho)
	k := e1 + e2
	out := RateRatioTest{
		Rho: rho, NullRatio: nullRatio, Theta0: theta0, TotalErrors: k,
		PGreater: 1, PLess: 1, PTwoSided: 1,
		RateRatio: rateRatio(e1, n1, e2, n2),
	}
	if k == 0 {
		return out, nil
	}
	lp := func(x int64) float64 { return BinomialLogPMF(x, k, theta0) }
	mode := binomialMode(k, theta0)
	sum := func(from, to int64) float64 { return math.Min(1, math.Exp(LogConcaveSum(lp, from, to, mode))) }
	out.PGreater = BinomialSF(e1, k, theta0)
	out.PLess = BinomialCDF(e1, k, theta0)
	out.PTwoSided = twoSidedExact(lp, 0, k, mode, e1, sum)
	return out, nil
}

func checkCounts(e1, n1, e2, n2 int64) error {
	if n1 <= 0 || n2 <= 0 {
		return fmt.Errorf("%d canary and %d baseline requests: %w", n1, n2, ErrEmptySample)
	}
	if e1 < 0 || e2 < 0 || e1 > n1 || e2 > n2 {
		return fmt.Errorf("errors %d/%d and %d/%d must be within [0, requests]", e1, n1, e2, n2)
	}
	return nil
}

func rateRatio(e1, n1, e2, n2 int64) float64 {
	r1, r2 := float64(e1)/float64(n1), float64(e2)/float64(n2)
	switch {
	case r1 == 0 && r2 == 0:
		return math.NaN()
	case r2 == 0:
		return math.Inf(1)
	}
	return r1 / r2
}

// RateRatioInterval returns the exact (Clopper–Pearson) confidence interval
// for the error-rate ratio ψ = λ₁/λ₂ at the given two-sided confidence
// level, from the conditional binomial of ConditionalBinomialTest: θ's
// interval mapped through ψ = θ(1−ρ)/((1−θ)ρ). Each end excludes α/2 =
// (1 − confidence)/2, so the interval at confidence 1 − 2α is dual to the
// one-sided tests at α: PGreater < α for ψ₀ exactly when the lower end
// exceeds ψ₀ (up to the bisection's precision). The lower end is 0 without
// canary errors and the upper end +Inf without baseline errors; with no
// errors at all the interval is [0, +Inf).
func RateRatioInterval(e1, n1, e2, n2 int64, confidence float64) (lower, upper float64, err error) {
	if err := checkCounts(e1, n1, e2, n2); err != nil {
		return 0, 0, fmt.Errorf("rate-ratio interval: %w", err)
	}
	if !(confidence > 0 && confidence < 1) {
		return 0, 0, fmt.Errorf("rate-ratio interval: confidence %v must be in (0, 1)", confidence)
	}
	tail := (1 - confidence) / 2
	rho := float64(n1) / float64(n1+n2)
	k := e1 + e2
	toRatio := func(logit float64) float64 { // ψ = θ/(1−θ)·(1−ρ)/ρ
		return math.Exp(logit) * (1 - rho) / rho
	}
	lower, upper = 0, math.Inf(1)
	if e1 > 0 {
		// P(X ≥ e₁; θ) rises with θ: find where it crosses tail.
		lower = toRatio(bisectLogit(func(theta float64) bool { return BinomialSF(e1, k, theta) < tail }))
	}
	if e1 < k {
		// P(X ≤ e₁; θ) falls with θ.
		upper = toRatio(bisectLogit(func(theta float64) bool { return BinomialCDF(e1, k, theta) > tail }))
	}
	return lower, upper, nil
}

// logConcaveMoments returns the mean and variance of the distribution on
// [lo, hi] with log-weights lp (log-concave, unnormalised). It finds the
// peak by bisection on the sign of lp(x+1) − lp(x), which log-concavity
// makes monotone, then walks outward until the remaining weight is
// negligible, so the cost is O(log(hi−lo) + spread) rather than O(hi−lo):
// Fisher's conditional MLE then stays cheap for millions of requests.
func logConcaveMoments(lp func(int64) float64, lo, hi int64) (mean, variance float64) {
	l, r := lo, hi // the peak is in [l, r]
	for l < r {
		m := l + (r-l)/2
		if lp(m+1) > lp(m) {
			l = m + 1
		} else {
			r = m
		}
	}
	peak := l
	ref := lp(peak)
	const negligible = 1e-18
	var s0, s1, s2 float64
	add := func(x int64, w float64) {
		d := float64(x - peak) // moments about the peak keep precision
		s0 += w
		s1 += w * d
		s2 += w * d * d
	}
	add(peak, 1)
	for _, step := range []int64{1, -1} {
		prev := 1.0
		for x := peak + step; x >= lo && x <= hi; x += step {
			w := math.Exp(lp(x) - ref)
			add(x, w)
			if w == 0 {
				break
			}
			if q := w / prev; q < 1 && w*q/(1-q) < negligible*s0 {
				break
			}
			prev = w
		}
	}
	m := s1 / s0
	return float64(peak) + m, math.Max(s2/s0-m*m, 0)
}

// bisectLogit returns the logit of the point in (0, 1) where below turns
// from true to false (below must be monotone: true for small θ). Working on
// the logit keeps relative precision for the tiny θ of a 0.1 % canary.
func bisectLogit(below func(theta float64) bool) float64 {
	lo, hi := -60.0, 60.0
	theta := func(l float64) float64 { return 1 / (1 + math.Exp(-l)) }
	for range 200 {
		mid := 0.5 * (lo + hi)
		if mid == lo || mid == hi || hi-lo < 1e-12 {
			break
		}
		if below(theta(mid)) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return 0.5 * (lo + hi)
}
