package stats

import (
	"math"
	"testing"
)

func TestPowerTwoProportionsVectors(t *testing.T) {
	for _, v := range loadVectors(t, "power_two_proportions") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				P0        float64  `json:"p0_baseline"`
				P1        float64  `json:"p1_canary"`
				Alpha     float64  `json:"alpha"`
				Power     *float64 `json:"power"`
				K         float64  `json:"baseline_to_canary_ratio_k"`
				NCanary   *float64 `json:"n_canary"`
				NBaseline *float64 `json:"n_baseline"`
				Sided     int      `json:"sided"`
			}
			decodeInto(t, v.Inputs, &in)
			out := map[string]num{}
			decodeInto(t, v.Outputs, &out)

			if in.NCanary != nil {
				mustHave(t, out, "power")
				p, err := PowerTwoProportions(in.P0, in.P1, in.Alpha, *in.NCanary, *in.NBaseline, in.Sided)
				if err != nil {
					t.Fatal(err)
				}
				checkNum(t, out, "power", p, relClosed, absTiny)
				return
			}
			mustHave(t, out, "n_canary_fleiss", "n_canary_fleiss_ceil", "n_baseline_fleiss_ceil", "n_canary_arcsine")
			s, err := SampleSizeTwoProportions(in.P0, in.P1, in.Alpha, *in.Power, in.K, in.Sided)
			if err != nil {
				t.Fatal(err)
			}
			checkNum(t, out, "n_canary_fleiss", s.Fleiss, relClosed, absTiny)
			checkNum(t, out, "n_canary_fleiss_ceil", float64(s.FleissCeil), 0, 0)
			checkNum(t, out, "n_baseline_fleiss_ceil", float64(s.BaselineCeil), 0, 0)
			checkNum(t, out, "n_canary_fleiss_continuity_corrected", s.FleissCC, relClosed, absTiny)
			checkNum(t, out, "n_canary_arcsine", s.Arcsine, relClosed, absTiny)
			checkNum(t, out, "cohens_h", s.CohensH, relClosed, absTiny)
			checkNum(t, out, "achieved_power_pooled_z_at_ceil_n", s.AchievedPower, relClosed, absTiny)
			if s.AchievedPower < *in.Power {
				t.Errorf("achieved power %v below target %v", s.AchievedPower, *in.Power)
			}
		})
	}
}

func TestPowerMannWhitneyNoetherVectors(t *testing.T) {
	for _, v := range loadVectors(t, "power_mann_whitney_noether") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				P     float64 `json:"p_canary_gt_baseline"`
				C     float64 `json:"canary_fraction_c"`
				Alpha float64 `json:"alpha"`
				Power float64 `json:"power"`
				Sided int     `json:"sided"`
			}
			decodeInto(t, v.Inputs, &in)
			out := map[string]num{}
			decodeInto(t, v.Outputs, &out)
			mustHave(t, out, "N_total", "n_canary", "n_baseline")
			total, nc, nb, err := MannWhitneyNoether(in.P, in.C, in.Alpha, in.Power, in.Sided)
			if err != nil {
				t.Fatal(err)
			}
			checkNum(t, out, "N_total", total, relClosed, absTiny)
			checkNum(t, out, "n_canary", nc, relClosed, absTiny)
			checkNum(t, out, "n_baseline", nb, relClosed, absTiny)
		})
	}
}

func TestPowerRejectsBadInput(t *testing.T) {
	if _, err := SampleSizeTwoProportions(0.01, 0.01, 0.05, 0.8, 1, 1); err == nil {
		t.Error("equal rates accepted")
	}
	if _, err := SampleSizeTwoProportions(0.01, 0.02, 0.05, 1, 1, 1); err == nil {
		t.Error("power 1 accepted")
	}
	if _, err := SampleSizeTwoProportions(0.01, 0.02, 0.05, 0.8, 0, 1); err == nil {
		t.Error("k = 0 accepted")
	}
	if _, err := PowerTwoProportions(0.01, 0.02, 0.05, 0, 10, 1); err == nil {
		t.Error("n = 0 accepted")
	}
	if _, _, _, err := MannWhitneyNoether(0.5, 0.5, 0.05, 0.8, 1); err == nil {
		t.Error("P = ½ accepted")
	}
	if _, _, _, err := MannWhitneyNoether(0.6, 0.5, 0.05, 0.8, 3); err == nil {
		t.Error("sided = 3 accepted")
	}
	// Two-sided needs more than one-sided at the same α.
	one, _ := SampleSizeTwoProportions(0.01, 0.02, 0.05, 0.8, 1, 1)
	two, _ := SampleSizeTwoProportions(0.01, 0.02, 0.05, 0.8, 1, 2)
	if !(two.Fleiss > one.Fleiss) || math.IsNaN(two.Fleiss) {
		t.Errorf("two-sided n %v not above one-sided %v", two.Fleiss, one.Fleiss)
	}
}
