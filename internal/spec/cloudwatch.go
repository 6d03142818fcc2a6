package spec

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// CloudWatchProvider runs Amazon CloudWatch GetMetricData over the last
// interval, as Argo Rollouts' cloudWatch provider does; `result` is the
// list of MetricDataResults (one per query that returns data, with Id,
// Label, StatusCode, Timestamps and Values), so a condition reads
// `result[0].Values[0]`. Credentials come from the AWS SDK's default chain
// (environment, shared files, the instance's or task's role).
type CloudWatchProvider struct {
	// Interval is how far back from now the query reads. Default 5m.
	Interval *Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// MetricDataQueries are GetMetricData's queries: metrics, and
	// expressions over them. Required.
	MetricDataQueries []CloudWatchMetricDataQuery `yaml:"metricDataQueries" json:"metricDataQueries"`
	// Region is the AWS region; empty takes the SDK's default chain
	// (AWS_REGION, the shared config). Not in Argo.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// Endpoint overrides the CloudWatch endpoint URL (a VPC endpoint, a
	// test). Not in Argo.
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
}

// CloudWatchMetricDataQuery is one query of GetMetricData: a metric
// (metricStat) or a math expression over other queries' ids.
type CloudWatchMetricDataQuery struct {
	// ID names the query: a lowercase letter, then letters, digits and
	// underscores. Required.
	ID string `yaml:"id" json:"id"`
	// Expression is a metric math expression or a Metrics Insights query;
	// set it or metricStat.
	Expression string `yaml:"expression,omitempty" json:"expression,omitempty"`
	// Label names the result's series.
	Label string `yaml:"label,omitempty" json:"label,omitempty"`
	// MetricStat is one metric with a statistic; set it or expression.
	MetricStat *CloudWatchMetricStat `yaml:"metricStat,omitempty" json:"metricStat,omitempty"`
	// Period is an expression's granularity in seconds (1, 5, 10, 20, 30
	// or a multiple of 60).
	Period CloudWatchPeriod `yaml:"period,omitempty" json:"period,omitempty"`
	// ReturnData says whether the query's values are in `result`. Default
	// true; set false on the inputs of an expression.
	ReturnData *bool `yaml:"returnData,omitempty" json:"returnData,omitempty"`
}

// Returns reports whether the query's values are returned.
func (q CloudWatchMetricDataQuery) Returns() bool { return q.ReturnData == nil || *q.ReturnData }

// CloudWatchMetricStat is a metric, its statistic and its period.
type CloudWatchMetricStat struct {
	// Metric is the metric's namespace, name and dimensions. Required.
	Metric CloudWatchMetric `yaml:"metric" json:"metric"`
	// Period is the granularity in seconds: 60 or a multiple of it (1, 5,
	// 10, 20 or 30 for high-resolution metrics). Required.
	Period CloudWatchPeriod `yaml:"period" json:"period"`
	// Stat is the statistic: Sum, Average, Minimum, Maximum, SampleCount,
	// or a percentile such as p99. Required.
	Stat string `yaml:"stat" json:"stat"`
	// Unit filters the data points by the unit they were stored with.
	Unit string `yaml:"unit,omitempty" json:"unit,omitempty"`
}

// CloudWatchMetric identifies a metric.
type CloudWatchMetric struct {
	// Namespace, such as AWS/ApplicationELB. Required.
	Namespace string `yaml:"namespace" json:"namespace"`
	// MetricName, such as HTTPCode_Target_5XX_Count. Required.
	MetricName string `yaml:"metricName" json:"metricName"`
	// Dimensions select the metric's series, such as TargetGroup and
	// LoadBalancer.
	Dimensions []CloudWatchDimension `yaml:"dimensions,omitempty" json:"dimensions,omitempty"`
}

// CloudWatchDimension is one name/value pair of a metric's identity.
type CloudWatchDimension struct {
	// Name is the dimension's name, such as TargetGroup.
	Name string `yaml:"name" json:"name"`
	// Value is the dimension's value, such as
	// targetgroup/shop-canary/2453ed029918f21f (often {{args.NAME}}).
	Value string `yaml:"value" json:"value"`
}

// CloudWatchPeriod is a period in seconds, written as a number or, as
// Argo's IntOrString allows, a string (which may be a placeholder such
// as "{{args.period}}").
type CloudWatchPeriod string

// Seconds parses the period; ok is false when it is empty.
func (p CloudWatchPeriod) Seconds() (n int32, ok bool, err error) {
	s := strings.TrimSpace(string(p))
	if s == "" {
		return 0, false, nil
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, true, fmt.Errorf("period %q is not a whole number of seconds", s)
	}
	return int32(v), true, nil
}

// UnmarshalYAML implements yaml.Unmarshaler: a number or a string.
func (p *CloudWatchPeriod) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str") {
		return fmt.Errorf("invalid period %q: give whole seconds, such as 60", n.Value)
	}
	*p = CloudWatchPeriod(n.Value)
	return nil
}

// UnmarshalJSON implements json.Unmarshaler: a number or a string.
func (p *CloudWatchPeriod) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = CloudWatchPeriod(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("invalid period %s: give whole seconds, such as 60", b)
	}
	*p = CloudWatchPeriod(n.String())
	return nil
}

// MarshalJSON writes a numeric period as a number.
func (p CloudWatchPeriod) MarshalJSON() ([]byte, error) {
	if _, err := strconv.ParseInt(string(p), 10, 32); err == nil {
		return []byte(p), nil
	}
	return json.Marshal(string(p))
}

// DefaultCloudWatchInterval is how far back a cloudWatch query reads when
// it sets no interval (Argo's default).
const DefaultCloudWatchInterval = Duration(5 * 60 * 1e9)
