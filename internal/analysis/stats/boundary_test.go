package stats

import "testing"

func TestHowardNormalMixtureBoundary(t *testing.T) {
	for _, v := range loadVectors(t, "howard_normal_mixture_boundary") {
		t.Run(v.Case, func(t *testing.T) {
			var in struct {
				S *float64 `json:"s"`
				V float64  `json:"v"`
			}
			var p struct {
				VOpt     float64 `json:"v_opt"`
				AlphaOpt float64 `json:"alpha_opt"`
				Alpha    float64 `json:"alpha"`
			}
			var out struct {
				RhoTwo   *num `json:"rho_two_sided"`
				LogMTwo  *num `json:"log_M_two_sided"`
				BoundTwo num  `json:"bound_two_sided"`
				RhoOne   *num `json:"rho_one_sided"`
				LogMOne  *num `json:"log_M_one_sided"`
				BoundOne num  `json:"bound_one_sided"`
			}
			seqDecode(t, v.Inputs, &in)
			seqDecode(t, v.Params, &p)
			seqDecode(t, v.Outputs, &out)
			rhoTwo := NormalMixtureRho(p.VOpt, p.AlphaOpt, false)
			rhoOne := NormalMixtureRho(p.VOpt, p.AlphaOpt, true)
			if out.RhoTwo != nil {
				seqCheck(t, "ρ two-sided", rhoTwo, float64(*out.RhoTwo))
			}
			if out.RhoOne != nil {
				seqCheck(t, "ρ one-sided", rhoOne, float64(*out.RhoOne))
			}
			if in.S != nil && out.LogMTwo != nil {
				seqCheck(t, "ln M two-sided", NormalMixtureLogM(*in.S, in.V, rhoTwo, false), float64(*out.LogMTwo))
			}
			if in.S != nil && out.LogMOne != nil {
				seqCheck(t, "ln M one-sided", NormalMixtureLogM(*in.S, in.V, rhoOne, true), float64(*out.LogMOne))
			}
			seqCheck(t, "bound two-sided", NormalMixtureBound(in.V, rhoTwo, p.Alpha, false), float64(out.BoundTwo))
			seqCheck(t, "bound one-sided", NormalMixtureBound(in.V, rhoOne, p.Alpha, true), float64(out.BoundOne))
		})
	}
}
