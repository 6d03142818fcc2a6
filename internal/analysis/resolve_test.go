package analysis_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

func str(s string) *string { return &s }

func template(name string, args []spec.TemplateArg, metrics ...spec.Metric) spec.AnalysisTemplate {
	return spec.AnalysisTemplate{
		APIVersion: "coalmine.dev/v1alpha1", Kind: "AnalysisTemplate",
		Metadata: spec.Metadata{Name: name},
		Spec:     spec.AnalysisTemplateSpec{Args: args, Metrics: metrics},
	}
}

func refs(names ...string) []spec.TemplateRef {
	var r []spec.TemplateRef
	for _, n := range names {
		r = append(r, spec.TemplateRef{TemplateName: n})
	}
	return r
}

func promMetric(name, address, query string, headers map[string]string) spec.Metric {
	return spec.Metric{Name: name, SuccessCondition: "result[0] >= 0.95",
		Provider: spec.Provider{Prometheus: &spec.PrometheusProvider{Address: address, Query: query, Headers: headers}}}
}

// TestResolve merges templates and substitutes every provider string, as
// Argo's "Analysis with Multiple Templates" and "Analysis Template
// Arguments" examples do.
func TestResolve(t *testing.T) {
	successRate := template("success-rate", []spec.TemplateArg{{Name: "service-name"}, {Name: "prometheus-port", Value: str("9090")}},
		promMetric("success-rate", "http://prometheus.example.com:{{args.prometheus-port}}",
			`sum(rate(coalmine_requests_total{rollout="{{args.service-name}}",version="{{rollout.canary.version}}",code!~"5.."}[1m]))`,
			map[string]string{"X-Scope": "{{rollout.name}}"}))
	errorRate := template("error-rate", []spec.TemplateArg{{Name: "service-name"}},
		promMetric("error-rate", "http://prometheus.example.com:9090", `errors{service="{{ args.service-name }}",stable="{{rollout.stable.version}}"}`, nil))
	web := template("args-example", []spec.TemplateArg{{Name: "api-url", Value: str("http://example/measure")}, {Name: "api-token"}, {Name: "service-name"}},
		spec.Metric{Name: "webmetric", SuccessCondition: "result == 'true'", Provider: spec.Provider{Web: &spec.WebProvider{
			URL:      "{{ args.api-url }}?service={{ args.service-name }}",
			Headers:  map[string]string{"Authorization": "Bearer {{ args.api-token }}"},
			Body:     `{"rollout":"{{rollout.name}}","canary":"{{rollout.canary.version}}"}`,
			JSONPath: "{$.results.{{args.service-name}}}",
		}}})
	templates := []spec.AnalysisTemplate{successRate, errorRate, web}
	orig, _ := json.Marshal(templates)
	vars := analysis.Vars("checkout", "v1.5.0", "v1.4.2")

	got, err := analysis.Resolve(templates, refs("success-rate", "error-rate", "args-example"),
		[]spec.Arg{{Name: "service-name", Value: "checkout"}, {Name: "api-url", Value: "http://other-api"}, {Name: "api-token", Value: "s3cret"}}, vars)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Name != "success-rate" || got[1].Name != "error-rate" || got[2].Name != "webmetric" {
		t.Fatalf("metrics %v", got)
	}
	p := got[0].Provider.Prometheus
	if want := "http://prometheus.example.com:9090"; p.Address != want {
		t.Errorf("address %q (template default), want %q", p.Address, want)
	}
	if want := `sum(rate(coalmine_requests_total{rollout="checkout",version="v1.5.0",code!~"5.."}[1m]))`; p.Query != want {
		t.Errorf("query %q, want %q", p.Query, want)
	}
	if p.Headers["X-Scope"] != "checkout" {
		t.Errorf("headers %v", p.Headers)
	}
	if want := `errors{service="checkout",stable="v1.4.2"}`; got[1].Provider.Prometheus.Query != want {
		t.Errorf("query with spaces in braces %q, want %q", got[1].Provider.Prometheus.Query, want)
	}
	w := got[2].Provider.Web
	if w.URL != "http://other-api?service=checkout" || w.Headers["Authorization"] != "Bearer s3cret" ||
		w.Body != `{"rollout":"checkout","canary":"v1.5.0"}` || w.JSONPath != "{$.results.checkout}" {
		t.Errorf("web %+v", w)
	}
	if got[0].SuccessCondition != "result[0] >= 0.95" {
		t.Errorf("condition changed: %q", got[0].SuccessCondition)
	}
	if after, _ := json.Marshal(templates); string(after) != string(orig) {
		t.Errorf("Resolve modified the templates:\n%s\n%s", orig, after)
	}
}

func TestResolveOnePass(t *testing.T) {
	tm := template("t", []spec.TemplateArg{{Name: "a"}}, promMetric("m", "http://p:9090", "q{x=\"{{args.a}}\"}", nil))
	got, err := analysis.Resolve([]spec.AnalysisTemplate{tm}, refs("t"), []spec.Arg{{Name: "a", Value: "{{args.a}}"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q := got[0].Provider.Prometheus.Query; q != `q{x="{{args.a}}"}` {
		t.Errorf("query %q: a value must not be expanded again", q)
	}
}

func TestResolveConflictingDefaults(t *testing.T) {
	a := template("a", []spec.TemplateArg{{Name: "port", Value: str("9090")}}, promMetric("m1", "http://p:{{args.port}}", "q", nil))
	b := template("b", []spec.TemplateArg{{Name: "port", Value: str("9091")}}, promMetric("m2", "http://p:{{args.port}}", "q", nil))
	same := template("c", []spec.TemplateArg{{Name: "port", Value: str("9090")}}, promMetric("m3", "http://p:{{args.port}}", "q", nil))
	ts := []spec.AnalysisTemplate{a, b, same}
	if _, err := analysis.Resolve(ts, refs("a", "b"), nil, nil); err == nil || !strings.Contains(err.Error(), `give argument "port" different defaults ("9090" and "9091")`) {
		t.Errorf("conflicting defaults: %v", err)
	}
	got, err := analysis.Resolve(ts, refs("a", "b"), []spec.Arg{{Name: "port", Value: "9999"}}, nil)
	if err != nil || got[0].Provider.Prometheus.Address != "http://p:9999" || got[1].Provider.Prometheus.Address != "http://p:9999" {
		t.Errorf("a given value settles the conflict: %v %v", got, err)
	}
	if _, err := analysis.Resolve(ts, refs("a", "c"), nil, nil); err != nil {
		t.Errorf("equal defaults: %v", err)
	}
}

func TestResolveErrors(t *testing.T) {
	good := template("good", []spec.TemplateArg{{Name: "service"}}, promMetric("success-rate", "http://p:9090", `q{s="{{args.service}}"}`, nil))
	dup := template("dup", nil, promMetric("success-rate", "http://p:9090", "q", nil))
	typo := template("typo", []spec.TemplateArg{{Name: "service", Value: str("x")}},
		promMetric("m", "http://p:9090", `q{s="{{args.servce}}",z="{{rollout.zone}}"}`, map[string]string{"X-V": "{{rollout.canary.version}}"}))
	ts := []spec.AnalysisTemplate{good, dup, typo}
	svc := []spec.Arg{{Name: "service", Value: "checkout"}}
	tests := []struct {
		name string
		refs []spec.TemplateRef
		args []spec.Arg
		vars map[string]string
		want []string
	}{
		{"no templates", nil, nil, nil, []string{"no templates referenced"}},
		{"missing template", refs("nope"), nil, nil, []string{`AnalysisTemplate "nope" not found`}},
		{"duplicate metric names", refs("good", "dup"), svc, nil, []string{`metric "success-rate" is defined by AnalysisTemplate "good" and by "dup"`}},
		{"argument given twice", refs("good"), append(svc, svc...), nil, []string{`argument "service" is given twice`}},
		{"required argument missing", refs("good"), nil, nil, []string{`AnalysisTemplate "good" needs argument "service"`}},
		{"every bad placeholder named", refs("typo"), nil, map[string]string{analysis.VarRolloutName: "checkout"}, []string{
			`{{args.servce}} in metric "m" provider.prometheus.query: no template declares argument "servce"`,
			`{{rollout.zone}} in metric "m" provider.prometheus.query: unknown`,
			`{{rollout.canary.version}} in metric "m" provider.prometheus.headers.X-V: no value is known for it here`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := analysis.Resolve(ts, tt.refs, tt.args, tt.vars)
			if err == nil {
				t.Fatalf("no error, metrics %v", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// TestResolvedMetricsRun: a resolved template drives a run end to end.
func TestResolvedMetricsRun(t *testing.T) {
	n := 2
	m := promMetric("success-rate", "http://p:9090", "q", nil)
	m.Count = &n
	every := spec.Duration(time.Minute)
	m.Interval = &every
	ts := []spec.AnalysisTemplate{template("t", nil, m)}
	ts[0].SetDefaults()
	metrics, err := analysis.Resolve(ts, refs("t"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fe := ts[0].Validate(); len(fe) > 0 {
		t.Fatalf("template invalid: %v", fe)
	}
	d := newDriver(t, metrics...)
	d.records(0, vec(0.99))
	due, next := analysis.Due(d.run, metrics, d.now)
	if due != nil || !next.Equal(d.now.Add(time.Minute)) {
		t.Errorf("count 2 every minute: due %v next %v", due, next.Sub(d.now))
	}
	d.records(0, vec(0.99))
	if d.run.Phase != analysis.PhaseSuccessful {
		t.Errorf("run %s", d.run.Phase)
	}
	if !reflect.DeepEqual(metrics[0].FailureLimit, ts[0].Spec.Metrics[0].FailureLimit) {
		t.Error("defaults lost")
	}
}

// TestResolveArgoArgs covers what Argo users write in args: an argument no
// template declares (ignored), valueFrom for the rollout's own values, a
// literal that names them, and secrets that stay out of the run until a
// measurement reveals them.
func TestResolveArgoArgs(t *testing.T) {
	tpl := template("t", []spec.TemplateArg{
		{Name: "name"}, {Name: "canary"}, {Name: "stable"}, {Name: "label"},
		{Name: "token", ValueFrom: &spec.ArgValueFrom{Env: "API_TOKEN"}},
	}, spec.Metric{Name: "m", Provider: spec.Provider{Web: &spec.WebProvider{
		URL:     "http://x.example/{{args.name}}/{{args.canary}}/{{args.stable}}?l={{args.label}}",
		Headers: map[string]string{"Authorization": "Bearer {{args.token}}"},
	}}})
	vars := analysis.Vars("checkout", "v2", "v1")
	res, err := analysis.ResolveRun([]spec.AnalysisTemplate{tpl}, analysis.Request{Refs: refs("t"), Args: []spec.Arg{
		{Name: "name", ValueFrom: &spec.ArgValueFrom{FieldRef: &spec.FieldRef{FieldPath: "metadata.name"}}},
		{Name: "canary", ValueFrom: &spec.ArgValueFrom{PodTemplateHashValue: "Latest"}},
		{Name: "stable", ValueFrom: &spec.ArgValueFrom{PodTemplateHashValue: "Stable"}},
		{Name: "label", Value: "{{rollout.canary.version}}-{{args.name}}"},
		{Name: "not-declared", Value: "ignored"},
	}}, vars)
	if err != nil {
		t.Fatal(err)
	}
	w := res.Metrics[0].Provider.Web
	if want := "http://x.example/checkout/v2/v1?l=v2-{{args.name}}"; w.URL != want {
		t.Errorf("url = %q, want %q", w.URL, want)
	}
	if got := w.Headers["Authorization"]; got != "Bearer {{secret.token}}" {
		t.Errorf("the secret must stay a placeholder in the run: %q", got)
	}
	if got := res.Secrets["token"]; got.Env != "API_TOKEN" {
		t.Errorf("secrets = %v", res.Secrets)
	}
	p, _, err := analysis.RevealSecrets(res.Metrics[0].Provider, res.Secrets, func(f spec.ArgValueFrom) (string, error) {
		return "tok-" + f.Env, nil
	})
	if err != nil || p.Web.Headers["Authorization"] != "Bearer tok-API_TOKEN" {
		t.Errorf("revealed = %v, %v", p.Web.Headers, err)
	}
	if w.Headers["Authorization"] != "Bearer {{secret.token}}" {
		t.Error("RevealSecrets modified the run's metric")
	}
	if p.Web.URL != w.URL {
		t.Errorf("reveal touched other placeholders: %q", p.Web.URL)
	}
}

// TestResolveComposition: a template's templates bring their args and
// metrics (Argo's template composition), and Argo's dryRun and
// measurementRetention lists select metrics by regular expression, the
// analysis' own after the templates'.
func TestResolveComposition(t *testing.T) {
	base := template("base", []spec.TemplateArg{{Name: "service"}},
		promMetric("errors", "http://p:9090", `e{s="{{args.service}}"}`, nil),
		promMetric("latency-p99", "http://p:9090", `l{s="{{args.service}}"}`, nil))
	top := template("top", nil, promMetric("saturation", "http://p:9090", "s", nil))
	top.Spec.Templates = refs("base")
	top.Spec.DryRun = []spec.MetricSelector{{MetricName: "^latency"}}
	top.Spec.MeasurementRetention = []spec.MeasurementRetention{{MetricName: ".*", Limit: 20}}
	res, err := analysis.ResolveRun([]spec.AnalysisTemplate{base, top}, analysis.Request{
		Refs: refs("top"), Args: []spec.Arg{{Name: "service", Value: "checkout"}},
		DryRun:               []spec.MetricSelector{{MetricName: "satur"}},
		MeasurementRetention: []spec.MeasurementRetention{{MetricName: "errors", Limit: 50}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		name   string
		dry    bool
		retain int
	}
	var gs []got
	for _, m := range res.Metrics {
		gs = append(gs, got{m.Name, m.DryRun, *m.MeasurementRetention})
	}
	want := []got{{"errors", false, 50}, {"latency-p99", true, 20}, {"saturation", true, 20}}
	if !reflect.DeepEqual(gs, want) {
		t.Errorf("metrics = %+v, want %+v", gs, want)
	}
	if q := res.Metrics[0].Provider.Prometheus.Query; q != `e{s="checkout"}` {
		t.Errorf("composed metric not substituted: %s", q)
	}
	_, err = analysis.ResolveRun([]spec.AnalysisTemplate{base, top}, analysis.Request{
		Refs: refs("top"), Args: []spec.Arg{{Name: "service", Value: "x"}}, DryRun: []spec.MetricSelector{{MetricName: "nope"}}}, nil)
	if err == nil || !strings.Contains(err.Error(), `dryRun[1]: metricName "nope" matches no metric of the run`) {
		t.Errorf("unmatched selector: %v", err)
	}
}

// TestResolveNumbersFromArgs: Argo's count: "{{args.count}}" and its other
// number and duration fields, filled and checked when the run starts.
func TestResolveNumbersFromArgs(t *testing.T) {
	m := promMetric("m", "http://p:9090", "q", nil)
	m.ArgFields = map[string]string{"count": "{{args.count}}", "interval": "{{args.interval}}", "failureLimit": "{{ args.limit }}"}
	tpl := template("t", []spec.TemplateArg{{Name: "count"}, {Name: "interval", Value: str("30")}, {Name: "limit", Value: str("2")}}, m)
	got, err := analysis.Resolve([]spec.AnalysisTemplate{tpl}, refs("t"), []spec.Arg{{Name: "count", Value: "5"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := got[0]
	if *r.Count != 5 || r.Interval.D() != 30*time.Second || *r.FailureLimit != 2 || r.ArgFields != nil {
		t.Errorf("count %v interval %v failureLimit %v argFields %v", *r.Count, r.Interval, *r.FailureLimit, r.ArgFields)
	}
	for _, tc := range []struct{ count, interval, want string }{
		{"five", "30s", `metric "m" count = "{{args.count}}": "five" is not an integer`},
		{"0", "30s", `metric "m" count: must be at least 1`},
		{"3", "soon", `metric "m" interval = "{{args.interval}}": invalid duration "soon"`},
	} {
		_, err := analysis.Resolve([]spec.AnalysisTemplate{tpl}, refs("t"), []spec.Arg{{Name: "count", Value: tc.count}, {Name: "interval", Value: tc.interval}}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("count %s interval %s: %v, want %q", tc.count, tc.interval, err, tc.want)
		}
	}
}

// TestSecretArgumentInACommand: a secret argument reaches a command's
// environment only when the measurement runs, and the env is not rebuilt.
func TestSecretArgumentInACommand(t *testing.T) {
	tpl := template("t", []spec.TemplateArg{{Name: "token", ValueFrom: &spec.ArgValueFrom{Env: "TOKEN"}}},
		spec.Metric{Name: "smoke", Provider: spec.Provider{Command: &spec.CommandProvider{Command: []string{"/bin/true", "{{args.token}}"}}}})
	res, err := analysis.ResolveRun([]spec.AnalysisTemplate{tpl}, analysis.Request{Refs: refs("t")}, analysis.Vars("r", "v2", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := json.Marshal(res.Metrics)
	if strings.Contains(string(stored), "tok-value") {
		t.Fatalf("the secret is in the stored run: %s", stored)
	}
	p, _, err := analysis.RevealSecrets(res.Metrics[0].Provider, res.Secrets, func(spec.ArgValueFrom) (string, error) { return "tok-value", nil })
	if err != nil {
		t.Fatal(err)
	}
	c := p.Command
	if c.Command[1] != "tok-value" {
		t.Errorf("argv = %q", c.Command)
	}
	if len(c.Env) != len(res.Metrics[0].Provider.Command.Env) {
		t.Errorf("env rebuilt: %v", c.Env)
	}
	var got string
	for _, e := range c.Env {
		if e.Name == "COALMINE_ARG_TOKEN" {
			got = e.Value
		}
	}
	if got != "tok-value" {
		t.Errorf("COALMINE_ARG_TOKEN = %q", got)
	}
}

// TestRedactor: what a provider says about a query that used a secret is
// stored with the run, so the secret is hidden first, and the verdict's
// kind (no data, failed) survives.
func TestRedactor(t *testing.T) {
	tpl := template("t", []spec.TemplateArg{{Name: "key", ValueFrom: &spec.ArgValueFrom{Env: "KEY"}}},
		spec.Metric{Name: "m", Provider: spec.Provider{Web: &spec.WebProvider{URL: "http://x.example/hooks/{{args.key}}"}}})
	res, err := analysis.ResolveRun([]spec.AnalysisTemplate{tpl}, analysis.Request{Refs: refs("t")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, red, err := analysis.RevealSecrets(res.Metrics[0].Provider, res.Secrets, func(spec.ArgValueFrom) (string, error) { return "TOPSECRET42", nil })
	if err != nil || p.Web.URL != "http://x.example/hooks/TOPSECRET42" {
		t.Fatalf("revealed %q, %v", p.Web.URL, err)
	}
	out := red.Outcome(analysis.Outcome{
		Err:    fmt.Errorf("web GET %s: nothing matches: %w", p.Web.URL, provider.ErrNoData),
		Result: provider.Result{Value: map[string]any{"echo": []any{"TOPSECRET42", 1.0}}},
	})
	if strings.Contains(out.Err.Error(), "TOPSECRET42") || !errors.Is(out.Err, provider.ErrNoData) {
		t.Errorf("error %q (no data: %v)", out.Err, errors.Is(out.Err, provider.ErrNoData))
	}
	if got := fmt.Sprint(out.Result.Value); strings.Contains(got, "TOPSECRET42") {
		t.Errorf("result %s", got)
	}
}

// TestResolveReviewCases: two templates with the same valueFrom default
// agree; a number cannot come from a secret; a literal cannot name a
// secret placeholder.
func TestResolveReviewCases(t *testing.T) {
	from := func() *spec.ArgValueFrom {
		return &spec.ArgValueFrom{SecretKeyRef: &spec.SecretKeyRef{Name: "prom", Key: "token"}}
	}
	web := func(name string) spec.Metric {
		return spec.Metric{Name: name, Provider: spec.Provider{Web: &spec.WebProvider{URL: "http://x.example/", Headers: map[string]string{"A": "{{args.token}}"}}}}
	}
	a := template("a", []spec.TemplateArg{{Name: "token", ValueFrom: from()}}, web("ma"))
	b := template("b", []spec.TemplateArg{{Name: "token", ValueFrom: from()}}, web("mb"))
	if _, err := analysis.ResolveRun([]spec.AnalysisTemplate{a, b}, analysis.Request{Refs: refs("a", "b")}, nil); err != nil {
		t.Errorf("identical valueFrom defaults: %v", err)
	}
	m := promMetric("m", "http://p:9090", "q", nil)
	m.ArgFields = map[string]string{"count": "{{args.n}}"}
	n := template("n", []spec.TemplateArg{{Name: "n", ValueFrom: &spec.ArgValueFrom{Env: "N"}}}, m)
	if _, err := analysis.Resolve([]spec.AnalysisTemplate{n}, refs("n"), nil, nil); err == nil || !strings.Contains(err.Error(), "a number cannot come from a secret argument") {
		t.Errorf("number from a secret: %v", err)
	}
	if _, err := analysis.Resolve([]spec.AnalysisTemplate{a}, refs("a"), []spec.Arg{{Name: "token", Value: "{{secret.token}}"}}, nil); err == nil || !strings.Contains(err.Error(), "reserved for secret arguments") {
		t.Errorf("literal secret placeholder: %v", err)
	}
}
