package stats

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
)

func TestKayentaMannWhitneyCIVectors(t *testing.T) {
	for _, v := range loadVectors(t, "kayenta_mann_whitney_ci") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct{ Experiment, Control []float64 }
			decodeInto(t, v.Inputs, &in)
			var params struct {
				Confidence float64 `json:"confidence_level"`
			}
			decodeInto(t, v.Params, &params)
			out := map[string]num{}
			decodeInto(t, v.Outputs, &out)
			mustHave(t, out, "ci_lower", "ci_upper", "estimate")
			ci, err := KayentaMannWhitneyCI(in.Experiment, in.Control, params.Confidence)
			if err != nil {
				t.Fatal(err)
			}
			checkNum(t, out, "ci_lower", ci.Lower, 0, absRoot)
			checkNum(t, out, "ci_upper", ci.Upper, 0, absRoot)
			checkNum(t, out, "estimate", ci.Estimate, 0, absRoot)
			if want, ok := out["hodges_lehmann_median_pairwise"]; ok {
				if got := hodgesLehmann(in.Experiment, in.Control); got != float64(want) {
					t.Errorf("Hodges-Lehmann = %v, want %v", got, float64(want))
				}
			}
		})
	}
}

func TestKayentaClassifierVectors(t *testing.T) {
	for _, v := range loadVectors(t, "kayenta_mann_whitney_classifier") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct{ Control, Experiment []float64 }
			decodeInto(t, v.Inputs, &in)
			var p struct {
				Tolerance   float64    `json:"tolerance"`
				Confidence  float64    `json:"confidence_level"`
				Direction   string     `json:"direction"`
				NaNStrategy string     `json:"nan_strategy"`
				Critical    bool       `json:"critical"`
				MustHave    bool       `json:"must_have_data"`
				Measure     string     `json:"effect_size_measure"`
				Allowed     [2]float64 `json:"allowed_decrease_increase"`
				CriticalDI  [2]float64 `json:"critical_decrease_increase"`
			}
			decodeInto(t, v.Params, &p)
			var out struct {
				Classification string `json:"classification"`
				Critical       bool   `json:"critical"`
			}
			decodeInto(t, v.Outputs, &out)
			nums := map[string]json.RawMessage{}
			decodeInto(t, v.Outputs, &nums)
			values := map[string]num{}
			for k, raw := range nums {
				var n num
				if json.Unmarshal(raw, &n) == nil {
					values[k] = n
				}
			}

			cfg := KayentaConfig{
				Tolerance: p.Tolerance, ConfidenceLevel: p.Confidence, Direction: p.Direction,
				NaNStrategy: p.NaNStrategy, Critical: p.Critical, MustHaveData: p.MustHave,
				EffectSizeMeasure: p.Measure,
				AllowedDecrease:   p.Allowed[0], AllowedIncrease: p.Allowed[1],
				CriticalDecrease: p.CriticalDI[0], CriticalIncrease: p.CriticalDI[1],
			}
			got := KayentaClassify(in.Control, in.Experiment, cfg)
			if string(got.Label) != out.Classification || got.Critical != out.Critical {
				t.Errorf("label %s critical %v, want %s %v (%s)", got.Label, got.Critical, out.Classification, out.Critical, got.Reason)
			}
			checkNum(t, values, "deviation", got.Deviation, relClosed, absTiny)
			checkNum(t, values, "effect_size", got.EffectSize, relClosed, absTiny)
			checkNum(t, values, "ci_lower", got.CILower, 0, absRoot)
			checkNum(t, values, "ci_upper", got.CIUpper, 0, absRoot)
			checkNum(t, values, "hl_estimate_root", got.Estimate, 0, absRoot)
			checkNum(t, values, "bound", got.Bound, 0, absRoot)
		})
	}
}

func TestKayentaClassifierEdgeCases(t *testing.T) {
	cfg := DefaultKayentaConfig()
	cases := []struct {
		name                string
		control, experiment []float64
		mutate              func(*KayentaConfig)
		want                KayentaLabel
		critical            bool
	}{
		{"identical data", []float64{3, 1, 2}, []float64{1, 2, 3}, nil, KayentaPass, false},
		{"single value overall", []float64{5, 5}, []float64{5, 5, 5}, nil, KayentaPass, false},
		{"constant arms, experiment higher", []float64{5, 5, 5}, []float64{7, 7, 7}, nil, KayentaHigh, false},
		{"constant arms, experiment lower", []float64{5, 5, 5}, []float64{3, 3, 3}, nil, KayentaLow, false},
		{"constant arms, decrease only", []float64{5, 5, 5}, []float64{7, 7, 7}, func(c *KayentaConfig) { c.Direction = "decrease" }, KayentaPass, false},
		{"NaNs removed leave no data, critical", []float64{1, 2}, []float64{math.NaN()}, func(c *KayentaConfig) { c.Critical = true }, KayentaNodata, true},
		{"critical must-have-data stays Nodata", []float64{1, 2}, nil, func(c *KayentaConfig) { c.Critical, c.MustHaveData = true, true }, KayentaNodata, true},
		{"NaNs replaced by zero", []float64{0, 0, 0}, []float64{math.NaN(), math.NaN(), 0}, func(c *KayentaConfig) { c.NaNStrategy = "replace" }, KayentaPass, false},
		{"unknown direction is either", []float64{100, 102, 98, 101, 99, 103, 97, 100, 101, 99}, []float64{90, 92, 88, 91, 89, 93, 87, 90, 91, 89}, func(c *KayentaConfig) { c.Direction = "sideways" }, KayentaLow, false},
		{"outlier removal keeps the classification stable", []float64{10, 11, 12, 12, 13, 13, 13, 14, 14, 15, 15, 16, 17, 18, 60, 250}, []float64{10, 11, 12, 12, 13, 13, 13, 14, 14, 15, 15, 16, 17, 18, 60, 900}, func(c *KayentaConfig) { c.RemoveOutliers = true }, KayentaPass, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := cfg
			if c.mutate != nil {
				c.mutate(&k)
			}
			got := KayentaClassify(c.control, c.experiment, k)
			if got.Label != c.want || got.Critical != c.critical {
				t.Errorf("got %s critical=%v (%s), want %s critical=%v", got.Label, got.Critical, got.Reason, c.want, c.critical)
			}
		})
	}
	// The deterministic constant-arm rule reports the difference itself.
	got := KayentaClassify([]float64{5, 5, 5}, []float64{7, 7, 7}, cfg)
	if got.Estimate != 2 || got.CILower != 2 || got.CIUpper != 2 || got.Deviation != 1.4 {
		t.Errorf("constant arms: %+v", got)
	}
	// CLES as the effect size.
	k := cfg
	k.EffectSizeMeasure, k.AllowedIncrease = "cles", 0.5
	got = KayentaClassify([]float64{1, 2, 3, 4}, []float64{10, 20, 30, 40}, k)
	if got.EffectSize != 1 || got.Label != KayentaHigh {
		t.Errorf("cles: %+v", got)
	}
	if _, err := KayentaMannWhitneyCI(nil, []float64{1}, 0.95); err == nil {
		t.Error("empty experiment accepted")
	}
	if _, err := KayentaMannWhitneyCI([]float64{1, 1}, []float64{1}, 0.95); err == nil {
		t.Error("all tied accepted")
	}
}

func TestKayentaIQROutlierFilterVectors(t *testing.T) {
	for _, v := range loadVectors(t, "kayenta_iqr_outlier_filter") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct{ Values []float64 }
			decodeInto(t, v.Inputs, &in)
			var p struct {
				Factor float64 `json:"factor"`
				Reduce bool    `json:"reduce_sensitivity"`
			}
			decodeInto(t, v.Params, &p)
			var out struct {
				P01, P25, P75, P99 float64
				Lower              float64 `json:"lower_fence"`
				Upper              float64 `json:"upper_fence"`
				Kept               []float64
			}
			decodeInto(t, v.Outputs, &out)
			got := KayentaIQRFilter(in.Values, p.Factor, p.Reduce)
			for _, c := range []struct {
				name      string
				got, want float64
			}{{"p01", got.P01, out.P01}, {"p25", got.P25, out.P25}, {"p75", got.P75, out.P75}, {"p99", got.P99, out.P99}, {"lower", got.Lower, out.Lower}, {"upper", got.Upper, out.Upper}} {
				if !closeRel(c.got, c.want, relClosed, absTiny) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if !slices.Equal(got.Kept, out.Kept) {
				t.Errorf("kept %v, want %v", got.Kept, out.Kept)
			}
		})
	}
	if r := KayentaIQRFilter(nil, 3, true); len(r.Kept) != 0 || !math.IsNaN(r.Lower) {
		t.Errorf("empty input: %+v", r)
	}
	if r := KayentaIQRFilter([]float64{4}, 3, true); !slices.Equal(r.Kept, []float64{4}) {
		t.Errorf("single value: %+v", r)
	}
}

func TestKayentaWeightedSumScoreVectors(t *testing.T) {
	for _, v := range loadVectors(t, "kayenta_weighted_sum_score") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				Metrics []struct {
					Name           string
					Groups         []string
					Classification string
					Critical       bool
					Muted          bool
				} `json:"metric_results"`
			}
			decodeInto(t, v.Inputs, &in)
			var p struct {
				Weights  map[string]float64 `json:"group_weights"`
				Pass     float64            `json:"pass_threshold"`
				Marginal float64            `json:"marginal_threshold"`
			}
			decodeInto(t, v.Params, &p)
			var out struct {
				GroupScores    map[string]float64 `json:"group_scores"`
				Summary        float64            `json:"summary_score"`
				Classification string
				Reason         *string
			}
			decodeInto(t, v.Outputs, &out)
			var metrics []KayentaMetric
			for _, m := range in.Metrics {
				metrics = append(metrics, KayentaMetric{Name: m.Name, Groups: m.Groups, Label: KayentaLabel(m.Classification), Critical: m.Critical, Muted: m.Muted})
			}
			got := KayentaScoreRun(metrics, p.Weights, p.Pass, p.Marginal)
			if !closeRel(got.Summary, out.Summary, 0, 1e-9) || got.Classification != out.Classification {
				t.Errorf("summary %v %s, want %v %s", got.Summary, got.Classification, out.Summary, out.Classification)
			}
			wantReason := ""
			if out.Reason != nil {
				wantReason = *out.Reason
			}
			if got.Reason != wantReason {
				t.Errorf("reason %q, want %q", got.Reason, wantReason)
			}
			if len(got.GroupScores) != len(out.GroupScores) {
				t.Errorf("groups %v, want %v", got.GroupScores, out.GroupScores)
			}
			for g, want := range out.GroupScores {
				if !closeRel(got.GroupScores[g], want, relClosed, absTiny) {
					t.Errorf("group %s = %v, want %v", g, got.GroupScores[g], want)
				}
			}
		})
	}
}
