package stats

import (
	"errors"
	"fmt"
	"math"
)

// This file holds the count tests of statistics.md §4.2 (Lindon & Malek
// 2022): a Dirichlet–multinomial Bayes factor on running event counts, its
// one-sided two-arm variant and its confidence sequence. With a fixed
// traffic split, each event (an error, a request) comes from arm i with
// probability θᵢ whatever the common time profile of the traffic, so the
// running counts alone are a sufficient statistic and the Bayes factor is
// a test martingale under H₀: θ = θ₀.

// DirichletMultinomialLogBF returns ln BF = ln B(α₀+X) − ln B(α₀) − Σ Xᵢ ln θ₀ᵢ
// for cumulative counts X, null probabilities theta0 and Dirichlet prior
// alpha0 (all of the same length), with B(v) = Π Γ(vᵢ)/Γ(Σvᵢ). Zero counts
// give 0 (BF = 1). It is the SRM test of michaellindon/ssrm and, with two
// arms, the Beta–binomial error-count test.
func DirichletMultinomialLogBF(counts, theta0, alpha0 []float64) float64 {
	var sumA, sumAX, lb float64
	for i, x := range counts {
		a := alpha0[i]
		la, _ := math.Lgamma(a)
		lax, _ := math.Lgamma(a + x)
		lb += lax - la - seqXLogY(x, theta0[i])
		sumA += a
		sumAX += a + x
	}
	lsa, _ := math.Lgamma(sumA)
	lsax, _ := math.Lgamma(sumAX)
	return lb - lsax + lsa
}

// BetaBinomialLogBF is the two-arm case of DirichletMultinomialLogBF with
// prior Beta(kρ, k(1−ρ)): ln B(a+X_c, b+X_b) − ln B(a, b) − X_c ln ρ − X_b ln(1−ρ).
// canary and baseline are cumulative event counts, rho the canary's share
// under H₀ and k the prior concentration (larger k tunes the test to
// smaller effects; savvi uses 100).
func BetaBinomialLogBF(canary, baseline, rho, k float64) float64 {
	a, b := k*rho, k*(1-rho)
	return LogBeta(a+canary, b+baseline) - LogBeta(a, b) -
		seqXLogY(canary, rho) - seqXLogY(baseline, 1-rho)
}

// BetaBinomialOneSidedLogBF is the regression-only variant: the Beta prior
// is truncated to θ > ρ, so the statistic grows only when the canary gets
// more than its share of the events and cannot reject for an improvement:
//
//	BF⁺ = B(a+X_c, b+X_b)·(1 − I_ρ(a+X_c, b+X_b)) / (B(a, b)·(1 − I_ρ(a, b))) / (ρ^X_c (1−ρ)^X_b).
func BetaBinomialOneSidedLogBF(canary, baseline, rho, k float64) float64 {
	a, b := k*rho, k*(1-rho)
	return BetaBinomialLogBF(canary, baseline, rho, k) +
		seqLogBetaSF(rho, a+canary, b+baseline) - seqLogBetaSF(rho, a, b)
}

// MultinomialTest is the running state of the Lindon–Malek test: the
// cumulative counts per arm and the largest ln BF seen so far (which gives
// the always-valid p-value). It is a plain value that serialises to JSON,
// so a caller can persist it between looks; Update returns a new value and
// leaves the receiver untouched.
type MultinomialTest struct {
	// Theta0 is each arm's probability under H₀ (the traffic split).
	Theta0 []float64 `json:"theta0"`
	// Alpha0 is the Dirichlet prior, k·θ₀ by NewMultinomialTest.
	Alpha0 []float64 `json:"alpha0"`
	// Counts are the cumulative event counts per arm.
	Counts []float64 `json:"counts"`
	// MaxLogBF is max(0, max over looks of ln BF): ln of 1/p.
	MaxLogBF float64 `json:"maxLogBF"`
}

// NewMultinomialTest starts a test of H₀: θ = theta0 with the prior
// Dirichlet(k·theta0), centred on the null as in savvi and ssrm. theta0
// must be positive and sum to 1; k must be positive.
func NewMultinomialTest(theta0 []float64, k float64) (MultinomialTest, error) {
	if len(theta0) < 2 {
		return MultinomialTest{}, errors.New("multinomial test needs at least two arms")
	}
	if !(k > 0) || math.IsInf(k, 0) {
		return MultinomialTest{}, fmt.Errorf("prior concentration must be positive and finite, not %v", k)
	}
	sum := 0.0
	for i, p := range theta0 {
		if !(p > 0 && p < 1) {
			return MultinomialTest{}, fmt.Errorf("null probability of arm %d must be in (0, 1), not %v", i, p)
		}
		sum += p
	}
	if math.Abs(sum-1) > 1e-9 {
		return MultinomialTest{}, fmt.Errorf("null probabilities must sum to 1, not %v", sum)
	}
	t := MultinomialTest{
		Theta0: append([]float64(nil), theta0...),
		Alpha0: make([]float64, len(theta0)),
		Counts: make([]float64, len(theta0)),
	}
	for i, p := range theta0 {
		t.Alpha0[i] = k * p
	}
	return t, nil
}

// Update adds one batch of per-arm event counts. Batching is free: the
// statistic depends only on the cumulative counts, so one update per scrape
// interval equals one per event observed less often.
func (t MultinomialTest) Update(batch []float64) MultinomialTest {
	next := t
	next.Counts = append([]float64(nil), t.Counts...)
	for i, x := range batch {
		next.Counts[i] += x
	}
	next.MaxLogBF = max(t.MaxLogBF, next.LogBF())
	return next
}

// LogBF returns ln BF on the current counts.
func (t MultinomialTest) LogBF() float64 {
	return DirichletMultinomialLogBF(t.Counts, t.Theta0, t.Alpha0)
}

// PValue returns the always-valid p-value min(1, min over looks of 1/BF);
// P(∃t: p_t ≤ α) ≤ α under H₀.
func (t MultinomialTest) PValue() float64 { return math.Exp(-t.MaxLogBF) }

// Rejects reports whether H₀ is rejected at level alpha: BF reached 1/α at
// some look (Ville's inequality keeps the error ≤ α under any monitoring).
func (t MultinomialTest) Rejects(alpha float64) bool {
	return t.MaxLogBF >= -math.Log(alpha)
}

// SeqInterval is a closed interval [Lower, Upper], the value of a
// confidence sequence at one look.
type SeqInterval struct {
	Lower, Upper float64
}

// BetaBinomialCS returns the (1−alpha) confidence sequence of §4.2 for the
// canary's event share θ after canary and baseline events under the prior
// Beta(kρ, k(1−ρ)):
//
//	C_t = {θ : X_c ln θ + X_b ln(1−θ) ≥ ln α + ln B(a+X_c, b+X_b) − ln B(a, b)},
//
// the set of θ₀ the Bayes factor does not reject. Its end points are found
// by bisection on each side of X_c/(X_c+X_b), where the left side is
// largest. The second result is the same set for the rate ratio
// ψ = θ(1−ρ)/((1−θ)ρ) (the canary's per-request event rate over the
// baseline's): a lower end above 1+δ proves a regression, an upper end below
// 1+δ proves non-inferiority with margin δ.
func BetaBinomialCS(canary, baseline, rho, k, alpha float64) (theta, ratio SeqInterval) {
	a, b := k*rho, k*(1-rho)
	rhs := math.Log(alpha) + LogBeta(a+canary, b+baseline) - LogBeta(a, b)
	in := func(th float64) bool {
		return seqXLogY(canary, th)+seqXLogY(baseline, 1-th) >= rhs
	}
	n := canary + baseline
	mode := 0.5
	if n > 0 {
		mode = canary / n
	}
	theta = SeqInterval{Lower: 0, Upper: 1}
	if !in(0) {
		theta.Lower = seqBisect(mode, 0, in)
	}
	if !in(1) {
		theta.Upper = seqBisect(mode, 1, in)
	}
	return theta, SeqInterval{Lower: ThetaToRateRatio(theta.Lower, rho), Upper: ThetaToRateRatio(theta.Upper, rho)}
}

// ThetaToRateRatio converts the canary's share θ of the events into the
// rate ratio ψ = θ(1−ρ)/((1−θ)ρ) for a canary traffic share ρ (+Inf at θ = 1).
func ThetaToRateRatio(theta, rho float64) float64 {
	if theta >= 1 {
		return math.Inf(1)
	}
	return theta * (1 - rho) / ((1 - theta) * rho)
}
