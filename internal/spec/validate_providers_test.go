package spec

import (
	"strings"
	"testing"
	"time"
)

func TestProviderOptionsValidate(t *testing.T) {
	prom := func(t *AnalysisTemplate) *PrometheusProvider { return t.Spec.Metrics[0].Provider.Prometheus }
	web := func(t *AnalysisTemplate) *WebProvider {
		w := &WebProvider{URL: "http://127.0.0.1:8000/gate"}
		t.Spec.Metrics[0].Provider = Provider{Web: w}
		return w
	}
	step := ptr(Duration(time.Minute))
	tests := []struct {
		name   string
		modify func(t *AnalysisTemplate)
		want   []string
	}{
		{"Argo's port example", func(t *AnalysisTemplate) {
			t.Spec.Args = append(t.Spec.Args, TemplateArg{Name: "host"}, TemplateArg{Name: "port"})
			prom(t).Address = "http://{{args.host}}:{{args.port}}"
			web(t).URL = "http://{{args.host}}:{{ args.port }}/api/v1/check?svc={{args.service}}"
		}, nil},
		{"port placeholder with a prefix, and a password", func(t *AnalysisTemplate) {
			t.Spec.Args = append(t.Spec.Args, TemplateArg{Name: "port"})
			prom(t).Address = "http://user:{{args.port}}@prom:90{{args.port}}/prefix"
		}, nil},
		{"a port that is not a number is still an error", func(t *AnalysisTemplate) {
			prom(t).Address = "http://prom:x{{args.service}}"
		}, []string{`spec.metrics[0].provider.prometheus.address: invalid prometheus address URL: invalid port ":xplaceholder"`}},
		{"range query", func(t *AnalysisTemplate) {
			t.Spec.Args = append(t.Spec.Args, TemplateArg{Name: "lookback", Value: ptr("5m")})
			prom(t).RangeQuery = &PrometheusRangeQuery{Start: `now() - duration("{{args.lookback}}")`, End: "now()", Step: step}
		}, nil},
		{"range query problems", func(t *AnalysisTemplate) {
			prom(t).RangeQuery = &PrometheusRangeQuery{Start: "now() - 1h", End: `"yesterday"`}
		}, []string{
			"spec.metrics[0].provider.prometheus.rangeQuery.start: invalid time expression: ",
			`spec.metrics[0].provider.prometheus.rangeQuery.end: invalid time expression: gives string, not a time`,
			"spec.metrics[0].provider.prometheus.rangeQuery.step: a step is required",
		}},
		{"range query empty and undeclared", func(t *AnalysisTemplate) {
			prom(t).RangeQuery = &PrometheusRangeQuery{End: `now() - duration("{{args.nope}}")`, Step: ptr(Duration(0))}
		}, []string{
			"spec.metrics[0].provider.prometheus.rangeQuery.start: a time expression is required, such as now() - duration(\"1h\")",
			`spec.metrics[0].provider.prometheus.rangeQuery.end: {{args.nope}} uses argument "nope"`,
			"spec.metrics[0].provider.prometheus.rangeQuery.step: must be a positive duration",
		}},
		{"authentication methods", func(t *AnalysisTemplate) {
			t.Spec.Args = append(t.Spec.Args, TemplateArg{Name: "secret"})
			prom(t).Insecure = true
			prom(t).Authentication = &Authentication{OAuth2: &OAuth2Auth{TokenURL: "https://idp:{{args.service}}/token",
				ClientID: "me", ClientSecret: "{{ args.secret }}", Scopes: []string{"read"}}}
			t.Spec.Metrics = append(t.Spec.Metrics,
				Metric{Name: "b", Provider: Provider{Web: &WebProvider{URL: "https://x/", Insecure: true,
					Authentication: &Authentication{BasicAuth: &BasicAuth{Username: "u", PasswordFrom: &SecretRef{Env: "P"}}}}}},
				Metric{Name: "c", Provider: Provider{Web: &WebProvider{URL: "https://x/",
					Authentication: &Authentication{Bearer: &BearerAuth{TokenFrom: &SecretRef{File: "/run/token"}}}}}},
				Metric{Name: "d", Provider: Provider{Web: &WebProvider{URL: "https://x/",
					Authentication: &Authentication{OAuth2: &OAuth2Auth{TokenURL: "https://idp/token", ClientID: "me", ClientSecretFrom: &SecretRef{Env: "S"}}}}}},
			)
		}, nil},
		{"authentication problems", func(t *AnalysisTemplate) {
			prom(t).Authentication = &Authentication{}
			t.Spec.Metrics = append(t.Spec.Metrics,
				Metric{Name: "b", Provider: Provider{Web: &WebProvider{URL: "https://x/",
					Authentication: &Authentication{BasicAuth: &BasicAuth{Username: "a:b", Password: "p", PasswordFrom: &SecretRef{Env: "P"}}}}}},
				Metric{Name: "c", Provider: Provider{Web: &WebProvider{URL: "https://x/",
					Authentication: &Authentication{Bearer: &BearerAuth{TokenFrom: &SecretRef{}}}}}},
				Metric{Name: "d", Provider: Provider{Web: &WebProvider{URL: "https://x/",
					Authentication: &Authentication{OAuth2: &OAuth2Auth{TokenURL: "idp/token", Scopes: []string{"a b"}}}}}},
			)
		}, []string{
			"spec.metrics[0].provider.prometheus.authentication: authentication must set exactly one of basicAuth, bearer, oauth2, sigv4; this one sets none",
			"spec.metrics[1].provider.web.authentication.basicAuth.username: a basic-auth username cannot contain ':'",
			"spec.metrics[1].provider.web.authentication.basicAuth: basicAuth must set exactly one of password, passwordFrom; this one sets 2",
			"spec.metrics[2].provider.web.authentication.bearer.tokenFrom: a secret reference must set exactly one of env, file",
			`spec.metrics[3].provider.web.authentication.oauth2.tokenUrl: OAuth2 token "idp/token" must be an absolute http:// or https:// URL`,
			"spec.metrics[3].provider.web.authentication.oauth2.clientId: a clientId is required",
			"spec.metrics[3].provider.web.authentication.oauth2: oauth2 must set exactly one of clientSecret, clientSecretFrom; this one sets none",
			`spec.metrics[3].provider.web.authentication.oauth2.scopes[0]: a scope is one word without spaces, not "a b"`,
		}},
		{"sigv4 is not supported, and says what to do", func(t *AnalysisTemplate) {
			prom(t).Authentication = &Authentication{SigV4: &SigV4Auth{Region: "eu-west-1"}}
		}, []string{"spec.metrics[0].provider.prometheus.authentication.sigv4: AWS SigV4 signing of Prometheus and web queries is not supported. Put a signing proxy (such as aws-sigv4-proxy) in front of Amazon Managed Prometheus"}},
		{"web Argo fields", func(t *AnalysisTemplate) {
			w := web(t)
			w.Method = "POST"
			w.TimeoutSeconds = ptr(20)
			w.JSONBody, _ = NewJSONValue(`{"service": "{{args.service}}", "n": [1, 2]}`)
			w.JSONPath = `{$.checks[?(@.name == "{{args.service}}")].ok}`
		}, nil},
		{"web Argo field problems", func(t *AnalysisTemplate) {
			w := web(t)
			w.Timeout = ptr(Duration(time.Second))
			w.TimeoutSeconds = ptr(20)
			w.Body = "x"
			w.JSONBody, _ = NewJSONValue(`{"service": "{{args.nope}}"}`)
			w.JSONPath = "{$.data.ok"
		}, []string{
			"spec.metrics[0].provider.web.timeoutSeconds: set timeout or timeoutSeconds, not both",
			"spec.metrics[0].provider.web.jsonBody: set body or jsonBody, not both",
			`spec.metrics[0].provider.web.jsonBody: {{args.nope}} uses argument "nope"`,
			`spec.metrics[0].provider.web.jsonPath: invalid JSONPath "{$.data.ok": unclosed action; write it as {$.field.sub[0]}`,
		}},
		{"jsonBody with GET, timeoutSeconds 0, plain text path", func(t *AnalysisTemplate) {
			w := web(t)
			w.TimeoutSeconds = ptr(0)
			w.JSONBody, _ = NewJSONValue(`true`)
			w.JSONPath = "x{.a}"
		}, []string{
			"spec.metrics[0].provider.web.timeoutSeconds: must be at least 1, not 0",
			"spec.metrics[0].provider.web.jsonBody: a jsonBody needs method: POST or PUT",
			`spec.metrics[0].provider.web.jsonPath: invalid JSONPath "x{.a}": a metric takes one value`,
		}},
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

func TestParseJSONPath(t *testing.T) {
	for _, ok := range []string{"", "{$}", "{}", "$.a", ".a.b", "{$.a[0]['b c']}", `{$.a[?(@.x == "y")].v}`, "{..v}", "{$.a[*].b}", "{.a[-1]}", "{.a[0:2]}"} {
		if _, err := ParseJSONPath(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for path, want := range map[string]string{
		"{$.data.ok":                 "unclosed action",
		"{.a}{.b}":                   "a metric takes one value",
		"{range .items[*]}{.x}{end}": "a metric takes one value",
		"{range .items[*]}":          "range blocks are not supported",
		"{data.ok}":                  "a path starts with $ or '.'",
		"{.a[}":                      "unterminated array",
	} {
		_, err := ParseJSONPath(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", path, err, want)
		}
	}
}

func TestTimeExpr(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	for src, want := range map[string]time.Time{
		"now()":                        now,
		`now() - duration("1h")`:       now.Add(-time.Hour),
		`now() - duration("90s")`:      now.Add(-90 * time.Second),
		`date("2026-12-01T00:00:00Z")`: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	} {
		e, err := CompileTimeExpr(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got, err := e.Eval(now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s = %v, %v; want %v", src, got, err, want)
		}
	}
	e, err := CompileTimeExpr(`now() - duration("placeholder")`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Eval(now); err == nil || !strings.Contains(err.Error(), `invalid duration "placeholder"`) {
		t.Errorf("a bad duration at run time: %v", err)
	}
}
