package spec

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
)

func ptr[T any](v T) *T { return &v }

// validRollout is the smallest rollout that passes validation after
// SetDefaults; each test case breaks one thing.
func validRollout() Rollout {
	return Rollout{
		APIVersion: APIVersion,
		Kind:       KindRollout,
		Metadata:   Metadata{Name: "checkout"},
		Spec: RolloutSpec{
			Listen: "127.0.0.1:8080",
			Stable: VersionSpec{Version: "v1", Endpoints: []string{"http://127.0.0.1:9001"}},
			Canary: &VersionSpec{Version: "v2", Endpoints: []string{"http://127.0.0.1:9002"}},
			Strategy: Strategy{Canary: CanaryStrategy{Steps: []Step{
				{SetWeight: ptr(1.0)},
				{Pause: &PauseStep{}},
				{SetWeight: ptr(100.0)},
			}}},
		},
	}
}

func TestRolloutValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(r *Rollout)
		want   []string // "path: message substring", in order
	}{
		{"valid", func(r *Rollout) {}, nil},
		{"bad api version", func(r *Rollout) { r.APIVersion = "coalmine.dev/v1" },
			[]string{`apiVersion: unsupported apiVersion "coalmine.dev/v1": use coalmine.dev/v1alpha1`}},
		{"wrong kind", func(r *Rollout) { r.Kind = "AnalysisTemplate" },
			[]string{`kind: kind must be Rollout`}},
		{"name required", func(r *Rollout) { r.Metadata.Name = "" },
			[]string{"metadata.name: a name is required"}},
		{"name uppercase", func(r *Rollout) { r.Metadata.Name = "Checkout" },
			[]string{`metadata.name: name "Checkout" may only contain lowercase letters, digits and '-'`}},
		{"name dash at end", func(r *Rollout) { r.Metadata.Name = "checkout-" },
			[]string{`metadata.name: name "checkout-" must start and end with a letter or digit`}},
		{"name too long", func(r *Rollout) { r.Metadata.Name = strings.Repeat("a", 64) },
			[]string{"metadata.name: name \"" + strings.Repeat("a", 64) + "\" is 64 characters long; use at most 63"}},
		{"name 63 ok", func(r *Rollout) { r.Metadata.Name = strings.Repeat("a", 63) }, nil},
		{"listen missing", func(r *Rollout) { r.Spec.Listen = "" },
			[]string{"spec.listen: a listen address is required"}},
		{"listen no port", func(r *Rollout) { r.Spec.Listen = "localhost" },
			[]string{`spec.listen: invalid listen address "localhost": use host:port`}},
		{"listen port zero", func(r *Rollout) { r.Spec.Listen = ":0" },
			[]string{`spec.listen: invalid port "0" in listen address ":0": use a number from 1 to 65535`}},
		{"listen port too big", func(r *Rollout) { r.Spec.Listen = "127.0.0.1:65536" },
			[]string{`spec.listen: invalid port "65536"`}},
		{"listen all interfaces", func(r *Rollout) { r.Spec.Listen = ":8080" }, nil},
		{"listen ipv6", func(r *Rollout) { r.Spec.Listen = "[::1]:8080" }, nil},
		{"tls incomplete", func(r *Rollout) { r.Spec.TLS = &TLSConfig{CertFile: "a.crt"} },
			[]string{"spec.tls.keyFile: keyFile is required when tls is set"}},
		{"no stable endpoints", func(r *Rollout) { r.Spec.Stable.Endpoints = nil },
			[]string{"spec.stable.endpoints: the stable version needs at least one endpoint"}},
		{"no stable version", func(r *Rollout) { r.Spec.Stable.Version = "" },
			[]string{"spec.stable.version: the stable version is required"}},
		{"version with space", func(r *Rollout) { r.Spec.Stable.Version = "v 1" },
			[]string{`spec.stable.version: version "v 1" must not contain spaces`}},
		{"endpoint not a url", func(r *Rollout) { r.Spec.Stable.Endpoints = []string{"127.0.0.1:9001"} },
			[]string{`spec.stable.endpoints[0]: invalid endpoint URL: first path segment in URL cannot contain colon`}},
		{"endpoint ftp", func(r *Rollout) { r.Spec.Stable.Endpoints = []string{"ftp://h:21"} },
			[]string{`spec.stable.endpoints[0]: endpoint "ftp://h:21" must be an absolute http://, https:// or h2c:// URL`}},
		{"endpoint h2c ok", func(r *Rollout) { r.Spec.Stable.Endpoints = []string{"h2c://h:50051"} }, nil},
		{"protocols h2c ok", func(r *Rollout) { r.Spec.Protocols = []string{"h1", "h2c"} }, nil},
		{"protocol unknown", func(r *Rollout) { r.Spec.Protocols = []string{"h1", "http3"} },
			[]string{`spec.protocols[1]: unknown protocol "http3": use h1, h2 or h2c`}},
		{"protocols h2 only without tls", func(r *Rollout) { r.Spec.Protocols = []string{"h2"} },
			[]string{`spec.protocols: a listener without tls speaks h1 or h2c: add one (h2 needs tls)`}},
		{"protocols h2c only with tls", func(r *Rollout) {
			r.Spec.Protocols = []string{"h2c"}
			r.Spec.TLS = &TLSConfig{CertFile: "c", KeyFile: "k"}
		}, []string{`spec.protocols: a listener with tls speaks h1 or h2: add one (h2c is for listeners without tls)`}},
		{"grpc health check on h2c ok", func(r *Rollout) {
			r.Spec.Stable.Endpoints = []string{"h2c://h:50051"}
			r.Spec.Canary = nil
			r.Spec.HealthCheck = &HealthCheck{Path: "/health", Interval: Duration(time.Second), Timeout: Duration(time.Second),
				HealthyThreshold: 1, UnhealthyThreshold: 1, GRPC: &GRPCHealthCheck{}}
		}, nil},
		{"grpc health check on http", func(r *Rollout) {
			r.Spec.Stable.Endpoints = []string{"http://h:8080"}
			r.Spec.Canary = nil
			r.Spec.HealthCheck = &HealthCheck{Path: "/health", Interval: Duration(time.Second), Timeout: Duration(time.Second),
				HealthyThreshold: 1, UnhealthyThreshold: 1, GRPC: &GRPCHealthCheck{}}
		}, []string{`spec.stable.endpoints[0]: endpoint "http://h:8080" cannot answer gRPC health checks (healthCheck.grpc): use h2c:// for a gRPC server without TLS, or https://`}},
		{"grpc error codes", func(r *Rollout) { r.Spec.TrafficRouting.GRPCErrorCodes = []string{"UNAVAILABLE", "unavailable"} },
			[]string{`spec.trafficRouting.grpcErrorCodes[1]: unknown gRPC status code "unavailable": use OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS or UNAUTHENTICATED`}},
		{"protocol twice", func(r *Rollout) { r.Spec.Protocols = []string{"h1", "h1"} },
			[]string{`spec.protocols[1]: duplicate protocol "h1": already used at spec.protocols[0]`}},
		{"endpoint path", func(r *Rollout) { r.Spec.Stable.Endpoints = []string{"http://h:1/api"} },
			[]string{`spec.stable.endpoints[0]: endpoint "http://h:1/api" must not have a path`}},
		{"endpoint slash ok", func(r *Rollout) { r.Spec.Stable.Endpoints = []string{"https://h/"} }, nil},
		{"endpoint query", func(r *Rollout) { r.Spec.Stable.Endpoints = []string{"http://h:1?a=b"} },
			[]string{`spec.stable.endpoints[0]: endpoint "http://h:1?a=b" must not have a query`}},
		{"endpoint no host", func(r *Rollout) { r.Spec.Stable.Endpoints = []string{"http://:80"} },
			[]string{`spec.stable.endpoints[0]: endpoint "http://:80" has no host`}},
		{"endpoint bad port", func(r *Rollout) { r.Spec.Stable.Endpoints = []string{"http://h:70000"} },
			[]string{`spec.stable.endpoints[0]: endpoint "http://h:70000" has an invalid port`}},
		{"endpoint credentials redacted", func(r *Rollout) { r.Spec.Stable.Endpoints = []string{"http://u:secret@h:1"} },
			[]string{`spec.stable.endpoints[0]: endpoint "http://u:xxxxx@h:1" must not contain credentials`}},
		{"duplicate endpoint", func(r *Rollout) {
			r.Spec.Stable.Endpoints = []string{"http://h:1", "http://h:1"}
		}, []string{`spec.stable.endpoints[1]: duplicate endpoint "http://h:1": already used at spec.stable.endpoints[0]`}},
		{"canary without version", func(r *Rollout) { r.Spec.Canary.Version = "" },
			[]string{"spec.canary.version: the canary version is required"}},
		{"canary without endpoints", func(r *Rollout) { r.Spec.Canary.Endpoints = nil },
			[]string{"spec.canary.endpoints: the canary version needs at least one endpoint"}},
		{"empty canary is nothing to roll out", func(r *Rollout) { r.Spec.Canary = &VersionSpec{} }, nil},
		{"canary equal to stable", func(r *Rollout) { r.Spec.Canary = &VersionSpec{Version: "v1"} }, nil},
		{"health check path", func(r *Rollout) { r.Spec.HealthCheck = &HealthCheck{Path: "health"}; r.SetDefaults() },
			[]string{`spec.healthCheck.path: health check path "health" must start with /`}},
		{"health thresholds", func(r *Rollout) { r.Spec.HealthCheck = &HealthCheck{HealthyThreshold: -1}; r.SetDefaults() },
			[]string{"spec.healthCheck.healthyThreshold: must be at least 1, not -1"}},
		{"health check interval floor", func(r *Rollout) {
			r.Spec.HealthCheck = &HealthCheck{Interval: Duration(time.Nanosecond), Timeout: Duration(time.Microsecond)}
			r.SetDefaults()
		}, []string{
			"spec.healthCheck.interval: 1ns is too short: it must be at least 100ms",
			"spec.healthCheck.timeout: 1µs is too short: it must be at least 10ms",
		}},
		{"client limits", func(r *Rollout) {
			r.Spec.TrafficRouting.ClientLimits = ClientLimits{MaxConnections: -1, MaxHeaderBytes: 100}
			r.Spec.TrafficRouting.Timeouts.RequestHeaders = Duration(time.Millisecond)
		}, []string{
			"spec.trafficRouting.timeouts.requestHeaders: 1ms is too short: it must be at least 100ms",
			"spec.trafficRouting.clientLimits.maxConnections: must be at least 1, not -1",
			"spec.trafficRouting.clientLimits.maxHeaderBytes: 100 is out of range: it must be between 1024 and 1048576",
		}},
		{"pool", func(r *Rollout) {
			r.Spec.ConnectionPool.MaxConnections = -1
			r.Spec.ConnectionPool.MaxPendingRequests = -2
		}, []string{
			"spec.connectionPool.maxConnections: must be at least 1, not -1",
			"spec.connectionPool.maxPendingRequests: must be at least 0, not -2",
		}},
		{"outlier negative", func(r *Rollout) { r.Spec.OutlierDetection.ConsecutiveErrors = -1 },
			[]string{"spec.outlierDetection.consecutiveErrors: must be at least 0, not -1"}},
		{"balancer", func(r *Rollout) { r.Spec.TrafficRouting.Balancer = "random" },
			[]string{`spec.trafficRouting.balancer: unknown balancer "random": use least-requests or round-robin`}},
		{"mirror body negative", func(r *Rollout) { r.Spec.TrafficRouting.MirrorMaxBodyBytes = -1 },
			[]string{"spec.trafficRouting.mirrorMaxBodyBytes: must be at least 0, not -1"}},
		{"version header off", func(r *Rollout) { r.Spec.TrafficRouting.VersionHeader = "-" }, nil},
		{"version header invalid", func(r *Rollout) { r.Spec.TrafficRouting.VersionHeader = "X Version" },
			[]string{`spec.trafficRouting.versionHeader: header name "X Version" is not a valid token`}},
		{"user header invalid", func(r *Rollout) { r.Spec.TrafficRouting.Assignment.UserHeader = "X:User" },
			[]string{`spec.trafficRouting.assignment.userHeader: header name "X:User" is not a valid token`}},
		{"cookie disabled skips checks", func(r *Rollout) {
			r.Spec.TrafficRouting.Assignment.Cookie = SubjectCookie{Name: "bad name", Set: ptr(false)}
		}, nil},
		{"cookie name", func(r *Rollout) { r.Spec.TrafficRouting.Assignment.Cookie.Name = "bad name" },
			[]string{`spec.trafficRouting.assignment.cookie.name: cookie name "bad name" is not a valid token`}},
		{"negative timeout", func(r *Rollout) { r.Spec.TrafficRouting.Timeouts.Connect = Duration(-time.Second) },
			[]string{"spec.trafficRouting.timeouts.connect: must be a positive duration"}},
		{"header route ok", func(r *Rollout) {
			r.Spec.TrafficRouting.HeaderRoutes = []HeaderRoute{{Name: "a", Match: []HeaderMatch{{HeaderName: "X-A", HeaderValue: StringMatch{Exact: ptr("1")}}}}}
		}, nil},
		{"header route problems", func(r *Rollout) {
			r.Spec.TrafficRouting.HeaderRoutes = []HeaderRoute{
				{Name: "a", Match: []HeaderMatch{{HeaderName: "X-A", HeaderValue: StringMatch{Exact: ptr("1")}}}},
				{Name: "a", To: "both", Match: []HeaderMatch{
					{HeaderName: "", HeaderValue: StringMatch{Regex: ptr("(")}},
					{HeaderName: "X-B", HeaderValue: StringMatch{Exact: ptr("1"), Prefix: ptr("2")}},
					{HeaderName: "X-C"},
				}},
				{Name: ""},
			}
		}, []string{
			"spec.trafficRouting.headerRoutes[1].match[0].headerName: headerName is required",
			"spec.trafficRouting.headerRoutes[1].match[0].headerValue.regex: invalid regular expression \"(\": missing closing ): `(`",
			"spec.trafficRouting.headerRoutes[1].match[1].headerValue: a match must set exactly one of exact, prefix, regex; this one sets 2: exact, prefix",
			"spec.trafficRouting.headerRoutes[1].match[2].headerValue: a match must set exactly one of exact, prefix, regex; this one sets none",
			`spec.trafficRouting.headerRoutes[1].to: unknown target "both": use canary or stable`,
			`spec.trafficRouting.headerRoutes[1].name: duplicate header route name "a": already used at spec.trafficRouting.headerRoutes[0].name`,
			"spec.trafficRouting.headerRoutes[2].name: a route name is required",
			"spec.trafficRouting.headerRoutes[2].match: a header route needs at least one match",
		}},
		{"step with two fields", func(r *Rollout) {
			r.Spec.Strategy.Canary.Steps[0].Pause = &PauseStep{}
		}, []string{"spec.strategy.canary.steps[0]: a step must set exactly one of setWeight, pause, analysis, setHeaderRoute, setMirrorRoute; this one sets 2: setWeight, pause"}},
		{"step with no field", func(r *Rollout) {
			r.Spec.Strategy.Canary.Steps[1] = Step{}
		}, []string{"spec.strategy.canary.steps[1]: a step must set exactly one of setWeight, pause, analysis, setHeaderRoute, setMirrorRoute; this one sets none"}},
		{"weight out of range", func(r *Rollout) { r.Spec.Strategy.Canary.Steps[2].SetWeight = ptr(101.0) },
			[]string{"spec.strategy.canary.steps[2].setWeight: weight 101% is out of range: it must be between 0 and 100"}},
		{"weight negative", func(r *Rollout) { r.Spec.Strategy.Canary.Steps[2].SetWeight = ptr(-1.0) },
			[]string{"spec.strategy.canary.steps[2].setWeight: weight -1% is out of range"}},
		{"weight three decimals", func(r *Rollout) { r.Spec.Strategy.Canary.Steps[0].SetWeight = ptr(0.125) },
			[]string{"spec.strategy.canary.steps[0].setWeight: weight 0.125% has more than two decimals: the resolution is 0.01%"}},
		{"weight two decimals ok", func(r *Rollout) { r.Spec.Strategy.Canary.Steps[0].SetWeight = ptr(0.01) }, nil},
		{"weight nan", func(r *Rollout) { r.Spec.Strategy.Canary.Steps[0].SetWeight = ptr(math.NaN()) },
			[]string{"spec.strategy.canary.steps[0].setWeight: weight NaN is not a number"}},
		{"zero pause", func(r *Rollout) { r.Spec.Strategy.Canary.Steps[1].Pause.Duration = ptr(Duration(0)) },
			[]string{"spec.strategy.canary.steps[1].pause.duration: a pause duration must be positive; use pause: {} to wait for promote"}},
		{"analysis step without templates", func(r *Rollout) {
			r.Spec.Strategy.Canary.Steps[1] = Step{Analysis: &AnalysisStep{Templates: []TemplateRef{{}, {TemplateName: "a"}, {TemplateName: "a"}},
				Args: []Arg{{Name: "x"}, {Name: "x"}, {}}}}
		}, []string{
			"spec.strategy.canary.steps[1].analysis.templates[0].templateName: templateName is required",
			`spec.strategy.canary.steps[1].analysis.templates[2].templateName: duplicate template "a": already used at spec.strategy.canary.steps[1].analysis.templates[1].templateName`,
			`spec.strategy.canary.steps[1].analysis.args[1].name: duplicate argument "x"`,
			"spec.strategy.canary.steps[1].analysis.args[2].name: an argument name is required",
		}},
		{"analysis step empty", func(r *Rollout) { r.Spec.Strategy.Canary.Steps[1] = Step{Analysis: &AnalysisStep{}} },
			[]string{"spec.strategy.canary.steps[1].analysis.templates: at least one template is required"}},
		{"background analysis", func(r *Rollout) {
			r.Spec.Strategy.Canary.Analysis = &BackgroundAnalysis{StartingStep: 4}
		}, []string{
			"spec.strategy.canary.analysis.templates: at least one template is required",
			"spec.strategy.canary.analysis.startingStep: startingStep 4 is out of range: there are 3 steps, so use 0 to 3",
		}},
		{"starting step at end ok", func(r *Rollout) {
			r.Spec.Strategy.Canary.Analysis = &BackgroundAnalysis{StartingStep: 3, Templates: []TemplateRef{{TemplateName: "a"}}}
		}, nil},
		{"header route steps", func(r *Rollout) {
			match := []HeaderMatch{{HeaderName: "X-A", HeaderValue: StringMatch{Prefix: ptr("a")}}}
			r.Spec.TrafficRouting.HeaderRoutes = []HeaderRoute{{Name: "static", Match: match}}
			r.Spec.Strategy.Canary.Steps = []Step{
				{SetHeaderRoute: &HeaderRoute{Name: "qa", Match: match}},
				{SetHeaderRoute: &HeaderRoute{Name: "qa"}},
				{SetHeaderRoute: &HeaderRoute{Name: "qa"}},
				{SetHeaderRoute: &HeaderRoute{Name: "static", Match: match}},
				{SetHeaderRoute: &HeaderRoute{Name: "x", To: RoleStable}},
			}
		}, []string{
			`spec.strategy.canary.steps[2].setHeaderRoute.name: no earlier setHeaderRoute step adds route "qa", so there is nothing to remove`,
			`spec.strategy.canary.steps[3].setHeaderRoute.name: header route "static" is already defined in spec.trafficRouting.headerRoutes`,
			"spec.strategy.canary.steps[4].setHeaderRoute.match: a header route needs at least one match",
		}},
		{"mirror route steps", func(r *Rollout) {
			r.Spec.Strategy.Canary.Steps = []Step{
				{SetMirrorRoute: &MirrorRoute{Name: "m", Percentage: ptr(100.0), Match: []RequestMatch{{Method: &StringMatch{Exact: ptr("GET")}}}}},
				{SetMirrorRoute: &MirrorRoute{Name: "m", Percentage: ptr(150.0), Match: []RequestMatch{{
					Method:  &StringMatch{},
					Path:    &StringMatch{Regex: ptr("[")},
					Headers: map[string]StringMatch{"Bad Name": {Exact: ptr("x")}},
				}}}},
				{SetMirrorRoute: &MirrorRoute{Name: "m"}},
				{SetMirrorRoute: &MirrorRoute{Name: "other"}},
				{SetMirrorRoute: &MirrorRoute{Percentage: ptr(1.0), Match: []RequestMatch{{Method: &StringMatch{Exact: ptr("GET")}}}}},
				{SetMirrorRoute: &MirrorRoute{Name: "all", Percentage: ptr(10.0)}},
			}
		}, []string{
			"spec.strategy.canary.steps[1].setMirrorRoute.percentage: percentage 150 is out of range: it must be between 0 and 100",
			"spec.strategy.canary.steps[1].setMirrorRoute.match[0].method: a match must set exactly one of exact, prefix, regex; this one sets none",
			"spec.strategy.canary.steps[1].setMirrorRoute.match[0].path.regex: invalid regular expression \"[\": missing closing ]: `[`",
			`spec.strategy.canary.steps[1].setMirrorRoute.match[0].headers["Bad Name"]: header name "Bad Name" is not a valid token`,
			`spec.strategy.canary.steps[3].setMirrorRoute.name: no earlier setMirrorRoute step adds route "other"`,
			"spec.strategy.canary.steps[4].setMirrorRoute.name: a route name is required",
			`spec.strategy.canary.steps[5].setMirrorRoute.match: a mirror route needs a match: without one, Argo Rollouts removes the route whatever its percentage`,
		}},
		{"notifications", func(r *Rollout) {
			r.Spec.Notifications = []Notification{
				{On: []string{"*"}, Webhook: &WebhookChannel{URL: "http://127.0.0.1:7777/events", Headers: map[string]string{"X-Source": "c"}}},
				{On: []string{"rollout-aborted", "rollout-exploded"}, Slack: &SlackChannel{WebhookURLFrom: &SecretRef{Env: "A", File: "b"}}},
				{},
				{On: []string{"*"}, Webhook: &WebhookChannel{URL: "x", URLFrom: &SecretRef{Env: "A"}}, PagerDuty: &PagerDutyChannel{}},
				{On: []string{"*"}, Webhook: &WebhookChannel{URL: "/events"}},
				{On: []string{"*"}, PagerDuty: &PagerDutyChannel{}},
				{On: []string{"*"}, Webhook: &WebhookChannel{}},
			}
		}, []string{
			`spec.notifications[1].on[1]: unknown event type "rollout-exploded": use "*" or one of rollout-started,`,
			"spec.notifications[1].slack.webhookURLFrom: a secret reference must set exactly one of env, file; this one sets 2: env, file",
			"spec.notifications[2].on: list the event types to send",
			"spec.notifications[2]: a notification must set exactly one of webhook, slack, pagerduty; this one sets none",
			"spec.notifications[3]: a notification must set exactly one of webhook, slack, pagerduty; this one sets 2: webhook, pagerduty",
			`spec.notifications[4].webhook.url: webhook "/events" must be an absolute http:// or https:// URL`,
			"spec.notifications[5].pagerduty.routingKeyFrom: a secret reference is required, such as {env: NAME} or {file: /path}",
			"spec.notifications[6].webhook: a webhook must set exactly one of url, urlFrom; this one sets none",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRollout()
			tt.modify(&r)
			r.SetDefaults()
			assertErrors(t, r.Validate(), tt.want)
		})
	}
}

// assertErrors compares errors with want by prefix, so messages can carry
// advice after the part a test pins down.
func assertErrors(t *testing.T, got FieldErrors, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(got), len(want), got.Error())
		return
	}
	for i := range want {
		if !strings.HasPrefix(got[i].Error(), want[i]) {
			t.Errorf("error %d:\n got: %s\nwant: %s...", i, got[i].Error(), want[i])
		}
	}
}

func TestRolloutSetDefaults(t *testing.T) {
	r := validRollout()
	r.Spec.TrafficRouting.HeaderRoutes = []HeaderRoute{{Name: "h", Match: []HeaderMatch{{HeaderName: "X"}}}}
	r.Spec.Strategy.Canary.Steps = append(r.Spec.Strategy.Canary.Steps,
		Step{SetHeaderRoute: &HeaderRoute{Name: "add", Match: []HeaderMatch{{HeaderName: "X"}}}},
		Step{SetHeaderRoute: &HeaderRoute{Name: "remove"}},
		Step{SetMirrorRoute: &MirrorRoute{Name: "add", Match: []RequestMatch{{}}}},
		Step{SetMirrorRoute: &MirrorRoute{Name: "remove"}},
		Step{SetMirrorRoute: &MirrorRoute{Name: "keep", Percentage: ptr(0.0)}},
	)
	r.SetDefaults()
	s := r.Spec
	hc := &HealthCheck{}
	(&Rollout{Spec: RolloutSpec{HealthCheck: hc}}).SetDefaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"healthCheck is opt-in", s.HealthCheck == nil, true},
		{"healthCheck.path", hc.Path, "/health"},
		{"healthCheck.interval", hc.Interval, Duration(10 * time.Second)},
		{"healthCheck.timeout", hc.Timeout, Duration(2 * time.Second)},
		{"healthCheck.healthyThreshold", hc.HealthyThreshold, 2},
		{"healthCheck.unhealthyThreshold", hc.UnhealthyThreshold, 3},
		{"outlierDetection.consecutiveErrors", s.OutlierDetection.ConsecutiveErrors, 5},
		{"outlierDetection.ejectionTime", s.OutlierDetection.EjectionTime, Duration(30 * time.Second)},
		{"connectionPool.maxConnections", s.ConnectionPool.MaxConnections, 1024},
		{"connectionPool.maxPendingRequests", s.ConnectionPool.MaxPendingRequests, 1024},
		{"cookie.name", s.TrafficRouting.Assignment.Cookie.Name, "coalmine_subject"},
		{"cookie.ttl", s.TrafficRouting.Assignment.Cookie.TTL, Duration(24 * time.Hour)},
		{"cookie enabled", s.TrafficRouting.Assignment.Cookie.Enabled(), true},
		{"timeouts.connect", s.TrafficRouting.Timeouts.Connect, Duration(2 * time.Second)},
		{"timeouts.response", s.TrafficRouting.Timeouts.Response, Duration(30 * time.Second)},
		{"timeouts.idle", s.TrafficRouting.Timeouts.Idle, Duration(90 * time.Second)},
		{"timeouts.requestHeaders", s.TrafficRouting.Timeouts.RequestHeaders, Duration(10 * time.Second)},
		{"clientLimits.maxConnections", s.TrafficRouting.ClientLimits.MaxConnections, 10000},
		{"clientLimits.maxHeaderBytes", s.TrafficRouting.ClientLimits.MaxHeaderBytes, 8192},
		{"versionHeader", s.TrafficRouting.VersionHeader, "X-Coalmine-Version"},
		{"balancer", s.TrafficRouting.Balancer, "least-requests"},
		{"mirrorMaxBodyBytes", s.TrafficRouting.MirrorMaxBodyBytes, int64(1048576)},
		{"progressDeadline", s.ProgressDeadline, Duration(10 * time.Minute)},
		{"rollbackWindow", *s.RollbackWindow, RollbackWindow(1)},
		{"headerRoutes[0].to", s.TrafficRouting.HeaderRoutes[0].To, RoleCanary},
		{"setHeaderRoute add to", s.Strategy.Canary.Steps[3].SetHeaderRoute.To, RoleCanary},
		{"setHeaderRoute remove stays a removal", s.Strategy.Canary.Steps[4].SetHeaderRoute.Removes(), true},
		{"setMirrorRoute add percentage", *s.Strategy.Canary.Steps[5].SetMirrorRoute.Percentage, 100.0},
		{"setMirrorRoute remove stays a removal", s.Strategy.Canary.Steps[6].SetMirrorRoute.Removes(), true},
		{"setMirrorRoute explicit 0 kept", *s.Strategy.Canary.Steps[7].SetMirrorRoute.Percentage, 0.0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// Explicit values survive, and a second call changes nothing.
	r2 := validRollout()
	r2.Spec.HealthCheck = &HealthCheck{Interval: Duration(time.Second)}
	r2.Spec.RollbackWindow = ptr(RollbackWindow(0))
	r2.Spec.TrafficRouting.Balancer = BalancerRoundRobin
	r2.SetDefaults()
	r2.SetDefaults()
	if r2.Spec.HealthCheck.Interval != Duration(time.Second) || *r2.Spec.RollbackWindow != 0 || r2.Spec.TrafficRouting.Balancer != BalancerRoundRobin {
		t.Errorf("SetDefaults overwrote explicit values: %+v", r2.Spec)
	}
}

func validTemplate() AnalysisTemplate {
	return AnalysisTemplate{
		APIVersion: APIVersion,
		Kind:       KindAnalysisTemplate,
		Metadata:   Metadata{Name: "golden-signals"},
		Spec: AnalysisTemplateSpec{
			Args: []TemplateArg{{Name: "service"}},
			Metrics: []Metric{{
				Name:             "success-rate",
				SuccessCondition: "len(result) > 0 && result[0] >= 0.99",
				Provider: Provider{Prometheus: &PrometheusProvider{
					Address: "http://127.0.0.1:9090",
					Query:   `sum(rate(x{rollout="{{args.service}}",version="{{rollout.canary.version}}"}[1m]))`,
				}},
			}},
		},
	}
}

func TestAnalysisTemplateValidate(t *testing.T) {
	judge := func() *Judge { return &Judge{Compare: JudgeCompareErrorRate, Alpha: ptr(0.01)} }
	tests := []struct {
		name   string
		modify func(t *AnalysisTemplate)
		want   []string
	}{
		{"valid", func(t *AnalysisTemplate) {}, nil},
		{"no metrics", func(t *AnalysisTemplate) { t.Spec.Metrics = nil },
			[]string{"spec.metrics: at least one metric is required"}},
		{"bad name", func(t *AnalysisTemplate) { t.Metadata.Name = "a_b" },
			[]string{`metadata.name: name "a_b" may only contain lowercase letters, digits and '-'`}},
		{"duplicate metric and arg", func(t *AnalysisTemplate) {
			t.Spec.Metrics = append(t.Spec.Metrics, t.Spec.Metrics[0])
			t.Spec.Args = append(t.Spec.Args, TemplateArg{Name: "service"})
		}, []string{
			`spec.args[1].name: duplicate argument "service": already used at spec.args[0].name`,
			`spec.metrics[1].name: duplicate metric name "success-rate": already used at spec.metrics[0].name`,
		}},
		{"no provider", func(t *AnalysisTemplate) { t.Spec.Metrics[0].Provider = Provider{} },
			[]string{"spec.metrics[0].provider: a provider must set exactly one of builtin, prometheus, web, command, cloudWatch; this one sets none"}},
		{"two providers", func(t *AnalysisTemplate) { t.Spec.Metrics[0].Provider.Builtin = &BuiltinProvider{} },
			[]string{"spec.metrics[0].provider: a provider must set exactly one of builtin, prometheus, web, command, cloudWatch; this one sets 2: builtin, prometheus"}},
		{"no condition is allowed (Successful unless it errors, as in Argo)", func(t *AnalysisTemplate) { t.Spec.Metrics[0].SuccessCondition = "" }, nil},
		{"count without interval", func(t *AnalysisTemplate) {
			n := 3
			t.Spec.Metrics[0].Count = &n
			t.Spec.Metrics[0].Interval = nil
		}, []string{"spec.metrics[0].interval: count 3 needs an interval between the measurements"}},
		{"condition syntax", func(t *AnalysisTemplate) { t.Spec.Metrics[0].SuccessCondition = "result[0] >=" },
			[]string{"spec.metrics[0].successCondition: condition does not compile: unexpected token EOF (line 1, column 12 of the condition)"}},
		{"condition unknown name", func(t *AnalysisTemplate) { t.Spec.Metrics[0].FailureCondition = "reslt > 1" },
			[]string{"spec.metrics[0].failureCondition: condition does not compile: unknown name reslt"}},
		{"condition not bool", func(t *AnalysisTemplate) { t.Spec.Metrics[0].SuccessCondition = "1 + 2" },
			[]string{"spec.metrics[0].successCondition: condition does not compile: expected bool, but got int"}},
		{"condition helpers", func(t *AnalysisTemplate) {
			t.Spec.Metrics[0].SuccessCondition = "!isNaN(result[0]) && !isInf(asFloat(result[0])) && !isNil(result) && default(result[0], 0) >= 0.99 && asInt(len(result)) > 0"
		}, nil},
		{"prometheus problems", func(t *AnalysisTemplate) {
			t.Spec.Metrics[0].Provider.Prometheus = &PrometheusProvider{Address: "127.0.0.1:9090", Query: " ", Timeout: ptr(Duration(0))}
		}, []string{
			"spec.metrics[0].provider.prometheus.address: invalid prometheus address URL: first path segment in URL cannot contain colon",
			"spec.metrics[0].provider.prometheus.query: a PromQL query is required",
			"spec.metrics[0].provider.prometheus.timeout: must be a positive duration",
		}},
		{"prometheus address with arg", func(t *AnalysisTemplate) {
			t.Spec.Metrics[0].Provider.Prometheus.Address = "http://{{args.service}}.prom:9090"
		}, nil},
		{"undeclared arg and unknown placeholder", func(t *AnalysisTemplate) {
			t.Spec.Metrics[0].Provider.Prometheus.Query = "x{a=\"{{args.servce}}\",b=\"{{ rollout.namespace }}\"}"
		}, []string{
			`spec.metrics[0].provider.prometheus.query: {{args.servce}} uses argument "servce", which spec.args does not declare`,
			"spec.metrics[0].provider.prometheus.query: unknown substitution {{rollout.namespace}}: use {{args.NAME}}, {{rollout.name}}, {{rollout.canary.version}}, {{rollout.stable.version}}",
		}},
		{"web", func(t *AnalysisTemplate) {
			t.Spec.Metrics[0].Provider = Provider{Web: &WebProvider{URL: "example.com/x", Method: "GE T"}}
		}, []string{
			`spec.metrics[0].provider.web.url: web "example.com/x" must be an absolute http:// or https:// URL`,
			`spec.metrics[0].provider.web.method: method "GE T" is not a valid token`,
		}},
		{"judge ok", func(t *AnalysisTemplate) {
			t.Spec.Metrics[0] = Metric{Name: "e", Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: judge()}
		}, nil},
		{"judge problems", func(t *AnalysisTemplate) {
			j := judge()
			j.Compare = "errors"
			j.Method = "bayes"
			j.Direction = "up"
			j.OnLimit = "fail"
			j.Alpha = ptr(1.0)
			j.Quantile = ptr(0.0)
			j.MaxRelativeIncrease = ptr(-0.5)
			j.MinSamples = ptr(int64(100))
			j.MaxSamples = ptr(int64(10))
			t.Spec.Metrics[0].Judge = j
		}, []string{
			`spec.metrics[0].judge.compare: unknown judge comparison "errors": use error-rate or latency`,
			`spec.metrics[0].judge.method: unknown judge method "bayes": use sequential, fixed or kayenta`,
			`spec.metrics[0].judge.direction: unknown direction "up": use increase, decrease or either`,
			`spec.metrics[0].judge.onLimit: unknown onLimit policy "fail": use pass or inconclusive`,
			"spec.metrics[0].judge.alpha: must be between 0 and 1 (exclusive), not 1",
			"spec.metrics[0].judge.quantile: must be between 0 and 1 (exclusive), not 0",
			"spec.metrics[0].judge.maxRelativeIncrease: must be at least 0, not -0.5",
			"spec.metrics[0].judge.maxSamples: maxSamples 10 is below minSamples 100",
			"spec.metrics[0].judge: a judge needs provider builtin",
		}},
		{"kayenta ok", func(t *AnalysisTemplate) {
			j := judge()
			j.Method, j.Alpha = JudgeMethodKayenta, nil
			j.MinSamples, j.MaxSamples = ptr(int64(5)), ptr(int64(1000))
			t.Spec.Metrics[0] = Metric{Name: "e", Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: j}
		}, nil},
		{"kayenta points", func(t *AnalysisTemplate) {
			j := judge()
			j.Method, j.Alpha = JudgeMethodKayenta, nil
			j.MinSamples, j.MaxSamples = ptr(int64(4)), ptr(int64(1001))
			t.Spec.Metrics[0] = Metric{Name: "e", Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: j}
		}, []string{
			"spec.metrics[0].judge.minSamples: method kayenta: with 4 points per version the 0.98 interval can never exclude zero, so the judge could only pass; use at least 5",
			"spec.metrics[0].judge.maxSamples: method kayenta keeps at most 1000 points per version, not 1001",
		}},
		{"kayenta alpha", func(t *AnalysisTemplate) {
			j := judge()
			j.Method = JudgeMethodKayenta
			j.Alpha, j.MinSamples = ptr(0.001), ptr(int64(2000))
			t.Spec.Metrics[0] = Metric{Name: "e", Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: j}
		}, []string{"spec.metrics[0].judge.minSamples: method kayenta keeps at most 1000 points per version, not 2000"}},
		{"kayenta score ok", func(t *AnalysisTemplate) {
			j := judge()
			j.Method, j.Alpha, j.Groups, j.Critical = JudgeMethodKayenta, nil, []string{"errors", "all"}, true
			t.Spec.Metrics[0] = Metric{Name: "e", Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: j}
			t.Spec.KayentaScore = &KayentaScore{GroupWeights: map[string]float64{"errors": 60, "all": 40}, Pass: ptr(90.0), Marginal: ptr(90.0)}
		}, nil},
		{"kayenta score problems", func(t *AnalysisTemplate) {
			j := judge()
			j.Method, j.Alpha, j.Groups = JudgeMethodKayenta, nil, []string{"errors", "", "errors"}
			t.Spec.Metrics[0] = Metric{Name: "e", Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: j}
			t.Spec.KayentaScore = &KayentaScore{GroupWeights: map[string]float64{"errors": 70, "latency": 40, "x": -1}, Pass: ptr(101.0), Marginal: ptr(96.0)}
		}, []string{
			"spec.kayentaScore.groupWeights[x]: a weight is at least 0, not -1",
			"spec.kayentaScore.groupWeights: the weights sum to 110; at most 100",
			"spec.kayentaScore.pass: a score threshold is 0 to 100, not 101",
			"spec.metrics[0].judge.groups[1]: a group name is required",
			`spec.metrics[0].judge.groups[2]: duplicate group "errors"`,
		}},
		{"kayenta score marginal above pass", func(t *AnalysisTemplate) {
			j := judge()
			j.Method, j.Alpha = JudgeMethodKayenta, nil
			t.Spec.Metrics[0] = Metric{Name: "e", Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: j}
			t.Spec.KayentaScore = &KayentaScore{Marginal: ptr(96.0)}
		}, []string{"spec.kayentaScore.marginal: marginal 96 is above pass 95; 0 ≤ marginal ≤ pass ≤ 100"}},
		{"kayenta score without kayenta metrics", func(t *AnalysisTemplate) {
			j := judge()
			j.Groups, j.Critical = []string{"g"}, true
			t.Spec.Metrics[0] = Metric{Name: "e", Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: j}
			t.Spec.KayentaScore = &KayentaScore{}
		}, []string{
			"spec.kayentaScore: scores judge.method kayenta metrics, and this template has none",
			"spec.metrics[0].judge.groups: applies only to method kayenta",
			"spec.metrics[0].judge.critical: applies only to method kayenta",
		}},
		{"quantile with error rate", func(t *AnalysisTemplate) {
			j := judge()
			j.Quantile = ptr(0.99)
			t.Spec.Metrics[0] = Metric{Name: "e", Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: j}
		}, []string{"spec.metrics[0].judge.quantile: quantile applies only to compare: latency"}},
		{"quantiles ok", func(t *AnalysisTemplate) {
			j := judge()
			j.Compare = JudgeCompareLatency
			j.Quantiles = []float64{0.99, 0.5, 0.9, 0.95}
			t.Spec.Metrics[0] = Metric{Name: "l", Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: j}
		}, nil},
		{"quantiles problems", func(t *AnalysisTemplate) {
			j := judge()
			j.Compare = JudgeCompareLatency
			j.Quantiles = []float64{0.5, 0, 0.5, 1.5}
			t.Spec.Metrics[0] = Metric{Name: "l", Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: j}
		}, []string{
			"spec.metrics[0].judge.quantiles[1]: must be between 0 and 1 (exclusive), not 0",
			"spec.metrics[0].judge.quantiles[2]: 0.5 is listed twice",
			"spec.metrics[0].judge.quantiles[3]: must be between 0 and 1 (exclusive), not 1.5",
		}},
		{"quantiles empty, too many, beside quantile, fixed, error rate", func(t *AnalysisTemplate) {
			n := 0
			lat := func(mod func(j *Judge)) Metric {
				j := judge()
				j.Compare = JudgeCompareLatency
				mod(j)
				n++
				return Metric{Name: fmt.Sprintf("l%d", n), Provider: Provider{Builtin: &BuiltinProvider{}}, Judge: j}
			}
			t.Spec.Metrics = append([]Metric(nil),
				lat(func(j *Judge) { j.Quantiles = []float64{} }),
				lat(func(j *Judge) { j.Quantiles = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9} }),
				lat(func(j *Judge) { j.Quantile, j.Quantiles = ptr(0.9), []float64{0.5} }),
				lat(func(j *Judge) { j.Method, j.Quantiles = JudgeMethodFixed, []float64{0.5} }),
				lat(func(j *Judge) { j.Compare, j.Quantiles = JudgeCompareErrorRate, []float64{0.5} }))
		}, []string{
			"spec.metrics[0].judge.quantiles: must list at least one quantile (or be left out for the default set)",
			"spec.metrics[1].judge.quantiles: lists 9 quantiles, at most 8",
			"spec.metrics[2].judge.quantiles: set quantile or quantiles, not both",
			"spec.metrics[3].judge.quantiles: quantiles applies only to method sequential: the fixed judge tests one quantile (quantile) or the whole distribution",
			"spec.metrics[4].judge.quantiles: quantiles applies only to compare: latency",
		}},
		{"limits and counts", func(t *AnalysisTemplate) {
			m := &t.Spec.Metrics[0]
			m.Count = ptr(0)
			m.Interval = ptr(Duration(0))
			m.FailureLimit = ptr(-2)
			m.InconclusiveLimit = ptr(-1)
			m.OnNoData = "ignore"
		}, []string{
			"spec.metrics[0].interval: must be a positive duration",
			"spec.metrics[0].count: must be at least 1, not 0",
			"spec.metrics[0].failureLimit: must be -1 (unlimited) or at least 0, not -2",
			`spec.metrics[0].onNoData: unknown onNoData policy "ignore": use wait, inconclusive, fail or pass`,
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

func TestAnalysisTemplateSetDefaults(t *testing.T) {
	tmpl := validTemplate()
	tmpl.Spec.Metrics[0].Judge = &Judge{Compare: JudgeCompareLatency}
	tmpl.Spec.Metrics[0].FailureLimit = ptr(-1)
	tmpl.SetDefaults()
	m := tmpl.Spec.Metrics[0]
	if *m.FailureLimit != -1 || *m.InconclusiveLimit != 0 || *m.ConsecutiveErrorLimit != 4 || m.OnNoData != OnNoDataWait {
		t.Errorf("metric defaults: failureLimit %d inconclusiveLimit %d consecutiveErrorLimit %d onNoData %q",
			*m.FailureLimit, *m.InconclusiveLimit, *m.ConsecutiveErrorLimit, m.OnNoData)
	}
	if j := m.Judge; j.Method != JudgeMethodSequential || j.Direction != DirectionIncrease || j.OnLimit != OnLimitPass {
		t.Errorf("judge defaults: %+v", *j)
	}
}

// TestConditionRuns pins that a condition compiled with ConditionOptions
// evaluates against the result shapes of SPEC §5.3.
func TestConditionRuns(t *testing.T) {
	builtin := map[string]any{
		"canary": map[string]any{"p99": 105.0, "requests": int64(150)},
		"stable": map[string]any{"p99": 100.0, "requests": int64(9000)},
	}
	tests := []struct {
		cond   string
		result any
		want   bool
	}{
		{"result.canary.p99 <= result.stable.p99 * 1.1 && result.canary.requests >= 100", builtin, true},
		{"result.canary.p99 <= result.stable.p99 * 1.01", builtin, false},
		{"len(result) > 0 && result[0] >= 0.99", []any{0.995}, true},
		{"len(result) > 0 && result[0] >= 0.99", []any{}, false},
		{"isNaN(result)", math.NaN(), true},
		{"isInf(result)", math.Inf(-1), true},
		{"isNil(result)", nil, true},
		{"default(result, 7) == 7", nil, true},
		{"asFloat(result) > 0.5", "0.75", true},
		{"asInt(result) == 3", 3.9, true},
	}
	for _, tt := range tests {
		prog, err := CompileCondition(tt.cond)
		if err != nil {
			t.Fatalf("compile %q: %v", tt.cond, err)
		}
		got, err := expr.Run(prog, map[string]any{ConditionVar: tt.result})
		if err != nil {
			t.Fatalf("run %q with %v: %v", tt.cond, tt.result, err)
		}
		if got != tt.want {
			t.Errorf("%q with %v = %v, want %v", tt.cond, tt.result, got, tt.want)
		}
	}
}

func TestFieldPath(t *testing.T) {
	if got := FieldPath("h").Key("X-Y"); got != "h[X-Y]" {
		t.Errorf("plain key = %s", got)
	}
	if got := FieldPath("h").Key("a]\nb"); got != `h["a]\nb"]` {
		t.Errorf("odd key = %s", got)
	}
	p := FieldPath("spec").Child("steps").Index(2).Child("setMirrorRoute").Child("headers").Key("X.Y")
	if p != `spec.steps[2].setMirrorRoute.headers["X.Y"]` {
		t.Fatalf("path = %s", p)
	}
	var chain []string
	for ; p != ""; p = p.Parent() {
		chain = append(chain, string(p))
	}
	want := []string{
		`spec.steps[2].setMirrorRoute.headers["X.Y"]`,
		"spec.steps[2].setMirrorRoute.headers",
		"spec.steps[2].setMirrorRoute",
		"spec.steps[2]",
		"spec.steps",
		"spec",
	}
	if strings.Join(chain, " ") != strings.Join(want, " ") {
		t.Errorf("parents:\n got %v\nwant %v", chain, want)
	}
}

func TestListenersClash(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{"0.0.0.0:8080", "127.0.0.1:8080", true},
		{":8080", "10.0.0.7:8080", true},
		{"[::]:8080", "127.0.0.1:8080", true},
		{"localhost:8080", "127.0.0.1:8080", true},
		{"localhost:8080", "[::1]:8080", false}, // Go binds localhost to 127.0.0.1 only
		{"[::ffff:127.0.0.1]:8080", "127.0.0.1:8080", true},
		{"LOCALHOST:8080", "localhost:8080", true},
		{"127.0.0.1:8080", "127.0.0.2:8080", false},
		{"127.0.0.1:8080", "127.0.0.1:8081", false},
		{"localhost:8080", "10.0.0.7:8080", false},
		{"api.internal:8080", "API.internal:8080", true},
		{"bad", "127.0.0.1:8080", false},
	} {
		if got := ListenersClash(tt.a, tt.b); got != tt.want {
			t.Errorf("ListenersClash(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := ListenersClash(tt.b, tt.a); got != tt.want {
			t.Errorf("ListenersClash(%q, %q) = %v, want %v (not symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestKayentaMinPoints(t *testing.T) {
	for _, tc := range []struct {
		alpha float64
		want  int64
	}{{0.02, 5}, {0.05, 4}, {0.2, 3}, {0.001, 8}, {0, 1}} {
		if got := KayentaMinPoints(tc.alpha); got != tc.want {
			t.Errorf("KayentaMinPoints(%v) = %d, want %d", tc.alpha, got, tc.want)
		}
	}
}
