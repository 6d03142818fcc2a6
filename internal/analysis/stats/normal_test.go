package stats

import (
	"math"
	"testing"
)

func TestNormalQuantileInvertsCDF(t *testing.T) {
	for _, p := range []float64{1e-300, 1e-20, 1e-6, 0.001, 0.01, 0.025, 0.05, 0.3, 0.5, 0.7, 0.95, 0.975, 0.999, 1 - 1e-9} {
		x := NormQuantile(p)
		got := NormCDF(x)
		if p > 0.5 {
			got, p = NormSF(x), 1-p // compare the small tail
		}
		if !closeRel(got, p, 1e-12, 0) {
			t.Errorf("Φ(Φ⁻¹(%v)) = %v", p, got)
		}
	}
	// Textbook critical values.
	for _, c := range []struct{ p, z float64 }{{0.975, 1.959963984540054}, {0.95, 1.6448536269514722}, {0.99, 2.3263478740408408}} {
		if got := NormQuantile(c.p); !closeRel(got, c.z, 1e-15, 0) {
			t.Errorf("Φ⁻¹(%v) = %.17g, want %.17g", c.p, got, c.z)
		}
	}
	if !math.IsInf(NormQuantile(0), -1) || !math.IsInf(NormQuantile(1), 1) || !math.IsNaN(NormQuantile(1.5)) || !math.IsNaN(NormQuantile(math.NaN())) {
		t.Error("Φ⁻¹ at 0, 1, 1.5 or NaN")
	}
	// The log tail keeps going where the tail underflows.
	if got, want := LogNormSF(10), math.Log(NormSF(10)); !closeRel(got, want, 1e-12, 0) {
		t.Errorf("LogNormSF(10) = %v, want %v", got, want)
	}
	if v := LogNormSF(40); math.IsInf(v, 0) || !(v < LogNormSF(30)) {
		t.Errorf("LogNormSF(40) = %v", v)
	}
	// The Mills-ratio branch joins the direct one at 30.
	x := math.Nextafter(30, 31)
	if got, want := LogNormSF(x), math.Log(NormSF(x)); !closeRel(got, want, 1e-12, 0) {
		t.Errorf("LogNormSF just above 30 = %v, direct %v", got, want)
	}
}

func TestLogBetaAndChoose(t *testing.T) {
	if got := LogBeta(2, 3); !closeRel(got, math.Log(1.0/12), 1e-14, 0) {
		t.Errorf("ln B(2,3) = %v", got)
	}
	if got := LogChoose(10, 3); !closeRel(got, math.Log(120), 1e-14, 0) {
		t.Errorf("ln C(10,3) = %v", got)
	}
	if !math.IsInf(LogChoose(3, 4), -1) || LogChoose(5, 0) != 0 {
		t.Error("ln C outside the support")
	}
	if got := LogSumExp([]float64{math.Log(1), math.Log(2), math.Inf(-1)}); !closeRel(got, math.Log(3), 1e-15, 0) {
		t.Errorf("LogSumExp = %v", got)
	}
	if !math.IsInf(LogSumExp(nil), -1) {
		t.Error("LogSumExp(nil) is not −Inf")
	}
}

func TestSaddlePointPMFs(t *testing.T) {
	// 40-digit reference: ln 2000 + ln 0.001 + 1999·ln 0.999.
	if got := BinomialLogPMF(1, 2000, 0.001); !closeRel(got, -1.306852986273538157, 1e-15, 0) {
		t.Errorf("ln Bin(1; 2000, 0.001) = %.17g", got)
	}
	// Small n against the direct formula.
	for _, c := range []struct {
		x, n int64
		p    float64
	}{{0, 10, 0.3}, {3, 10, 0.3}, {10, 10, 0.3}, {17, 40, 0.5}} {
		want := LogChoose(float64(c.n), float64(c.x)) + float64(c.x)*math.Log(c.p) + float64(c.n-c.x)*math.Log1p(-c.p)
		if got := BinomialLogPMF(c.x, c.n, c.p); !closeRel(got, want, 1e-12, 1e-12) {
			t.Errorf("ln Bin(%d; %d, %v) = %.15g, want %.15g", c.x, c.n, c.p, got, want)
		}
	}
	if BinomialLogPMF(0, 5, 0) != 0 || !math.IsInf(BinomialLogPMF(1, 5, 0), -1) || BinomialLogPMF(5, 5, 1) != 0 {
		t.Error("point masses at p = 0 and 1")
	}
	// Large n: the whole distribution sums to 1 to near machine precision,
	// which lgamma differences cannot do (they are off by ~1e−9 here).
	const n, p = 3_000_000, 0.0137
	lp := func(x int64) float64 { return BinomialLogPMF(x, n, p) }
	if s := math.Exp(LogConcaveSum(lp, 0, n, binomialMode(n, p))); !closeRel(s, 1, 1e-12, 0) {
		t.Errorf("Σ Bin(·; %d, %v) = %.17g", n, p, s)
	}
	h := newHypergeom(1_000_000, 9_000_000, 130_000)
	if s := math.Exp(LogConcaveSum(h.logPMF, h.lo, h.hi, h.mode())); !closeRel(s, 1, 1e-12, 0) {
		t.Errorf("Σ hypergeometric = %.17g", s)
	}
	if got, want := HypergeomLogPMF(1, 4, 4, 4), math.Log(16.0/70); !closeRel(got, want, 1e-13, 0) {
		t.Errorf("hypergeometric P(1) = %v, want %v", got, want)
	}
}
