package stats

import (
	"math"
	"testing"
)

func TestDDSketchLogMapping(t *testing.T) {
	for _, v := range loadVectors(t, "ddsketch_log_mapping") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				Values []float64 `json:"values"`
			}
			var p struct {
				RelAcc float64 `json:"relative_accuracy"`
			}
			var out struct {
				Gamma      num   `json:"gamma"`
				IndexCeil  []int `json:"index_ceil"`
				ValueCeil  []num `json:"value_ceil"`
				IndexFloor []int `json:"index_floor"`
				ValueFloor []num `json:"value_floor"`
			}
			seqDecode(t, v.Inputs, &in)
			seqDecode(t, v.Params, &p)
			seqDecode(t, v.Outputs, &out)
			g := DDSketchGamma(p.RelAcc)
			seqCheck(t, "γ", g, float64(out.Gamma))
			for i, x := range in.Values {
				kc, kf := DDSketchKeyCeil(x, g), DDSketchKeyFloor(x, g)
				if kc != out.IndexCeil[i] || kf != out.IndexFloor[i] {
					t.Errorf("x=%v: keys ceil %d floor %d, want %d %d", x, kc, kf, out.IndexCeil[i], out.IndexFloor[i])
				}
				seqCheck(t, "ceil value", DDSketchValueCeil(kc, g), float64(out.ValueCeil[i]))
				seqCheck(t, "floor value", DDSketchValueFloor(kf, g, p.RelAcc), float64(out.ValueFloor[i]))
				// The representative is within the relative accuracy.
				if r := DDSketchValueCeil(kc, g); math.Abs(r-x) > p.RelAcc*x*(1+1e-12) {
					t.Errorf("x=%v: representative %v beyond the relative accuracy", x, r)
				}
			}
		})
	}
}

func TestPrometheusNativeHistogramSchema(t *testing.T) {
	for _, v := range loadVectors(t, "prometheus_native_histogram_schema") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				Schema int       `json:"schema"`
				Values []float64 `json:"values"`
			}
			var out struct {
				Base        num   `json:"base"`
				MaxRelErr   num   `json:"max_relative_error_midpoint"`
				Keys        []int `json:"keys"`
				UpperBounds []num `json:"upper_bounds"`
				Naive       []int `json:"naive_ceil_log_keys_for_contrast"`
			}
			seqDecode(t, v.Inputs, &in)
			seqDecode(t, v.Outputs, &out)
			base := PrometheusBase(in.Schema)
			seqCheck(t, "base", base, float64(out.Base))
			seqCheck(t, "midpoint error", (base-1)/(base+1), float64(out.MaxRelErr))
			for i, x := range in.Values {
				k := PrometheusKey(x, in.Schema)
				if k != out.Keys[i] {
					t.Errorf("v=%v: key %d, want %d", x, k, out.Keys[i])
				}
				ub := PrometheusUpperBound(k, in.Schema)
				seqCheck(t, "upper bound", ub, float64(out.UpperBounds[i]))
				if lb := PrometheusUpperBound(k-1, in.Schema); !(lb < x && x <= ub) {
					t.Errorf("v=%v not in its bucket (%v, %v]", x, lb, ub)
				}
				// The contrast the vector documents: the naive formula.
				if naive := int(math.Ceil(math.Log(x) / math.Log(base))); naive != out.Naive[i] {
					t.Logf("v=%v: naive key %d here, %d in the vector (floating point)", x, naive, out.Naive[i])
				}
			}
		})
	}
}

func TestPrometheusBoundsMatchClientGolang(t *testing.T) {
	// Entries copied from client_golang v1.25.0's literal
	// nativeHistogramBounds table.
	cases := []struct {
		schema, idx int
		want        float64
	}{
		{1, 1, 0.7071067811865475},
		{2, 1, 0.5946035575013605},
		{3, 1, 0.5452538663326288},
		{3, 7, 0.9170040432046711},
		{4, 11, 0.805245165974627},
		{5, 31, 0.9785720620876999},
		{8, 255, 0.9972960560854698},
		{8, 252, 0.9892280131939752},
	}
	for _, c := range cases {
		if got := prometheusBounds[c.schema][c.idx]; got != c.want {
			t.Errorf("bounds[%d][%d] = %v, want %v", c.schema, c.idx, got, c.want)
		}
	}
	// Every power of two lies in its bucket, and is the bucket's upper
	// bound when it is a boundary of the schema (always for schema ≥ 0;
	// every 2^−schema-th power below 0).
	for s := PrometheusMinSchema; s <= PrometheusMaxSchema; s++ {
		for e := -40; e <= 40; e++ {
			v := math.Ldexp(1, e)
			k := PrometheusKey(v, s)
			lb, ub := PrometheusUpperBound(k-1, s), PrometheusUpperBound(k, s)
			if !(lb < v && v <= ub) {
				t.Errorf("schema %d: 2^%d has key %d, bucket (%v, %v]", s, e, k, lb, ub)
			}
			if boundary := s >= 0 || e%(1<<-s) == 0; boundary && ub != v {
				t.Errorf("schema %d: 2^%d has key %d with upper bound %v", s, e, k, ub)
			}
		}
	}
}
