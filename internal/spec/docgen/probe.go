package docgen

import (
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// The probes are complete, valid documents that set every field (every
// optional object present, every union member used somewhere). The
// generator leaves one field out at a time to learn its default and whether
// it is required, so a field added to the spec types must be set here too;
// ConfigReference fails when a probe stops validating.

func ptr[T any](v T) *T { return &v }

func dur(d time.Duration) *spec.Duration { return ptr(spec.Duration(d)) }

func mustJSON(raw string) *spec.JSONValue {
	v, err := spec.NewJSONValue(raw)
	if err != nil {
		panic(err)
	}
	return v
}

func probeRollout() *spec.Rollout {
	return &spec.Rollout{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindRollout,
		Metadata:   spec.Metadata{Name: "checkout"},
		Spec: spec.RolloutSpec{
			Listen:      "127.0.0.1:8080",
			TLS:         &spec.TLSConfig{CertFile: "/etc/coalmine/tls.crt", KeyFile: "/etc/coalmine/tls.key"},
			Stable:      spec.VersionSpec{Version: "v1", Endpoints: []string{"http://127.0.0.1:9001"}},
			Canary:      &spec.VersionSpec{Version: "v2", Endpoints: []string{"https://127.0.0.1:9002"}},
			UpstreamTLS: &spec.UpstreamTLS{CAFile: "/etc/ca.pem", ServerName: "checkout.internal", InsecureSkipVerify: true},
			HealthCheck: &spec.HealthCheck{Path: "/ready", Interval: spec.Duration(5 * time.Second), Timeout: spec.Duration(time.Second),
				HealthyThreshold: 1, UnhealthyThreshold: 2, Disabled: true},
			OutlierDetection: spec.OutlierDetection{ConsecutiveErrors: 3, EjectionTime: spec.Duration(time.Minute)},
			ConnectionPool:   spec.ConnectionPool{MaxConnections: 10, MaxPendingRequests: 10},
			TrafficRouting: spec.TrafficRouting{
				Assignment: spec.Assignment{UserHeader: "X-User-ID",
					Cookie: spec.SubjectCookie{Name: "subject", TTL: spec.Duration(time.Hour), Set: ptr(true)}},
				HeaderRoutes: []spec.HeaderRoute{{Name: "testers", To: spec.RoleCanary,
					Match: []spec.HeaderMatch{{HeaderName: "X-Canary", HeaderValue: spec.StringMatch{Exact: ptr("true")}}}}},
				Timeouts: spec.Timeouts{Connect: spec.Duration(time.Second), Response: spec.Duration(time.Second), Idle: spec.Duration(time.Second),
					RequestHeaders: spec.Duration(5 * time.Second)},
				ClientLimits:       spec.ClientLimits{MaxConnections: 2000, MaxHeaderBytes: 16384},
				VersionHeader:      "X-Version",
				Balancer:           spec.BalancerRoundRobin,
				MirrorMaxBodyBytes: 1024,
			},
			ProgressDeadline: spec.Duration(time.Minute),
			RollbackWindow:   ptr(spec.RollbackWindow(2)),
			Strategy: spec.Strategy{Canary: spec.CanaryStrategy{
				Analysis: &spec.BackgroundAnalysis{Templates: []spec.TemplateRef{{TemplateName: "golden-signals"}}, StartingStep: 1,
					Args: []spec.Arg{{Name: "service", Value: "checkout"}}},
				Steps: []spec.Step{
					{SetHeaderRoute: &spec.HeaderRoute{Name: "qa", To: spec.RoleCanary,
						Match: []spec.HeaderMatch{{HeaderName: "X-QA", HeaderValue: spec.StringMatch{Prefix: ptr("team-")}}}}},
					{SetMirrorRoute: &spec.MirrorRoute{Name: "shadow", Percentage: ptr(50.0),
						Match: []spec.RequestMatch{{Method: &spec.StringMatch{Exact: ptr("GET")}, Path: &spec.StringMatch{Regex: ptr("^/api/")},
							Headers: map[string]spec.StringMatch{"X-Mirror": {Exact: ptr("yes")}}}}}},
					{SetWeight: ptr(5.0)},
					{Pause: &spec.PauseStep{Duration: dur(time.Minute)}},
					{Analysis: &spec.AnalysisStep{Templates: []spec.TemplateRef{{TemplateName: "canary-vs-stable"}},
						Args: []spec.Arg{{Name: "service", Value: "checkout"}}}},
				},
			}},
			Notifications: []spec.Notification{
				{On: []string{"rollout-aborted"}, Webhook: &spec.WebhookChannel{URL: "http://127.0.0.1:7777/events", Headers: map[string]string{"X-Source": "coalmine"}}},
				{On: []string{"rollout-aborted"}, Webhook: &spec.WebhookChannel{URLFrom: &spec.SecretRef{Env: "HOOK_URL"}}},
				{On: []string{"*"}, Slack: &spec.SlackChannel{WebhookURLFrom: &spec.SecretRef{Env: "SLACK_WEBHOOK_URL"}}},
				{On: []string{"rollout-aborted"}, PagerDuty: &spec.PagerDutyChannel{RoutingKeyFrom: &spec.SecretRef{File: "/etc/coalmine/pd-key"}}},
			},
		},
	}
}

func probeTemplate() *spec.AnalysisTemplate {
	return &spec.AnalysisTemplate{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindAnalysisTemplate,
		Metadata:   spec.Metadata{Name: "canary-vs-stable"},
		Spec: spec.AnalysisTemplateSpec{
			Args: []spec.TemplateArg{{Name: "service", Value: ptr("checkout")}},
			Metrics: []spec.Metric{
				{Name: "latency", Interval: dur(time.Minute), Count: ptr(5), InitialDelay: dur(time.Minute),
					FailureLimit: ptr(1), InconclusiveLimit: ptr(1), ConsecutiveErrorLimit: ptr(2),
					OnNoData: spec.OnNoDataInconclusive, DryRun: true,
					Provider: spec.Provider{Builtin: &spec.BuiltinProvider{Window: dur(time.Minute), ConnectFailures: spec.ConnectFailuresIgnore}},
					Judge: &spec.Judge{Compare: spec.JudgeCompareLatency, Method: spec.JudgeMethodFixed, Quantile: ptr(0.99),
						MaxRelativeIncrease: ptr(0.25), Alpha: ptr(0.01), Direction: spec.DirectionEither,
						MinSamples: ptr(int64(100)), MaxSamples: ptr(int64(1000)), MaxDuration: dur(10 * time.Minute),
						OnLimit: spec.OnLimitInconclusive}},
				{Name: "success-rate", SuccessCondition: "result[0] >= 0.99", FailureCondition: "result[0] < 0.9",
					Provider: spec.Provider{Prometheus: &spec.PrometheusProvider{Address: "http://127.0.0.1:9090",
						Query: `sum(rate(x{service="{{args.service}}"}[1m]))`, Timeout: dur(5 * time.Second),
						Headers: map[string]string{"X-Scope-OrgID": "tenant"}}}},
				{Name: "gate", SuccessCondition: "result == true",
					Provider: spec.Provider{Web: &spec.WebProvider{URL: "http://127.0.0.1:8000/gate", Method: "POST",
						Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"service": "{{args.service}}"}`,
						JSONPath: "{$.ok}", Timeout: dur(5 * time.Second)}}},
				{Name: "latency-range", SuccessCondition: "all(result, {# < 0.5})",
					Provider: spec.Provider{Prometheus: &spec.PrometheusProvider{Address: "https://prometheus.example:9090", Query: "p99_latency_seconds",
						RangeQuery:     &spec.PrometheusRangeQuery{Start: `now() - duration("10m")`, End: "now()", Step: dur(time.Minute)},
						Insecure:       true,
						Authentication: &spec.Authentication{BasicAuth: &spec.BasicAuth{Username: "coalmine", PasswordFrom: &spec.SecretRef{Env: "PROM_PASSWORD"}}}}}},
				{Name: "gate-oauth2", SuccessCondition: "result == true",
					Provider: spec.Provider{Web: &spec.WebProvider{URL: "https://gate.example/check", Method: "POST",
						JSONBody: mustJSON(`{"service": "{{args.service}}"}`), TimeoutSeconds: ptr(20), Insecure: true,
						Authentication: &spec.Authentication{OAuth2: &spec.OAuth2Auth{TokenURL: "https://idp.example/token", ClientID: "coalmine",
							ClientSecretFrom: &spec.SecretRef{Env: "GATE_CLIENT_SECRET"}, Scopes: []string{"gate:read"}}}}}},
				{Name: "gate-bearer", SuccessCondition: "result == true",
					Provider: spec.Provider{Web: &spec.WebProvider{URL: "https://gate.example/check",
						Authentication: &spec.Authentication{Bearer: &spec.BearerAuth{TokenFrom: &spec.SecretRef{File: "/run/secrets/gate-token"}}}}}},
				{Name: "smoke", SuccessCondition: "result.failed == 0",
					Provider: spec.Provider{Command: &spec.CommandProvider{Command: []string{"./smoke.sh", "--service", "{{args.service}}"},
						Env: []spec.EnvVar{{Name: "MODE", Value: "quick"}}, Dir: "/opt/checks", Timeout: dur(2 * time.Minute)}}},
			},
		},
	}
}
