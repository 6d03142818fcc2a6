package analysis_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// TestResolveProviderOptions fills the fields Argo's docs fill from
// arguments: rangeQuery start/end, credentials, and a jsonBody's strings.
func TestResolveProviderOptions(t *testing.T) {
	step := spec.Duration(time.Minute)
	body, err := spec.NewJSONValue(`{"service":"{{args.svc}}","quote":"{{args.odd}}","list":["{{rollout.canary.version}}",1]}`)
	if err != nil {
		t.Fatal(err)
	}
	prom := promMetric("latency", "http://prom:9090", "x", nil)
	prom.Provider.Prometheus.RangeQuery = &spec.PrometheusRangeQuery{Start: `now() - duration("{{args.lookback}}")`, End: "now()", Step: &step}
	prom.Provider.Prometheus.Authentication = &spec.Authentication{OAuth2: &spec.OAuth2Auth{TokenURL: "https://idp/token",
		ClientID: "{{args.svc}}", ClientSecret: "{{ args.oauthSecret }}", Scopes: []string{"{{args.svc}}:read"}}}
	web := spec.Metric{Name: "gate", Provider: spec.Provider{Web: &spec.WebProvider{URL: "http://gate", Method: "POST", JSONBody: body,
		Authentication: &spec.Authentication{BasicAuth: &spec.BasicAuth{Username: "{{args.svc}}", Password: "{{args.oauthSecret}}"}}}}}
	tmpl := template("t", []spec.TemplateArg{{Name: "svc"}, {Name: "lookback", Value: str("5m")}, {Name: "oauthSecret"}, {Name: "odd"}}, prom, web)
	templates := []spec.AnalysisTemplate{tmpl}
	orig, _ := json.Marshal(templates)

	got, err := analysis.Resolve(templates, refs("t"), []spec.Arg{{Name: "svc", Value: "checkout"}, {Name: "oauthSecret", Value: "s3cret"},
		{Name: "odd", Value: `a "quoted" \ value`}}, analysis.Vars("checkout", "v2", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	p := got[0].Provider.Prometheus
	if p.RangeQuery.Start != `now() - duration("5m")` || p.RangeQuery.End != "now()" {
		t.Errorf("rangeQuery %+v", p.RangeQuery)
	}
	if o := p.Authentication.OAuth2; o.ClientID != "checkout" || o.ClientSecret != "s3cret" || o.Scopes[0] != "checkout:read" {
		t.Errorf("oauth2 %+v", o)
	}
	w := got[1].Provider.Web
	if b := w.Authentication.BasicAuth; b.Username != "checkout" || b.Password != "s3cret" {
		t.Errorf("basicAuth %+v", b)
	}
	if want := `{"list":["v2",1],"quote":"a \"quoted\" \\ value","service":"checkout"}`; string(w.JSONBody.Raw()) != want {
		t.Errorf("jsonBody %s\nwant     %s", w.JSONBody.Raw(), want)
	}
	if after, _ := json.Marshal(templates); string(after) != string(orig) {
		t.Errorf("Resolve modified the templates:\n%s\n%s", orig, after)
	}
}

// TestJSONBodyNumbersSurvive: a large integer in a jsonBody is sent as
// written when the body is substituted, not rounded through float64.
func TestJSONBodyNumbersSurvive(t *testing.T) {
	body, err := spec.NewJSONValue(`{"id": 9007199254740993, "svc": "{{args.svc}}"}`)
	if err != nil {
		t.Fatal(err)
	}
	tpl := spec.AnalysisTemplate{Metadata: spec.Metadata{Name: "t"}, Spec: spec.AnalysisTemplateSpec{
		Args:    []spec.TemplateArg{{Name: "svc"}},
		Metrics: []spec.Metric{{Name: "m", Provider: spec.Provider{Web: &spec.WebProvider{URL: "http://x.example/", Method: "POST", JSONBody: body}}}}}}
	got, err := analysis.Resolve([]spec.AnalysisTemplate{tpl}, []spec.TemplateRef{{TemplateName: "t"}}, []spec.Arg{{Name: "svc", Value: "checkout"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if raw := string(got[0].Provider.Web.JSONBody.Raw()); !strings.Contains(raw, "9007199254740993") || !strings.Contains(raw, `"checkout"`) {
		t.Errorf("body = %s", raw)
	}
}

// TestResolveCloudWatch fills a cloudWatch query's dimension values,
// expression, label and period from arguments, without touching the
// template.
func TestResolveCloudWatch(t *testing.T) {
	cw := spec.Metric{Name: "errors", Provider: spec.Provider{CloudWatch: &spec.CloudWatchProvider{MetricDataQueries: []spec.CloudWatchMetricDataQuery{
		{ID: "e", ReturnData: new(bool), MetricStat: &spec.CloudWatchMetricStat{Metric: spec.CloudWatchMetric{Namespace: "AWS/ApplicationELB", MetricName: "HTTPCode_Target_5XX_Count",
			Dimensions: []spec.CloudWatchDimension{{Name: "TargetGroup", Value: "{{args.tg}}"}}}, Period: "{{args.period}}", Stat: "Sum"}},
		{ID: "rate", Expression: "FILL(e, 0) / {{args.divisor}}", Label: "{{rollout.canary.version}} 5xx"},
	}}}}
	templates := []spec.AnalysisTemplate{template("t", []spec.TemplateArg{{Name: "tg"}, {Name: "period", Value: str("300")}, {Name: "divisor"}}, cw)}
	orig, _ := json.Marshal(templates)
	got, err := analysis.Resolve(templates, refs("t"), []spec.Arg{{Name: "tg", Value: "targetgroup/shop-canary/2453ed029918f21f"}, {Name: "divisor", Value: "100"}},
		analysis.Vars("checkout", "v2", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	qs := got[0].Provider.CloudWatch.MetricDataQueries
	if v := qs[0].MetricStat.Metric.Dimensions[0].Value; v != "targetgroup/shop-canary/2453ed029918f21f" {
		t.Errorf("dimension value %q", v)
	}
	if qs[0].MetricStat.Period != "300" || qs[1].Expression != "FILL(e, 0) / 100" || qs[1].Label != "v2 5xx" {
		t.Errorf("queries %+v %+v", qs[0].MetricStat, qs[1])
	}
	if after, _ := json.Marshal(templates); string(after) != string(orig) {
		t.Errorf("Resolve modified the templates:\n%s\n%s", orig, after)
	}
}
