package analysis

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// This file substitutes the provider fields that Argo Rollouts templates
// fill from arguments: a range query's start and end, credentials (Argo's
// docs pass secrets as clientSecret: "{{args.oauthSecret}}") and the
// strings of a JSON body. Pointers are copied before they are changed, so
// the template keeps its text.

func (s *substituter) prometheusOptions(field func(string) string, c *spec.PrometheusProvider) {
	if rq := c.RangeQuery; rq != nil {
		r := *rq
		r.Start = s.fill(field("prometheus.rangeQuery.start"), rq.Start)
		r.End = s.fill(field("prometheus.rangeQuery.end"), rq.End)
		c.RangeQuery = &r
	}
	c.Authentication = s.authentication(func(f string) string { return field("prometheus.authentication." + f) }, c.Authentication)
}

func (s *substituter) webOptions(field func(string) string, c *spec.WebProvider) {
	if c.JSONBody != nil {
		c.JSONBody = s.jsonBody(field("web.jsonBody"), c.JSONBody)
	}
	c.Authentication = s.authentication(func(f string) string { return field("web.authentication." + f) }, c.Authentication)
}

func (s *substituter) authentication(field func(string) string, a *spec.Authentication) *spec.Authentication {
	if a == nil {
		return nil
	}
	out := *a
	if b := a.BasicAuth; b != nil {
		c := *b
		c.Username = s.fill(field("basicAuth.username"), b.Username)
		c.Password = s.fill(field("basicAuth.password"), b.Password)
		out.BasicAuth = &c
	}
	if b := a.Bearer; b != nil {
		c := *b
		c.Token = s.fill(field("bearer.token"), b.Token)
		out.Bearer = &c
	}
	if o := a.OAuth2; o != nil {
		c := *o
		c.TokenURL = s.fill(field("oauth2.tokenUrl"), o.TokenURL)
		c.ClientID = s.fill(field("oauth2.clientId"), o.ClientID)
		c.ClientSecret = s.fill(field("oauth2.clientSecret"), o.ClientSecret)
		c.Scopes = make([]string, len(o.Scopes))
		for i, sc := range o.Scopes {
			c.Scopes[i] = s.fill(field("oauth2.scopes"), sc)
		}
		out.OAuth2 = &c
	}
	return &out
}

// jsonBody substitutes inside the body's strings (keys and values), after
// decoding, so a value with a quote or a backslash stays valid JSON.
// A body without placeholders is sent byte for byte; numbers are kept as
// written (json.Number), never rounded through float64.
func (s *substituter) jsonBody(where string, j *spec.JSONValue) *spec.JSONValue {
	if !bytes.Contains(j.Raw(), []byte("{{")) {
		return j
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(j.Raw()))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return j // validated at load time; sent as it is
	}
	raw, err := json.Marshal(s.jsonValue(where, v))
	if err != nil {
		return j
	}
	out, err := spec.NewJSONValue(string(raw))
	if err != nil {
		return j
	}
	return out
}

func (s *substituter) jsonValue(where string, v any) any {
	switch t := v.(type) {
	case string:
		return s.fill(where, t)
	case []any:
		for i, e := range t {
			t[i] = s.jsonValue(where, e)
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[s.fill(where, k)] = s.jsonValue(where, e)
		}
		return out
	}
	return v
}

// cloudWatch fills a cloudWatch provider's strings: region, endpoint, and
// each query's expression, label, period, metric names and dimensions.
// Slices are copied, so the template keeps its text.
func (s *substituter) cloudWatch(field func(string) string, c spec.CloudWatchProvider) *spec.CloudWatchProvider {
	out := c
	out.Region = s.fill(field("cloudWatch.region"), c.Region)
	out.Endpoint = s.fill(field("cloudWatch.endpoint"), c.Endpoint)
	out.MetricDataQueries = make([]spec.CloudWatchMetricDataQuery, len(c.MetricDataQueries))
	for i, q := range c.MetricDataQueries {
		f := func(name string) string { return field(fmt.Sprintf("cloudWatch.metricDataQueries[%d].%s", i, name)) }
		q.Expression = s.fill(f("expression"), q.Expression)
		q.Label = s.fill(f("label"), q.Label)
		q.Period = spec.CloudWatchPeriod(s.fill(f("period"), string(q.Period)))
		if ms := q.MetricStat; ms != nil {
			m := *ms
			m.Metric.Namespace = s.fill(f("metricStat.metric.namespace"), ms.Metric.Namespace)
			m.Metric.MetricName = s.fill(f("metricStat.metric.metricName"), ms.Metric.MetricName)
			m.Metric.Dimensions = make([]spec.CloudWatchDimension, len(ms.Metric.Dimensions))
			for j, d := range ms.Metric.Dimensions {
				m.Metric.Dimensions[j] = spec.CloudWatchDimension{
					Name:  s.fill(f(fmt.Sprintf("metricStat.metric.dimensions[%d].name", j)), d.Name),
					Value: s.fill(f(fmt.Sprintf("metricStat.metric.dimensions[%d].value", j)), d.Value),
				}
			}
			m.Stat = s.fill(f("metricStat.stat"), ms.Stat)
			m.Period = spec.CloudWatchPeriod(s.fill(f("metricStat.period"), string(ms.Period)))
			q.MetricStat = &m
		}
		out.MetricDataQueries[i] = q
	}
	return &out
}
