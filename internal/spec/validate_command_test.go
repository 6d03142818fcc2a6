package spec

import (
	"testing"
	"time"
)

func TestCommandProviderValidate(t *testing.T) {
	command := func(t *AnalysisTemplate, c CommandProvider) {
		t.Spec.Metrics[0].SuccessCondition = ""
		t.Spec.Metrics[0].Provider = Provider{Command: &c}
	}
	tests := []struct {
		name   string
		modify func(t *AnalysisTemplate)
		want   []string
	}{
		{"valid", func(t *AnalysisTemplate) {
			command(t, CommandProvider{
				Command: []string{"./smoke.sh", "--target", "http://{{args.service}}/", "{{rollout.canary.version}}"},
				Dir:     "/opt/checks", Timeout: ptr(Duration(2 * time.Minute)),
				Env: []EnvVar{{Name: "TARGET", Value: "{{args.service}}"}, {Name: "mode", Value: "quick"}},
			})
		}, nil},
		{"name in PATH and absolute path need no dir", func(t *AnalysisTemplate) {
			command(t, CommandProvider{Command: []string{"curl", "-f", "http://x/"}})
			t.Spec.Metrics = append(t.Spec.Metrics, Metric{Name: "abs",
				Provider: Provider{Command: &CommandProvider{Command: []string{"/opt/checks/smoke.sh"}}}})
		}, nil},
		{"empty command", func(t *AnalysisTemplate) { command(t, CommandProvider{}) },
			[]string{"spec.metrics[0].provider.command.command: a command is required"}},
		{"empty program", func(t *AnalysisTemplate) { command(t, CommandProvider{Command: []string{" ", "x"}}) },
			[]string{"spec.metrics[0].provider.command.command[0]: the program is empty"}},
		{"relative program without dir", func(t *AnalysisTemplate) { command(t, CommandProvider{Command: []string{"./smoke.sh"}}) },
			[]string{`spec.metrics[0].provider.command.command[0]: program "./smoke.sh" is a relative path: write its absolute path, or set dir`}},
		{"relative dir", func(t *AnalysisTemplate) {
			command(t, CommandProvider{Command: []string{"scripts/smoke.sh"}, Dir: "checks"})
		}, []string{`spec.metrics[0].provider.command.dir: dir "checks" must be an absolute path`}},
		{"placeholders are checked everywhere", func(t *AnalysisTemplate) {
			command(t, CommandProvider{Command: []string{"check", "{{args.servce}}"}, Dir: "{{args.dir}}",
				Env: []EnvVar{{Name: "X", Value: "{{rollout.namespace}}"}}})
		}, []string{
			`spec.metrics[0].provider.command.command[1]: {{args.servce}} uses argument "servce", which spec.args does not declare`,
			`spec.metrics[0].provider.command.dir: {{args.dir}} uses argument "dir", which spec.args does not declare`,
			"spec.metrics[0].provider.command.env[0].value: unknown substitution {{rollout.namespace}}",
		}},
		{"env names", func(t *AnalysisTemplate) {
			command(t, CommandProvider{Command: []string{"check"}, Env: []EnvVar{
				{Name: ""}, {Name: "1X"}, {Name: "A-B"}, {Name: "COALMINE_TOKEN"}, {Name: "coalmine_arg_x"}, {Name: "OK"}, {Name: "OK"},
			}})
		}, []string{
			"spec.metrics[0].provider.command.env[0].name: an environment variable name is required",
			`spec.metrics[0].provider.command.env[1].name: environment variable name "1X" may only contain letters, digits and '_'`,
			`spec.metrics[0].provider.command.env[2].name: environment variable name "A-B" may only contain`,
			"spec.metrics[0].provider.command.env[3].name: names starting with COALMINE_ are reserved",
			"spec.metrics[0].provider.command.env[4].name: names starting with COALMINE_ are reserved",
			"spec.metrics[0].provider.command.env[6].name: environment variable OK is set twice",
		}},
		{"NUL and timeout", func(t *AnalysisTemplate) {
			command(t, CommandProvider{Command: []string{"check", "a\x00b"}, Timeout: ptr(Duration(0)),
				Env: []EnvVar{{Name: "X", Value: "\x00"}}})
		}, []string{
			"spec.metrics[0].provider.command.command[1]: contains a NUL character",
			"spec.metrics[0].provider.command.env[0].value: contains a NUL character",
			"spec.metrics[0].provider.command.timeout: must be a positive duration",
		}},
		{"arguments that share a variable", func(t *AnalysisTemplate) {
			t.Spec.Args = append(t.Spec.Args, TemplateArg{Name: "Service"})
			command(t, CommandProvider{Command: []string{"check"}})
			t.Spec.Metrics = append(t.Spec.Metrics, t.Spec.Metrics[0])
			t.Spec.Metrics[1].Name = "again"
		}, []string{`spec.args[1].name: arguments "service" and "Service" would both be COALMINE_ARG_SERVICE in the environment of the template's command metrics: rename one`}},
		{"substitution inside a shell script", func(t *AnalysisTemplate) {
			command(t, CommandProvider{Command: []string{"/bin/bash", "-euo", "pipefail", "-c", "curl -f {{args.service}} && echo {{rollout.name}}"}})
		}, []string{
			`spec.metrics[0].provider.command.command[4]: {{args.service}} would be pasted into the shell script as text, so a value with quotes, ; or $(...) could run other commands: read it from the environment instead ("$COALMINE_ARG_SERVICE"), or pass it as an argument after the script ("$1")`,
			`spec.metrics[0].provider.command.command[4]: {{rollout.name}} would be pasted into the shell script as text, so a value with quotes, ; or $(...) could run other commands: read it from the environment instead ("$COALMINE_ROLLOUT")`,
		}},
		{"substitution after a shell script or without -c is fine", func(t *AnalysisTemplate) {
			command(t, CommandProvider{Command: []string{"sh", "-c", `curl -f "$1"`, "sh", "{{args.service}}"}})
			t.Spec.Metrics = append(t.Spec.Metrics, Metric{Name: "script-file",
				Provider: Provider{Command: &CommandProvider{Command: []string{"bash", "/opt/smoke.sh", "{{args.service}}"}}}})
		}, nil},
		{"a judge needs builtin", func(t *AnalysisTemplate) {
			command(t, CommandProvider{Command: []string{"check"}})
			t.Spec.Metrics[0].Judge = &Judge{Compare: JudgeCompareErrorRate}
		}, []string{"spec.metrics[0].judge: a judge needs provider builtin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := validTemplate()
			tt.modify(&tmpl)
			tmpl.SetDefaults()
			assertErrors(t, tmpl.Validate(), tt.want)
		})
	}
}

func TestArgEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"service":      "COALMINE_ARG_SERVICE",
		"service-name": "COALMINE_ARG_SERVICE_NAME",
		"api.url":      "COALMINE_ARG_API_URL",
		"p99Max":       "COALMINE_ARG_P99MAX",
		"ünï":          "COALMINE_ARG__N_",
	} {
		if got := ArgEnvName(in); got != want {
			t.Errorf("ArgEnvName(%q) = %q, want %q", in, got, want)
		}
	}
}
