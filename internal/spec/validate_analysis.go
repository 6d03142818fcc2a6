package spec

import (
	"regexp"
	"slices"
	"strings"
)

// placeholderRE finds {{...}} substitutions in provider fields (SPEC §5.3).
var placeholderRE = regexp.MustCompile(`\{\{\s*(.*?)\s*\}\}`)

// rolloutPlaceholders are the substitutions every template may use besides
// its declared args.
var rolloutPlaceholders = []string{"rollout.name", "rollout.canary.version", "rollout.stable.version"}

// Validate reports every problem of the template with its field path. It is
// pure and checks the effective configuration, so call SetDefaults first.
// Conditions are compiled here with ConditionOptions, so a condition that
// does not compile is a load-time error rather than a failed analysis.
func (t *AnalysisTemplate) Validate() FieldErrors {
	v := &validator{}
	v.apiVersionKind(t.APIVersion, t.Kind, KindAnalysisTemplate)
	v.name("metadata.name", t.Metadata.Name)

	p := FieldPath("spec")
	declared := map[string]bool{}
	seenArgs := nameSet{}
	for i, a := range t.Spec.Args {
		v.argValueFrom(p.Child("args").Index(i).Child("valueFrom"), a.ValueFrom, a.Value != nil)
		ap := p.Child("args").Index(i).Child("name")
		if a.Name == "" {
			v.add(ap, "an argument name is required")
			continue
		}
		v.unique(seenArgs, ap, "argument", a.Name)
		declared[a.Name] = true
	}

	if len(t.Spec.Metrics) == 0 && len(t.Spec.Templates) == 0 {
		v.add(p.Child("metrics"), "at least one metric is required (or templates to compose)")
	}
	for i, ref := range t.Spec.Templates {
		tp := p.Child("templates").Index(i).Child("templateName")
		switch {
		case ref.TemplateName == "":
			v.add(tp, "templateName is required")
		case ref.TemplateName == t.Metadata.Name:
			v.add(tp, "a template cannot compose itself")
		}
	}
	v.selectors(p, t.Spec.DryRun, t.Spec.MeasurementRetention)
	if t.Spec.KayentaScore != nil {
		kayenta := slices.ContainsFunc(t.Spec.Metrics, func(m Metric) bool { return m.Judge != nil && m.Judge.Method == JudgeMethodKayenta })
		if !kayenta && len(t.Spec.Templates) == 0 {
			v.add(p.Child("kayentaScore"), "scores judge.method kayenta metrics, and this template has none")
		}
		v.kayentaScore(p.Child("kayentaScore"), *t.Spec.KayentaScore)
	}
	seen := nameSet{}
	for i, m := range t.Spec.Metrics {
		mp := p.Child("metrics").Index(i)
		if m.Name == "" {
			v.add(mp.Child("name"), "a metric name is required")
		} else {
			v.unique(seen, mp.Child("name"), "metric name", m.Name)
		}
		v.metric(mp, m, declared)
		for _, name := range sortedKeys(m.ArgFields) {
			v.placeholders(mp.Child(name), m.ArgFields[name], declared)
		}
		if m.Provider.Command != nil && i == slices.IndexFunc(t.Spec.Metrics, func(m Metric) bool { return m.Provider.Command != nil }) {
			v.argEnvNames(p.Child("args"), t.Spec.Args)
		}
	}
	return v.errs
}

func (v *validator) metric(p FieldPath, m Metric, args map[string]bool) {
	if m.Interval != nil {
		v.positive(p.Child("interval"), *m.Interval)
	}
	if m.Count != nil {
		v.atLeast(p.Child("count"), *m.Count, 1)
		if *m.Count > 1 && m.Interval == nil && m.ArgFields["interval"] == "" {
			// As in Argo: several measurements need a time between them.
			v.add(p.Child("interval"), "count %d needs an interval between the measurements, such as interval: 1m", *m.Count)
		}
	}
	for _, l := range []struct {
		name string
		n    *int
	}{{"failureLimit", m.FailureLimit}, {"inconclusiveLimit", m.InconclusiveLimit}, {"consecutiveErrorLimit", m.ConsecutiveErrorLimit}} {
		if l.n != nil && *l.n < Unlimited {
			v.add(p.Child(l.name), "must be -1 (unlimited) or at least 0, not %d", *l.n)
		}
	}
	for _, name := range sortedKeys(m.ArgFields) {
		// Reached through the API's JSON; the loader only fills known
		// fields with placeholders.
		switch {
		case !slices.Contains(ArgFieldNames, name):
			v.add(p.Child("argFields").Key(name), "%s cannot be written as a placeholder: only %s can", name, strings.Join(ArgFieldNames, ", "))
		case !strings.Contains(m.ArgFields[name], "{{"):
			v.add(p.Child("argFields").Key(name), "%q is not a placeholder: write the value in the field itself", m.ArgFields[name])
		}
	}
	if r := m.MeasurementRetention; r != nil && (*r < 1 || *r > MaxMeasurementRetention) {
		v.add(p.Child("measurementRetention"), "keeps 1 to %d measurements, not %d", MaxMeasurementRetention, *r)
	}
	if csl := m.ConsecutiveSuccessLimit; csl != nil {
		switch {
		case *csl < 0:
			v.add(p.Child("consecutiveSuccessLimit"), "must be at least 0 (0: off), not %d", *csl)
		case m.Count != nil && *csl > *m.Count:
			v.add(p.Child("consecutiveSuccessLimit"), "%d successes in a row cannot happen in count %d measurements", *csl, *m.Count)
		}
	}
	v.oneOf(p.Child("onNoData"), "onNoData policy", m.OnNoData, OnNoDataWait, OnNoDataInconclusive, OnNoDataFail, OnNoDataPass)

	v.condition(p.Child("successCondition"), m.SuccessCondition)
	v.condition(p.Child("failureCondition"), m.FailureCondition)

	v.provider(p.Child("provider"), m.Provider, args)
	if m.Judge != nil {
		v.judge(p.Child("judge"), *m.Judge)
		if m.Provider.Builtin == nil && (m.Provider.Prometheus != nil || m.Provider.Web != nil || m.Provider.Command != nil || m.Provider.CloudWatch != nil) {
			// A judge needs per-version counts and latency distributions,
			// which only the builtin provider has.
			v.add(p.Child("judge"), "a judge needs provider builtin: it compares the proxy's own canary and stable measurements")
		}
	}
}

func (v *validator) condition(p FieldPath, src string) {
	if strings.TrimSpace(src) == "" {
		return
	}
	if _, err := CompileCondition(src); err != nil {
		v.add(p, "condition does not compile: %s", err)
	}
}

func (v *validator) provider(p FieldPath, pr Provider, args map[string]bool) {
	if !v.union(p, "a provider", []string{"builtin", "prometheus", "web", "command", "cloudWatch"},
		[]bool{pr.Builtin != nil, pr.Prometheus != nil, pr.Web != nil, pr.Command != nil, pr.CloudWatch != nil}) {
		return
	}
	switch {
	case pr.Builtin != nil:
		if w := pr.Builtin.Window; w != nil {
			v.positive(p.Child("builtin").Child("window"), *w)
		}
		if cf := pr.Builtin.ConnectFailures; cf != "" {
			v.oneOf(p.Child("builtin").Child("connectFailures"), "connectFailures", cf, ConnectFailuresCount, ConnectFailuresIgnore)
		}
	case pr.Prometheus != nil:
		pp := p.Child("prometheus")
		q := pr.Prometheus
		if v.placeholders(pp.Child("address"), q.Address, args) && checkableURL(q.Address) {
			v.httpURL(pp.Child("address"), "prometheus address", fillPlaceholders(q.Address))
		}
		if strings.TrimSpace(q.Query) == "" {
			v.add(pp.Child("query"), "a PromQL query is required")
		} else {
			v.placeholders(pp.Child("query"), q.Query, args)
		}
		if q.Timeout != nil {
			v.positive(pp.Child("timeout"), *q.Timeout)
		}
		v.prometheusOptions(pp, q, args)
		v.headers(pp.Child("headers"), q.Headers)
		for _, k := range sortedKeys(q.Headers) {
			v.placeholders(pp.Child("headers").Key(k), q.Headers[k], args)
		}
	case pr.Web != nil:
		wp := p.Child("web")
		w := pr.Web
		if v.placeholders(wp.Child("url"), w.URL, args) && checkableURL(w.URL) {
			v.httpURL(wp.Child("url"), "web", fillPlaceholders(w.URL))
		}
		if w.Method != "" {
			v.token(wp.Child("method"), "method", w.Method)
		}
		v.headers(wp.Child("headers"), w.Headers)
		for _, k := range sortedKeys(w.Headers) {
			v.placeholders(wp.Child("headers").Key(k), w.Headers[k], args)
		}
		v.placeholders(wp.Child("body"), w.Body, args)
		if w.Timeout != nil {
			v.positive(wp.Child("timeout"), *w.Timeout)
		}
		v.webOptions(wp, w, args)
	case pr.Command != nil:
		v.command(p.Child("command"), *pr.Command, args)
	case pr.CloudWatch != nil:
		v.cloudWatch(p.Child("cloudWatch"), pr.CloudWatch, args)
	}
}

// placeholders checks that every {{...}} names a declared arg or a rollout
// field, so a typo fails at load time rather than as a query for the
// literal text "{{args.servce}}". It reports whether all were known.
func (v *validator) placeholders(p FieldPath, s string, args map[string]bool) bool {
	ok := true
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		name := m[1]
		if arg, isArg := strings.CutPrefix(name, "args."); isArg {
			if !args[arg] {
				v.add(p, "{{%s}} uses argument %q, which spec.args does not declare", name, arg)
				ok = false
			}
			continue
		}
		known := false
		for _, r := range rolloutPlaceholders {
			known = known || name == r
		}
		if !known {
			v.add(p, "unknown substitution {{%s}}: use {{args.NAME}}, {{%s}}", name, strings.Join(rolloutPlaceholders, "}}, {{"))
			ok = false
		}
	}
	return ok
}

// checkableURL reports whether a URL can be checked before substitution:
// one that starts with a substitution ("{{args.prometheus}}") is only known
// at run time, where the provider reports it.
func checkableURL(s string) bool {
	return !strings.HasPrefix(strings.TrimSpace(s), "{{")
}

// fillPlaceholders replaces substitutions with a plain word so the rest of a
// URL can be checked before the values are known; one that stands in a
// URL's port gets a number instead, since a word is not a port (Argo's own
// example is http://{{args.host}}:{{args.port}}/api).
func fillPlaceholders(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range placeholderRE.FindAllStringIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		if portPlaceholderRE.MatchString(b.String()) {
			b.WriteString("1")
		} else {
			b.WriteString("placeholder")
		}
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

func (v *validator) judge(p FieldPath, j Judge) {
	v.oneOf(p.Child("compare"), "judge comparison", j.Compare, JudgeCompareErrorRate, JudgeCompareLatency)
	v.oneOf(p.Child("method"), "judge method", j.Method, JudgeMethodSequential, JudgeMethodFixed, JudgeMethodKayenta)
	v.oneOf(p.Child("direction"), "direction", j.Direction, DirectionIncrease, DirectionDecrease, DirectionEither)
	v.oneOf(p.Child("onLimit"), "onLimit policy", j.OnLimit, OnLimitPass, OnLimitInconclusive)
	v.openUnit(p.Child("alpha"), j.Alpha)
	v.openUnit(p.Child("quantile"), j.Quantile)
	if j.Quantile != nil && j.Compare == JudgeCompareErrorRate {
		v.add(p.Child("quantile"), "quantile applies only to compare: latency")
	}
	v.judgeQuantiles(p, j)
	if x := j.MaxRelativeIncrease; x != nil && v.finite(p.Child("maxRelativeIncrease"), *x) && *x < 0 {
		v.add(p.Child("maxRelativeIncrease"), "must be at least 0, not %v", *x)
	}
	if x := j.MaxAbsoluteIncrease; x != nil {
		switch {
		case j.Compare != JudgeCompareErrorRate:
			v.add(p.Child("maxAbsoluteIncrease"), "applies only to compare: error-rate (percentage points of the error rate)")
		case j.Method == JudgeMethodFixed || j.Method == JudgeMethodKayenta:
			v.add(p.Child("maxAbsoluteIncrease"), "applies to method sequential; method %s has only maxRelativeIncrease", j.Method)
		case !v.finite(p.Child("maxAbsoluteIncrease"), *x):
		case *x < 0 || *x >= 100:
			v.add(p.Child("maxAbsoluteIncrease"), "must be at least 0 and below 100 percentage points, not %v", *x)
		}
	}
	if j.MinSamples != nil && *j.MinSamples < 0 {
		v.add(p.Child("minSamples"), "must be at least 0, not %d", *j.MinSamples)
	}
	if j.MaxSamples != nil {
		switch {
		case *j.MaxSamples < 1:
			v.add(p.Child("maxSamples"), "must be at least 1, not %d", *j.MaxSamples)
		case j.MinSamples != nil && *j.MaxSamples < *j.MinSamples:
			v.add(p.Child("maxSamples"), "maxSamples %d is below minSamples %d", *j.MaxSamples, *j.MinSamples)
		}
	}
	if j.MaxDuration != nil {
		v.positive(p.Child("maxDuration"), *j.MaxDuration)
	}
	if j.Method == JudgeMethodKayenta {
		v.kayentaJudge(p, j)
	} else {
		if j.Groups != nil {
			v.add(p.Child("groups"), "applies only to method kayenta: only its labels make a score")
		}
		if j.Critical {
			v.add(p.Child("critical"), "applies only to method kayenta: the other methods always fail the run on their own")
		}
	}
}

// MaxJudgeQuantiles bounds judge.quantiles: each quantile is a test with its
// own state, and the failure mixture pays ln(count) nats of evidence.
const MaxJudgeQuantiles = 8

// judgeQuantiles checks judge.quantiles: latency and method sequential
// only, not beside quantile, 1 to MaxJudgeQuantiles distinct values in
// (0, 1).
func (v *validator) judgeQuantiles(p FieldPath, j Judge) {
	if j.Quantiles == nil {
		return
	}
	qp := p.Child("quantiles")
	switch {
	case j.Compare == JudgeCompareErrorRate:
		v.add(qp, "quantiles applies only to compare: latency")
	case j.Quantile != nil:
		v.add(qp, "set quantile or quantiles, not both")
	case j.Method == JudgeMethodFixed:
		v.add(qp, "quantiles applies only to method sequential: the fixed judge tests one quantile (quantile) or the whole distribution")
	case j.Method == JudgeMethodKayenta:
		v.add(qp, "quantiles applies only to method sequential: the kayenta judge classifies one quantile (quantile) per interval")
	case len(j.Quantiles) == 0:
		v.add(qp, "must list at least one quantile (or be left out for the default set)")
	case len(j.Quantiles) > MaxJudgeQuantiles:
		v.add(qp, "lists %d quantiles, at most %d", len(j.Quantiles), MaxJudgeQuantiles)
	}
	seen := map[float64]bool{}
	for i, q := range j.Quantiles {
		v.openUnit(qp.Index(i), &q)
		if seen[q] {
			v.add(qp.Index(i), "%v is listed twice", q)
		}
		seen[q] = true
	}
}
