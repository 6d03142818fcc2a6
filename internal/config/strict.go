package config

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// maxNodes bounds the work done for one document. Aliases can make a small
// file expand exponentially; past this many values the document is rejected
// instead of tying up the process.
const maxNodes = 100_000

// position is a 1-based line and column in a file.
type position struct{ line, col int }

func posOf(n *yaml.Node) position { return position{n.Line, n.Column} }

// indexEntry records where a field path appears in the file.
type indexEntry struct {
	value     position
	key       position
	hasKey    bool
	container bool // the value is a mapping or a list
}

// nodeIndex maps field paths to file positions so a validation error on
// spec.stable.endpoints[0] can be reported at the line that holds it.
type nodeIndex struct {
	root    position
	entries map[spec.FieldPath]indexEntry
}

func newNodeIndex(root *yaml.Node) *nodeIndex {
	return &nodeIndex{root: posOf(root), entries: map[spec.FieldPath]indexEntry{}}
}

// locate returns the position for p. An existing scalar is reported at its
// value, a mapping or list at its key. A path that does not exist (a
// required field left out) is reported at its nearest existing ancestor's
// key, which is where the user has to add it.
func (ix *nodeIndex) locate(p spec.FieldPath) position {
	if ix == nil {
		return position{}
	}
	if e, ok := ix.entries[p]; ok {
		if e.container && e.hasKey {
			return e.key
		}
		return e.value
	}
	for q := p.Parent(); q != ""; q = q.Parent() {
		if e, ok := ix.entries[q]; ok {
			if e.hasKey {
				return e.key
			}
			return e.value
		}
	}
	return ix.root
}

// walker checks a YAML node tree against a Go type before anything is
// decoded: unknown fields, wrong types and duplicate keys, each with its
// position. yaml.v3 alone would report the first few as "line 3: cannot
// unmarshal !!str into int" and silently ignore unknown fields.
type walker struct {
	file    string
	ix      *nodeIndex
	errs    Errors
	covered map[spec.FieldPath]bool // paths with a structural error
	bad     []*yaml.Node            // values of the wrong type, nulled before decoding
	dropped map[*yaml.Node]bool     // keys of duplicate or malformed pairs, removed before decoding
	nodes   int
	tooBig  bool
	// argFields are metric fields written as placeholders (count:
	// "{{args.count}}"), by path; they are nulled for decoding and given
	// to the metric's ArgFields afterwards.
	argFields map[spec.FieldPath]string
	// argoShape is set by shapes only Argo users write (a duration as a
	// bare number of seconds).
	argoShape bool
}

func newWalker(file string, ix *nodeIndex) *walker {
	return &walker{file: file, ix: ix, covered: map[spec.FieldPath]bool{}, dropped: map[*yaml.Node]bool{}}
}

func (w *walker) errorAt(pos position, p spec.FieldPath, format string, args ...any) {
	w.errs = append(w.errs, Error{File: w.file, Line: pos.line, Column: pos.col, Path: string(p), Msg: fmt.Sprintf(format, args...)})
}

// resolve follows aliases to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// cleanForDecode turns every value of the wrong type into null. yaml.v3 aborts the
// whole decode when an Unmarshaler fails (one bad duration would hide every
// later field); with the bad values gone the rest decodes and is validated.
// Pairs with a duplicate or non-string key are removed for the same reason:
// yaml.v3 drops a whole mapping that has a duplicate key.
func (w *walker) cleanForDecode(root *yaml.Node) {
	for _, n := range w.bad {
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	if len(w.dropped) > 0 {
		w.dropPairs(root, map[*yaml.Node]bool{})
	}
}

func (w *walker) dropPairs(n *yaml.Node, visited map[*yaml.Node]bool) {
	if n == nil || visited[n] {
		return
	}
	visited[n] = true
	if n.Kind == yaml.MappingNode {
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !w.dropped[n.Content[i]] {
				kept = append(kept, n.Content[i], n.Content[i+1])
			}
		}
		n.Content = kept
	}
	for _, c := range n.Content {
		w.dropPairs(c, visited)
	}
	w.dropPairs(n.Alias, visited)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

var (
	metricType         = reflect.TypeFor[spec.Metric]()
	durationType       = reflect.TypeFor[spec.Duration]()
	rollbackWindowType = reflect.TypeFor[spec.RollbackWindow]()
)

// argField records a metric field written as a placeholder, such as
// count: "{{args.count}}", which Argo allows for its number and duration
// fields; the run fills and parses it.
func (w *walker) argField(n, key *yaml.Node, p spec.FieldPath) bool {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" || !strings.Contains(n.Value, "{{") {
		return false
	}
	name := p[strings.LastIndexByte(string(p), '.')+1:]
	if !slices.Contains(spec.ArgFieldNames, string(name)) {
		return false
	}
	w.ix.entries[p] = indexEntry{value: posOf(n), key: posOf(key), hasKey: true}
	if w.argFields == nil {
		w.argFields = map[spec.FieldPath]string{}
	}
	w.argFields[p] = n.Value
	w.bad = append(w.bad, n)
	return true
}

// walk checks n against type t at path p; key is the mapping key that
// holds n, if any.
func (w *walker) walk(n, key *yaml.Node, t reflect.Type, p spec.FieldPath) {
	n = resolve(n)
	if n == nil {
		return
	}
	w.nodes++
	if w.nodes > maxNodes {
		if !w.tooBig {
			w.tooBig = true
			w.errorAt(w.ix.root, "", "document is too large: more than %d values; check for aliases that expand recursively", maxNodes)
		}
		return
	}
	e := indexEntry{value: posOf(n), container: n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode}
	if key != nil {
		e.key, e.hasKey = posOf(key), true
	}
	w.ix.entries[p] = e

	if isNull(n) {
		return // null is the zero value: the field is unset
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if t == durationType && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" ||
			t == rollbackWindowType && n.Kind == yaml.MappingNode {
			w.argoShape = true
		}
		u := reflect.New(t).Interface().(yaml.Unmarshaler)
		if err := u.UnmarshalYAML(n); err != nil {
			w.typeError(n, p, "%s", err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		w.walkStruct(n, t, p)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.wrongType(n, t, p)
			return
		}
		for i, item := range n.Content {
			w.walk(item, nil, t.Elem(), p.Index(i))
		}
	case reflect.Map:
		w.walkMap(n, t, p)
	default:
		w.walkScalar(n, t, p)
	}
}

func (w *walker) typeError(n *yaml.Node, p spec.FieldPath, format string, args ...any) {
	w.covered[p] = true
	w.bad = append(w.bad, n)
	w.errorAt(posOf(n), p, format, args...)
}

// pairs returns the key/value pairs of a mapping, with the pairs of merged
// mappings (<<: *anchor) first so that explicit keys override them, as in
// yaml.v3's decoder. merged reports which pairs came from a merge: those may
// repeat a key without it being a duplicate.
func (w *walker) pairs(n *yaml.Node, depth int) (keys, values []*yaml.Node, merged []bool) {
	var ownK, ownV []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" && depth < 10 {
			for _, m := range mergeSources(v) {
				mk, mv, _ := w.pairs(m, depth+1)
				keys = append(keys, mk...)
				values = append(values, mv...)
				for range mk {
					merged = append(merged, true)
				}
			}
			continue
		}
		ownK, ownV = append(ownK, k), append(ownV, v)
	}
	keys = append(keys, ownK...)
	values = append(values, ownV...)
	for range ownK {
		merged = append(merged, false)
	}
	return keys, values, merged
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	v = resolve(v)
	if v == nil {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range v.Content {
			if c = resolve(c); c != nil && c.Kind == yaml.MappingNode {
				out = append(out, c)
			}
		}
		return out
	}
	return nil
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, p spec.FieldPath) {
	if n.Kind != yaml.MappingNode {
		w.wrongType(n, t, p)
		return
	}
	fields := fieldsOf(t)
	keys, values, merged := w.pairs(n, 0)
	seen := map[string]*yaml.Node{}
	for i, k := range keys {
		if k.Kind != yaml.ScalarNode {
			w.dropped[k] = true
			w.errorAt(posOf(k), p, "a field name must be a plain string")
			continue
		}
		name := k.Value
		if !merged[i] {
			// A merged key may be overridden; only two explicit keys clash.
			if first, dup := seen[name]; dup {
				w.covered[p.Child(name)] = true
				w.dropped[k] = true
				w.errorAt(posOf(k), p.Child(name), "duplicate field %q: already set at line %d", name, first.Line)
				continue
			}
			seen[name] = k
		}
		f, ok := fields.byName[name]
		if !ok {
			w.unknownField(k, fields, p)
			continue
		}
		if t == metricType {
			if !merged[i] {
				// An explicit key overrides what a merge (<<: *base) gave.
				delete(w.argFields, p.Child(name))
			}
			if w.argField(values[i], k, p.Child(name)) {
				continue
			}
		}
		w.walk(values[i], k, f.Type, p.Child(name))
	}
}

func (w *walker) unknownField(k *yaml.Node, fields *structFields, p spec.FieldPath) {
	if s := suggest(k.Value, fields.names); s != "" {
		// The field the user meant is probably reported as missing by
		// validation; this message already says how to fix it.
		w.covered[p.Child(s)] = true
		w.errorAt(posOf(k), p.Child(k.Value), "unknown field %q (did you mean %q?)", k.Value, s)
		return
	}
	w.errorAt(posOf(k), p.Child(k.Value), "unknown field %q: allowed fields are %s", k.Value, strings.Join(fields.names, ", "))
}

func (w *walker) walkMap(n *yaml.Node, t reflect.Type, p spec.FieldPath) {
	if n.Kind != yaml.MappingNode {
		w.wrongType(n, t, p)
		return
	}
	keys, values, merged := w.pairs(n, 0)
	seen := map[string]*yaml.Node{}
	for i, k := range keys {
		if k.Kind != yaml.ScalarNode {
			w.dropped[k] = true
			w.errorAt(posOf(k), p, "a key must be a plain string")
			continue
		}
		if !merged[i] {
			if first, dup := seen[k.Value]; dup {
				w.covered[p.Key(k.Value)] = true
				w.dropped[k] = true
				w.errorAt(posOf(k), p.Key(k.Value), "duplicate key %q: already set at line %d", k.Value, first.Line)
				continue
			}
			seen[k.Value] = k
		}
		w.walk(values[i], k, t.Elem(), p.Key(k.Value))
	}
}

// walkScalar is stricter than yaml.v3: a quoted "5" is not a number and
// yes/no are not booleans, because YAML's guesses there cause surprises.
func (w *walker) walkScalar(n *yaml.Node, t reflect.Type, p spec.FieldPath) {
	if n.Kind != yaml.ScalarNode {
		w.wrongType(n, t, p)
		return
	}
	tag := n.ShortTag()
	switch t.Kind() {
	case reflect.String:
		return // any scalar is text: version: 1.10 stays "1.10"
	case reflect.Bool:
		if tag != "!!bool" {
			w.wrongType(n, t, p)
		}
		return
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if tag != "!!int" {
			w.wrongType(n, t, p)
			return
		}
	case reflect.Float32, reflect.Float64:
		if tag != "!!int" && tag != "!!float" {
			w.wrongType(n, t, p)
			return
		}
	default:
		return
	}
	if err := decodeNode(n, reflect.New(t).Interface()); err != nil {
		w.typeError(n, p, "%s is out of range for %s", n.Value, describeType(t))
	}
}

// wrongType reports a value of the wrong shape, never echoing values that
// may be secrets.
func (w *walker) wrongType(n *yaml.Node, t reflect.Type, p spec.FieldPath) {
	msg := fmt.Sprintf("expected %s, got %s", describeType(t), describeNode(n, t != secretRefType))
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		if _, err := strconv.ParseFloat(n.Value, 64); err == nil && isNumber(t) {
			msg += "; remove the quotes"
		}
	}
	w.typeError(n, p, "%s", msg)
}

var secretRefType = reflect.TypeFor[spec.SecretRef]()

func isNumber(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	}
	return t.String()
}

func describeNode(n *yaml.Node, showValue bool) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	var what, article string
	switch n.ShortTag() {
	case "!!int":
		what, article = "integer", "an"
	case "!!float":
		what, article = "number", "a"
	case "!!bool":
		what, article = "boolean", "a"
	default:
		if !showValue {
			return "a string"
		}
		return "the string " + strconv.Quote(truncate(n.Value, 40))
	}
	if !showValue {
		return article + " " + what
	}
	return "the " + what + " " + truncate(n.Value, 40)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}

// decodeNode is yaml.v3's Node.Decode with its panics turned into errors,
// so no input can take the process down.
func decodeNode(n *yaml.Node, out any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return n.Decode(out)
}

// structFields lists the YAML field names of a struct type.
type structFields struct {
	byName map[string]reflect.StructField
	names  []string // in declaration order, for messages
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	fs := &structFields{byName: map[string]reflect.StructField{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fs.byName[name] = f
		fs.names = append(fs.names, name)
	}
	fieldCache.Store(t, fs)
	return fs
}

// suggest returns the known name closest to a misspelt one, or "" when
// nothing is close enough to be a plausible typo.
func suggest(got string, known []string) string {
	best, bestD := "", -1
	lg := strings.ToLower(got)
	for _, k := range known {
		d := levenshtein(lg, strings.ToLower(k))
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	limit := 1
	switch n := len([]rune(got)); {
	case n > 8:
		limit = 3
	case n > 4:
		limit = 2
	}
	if bestD < 0 || bestD > limit {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 20 // too long to be a typo of a field name
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// sortedNames returns the keys of a set in order, for stable messages.
func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
