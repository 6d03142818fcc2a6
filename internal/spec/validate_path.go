package spec

import (
	"strconv"
	"strings"
	"unicode"
)

// FieldPath is the location of a field in a document, written the way users
// see it in YAML: "spec.strategy.canary.steps[2].setWeight",
// "spec.notifications[0].webhook.headers[X-Source]". Validation builds paths
// with these methods and internal/config builds its node index with the same
// methods, so the two always agree on the spelling.
type FieldPath string

// Child is the path of the field name inside p.
func (p FieldPath) Child(name string) FieldPath {
	if p == "" {
		return FieldPath(name)
	}
	return p + "." + FieldPath(name)
}

// Index is the path of list item i inside p.
func (p FieldPath) Index(i int) FieldPath {
	return p + "[" + FieldPath(strconv.Itoa(i)) + "]"
}

// Key is the path of map entry k inside p. Keys that could be misread
// (brackets, dots, quotes, spaces, control characters) are quoted, so a path
// is always one unambiguous line.
func (p FieldPath) Key(k string) FieldPath {
	if k == "" || strings.ContainsFunc(k, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '[' || r == ']' || r == '.' || r == '"' || !unicode.IsPrint(r)
	}) {
		k = strconv.Quote(k)
	}
	return p + "[" + FieldPath(k) + "]"
}

// Parent is the enclosing path, "" for a top-level field. Map keys that
// themselves contain brackets or dots may be split in the wrong place; the
// result is then still an ancestor-like prefix, which is all callers need to
// find the nearest existing node.
func (p FieldPath) Parent() FieldPath {
	s := string(p)
	if s == "" {
		return ""
	}
	if s[len(s)-1] == ']' {
		for i := len(s) - 1; i >= 0; i-- {
			if s[i] == '[' {
				return FieldPath(s[:i])
			}
		}
		return ""
	}
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case '.':
			return FieldPath(s[:i])
		case ']':
			return FieldPath(s[:i+1])
		}
	}
	return ""
}

func (p FieldPath) String() string { return string(p) }
