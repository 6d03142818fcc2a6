package rollout

import (
	"reflect"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// The run a step starts keeps its templates' merged kayentaScore, so the
// score decides with the weights and thresholds of the templates it was
// started from; conflicting blocks keep the run from starting, with the
// reason.
func TestStartRunKeepsTheKayentaScoring(t *testing.T) {
	kayenta := func(name string, score *spec.KayentaScore) spec.AnalysisTemplate {
		return spec.AnalysisTemplate{APIVersion: spec.APIVersion, Kind: spec.KindAnalysisTemplate, Metadata: spec.Metadata{Name: name},
			Spec: spec.AnalysisTemplateSpec{KayentaScore: score, Metrics: []spec.Metric{{Name: name,
				Provider: spec.Provider{Builtin: &spec.BuiltinProvider{}},
				Judge:    &spec.Judge{Compare: spec.JudgeCompareErrorRate, Method: spec.JudgeMethodKayenta}}}}}
	}
	pass := 90.0
	obs := &Observation{Rollout: "shop", Templates: map[string]spec.AnalysisTemplate{
		"errors":  kayenta("errors", &spec.KayentaScore{GroupWeights: map[string]float64{"errors": 70}, Pass: &pass}),
		"latency": kayenta("latency", &spec.KayentaScore{GroupWeights: map[string]float64{"latency": 30}}),
		"other":   kayenta("other", &spec.KayentaScore{GroupWeights: map[string]float64{"errors": 50}}),
	}}
	emit := func(string, string, map[string]any) {}
	s := &State{Stable: spec.VersionSpec{Version: "v1"}, Canary: &spec.VersionSpec{Version: "v2"}}
	req := analysis.Request{Refs: []spec.TemplateRef{{TemplateName: "errors"}, {TemplateName: "latency"}}}
	if err := startRun(s, obs, analysis.KindStep, 1, req, t0, emit); err != nil {
		t.Fatal(err)
	}
	want := &spec.KayentaScore{GroupWeights: map[string]float64{"errors": 70, "latency": 30}, Pass: &pass}
	if got := s.Runs[0].Run.Scoring; !reflect.DeepEqual(got, want) {
		t.Errorf("run scoring %+v, want %+v", got, want)
	}
	req.Refs = append(req.Refs, spec.TemplateRef{TemplateName: "other"})
	err := startRun(s, obs, analysis.KindStep, 2, req, t0, emit)
	if err == nil || !strings.Contains(err.Error(), `weigh kayenta group "errors" differently (70 and 50)`) {
		t.Errorf("conflicting blocks: %v", err)
	}
}
