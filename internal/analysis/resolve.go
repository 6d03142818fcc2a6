package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Names of the rollout substitutions of SPEC §5.3, as keys of Resolve's
// vars.
const (
	VarRolloutName   = "rollout.name"
	VarCanaryVersion = "rollout.canary.version"
	VarStableVersion = "rollout.stable.version"
)

// Vars returns Resolve's vars for a rollout and its two versions.
func Vars(rollout, canaryVersion, stableVersion string) map[string]string {
	return map[string]string{VarRolloutName: rollout, VarCanaryVersion: canaryVersion, VarStableVersion: stableVersion}
}

// placeholder finds a {{...}} substitution; spaces inside the braces are
// allowed, as in Argo's `{{ args.name }}`.
var placeholder = regexp.MustCompile(`\{\{\s*(.*?)\s*\}\}`)

// Resolution is what a run measures: its metrics with every placeholder
// filled, except the secret arguments, which stay as {{secret.NAME}} until
// a measurement runs (RevealSecrets) so that their values are never stored
// with the run or shown in its status.
type Resolution struct {
	Metrics []spec.Metric
	// Secrets says where each {{secret.NAME}} is read from.
	Secrets map[string]spec.ArgValueFrom
	// KayentaScore is the templates' kayentaScore blocks merged, nil when
	// none has one (Kayenta's defaults then apply).
	KayentaScore *spec.KayentaScore
}

// Resolve is ResolveRun's metrics, for callers that use no secret
// arguments.
func Resolve(templates []spec.AnalysisTemplate, refs []spec.TemplateRef, args []spec.Arg, vars map[string]string) ([]spec.Metric, error) {
	r, err := ResolveRun(templates, Request{Refs: refs, Args: args}, vars)
	return r.Metrics, err
}

// Request is what an analysis (a step's or the background one) asks of
// its templates.
type Request struct {
	Refs []spec.TemplateRef
	Args []spec.Arg
	// DryRun and MeasurementRetention apply to the matching metrics, on top
	// of the templates' own (Argo's analysis-level lists).
	DryRun               []spec.MetricSelector
	MeasurementRetention []spec.MeasurementRetention
}

// maxTemplateDepth bounds template composition; deeper is surely a cycle
// the loader did not see (templates applied one at a time).
const maxTemplateDepth = 10

// flatten lists the templates refs stand for, each once, a composed
// template's parts before the template itself (Argo's order).
func flatten(byName map[string]*spec.AnalysisTemplate, refs []spec.TemplateRef, seen map[string]bool, depth int) ([]*spec.AnalysisTemplate, error) {
	if depth > maxTemplateDepth {
		return nil, fmt.Errorf("AnalysisTemplates compose more than %d levels deep; is there a cycle?", maxTemplateDepth)
	}
	var out []*spec.AnalysisTemplate
	for _, ref := range refs {
		if seen[ref.TemplateName] {
			continue
		}
		t, ok := byName[ref.TemplateName]
		if !ok {
			return nil, fmt.Errorf("AnalysisTemplate %q not found", ref.TemplateName)
		}
		seen[ref.TemplateName] = true
		inner, err := flatten(byName, t.Spec.Templates, seen, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(append(out, inner...), t)
	}
	return out, nil
}

// applySelectors marks dry-run metrics and sets measurement retention from
// Argo's metricName lists; a rule that matches no metric is an error, as
// in Argo, since it is almost always a typo.
func applySelectors(metrics []spec.Metric, dryRun []spec.MetricSelector, retention []spec.MeasurementRetention) error {
	match := func(what string, i int, pattern string, apply func(*spec.Metric)) error {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return fmt.Errorf("%s[%d]: metricName %q: %w", what, i, pattern, err)
		}
		n := 0
		for j := range metrics {
			if re.MatchString(metrics[j].Name) {
				apply(&metrics[j])
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("%s[%d]: metricName %q matches no metric of the run", what, i, pattern)
		}
		return nil
	}
	for i, d := range dryRun {
		if err := match("dryRun", i, d.MetricName, func(m *spec.Metric) { m.DryRun = true }); err != nil {
			return err
		}
	}
	for i, r := range retention {
		limit := r.Limit
		if err := match("measurementRetention", i, r.MetricName, func(m *spec.Metric) { m.MeasurementRetention = &limit }); err != nil {
			return err
		}
	}
	return nil
}

// ResolveRun builds the metrics of a run from the referenced templates
// (refs, in order, looked up in templates by name): their metrics merged,
// and {{args.NAME}} and the keys of vars ({{rollout.name}},
// {{rollout.canary.version}}, {{rollout.stable.version}}) substituted into
// every string of the providers (prometheus address, query and header
// values; web url, body, header values and jsonPath; command arguments,
// dir and env values). A command's env also gets every argument and
// rollout value as a COALMINE_ variable (see command). An argument's value
// is the one given in args, else its template default; either may be a
// valueFrom: the rollout's name (fieldRef metadata.name), a version
// (podTemplateHashValue Stable or Latest) or a secret. A literal value may
// itself use {{rollout.*}}, as `value: "{{rollout.canary.version}}"`.
//
// Like Argo, it refuses a metric name defined twice and a declared argument
// left without a value, and ignores an argument that no template declares
// (the loader warns about it). Two templates declaring different defaults
// for one argument the rollout does not set are refused (Argo refuses that
// even when the rollout sets it; coalmine lets the given value decide).
// Every placeholder that cannot be filled is named in the error with its
// field, so a typo never becomes a query for the literal "{{args.servce}}".
// Substitution is one pass: a value that contains "{{args." is not expanded.
// The templates are not modified.
func ResolveRun(templates []spec.AnalysisTemplate, req Request, vars map[string]string) (Resolution, error) {
	if len(req.Refs) == 0 {
		return Resolution{}, fmt.Errorf("resolve analysis: no templates referenced")
	}
	byName := map[string]*spec.AnalysisTemplate{}
	for i := range templates {
		byName[templates[i].Metadata.Name] = &templates[i]
	}
	flat, err := flatten(byName, req.Refs, map[string]bool{}, 0)
	if err != nil {
		return Resolution{}, fmt.Errorf("resolve analysis: %w", err)
	}
	args := req.Args

	type argDecl struct {
		def      *argValue
		template string
		conflict string
	}
	declared := map[string]*argDecl{}
	var metrics []spec.Metric
	definedBy := map[string]string{}
	var dryRun []spec.MetricSelector
	var retention []spec.MeasurementRetention
	score, err := spec.MergeKayentaScores(flat)
	if err != nil {
		return Resolution{}, fmt.Errorf("resolve analysis: %w", err)
	}
	for _, t := range flat {
		dryRun = append(dryRun, t.Spec.DryRun...)
		retention = append(retention, t.Spec.MeasurementRetention...)
		for _, a := range t.Spec.Args {
			def := templateDefault(a)
			d, seen := declared[a.Name]
			if !seen {
				declared[a.Name] = &argDecl{def: def, template: t.Metadata.Name}
				continue
			}
			switch {
			case d.def == nil:
				d.def, d.template = def, t.Metadata.Name
			case def != nil && !def.equal(*d.def) && d.conflict == "":
				d.conflict = fmt.Sprintf("AnalysisTemplates %q and %q give argument %q different defaults (%s and %s): set it in the rollout's args",
					d.template, t.Metadata.Name, a.Name, d.def, def)
			}
		}
		for _, m := range t.Spec.Metrics {
			if prev, dup := definedBy[m.Name]; dup {
				return Resolution{}, fmt.Errorf("resolve analysis: metric %q is defined by AnalysisTemplate %q and by %q; metric names must be unique within a run", m.Name, prev, t.Metadata.Name)
			}
			definedBy[m.Name] = t.Metadata.Name
			metrics = append(metrics, m)
		}
	}

	given := map[string]argValue{}
	for _, a := range args {
		if _, ok := declared[a.Name]; !ok {
			continue // as in Argo; the loader warns
		}
		if _, dup := given[a.Name]; dup {
			return Resolution{}, fmt.Errorf("resolve analysis: argument %q is given twice", a.Name)
		}
		given[a.Name] = argValue{literal: a.Value, from: a.ValueFrom}
	}
	for _, name := range slices.Sorted(maps.Keys(declared)) {
		if _, ok := given[name]; ok {
			continue
		}
		d := declared[name]
		switch {
		case d.conflict != "":
			return Resolution{}, fmt.Errorf("resolve analysis: %s", d.conflict)
		case d.def == nil:
			return Resolution{}, fmt.Errorf("resolve analysis: AnalysisTemplate %q needs argument %q: add {name: %s, value: ...} to args", d.template, name, name)
		}
		given[name] = *d.def
	}

	s := substituter{args: map[string]string{}, vars: vars}
	res := Resolution{KayentaScore: score}
	for _, name := range slices.Sorted(maps.Keys(given)) {
		v, err := given[name].value(name, vars)
		if err != nil {
			return Resolution{}, fmt.Errorf("resolve analysis: %w", err)
		}
		if v.secret != nil {
			if res.Secrets == nil {
				res.Secrets = map[string]spec.ArgValueFrom{}
			}
			res.Secrets[name] = *v.secret
		}
		s.args[name] = v.text
	}
	res.Metrics = make([]spec.Metric, len(metrics))
	for i, m := range metrics {
		res.Metrics[i] = s.numbers(s.metric(m))
	}
	// The analysis' own lists come last, so its retention wins.
	if err := applySelectors(res.Metrics, append(dryRun, req.DryRun...), append(retention, req.MeasurementRetention...)); err != nil {
		return Resolution{}, fmt.Errorf("resolve analysis: %w", err)
	}
	if len(s.problems) > 0 {
		return Resolution{}, fmt.Errorf("resolve analysis: cannot substitute %s", strings.Join(s.problems, "; "))
	}
	if err := spec.CheckScoreGroups(score, res.Metrics); err != nil {
		return Resolution{}, fmt.Errorf("resolve analysis: %w", err)
	}
	return res, nil
}

// argValue is an argument as written: a literal or a valueFrom.
type argValue struct {
	literal string
	from    *spec.ArgValueFrom
}

func (a argValue) equal(b argValue) bool {
	return a.literal == b.literal && reflect.DeepEqual(a.from, b.from)
}

func (a argValue) String() string {
	if a.from != nil {
		b, _ := json.Marshal(a.from)
		return "valueFrom " + string(b)
	}
	return strconv.Quote(a.literal)
}

func templateDefault(a spec.TemplateArg) *argValue {
	switch {
	case a.ValueFrom != nil:
		return &argValue{from: a.ValueFrom}
	case a.Value != nil:
		return &argValue{literal: *a.Value}
	}
	return nil
}

// filled is an argument's text as substituted, and the secret it stands
// for, if any.
type filled struct {
	text   string
	secret *spec.ArgValueFrom
}

// secretPrefix marks a placeholder left for RevealSecrets. Users cannot
// write it in a template: fill refuses unknown placeholders.
const secretPrefix = "secret."

func (a argValue) value(name string, vars map[string]string) (filled, error) {
	from := a.from
	if from == nil {
		if strings.Contains(a.literal, "{{"+secretPrefix) {
			return filled{}, fmt.Errorf("argument %q: {{%s...}} is reserved for secret arguments; use valueFrom", name, secretPrefix)
		}
		// A literal may name the rollout's own values; nothing else is
		// expanded, so a value is never substituted twice.
		text := placeholder.ReplaceAllStringFunc(a.literal, func(match string) string {
			if v, ok := vars[placeholder.FindStringSubmatch(match)[1]]; ok {
				return v
			}
			return match
		})
		return filled{text: text}, nil
	}
	pick := func(key, what string) (filled, error) {
		v, ok := vars[key]
		if !ok {
			return filled{}, fmt.Errorf("argument %q: %s is not known here", name, what)
		}
		return filled{text: v}, nil
	}
	switch {
	case from.FieldRef != nil:
		return pick(VarRolloutName, "the rollout's name")
	case from.PodTemplateHashValue == spec.PodTemplateHashStable:
		return pick(VarStableVersion, "the stable version")
	case from.PodTemplateHashValue == spec.PodTemplateHashLatest:
		return pick(VarCanaryVersion, "the canary version")
	case from.Secret("") != nil:
		return filled{text: "{{" + secretPrefix + name + "}}", secret: from}, nil
	}
	return filled{}, fmt.Errorf("argument %q: valueFrom sets nothing usable", name)
}

// RevealSecrets fills the {{secret.NAME}} placeholders of one query's
// provider with the values read through resolve, just before the query
// runs. The returned provider is a copy; p is not modified.
//
// It also returns a Redactor for the values it filled in: a provider's
// error or a string result may quote them (a URL, a query, a command's
// stderr), and what it says is stored with the run, so it must go through
// the Redactor first, as Argo redacts secrets from measurement messages.
func RevealSecrets(p spec.Provider, secrets map[string]spec.ArgValueFrom, resolve func(spec.ArgValueFrom) (string, error)) (spec.Provider, Redactor, error) {
	if len(secrets) == 0 {
		return p, Redactor{}, nil
	}
	values := map[string]string{}
	var red Redactor
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		v, err := resolve(secrets[name])
		if err != nil {
			return p, Redactor{}, fmt.Errorf("secret argument %q: %w", name, err)
		}
		values[secretPrefix+name] = v
		red.values = append(red.values, v)
	}
	// Longest first, so a secret that contains another is hidden whole.
	slices.SortFunc(red.values, func(a, b string) int { return len(b) - len(a) })
	s := substituter{vars: values, only: true}
	m := s.metric(spec.Metric{Provider: p})
	return m.Provider, red, nil
}

// Redactor hides secret values in what a provider said.
type Redactor struct{ values []string }

// redactedMark replaces a secret value, as Argo's "*****".
const redactedMark = "*****"

// String returns s with every secret value replaced.
func (r Redactor) String(s string) string {
	for _, v := range r.values {
		if v != "" {
			s = strings.ReplaceAll(s, v, redactedMark)
		}
	}
	return s
}

// Outcome returns out with the secrets hidden in its error and in a
// string result. The error keeps what errors.Is needs (no data, failed).
func (r Redactor) Outcome(out Outcome) Outcome {
	if len(r.values) == 0 {
		return out
	}
	if out.Err != nil {
		if msg := r.String(out.Err.Error()); msg != out.Err.Error() {
			out.Err = redactedError{msg: msg, kind: out.Err}
		}
	}
	out.Result.Value = r.value(out.Result.Value)
	return out
}

// value hides secrets in the strings of a result (a string, or the lists
// and maps JSON decodes to), copying what it changes.
func (r Redactor) value(v any) any {
	switch x := v.(type) {
	case string:
		return r.String(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.value(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[r.String(k)] = r.value(e)
		}
		return out
	}
	return v
}

// redactedError is an error whose text had secrets removed; Is reports
// the sentinel errors of the original so the verdict does not change.
type redactedError struct {
	msg  string
	kind error
}

func (e redactedError) Error() string { return e.msg }

func (e redactedError) Is(target error) bool {
	return (target == provider.ErrNoData || target == provider.ErrFailed) && errors.Is(e.kind, target)
}

// substituter fills placeholders and collects the ones it cannot fill.
// With only set it fills the placeholders it knows and leaves every other
// one as it is (RevealSecrets' second pass).
type substituter struct {
	args, vars map[string]string
	only       bool
	problems   []string
}

// metric returns m with its provider strings substituted. The provider
// structs and header maps are copied, so the template keeps its text.
func (s *substituter) metric(m spec.Metric) spec.Metric {
	field := func(f string) string { return fmt.Sprintf("metric %q provider.%s", m.Name, f) }
	if p := m.Provider.Prometheus; p != nil {
		c := *p
		c.Address = s.fill(field("prometheus.address"), p.Address)
		c.Query = s.fill(field("prometheus.query"), p.Query)
		c.Headers = s.fillMap(field("prometheus.headers"), p.Headers)
		s.prometheusOptions(field, &c)
		m.Provider.Prometheus = &c
	}
	if w := m.Provider.Web; w != nil {
		c := *w
		c.URL = s.fill(field("web.url"), w.URL)
		c.Headers = s.fillMap(field("web.headers"), w.Headers)
		c.Body = s.fill(field("web.body"), w.Body)
		c.JSONPath = s.fill(field("web.jsonPath"), w.JSONPath)
		s.webOptions(field, &c)
		m.Provider.Web = &c
	}
	if c := m.Provider.Command; c != nil {
		m.Provider.Command = s.command(m.Name, *c)
	}
	if c := m.Provider.CloudWatch; c != nil {
		m.Provider.CloudWatch = s.cloudWatch(field, *c)
	}
	return m
}

// numbers fills the metric's number and duration fields written as
// placeholders and checks them as the loader checks literal ones.
func (s *substituter) numbers(m spec.Metric) spec.Metric {
	if len(m.ArgFields) == 0 {
		return m
	}
	for _, name := range slices.Sorted(maps.Keys(m.ArgFields)) {
		where := fmt.Sprintf("metric %q %s", m.Name, name)
		text := s.fill(where, m.ArgFields[name])
		if strings.Contains(text, "{{"+secretPrefix) {
			s.problems = append(s.problems, fmt.Sprintf("%s = %q: a number cannot come from a secret argument (valueFrom env, file or secretKeyRef); give the argument a value", where, m.ArgFields[name]))
			continue
		}
		if strings.Contains(text, "{{") {
			continue // reported by fill
		}
		if err := m.SetArgField(name, text); err != nil {
			s.problems = append(s.problems, fmt.Sprintf("%s = %q: %v", where, m.ArgFields[name], err))
		}
	}
	m.ArgFields = nil
	for _, fe := range spec.ValidateMetric(m) {
		if slices.Contains(spec.ArgFieldNames, fe.Path) {
			s.problems = append(s.problems, fmt.Sprintf("metric %q %s: %s", m.Name, fe.Path, fe.Msg))
		}
	}
	return m
}

func (s *substituter) fillMap(where string, h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	out := make(map[string]string, len(h))
	for _, k := range slices.Sorted(maps.Keys(h)) {
		out[k] = s.fill(where+"."+k, h[k])
	}
	return out
}

func (s *substituter) fill(where, text string) string {
	return placeholder.ReplaceAllStringFunc(text, func(match string) string {
		name := placeholder.FindStringSubmatch(match)[1]
		if s.only {
			if v, ok := s.vars[name]; ok {
				return v
			}
			return match
		}
		if arg, ok := strings.CutPrefix(name, "args."); ok {
			if v, ok := s.args[arg]; ok {
				return v
			}
			s.problems = append(s.problems, fmt.Sprintf("{{%s}} in %s: no template declares argument %q", name, where, arg))
			return match
		}
		if v, ok := s.vars[name]; ok {
			return v
		}
		if slices.Contains([]string{VarRolloutName, VarCanaryVersion, VarStableVersion}, name) {
			s.problems = append(s.problems, fmt.Sprintf("{{%s}} in %s: no value is known for it here", name, where))
		} else {
			s.problems = append(s.problems, fmt.Sprintf("{{%s}} in %s: unknown; use {{args.NAME}}, {{%s}}, {{%s}} or {{%s}}",
				name, where, VarRolloutName, VarCanaryVersion, VarStableVersion))
		}
		return match
	})
}
