// Package config loads Rollout and AnalysisTemplate documents from YAML
// files. It is strict: unknown fields, wrong types, bad values, duplicate
// names and references to missing templates are errors, each reported as
// "file:line:column: field.path: message", and every problem of every file
// is reported in one pass (SPEC §2). `coalmine serve`, `apply` and `lint`
// all go through Load, so they accept and reject exactly the same files.
//
// Decisions beyond the spec, each to keep a mistake from passing silently:
//   - values are checked against the Go types before decoding, more strictly
//     than yaml.v3: a quoted "5" is not a number, yes/no are not booleans
//     (a bare 10 is a duration of ten seconds, as Argo Rollouts reads it);
//   - an explicit zero or empty value in a field whose zero means "use the
//     default" is an error instead of being replaced by the default;
//   - an AnalysisTemplate argument without a default must be passed by every
//     analysis that uses the template (an argument no template declares is
//     ignored, as in Argo, with a warning);
//   - two rollouts may not share a listen address;
//   - secret file paths are used as written (relative to the working
//     directory, like every other path), and a trailing newline is dropped.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Bundle is the content of a set of configuration files, defaulted and
// validated.
type Bundle struct {
	Rollouts  []spec.Rollout
	Templates []spec.AnalysisTemplate
	// Secrets holds the values of every SecretRef after ResolveSecrets.
	Secrets Secrets
	// Warnings are things that load but may not do what the author
	// expects, mostly an Argo Rollouts user's: Kubernetes metadata ignored,
	// arguments no template declares, defaults that differ from Argo's.
	// `coalmine lint` prints them, serve logs them, apply shows them.
	Warnings Errors

	docs        map[docKey]*document // first document of each kind and name
	rolloutDocs []*document          // parallel to Rollouts as loaded
}

// Source is where a document was defined: the file as it was passed to
// Load and the position of the document's first line.
type Source struct {
	File   string
	Line   int
	Column int
}

func (s Source) String() string { return fmt.Sprintf("%s:%d:%d", s.File, s.Line, s.Column) }

// Source returns where the object of kind (spec.KindRollout or
// spec.KindAnalysisTemplate) and name was defined.
func (b *Bundle) Source(kind, name string) (Source, bool) {
	d, ok := b.docs[docKey{kind, name}]
	if !ok {
		return Source{}, false
	}
	return Source{File: d.file, Line: d.ix.root.line, Column: d.ix.root.col}, true
}

// Template returns the AnalysisTemplate called name.
func (b *Bundle) Template(name string) (*spec.AnalysisTemplate, bool) {
	for i := range b.Templates {
		if b.Templates[i].Metadata.Name == name {
			return &b.Templates[i], true
		}
	}
	return nil, false
}

type docKey struct{ kind, name string }

// document is one decoded YAML document and what is needed to report
// problems in it after the fact.
type document struct {
	file     string
	kind     string
	name     string
	ix       *nodeIndex
	rollout  *spec.Rollout
	template *spec.AnalysisTemplate
	// argo says the document was written for Argo Rollouts (its apiVersion
	// or one of its shapes), so differing defaults are worth a warning.
	argo     bool
	warnings Errors
}

func (d *document) errorAt(p spec.FieldPath, format string, args ...any) Error {
	pos := d.ix.locate(p)
	return Error{File: d.file, Line: pos.line, Column: pos.col, Path: string(p), Msg: fmt.Sprintf(format, args...)}
}

func (d *document) where(p spec.FieldPath) string {
	pos := d.ix.locate(p)
	return fmt.Sprintf("%s:%d:%d", d.file, pos.line, pos.col)
}

// object is what both kinds can do.
type object interface {
	SetDefaults()
	Validate() spec.FieldErrors
}

var kinds = []string{spec.KindRollout, spec.KindAnalysisTemplate}

// Load reads files and directories (their *.yaml and *.yml files, not
// recursively, in name order) and returns their documents defaulted and
// validated. On any problem it returns nil and Errors listing all of them.
// Secret references are not resolved; call ResolveSecrets.
func Load(paths ...string) (*Bundle, error) {
	b, errs := load(paths)
	if len(errs) > 0 {
		return nil, errs
	}
	return b, nil
}

// Parse is Load for one file's content; name is used in error positions.
func Parse(name string, data []byte) (*Bundle, error) {
	docs, errs := parseFile(name, data)
	b, more := assemble(docs)
	b.Warnings = b.Warnings.sorted()
	errs = append(errs, more...).sorted()
	if len(errs) > 0 {
		return nil, errs
	}
	return b, nil
}

// Lint runs everything Load and ResolveSecrets check and reports the
// problems of both in one list, so `coalmine lint` shows a missing
// environment variable alongside a typo instead of one run later. It
// resolves secrets only to check them; nothing is returned or printed.
// Warnings are returned apart: they never make a file invalid.
func Lint(paths []string, env func(string) (string, bool), readFile func(string) ([]byte, error)) (warnings Errors, err error) {
	b, errs := load(paths)
	errs = append(errs, resolveSecrets(b, env, readFile)...)
	return b.Warnings.sorted(), errs.sorted().err()
}

func load(paths []string) (*Bundle, Errors) {
	if len(paths) == 0 {
		return &Bundle{}, Errors{{Msg: "no configuration files given: pass files or directories with -f"}}
	}
	files, errs := expandPaths(paths)
	var docs []*document
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, Error{File: f, Msg: "cannot read: " + pathError(err)})
			continue
		}
		d, e := parseFile(f, data)
		docs = append(docs, d...)
		errs = append(errs, e...)
	}
	b, e := assemble(docs)
	b.Warnings = b.Warnings.sorted()
	return b, append(errs, e...).sorted()
}

// expandPaths turns directories into their YAML files. A file named
// explicitly is read whatever its extension; a directory without YAML files
// is an error because it is almost always the wrong directory.
func expandPaths(paths []string) ([]string, Errors) {
	var files []string
	var errs Errors
	seen := map[string]bool{}
	addFile := func(f string) {
		if c := filepath.Clean(f); !seen[c] {
			seen[c] = true
			files = append(files, f)
		}
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			errs = append(errs, Error{File: p, Msg: "cannot read: " + pathError(err)})
			continue
		}
		if !info.IsDir() {
			addFile(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			errs = append(errs, Error{File: p, Msg: "cannot read directory: " + pathError(err)})
			continue
		}
		n := 0
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if ext != ".yaml" && ext != ".yml" {
				continue
			}
			f := filepath.Join(p, e.Name())
			if st, err := os.Stat(f); err != nil || st.IsDir() {
				continue
			}
			addFile(f)
			n++
		}
		if n == 0 {
			errs = append(errs, Error{File: p, Msg: "no *.yaml or *.yml files in this directory"})
		}
	}
	return files, errs
}

// pathError drops the path that os errors repeat, since Error.File has it.
func pathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// parseFile decodes every document of a file. A YAML syntax error ends the
// file (the parser cannot resynchronise), but the documents before it are
// still checked.
func parseFile(file string, data []byte) ([]*document, Errors) {
	var docs []*document
	var errs Errors
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := decodeStream(dec, &n)
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, syntaxError(file, data, err))
			break
		}
		d, e := parseDocument(file, &n)
		errs = append(errs, e...)
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs, errs
}

func decodeStream(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(file string, data []byte, err error) Error {
	e := Error{File: file}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	e.Msg = "invalid YAML: " + msg
	// YAML forbids tabs in indentation and the parser's message does not
	// say so; point at the tab instead.
	lines := strings.Split(string(data), "\n")
	for l := e.Line - 1; l <= e.Line+1 && e.Line > 0; l++ {
		if l < 1 || l > len(lines) {
			continue
		}
		text := lines[l-1]
		indent := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
		if i := strings.IndexByte(indent, '\t'); i >= 0 {
			e.Line, e.Column = l, i+1
			e.Msg += "; indent with spaces, not tabs"
			break
		}
	}
	return e
}

// parseDocument checks one document strictly, decodes it, applies defaults
// and validates it. It returns nil for an empty document.
func parseDocument(file string, doc *yaml.Node) (*document, Errors) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolve(doc.Content[0])
	if root == nil || isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Line: root.Line, Column: root.Column,
			Msg: "a document must be a mapping with apiVersion, kind, metadata and spec; this one is " + describeNode(root, false)}}
	}
	var d = &document{file: file, ix: newNodeIndex(root)}
	argoErrs, fatal := d.normalizeArgo(root)
	if fatal {
		return nil, argoErrs
	}
	kindNode := lookup(root, "kind")
	allowed := strings.Join(kinds, " or ")
	if kindNode == nil || isNull(kindNode) {
		return nil, Errors{{File: file, Line: root.Line, Column: root.Column, Path: "kind",
			Msg: "kind is missing: use " + allowed}}
	}
	var obj object
	switch {
	case kindNode.Kind == yaml.ScalarNode && kindNode.Value == spec.KindRollout:
		d.rollout = new(spec.Rollout)
		obj = d.rollout
	case kindNode.Kind == yaml.ScalarNode && kindNode.Value == spec.KindAnalysisTemplate:
		d.template = new(spec.AnalysisTemplate)
		obj = d.template
	default:
		msg := "kind must be a string, not " + describeNode(kindNode, false)
		if kindNode.Kind == yaml.ScalarNode {
			msg = fmt.Sprintf("unknown kind %q", truncate(kindNode.Value, 40))
			if s := suggest(kindNode.Value, kinds); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
		}
		return nil, Errors{{File: file, Line: kindNode.Line, Column: kindNode.Column, Path: "kind",
			Msg: msg + ": use " + allowed}}
	}
	d.kind = kindNode.Value

	t := reflect.TypeOf(obj).Elem()
	w := newWalker(file, d.ix)
	w.walk(root, nil, t, "")
	d.argo = d.argo || w.argoShape
	errs := append(argoErrs, w.errs...)
	if w.tooBig {
		return nil, errs
	}
	w.cleanForDecode(root)

	// Decode twice: the untouched copy tells which zero values the user
	// wrote and SetDefaults then replaced.
	before := reflect.New(t)
	if err := decodeNode(root, before.Interface()); err != nil && len(errs) == 0 {
		errs = append(errs, decodeErrors(file, d.ix.root, err)...)
	}
	_ = decodeNode(root, obj) // same input, same error as above; a partial result is still checked
	if d.template != nil {
		w.moveArgFields(d.template)
		if d.argo {
			d.warnNoData()
		}
	}
	obj.SetDefaults()
	errs = append(errs, w.explicitZeros(root, before.Elem(), reflect.ValueOf(obj).Elem(), "")...)
	for _, fe := range obj.Validate() {
		p := spec.FieldPath(fe.Path)
		if w.isCovered(p) {
			continue
		}
		errs = append(errs, d.errorAt(p, "%s", fe.Msg))
	}
	switch {
	case d.rollout != nil:
		d.name = d.rollout.Metadata.Name
	case d.template != nil:
		d.name = d.template.Metadata.Name
	}
	return d, errs
}

// isCovered reports whether a validation error at p repeats a structural
// error already reported: at the same path, inside it, or on the object
// directly holding it (a step whose only field had the wrong type would
// otherwise also be reported as setting no field).
func (w *walker) isCovered(p spec.FieldPath) bool {
	for q := p; ; q = q.Parent() {
		if w.covered[q] {
			return true
		}
		if q == "" {
			break
		}
	}
	for c := range w.covered {
		if c.Parent() == p {
			return true
		}
	}
	return false
}

// lookup returns the value of key in a mapping node, following aliases.
func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return resolve(m.Content[i+1])
		}
	}
	return nil
}

var typeErrorLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// decodeErrors reports what yaml.v3 rejected but the strict walk did not
// catch, so no decoding problem is ever dropped.
func decodeErrors(file string, root position, err error) Errors {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Errors{{File: file, Line: root.line, Column: root.col, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var errs Errors
	for _, s := range te.Errors {
		e := Error{File: file, Msg: s}
		if m := typeErrorLineRE.FindStringSubmatch(s); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
		}
		errs = append(errs, e)
	}
	return errs
}

// assemble applies the rules that span documents: unique names per kind,
// one rollout per listen address, and template references that resolve
// with the arguments the templates need.
func assemble(docs []*document) (*Bundle, Errors) {
	b := &Bundle{docs: map[docKey]*document{}}
	var errs Errors
	var listeners []*document
	templates := map[string]*spec.AnalysisTemplate{}
	claims := map[string]*document{}
	for _, d := range docs {
		b.Warnings = append(b.Warnings, d.warnings...)
		if d.name != "" {
			k := docKey{d.kind, d.name}
			if first, ok := b.docs[k]; ok {
				errs = append(errs, d.errorAt("metadata.name", "duplicate %s name %q: already defined at %s", d.kind, d.name, first.where("metadata.name")))
				continue
			}
			b.docs[k] = d
		}
		switch {
		case d.rollout != nil:
			if l := d.rollout.Spec.Listen; l != "" {
				// Spellings differ but sockets clash: 0.0.0.0:8080 takes
				// 127.0.0.1:8080 too, localhost is 127.0.0.1.
				clash := false
				for _, first := range listeners {
					if fl := first.rollout.Spec.Listen; spec.ListenersClash(fl, l) {
						if fl == l {
							errs = append(errs, d.errorAt("spec.listen", "listen address %s is already used by Rollout %q at %s; each rollout needs its own", l, first.name, first.where("spec.listen")))
						} else {
							errs = append(errs, d.errorAt("spec.listen", "listen address %s takes the same socket as %s of Rollout %q at %s (same port, overlapping addresses); each rollout needs its own port or a distinct address", l, fl, first.name, first.where("spec.listen")))
						}
						clash = true
						break
					}
				}
				if !clash {
					listeners = append(listeners, d)
				}
			}
			for _, claim := range d.rollout.Spec.TrafficRouting.Router.Claims(d.name) {
				if first, ok := claims[claim]; ok {
					errs = append(errs, d.errorAt("spec.trafficRouting.router", "%s is already driven by Rollout %q at %s; each rollout needs its own, or the two would overwrite each other's routing", claim, first.name, first.where("spec.trafficRouting.router")))
					break
				}
				claims[claim] = d
			}
			b.Rollouts = append(b.Rollouts, *d.rollout)
			b.rolloutDocs = append(b.rolloutDocs, d)
		case d.template != nil:
			templates[d.name] = d.template
			b.Templates = append(b.Templates, *d.template)
		}
	}
	names := sortedNames(mapKeys(templates))
	argoTemplates := map[string]bool{}
	for _, d := range docs {
		if d.template != nil && d.argo {
			argoTemplates[d.name] = true
		}
	}
	for _, d := range docs {
		if d.rollout != nil && argoShaped(d, argoTemplates) {
			if _, written := d.ix.entries["spec.rollbackWindow"]; !written {
				d.warn(d.ix.locate("spec"), "spec.rollbackWindow", "%s", spec.RollbackWindowArgoNote())
				b.Warnings = append(b.Warnings, d.warnings[len(d.warnings)-1])
			}
		}
	}
	for _, d := range docs {
		if d.template != nil {
			errs = append(errs, checkComposition(d, templates, names)...)
		}
	}
	for _, d := range docs {
		if d.rollout == nil {
			continue
		}
		c := d.rollout.Spec.Strategy.Canary
		if a := c.Analysis; a != nil {
			e, w := checkRefs(d, "spec.strategy.canary.analysis", analysisRefs{a.Templates, a.Args, a.DryRun, a.MeasurementRetention}, templates, names)
			errs, b.Warnings = append(errs, e...), append(b.Warnings, w...)
		}
		for i, st := range c.Steps {
			if st.Analysis != nil {
				p := spec.FieldPath("spec.strategy.canary.steps").Index(i).Child("analysis")
				a := st.Analysis
				e, w := checkRefs(d, p, analysisRefs{a.Templates, a.Args, a.DryRun, a.MeasurementRetention}, templates, names)
				errs, b.Warnings = append(errs, e...), append(b.Warnings, w...)
			}
		}
	}
	return b, errs
}

func mapKeys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// checkRefs checks that the templates of one analysis exist and that every
// argument they need without a default is given. An argument that none of
// them declares is ignored, as Argo does, with a warning: it is usually a
// typo or a leftover.
func checkRefs(d *document, p spec.FieldPath, a analysisRefs, templates map[string]*spec.AnalysisTemplate, names []string) (errs, warnings Errors) {
	refs, args := a.refs, a.args
	declared := map[string]bool{}
	defaulted := map[string]bool{}
	type need struct{ template, arg string }
	var required []need
	var metricNames []string
	seen := map[string]bool{}
	allFound := true
	var used []string
	var flat []*spec.AnalysisTemplate
	var metrics []spec.Metric
	for i, ref := range refs {
		if ref.TemplateName == "" {
			continue // reported by validation
		}
		t, ok := templates[ref.TemplateName]
		if !ok {
			allFound = false
			msg := fmt.Sprintf("AnalysisTemplate %q is not defined in the loaded files", ref.TemplateName)
			if s := suggest(ref.TemplateName, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, d.errorAt(p.Child("templates").Index(i).Child("templateName"), "%s", msg))
			continue
		}
		used = append(used, strconv.Quote(ref.TemplateName))
		for _, t := range composed(t, templates) {
			if seen[t.Metadata.Name] {
				continue
			}
			seen[t.Metadata.Name] = true
			flat = append(flat, t)
			for _, m := range t.Spec.Metrics {
				metricNames = append(metricNames, m.Name)
				metrics = append(metrics, m)
			}
			for _, a := range t.Spec.Args {
				declared[a.Name] = true
				if a.Value == nil && a.ValueFrom == nil {
					required = append(required, need{t.Metadata.Name, a.Name})
				} else {
					defaulted[a.Name] = true
				}
			}
		}
	}
	if !allFound {
		return errs, nil
	}
	// As in Argo, an argument one template leaves open and another gives a
	// default has that default.
	required = slices.DeleteFunc(required, func(r need) bool { return defaulted[r.arg] })
	errs = append(errs, checkSelectors(d, p, a.dryRun, a.retention, metricNames)...)
	if err := checkKayentaScores(flat, metrics); err != nil {
		errs = append(errs, d.errorAt(p.Child("templates"), "%s", err))
	}
	given := map[string]bool{}
	for i, a := range args {
		given[a.Name] = true
		if a.Name != "" && !declared[a.Name] {
			msg := fmt.Sprintf("argument %q is not declared by AnalysisTemplate %s and is ignored", a.Name, strings.Join(used, ", "))
			if s := suggest(a.Name, sortedNames(declared)); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			pos := d.ix.locate(p.Child("args").Index(i).Child("name"))
			d.warn(pos, p.Child("args").Index(i).Child("name"), "%s", msg)
			warnings = append(warnings, d.warnings[len(d.warnings)-1])
		}
	}
	for _, r := range required {
		if !given[r.arg] {
			errs = append(errs, d.errorAt(p.Child("args"), "AnalysisTemplate %q needs argument %q: add {name: %s, value: ...} to args", r.template, r.arg, r.arg))
		}
	}
	return errs, warnings
}

// checkKayentaScores reports what would keep the analysis' run from
// starting because of its templates' kayentaScore blocks (conflicting
// blocks, weights of groups the run does not have), leaving out what each
// template's own lint already reports: an invalid block, or a block in a
// template alone without kayenta metrics.
func checkKayentaScores(flat []*spec.AnalysisTemplate, metrics []spec.Metric) error {
	for _, t := range flat {
		if s := t.Spec.KayentaScore; s != nil && len(spec.ValidateKayentaScore(*s)) > 0 {
			return nil
		}
	}
	score, err := spec.MergeKayentaScores(flat)
	if err != nil {
		return err
	}
	if len(flat) == 1 && len(flat[0].Spec.Templates) == 0 && !slices.ContainsFunc(metrics, func(m spec.Metric) bool {
		return m.Judge != nil && m.Judge.Method == spec.JudgeMethodKayenta
	}) {
		return nil
	}
	return spec.CheckScoreGroups(score, metrics)
}

// composed returns t and the templates it composes, each once; missing
// ones and cycles are reported by checkComposition.
func composed(t *spec.AnalysisTemplate, templates map[string]*spec.AnalysisTemplate) []*spec.AnalysisTemplate {
	seen := map[string]bool{}
	var out []*spec.AnalysisTemplate
	var walk func(*spec.AnalysisTemplate)
	walk = func(t *spec.AnalysisTemplate) {
		if seen[t.Metadata.Name] {
			return
		}
		seen[t.Metadata.Name] = true
		out = append(out, t)
		for _, ref := range t.Spec.Templates {
			if inner, ok := templates[ref.TemplateName]; ok {
				walk(inner)
			}
		}
	}
	walk(t)
	return out
}

// checkComposition checks a template's templates: each exists, and none
// leads back to the template itself.
func checkComposition(d *document, templates map[string]*spec.AnalysisTemplate, names []string) Errors {
	var errs Errors
	// The template's own dryRun and measurementRetention lists apply to
	// its metrics and those it composes.
	var metrics []string
	for _, t := range composed(d.template, templates) {
		for _, m := range t.Spec.Metrics {
			metrics = append(metrics, m.Name)
		}
	}
	errs = append(errs, checkSelectors(d, "spec", d.template.Spec.DryRun, d.template.Spec.MeasurementRetention, metrics)...)
	for i, ref := range d.template.Spec.Templates {
		if ref.TemplateName == "" || ref.TemplateName == d.name {
			continue // reported by validation
		}
		p := spec.FieldPath("spec.templates").Index(i).Child("templateName")
		inner, ok := templates[ref.TemplateName]
		if !ok {
			msg := fmt.Sprintf("AnalysisTemplate %q is not defined in the loaded files", ref.TemplateName)
			if s := suggest(ref.TemplateName, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, d.errorAt(p, "%s", msg))
			continue
		}
		for _, t := range composed(inner, templates) {
			if t.Metadata.Name == d.name {
				errs = append(errs, d.errorAt(p, "AnalysisTemplate %q composes %q, which leads back to it: remove the cycle", d.name, ref.TemplateName))
				break
			}
		}
	}
	return errs
}

// moveArgFields gives each metric the fields it wrote as placeholders.
func (w *walker) moveArgFields(t *spec.AnalysisTemplate) {
	for p, text := range w.argFields {
		var i int
		var name string
		if _, err := fmt.Sscanf(string(p), "spec.metrics[%d].%s", &i, &name); err != nil || i < 0 || i >= len(t.Spec.Metrics) {
			continue
		}
		m := &t.Spec.Metrics[i]
		if m.ArgFields == nil {
			m.ArgFields = map[string]string{}
		}
		m.ArgFields[name] = text
	}
}

// analysisRefs is what one analysis (background or a step's) asks of its
// templates.
type analysisRefs struct {
	refs      []spec.TemplateRef
	args      []spec.Arg
	dryRun    []spec.MetricSelector
	retention []spec.MeasurementRetention
}

// checkSelectors reports dryRun and measurementRetention rules that match
// none of the metrics, as the run would (Argo refuses them too), so a typo
// fails lint instead of aborting the rollout.
func checkSelectors(d *document, p spec.FieldPath, dryRun []spec.MetricSelector, retention []spec.MeasurementRetention, metrics []string) Errors {
	var errs Errors
	check := func(q spec.FieldPath, pattern string) {
		re, err := regexp.Compile(pattern)
		if err != nil || pattern == "" {
			return // reported by validation
		}
		if !slices.ContainsFunc(metrics, re.MatchString) {
			msg := fmt.Sprintf("metricName %q matches none of the metrics (%s)", pattern, strings.Join(metrics, ", "))
			if s := suggest(pattern, metrics); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			errs = append(errs, d.errorAt(q, "%s", msg))
		}
	}
	for i, s := range dryRun {
		check(p.Child("dryRun").Index(i).Child("metricName"), s.MetricName)
	}
	for i, r := range retention {
		check(p.Child("measurementRetention").Index(i).Child("metricName"), r.MetricName)
	}
	return errs
}
