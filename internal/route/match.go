package route

import (
	"bytes"
	"fmt"
	"regexp"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// matchKind says how a StringMatcher compares.
type matchKind uint8

const (
	matchExact matchKind = iota + 1
	matchPrefix
	matchRegex
)

// StringMatcher is a compiled spec.StringMatch. The zero value matches nothing.
type StringMatcher struct {
	kind matchKind
	lit  []byte
	re   *regexp.Regexp
}

// CompileStringMatch compiles m, which must have exactly one of its fields set.
func CompileStringMatch(m spec.StringMatch) (StringMatcher, error) {
	set := 0
	var sm StringMatcher
	if m.Exact != nil {
		set++
		sm = StringMatcher{kind: matchExact, lit: []byte(*m.Exact)}
	}
	if m.Prefix != nil {
		set++
		sm = StringMatcher{kind: matchPrefix, lit: []byte(*m.Prefix)}
	}
	if m.Regex != nil {
		set++
		if _, err := regexp.Compile(*m.Regex); err != nil {
			return StringMatcher{}, fmt.Errorf("compile regex %q: %w", *m.Regex, err)
		}
		// The whole value must match, as in Istio and Envoy (RE2 full
		// match): a regex of "v2" does not catch "v20" or "xv2". The
		// pattern compiled alone first, so a group it leaves open cannot
		// be closed by the wrapper.
		re, err := regexp.Compile(`^(?:` + *m.Regex + `)$`)
		if err != nil {
			return StringMatcher{}, fmt.Errorf("compile regex %q: %w", *m.Regex, err)
		}
		sm = StringMatcher{kind: matchRegex, re: re}
	}
	if set != 1 {
		return StringMatcher{}, fmt.Errorf("a string match needs exactly one of exact, prefix or regex; got %d", set)
	}
	return sm, nil
}

// Match reports whether v matches. A regex must match the whole value.
func (m *StringMatcher) Match(v []byte) bool {
	switch m.kind {
	case matchExact:
		return bytes.Equal(v, m.lit)
	case matchPrefix:
		return bytes.HasPrefix(v, m.lit)
	case matchRegex:
		return m.re.Match(v)
	}
	return false
}

// headerMatcher matches one header; a missing header never matches (not even
// an empty exact value), so a route cannot catch requests by accident.
type headerMatcher struct {
	name  string
	value StringMatcher
}

func (h *headerMatcher) match(r Request) bool {
	v, ok := r.Header(h.name)
	return ok && h.value.Match(v)
}
