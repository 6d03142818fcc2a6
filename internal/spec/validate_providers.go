package spec

import (
	"regexp"
	"strings"
)

// This file checks the provider fields Argo Rollouts users bring in their
// AnalysisTemplates: prometheus rangeQuery, insecure and authentication;
// web timeoutSeconds, jsonBody, jsonPath and authentication.

func (v *validator) prometheusOptions(p FieldPath, q *PrometheusProvider, args map[string]bool) {
	if rq := q.RangeQuery; rq != nil {
		rp := p.Child("rangeQuery")
		v.timeExpr(rp.Child("start"), rq.Start, `now() - duration("1h")`, args)
		v.timeExpr(rp.Child("end"), rq.End, "now()", args)
		if rq.Step == nil {
			v.add(rp.Child("step"), "a step is required: the time between two points of the range, such as 1m")
		} else {
			v.positive(rp.Child("step"), *rq.Step)
		}
	}
	v.authentication(p.Child("authentication"), q.Authentication, args)
}

func (v *validator) webOptions(p FieldPath, w *WebProvider, args map[string]bool) {
	if w.TimeoutSeconds != nil {
		if w.Timeout != nil {
			v.add(p.Child("timeoutSeconds"), "set timeout or timeoutSeconds, not both")
		} else if *w.TimeoutSeconds < 1 {
			v.add(p.Child("timeoutSeconds"), "must be at least 1, not %d", *w.TimeoutSeconds)
		}
	}
	if w.JSONBody != nil {
		switch {
		case w.Body != "":
			v.add(p.Child("jsonBody"), "set body or jsonBody, not both")
		case w.Method == "" || strings.EqualFold(w.Method, "GET"):
			// As in Argo: a GET with a body is refused by many servers.
			v.add(p.Child("jsonBody"), "a jsonBody needs method: POST or PUT")
		}
		v.jsonPlaceholders(p.Child("jsonBody"), w.JSONBody, args)
	}
	if w.JSONPath != "" && v.placeholders(p.Child("jsonPath"), w.JSONPath, args) {
		if _, err := parseJSONPathAs(w.JSONPath, fillPlaceholders(w.JSONPath)); err != nil {
			v.add(p.Child("jsonPath"), "%s", err)
		}
	}
	v.authentication(p.Child("authentication"), w.Authentication, args)
}

// jsonPlaceholders checks the substitutions in a JSON body's strings.
func (v *validator) jsonPlaceholders(p FieldPath, j *JSONValue, args map[string]bool) {
	v.placeholders(p, string(j.Raw()), args)
}

// timeExpr checks a rangeQuery start or end.
func (v *validator) timeExpr(p FieldPath, src, example string, args map[string]bool) {
	if strings.TrimSpace(src) == "" {
		v.add(p, "a time expression is required, such as %s", example)
		return
	}
	if !v.placeholders(p, src, args) {
		return
	}
	if _, err := CompileTimeExpr(fillPlaceholders(src)); err != nil {
		v.add(p, "invalid time expression: %s; write one such as %s", err, example)
	}
}

func (v *validator) authentication(p FieldPath, a *Authentication, args map[string]bool) {
	if a == nil {
		return
	}
	if !v.union(p, "authentication", []string{"basicAuth", "bearer", "oauth2", "sigv4"},
		[]bool{a.BasicAuth != nil, a.Bearer != nil, a.OAuth2 != nil, a.SigV4 != nil}) {
		return
	}
	switch {
	case a.BasicAuth != nil:
		bp, b := p.Child("basicAuth"), a.BasicAuth
		if strings.TrimSpace(b.Username) == "" {
			v.add(bp.Child("username"), "a username is required")
		} else if strings.Contains(fillPlaceholders(b.Username), ":") {
			v.add(bp.Child("username"), "a basic-auth username cannot contain ':'")
		}
		v.placeholders(bp.Child("username"), b.Username, args)
		v.secretValue(bp, "basicAuth", "password", b.Password, b.PasswordFrom, args)
	case a.Bearer != nil:
		v.secretValue(p.Child("bearer"), "bearer", "token", a.Bearer.Token, a.Bearer.TokenFrom, args)
	case a.OAuth2 != nil:
		op, o := p.Child("oauth2"), a.OAuth2
		v.urlWithPlaceholders(op.Child("tokenUrl"), "OAuth2 token", o.TokenURL, args)
		if strings.TrimSpace(o.ClientID) == "" {
			v.add(op.Child("clientId"), "a clientId is required")
		}
		v.placeholders(op.Child("clientId"), o.ClientID, args)
		v.secretValue(op, "oauth2", "clientSecret", o.ClientSecret, o.ClientSecretFrom, args)
		for i, s := range o.Scopes {
			if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t") {
				v.add(op.Child("scopes").Index(i), "a scope is one word without spaces, not %q", s)
			}
			v.placeholders(op.Child("scopes").Index(i), s, args)
		}
	case a.SigV4 != nil:
		v.add(p.Child("sigv4"), "AWS SigV4 signing of Prometheus and web queries is not supported. Put a signing proxy (such as aws-sigv4-proxy) in front of "+
			"Amazon Managed Prometheus, point address at it and remove authentication.sigv4")
	}
}

// secretValue checks a credential given either in the file (name) or as a
// secret reference (nameFrom): exactly one of them.
func (v *validator) secretValue(p FieldPath, kind, name, literal string, from *SecretRef, args map[string]bool) {
	if !v.union(p, kind, []string{name, name + "From"}, []bool{literal != "", from != nil}) {
		return
	}
	if from != nil {
		v.secretRef(p.Child(name+"From"), from)
		return
	}
	v.placeholders(p.Child(name), literal, args)
}

// urlWithPlaceholders checks an http(s) URL that may use substitutions.
func (v *validator) urlWithPlaceholders(p FieldPath, what, s string, args map[string]bool) {
	if strings.TrimSpace(s) == "" {
		v.add(p, "%s URL is required", what)
		return
	}
	if v.placeholders(p, s, args) && checkableURL(s) {
		v.httpURL(p, what, fillPlaceholders(s))
	}
}

// portPlaceholderRE matches the text before a substitution that stands in
// a URL's port (or password): a scheme, "//", and a colon in the authority
// with at most digits after it.
var portPlaceholderRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*:[0-9]*$`)

// cloudWatchID is what GetMetricData takes as a query id.
var cloudWatchID = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

// cloudWatch checks a cloudWatch provider as GetMetricData would, so a
// template fails at load time rather than at its first measurement.
func (v *validator) cloudWatch(p FieldPath, c *CloudWatchProvider, args map[string]bool) {
	if c.Interval != nil {
		v.positive(p.Child("interval"), *c.Interval)
	}
	if c.Endpoint != "" && v.placeholders(p.Child("endpoint"), c.Endpoint, args) && checkableURL(c.Endpoint) {
		v.httpURL(p.Child("endpoint"), "CloudWatch endpoint", fillPlaceholders(c.Endpoint))
	}
	v.placeholders(p.Child("region"), c.Region, args)
	qp := p.Child("metricDataQueries")
	switch n := len(c.MetricDataQueries); {
	case n == 0:
		v.add(qp, "at least one query is required: a metricStat (namespace, metricName, dimensions, period, stat) or an expression")
		return
	case n > 500:
		v.add(qp, "GetMetricData takes at most 500 queries, not %d", n)
	}
	ids := map[string]bool{}
	returning := 0
	for i, q := range c.MetricDataQueries {
		ip := qp.Index(i)
		switch {
		case q.ID == "":
			v.add(ip.Child("id"), "an id is required, such as errors")
		case !cloudWatchID.MatchString(q.ID):
			v.add(ip.Child("id"), "id %q must start with a lowercase letter and hold only letters, digits and _", q.ID)
		case ids[q.ID]:
			v.add(ip.Child("id"), "id %q is used by an earlier query", q.ID)
		}
		ids[q.ID] = true
		if q.Returns() {
			returning++
		}
		if !v.union(ip, "a query", []string{"expression", "metricStat"}, []bool{q.Expression != "", q.MetricStat != nil}) {
			continue
		}
		v.placeholders(ip.Child("label"), q.Label, args)
		if q.Expression != "" {
			v.placeholders(ip.Child("expression"), q.Expression, args)
			v.cloudWatchPeriod(ip.Child("period"), q.Period, false, args)
			continue
		}
		if q.Period != "" {
			v.add(ip.Child("period"), "a metricStat query has its period in metricStat.period")
		}
		ms, sp := q.MetricStat, ip.Child("metricStat")
		mp := sp.Child("metric")
		for _, f := range []struct{ name, value, example string }{
			{"namespace", ms.Metric.Namespace, "AWS/ApplicationELB"}, {"metricName", ms.Metric.MetricName, "HTTPCode_Target_5XX_Count"},
		} {
			if strings.TrimSpace(f.value) == "" {
				v.add(mp.Child(f.name), "%s is required, such as %s", f.name, f.example)
			}
			v.placeholders(mp.Child(f.name), f.value, args)
		}
		if len(ms.Metric.Dimensions) > 30 {
			v.add(mp.Child("dimensions"), "a metric has at most 30 dimensions, not %d", len(ms.Metric.Dimensions))
		}
		for j, d := range ms.Metric.Dimensions {
			dp := mp.Child("dimensions").Index(j)
			if strings.TrimSpace(d.Name) == "" {
				v.add(dp.Child("name"), "a dimension name is required, such as TargetGroup")
			}
			if d.Value == "" {
				v.add(dp.Child("value"), "a dimension value is required, such as {{args.target-group}}")
			}
			v.placeholders(dp.Child("name"), d.Name, args)
			v.placeholders(dp.Child("value"), d.Value, args)
		}
		if strings.TrimSpace(ms.Stat) == "" {
			v.add(sp.Child("stat"), "a statistic is required: Sum, Average, Minimum, Maximum, SampleCount or a percentile such as p99")
		}
		v.placeholders(sp.Child("stat"), ms.Stat, args)
		v.cloudWatchPeriod(sp.Child("period"), ms.Period, true, args)
	}
	if returning == 0 {
		v.add(qp, "no query returns data (every one has returnData: false), so result would always be empty: let at least one return data")
	}
}

// cloudWatchPeriod checks a period: 1, 5, 10, 20, 30 (high resolution) or
// a multiple of 60 seconds, as CloudWatch stores data points.
func (v *validator) cloudWatchPeriod(p FieldPath, period CloudWatchPeriod, required bool, args map[string]bool) {
	if strings.Contains(string(period), "{{") {
		v.placeholders(p, string(period), args)
		return
	}
	n, set, err := period.Seconds()
	switch {
	case err != nil:
		v.add(p, "%s", err)
	case !set:
		if required {
			v.add(p, "a period is required: whole seconds, 60 or a multiple of it, such as 60 or 300")
		}
	case n < 1 || (n%60 != 0 && n != 1 && n != 5 && n != 10 && n != 20 && n != 30):
		v.add(p, "period %d: CloudWatch periods are 60 seconds or a multiple of 60 (1, 5, 10, 20 or 30 for high-resolution metrics)", n)
	}
}
