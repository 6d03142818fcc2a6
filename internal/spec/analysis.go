package spec

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// AnalysisTemplate lists metrics that decide whether a canary is healthy.
type AnalysisTemplate struct {
	APIVersion string               `yaml:"apiVersion" json:"apiVersion"`
	Kind       string               `yaml:"kind" json:"kind"`
	Metadata   Metadata             `yaml:"metadata" json:"metadata"`
	Spec       AnalysisTemplateSpec `yaml:"spec" json:"spec"`
}

// AnalysisTemplateSpec is the body of an AnalysisTemplate.
type AnalysisTemplateSpec struct {
	Args []TemplateArg `yaml:"args,omitempty" json:"args,omitempty"`
	// Metrics of this template; may be empty when Templates brings them.
	Metrics []Metric `yaml:"metrics,omitempty" json:"metrics,omitempty"`
	// Templates composes other templates into this one: their args and
	// metrics are added to this template's (Argo's template composition).
	Templates []TemplateRef `yaml:"templates,omitempty" json:"templates,omitempty"`
	// DryRun marks the metrics whose names match as dry-run (Argo's shape
	// of a metric's dryRun: true).
	DryRun []MetricSelector `yaml:"dryRun,omitempty" json:"dryRun,omitempty"`
	// MeasurementRetention sets how many measurements the matching metrics
	// keep (Argo's shape of a metric's measurementRetention).
	MeasurementRetention []MeasurementRetention `yaml:"measurementRetention,omitempty" json:"measurementRetention,omitempty"`
	// KayentaScore sets how the run's judge.method kayenta metrics are
	// scored: group weights and the pass and marginal thresholds. Templates
	// composed into one run merge theirs; a group weighted twice
	// differently, or two different thresholds, are refused when the run
	// starts. See [analysis.md](analysis.md#judges-spec-54-statisticsmd).
	KayentaScore *KayentaScore `yaml:"kayentaScore,omitempty" json:"kayentaScore,omitempty"`
}

// KayentaScore is the scoring of a run's kayenta metrics (Kayenta's
// canary configuration's group weights and scoreThresholds).
type KayentaScore struct {
	// GroupWeights weighs groups (judge.groups; a metric without groups is
	// its own group, named after it) by name, each at least 0, together at
	// most 100; groups without a weight share what is left equally.
	GroupWeights map[string]float64 `yaml:"groupWeights,omitempty" json:"groupWeights,omitempty"`
	// Pass is the score at or above which a finished run passes (0 to 100).
	Pass *float64 `yaml:"pass,omitempty" json:"pass,omitempty"`
	// Marginal is the score at or below which a run fails as soon as every
	// kayenta metric has a label (0 to pass).
	Marginal *float64 `yaml:"marginal,omitempty" json:"marginal,omitempty"`
}

// Kayenta's default score thresholds (its scoreThresholds).
const (
	KayentaDefaultPass     = 95.0
	KayentaDefaultMarginal = 75.0
)

// Thresholds are the pass and marginal scores with their defaults; s may
// be nil.
func (s *KayentaScore) Thresholds() (pass, marginal float64) {
	pass, marginal = KayentaDefaultPass, KayentaDefaultMarginal
	if s != nil && s.Pass != nil {
		pass = *s.Pass
	}
	if s != nil && s.Marginal != nil {
		marginal = *s.Marginal
	}
	return pass, marginal
}

// MetricSelector selects metrics by name: MetricName is a regular
// expression matched anywhere in the name, as in Argo (".*" for every
// metric). A selector that matches no metric of the run is an error.
type MetricSelector struct {
	// MetricName is a regular expression matched against metric names.
	MetricName string `yaml:"metricName" json:"metricName"`
}

// MeasurementRetention keeps Limit measurements of the matching metrics.
type MeasurementRetention struct {
	// MetricName is a regular expression matched against metric names.
	MetricName string `yaml:"metricName" json:"metricName"`
	// Limit is 1..1000.
	Limit int `yaml:"limit" json:"limit"`
}

// Bounds of a metric's measurementRetention.
const (
	DefaultMeasurementRetention = 10
	MaxMeasurementRetention     = 1000
)

// TemplateArg declares an argument; Value (or ValueFrom) is its default.
type TemplateArg struct {
	Name  string  `yaml:"name" json:"name"`
	Value *string `yaml:"value,omitempty" json:"value,omitempty"`
	// ValueFrom is a default read from a secret or from the rollout, as in
	// a rollout's args.
	ValueFrom *ArgValueFrom `yaml:"valueFrom,omitempty" json:"valueFrom,omitempty"`
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
	// ConsecutiveSuccessLimit ends the metric Successful after this many
	// successful measurements in a row (Argo's field); 0 or omitted: off.
	// With count, a metric that reaches count without such a streak is
	// Inconclusive, or Failed when failureLimit is -1.
	ConsecutiveSuccessLimit *int   `yaml:"consecutiveSuccessLimit,omitempty" json:"consecutiveSuccessLimit,omitempty"`
	SuccessCondition        string `yaml:"successCondition,omitempty" json:"successCondition,omitempty"`
	FailureCondition        string `yaml:"failureCondition,omitempty" json:"failureCondition,omitempty"`
	// OnNoData is wait (default), inconclusive, fail or pass.
	OnNoData string `yaml:"onNoData,omitempty" json:"onNoData,omitempty"`
	DryRun   bool   `yaml:"dryRun,omitempty" json:"dryRun,omitempty"`
	// MeasurementRetention is how many of its newest measurements the
	// metric keeps in the run's status, 1..1000. Default 10.
	MeasurementRetention *int     `yaml:"measurementRetention,omitempty" json:"measurementRetention,omitempty"`
	Provider             Provider `yaml:"provider" json:"provider"`
	Judge                *Judge   `yaml:"judge,omitempty" json:"judge,omitempty"`
	// ArgFields holds the numeric and duration fields written as
	// placeholders, as Argo allows (count: "{{args.count}}"), by YAML field
	// name; a run fills them and parses the result into the typed field.
	// In YAML they are written in place; the loader moves them here.
	ArgFields map[string]string `yaml:"-" json:"argFields,omitempty"`
}

// metricFields is Metric without its methods, for MarshalYAML.
type metricFields Metric

// MarshalYAML writes the fields held in ArgFields back in place
// (count: "{{args.count}}"), so a template printed as YAML, or sent back
// through the loader as `coalmine apply` does with templates it fetches
// from the server, reads as it was written.
func (m Metric) MarshalYAML() (any, error) {
	if len(m.ArgFields) == 0 {
		return metricFields(m), nil
	}
	var n yaml.Node
	if err := n.Encode(metricFields(m)); err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(m.ArgFields) {
		v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: m.ArgFields[name], Style: yaml.DoubleQuotedStyle}
		replaced := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				n.Content[i+1], replaced = v, true
			}
		}
		if !replaced {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name}, v)
		}
	}
	return &n, nil
}

// ArgFieldNames are the Metric fields that may be written as
// placeholders: Argo's IntOrString and duration-string fields.
var ArgFieldNames = []string{"interval", "initialDelay", "count", "failureLimit", "inconclusiveLimit",
	"consecutiveErrorLimit", "consecutiveSuccessLimit", "measurementRetention"}

// SetArgField parses text, a placeholder's value, into the field name
// ("count", "interval"...).
func (m *Metric) SetArgField(name, text string) error {
	text = strings.TrimSpace(text)
	switch name {
	case "interval", "initialDelay":
		d, err := ParseDuration(text)
		if err != nil {
			return err
		}
		if name == "interval" {
			m.Interval = &d
		} else {
			m.InitialDelay = &d
		}
		return nil
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		return fmt.Errorf("%q is not an integer", text)
	}
	switch name {
	case "count":
		m.Count = &n
	case "failureLimit":
		m.FailureLimit = &n
	case "inconclusiveLimit":
		m.InconclusiveLimit = &n
	case "consecutiveErrorLimit":
		m.ConsecutiveErrorLimit = &n
	case "consecutiveSuccessLimit":
		m.ConsecutiveSuccessLimit = &n
	case "measurementRetention":
		m.MeasurementRetention = &n
	default:
		return fmt.Errorf("%s cannot take a placeholder", name)
	}
	return nil
}

// ValidateMetric checks one metric on its own, as a run sees it once its
// placeholders are filled.
func ValidateMetric(m Metric) FieldErrors {
	v := &validator{}
	v.metric("", m, nil)
	return v.errs
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
	// CloudWatch runs Amazon CloudWatch GetMetricData, as Argo's
	// cloudWatch provider. See [analysis.md](analysis.md#the-cloudwatch-provider).
	CloudWatch *CloudWatchProvider `yaml:"cloudWatch,omitempty" json:"cloudWatch,omitempty"`
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

// PrometheusProvider runs a PromQL query: an instant query, or a range
// query with rangeQuery.
type PrometheusProvider struct {
	Address string `yaml:"address" json:"address"`
	Query   string `yaml:"query" json:"query"`

	// RangeQuery runs the query over a time range instead of at one
	// instant, as Argo Rollouts does; `result` is then every value of every
	// series, in one list.
	RangeQuery *PrometheusRangeQuery `yaml:"rangeQuery,omitempty" json:"rangeQuery,omitempty"`
	// Insecure skips the verification of the server's TLS certificate.
	Insecure bool `yaml:"insecure,omitempty" json:"insecure,omitempty"`
	// Authentication is how the query proves who sends it: basicAuth,
	// bearer or oauth2.
	Authentication *Authentication `yaml:"authentication,omitempty" json:"authentication,omitempty"`

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

	// TimeoutSeconds is Argo Rollouts' spelling of timeout, in whole
	// seconds; set one of them, not both.
	TimeoutSeconds *int `yaml:"timeoutSeconds,omitempty" json:"timeoutSeconds,omitempty"`
	// JSONBody is a request body written as YAML (an object, a list or any
	// value) and sent as JSON with Content-Type application/json; set it or
	// body, not both.
	JSONBody *JSONValue `yaml:"jsonBody,omitempty" json:"jsonBody,omitempty"`
	// Insecure skips the verification of the server's TLS certificate.
	Insecure bool `yaml:"insecure,omitempty" json:"insecure,omitempty"`
	// Authentication is how the request proves who sends it: basicAuth,
	// bearer or oauth2.
	Authentication *Authentication `yaml:"authentication,omitempty" json:"authentication,omitempty"`
}

// Judge compares canary with stable statistically (SPEC §5.4).
type Judge struct {
	// Compare is error-rate or latency.
	Compare string `yaml:"compare" json:"compare"`
	// Method is sequential (default), fixed or kayenta.
	Method   string   `yaml:"method,omitempty" json:"method,omitempty"`
	Quantile *float64 `yaml:"quantile,omitempty" json:"quantile,omitempty"`
	// Quantiles are several latency quantiles judged together, e.g.
	// [0.5, 0.9, 0.99] (latency and method sequential only; each 0 < q < 1,
	// no duplicates, at most 8; not beside quantile). The judge fails when
	// any of them is slower than tolerated and passes early only when each
	// is shown no slower; p99's pass needs far more requests than p50's
	// (see docs/analysis.md).
	Quantiles           []float64 `yaml:"quantiles,omitempty" json:"quantiles,omitempty"`
	MaxRelativeIncrease *float64  `yaml:"maxRelativeIncrease,omitempty" json:"maxRelativeIncrease,omitempty"`
	// MaxAbsoluteIncrease is an error-rate tolerance in percentage points
	// (0.1 = one request in a thousand): the canary counts as worse only
	// when its rate exceeds both (1 + maxRelativeIncrease) × the stable's
	// and the stable's + this. It lets a canary without errors pass early.
	// Method sequential only; 0 turns the margin off.
	MaxAbsoluteIncrease *float64 `yaml:"maxAbsoluteIncrease,omitempty" json:"maxAbsoluteIncrease,omitempty"`
	Alpha               *float64 `yaml:"alpha,omitempty" json:"alpha,omitempty"`
	// Direction is increase (default), decrease or either.
	Direction   string    `yaml:"direction,omitempty" json:"direction,omitempty"`
	MinSamples  *int64    `yaml:"minSamples,omitempty" json:"minSamples,omitempty"`
	MaxSamples  *int64    `yaml:"maxSamples,omitempty" json:"maxSamples,omitempty"`
	MaxDuration *Duration `yaml:"maxDuration,omitempty" json:"maxDuration,omitempty"`
	// OnLimit is pass (default) or inconclusive.
	OnLimit string `yaml:"onLimit,omitempty" json:"onLimit,omitempty"`
	// Groups are the score groups of a method kayenta metric (default: one
	// group named after the metric); spec.kayentaScore.groupWeights weighs
	// them.
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
	// Critical makes a method kayenta metric fail the run on its own High
	// (or Low), as Kayenta's critical metrics do, which also zeroes the
	// score. A metric that is not critical only lowers the score: the
	// score decides the run.
	Critical bool `yaml:"critical,omitempty" json:"critical,omitempty"`
}

// ScoreGroups are the score groups of a kayenta metric named name.
func (j Judge) ScoreGroups(name string) []string {
	if len(j.Groups) == 0 {
		return []string{name}
	}
	return j.Groups
}
