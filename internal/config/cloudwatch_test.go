package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// TestCloudWatchExampleLoads loads examples/alb-canary.yaml: the ALB
// metrics (HTTPCode_Target_5XX_Count and RequestCount as a 5xx rate,
// TargetResponseTime p99) per target group, as an AnalysisTemplate.
func TestCloudWatchExampleLoads(t *testing.T) {
	b, err := Load("../../examples/alb-canary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, ok := b.Template("alb-target-group-health")
	if !ok {
		t.Fatal("template alb-target-group-health not loaded")
	}
	cw := tmpl.Spec.Metrics[0].Provider.CloudWatch
	if cw == nil || len(cw.MetricDataQueries) != 3 || cw.Interval.D().Minutes() != 5 {
		t.Fatalf("error-rate provider = %+v", cw)
	}
	q := cw.MetricDataQueries[0]
	if q.ID != "errors" || q.Returns() || q.MetricStat.Metric.MetricName != "HTTPCode_Target_5XX_Count" ||
		q.MetricStat.Period != "60" || q.MetricStat.Metric.Dimensions[0] != (spec.CloudWatchDimension{Name: "TargetGroup", Value: "{{args.target-group}}"}) {
		t.Errorf("first query = %+v", q)
	}
	if rate := cw.MetricDataQueries[2]; rate.Expression != "FILL(errors, 0) / requests" || !rate.Returns() {
		t.Errorf("rate query = %+v", rate)
	}
	p99 := tmpl.Spec.Metrics[1].Provider.CloudWatch.MetricDataQueries[0].MetricStat
	if p99.Metric.MetricName != "TargetResponseTime" || p99.Stat != "p99" {
		t.Errorf("p99 query = %+v", p99)
	}
	// Applied objects travel as JSON: the period stays a number.
	data, err := json.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"period":60`) {
		t.Errorf("JSON: %s", data)
	}
	var back spec.AnalysisTemplate
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if errs := Check(nil, []spec.AnalysisTemplate{back}); len(errs) > 0 {
		t.Errorf("the template does not check after a JSON round trip: %v", errs)
	}
}

// argoCloudWatch is Argo Rollouts' cloudWatch shape, with the period as
// Argo's IntOrString allows: a string, and a placeholder.
const argoCloudWatch = `apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: cw}
spec:
  args:
  - name: tg
  - name: period
    value: "300"
  metrics:
  - name: success-rate
    interval: 5m
    successCondition: "len(result[0].Values) >= 4 and all(result[0].Values, {# <= 0.01})"
    failureLimit: 3
    provider:
      cloudWatch:
        interval: 30m
        metricDataQueries:
        - id: rate
          expression: errors / requests
        - id: errors
          metricStat:
            metric:
              namespace: app
              metricName: errors
              dimensions: [{name: TargetGroup, value: "{{args.tg}}"}]
            period: "300"
            stat: Sum
            unit: Count
          returnData: false
        - id: requests
          metricStat:
            metric:
              namespace: app
              metricName: requests
            period: "{{args.period}}"
            stat: Sum
          returnData: false
`

func TestArgoCloudWatchLoads(t *testing.T) {
	b, err := Parse("t.yaml", []byte(argoCloudWatch))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := b.Template("cw")
	qs := tmpl.Spec.Metrics[0].Provider.CloudWatch.MetricDataQueries
	if qs[1].MetricStat.Period != "300" || qs[2].MetricStat.Period != "{{args.period}}" || qs[1].MetricStat.Unit != "Count" {
		t.Errorf("queries = %+v", qs)
	}
}

func TestCloudWatchErrors(t *testing.T) {
	doc := strings.NewReplacer(
		"- id: rate", "- id: Rate",
		`period: "300"`, "period: 90",
		"          returnData: false\n        - id: requests", "          returnData: false\n          expression: x\n        - id: requests",
		"stat: Sum\n          returnData: false\n`", "stat: ''\n          returnData: false\n",
	).Replace(argoCloudWatch)
	doc = strings.Replace(doc, "{{args.tg}}", "{{args.tgt}}", 1)
	_, err := Parse("t.yaml", []byte(doc))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse = %v", err)
	}
	want := []string{
		`spec.metrics[0].provider.cloudWatch.metricDataQueries[0].id: id "Rate" must start with a lowercase letter`,
		"spec.metrics[0].provider.cloudWatch.metricDataQueries[1]: a query must set exactly one of expression, metricStat",
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("errors lack %q:\n%s", w, got)
		}
	}
	// A bad period, an unknown argument and a missing stat, on a query
	// that is otherwise fine.
	doc2 := strings.NewReplacer(`period: "300"`, "period: 90", "{{args.tg}}", "{{args.tgt}}").Replace(argoCloudWatch)
	doc2 = strings.Replace(doc2, "            period: \"{{args.period}}\"\n            stat: Sum", "            period: \"{{args.period}}\"\n            stat: \"\"", 1)
	_, err = Parse("t.yaml", []byte(doc2))
	for _, w := range []string{
		"spec.metrics[0].provider.cloudWatch.metricDataQueries[1].metricStat.period: period 90: CloudWatch periods are 60 seconds or a multiple of 60",
		`spec.metrics[0].provider.cloudWatch.metricDataQueries[1].metricStat.metric.dimensions[0].value: {{args.tgt}} uses argument "tgt", which spec.args does not declare`,
		"spec.metrics[0].provider.cloudWatch.metricDataQueries[2].metricStat.stat: a statistic is required",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q:\n%v", w, err)
		}
	}
	// Nothing returns data.
	doc3 := strings.Replace(argoCloudWatch, "- id: rate\n          expression: errors / requests", "- id: rate\n          expression: errors / requests\n          returnData: false", 1)
	if _, err := Parse("t.yaml", []byte(doc3)); err == nil || !strings.Contains(err.Error(), "no query returns data") {
		t.Errorf("Parse = %v, want no query returns data", err)
	}
}
