package analysis_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

func commandMetric(name string, c spec.CommandProvider) spec.Metric {
	return spec.Metric{Name: name, Provider: spec.Provider{Command: &c}}
}

// TestResolveCommand substitutes a command's arguments, dir and env
// values, and puts every argument and rollout value in its environment.
func TestResolveCommand(t *testing.T) {
	smoke := template("smoke", []spec.TemplateArg{{Name: "url"}, {Name: "max-latency", Value: str("250")}},
		commandMetric("smoke", spec.CommandProvider{
			Command: []string{"./smoke.sh", "--target", "{{args.url}}", "--version={{ rollout.canary.version }}"},
			Dir:     "/opt/{{rollout.name}}",
			Env:     []spec.EnvVar{{Name: "TARGET", Value: "{{args.url}}/health"}},
		}))
	other := template("other", []spec.TemplateArg{{Name: "region", Value: str("eu")}},
		promMetric("rate", "http://prom:9090", "up", nil))
	templates := []spec.AnalysisTemplate{smoke, other}
	orig, _ := json.Marshal(templates)

	got, err := analysis.Resolve(templates, refs("smoke", "other"), []spec.Arg{{Name: "url", Value: "http://canary:8080"}},
		analysis.Vars("checkout", "v2", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	c := got[0].Provider.Command
	if want := []string{"./smoke.sh", "--target", "http://canary:8080", "--version=v2"}; !reflect.DeepEqual(c.Command, want) {
		t.Errorf("command = %q, want %q", c.Command, want)
	}
	if c.Dir != "/opt/checkout" {
		t.Errorf("dir = %q", c.Dir)
	}
	want := []spec.EnvVar{
		{Name: "COALMINE_ARG_MAX_LATENCY", Value: "250"},
		{Name: "COALMINE_ARG_REGION", Value: "eu"}, // every argument of the run, from any template
		{Name: "COALMINE_ARG_URL", Value: "http://canary:8080"},
		{Name: "COALMINE_ROLLOUT", Value: "checkout"},
		{Name: "COALMINE_CANARY_VERSION", Value: "v2"},
		{Name: "COALMINE_STABLE_VERSION", Value: "v1"},
		{Name: "COALMINE_METRIC", Value: "smoke"},
		{Name: "TARGET", Value: "http://canary:8080/health"},
	}
	if !reflect.DeepEqual(c.Env, want) {
		t.Errorf("env =\n%v\nwant\n%v", c.Env, want)
	}
	if after, _ := json.Marshal(templates); string(after) != string(orig) {
		t.Errorf("Resolve modified the templates")
	}
}

func TestResolveCommandProblems(t *testing.T) {
	a := template("a", []spec.TemplateArg{{Name: "api-url", Value: str("x")}},
		commandMetric("smoke", spec.CommandProvider{Command: []string{"check", "{{args.nope}}"}}))
	b := template("b", []spec.TemplateArg{{Name: "api_url", Value: str("y")}}, promMetric("rate", "http://prom:9090", "up", nil))
	_, err := analysis.Resolve([]spec.AnalysisTemplate{a, b}, refs("a", "b"), nil, analysis.Vars("checkout", "v2", "v1"))
	if err == nil {
		t.Fatal("Resolve succeeded")
	}
	for _, want := range []string{
		`{{args.nope}} in metric "smoke" provider.command.command[1]: no template declares argument "nope"`,
		`arguments "api-url" and "api_url" would both be COALMINE_ARG_API_URL in the environment of metric "smoke"'s command: rename one`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nlacks %q", err, want)
		}
	}
}
