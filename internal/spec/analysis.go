package spec

// AnalysisTemplate lists metrics that decide whether a canary is healthy.
type AnalysisTemplate struct {
	APIVersion string               `yaml:"apiVersion" json:"apiVersion"`
	Kind       string               `yaml:"kind" json:"kind"`
	Metadata   Metadata             `yaml:"metadata" json:"metadata"`
	Spec       AnalysisTemplateSpec `yaml:"spec" json:"spec"`
}

// AnalysisTemplateSpec is the body of an AnalysisTemplate.
type AnalysisTemplateSpec struct {
	Args    []TemplateArg `yaml:"args,omitempty" json:"args,omitempty"`
	Metrics []Metric      `yaml:"metrics" json:"metrics"`
}

// TemplateArg declares an argument; Value is its default.
type TemplateArg struct {
	Name  string  `yaml:"name" json:"name"`
	Value *string `yaml:"value,omitempty" json:"value,omitempty"`
}

// Metric is one measured quantity with its verdict rules (SPEC §5.1).
type Metric struct {
	Name                  string    `yaml:"name" json:"name"`
	Interval              *Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	Count                 *int      `yaml:"count,omitempty" json:"count,omitempty"`
	InitialDelay          *Duration `yaml:"initialDelay,omitempty" json:"initialDelay,omitempty"`
	FailureLimit          *int      `yaml:"failureLimit,omitempty" json:"failureLimit,omitempty"`
	InconclusiveLimit     *int      `yaml:"inconclusiveLimit,omitempty" json:"inconclusiveLimit,omitempty"`
	ConsecutiveErrorLimit *int      `yaml:"consecutiveErrorLimit,omitempty" json:"consecutiveErrorLimit,omitempty"`
	SuccessCondition      string    `yaml:"successCondition,omitempty" json:"successCondition,omitempty"`
	FailureCondition      string    `yaml:"failureCondition,omitempty" json:"failureCondition,omitempty"`
	// OnNoData is wait (default), inconclusive, fail or pass.
	OnNoData string   `yaml:"onNoData,omitempty" json:"onNoData,omitempty"`
	DryRun   bool     `yaml:"dryRun,omitempty" json:"dryRun,omitempty"`
	Provider Provider `yaml:"provider" json:"provider"`
	Judge    *Judge   `yaml:"judge,omitempty" json:"judge,omitempty"`
}

// Provider is a union: exactly one field is set.
type Provider struct {
	Builtin    *BuiltinProvider    `yaml:"builtin,omitempty" json:"builtin,omitempty"`
	Prometheus *PrometheusProvider `yaml:"prometheus,omitempty" json:"prometheus,omitempty"`
	Web        *WebProvider        `yaml:"web,omitempty" json:"web,omitempty"`
	// A program run on the coalmine server (Argo's Job provider, without
	// Kubernetes): exit 0 is a success, judged further by the conditions
	// on `result`, its stdout; any other exit is Failed; the timeout is an
	// Error. See [analysis.md](analysis.md#the-command-provider).
	Command *CommandProvider `yaml:"command,omitempty" json:"command,omitempty"`
}

// BuiltinProvider reads the proxy's own per-version telemetry.
type BuiltinProvider struct {
	// Window is a sliding window over the last Window of traffic; omitted,
	// the data since the analysis run started (within the telemetry's 10
	// minutes, then since the revision started).
	Window *Duration `yaml:"window,omitempty" json:"window,omitempty"`
	// ConnectFailures says what a refused connection to a version counts as
	// when the proxy retried the request elsewhere and the user got an
	// answer: count (the default) adds it to that version's requests and
	// errors, so a canary that refuses connections is rolled back like one
	// answering 500; ignore leaves it out (it still shows in
	// coalmine_proxy_errors_total and as connectFailures).
	ConnectFailures string `yaml:"connectFailures,omitempty" json:"connectFailures,omitempty"`
}

// Values of builtin.connectFailures.
const (
	ConnectFailuresCount  = "count"
	ConnectFailuresIgnore = "ignore"
)

// CountsConnectFailures reports whether retried connection failures count
// as the version's errors.
func (b BuiltinProvider) CountsConnectFailures() bool {
	return b.ConnectFailures != ConnectFailuresIgnore
}

// PrometheusProvider runs an instant query.
type PrometheusProvider struct {
	Address string            `yaml:"address" json:"address"`
	Query   string            `yaml:"query" json:"query"`
	Timeout *Duration         `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
}

// WebProvider fetches JSON and extracts the value at JSONPath.
type WebProvider struct {
	URL      string            `yaml:"url" json:"url"`
	Method   string            `yaml:"method,omitempty" json:"method,omitempty"`
	Headers  map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Body     string            `yaml:"body,omitempty" json:"body,omitempty"`
	JSONPath string            `yaml:"jsonPath,omitempty" json:"jsonPath,omitempty"`
	Timeout  *Duration         `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Judge compares canary with stable statistically (SPEC §5.4).
type Judge struct {
	// Compare is error-rate or latency.
	Compare string `yaml:"compare" json:"compare"`
	// Method is sequential (default) or fixed.
	Method              string   `yaml:"method,omitempty" json:"method,omitempty"`
	Quantile            *float64 `yaml:"quantile,omitempty" json:"quantile,omitempty"`
	MaxRelativeIncrease *float64 `yaml:"maxRelativeIncrease,omitempty" json:"maxRelativeIncrease,omitempty"`
	Alpha               *float64 `yaml:"alpha,omitempty" json:"alpha,omitempty"`
	// Direction is increase (default), decrease or either.
	Direction   string    `yaml:"direction,omitempty" json:"direction,omitempty"`
	MinSamples  *int64    `yaml:"minSamples,omitempty" json:"minSamples,omitempty"`
	MaxSamples  *int64    `yaml:"maxSamples,omitempty" json:"maxSamples,omitempty"`
	MaxDuration *Duration `yaml:"maxDuration,omitempty" json:"maxDuration,omitempty"`
	// OnLimit is pass (default) or inconclusive.
	OnLimit string `yaml:"onLimit,omitempty" json:"onLimit,omitempty"`
}
