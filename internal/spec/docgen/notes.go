package docgen

import (
	"fmt"
	"strconv"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/provider/prometheus"
	"github.com/coalmine-dev/coalmine/internal/provider/web"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// typeNotes describe fields that have no doc comment in internal/spec,
// keyed "GoType.GoField", so a type used in several places (StringMatch,
// SecretRef) is described once. A doc comment added to the field replaces
// its note.
var typeNotes = map[string]string{
	"Rollout.APIVersion":          "Always `" + spec.APIVersion + "`.",
	"Rollout.Kind":                "`" + spec.KindRollout + "`.",
	"Rollout.Metadata":            "Names the rollout.",
	"Rollout.Spec":                "The desired state of the rollout.",
	"AnalysisTemplate.APIVersion": "Always `" + spec.APIVersion + "`.",
	"AnalysisTemplate.Kind":       "`" + spec.KindAnalysisTemplate + "`.",
	"AnalysisTemplate.Metadata":   "Names the template; analyses refer to it by this name.",
	"AnalysisTemplate.Spec":       "The template's arguments and metrics.",

	"TLSConfig.CertFile": "PEM certificate (chain) for the listener. Read when the listener starts.",
	"TLSConfig.KeyFile":  "PEM private key of the certificate.",

	"TrafficRouting.Assignment": "How a request without a matching header route is bound to a version (see [routing.md](routing.md)).",
	"TrafficRouting.Timeouts":   "Upstream timeouts, the same for both versions.",

	"HeaderRoute.Name":  "Names the route; unique among the static routes, and a step's route may not reuse a static route's name.",
	"HeaderRoute.Match": "Header conditions, each an alternative: the route applies when any one of them holds, as in Argo with Istio.",

	"HeaderMatch.HeaderName":  "Request header to test (case-insensitive, as HTTP header names are). A request without the header never matches, not even `exact: \"\"`.",
	"HeaderMatch.HeaderValue": "How its value must look: exactly one of `exact`, `prefix`, `regex`.",

	"StringMatch.Exact":  "The whole value equals this string.",
	"StringMatch.Prefix": "The value starts with this string.",
	"StringMatch.Regex":  "RE2 regular expression (Go syntax) that must match the whole value, as in Istio and Envoy: `v2` does not match `v20`; write `.*v2.*` to match anywhere. Compiled at load time.",

	"MirrorRoute.Name": "Names the route, so a later `setMirrorRoute` with only this name removes it.",

	"RequestMatch.Method":  "Matches the request method. Naming a method here is what allows non-idempotent methods (POST, PATCH) to be mirrored.",
	"RequestMatch.Path":    "Matches the request path as sent, without the query string.",
	"RequestMatch.Headers": "Header name → value match; every listed header must match.",

	"Strategy.Canary":                 "The canary strategy, the only one today.",
	"CanaryStrategy.Analysis":         "Background analysis: runs while the rollout is at step `startingStep` or later, and has the same consequences as an analysis step (Failed/Error abort, Inconclusive/NoData pause).",
	"CanaryStrategy.Steps":            "The steps, in order; each sets exactly one of `setWeight`, `pause`, `analysis`, `setHeaderRoute`, `setMirrorRoute`. After the last step the canary gets 100% and becomes the new stable.",
	"BackgroundAnalysis.Templates":    "AnalysisTemplates to run together as one analysis run; at least one.",
	"BackgroundAnalysis.StartingStep": "Index (0-based) of the step from which the background analysis runs, 0 to the number of steps.",
	"BackgroundAnalysis.Args":         "Values for the templates' arguments.",
	"AnalysisStep.Templates":          "AnalysisTemplates to run together as one analysis run; at least one.",
	"AnalysisStep.Args":               "Values for the templates' arguments.",
	"TemplateRef.TemplateName":        "Name of an AnalysisTemplate. It must be defined in the loaded files (`serve`, `lint`) or, for `apply`, in the files or on the server.",
	"Arg.Name":                        "An argument the referenced templates declare; an argument no template declares is ignored, as in Argo, and lint warns (usually a typo).",
	"Arg.Value":                       "Its value, substituted for `{{args.NAME}}` in the templates' provider fields.",
	"PauseStep.Duration":              "How long to wait, measured from a persisted start time, so a restart neither resets nor extends it. Omitted (`pause: {}`): wait for `coalmine promote`.",

	"Notification.Webhook":   "POST each event as JSON (see [notifications.md](notifications.md)).",
	"Notification.Slack":     "Post each event to a Slack incoming webhook.",
	"Notification.PagerDuty": "Trigger PagerDuty incidents on aborts and failed analyses, resolve them when a later revision completes.",

	"SecretRef.Env":  "Name of an environment variable of the `coalmine serve` process holding the secret.",
	"SecretRef.File": "Path of a file holding the secret (relative to the working directory); a trailing newline is dropped.",

	"WebhookChannel.URL":     "The receiver's http:// or https:// URL, written in the file. Exactly one of `url` and `urlFrom`.",
	"WebhookChannel.URLFrom": "The receiver's URL from a secret, for URLs that carry a credential.",
	"WebhookChannel.Headers": "Extra request headers sent with every event.",

	"SlackChannel.WebhookURLFrom":     "The incoming-webhook URL, from a secret (the URL is itself the credential).",
	"PagerDutyChannel.RoutingKeyFrom": "The Events API v2 routing (integration) key, from a secret.",

	"AnalysisTemplateSpec.Args":    "Arguments the metrics use as `{{args.NAME}}`; every analysis using the template must pass those without a default.",
	"AnalysisTemplateSpec.Metrics": "The metrics; at least one. The run's verdict is the worst metric verdict.",
	"TemplateArg.Name":             "Argument name, used as `{{args.NAME}}`.",
	"TemplateArg.Value":            "Default value; without one, every analysis that uses the template must pass the argument.",

	"Metric.Name":                  "Unique within the template; shown in status, events and `/metrics`.",
	"Metric.Interval":              "Time between measurements. Without `interval` and `count`: one measurement (a judge: evaluated every second until it decides). With `interval` but no `count`: measures until the run ends.",
	"Metric.Count":                 "Number of measurements after which the metric is Successful (unless a limit was crossed first).",
	"Metric.InitialDelay":          "Wait this long after the run starts before the first measurement.",
	"Metric.FailureLimit":          "The metric is Failed when more measurements than this failed. -1: unlimited.",
	"Metric.InconclusiveLimit":     "The metric is Inconclusive when more measurements than this were inconclusive. -1: unlimited.",
	"Metric.ConsecutiveErrorLimit": "The metric is Error when more measurements than this in a row were errors; errors are retried every 10s and do not count toward `count`. -1: unlimited.",
	"Metric.SuccessCondition":      "expr-lang expression over `result`; true = Successful, false = Failed (when there is no failureCondition). Compiled at load time.",
	"Metric.FailureCondition":      "expr-lang expression over `result`; true = Failed. With both conditions, failure wins and neither true = Inconclusive.",
	"Metric.DryRun":                "Measure and report, but never decide the run.",
	"Metric.Provider":              "Where the value comes from: exactly one of `builtin`, `prometheus`, `web`, `command`.",
	"Metric.Judge":                 "Compare canary with stable statistically (needs `provider: {builtin: {}}`); see [analysis.md](analysis.md#judges-spec-54-statisticsmd).",

	"Provider.Builtin":    "The proxy's own per-version measurements: `result` is `{canary: S, stable: S}` with S = `{requests, errors, errorRate, successRate, rps, p50, p90, p95, p99, mean}` (latencies in ms).",
	"Provider.Prometheus": "A PromQL query; `result` is the vector's values as a list (a scalar gives a number; a range query, every value of every series in one list); no samples is no data.",
	"Provider.Web":        "An HTTP endpoint returning JSON; `result` is the value at `jsonPath`; missing or null is no data, a non-2xx answer is an Error.",

	"PrometheusProvider.Address": "Base URL of the Prometheus server (http:// or https://). May use substitutions.",
	"PrometheusProvider.Query":   "PromQL instant query. May use `{{args.NAME}}`, `{{rollout.name}}`, `{{rollout.canary.version}}`, `{{rollout.stable.version}}`.",
	"PrometheusProvider.Timeout": "Limit for one query.",
	"PrometheusProvider.Headers": "Request headers, sent only to the Prometheus host (not on redirects elsewhere). Values may use substitutions; they are plain text in the file.",

	"WebProvider.URL":      "http:// or https:// URL. May use substitutions.",
	"WebProvider.Method":   "HTTP method.",
	"WebProvider.Headers":  "Request headers. Values may use substitutions; they are plain text in the file.",
	"WebProvider.Body":     "Request body, sent as written (after substitutions).",
	"WebProvider.JSONPath": "Kubernetes JSONPath as in Argo: `{$.data.value}`, `[?(@.name == \"x\")]`, `[*]`, `..`; braces optional; one `{…}` expression, checked at load time. Several matches give the first, as in Argo.",
	"WebProvider.Timeout":  "Limit for one request.",

	"Judge.Quantile":            "Latency only: the quantile to compare (0 < q < 1).",
	"Judge.MaxRelativeIncrease": "Tolerance: the canary may be up to (1 + this) × the stable before it counts as worse. At least 0.",
	"Judge.Alpha":               "False-alarm rate: the chance of failing a canary as good as the stable, 0 < α < 1.",
	"Judge.MinSamples":          "Requests (or latency observations; kayenta: points, one per evaluation) per version below which the verdict is NoData.",
	"Judge.MaxSamples":          "Stop at this many samples (kayenta: points) per version without a decision and apply `onLimit`.",
	"Judge.MaxDuration":         "Stop after this long without a decision and apply `onLimit`.",
}

// fieldNotes add to a field's description at one path.
var fieldNotes = map[string]string{
	"metadata.name":           "`metadata.name` is unique per kind.",
	"spec.listen":             "No two rollouts may share it.",
	"spec.notifications[].on": "See [Event types](#event-types).",
	"spec.strategy.canary.steps[].setHeaderRoute":   "Routes added by steps are evaluated after the static `trafficRouting.headerRoutes`, and removed when the rollout completes or aborts.",
	"spec.strategy.canary.steps[].setMirrorRoute":   "Routes added by steps are removed when the rollout completes or aborts.",
	"spec.trafficRouting.headerRoutes[].match":      "At least one.",
	"spec.notifications[].webhook.urlFrom":          "`{env: NAME}` or `{file: PATH}`.",
	"spec.notifications[].slack.webhookURLFrom":     "`{env: NAME}` or `{file: PATH}`.",
	"spec.notifications[].pagerduty.routingKeyFrom": "`{env: NAME}` or `{file: PATH}`.",
	"spec.metrics[].provider.builtin.window":        "Without it: since the run started, while that fits in the telemetry's 10 minutes, then since the revision started; a longer window is cut to 10 minutes.",
}

// overrides replace a field's doc comment where it says less than the code
// does; each names why.
var overrides = map[string]string{
	// The comment on spec.BuiltinProvider.Window predates analysis runs;
	// internal/provider/builtin (chooseSpan) is what runs.
	"spec.metrics[].provider.builtin.window": "A sliding window of this length, ending at the measurement. Without it: since the analysis run started, while that fits in the telemetry's 10 minutes of sliding windows, then since the revision started. A window longer than 10 minutes is cut to 10 minutes (with a warning in the log).",
}

// laterDefaults are defaults that spec.SetDefaults leaves unset because
// the code that reads the field applies them (so each method or provider
// keeps its own); the text names the value the code uses.
var laterDefaults = map[string]string{
	"spec.trafficRouting.assignment.cookie.set":                         "`true`",
	"spec.upstreamTLS.caFile":                                           "system roots",
	"spec.strategy.canary.analysis.startingStep":                        "`0`",
	"spec.metrics[].interval":                                           "none (see description)",
	"spec.metrics[].count":                                              "none (see description)",
	"spec.metrics[].initialDelay":                                       "`0s`",
	"spec.metrics[].provider.builtin.window":                            "see description",
	"spec.metrics[].provider.prometheus.timeout":                        "`" + formatDuration(prometheus.DefaultTimeout) + "`",
	"spec.metrics[].provider.web.method":                                "`GET`",
	"spec.metrics[].provider.web.jsonPath":                              "the whole document",
	"spec.metrics[].provider.web.timeout":                               "`" + formatDuration(web.DefaultTimeout) + "`",
	"spec.metrics[].provider.command.timeout":                           "`" + formatDuration(spec.DefaultCommandTimeout) + "`",
	"spec.metrics[].provider.cloudWatch.interval":                       "`" + formatDuration(spec.DefaultCloudWatchInterval.D()) + "`",
	"spec.metrics[].provider.cloudWatch.metricDataQueries[].returnData": "`true`",
	"spec.metrics[].provider.command.dir":                               "the server's working directory (a relative program path then needs `dir`)",
	"spec.metrics[].judge.alpha":                                        "`0.05`; kayenta: `0.02` (a 98% interval)",
	"spec.metrics[].judge.maxRelativeIncrease":                          "`0`",
	"spec.metrics[].judge.maxAbsoluteIncrease":                          "sequential error-rate: `0.1`; `0` turns the margin off",
	"spec.metrics[].judge.quantile":                                     "sequential: p50 and p90; fixed: the whole distribution; kayenta: p99 of each interval",
	"spec.metrics[].judge.quantiles":                                    "p50 and p90",
	"spec.metrics[].judge.minSamples":                                   "sequential: 0; fixed: 1000 (error-rate), 200 (latency); kayenta: 5 points",
	"spec.metrics[].judge.maxSamples":                                   "no limit (kayenta: at most 1000 points)",
	"spec.metrics[].judge.maxDuration":                                  "no limit",
	"spec.metrics[].judge.groups":                                       "one group named after the metric",
	"spec.metrics[].judge.critical":                                     "`false`",
	"spec.kayentaScore.groupWeights":                                    "equal shares",
	"spec.kayentaScore.pass":                                            "`" + strconv.FormatFloat(spec.KayentaDefaultPass, 'f', -1, 64) + "`",
	"spec.kayentaScore.marginal":                                        "`" + strconv.FormatFloat(spec.KayentaDefaultMarginal, 'f', -1, 64) + "`",
}

// enumValues are the values a string field accepts; the generator checks
// them against spec.Validate.
var enumValues = map[string][]string{
	"spec.trafficRouting.balancer":                   {spec.BalancerLeastRequests, spec.BalancerRoundRobin},
	"spec.trafficRouting.headerRoutes[].to":          {string(spec.RoleCanary), string(spec.RoleStable)},
	"spec.strategy.canary.steps[].setHeaderRoute.to": {string(spec.RoleCanary), string(spec.RoleStable)},
	"spec.metrics[].onNoData":                        {spec.OnNoDataWait, spec.OnNoDataInconclusive, spec.OnNoDataFail, spec.OnNoDataPass},
	"spec.metrics[].judge.compare":                   {spec.JudgeCompareErrorRate, spec.JudgeCompareLatency},
	"spec.metrics[].judge.method":                    {spec.JudgeMethodSequential, spec.JudgeMethodFixed, spec.JudgeMethodKayenta},
	"spec.metrics[].judge.direction":                 {spec.DirectionIncrease, spec.DirectionDecrease, spec.DirectionEither},
	"spec.metrics[].judge.onLimit":                   {spec.OnLimitPass, spec.OnLimitInconclusive},
}

var intro = map[string]string{
	spec.KindRollout: "One service under coalmine: its listener, its stable and canary versions, its steps.\n",
	spec.KindAnalysisTemplate: fmt.Sprintf("Metrics that decide whether a canary is healthy; used by `analysis` steps and by background analysis. "+
		"Semantics: [analysis.md](analysis.md). A measurement that ends in Error is retried after %s; a judge without `interval` is evaluated every %s.\n",
		formatDuration(analysis.ErrorRetryInterval), formatDuration(analysis.JudgeInterval)),
}

const header = `# Configuration reference

<!-- Generated by "go run ./cmd/docgen" from the Go types in internal/spec; do not edit.
     The test in internal/spec/docgen fails when this file is out of date. -->

Every field of the two document kinds, as ` + "`coalmine serve -f`, `coalmine lint -f` and `coalmine apply -f`" + ` read
them. [configuration.md](configuration.md) explains the files and the rules that span
documents; this page is generated from the Go types, so it lists exactly the fields the loader
accepts.

How to read the tables:

- **field**: the path in the document. ` + "`[]`" + ` is any item of a list, ` + "`[NAME]`" + ` any key of a map.
- **type**: ` + "`duration`" + ` is a string with a unit (` + "`500ms`, `30s`, `5m`, `1h`" + `), or a whole number of seconds as in Argo Rollouts (` + "`10`" + ` is ` + "`10s`" + `).
  Where the accepted values are few, they are listed.
- **default**: what coalmine uses when the field is left out. **required**: leaving it out (of
  its enclosing object, when that object is given) is a validation error. —: optional, no default.
- Unknown fields, wrong types and values out of range are errors reported as
  ` + "`file:line:column: field.path: message`" + `. A field whose default replaces a zero value (for example
  ` + "`consecutiveErrors`" + `) may not be set to ` + "`0`" + ` or ` + "`\"\"`" + ` explicitly: the error says to leave it out instead.
- Provider fields of templates may use the substitutions ` + "`{{args.NAME}}`, `{{rollout.name}}`,\n  `{{rollout.canary.version}}` and `{{rollout.stable.version}}`" + `; any other ` + "`{{…}}`" + ` is an error.
`

const footer = `
## Secrets

Fields ending in ` + "`From`" + ` take ` + "`{env: NAME}` or `{file: PATH}`" + ` (exactly one). ` + "`lint`" + `, ` + "`serve`" + ` and ` + "`apply`" + `
check that the variable is set and not empty, or that the file is readable and not empty, and fail
otherwise; the value itself is read again at every delivery, so a rotated file takes effect without
a restart. Secret values are never printed by the CLI, the API or the logs.
`
