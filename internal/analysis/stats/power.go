package stats

import (
	"fmt"
	"math"
)

// MannWhitneyNoether returns the total sample size N of Noether (1987) for
// a Mann-Whitney test to detect P(canary > baseline) = pGreater with power
// 1−β at level α, the canary taking the fraction c of N:
// N = (z_{1−α} + z_{1−β})² / (12·c·(1−c)·(P − ½)²), with α halved for a
// two-sided test (sided = 2). It returns the canary and baseline parts too,
// unrounded, so a caller can decide how to round.
func MannWhitneyNoether(pGreater, c, alpha, power float64, sided int) (total, canary, baseline float64, err error) {
	switch {
	case !(pGreater > 0 && pGreater < 1) || pGreater == 0.5:
		return 0, 0, 0, fmt.Errorf("noether sample size: P(canary > baseline) = %v must be in (0, 1) and not ½", pGreater)
	case !(c > 0 && c < 1):
		return 0, 0, 0, fmt.Errorf("noether sample size: canary fraction %v must be in (0, 1)", c)
	case !(alpha > 0 && alpha < 1) || !(power > 0 && power < 1):
		return 0, 0, 0, fmt.Errorf("noether sample size: alpha %v and power %v must be in (0, 1)", alpha, power)
	case sided != 1 && sided != 2:
		return 0, 0, 0, fmt.Errorf("noether sample size: sided must be 1 or 2, not %d", sided)
	}
	za := NormQuantile(1 - alpha/float64(sided))
	zb := NormQuantile(power)
	d := pGreater - 0.5
	total = (za + zb) * (za + zb) / (12 * c * (1 - c) * d * d)
	return total, c * total, (1 - c) * total, nil
}

// ProportionSampleSize is the canary sample size needed to detect an error
// rate rising from p₀ (baseline) to p₁ (canary) when the baseline gets k
// requests for every canary request (statistics.md §3.5). Several formulas
// are reported because they answer slightly different questions; Fleiss
// matches the pooled z-test the judges can run.
type ProportionSampleSize struct {
	// Fleiss is n for the pooled z-test without continuity correction.
	Fleiss float64
	// FleissCeil is ⌈Fleiss⌉ and BaselineCeil = ⌈⌈Fleiss⌉·k⌉, the requests
	// the baseline then needs.
	FleissCeil, BaselineCeil int64
	// FleissCC adds the Fleiss–Tytun–Ury continuity correction.
	FleissCC float64
	// Arcsine is n from Cohen's h = 2·asin√p₁ − 2·asin√p₀ (CohensH).
	Arcsine, CohensH float64
	// AchievedPower is the pooled z-test's power at FleissCeil, which is at
	// least the requested power (rounding up never loses power).
	AchievedPower float64
}

// SampleSizeTwoProportions computes ProportionSampleSize for level alpha
// (one-sided when sided = 1, α/2 per side when 2) and the given power.
func SampleSizeTwoProportions(p0, p1, alpha, power, k float64, sided int) (ProportionSampleSize, error) {
	if err := checkProportions(p0, p1, alpha, sided); err != nil {
		return ProportionSampleSize{}, err
	}
	if !(power > 0 && power < 1) {
		return ProportionSampleSize{}, fmt.Errorf("sample size for two proportions: power %v must be in (0, 1)", power)
	}
	if !(k > 0) || math.IsInf(k, 0) {
		return ProportionSampleSize{}, fmt.Errorf("sample size for two proportions: baseline/canary ratio %v must be positive", k)
	}
	za := NormQuantile(1 - alpha/float64(sided))
	zb := NormQuantile(power)
	d := math.Abs(p1 - p0)
	pbar := (p1 + k*p0) / (1 + k)
	a := za*math.Sqrt(pbar*(1-pbar)*(1+1/k)) + zb*math.Sqrt(p1*(1-p1)+p0*(1-p0)/k)
	n := a * a / (d * d)
	cc := 1 + math.Sqrt(1+2*(k+1)/(k*n*d))
	h := 2*math.Asin(math.Sqrt(p1)) - 2*math.Asin(math.Sqrt(p0))
	out := ProportionSampleSize{
		Fleiss:     n,
		FleissCeil: int64(math.Ceil(n)),
		FleissCC:   n / 4 * cc * cc,
		Arcsine:    (za + zb) * (za + zb) * (1 + 1/k) / (h * h),
		CohensH:    h,
	}
	out.BaselineCeil = int64(math.Ceil(float64(out.FleissCeil) * k))
	out.AchievedPower, _ = PowerTwoProportions(p0, p1, alpha, float64(out.FleissCeil), float64(out.BaselineCeil), sided)
	return out, nil
}

// PowerTwoProportions returns the power of the pooled two-proportion z-test
// (no continuity correction) with n1 canary and n2 baseline requests:
// Φ((|Δ| − z_{1−α}·√(p̄q̄(1/n₁+1/n₂))) / √(p₁q₁/n₁ + p₀q₀/n₂)),
// p̄ = (n₁p₁ + n₂p₀)/(n₁+n₂). It tells an operator, before a rollout, how
// likely a fixed judge is to catch a regression of the given size.
func PowerTwoProportions(p0, p1, alpha, n1, n2 float64, sided int) (float64, error) {
	if err := checkProportions(p0, p1, alpha, sided); err != nil {
		return 0, err
	}
	if !(n1 > 0) || !(n2 > 0) {
		return 0, fmt.Errorf("power of two proportions: sample sizes %v and %v must be positive", n1, n2)
	}
	za := NormQuantile(1 - alpha/float64(sided))
	pbar := (n1*p1 + n2*p0) / (n1 + n2)
	num := math.Abs(p1-p0) - za*math.Sqrt(pbar*(1-pbar)*(1/n1+1/n2))
	return NormCDF(num / math.Sqrt(p1*(1-p1)/n1+p0*(1-p0)/n2)), nil
}

func checkProportions(p0, p1, alpha float64, sided int) error {
	switch {
	case !(p0 > 0 && p0 < 1) || !(p1 > 0 && p1 < 1):
		return fmt.Errorf("two proportions: rates %v and %v must be in (0, 1)", p0, p1)
	case p0 == p1:
		return fmt.Errorf("two proportions: rates are equal (%v), there is no effect to detect", p0)
	case !(alpha > 0 && alpha < 1):
		return fmt.Errorf("two proportions: alpha %v must be in (0, 1)", alpha)
	case sided != 1 && sided != 2:
		return fmt.Errorf("two proportions: sided must be 1 or 2, not %d", sided)
	}
	return nil
}
