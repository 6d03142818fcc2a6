package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// argoProviders is an AnalysisTemplate in the shapes of Argo Rollouts'
// docs/analysis/prometheus.md and web.md (apiVersion and headers aside),
// plus coalmine's secret references.
const argoProviders = `apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: argo-providers}
spec:
  args:
  - name: service-name
  - name: lookback-duration
    value: 5m
  - name: oauthSecret
  - name: host
  - name: port
  metrics:
  - name: latency
    successCondition: "all(result, # < 1000)"
    provider:
      prometheus:
        rangeQuery:
          start: 'now() - duration("{{args.lookback-duration}}")'
          end: 'now()'
          step: 1m
        address: http://{{args.host}}:{{args.port}}
        insecure: true
        authentication:
          oauth2:
            tokenUrl: https://my-oauth2-provider/token
            clientId: my-client-id
            clientSecret: "{{ args.oauthSecret }}"
            scopes: [
              "my-oauth2-scope"
            ]
        query: http_latency_ms{service="{{args.service-name}}"}
  - name: grafana-cloud
    provider:
      prometheus:
        address: https://prometheus.example.com
        query: up
        authentication:
          basicAuth:
            username: coalmine
            passwordFrom: {env: PROM_PASSWORD}
  - name: webmetric
    successCondition: result == true
    provider:
      web:
        method: POST
        url: "http://{{args.host}}:{{args.port}}/api/v1/check"
        timeoutSeconds: 20
        insecure: true
        jsonBody:
          service: "{{args.service-name}}"
          checks: [latency, errors]
          strict: true
        jsonPath: '{$.results[?(@.name == "{{args.service-name}}")].ok}'
        authentication:
          bearer:
            tokenFrom: {file: /run/secrets/gate-token}
`

func TestArgoProviderFieldsLoad(t *testing.T) {
	b, err := Parse("t.yaml", []byte(argoProviders))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := b.Template("argo-providers")
	w := tmpl.Spec.Metrics[2].Provider.Web
	if want := `{"checks":["latency","errors"],"service":"{{args.service-name}}","strict":true}`; string(w.JSONBody.Raw()) != want {
		t.Errorf("jsonBody %s, want %s", w.JSONBody.Raw(), want)
	}
	// Applied objects travel as JSON: the body must survive the trip.
	data, err := json.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	var back spec.AnalysisTemplate
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if got := string(back.Spec.Metrics[2].Provider.Web.JSONBody.Raw()); got != string(w.JSONBody.Raw()) {
		t.Errorf("after JSON: %s", got)
	}
	if errs := Check(nil, []spec.AnalysisTemplate{back}); len(errs) > 0 {
		t.Errorf("the template does not check after a JSON round trip: %v", errs)
	}

	// Lint resolves the template's secret references, with positions.
	err = ResolveSecrets(b, fakeEnv(nil), fakeFiles(map[string]string{"/run/secrets/gate-token": "tok\n"}))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("ResolveSecrets = %v, want one error", err)
	}
	if e := errs[0]; e.Line != 40 || e.Path != "spec.metrics[1].provider.prometheus.authentication.basicAuth.passwordFrom.env" ||
		e.Msg != "environment variable PROM_PASSWORD is not set" {
		t.Errorf("got %s", e)
	}
	if err := ResolveSecrets(b, fakeEnv(map[string]string{"PROM_PASSWORD": "pw"}), fakeFiles(map[string]string{"/run/secrets/gate-token": "tok\n"})); err != nil {
		t.Errorf("ResolveSecrets = %v", err)
	}
}

func TestArgoProviderFieldErrors(t *testing.T) {
	doc := strings.NewReplacer(
		"jsonBody:\n", "jsonBody:\n          1: one\n",
		"{$.results", "{$.results[",
		"          oauth2:\n", "          sigv4: {region: eu-west-1}\n          oauth2:\n",
	).Replace(argoProviders)
	_, err := Parse("t.yaml", []byte(doc))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse = %v", err)
	}
	want := []string{
		"t.yaml:23:9: spec.metrics[0].provider.prometheus.authentication: authentication must set exactly one of basicAuth, bearer, oauth2, sigv4; this one sets 2: oauth2, sigv4",
		"t.yaml:51:11: spec.metrics[2].provider.web.jsonBody: a JSON body's keys must be strings: quote keys such as 1 or true",
		`t.yaml:55:19: spec.metrics[2].provider.web.jsonPath: invalid JSONPath "{$.results[[?(@.name == \"{{args.service-name}}\")].ok}"`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d:\n got %s\nwant %s", i, errs[i], w)
		}
	}
}
