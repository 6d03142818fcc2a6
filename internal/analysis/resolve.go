package analysis

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

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

// Resolve builds the metrics of a run from the referenced templates
// (refs, in order, looked up in templates by name): their metrics merged,
// and {{args.NAME}} and the keys of vars ({{rollout.name}},
// {{rollout.canary.version}}, {{rollout.stable.version}}) substituted into
// every string of the providers (prometheus address, query and header
// values; web url, body, header values and jsonPath; command arguments,
// dir and env values). A command's env also gets every argument and
// rollout value as a COALMINE_ variable (see command). An argument's value
// is the one given in args, else its template default.
//
// Like Argo, it refuses a metric name defined twice and a declared argument
// left without a value. It also refuses, as the loader does, an argument
// that no template declares, and two templates declaring different
// defaults for one argument the rollout does not set (Argo refuses that
// even when the rollout sets it; coalmine lets the given value decide).
// Every placeholder that cannot be filled is named in the error with its
// field, so a typo never becomes a query for the literal "{{args.servce}}".
// Substitution is one pass: a value that contains "{{" is not expanded.
// The templates are not modified.
func Resolve(templates []spec.AnalysisTemplate, refs []spec.TemplateRef, args []spec.Arg, vars map[string]string) ([]spec.Metric, error) {
	if len(refs) == 0 {
		return nil, fmt.Errorf("resolve analysis: no templates referenced")
	}
	byName := map[string]*spec.AnalysisTemplate{}
	for i := range templates {
		byName[templates[i].Metadata.Name] = &templates[i]
	}

	type argDecl struct {
		def      *string
		template string
		conflict string
	}
	declared := map[string]*argDecl{}
	var metrics []spec.Metric
	definedBy := map[string]string{}
	var names []string
	for _, ref := range refs {
		t, ok := byName[ref.TemplateName]
		if !ok {
			return nil, fmt.Errorf("resolve analysis: AnalysisTemplate %q not found", ref.TemplateName)
		}
		names = append(names, fmt.Sprintf("%q", ref.TemplateName))
		for _, a := range t.Spec.Args {
			d, seen := declared[a.Name]
			if !seen {
				declared[a.Name] = &argDecl{def: a.Value, template: t.Metadata.Name}
				continue
			}
			switch {
			case d.def == nil:
				d.def, d.template = a.Value, t.Metadata.Name
			case a.Value != nil && *a.Value != *d.def && d.conflict == "":
				d.conflict = fmt.Sprintf("AnalysisTemplates %q and %q give argument %q different defaults (%q and %q): set it in the rollout's args",
					d.template, t.Metadata.Name, a.Name, *d.def, *a.Value)
			}
		}
		for _, m := range t.Spec.Metrics {
			if prev, dup := definedBy[m.Name]; dup {
				return nil, fmt.Errorf("resolve analysis: metric %q is defined by AnalysisTemplate %q and by %q; metric names must be unique within a run", m.Name, prev, t.Metadata.Name)
			}
			definedBy[m.Name] = t.Metadata.Name
			metrics = append(metrics, m)
		}
	}

	values := map[string]string{}
	for _, a := range args {
		if _, ok := declared[a.Name]; !ok {
			return nil, fmt.Errorf("resolve analysis: argument %q is not declared by AnalysisTemplate %s", a.Name, strings.Join(names, ", "))
		}
		if _, dup := values[a.Name]; dup {
			return nil, fmt.Errorf("resolve analysis: argument %q is given twice", a.Name)
		}
		values[a.Name] = a.Value
	}
	for _, name := range slices.Sorted(maps.Keys(declared)) {
		if _, given := values[name]; given {
			continue
		}
		d := declared[name]
		switch {
		case d.conflict != "":
			return nil, fmt.Errorf("resolve analysis: %s", d.conflict)
		case d.def == nil:
			return nil, fmt.Errorf("resolve analysis: AnalysisTemplate %q needs argument %q: add {name: %s, value: ...} to args", d.template, name, name)
		}
		values[name] = *d.def
	}

	s := substituter{args: values, vars: vars}
	out := make([]spec.Metric, len(metrics))
	for i, m := range metrics {
		out[i] = s.metric(m)
	}
	if len(s.problems) > 0 {
		return nil, fmt.Errorf("resolve analysis: cannot substitute %s", strings.Join(s.problems, "; "))
	}
	return out, nil
}

// substituter fills placeholders and collects the ones it cannot fill.
type substituter struct {
	args, vars map[string]string
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
		m.Provider.Prometheus = &c
	}
	if w := m.Provider.Web; w != nil {
		c := *w
		c.URL = s.fill(field("web.url"), w.URL)
		c.Headers = s.fillMap(field("web.headers"), w.Headers)
		c.Body = s.fill(field("web.body"), w.Body)
		c.JSONPath = s.fill(field("web.jsonPath"), w.JSONPath)
		m.Provider.Web = &c
	}
	if c := m.Provider.Command; c != nil {
		m.Provider.Command = s.command(m.Name, *c)
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
