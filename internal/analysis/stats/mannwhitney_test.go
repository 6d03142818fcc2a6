package stats

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// Tolerances of statistics.md §8.
const (
	relClosed = 1e-9 // closed forms: p-values, power, statistics
	absTiny   = 1e-12
	absRoot   = 1e-4 // root-finding outputs (Kayenta CI, estimates)
)

// decodeInto unmarshals raw into v or fails the test.
func decodeInto(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

// checkNum compares got with want[name] when the vector has that output.
func checkNum(t *testing.T, outputs map[string]num, name string, got, rel, abs float64) {
	t.Helper()
	want, ok := outputs[name]
	if !ok {
		return
	}
	if !closeRel(got, float64(want), rel, abs) {
		t.Errorf("%s = %.12g, want %.12g", name, got, float64(want))
	}
}

// mustHave fails when the vector lacks an output the test means to check,
// so a renamed field cannot make a check silently vanish.
func mustHave(t *testing.T, outputs map[string]num, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, ok := outputs[n]; !ok {
			t.Errorf("vector has no output %q", n)
		}
	}
}

func TestMannWhitneyUVectors(t *testing.T) {
	for _, v := range loadVectors(t, "mann_whitney_u") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct{ Canary, Baseline []float64 }
			decodeInto(t, v.Inputs, &in)
			out := map[string]num{}
			decodeInto(t, v.Outputs, &out)
			mustHave(t, out, "U_canary", "sigma_U_tie_corrected", "p_asymptotic_greater_cc", "hodges_lehmann_shift_canary_minus_baseline")

			m, err := MannWhitneyU(in.Canary, in.Baseline)
			if err != nil {
				t.Fatal(err)
			}
			checkNum(t, out, "n_canary", m.N1, 0, 0)
			checkNum(t, out, "n_baseline", m.N2, 0, 0)
			checkNum(t, out, "R1_canary", m.R1, relClosed, absTiny)
			checkNum(t, out, "U_canary", m.U1, relClosed, absTiny)
			checkNum(t, out, "U_baseline", m.U2, relClosed, absTiny)
			checkNum(t, out, "mu_U", m.MuU, relClosed, absTiny)
			checkNum(t, out, "sigma_U_tie_corrected", m.SigmaU, relClosed, absTiny)
			checkNum(t, out, "tie_term_sum_t3_minus_t", m.TieTerm, relClosed, absTiny)
			checkNum(t, out, "z_two_sided_cc", m.Z(TailTwoSided, true), relClosed, absTiny)
			checkNum(t, out, "hodges_lehmann_shift_canary_minus_baseline", m.HodgesLehmann, relClosed, absTiny)
			checkNum(t, out, "cles_canary_gt_baseline", m.CLES, relClosed, absTiny)
			for _, alt := range []struct {
				name string
				tail Tail
			}{{"greater", TailGreater}, {"less", TailLess}, {"two_sided", TailTwoSided}} {
				checkNum(t, out, "p_asymptotic_"+alt.name+"_cc", m.PValue(alt.tail, true), relClosed, absTiny)
				checkNum(t, out, "p_asymptotic_"+alt.name+"_nocc", m.PValue(alt.tail, false), relClosed, absTiny)
				want, ok := out["p_exact_"+alt.name]
				p, err := m.ExactPValue(alt.tail)
				switch {
				case ok && err != nil:
					t.Errorf("exact %s: %v", alt.name, err)
				case ok && !closeRel(p, float64(want), relClosed, absTiny):
					t.Errorf("p_exact_%s = %.12g, want %.12g", alt.name, p, float64(want))
				case !ok && m.TieTerm > 0 && err == nil:
					t.Errorf("exact %s with ties: got %v, want an error", alt.name, p)
				}
			}
		})
	}
}

func TestMannWhitneyFromHistogramVectors(t *testing.T) {
	for _, v := range loadVectors(t, "mann_whitney_u_from_histogram") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				Canary   []float64 `json:"canary_counts"`
				Baseline []float64 `json:"baseline_counts"`
			}
			decodeInto(t, v.Inputs, &in)
			out := map[string]num{}
			decodeInto(t, v.Outputs, &out)
			mustHave(t, out, "U_canary", "p_greater_cc", "p_two_sided_cc", "z_greater_cc")

			m, err := MannWhitneyFromHistogram(in.Canary, in.Baseline)
			if err != nil {
				t.Fatal(err)
			}
			checkNum(t, out, "U_canary", m.U1, relClosed, absTiny)
			checkNum(t, out, "mu_U", m.MuU, relClosed, absTiny)
			checkNum(t, out, "sigma_U_tie_corrected", m.SigmaU, relClosed, absTiny)
			checkNum(t, out, "tie_term_sum_t3_minus_t", m.TieTerm, relClosed, absTiny)
			checkNum(t, out, "z_greater_cc", m.Z(TailGreater, true), relClosed, absTiny)
			checkNum(t, out, "p_greater_cc", m.PValue(TailGreater, true), relClosed, absTiny)
			checkNum(t, out, "p_two_sided_cc", m.PValue(TailTwoSided, true), relClosed, absTiny)
			checkNum(t, out, "cles_canary_gt_baseline", m.CLES, relClosed, absTiny)

			// The histogram form must equal the test on the expanded data.
			var xs, ys []float64
			for j := range in.Canary {
				for range int(in.Canary[j]) {
					xs = append(xs, float64(j))
				}
				for range int(in.Baseline[j]) {
					ys = append(ys, float64(j))
				}
			}
			raw, err := MannWhitneyU(xs, ys)
			if err != nil {
				t.Fatal(err)
			}
			if !closeRel(raw.PValue(TailGreater, true), m.PValue(TailGreater, true), 1e-12, 0) || raw.TieTerm != m.TieTerm {
				t.Errorf("expanded data: p %v tie %v, histogram: p %v tie %v", raw.PValue(TailGreater, true), raw.TieTerm, m.PValue(TailGreater, true), m.TieTerm)
			}
		})
	}
}

func TestMannWhitneyEdgeCases(t *testing.T) {
	t.Run("empty arm is ErrEmptySample", func(t *testing.T) {
		for _, c := range [][2][]float64{{nil, {1}}, {{1}, nil}} {
			if _, err := MannWhitneyU(c[0], c[1]); !errors.Is(err, ErrEmptySample) {
				t.Errorf("MannWhitneyU(%v, %v) error = %v, want ErrEmptySample", c[0], c[1], err)
			}
		}
		if _, err := MannWhitneyFromHistogram([]float64{0, 0}, []float64{1, 2}); !errors.Is(err, ErrEmptySample) {
			t.Errorf("histogram with empty canary: error = %v, want ErrEmptySample", err)
		}
	})
	t.Run("NaN is rejected", func(t *testing.T) {
		if _, err := MannWhitneyU([]float64{1, math.NaN()}, []float64{2}); err == nil {
			t.Error("NaN accepted")
		}
	})
	t.Run("bad histograms are rejected", func(t *testing.T) {
		for _, c := range [][2][]float64{{{1}, {1, 2}}, {{-1, 2}, {1, 2}}, {{math.Inf(1)}, {1}}} {
			if _, err := MannWhitneyFromHistogram(c[0], c[1]); err == nil {
				t.Errorf("histogram %v vs %v accepted", c[0], c[1])
			}
		}
	})
	t.Run("all tied gives z 0 and p 1 for every alternative", func(t *testing.T) {
		m, err := MannWhitneyFromHistogram([]float64{0, 7, 0}, []float64{0, 5, 0})
		if err != nil {
			t.Fatal(err)
		}
		for _, alt := range []Tail{TailGreater, TailLess, TailTwoSided} {
			for _, cc := range []bool{true, false} {
				if z, p := m.Z(alt, cc), m.PValue(alt, cc); z != 0 || p != 1 {
					t.Errorf("%v cc=%v: z=%v p=%v, want 0 and 1", alt, cc, z, p)
				}
			}
		}
	})
	t.Run("single pooled observation per arm", func(t *testing.T) {
		m, err := MannWhitneyU([]float64{2}, []float64{1})
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.ExactPValue(TailGreater)
		if err != nil || p != 0.5 {
			t.Errorf("exact p = %v, %v; want 0.5", p, err)
		}
	})
	t.Run("exact refuses histograms and large samples", func(t *testing.T) {
		m, _ := MannWhitneyFromHistogram([]float64{1, 2}, []float64{2, 1})
		if _, err := m.ExactPValue(TailGreater); err == nil {
			t.Error("exact p-value on a histogram accepted")
		}
		xs, ys := make([]float64, 101), make([]float64, 100)
		for i := range xs {
			xs[i] = float64(2 * i)
		}
		for i := range ys {
			ys[i] = float64(2*i + 1)
		}
		big, err := MannWhitneyU(xs, ys)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := big.ExactPValue(TailGreater); err == nil {
			t.Error("exact p-value for 101×100 pairs accepted")
		}
	})
	t.Run("exact null distribution sums to one and is symmetric", func(t *testing.T) {
		pmf := mannWhitneyNullPMF(7, 5)
		sum := 0.0
		for u, p := range pmf {
			sum += p
			if !closeRel(p, pmf[len(pmf)-1-u], 1e-12, 1e-15) {
				t.Errorf("P(U=%d) = %v but P(U=%d) = %v", u, p, len(pmf)-1-u, pmf[len(pmf)-1-u])
			}
		}
		if !closeRel(sum, 1, 1e-12, 0) {
			t.Errorf("sum = %v", sum)
		}
		// C(12, 5) = 792 arrangements, one of which has U = 0.
		if !closeRel(pmf[0], 1.0/792, 1e-12, 0) {
			t.Errorf("P(U=0) = %v, want 1/792", pmf[0])
		}
	})
	t.Run("huge histogram counts stay finite", func(t *testing.T) {
		m, err := MannWhitneyFromHistogram([]float64{1e6, 3e6, 1e6}, []float64{2e7, 5e7, 2e7})
		if err != nil {
			t.Fatal(err)
		}
		if p := m.PValue(TailTwoSided, true); math.IsNaN(p) || p < 0 || p > 1 {
			t.Errorf("p = %v", p)
		}
	})
}

// FuzzMannWhitneyFromHistogram feeds random bucket counts: the test must
// never panic, and every p-value must be a number in [0, 1].
func FuzzMannWhitneyFromHistogram(f *testing.F) {
	f.Add([]byte{0, 2, 10, 25, 30, 12, 5, 1}, []byte{1, 6, 22, 40, 22, 6, 2, 1}, uint16(1))
	f.Add([]byte{0, 0}, []byte{0, 9}, uint16(1000))
	f.Add([]byte{255}, []byte{255}, uint16(65535))
	f.Fuzz(func(t *testing.T, cb, bb []byte, scale uint16) {
		n := min(len(cb), len(bb))
		c, b := make([]float64, n), make([]float64, n)
		for i := range n {
			c[i] = float64(cb[i]) * float64(scale)
			b[i] = float64(bb[i]) * float64(scale)
		}
		m, err := MannWhitneyFromHistogram(c, b)
		if err != nil {
			if !errors.Is(err, ErrEmptySample) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		for _, alt := range []Tail{TailGreater, TailLess, TailTwoSided} {
			for _, cc := range []bool{true, false} {
				if p := m.PValue(alt, cc); math.IsNaN(p) || p < 0 || p > 1 {
					t.Fatalf("p(%v, cc=%v) = %v for %v vs %v", alt, cc, p, c, b)
				}
				if z := m.Z(alt, cc); math.IsNaN(z) || math.IsInf(z, 0) {
					t.Fatalf("z(%v, cc=%v) = %v", alt, cc, z)
				}
			}
		}
		if math.IsNaN(m.CLES) || m.CLES < 0 || m.CLES > 1 {
			t.Fatalf("CLES = %v", m.CLES)
		}
	})
}
