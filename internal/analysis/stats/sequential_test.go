package stats

import (
	"encoding/json"
	"math"
	"testing"
)

// Tolerances of statistics.md §8 for closed forms: 1e-9 relative, 1e-9
// absolute for log-values near zero.
const (
	seqRel = 1e-9
	seqAbs = 1e-9
)

func seqDecode(t *testing.T, raw json.RawMessage, into any) {
	t.Helper()
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("decode vector field: %v", err)
	}
}

func seqCheck(t *testing.T, what string, got, want float64) {
	t.Helper()
	if !closeRel(got, want, seqRel, seqAbs) {
		t.Errorf("%s = %.12g, want %.12g", what, got, want)
	}
}

func TestSequentialMultinomialLindonMalek(t *testing.T) {
	for _, v := range loadVectors(t, "sequential_multinomial_lindon_malek") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				Batches [][2]float64 `json:"batches_canary_baseline_errors"`
			}
			var p struct {
				Theta0 []float64 `json:"theta0"`
				Alpha0 []float64 `json:"dirichlet_alpha0"`
				K      float64   `json:"prior_concentration_k"`
			}
			var out struct {
				Sequence []struct {
					NCanary   float64 `json:"n_canary"`
					NBaseline float64 `json:"n_baseline"`
					LogBF     num     `json:"log_bf"`
					BF        num     `json:"bf"`
					PValue    num     `json:"p_value"`
					Reject    bool    `json:"reject_alpha_0.05"`
					OneLogBF  num     `json:"one_sided_log_bf"`
					OnePValue num     `json:"one_sided_p_value"`
				} `json:"sequence"`
			}
			seqDecode(t, v.Inputs, &in)
			seqDecode(t, v.Params, &p)
			seqDecode(t, v.Outputs, &out)
			test, err := NewMultinomialTest(p.Theta0, p.K)
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range p.Alpha0 {
				seqCheck(t, "alpha0", test.Alpha0[i], a)
			}
			oneMax := 0.0
			for i, b := range in.Batches {
				test = test.Update(b[:])
				w := out.Sequence[i]
				if test.Counts[0] != w.NCanary || test.Counts[1] != w.NBaseline {
					t.Fatalf("look %d: counts %v, want %v/%v", i, test.Counts, w.NCanary, w.NBaseline)
				}
				seqCheck(t, "ln BF", test.LogBF(), float64(w.LogBF))
				seqCheck(t, "BF", math.Exp(test.LogBF()), float64(w.BF))
				seqCheck(t, "p", test.PValue(), float64(w.PValue))
				if got := test.Rejects(0.05); got != w.Reject {
					t.Errorf("look %d: rejects = %v, want %v", i, got, w.Reject)
				}
				// The two-arm closed form agrees with the Dirichlet form.
				rho := p.Theta0[0]
				seqCheck(t, "two-arm ln BF", BetaBinomialLogBF(test.Counts[0], test.Counts[1], rho, p.K), float64(w.LogBF))
				one := BetaBinomialOneSidedLogBF(test.Counts[0], test.Counts[1], rho, p.K)
				seqCheck(t, "one-sided ln BF", one, float64(w.OneLogBF))
				oneMax = max(oneMax, one)
				seqCheck(t, "one-sided p", math.Exp(-oneMax), float64(w.OnePValue))
			}
		})
	}
}

func TestSequentialMultinomialConfidenceSequence(t *testing.T) {
	for _, v := range loadVectors(t, "sequential_multinomial_confidence_sequence") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				Canary   float64 `json:"n_canary_events"`
				Baseline float64 `json:"n_baseline_events"`
			}
			var p struct {
				Rho   float64 `json:"rho"`
				K     float64 `json:"prior_concentration_k"`
				Alpha float64 `json:"alpha"`
			}
			var out struct {
				ThetaLower num `json:"theta_lower"`
				ThetaUpper num `json:"theta_upper"`
				RatioLower num `json:"rate_ratio_lower"`
				RatioUpper num `json:"rate_ratio_upper"`
			}
			seqDecode(t, v.Inputs, &in)
			seqDecode(t, v.Params, &p)
			seqDecode(t, v.Outputs, &out)
			theta, ratio := BetaBinomialCS(in.Canary, in.Baseline, p.Rho, p.K, p.Alpha)
			seqCheck(t, "θ lower", theta.Lower, float64(out.ThetaLower))
			seqCheck(t, "θ upper", theta.Upper, float64(out.ThetaUpper))
			seqCheck(t, "ψ lower", ratio.Lower, float64(out.RatioLower))
			seqCheck(t, "ψ upper", ratio.Upper, float64(out.RatioUpper))
		})
	}
}

func TestBetaBinomialCSEdges(t *testing.T) {
	// No events: every θ is in the set.
	theta, _ := BetaBinomialCS(0, 0, 0.1, 100, 0.05)
	if theta.Lower != 0 || theta.Upper != 1 {
		t.Errorf("empty CS = %+v, want [0, 1]", theta)
	}
	// Only baseline events: θ = 0 stays in, the upper end shrinks.
	theta, ratio := BetaBinomialCS(0, 200, 0.5, 100, 0.05)
	if theta.Lower != 0 || !(theta.Upper < 0.5) || !(ratio.Upper < 1) {
		t.Errorf("baseline-only CS = %+v (ratio %+v), want [0, <0.5]", theta, ratio)
	}
}

func TestSequentialRateRatioGridMixture(t *testing.T) {
	for _, v := range loadVectors(t, "sequential_rate_ratio_grid_mixture") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				Batches [][4]float64 `json:"batches_canary_err_baseline_err_canary_req_baseline_req"`
			}
			var p struct {
				Grid []float64 `json:"grid_log_rate_ratio"`
			}
			var out struct {
				Sequence []struct {
					Rho    num `json:"rho"`
					LogMix num `json:"log_mixture"`
					PValue num `json:"p_value"`
				} `json:"sequence"`
			}
			seqDecode(t, v.Inputs, &in)
			seqDecode(t, v.Params, &p)
			seqDecode(t, v.Outputs, &out)
			// The vector's grid is ln ψ = 0.1 … 2.0 against ψ = 1: a grid
			// centred on 0 with the null at its first point.
			g, err := NewRateRatioGrid(0, 0.1, 0, len(p.Grid)+1)
			if err != nil {
				t.Fatal(err)
			}
			for j, lp := range p.Grid {
				seqCheck(t, "grid point", g.LogPsi(j+1), lp)
			}
			maxLog := 0.0
			for i, b := range in.Batches {
				batch := RateRatioBatch{CanaryEvents: b[0], BaselineEvents: b[1], CanaryExposure: b[2], BaselineExposure: b[3]}
				rho, _ := batch.Split()
				g = g.Update(batch)
				le, ok := g.LogE(0, len(p.Grid), true)
				if !ok {
					t.Fatal("alternatives leave the grid")
				}
				maxLog = max(maxLog, le)
				w := out.Sequence[i]
				seqCheck(t, "ρ", rho, float64(w.Rho))
				seqCheck(t, "ln M", le, float64(w.LogMix))
				seqCheck(t, "p", math.Exp(-maxLog), float64(w.PValue))
			}
		})
	}
}

func TestRateRatioGridConstantSplitMatchesClosedForm(t *testing.T) {
	// One batch at ψ: the grid's log-likelihood ratio is the binomial one.
	b := RateRatioBatch{CanaryEvents: 7, BaselineEvents: 30, CanaryExposure: 1000, BaselineExposure: 9000}
	rho := 0.1
	for _, psi := range []float64{0.5, 1, 2, 7} {
		th := rho * psi / (rho*psi + 1 - rho)
		want := 7*math.Log(th/rho) + 30*math.Log((1-th)/(1-rho))
		seqCheck(t, "batch ln LR", RateRatioLogLR(b, math.Log(psi)), want)
	}
	// Batches without a split carry no information.
	g, _ := NewRateRatioGrid(0, 0.1, 5, 11)
	g2 := g.Update(RateRatioBatch{CanaryEvents: 0, BaselineEvents: 3, CanaryExposure: 0, BaselineExposure: 100})
	for i, l := range g2.LogLR {
		if l != 0 {
			t.Errorf("LogLR[%d] = %v after a batch without canary traffic", i, l)
		}
	}
}

func TestRateRatioGridBounds(t *testing.T) {
	// A clear regression (canary 10× the baseline rate) puts the lower
	// bound above 1 and the upper bound above the lower.
	g, _ := NewRateRatioGrid(0, 0.1, 60, 121)
	for range 20 {
		g = g.Update(RateRatioBatch{CanaryEvents: 5, BaselineEvents: 10, CanaryExposure: 500, BaselineExposure: 9500})
	}
	lt := math.Log(100.0)
	lo, hi := g.LowerBound(20, lt), g.UpperBound(20, lt)
	if !(lo > 3 && lo < 10 && hi > 10 && hi < 40) {
		t.Errorf("bounds [%v, %v] for a true ratio of 9.5", lo, hi)
	}
	// The lower bound is the largest rejected grid point: its test
	// rejects, the next one's does not.
	i := int(math.Round(math.Log(lo)/0.1)) + 60
	if le, _ := g.LogE(i, 20, true); le < lt {
		t.Errorf("ln E at the lower bound = %v, below %v", le, lt)
	}
	if le, _ := g.LogE(i+1, 20, true); le >= lt {
		t.Errorf("ln E above the lower bound = %v, not below %v", le, lt)
	}
	// No data: the bounds are unbounded.
	empty, _ := NewRateRatioGrid(0, 0.1, 60, 121)
	if lo, hi := empty.LowerBound(20, lt), empty.UpperBound(20, lt); lo != 0 || !math.IsInf(hi, 1) {
		t.Errorf("empty bounds [%v, %v], want [0, +Inf]", lo, hi)
	}
}

func TestMSPRTNormalMixture(t *testing.T) {
	for _, v := range loadVectors(t, "msprt_normal_mixture") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				Z []float64 `json:"z"`
			}
			var p struct {
				V      float64 `json:"sigma2_of_z"`
				Tau2   float64 `json:"tau2"`
				Theta0 float64 `json:"theta0"`
			}
			var out struct {
				Sequence []struct {
					N         int `json:"n"`
					Mean      num `json:"mean"`
					LogLambda num `json:"log_lambda"`
					Lambda    num `json:"lambda"`
					PValue    num `json:"p_value"`
				} `json:"sequence"`
			}
			seqDecode(t, v.Inputs, &in)
			seqDecode(t, v.Params, &p)
			seqDecode(t, v.Outputs, &out)
			m := MSPRTNormal{V: p.V, Tau2: p.Tau2, Theta0: p.Theta0}
			for i, z := range in.Z {
				m = m.Update(z)
				w := out.Sequence[i]
				if m.N != w.N {
					t.Fatalf("n = %d, want %d", m.N, w.N)
				}
				seqCheck(t, "mean", m.Sum/float64(m.N), float64(w.Mean))
				seqCheck(t, "ln Λ", m.LogLambda, float64(w.LogLambda))
				seqCheck(t, "Λ", math.Exp(m.LogLambda), float64(w.Lambda))
				seqCheck(t, "p", m.PValue(), float64(w.PValue))
				// Howard et al.'s form: S = n(z̄−θ₀), v = nV, ρ = V²/τ².
				s, vv, rho := m.Sum-float64(m.N)*p.Theta0, float64(m.N)*p.V, p.V*p.V/p.Tau2
				seqCheck(t, "Howard ln M", NormalMixtureLogM(s, vv, rho, false), m.LogLambda)
			}
		})
	}
}

func TestMSPRTBernoulliPlugin(t *testing.T) {
	for _, v := range loadVectors(t, "msprt_bernoulli_plugin") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				Canary   []float64 `json:"canary"`
				Baseline []float64 `json:"baseline"`
			}
			var p struct {
				Tau2 float64 `json:"tau2"`
			}
			var out struct {
				Sequence []struct {
					N         int `json:"n"`
					V         num `json:"V_n"`
					LogLambda num `json:"log_lambda"`
					PValue    num `json:"p_value"`
				} `json:"sequence"`
			}
			seqDecode(t, v.Inputs, &in)
			seqDecode(t, v.Params, &p)
			seqDecode(t, v.Outputs, &out)
			m := MSPRTBernoulli{Tau2: p.Tau2}
			for i := range in.Canary {
				m = m.Update(in.Canary[i], in.Baseline[i])
				w := out.Sequence[i]
				seqCheck(t, "V_n", m.V, float64(w.V))
				seqCheck(t, "ln Λ", m.LogLambda, float64(w.LogLambda))
				seqCheck(t, "p", m.PValue(), float64(w.PValue))
			}
		})
	}
}
