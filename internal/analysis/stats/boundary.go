package stats

import "math"

// This file holds the normal-mixture boundary of Howard, Ramdas, McAuliffe
// & Sekhon (2021), statistics.md §4.4, in their notation: S = Σ(z_i − θ₀),
// intrinsic time v = nV, mixture parameter ρ = V²/τ². It matches
// gostevehoward/confseq (ρ(100, 0.05) = 12.60056, boundary 30.35209,
// one-sided 27.66071).

// NormalMixtureRho returns the ρ that makes the boundary tightest at the
// planned intrinsic time vOpt for level alpha:
// ρ = v_opt / (2 ln(1/α) + ln(1 + 2 ln(1/α))); the one-sided boundary uses
// 2α in this formula.
func NormalMixtureRho(vOpt, alpha float64, oneSided bool) float64 {
	if oneSided {
		alpha *= 2
	}
	l := 2 * math.Log(1/alpha)
	return vOpt / (l + math.Log1p(l))
}

// NormalMixtureLogM returns ln M, the normal-mixture martingale at sum s and
// intrinsic time v:
//
//	two-sided: ½ ln(ρ/(v+ρ)) + s²/(2(v+ρ))
//	one-sided: ½ ln(4ρ/(v+ρ)) + s²/(2(v+ρ)) + ln Φ(s/√(v+ρ)).
func NormalMixtureLogM(s, v, rho float64, oneSided bool) float64 {
	q := s * s / (2 * (v + rho))
	if !oneSided {
		return 0.5*math.Log(rho/(v+rho)) + q
	}
	return 0.5*math.Log(4*rho/(v+rho)) + q + math.Log(NormCDF(s/math.Sqrt(v+rho)))
}

// NormalMixtureBound returns the boundary at intrinsic time v: the s at
// which ln M reaches ln(1/α). Two-sided it is closed-form,
// sqrt((v+ρ)(ln(1 + v/ρ) + 2 ln(1/α))), and |S_n| below it for all n
// gives the confidence sequence θ ∈ z̄_n ± bound/n; one-sided it is found
// by bisection (ln M increases in s).
func NormalMixtureBound(v, rho, alpha float64, oneSided bool) float64 {
	if !oneSided {
		return math.Sqrt((v + rho) * (math.Log1p(v/rho) + 2*math.Log(1/alpha)))
	}
	target := math.Log(1 / alpha)
	below := func(s float64) bool { return NormalMixtureLogM(s, v, rho, true) < target }
	hi := math.Sqrt((v + rho) * (math.Log1p(v/rho) + 2*target))
	for below(hi) {
		hi *= 2
	}
	return seqBisect(0, hi, below)
}
