package config

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const argoTemplates = `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
  namespace: payments
  labels: {team: payments}
spec:
  args: [{name: service-name}]
  metrics:
  - name: success-rate
    interval: 30
    successCondition: result >= 0.95
    provider:
      prometheus:
        address: http://prometheus.example:9090
        timeout: 40
        headers:
        - key: X-Scope-OrgID
          value: tenant-a
        query: sum(rate(x{service="{{args.service-name}}"}[1m]))
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: web-check}
spec:
  metrics:
  - name: web
    provider:
      web:
        url: http://status.example/health
        headers: [{key: Authorization, value: Bearer x}, {key: Accept, value: application/json}]
        jsonPath: "{$.ok}"
`

func TestArgoShapedTemplates(t *testing.T) {
	b, err := Parse("argo.yaml", []byte(argoTemplates))
	if err != nil {
		t.Fatal(err)
	}
	sr, ok := b.Template("success-rate")
	if !ok {
		t.Fatal("success-rate not loaded")
	}
	m := sr.Spec.Metrics[0]
	if m.Interval.String() != "30s" || m.Provider.Prometheus.Timeout.String() != "40s" {
		t.Errorf("interval %v timeout %v, want 30s and 40s", m.Interval, m.Provider.Prometheus.Timeout)
	}
	if got := m.Provider.Prometheus.Headers["X-Scope-OrgID"]; got != "tenant-a" {
		t.Errorf("header list not read: %v", m.Provider.Prometheus.Headers)
	}
	wc, ok := b.Template("web-check")
	if !ok || wc.Kind != "AnalysisTemplate" || wc.APIVersion != "coalmine.dev/v1alpha1" {
		t.Fatalf("ClusterAnalysisTemplate not read as an AnalysisTemplate: %+v", wc)
	}
	if h := wc.Spec.Metrics[0].Provider.Web.Headers; len(h) != 2 || h["Accept"] != "application/json" {
		t.Errorf("web headers = %v", h)
	}
	want := []string{
		"argo.yaml:5:3: warning: metadata.namespace: Kubernetes metadata ignored (namespace, labels)",
		`argo.yaml:9:3: warning: spec.metrics: "success-rate": an empty result (no series, nothing matching jsonPath) waits for data`,
		"argo.yaml:23:7: warning: kind: ClusterAnalysisTemplate is read as an AnalysisTemplate",
	}
	got := strings.Split(b.Warnings.Warnings(), "\n")
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s\nwant %d", b.Warnings.Warnings(), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("warning %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestArgoShapeErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"argo rollout", "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec: {replicas: 3}\n",
			"x.yaml:1:13: apiVersion: an Argo Rollout does not port as it is"},
		{"header without value", tplWithHeaders("[{key: A}]"), `x.yaml:8:23: spec.metrics[0].provider.web.headers[0].value: header "A" needs value`},
		{"header extra field", tplWithHeaders("[{key: A, value: b, valueFrom: c}]"), `x.yaml:8:42: spec.metrics[0].provider.web.headers[0].valueFrom: a header list entry has only key and value`},
		{"header not a mapping", tplWithHeaders("[A]"), `x.yaml:8:23: spec.metrics[0].provider.web.headers[0]: a header is {key: NAME, value: VALUE}`},
		{"duplicate header", tplWithHeaders("[{key: A, value: b}, {key: A, value: c}]"), `x.yaml:8:49: spec.metrics[0].provider.web.headers[A]: duplicate key "A"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant %q", err, tc.want)
			}
		})
	}
}

func tplWithHeaders(h string) string {
	return `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  metrics:
  - name: m
    provider:
      web: {headers: ` + h + `, url: "http://x.example/", jsonPath: "{$.ok}"}
`
}

const argoArgs = `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  args:
  - name: service
  - name: token
    valueFrom: {secretKeyRef: {name: prom, key: token}}
  metrics:
  - name: m
    provider:
      web: {url: "http://x.example/{{args.service}}", headers: [{key: Authorization, value: "Bearer {{args.token}}"}], jsonPath: "{$.ok}"}
---
apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: r}
spec:
  listen: 127.0.0.1:8080
  stable: {version: v1, endpoints: [http://127.0.0.1:9001]}
  strategy:
    canary:
      steps:
      - analysis:
          templates: [{templateName: t}]
          args:
          - name: service
            valueFrom: {fieldRef: {fieldPath: metadata.name}}
          - name: region
            value: eu
          - name: key
            valueFrom: {env: API_KEY}
`

func TestArgoArgs(t *testing.T) {
	dir := t.TempDir()
	f := dir + "/argo.yaml"
	if err := os.WriteFile(f, []byte(argoArgs), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"COALMINE_SECRETS_DIR": "/s", "API_KEY": "k"}
	files := map[string]string{"/s/prom/token": "tok\n"}
	warnings, err := Lint([]string{f}, fakeEnv(env), fakeFiles(files))
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	got := warnings.Warnings()
	for _, want := range []string{
		`argo.yaml:28:19: warning: spec.strategy.canary.steps[0].analysis.args[1].name: argument "region" is not declared by AnalysisTemplate "t" and is ignored`,
		`argo.yaml:30:19: warning: spec.strategy.canary.steps[0].analysis.args[2].name: argument "key" is not declared`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings:\n%s\nmissing %q", got, want)
		}
	}
	delete(files, "/s/prom/token")
	delete(env, "API_KEY")
	_, err = Lint([]string{f}, fakeEnv(env), fakeFiles(files))
	for _, want := range []string{
		"argo.yaml:8:17: spec.args[1].valueFrom.secretKeyRef: cannot read secret file /s/prom/token: file does not exist (secretKeyRef is read from $COALMINE_SECRETS_DIR/NAME/KEY)",
		"argo.yaml:31:30: spec.strategy.canary.steps[0].analysis.args[2].valueFrom.env: environment variable API_KEY is not set",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("lint error:\n%v\nmissing %q", err, want)
		}
	}
}

func TestArgValueFromErrors(t *testing.T) {
	bad := strings.Replace(argoArgs, "valueFrom: {fieldRef: {fieldPath: metadata.name}}", "valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}", 1)
	bad = strings.Replace(bad, "value: eu", "value: eu\n            valueFrom: {podTemplateHashValue: Stable}", 1)
	_, err := Parse("x.yaml", []byte(bad))
	for _, want := range []string{
		`fieldPath "metadata.labels['app']" has no meaning outside Kubernetes: only metadata.name`,
		"args[1].valueFrom: set value or valueFrom, not both",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant %q", err, want)
		}
	}
}

func TestArgoNumbersFromArgs(t *testing.T) {
	doc := `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  args: [{name: count, value: "3"}, {name: interval}]
  metrics:
  - name: m
    count: "{{args.count}}"
    interval: "{{args.interval}}"
    failureLimit: "{{args.limt}}"
    successCondition: result[0] > 0
    provider: {prometheus: {address: "http://p:9090", query: up}}
`
	_, err := Parse("x.yaml", []byte(doc))
	want := `x.yaml:10:19: spec.metrics[0].failureLimit: {{args.limt}} uses argument "limt", which spec.args does not declare`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	b, err := Parse("x.yaml", []byte(strings.Replace(doc, "limt", "count", 1)))
	if err != nil {
		t.Fatal(err)
	}
	m := b.Templates[0].Spec.Metrics[0]
	if m.Count != nil || m.ArgFields["count"] != "{{args.count}}" || m.ArgFields["interval"] != "{{args.interval}}" {
		t.Errorf("count %v argFields %v", m.Count, m.ArgFields)
	}
	if _, err := Parse("x.yaml", []byte(strings.Replace(doc, `"{{args.count}}"`, `"three"`, 1))); err == nil || !strings.Contains(err.Error(), `spec.metrics[0].count: expected an integer, got the string "three"`) {
		t.Errorf("a string without placeholder must stay a type error: %v", err)
	}
}

// TestRollbackWindowWarning: a rollout written for Argo that leaves
// rollbackWindow out is told that coalmine's default undo is fast where
// Argo's walks the steps again; one that sets it, or is not Argo-shaped,
// is not.
func TestRollbackWindowWarning(t *testing.T) {
	rollout := func(extra string) string {
		return `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: r}
spec:
  listen: 127.0.0.1:8080
  stable: {version: v1, endpoints: [http://127.0.0.1:9001]}
` + extra + `  strategy:
    canary:
      steps:
      - setWeight: 10
      - pause: {duration: 10m}
`
	}
	const note = "spec.rollbackWindow: rollbackWindow is not set, so coalmine's default of 1 applies"
	for _, tc := range []struct {
		name, doc string
		warn      bool
	}{
		{"coalmine shapes", rollout(""), false},
		{"pause in seconds", strings.Replace(rollout(""), "10m", "600", 1), true},
		{"argo shape, window set", strings.Replace(rollout("  rollbackWindow: {revisions: 0}\n"), "10m", "600", 1), false},
		{"window in argo shape", rollout("  rollbackWindow: {revisions: 2}\n"), false},
		{"argo template", rollout("") + "---\n" + strings.Replace(tplWithHeaders("{}"), "name: t}", "name: t}", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Parse("r.yaml", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Contains(b.Warnings.Warnings(), note)
			if got != tc.warn {
				t.Errorf("warned %v, want %v:\n%s", got, tc.warn, b.Warnings.Warnings())
			}
		})
	}
	doc := strings.Replace(rollout(""), "      - pause: {duration: 10m}\n", "      - analysis: {templates: [{templateName: t}]}\n", 1) + "---\n" + tplWithHeaders("{}")
	b, err := Parse("r.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.Warnings.Warnings(), "r.yaml:4:1: warning: "+note) {
		t.Errorf("a rollout using an Argo template is not warned:\n%s", b.Warnings.Warnings())
	}
}

// TestArgFieldsReviewCases pins what review found: a placeholder interval
// counts as an interval; an explicit key overrides a merged placeholder;
// an argument one composed template defaults is not required; a dryRun
// rule matching no metric fails lint.
func TestArgFieldsReviewCases(t *testing.T) {
	doc := `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  args: [{name: interval, value: 30s}, {name: count, value: "3"}]
  metrics:
  - &base
    name: a
    count: "{{args.count}}"
    interval: "{{args.interval}}"
    provider: {prometheus: {address: "http://p:9090", query: up}}
  - <<: *base
    name: b
    count: 5
`
	b, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if m := b.Templates[0].Spec.Metrics[1]; m.ArgFields["count"] != "" || m.Count == nil || *m.Count != 5 || m.ArgFields["interval"] == "" {
		t.Errorf("metric b: count %v argFields %v", m.Count, m.ArgFields)
	}
	composedDefault := `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: base}
spec:
  args: [{name: svc, value: payments}]
  metrics: [{name: m, provider: {web: {url: "http://x.example/{{args.svc}}"}}}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: top}
spec:
  templates: [{templateName: base}]
  args: [{name: svc}]
  metrics: [{name: n, provider: {web: {url: "http://x.example/{{args.svc}}"}}}]
---
apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: r}
spec:
  listen: 127.0.0.1:8080
  stable: {version: v1, endpoints: [http://127.0.0.1:9001]}
  strategy:
    canary:
      steps:
      - analysis:
          templates: [{templateName: top}]
          dryRun: [{metricName: "^mm$"}]
`
	_, err = Parse("c.yaml", []byte(composedDefault))
	if err == nil || strings.Contains(err.Error(), "needs argument") || !strings.Contains(err.Error(), `c.yaml:27:33: spec.strategy.canary.steps[0].analysis.dryRun[0].metricName: metricName "^mm$" matches none of the metrics (n, m)`) {
		t.Errorf("got %v", err)
	}
}

// TestArgFieldsSurviveYAML: a template printed as YAML (as `coalmine
// apply` does with templates it fetches from the server) reads back with
// its placeholder fields.
func TestArgFieldsSurviveYAML(t *testing.T) {
	doc := `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  args: [{name: count, value: "3"}]
  metrics:
  - name: m
    interval: 10s
    count: "{{args.count}}"
    provider: {prometheus: {address: "http://p:9090", query: up}}
`
	b, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(b.Templates[0])
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("again.yaml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := again.Templates[0].Spec.Metrics[0].ArgFields["count"]; got != "{{args.count}}" {
		t.Errorf("count after a YAML round trip = %q\n%s", got, out)
	}
}
