package analysis_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

func f64(x float64) *float64 { return &x }

func kayentaMetric(name string, groups ...string) spec.Metric {
	return spec.Metric{Name: name, Provider: spec.Provider{Builtin: &spec.BuiltinProvider{}},
		Judge: &spec.Judge{Compare: spec.JudgeCompareErrorRate, Method: spec.JudgeMethodKayenta, Groups: groups}}
}

func scored(t spec.AnalysisTemplate, s *spec.KayentaScore) spec.AnalysisTemplate {
	t.Spec.KayentaScore = s
	return t
}

// Several templates composing one run merge their kayentaScore blocks, and
// conflicting ones are refused with both templates named.
func TestResolveMergesKayentaScores(t *testing.T) {
	errs := scored(template("errors", nil, kayentaMetric("errors", "http")), &spec.KayentaScore{GroupWeights: map[string]float64{"http": 60}, Pass: f64(90)})
	lat := scored(template("latency", nil, kayentaMetric("p99", "latency")), &spec.KayentaScore{GroupWeights: map[string]float64{"latency": 40}, Marginal: f64(50)})
	plain := template("plain", nil, kayentaMetric("p50"))
	templates := []spec.AnalysisTemplate{errs, lat, plain}

	res, err := analysis.ResolveRun(templates, analysis.Request{Refs: refs("errors", "latency")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &spec.KayentaScore{GroupWeights: map[string]float64{"http": 60, "latency": 40}, Pass: f64(90), Marginal: f64(50)}
	if !reflect.DeepEqual(res.KayentaScore, want) {
		t.Errorf("merged score %+v, want %+v", res.KayentaScore, want)
	}
	if res, err := analysis.ResolveRun(templates, analysis.Request{Refs: refs("plain")}, nil); err != nil || res.KayentaScore != nil {
		t.Errorf("a run without a kayentaScore block: %+v, %v; want nil (the defaults)", res.KayentaScore, err)
	}

	for _, tc := range []struct {
		name      string
		templates []spec.AnalysisTemplate
		want      string
	}{
		{"weights differ", []spec.AnalysisTemplate{errs, scored(template("latency", nil, kayentaMetric("p99", "latency")), &spec.KayentaScore{GroupWeights: map[string]float64{"http": 50}})},
			`AnalysisTemplates "errors" and "latency" weigh kayenta group "http" differently (60 and 50): give it one weight`},
		{"pass differs", []spec.AnalysisTemplate{errs, scored(template("latency", nil, kayentaMetric("p99")), &spec.KayentaScore{Pass: f64(95)})},
			`AnalysisTemplates "errors" and "latency" set kayentaScore.pass to 90 and 95: one run has one threshold`},
		{"weights sum above 100 together", []spec.AnalysisTemplate{errs, scored(template("latency", nil, kayentaMetric("p99", "latency")), &spec.KayentaScore{GroupWeights: map[string]float64{"latency": 50}})},
			"the run's templates' kayentaScore blocks together: kayentaScore.groupWeights: the weights sum to 110; at most 100"},
		{"marginal above pass together", []spec.AnalysisTemplate{errs, scored(template("latency", nil, kayentaMetric("p99")), &spec.KayentaScore{Marginal: f64(92)})},
			"kayentaScore.marginal: marginal 92 is above pass 90"},
		{"unknown group", []spec.AnalysisTemplate{errs, scored(template("latency", nil, kayentaMetric("p99")), &spec.KayentaScore{GroupWeights: map[string]float64{"latncy": 40}})},
			`kayentaScore.groupWeights weighs "latncy", which no kayenta metric of the run is in (groups: http, p99)`},
		{"nothing to score", []spec.AnalysisTemplate{scored(template("errors", nil, promMetric("e", "http://p:9090", "q", nil)), &spec.KayentaScore{}), template("latency", nil, promMetric("l", "http://p:9090", "q", nil))},
			"kayentaScore is set, but the run has no judge.method kayenta metric to score"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := analysis.ResolveRun(tc.templates, analysis.Request{Refs: refs("errors", "latency")}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
