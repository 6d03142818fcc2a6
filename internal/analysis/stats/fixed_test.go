package stats

import (
	"errors"
	"math"
	"testing"
)

func TestFisherExactVectors(t *testing.T) {
	for _, v := range loadVectors(t, "fisher_exact") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct{ Table [2][2]int64 }
			decodeInto(t, v.Inputs, &in)
			out := map[string]num{}
			decodeInto(t, v.Outputs, &out)
			mustHave(t, out, "p_two_sided", "p_greater", "p_less", "sample_odds_ratio", "conditional_mle_odds_ratio")
			f, err := FisherExact(in.Table[0][0], in.Table[0][1], in.Table[1][0], in.Table[1][1])
			if err != nil {
				t.Fatal(err)
			}
			checkNum(t, out, "p_two_sided", f.PTwoSided, relClosed, absTiny)
			checkNum(t, out, "p_greater", f.PGreater, relClosed, absTiny)
			checkNum(t, out, "p_less", f.PLess, relClosed, absTiny)
			checkNum(t, out, "sample_odds_ratio", f.SampleOddsRatio, relClosed, absTiny)
			// The MLE is a root; scipy's brentq and our Newton agree far
			// beyond statistics.md's 1e-4 for root-finding.
			checkNum(t, out, "conditional_mle_odds_ratio", f.ConditionalMLEOddsRatio, 1e-8, absTiny)
		})
	}
}

func TestTwoProportionZTestVectors(t *testing.T) {
	for _, v := range loadVectors(t, "two_proportion_z_test") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				X1 int64 `json:"canary_errors"`
				N1 int64 `json:"canary_requests"`
				X2 int64 `json:"baseline_errors"`
				N2 int64 `json:"baseline_requests"`
			}
			decodeInto(t, v.Inputs, &in)
			out := map[string]num{}
			decodeInto(t, v.Outputs, &out)
			for _, variant := range []struct {
				name               string
				pooled, continuity bool
			}{{"pooled_nocc", true, false}, {"pooled_cc", true, true}, {"unpooled_nocc", false, false}, {"unpooled_cc", false, true}} {
				mustHave(t, out, variant.name+"_z", variant.name+"_p_greater", variant.name+"_p_less", variant.name+"_p_two_sided")
				z, err := TwoProportionZTest(in.X1, in.N1, in.X2, in.N2, variant.pooled, variant.continuity)
				if err != nil {
					t.Fatal(err)
				}
				checkNum(t, out, variant.name+"_diff", z.Diff, relClosed, absTiny)
				checkNum(t, out, variant.name+"_se", z.SE, relClosed, absTiny)
				checkNum(t, out, variant.name+"_z", z.Z, relClosed, absTiny)
				checkNum(t, out, variant.name+"_p_greater", z.PGreater, relClosed, absTiny)
				checkNum(t, out, variant.name+"_p_less", z.PLess, relClosed, absTiny)
				checkNum(t, out, variant.name+"_p_two_sided", z.PTwoSided, relClosed, absTiny)
			}
		})
	}
}

func TestConditionalBinomialVectors(t *testing.T) {
	for _, v := range loadVectors(t, "poisson_conditional_binomial_test") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				E1 int64 `json:"canary_errors"`
				N1 int64 `json:"canary_requests"`
				E2 int64 `json:"baseline_errors"`
				N2 int64 `json:"baseline_requests"`
			}
			decodeInto(t, v.Inputs, &in)
			out := map[string]num{}
			decodeInto(t, v.Outputs, &out)
			mustHave(t, out, "rho", "total_errors", "p_greater", "p_two_sided", "rate_ratio_estimate")
			r, err := ConditionalBinomialTest(in.E1, in.N1, in.E2, in.N2, 1)
			if err != nil {
				t.Fatal(err)
			}
			checkNum(t, out, "rho", r.Rho, relClosed, absTiny)
			checkNum(t, out, "total_errors", float64(r.TotalErrors), 0, 0)
			checkNum(t, out, "p_greater", r.PGreater, relClosed, absTiny)
			checkNum(t, out, "p_two_sided", r.PTwoSided, relClosed, absTiny)
			checkNum(t, out, "rate_ratio_estimate", r.RateRatio, relClosed, absTiny)
		})
	}
}

func TestFisherAndZEdgeCases(t *testing.T) {
	if _, err := FisherExact(-1, 2, 3, 4); err == nil {
		t.Error("negative cell accepted")
	}
	// All requests failed in both arms: one possible table.
	f, err := FisherExact(5, 0, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.PGreater != 1 || f.PLess != 1 || f.PTwoSided != 1 || !math.IsNaN(f.ConditionalMLEOddsRatio) {
		t.Errorf("all failed: %+v", f)
	}
	// Fewer canary errors than possible: conditional MLE 0.
	f, _ = FisherExact(0, 100, 9, 91)
	if f.ConditionalMLEOddsRatio != 0 || f.SampleOddsRatio != 0 {
		t.Errorf("no canary errors: MLE %v, sample %v; want 0", f.ConditionalMLEOddsRatio, f.SampleOddsRatio)
	}
	// Large tables stay cheap and within [0, 1].
	f, _ = FisherExact(1200, 98800, 10000, 990000)
	if !(f.PGreater > 0 && f.PGreater < 1e-6) || f.PGreater+f.PLess < 1-1e-12 || f.PTwoSided < f.PGreater {
		t.Errorf("large table: %+v", f)
	}

	for _, c := range [][4]int64{{0, 0, 1, 1}, {1, 1, 0, 0}} {
		if _, err := TwoProportionZTest(c[0], c[1], c[2], c[3], true, false); !errors.Is(err, ErrEmptySample) {
			t.Errorf("z-test %v: error %v, want ErrEmptySample", c, err)
		}
	}
	if _, err := TwoProportionZTest(5, 4, 0, 10, true, false); err == nil {
		t.Error("more errors than requests accepted")
	}
	// Unpooled SE is 0 when both rates are 0 or 1: fall back to pooled.
	z, _ := TwoProportionZTest(0, 100, 100, 100, false, false)
	pooled, _ := TwoProportionZTest(0, 100, 100, 100, true, false)
	if z.SE != pooled.SE || z.SE == 0 {
		t.Errorf("unpooled SE %v, pooled %v", z.SE, pooled.SE)
	}
}

func TestConditionalBinomialToleranceNull(t *testing.T) {
	// 30 vs 20 errors at equal traffic: ψ̂ = 1.5. Against ψ₀ = 1 it is
	// weak evidence; against ψ₀ = 1.5 it is none at all.
	r1, _ := ConditionalBinomialTest(30, 1000, 20, 1000, 1)
	r15, _ := ConditionalBinomialTest(30, 1000, 20, 1000, 1.5)
	if !(r15.PGreater > r1.PGreater) || !closeRel(r15.Theta0, 0.6, 1e-15, 0) {
		t.Errorf("ψ₀=1: p=%v; ψ₀=1.5: p=%v θ₀=%v", r1.PGreater, r15.PGreater, r15.Theta0)
	}
	// ψ₀ scales the exposure: testing ψ₀ = 2 at equal traffic is the same
	// as testing ψ₀ = 1 with the canary's traffic doubled.
	a, _ := ConditionalBinomialTest(30, 1000, 20, 1000, 2)
	b, _ := ConditionalBinomialTest(30, 2000, 20, 1000, 1)
	if !closeRel(a.PGreater, b.PGreater, 1e-12, 0) || !closeRel(a.PTwoSided, b.PTwoSided, 1e-12, 0) {
		t.Errorf("ψ₀=2: %v/%v; doubled exposure: %v/%v", a.PGreater, a.PTwoSided, b.PGreater, b.PTwoSided)
	}
	if _, err := ConditionalBinomialTest(1, 10, 1, 10, 0); err == nil {
		t.Error("ψ₀ = 0 accepted")
	}
	if _, err := ConditionalBinomialTest(1, 0, 1, 10, 1); !errors.Is(err, ErrEmptySample) {
		t.Errorf("no canary requests: %v", err)
	}
	// Binomial tails against a direct sum.
	for _, c := range []struct {
		x, n int64
		p    float64
	}{{3, 10, 0.2}, {0, 5, 0.5}, {7, 7, 0.9}, {40, 1000, 0.01}} {
		s := 0.0
		for k := c.x; k <= c.n; k++ {
			s += math.Exp(BinomialLogPMF(k, c.n, c.p))
		}
		if got := BinomialSF(c.x, c.n, c.p); !closeRel(got, s, 1e-12, 1e-300) {
			t.Errorf("BinomialSF(%d, %d, %v) = %v, direct sum %v", c.x, c.n, c.p, got, s)
		}
	}
}

func TestRateRatioIntervalIsDualToTheTest(t *testing.T) {
	cases := []struct{ e1, n1, e2, n2 int64 }{
		{82, 812, 15, 15402}, {30, 1000, 20, 1000}, {7, 1000, 2, 2000}, {1, 500, 40, 9500},
	}
	const alpha = 0.01
	for _, c := range cases {
		lo, hi, err := RateRatioInterval(c.e1, c.n1, c.e2, c.n2, 1-2*alpha)
		if err != nil {
			t.Fatal(err)
		}
		est := rateRatio(c.e1, c.n1, c.e2, c.n2)
		if !(lo < est && est < hi) {
			t.Errorf("%v: interval [%v, %v] misses the estimate %v", c, lo, hi, est)
		}
		// At the lower end the one-sided p-value equals α.
		r, _ := ConditionalBinomialTest(c.e1, c.n1, c.e2, c.n2, lo)
		if !closeRel(r.PGreater, alpha, 1e-6, 0) {
			t.Errorf("%v: PGreater at lower end %v = %v, want %v", c, lo, r.PGreater, alpha)
		}
		r, _ = ConditionalBinomialTest(c.e1, c.n1, c.e2, c.n2, hi)
		if !closeRel(r.PLess, alpha, 1e-6, 0) {
			t.Errorf("%v: PLess at upper end %v = %v, want %v", c, hi, r.PLess, alpha)
		}
	}
	lo, hi, _ := RateRatioInterval(0, 100, 0, 100, 0.95)
	if lo != 0 || !math.IsInf(hi, 1) {
		t.Errorf("no errors: [%v, %v], want [0, +Inf)", lo, hi)
	}
	lo, hi, _ = RateRatioInterval(3, 100, 0, 100, 0.95)
	if !(lo > 0) || !math.IsInf(hi, 1) {
		t.Errorf("no baseline errors: [%v, %v], want [>0, +Inf)", lo, hi)
	}
}

// TestExactTestsAgainstBruteForce checks the tail and two-sided sums, which
// prune and bisect, against plain sums over the whole support on every
// small table.
func TestExactTestsAgainstBruteForce(t *testing.T) {
	for n1 := int64(1); n1 <= 9; n1++ {
		for n2 := int64(1); n2 <= 9; n2 += 2 {
			for a := int64(0); a <= n1; a++ {
				for c := int64(0); c <= n2; c++ {
					f, err := FisherExact(a, n1-a, c, n2-c)
					if err != nil {
						t.Fatal(err)
					}
					h := newHypergeom(n1, n2, a+c)
					var gt, lt, two float64
					pa := math.Exp(h.logPMF(a))
					for x := h.lo; x <= h.hi; x++ {
						px := math.Exp(h.logPMF(x))
						if x >= a {
							gt += px
						}
						if x <= a {
							lt += px
						}
						if px <= pa*(1+1e-7) {
							two += px
						}
					}
					if !closeRel(f.PGreater, math.Min(1, gt), 1e-12, 1e-15) || !closeRel(f.PLess, math.Min(1, lt), 1e-12, 1e-15) || !closeRel(f.PTwoSided, math.Min(1, two), 1e-12, 1e-15) {
						t.Errorf("[[%d %d] [%d %d]]: got %v/%v/%v, brute force %v/%v/%v", a, n1-a, c, n2-c, f.PGreater, f.PLess, f.PTwoSided, gt, lt, two)
					}
					r, _ := ConditionalBinomialTest(a, n1, c, n2, 1.3)
					k := a + c
					var bgt, blt, btwo float64
					pb := math.Exp(BinomialLogPMF(a, k, r.Theta0))
					for x := int64(0); x <= k; x++ {
						px := math.Exp(BinomialLogPMF(x, k, r.Theta0))
						if x >= a {
							bgt += px
						}
						if x <= a {
							blt += px
						}
						if px <= pb*(1+1e-7) {
							btwo += px
						}
					}
					if !closeRel(r.PGreater, math.Min(1, bgt), 1e-12, 1e-15) || !closeRel(r.PLess, math.Min(1, blt), 1e-12, 1e-15) || !closeRel(r.PTwoSided, math.Min(1, btwo), 1e-12, 1e-15) {
						t.Errorf("binomial %d of %d at θ₀=%v: got %v/%v/%v, brute force %v/%v/%v", a, k, r.Theta0, r.PGreater, r.PLess, r.PTwoSided, bgt, blt, btwo)
					}
				}
			}
		}
	}
}

// FuzzExactCountTests feeds arbitrary counts to the exact tests and the
// interval: no panic, every p-value in [0, 1], the interval ordered.
func FuzzExactCountTests(f *testing.F) {
	f.Add(uint32(82), uint32(812), uint32(15), uint32(15402), uint16(150))
	f.Add(uint32(0), uint32(1), uint32(0), uint32(1), uint16(0))
	f.Add(uint32(1<<20), uint32(1<<21), uint32(7), uint32(1<<24), uint16(65535))
	f.Fuzz(func(t *testing.T, e1, n1, e2, n2 uint32, tol uint16) {
		if n1 == 0 || n2 == 0 {
			return
		}
		a, n, c, m := int64(e1%(n1+1)), int64(n1), int64(e2%(n2+1)), int64(n2)
		psi := 1 + float64(tol)/1000
		inUnit := func(p float64) bool { return p >= 0 && p <= 1 }
		r, err := ConditionalBinomialTest(a, n, c, m, psi)
		if err != nil {
			t.Fatal(err)
		}
		if !inUnit(r.PGreater) || !inUnit(r.PLess) || !inUnit(r.PTwoSided) {
			t.Fatalf("conditional binomial %d/%d vs %d/%d: %+v", a, n, c, m, r)
		}
		if n+m <= 1<<22 { // keep each fuzz input fast
			fe, err := FisherExact(a, n-a, c, m-c)
			if err != nil {
				t.Fatal(err)
			}
			if !inUnit(fe.PGreater) || !inUnit(fe.PLess) || !inUnit(fe.PTwoSided) || math.IsNaN(fe.ConditionalMLEOddsRatio) != (a+c == 0 || a+c == n+m) {
				t.Fatalf("fisher [[%d %d] [%d %d]]: %+v", a, n-a, c, m-c, fe)
			}
		}
		lo, hi, err := RateRatioInterval(a, n, c, m, 0.98)
		if err != nil {
			t.Fatal(err)
		}
		if math.IsNaN(lo) || math.IsNaN(hi) || lo < 0 || lo > hi {
			t.Fatalf("interval %d/%d vs %d/%d: [%v, %v]", a, n, c, m, lo, hi)
		}
	})
}
