package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/api/apitest"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// webDoc is a minimal valid Rollout document without apiVersion, kind and
// metadata, which the path implies.
const webDoc = `{"spec": {
	"listen": "127.0.0.1:8090",
	"stable": {"version": "v1", "endpoints": ["http://127.0.0.1:9301"]},
	"strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {"duration": "5m"}}]}}
}}`

// withSpec puts extra, raw JSON members into webDoc's spec.
func withSpec(members string) string {
	return strings.Replace(webDoc, `"listen"`, members+`, "listen"`, 1)
}

func TestApplyRollout(t *testing.T) {
	h, fake, _ := newHandler(t, nil)
	v := decodeView(t, do(t, h, "PUT", "/api/v1/rollouts/web", webDoc))
	if v.APIVersion != spec.APIVersion || v.Kind != spec.KindRollout || v.Metadata.Name != "web" {
		t.Errorf("document header = %q %q %q, want it filled in from the path", v.APIVersion, v.Kind, v.Metadata.Name)
	}
	if got := status(v); got != "Healthy step 0 weight 0 stable v1 canary " || v.Status.Revision != 1 || v.Spec.HealthCheck != nil ||
		v.Spec.TrafficRouting.Timeouts.RequestHeaders != spec.DefaultRequestHeadersTimeout {
		t.Errorf("created: %s revision %d healthCheck %+v timeouts %+v (want defaults, no health check: it is opt-in)",
			got, v.Status.Revision, v.Spec.HealthCheck, v.Spec.TrafficRouting.Timeouts)
	}

	doc := `{"apiVersion": "coalmine.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"},` +
		strings.TrimPrefix(withSpec(`"canary": {"version": "v2", "endpoints": ["http://127.0.0.1:9302"]}`), "{")
	v = decodeView(t, do(t, h, "PUT", "/api/v1/rollouts/web", doc))
	if got := status(v); got != "Paused/PauseStep step 1 weight 10 stable v1 canary v2" || v.Status.Revision != 2 {
		t.Errorf("canary applied: %s revision %d", got, v.Status.Revision)
	}
	list := do(t, h, "GET", "/api/v1/rollouts", "")
	if !strings.Contains(list.body, `"name":"web"`) {
		t.Errorf("the applied rollout is not listed: %s", list.body)
	}
	stored, _ := fake.Get(context.Background(), "web")
	if stored.Status.Revision != 2 {
		t.Errorf("stored revision %d", stored.Status.Revision)
	}
}

func TestApplyRolloutRejects(t *testing.T) {
	tests := []struct {
		name       string
		path, body string
		wantStatus int
		wantField  string
		wantMsg    string
	}{
		{"nested unknown field", "checkout", withSpec(`"stabel": {}`), 400, "spec.stabel", `unknown field "spec.stabel"`},
		{"deep unknown field", "checkout", withSpec(`"healthCheck": {"pth": "/x"}`), 400, "spec.healthCheck.pth", `unknown field "spec.healthCheck.pth"`},
		{"unknown field in a list", "checkout", strings.Replace(webDoc, `{"setWeight": 10}`, `{"setWeigth": 10}`, 1), 400,
			"spec.strategy.canary.steps[0].setWeigth", `unknown field "spec.strategy.canary.steps[0].setWeigth"`},
		{"unknown top-level field", "checkout", `{"status": {}, ` + strings.TrimPrefix(webDoc, "{"), 400, "status", `unknown field "status"`},
		{"case", "checkout", withSpec(`"Listen": "x"`), 400, "spec.Listen", `did you mean "listen"?`},
		{"duplicate nested field", "checkout", withSpec(`"listen": "127.0.0.1:1"`), 400, "spec.listen", `field "spec.listen" appears more than once`},
		{"wrong type in a list", "checkout", strings.Replace(webDoc, `{"setWeight": 10}`, `{"setWeight": "10%"}`, 1), 400,
			"spec.strategy.canary.steps[0].setWeight", `field "spec.strategy.canary.steps[0].setWeight" must be a number, not a string`},
		{"int field with a fraction", "checkout", withSpec(`"connectionPool": {"maxConnections": 1.5}`), 400,
			"spec.connectionPool.maxConnections", "whole number"},
		{"int field in exponent form", "checkout", withSpec(`"connectionPool": {"maxConnections": 1e3}`), 400,
			"spec.connectionPool.maxConnections", "must be a whole number, not 1e3"},
		{"int64 field out of range", "checkout", withSpec(`"trafficRouting": {"mirrorMaxBodyBytes": 99999999999999999999}`), 400,
			"spec.trafficRouting.mirrorMaxBodyBytes", `field "spec.trafficRouting.mirrorMaxBodyBytes" is out of range: 99999999999999999999`},
		{"float out of range", "checkout", strings.Replace(webDoc, `{"setWeight": 10}`, `{"setWeight": 1e400}`, 1), 400,
			"spec.strategy.canary.steps[0].setWeight", "out of range"},
		{"bad duration", "checkout", withSpec(`"progressDeadline": 6.5`), 400, "spec.progressDeadline", `field "spec.progressDeadline": invalid duration 6.5`},
		{"negative duration", "checkout", withSpec(`"progressDeadline": "-1s"`), 400, "spec.progressDeadline", "must not be negative"},
		{"map value of the wrong type", "checkout", withSpec(`"notifications": [{"on": ["*"], "webhook": {"url": "http://127.0.0.1:1", "headers": {"X-A": 1}}}]`), 400,
			"spec.notifications[0].webhook.headers[X-A]", "must be a string, not a number"},
		{"spec not an object", "checkout", `{"spec": []}`, 400, "spec", `field "spec" must be an object, not an array`},
		{"trailing data", "checkout", webDoc + ` {}`, 400, "", "data after the JSON object"},
		{"truncated", "checkout", strings.TrimSuffix(webDoc, "}"), 400, "", "truncated"},
		{"empty body", "checkout", "", 400, "", "request body is empty"},
		{"not an object", "checkout", `"Rollout"`, 400, "", "must be a JSON object, not a string"},
		{"name mismatch", "checkout", `{"metadata": {"name": "payments"}, ` + strings.TrimPrefix(webDoc, "{"), 400, "metadata.name",
			`metadata.name "payments" does not match the name "checkout" in the path`},
		{"wrong kind", "checkout", `{"kind": "AnalysisTemplate", ` + strings.TrimPrefix(webDoc, "{"), 400, "kind", `kind must be Rollout at this path, not "AnalysisTemplate"`},
		{"wrong apiVersion", "checkout", `{"apiVersion": "v1", ` + strings.TrimPrefix(webDoc, "{"), 400, "apiVersion", `unsupported apiVersion "v1"`},
		{"invalid spec (service)", "checkout", `{"spec": {"listen": "127.0.0.1:8090", "stable": {"version": "v1"}}}`, 400,
			"spec.stable.endpoints", ""},
		{"missing template (service)", "checkout", strings.Replace(webDoc, `{"setWeight": 10}`, `{"analysis": {"templates": [{"templateName": "nope"}]}}`, 1), 400,
			"spec.strategy.canary.steps[0].analysis.templates[0].templateName", `analysis template "nope" not found`},
		{"invalid name", "Checkout_1", webDoc, 400, "metadata.name", "lowercase"},
		{"too large", "checkout", withSpec(`"pad": "` + strings.Repeat("x", 2<<20) + `"`), 413, "", "larger than the limit of 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, fake, _ := newHandler(t, nil)
			before, _ := json.Marshal(must(fake.Get(context.Background(), "checkout")))
			res := do(t, h, "PUT", "/api/v1/rollouts/"+tt.path, tt.body)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", res.status, tt.wantStatus, res.body)
			}
			b := errorBody(t, res)
			if b.Field != tt.wantField {
				t.Errorf("field = %q, want %q (error %q)", b.Field, tt.wantField, b.Error)
			}
			if !strings.Contains(b.Error, tt.wantMsg) {
				t.Errorf("error = %q, want it to contain %q", b.Error, tt.wantMsg)
			}
			after, _ := json.Marshal(must(fake.Get(context.Background(), "checkout")))
			if string(before) != string(after) {
				t.Errorf("a rejected document changed the rollout")
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestTemplates(t *testing.T) {
	h, fake, _ := newHandler(t, nil)

	res := do(t, h, "GET", "/api/v1/analysistemplates", "")
	var list api.TemplateList
	if err := json.Unmarshal([]byte(res.body), &list); err != nil || res.status != 200 {
		t.Fatalf("list: %d %s", res.status, res.body)
	}
	if len(list.Items) != 2 || list.Items[0].Metadata.Name != "canary-vs-stable" || list.Items[1].Metadata.Name != "golden-signals" {
		t.Errorf("list = %s", res.body)
	}
	empty := api.New(api.Config{Commands: apitest.NewFake(now)})
	if res := do(t, empty, "GET", "/api/v1/analysistemplates", ""); strings.TrimSpace(res.body) != `{"items":[]}` {
		t.Errorf("empty list: %s", res.body)
	}

	res = do(t, h, "GET", "/api/v1/analysistemplates/golden-signals", "")
	want, _ := json.Marshal(apitest.Templates()[1])
	if res.status != 200 || strings.TrimSpace(res.body) != string(want) {
		t.Errorf("get: %d %s\nwant %s", res.status, res.body, want)
	}
	res = do(t, h, "GET", "/api/v1/analysistemplates/nope", "")
	if res.status != 404 || errorBody(t, res).Error != `analysis template "nope" not found` {
		t.Errorf("get missing: %d %s", res.status, res.body)
	}

	const tpl = `{"spec": {"metrics": [{"name": "errors", "provider": {"builtin": {}}, "successCondition": "result.canary.errorRate < 0.01"}]}}`
	res = do(t, h, "PUT", "/api/v1/analysistemplates/error-rate", tpl)
	var got spec.AnalysisTemplate
	if err := json.Unmarshal([]byte(res.body), &got); err != nil || res.status != 200 {
		t.Fatalf("put: %d %s", res.status, res.body)
	}
	if got.Kind != spec.KindAnalysisTemplate || got.APIVersion != spec.APIVersion || got.Metadata.Name != "error-rate" ||
		got.Spec.Metrics[0].FailureLimit == nil || got.Spec.Metrics[0].OnNoData != "wait" {
		t.Errorf("put returned %s, want the header filled in and defaults set", res.body)
	}
	if _, err := fake.GetTemplate(context.Background(), "error-rate"); err != nil {
		t.Errorf("the template was not stored: %v", err)
	}

	for _, tt := range []struct {
		name, path, body string
		wantStatus       int
		wantField        string
		wantMsg          string
	}{
		{"name mismatch", "other", `{"metadata": {"name": "error-rate"}, ` + strings.TrimPrefix(tpl, "{"), 400, "metadata.name", "does not match"},
		{"wrong kind", "error-rate", `{"kind": "Rollout", ` + strings.TrimPrefix(tpl, "{"), 400, "kind", "kind must be AnalysisTemplate"},
		{"unknown nested field", "error-rate", strings.Replace(tpl, `"provider"`, `"provder"`, 1), 400, "spec.metrics[0].provder", "unknown field"},
		{"bad duration", "error-rate", strings.Replace(tpl, `"name": "errors",`, `"name": "errors", "interval": "soon",`, 1), 400, "spec.metrics[0].interval", `invalid duration "soon"`},
		{"invalid (service)", "error-rate", `{"spec": {"metrics": []}}`, 400, "spec.metrics", "at least one metric"},
		{"empty body", "error-rate", ``, 400, "", "request body is empty"},
		{"too large", "error-rate", `{"pad": "` + strings.Repeat("x", 2<<20) + `"}`, 413, "", "larger than the limit"},
	} {
		res := do(t, h, "PUT", "/api/v1/analysistemplates/"+tt.path, tt.body)
		if res.status != tt.wantStatus {
			t.Errorf("%s: status %d, want %d; %s", tt.name, res.status, tt.wantStatus, res.body)
			continue
		}
		if b := errorBody(t, res); b.Field != tt.wantField || !strings.Contains(b.Error, tt.wantMsg) {
			t.Errorf("%s: error %+v, want field %q and %q", tt.name, b, tt.wantField, tt.wantMsg)
		}
	}

	res = do(t, h, "DELETE", "/api/v1/analysistemplates/canary-vs-stable", "")
	if res.status != 409 || !strings.Contains(errorBody(t, res).Error, `still used by rollout "checkout", "payments"`) {
		t.Errorf("delete a used template: %d %s", res.status, res.body)
	}
	res = do(t, h, "DELETE", "/api/v1/analysistemplates/error-rate", "")
	if res.status != 204 || res.body != "" {
		t.Errorf("delete: %d %q, want 204 without a body", res.status, res.body)
	}
	res = do(t, h, "DELETE", "/api/v1/analysistemplates/error-rate", "")
	if res.status != 404 || errorBody(t, res).Error != `analysis template "error-rate" not found` {
		t.Errorf("delete again: %d %s", res.status, res.body)
	}
}

// FuzzApplyRollout feeds arbitrary bodies to PUT /api/v1/rollouts/{name}:
// the answer is always a 200 View or a 4xx JSON error, never a panic or a
// 500.
func FuzzApplyRollout(f *testing.F) {
	for _, seed := range []string{
		webDoc,
		withSpec(`"canary": {"version": "v2", "endpoints": ["http://127.0.0.1:9302"]}`),
		withSpec(`"stabel": {}`),
		withSpec(`"progressDeadline": 600`),
		withSpec(`"notifications": [{"on": ["*"], "webhook": {"headers": {"X-A": "b"}}}]`),
		`{"metadata": {"name": "other"}}`,
		`{"spec": {"strategy": {"canary": {"steps": [{"setWeight": 1e400}]}}}}`,
		`{"spec": {"rollbackWindow": -1, "trafficRouting": {"mirrorMaxBodyBytes": 99999999999999999999}}}`,
		`[`, `null`, `{} {}`, ``,
	} {
		f.Add(seed)
	}
	h, _, _ := newHandler(f, nil)
	f.Fuzz(func(t *testing.T, body string) {
		res := do(t, h, "PUT", "/api/v1/rollouts/fuzz", body)
		switch {
		case res.status == 200:
			decodeView(t, res)
		case res.status == 400 || res.status == 413:
			errorBody(t, res)
		default:
			t.Fatalf("status %d for body %q: %s", res.status, body, res.body)
		}
	})
}
