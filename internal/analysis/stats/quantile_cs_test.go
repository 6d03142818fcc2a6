package stats

import (
	"math"
	"testing"
)

func TestTimeUniformDKWRadius(t *testing.T) {
	for _, v := range loadVectors(t, "time_uniform_dkw_radius") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				T []float64 `json:"t"`
			}
			var p struct {
				Alpha float64 `json:"alpha"`
			}
			var out struct {
				Radius []num `json:"radius"`
				Fixed  []num `json:"fixed_n_dkw_radius_for_comparison"`
			}
			seqDecode(t, v.Inputs, &in)
			seqDecode(t, v.Params, &p)
			seqDecode(t, v.Outputs, &out)
			for i, tt := range in.T {
				seqCheck(t, "ε_t", TimeUniformDKWRadius(tt, p.Alpha), float64(out.Radius[i]))
				seqCheck(t, "fixed-t DKW", DKWRadius(tt, p.Alpha), float64(out.Fixed[i]))
			}
		})
	}
}

func TestQuantileConfidenceSequenceRanks(t *testing.T) {
	for _, v := range loadVectors(t, "quantile_confidence_sequence_ranks") {
		t.Run(v.Case, func(t *testing.T) {
			var p struct {
				Alpha float64 `json:"alpha"`
			}
			var out struct {
				Rows []struct {
					T     int     `json:"t"`
					Q     float64 `json:"q"`
					Eps   num     `json:"eps"`
					Lower *int    `json:"lower_rank"`
					Upper *int    `json:"upper_rank"`
				} `json:"rows"`
			}
			seqDecode(t, v.Params, &p)
			seqDecode(t, v.Outputs, &out)
			for _, r := range out.Rows {
				seqCheck(t, "ε", TimeUniformDKWRadius(float64(r.T), p.Alpha), float64(r.Eps))
				lo, hi := QuantileCSRanks(r.T, r.Q, p.Alpha)
				wantLo, wantHi := 0, 0
				if r.Lower != nil {
					wantLo = *r.Lower
				}
				if r.Upper != nil {
					wantHi = *r.Upper
				}
				if lo != wantLo || hi != wantHi {
					t.Errorf("t=%d q=%v: ranks (%d, %d), want (%d, %d) (0 = unbounded)", r.T, r.Q, lo, hi, wantLo, wantHi)
				}
			}
		})
	}
}

// uniformHist spreads n observations evenly over buckets (k−1, k] for
// k = 1 … m, Value = k.
func uniformHist(n, m int) []HistBucket {
	h := make([]HistBucket, m)
	for k := range h {
		h[k] = HistBucket{Lower: float64(k), Upper: float64(k + 1), Value: float64(k + 1), Count: uint64(n / m)}
	}
	return h
}

func TestHistQuantileAndCS(t *testing.T) {
	h := uniformHist(100000, 100)
	if q, ok := HistQuantile(h, 0.5); !ok || q != 50 {
		t.Errorf("median = %v, want 50", q)
	}
	if q, ok := HistQuantile(h, 0.99); !ok || q != 99 {
		t.Errorf("p99 = %v, want 99", q)
	}
	if _, ok := HistQuantile(nil, 0.5); ok {
		t.Error("quantile of an empty histogram reported as defined")
	}
	cs := HistQuantileCS(h, 0.5, 0.025)
	// ε ≈ 0.00907 at t = 1e5: ranks 49094 and 50907, buckets 49 and 51.
	if cs.Lower != 49 || cs.Upper != 51 {
		t.Errorf("median CS = %+v, want [49, 51]", cs)
	}
	small := HistQuantileCS(uniformHist(100, 100), 0.99, 0.025)
	if small.Upper != math.Inf(1) || !(small.Lower > 0) {
		t.Errorf("p99 CS of 100 observations = %+v, want a finite lower end and no upper end", small)
	}
	if e := HistQuantileCS(nil, 0.5, 0.05); e.Lower != 0 || !math.IsInf(e.Upper, 1) {
		t.Errorf("empty CS = %+v", e)
	}
}
