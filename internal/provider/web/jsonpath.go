package web

// This file evaluates the JSONPath subset that Argo Rollouts users write in
// a web metric's jsonPath: a root, object fields and array indexes, e.g.
// `{$.data.result[0]['value']}`. It is written by hand because none of our
// dependencies carries a JSONPath library, and the small Go ones available
// are either unmaintained or implement a different dialect (Kubernetes'
// template language, RFC 9535 node lists) whose wildcards, filters and
// multi-value results a metric that needs exactly one value cannot use. A
// path selects at most one value, so the evaluator is a loop over steps;
// everything outside the subset is rejected with an error that names it,
// rather than half-supported.
//
// Grammar (whitespace allowed around the whole path and inside brackets):
//
//	path    = "{" inner "}" | inner
//	inner   = ( "$" | "" ) step*          an empty path selects the whole document
//	step    = "." name | "[" index "]" | "[" quoted "]"
//	name    = 1*( letter | digit | "_" | "-" )
//	index   = [ "-" ] 1*digit              negative counts from the end
//	quoted  = "'" chars "'" | `"` chars `"`   with \\, \' and \" escapes

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/coalmine-dev/coalmine/internal/provider"
)

// step is one selector: a field name (isIndex false) or an array index.
type step struct {
	name    string
	index   int
	isIndex bool
}

// jsonPath is a parsed path. The zero value selects the whole document.
type jsonPath struct {
	steps []step
}

// parsePath parses a path in the subset described above.
func parsePath(src string) (jsonPath, error) {
	s := strings.TrimSpace(src)
	if strings.HasPrefix(s, "{") {
		if !strings.HasSuffix(s, "}") {
			return jsonPath{}, fmt.Errorf("jsonPath %q: missing the closing }", src)
		}
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	switch {
	case strings.Contains(s, "{"):
		return jsonPath{}, fmt.Errorf("jsonPath %q: only one {…} expression is supported, with no text around it", src)
	case strings.Contains(s, "}"):
		return jsonPath{}, fmt.Errorf("jsonPath %q: } without an opening {", src)
	}
	s = strings.TrimPrefix(s, "$")
	var p jsonPath
	for i := 0; i < len(s); {
		fail := func(format string, args ...any) (jsonPath, error) {
			return jsonPath{}, fmt.Errorf("jsonPath %q: at %q: %s", src, s[i:], fmt.Sprintf(format, args...))
		}
		switch s[i] {
		case '.':
			j := i + 1
			if j < len(s) && s[j] == '.' {
				return fail("recursive descent (..) is not supported: write the full path")
			}
			for j < len(s) {
				r, size := utf8.DecodeRuneInString(s[j:])
				if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-') {
					break
				}
				j += size
			}
			if j == i+1 {
				if j < len(s) && s[j] == '*' {
					return fail("wildcards (*) are not supported: a metric needs exactly one value")
				}
				return fail("a field name must follow '.' (use ['name'] for other characters)")
			}
			p.steps = append(p.steps, step{name: s[i+1 : j]})
			i = j
		case '[':
			st, n, err := parseBracket(s[i:])
			if err != nil {
				return fail("%s", err)
			}
			p.steps = append(p.steps, st)
			i += n
		default:
			if i == 0 {
				return fail("a path starts with $, '.' or '['")
			}
			return fail("expected '.' or '[' before it")
		}
	}
	return p, nil
}

// parseBracket parses "[ … ]" at the start of s and returns the step and
// the number of bytes consumed.
func parseBracket(s string) (step, int, error) {
	i := 1
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	skip()
	if i == len(s) {
		return step{}, 0, errors.New("missing ]")
	}
	var st step
	switch c := s[i]; {
	case c == '\'' || c == '"':
		name, n, err := parseQuoted(s[i:])
		if err != nil {
			return step{}, 0, err
		}
		st, i = step{name: name}, i+n
	case c == '-' || (c >= '0' && c <= '9'):
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(s[i:j])
		if err != nil {
			return step{}, 0, fmt.Errorf("invalid array index %q", s[i:j])
		}
		st, i = step{index: n, isIndex: true}, j
	case c == '*':
		return step{}, 0, errors.New("wildcards ([*]) are not supported: a metric needs exactly one value")
	case c == '?' || c == '(' || c == '@':
		return step{}, 0, errors.New("filter and script expressions are not supported: select by index or name")
	default:
		return step{}, 0, errors.New("expected an array index or a quoted name in []")
	}
	skip()
	if i == len(s) {
		return step{}, 0, errors.New("missing ]")
	}
	switch s[i] {
	case ']':
		return st, i + 1, nil
	case ':':
		return step{}, 0, errors.New("array slices ([a:b]) are not supported: select one index")
	case ',':
		return step{}, 0, errors.New("unions ([a,b]) are not supported: a metric needs exactly one value")
	}
	return step{}, 0, errors.New("expected ] after the index or name")
}

// parseQuoted parses a quoted name at the start of s and returns it and the
// number of bytes consumed.
func parseQuoted(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case q:
			return b.String(), i + 1, nil
		case '\\':
			if i+1 == len(s) {
				return "", 0, errors.New("unterminated quoted name")
			}
			i++
			switch e := s[i]; e {
			case '\\', '\'', '"':
				b.WriteByte(e)
			default:
				return "", 0, fmt.Errorf("unknown escape \\%c in a quoted name (only \\\\, \\' and \\\" are allowed)", e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errors.New("unterminated quoted name")
}

// String returns the canonical form: $ followed by .name where the name
// allows it, ['name'] otherwise, and [index].
func (p jsonPath) String() string {
	var b strings.Builder
	b.WriteByte('$')
	for _, st := range p.steps {
		b.WriteString(st.String())
	}
	return b.String()
}

func (st step) String() string {
	if st.isIndex {
		return "[" + strconv.Itoa(st.index) + "]"
	}
	plain := st.name != ""
	for _, r := range st.name {
		plain = plain && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-')
	}
	if plain && utf8.ValidString(st.name) {
		return "." + st.name
	}
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "['" + r.Replace(st.name) + "']"
}

// eval returns the value the path selects in doc, a document decoded by
// encoding/json into any. A missing field, an index outside the array, or
// a null on the way is no data (wrapping provider.ErrNoData); a step that
// does not fit the document's shape (a field of an array, an index of an
// object) is an error, because it means the endpoint's answer is not what
// the metric expects.
func (p jsonPath) eval(doc any) (any, error) {
	cur := doc
	for i, st := range p.steps {
		at := jsonPath{steps: p.steps[:i]}
		if cur == nil {
			return nil, fmt.Errorf("%s is null: %w", at, provider.ErrNoData)
		}
		if st.isIndex {
			arr, ok := cur.([]any)
			if !ok {
				return nil, fmt.Errorf("%s is %s, not an array, so %s cannot index it", at, kind(cur), st)
			}
			idx := st.index
			if idx < 0 {
				idx += len(arr)
			}
			if idx < 0 || idx >= len(arr) {
				return nil, fmt.Errorf("%s has %d elements, no index %d: %w", at, len(arr), st.index, provider.ErrNoData)
			}
			cur = arr[idx]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is %s, not an object, so it has no field %q", at, kind(cur), st.name)
		}
		v, ok := obj[st.name]
		if !ok {
			return nil, fmt.Errorf("%s has no field %q: %w", at, st.name, provider.ErrNoData)
		}
		cur = v
	}
	if cur == nil {
		return nil, fmt.Errorf("%s is null: %w", p, provider.ErrNoData)
	}
	return cur, nil
}

// kind names a decoded JSON value's type for messages.
func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("a %T", v)
}
