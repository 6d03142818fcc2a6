// Package docgen renders docs/configuration-reference.md from the Go types
// of internal/spec, so the reference lists exactly the fields the loader
// accepts, under the names it accepts, with the defaults the code applies.
//
// Everything in a row is taken from the code where the code knows it:
//   - field names and nesting come from the yaml tags, by reflection;
//   - descriptions are the fields' doc comments in internal/spec (read with
//     go/parser), or, for fields without one, the text in notes.go;
//   - a default is what spec.SetDefaults puts into the field when it is left
//     out of an otherwise complete document; defaults applied later (by a
//     judge, a provider) are in notes.go, next to the constant they mirror;
//   - "required" means that leaving the field out of a complete, valid
//     document makes spec.Validate report an error at that field;
//   - allowed values listed in notes.go are checked against spec.Validate:
//     each must validate, and a value outside the list must not.
//
// The generator fails when a field has no description, when a note names a
// field that no longer exists, or when the probe documents in probe.go no
// longer validate, so the reference cannot silently fall behind the code.
// The package's test compares its output with the committed file.
package docgen

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// row is one field of the reference.
type row struct {
	path     string // as users write it: spec.trafficRouting.headerRoutes[].to
	goKey    string // "GoType.GoField"
	segs     []seg  // how to reach the field in a probe document
	typ      string
	def      string
	defRaw   bool // def is Markdown already (from laterDefaults)
	required bool
	desc     string
	values   []string
}

// seg is one step from a struct to one of its fields. into says how to go
// from the field's value to the struct holding the next segment: "" (the
// field is a struct or a pointer to one), "[]" (each element of a list) or
// "[NAME]" (each value of a map).
type seg struct {
	index []int
	name  string
	into  string
}

// kind is one document kind of the reference.
type kind struct {
	name  string
	typ   reflect.Type
	probe func() object
}

type object interface {
	SetDefaults()
	Validate() spec.FieldErrors
}

var durationType = reflect.TypeFor[spec.Duration]()

// ConfigReference returns the Markdown of docs/configuration-reference.md.
// specDir is the directory of package spec, whose doc comments become the
// descriptions.
func ConfigReference(specDir string) ([]byte, error) {
	comments, err := fieldComments(specDir)
	if err != nil {
		return nil, err
	}
	kinds := []kind{
		{spec.KindRollout, reflect.TypeFor[spec.Rollout](), func() object { return probeRollout() }},
		{spec.KindAnalysisTemplate, reflect.TypeFor[spec.AnalysisTemplate](), func() object { return probeTemplate() }},
	}
	var problems []string
	tables := map[string][]row{}
	used := map[string]bool{}
	for _, k := range kinds {
		p := k.probe()
		p.SetDefaults()
		if errs := p.Validate(); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("the %s probe in probe.go does not validate any more; update it: %v", k.name, errs))
			continue
		}
		rows := walkType(k.typ, "", nil, comments)
		for i := range rows {
			r := &rows[i]
			if d, ok := typeNotes[r.goKey]; ok {
				used["type:"+r.goKey] = true
				if r.desc == "" {
					r.desc = d
				}
			}
			if d, ok := fieldNotes[r.path]; ok {
				used[r.path] = true
				if r.desc == "" {
					r.desc = d
				} else {
					r.desc += " " + d
				}
			}
			if r.desc == "" {
				problems = append(problems, fmt.Sprintf("%s %s has no description: add a doc comment to the field in internal/spec or a note in notes.go", k.name, r.path))
			}
			if d, ok := overrides[r.path]; ok {
				used["override:"+r.path] = true
				r.desc = d
			}
			r.def, r.required = probeField(k.probe, r.segs)
			if d, ok := laterDefaults[r.path]; ok {
				used["default:"+r.path] = true
				if r.def != "" {
					problems = append(problems, fmt.Sprintf("%s %s: SetDefaults now sets %s; remove its entry from laterDefaults", k.name, r.path, r.def))
				}
				r.def, r.defRaw = d, true
			}
			if vals, ok := enumValues[r.path]; ok {
				used["values:"+r.path] = true
				r.values = vals
				problems = append(problems, checkValues(k.probe, r.segs, r.path, vals)...)
			}
		}
		tables[k.name] = rows
	}
	for _, m := range []struct {
		prefix string
		keys   []string
	}{{"", keys(fieldNotes)}, {"type:", keys(typeNotes)}, {"default:", keys(laterDefaults)}, {"override:", keys(overrides)}, {"values:", keys(enumValues)}} {
		for _, k := range m.keys {
			if !used[m.prefix+k] {
				problems = append(problems, fmt.Sprintf("notes.go names %q, which is not a field (any more)", k))
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("configuration reference:\n  %s", strings.Join(problems, "\n  "))
	}
	return render(tables), nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// walkType lists the rows of struct type t below prefix.
func walkType(t reflect.Type, prefix string, segs []seg, comments map[string]string) []row {
	var rows []row
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		ft := deref(f.Type)
		s := seg{index: f.Index, name: name}
		r := row{path: p, goKey: t.Name() + "." + f.Name, typ: typeName(f.Type), desc: comments[t.Name()+"."+f.Name]}
		var children []row
		switch {
		case ft.Kind() == reflect.Struct:
			children = walkType(ft, p, append(clone(segs), s), comments)
		case ft.Kind() == reflect.Slice && deref(ft.Elem()).Kind() == reflect.Struct:
			s.into = "[]"
			children = walkType(deref(ft.Elem()), p+"[]", append(clone(segs), s), comments)
		case ft.Kind() == reflect.Map && deref(ft.Elem()).Kind() == reflect.Struct:
			s.into = "[NAME]"
			children = walkType(deref(ft.Elem()), p+"[NAME]", append(clone(segs), s), comments)
		}
		r.segs = append(clone(segs), seg{index: f.Index, name: name})
		rows = append(rows, r)
		rows = append(rows, children...)
	}
	return rows
}

func clone(s []seg) []seg { return append([]seg(nil), s...) }

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// typeName names a Go type the way the YAML is written.
func typeName(t reflect.Type) string {
	t = deref(t)
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return "integer"
	case t.Kind() == reflect.Float64:
		return "number"
	case t.Kind() == reflect.Struct:
		return "object"
	case t.Kind() == reflect.Slice:
		e := typeName(t.Elem())
		if e == "object" {
			return "list of objects"
		}
		return "list of " + e + "s"
	case t.Kind() == reflect.Map:
		e := typeName(t.Elem())
		if e == "object" {
			return "map of objects"
		}
		return "map of " + e + "s"
	}
	return t.String()
}

// visit calls fn with every value the field at segs has in v (one per
// list element or map value on the way), settable.
func visit(v reflect.Value, segs []seg, fn func(reflect.Value)) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	s := segs[0]
	fv := v.FieldByIndex(s.index)
	if len(segs) == 1 {
		fn(fv)
		return
	}
	switch s.into {
	case "":
		visit(fv, segs[1:], fn)
	case "[]":
		for i := 0; i < fv.Len(); i++ {
			visit(fv.Index(i), segs[1:], fn)
		}
	case "[NAME]":
		iter := fv.MapRange()
		type kv struct{ k, v reflect.Value }
		var entries []kv
		for iter.Next() {
			e := reflect.New(fv.Type().Elem()).Elem()
			e.Set(iter.Value())
			entries = append(entries, kv{iter.Key(), e})
		}
		for _, e := range entries {
			visit(e.v, segs[1:], fn)
			fv.SetMapIndex(e.k, e.v)
		}
	}
}

// probeField leaves the field out of a fresh probe document, applies the
// defaults and validates: what SetDefaults put back is the default, and an
// error at the field means it is required.
func probeField(probe func() object, segs []seg) (def string, required bool) {
	p := probe()
	v := reflect.ValueOf(p)
	visit(v, segs, func(f reflect.Value) { f.Set(reflect.Zero(f.Type())) })
	p.SetDefaults()
	isStruct := deref(fieldType(v.Type(), segs)).Kind() == reflect.Struct
	if !isStruct { // an object's defaults are listed on its fields
		visit(v, segs, func(f reflect.Value) {
			if def == "" && !f.IsZero() {
				def = format(f)
			}
		})
		if def != "" {
			return def, false
		}
	}
	want := normalize(pathOf(segs))
	for _, e := range p.Validate() {
		got := normalize(e.Path)
		if got == want || isStruct && strings.HasPrefix(got, want+".") {
			return "", true
		}
	}
	return "", false
}

// checkValues checks that every listed value of an enum field validates
// and that a value outside the list does not.
func checkValues(probe func() object, segs []seg, path string, vals []string) []string {
	var problems []string
	try := func(val string) bool {
		p := probe()
		v := reflect.ValueOf(p)
		visit(v, segs, func(f reflect.Value) {
			switch {
			case f.Kind() == reflect.String:
				f.SetString(val)
			case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
				f.Set(reflect.ValueOf([]string{val}))
			}
		})
		p.SetDefaults()
		want := normalize(path)
		for _, e := range p.Validate() {
			if got := normalize(e.Path); got == want || strings.HasPrefix(got, want+"[") {
				return false
			}
		}
		return true
	}
	for _, val := range vals {
		if !try(val) {
			problems = append(problems, fmt.Sprintf("%s: the listed value %q does not validate", path, val))
		}
	}
	if try("not-a-listed-value") {
		problems = append(problems, fmt.Sprintf("%s: a value outside %v validates, so the list of values is not the rule", path, vals))
	}
	return problems
}

func fieldType(t reflect.Type, segs []seg) reflect.Type {
	for i, s := range segs {
		t = deref(t)
		f := t.FieldByIndex(s.index)
		t = f.Type
		if i < len(segs)-1 && s.into != "" {
			t = deref(t).Elem()
		}
	}
	return t
}

func pathOf(segs []seg) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.name)
		if i < len(segs)-1 {
			b.WriteString(s.into)
		}
	}
	return b.String()
}

var indexRE = regexp.MustCompile(`\[[^\]]*\]`)

// normalize turns the indexes and keys of a path into [].
func normalize(p string) string { return indexRE.ReplaceAllString(p, "[]") }

// format writes a default the way it is written in YAML.
func format(v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Type() == durationType {
		return formatDuration(time.Duration(v.Int()))
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

// formatDuration drops the zero units time.Duration.String adds: 24h, not
// 24h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// fieldComments reads the doc comments of the struct fields of package spec,
// keyed "Type.Field", joined into one paragraph.
func fieldComments(dir string) (map[string]string, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return false
			}
			for _, fld := range st.Fields.List {
				text := fld.Doc.Text()
				if text == "" && fld.Comment != nil {
					text = fld.Comment.Text()
				}
				for _, id := range fld.Names {
					out[ts.Name.Name+"."+id.Name] = strings.Join(strings.Fields(text), " ")
				}
			}
			return false
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no struct fields found in %s: is it internal/spec?", dir)
	}
	return out, nil
}

// render writes the reference.
func render(tables map[string][]row) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	for _, k := range []string{spec.KindRollout, spec.KindAnalysisTemplate} {
		fmt.Fprintf(&b, "\n## %s\n\n", k)
		b.WriteString(intro[k])
		b.WriteString("\n| field | type | default | description |\n|---|---|---|---|\n")
		for _, r := range tables[k] {
			def := "—"
			switch {
			case r.defRaw:
				def = r.def
			case r.def != "":
				def = "`" + r.def + "`"
			case r.required:
				def = "**required**"
			}
			typ := r.typ
			if len(r.values) > 0 {
				quoted := make([]string, len(r.values))
				for i, v := range r.values {
					quoted[i] = "`" + v + "`"
				}
				typ += ": " + strings.Join(quoted, ", ")
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.path, cell(typ), cell(def), cell(r.desc))
		}
	}
	b.WriteString("\n## Event types\n\nThe values of `spec.notifications[].on`, besides `\"*\"` for all of them (SPEC §6.4):\n\n")
	for _, e := range spec.EventTypes {
		fmt.Fprintf(&b, "- `%s`\n", e)
	}
	b.WriteString(footer)
	return b.Bytes()
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
