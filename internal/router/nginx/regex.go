package nginx

import (
	"fmt"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The header routes of a rollout are written as NGINX map regexes (PCRE,
// byte mode). Nothing from the spec reaches the file as typed: exact and
// prefix values become escaped literals, and an RE2 regex is parsed by Go
// and written again from its syntax tree. That closes two doors at once:
// no value can end the quoted string or the directive it sits in, and no
// regex can declare a named capture, which NGINX would turn into a
// variable of the same name that the rest of the configuration may read.
//
// Every pattern is anchored and refuses the empty value: NGINX gives a
// missing header and an empty one the same empty value, and the built-in
// proxy never lets a missing header match, so neither may NGINX.
const (
	patternStart = `\A(?!\z)`
	patternEnd   = `\z`
)

// exactPattern matches exactly v. NGINX's own exact map keys are compared
// without case, which is why even an exact match is written as a regex.
func exactPattern(v string) string {
	return patternStart + escapeLiteral(v) + patternEnd
}

// prefixPattern matches values that start with v.
func prefixPattern(v string) string {
	return patternStart + escapeLiteral(v)
}

// regexPattern matches the values the RE2 regex re matches in full, as
// the built-in proxy compiles it (^(?:re)$).
//
// PCRE in NGINX reads bytes, where Go's regexp reads UTF-8 characters. A
// non-ASCII literal is written as its UTF-8 bytes, so it matches the same
// values. A class or a dot stands for one byte, not one character: the
// same values match except where a pattern counts non-ASCII characters
// (^.{3}$ against "héé"). A class that lists some non-ASCII characters
// but not all ([à-ü]) cannot be written byte-wise and is refused with an
// error that says so.
func regexPattern(re string) (string, error) {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return "", fmt.Errorf("regex %q does not compile: %w", re, err)
	}
	var b strings.Builder
	b.WriteString(patternStart)
	b.WriteString("(?:")
	if err := writeRegexp(&b, parsed); err != nil {
		return "", fmt.Errorf("regex %q: %w", re, err)
	}
	b.WriteString(")")
	b.WriteString(patternEnd)
	return b.String(), nil
}

// escapeLiteral writes every byte that is not a letter or a digit as \xHH:
// PCRE reads it as that byte whatever it is, and NGINX's quoting leaves it
// alone.
func escapeLiteral(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		writeByte(&b, s[i])
	}
	return b.String()
}

func writeByte(b *strings.Builder, c byte) {
	if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
		b.WriteByte(c)
		return
	}
	fmt.Fprintf(b, `\x%02x`, c)
}

func writeRune(b *strings.Builder, r rune) {
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], r)
	for _, c := range buf[:n] {
		writeByte(b, c)
	}
}

func writeRegexp(b *strings.Builder, re *syntax.Regexp) error {
	switch re.Op {
	case syntax.OpNoMatch:
		b.WriteString("(?!)")
	case syntax.OpEmptyMatch:
		b.WriteString("(?:)")
	case syntax.OpLiteral:
		fold := re.Flags&syntax.FoldCase != 0
		if fold {
			// PCRE folds ASCII letters only here; Go also folds a few
			// non-ASCII ones (K, the Kelvin sign), which no header holds.
			b.WriteString("(?i:")
		}
		for _, r := range re.Rune {
			if fold && r > 0x7f && unicode.SimpleFold(r) != r {
				return fmt.Errorf("NGINX matches %q without case only in ASCII letters; write the cases out instead, such as (%c|%c)", r, r, unicode.SimpleFold(r))
			}
			writeRune(b, r)
		}
		if fold {
			b.WriteString(")")
		}
	case syntax.OpCharClass:
		return writeClass(b, re.Rune)
	case syntax.OpAnyCharNotNL:
		b.WriteString(`[^\x0a]`)
	case syntax.OpAnyChar:
		b.WriteString(`[\x00-\xff]`)
	case syntax.OpBeginLine:
		b.WriteString(`(?:\A|(?<=\x0a))`)
	case syntax.OpEndLine:
		b.WriteString(`(?=\x0a|\z)`)
	case syntax.OpBeginText:
		b.WriteString(`\A`)
	case syntax.OpEndText:
		b.WriteString(`\z`)
	case syntax.OpWordBoundary:
		b.WriteString(`\b`)
	case syntax.OpNoWordBoundary:
		b.WriteString(`\B`)
	case syntax.OpCapture:
		// Captures become plain groups: nothing reads them, and a named
		// one would define an NGINX variable.
		b.WriteString("(?:")
		if err := writeRegexp(b, re.Sub[0]); err != nil {
			return err
		}
		b.WriteString(")")
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		b.WriteString("(?:")
		if err := writeRegexp(b, re.Sub[0]); err != nil {
			return err
		}
		b.WriteString(")")
		switch re.Op {
		case syntax.OpStar:
			b.WriteString("*")
		case syntax.OpPlus:
			b.WriteString("+")
		case syntax.OpQuest:
			b.WriteString("?")
		default:
			switch {
			case re.Max < 0:
				fmt.Fprintf(b, "{%d,}", re.Min)
			case re.Max == re.Min:
				fmt.Fprintf(b, "{%d}", re.Min)
			default:
				fmt.Fprintf(b, "{%d,%d}", re.Min, re.Max)
			}
		}
		if re.Flags&syntax.NonGreedy != 0 {
			b.WriteString("?")
		}
	case syntax.OpConcat:
		// No group needed: a concatenation binds tighter than |, and a
		// repetition groups what it repeats.
		for _, sub := range re.Sub {
			if err := writeRegexp(b, sub); err != nil {
				return err
			}
		}
	case syntax.OpAlternate:
		b.WriteString("(?:")
		for i, sub := range re.Sub {
			if i > 0 {
				b.WriteString("|")
			}
			if err := writeRegexp(b, sub); err != nil {
				return err
			}
		}
		b.WriteString(")")
	default:
		return fmt.Errorf("the nginx router cannot express %v", re.Op)
	}
	return nil
}

// foldPartners are the non-ASCII characters Go adds to a class of ASCII
// letters under (?i): ſ (with s) and the Kelvin sign (with k).
var foldPartners = [...]rune{0x17F, 0x212A}

// writeClass writes a character class given as sorted, non-overlapping
// rune ranges (lo, hi pairs).
func writeClass(b *strings.Builder, ranges []rune) error {
	var ascii []rune
	var high []rune // the ranges' part above ASCII
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		if lo <= 0x7f {
			ascii = append(ascii, lo, min(hi, 0x7f))
		}
		if hi >= 0x80 {
			high = append(high, max(lo, 0x80), hi)
		}
	}
	var allHigh bool
	switch {
	case coversOnly(high, foldPartners[:]):
		allHigh = false
	case coversAllHigh(high):
		allHigh = true
	default:
		return fmt.Errorf("a character class that holds some non-ASCII characters but not all cannot be written for NGINX, which matches bytes; use an alternation such as (à|é) instead")
	}
	if len(ascii) == 0 && !allHigh {
		b.WriteString("(?!)")
		return nil
	}
	b.WriteString("[")
	for i := 0; i < len(ascii); i += 2 {
		writeByte(b, byte(ascii[i]))
		if ascii[i+1] != ascii[i] {
			b.WriteString("-")
			writeByte(b, byte(ascii[i+1]))
		}
	}
	if allHigh {
		b.WriteString(`\x80-\xff`)
	}
	b.WriteString("]")
	return nil
}

// coversOnly reports whether every rune of the ranges is one of allowed.
func coversOnly(ranges []rune, allowed []rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			found := false
			for _, a := range allowed {
				found = found || a == r
			}
			if !found {
				return false
			}
		}
	}
	return true
}

// coversAllHigh reports whether the ranges hold every character from 0x80
// to utf8.MaxRune, leaving out at most the fold partners (a negated class
// under (?i) leaves them out).
func coversAllHigh(ranges []rune) bool {
	next := rune(0x80)
	for i := 0; i+1 < len(ranges); i += 2 {
		for next < ranges[i] {
			if !isFoldPartner(next) {
				return false
			}
			next++
		}
		next = max(next, ranges[i+1]+1)
	}
	for next <= utf8.MaxRune {
		if !isFoldPartner(next) {
			return false
		}
		next++
	}
	return true
}

func isFoldPartner(r rune) bool {
	for _, p := range foldPartners {
		if p == r {
			return true
		}
	}
	return false
}
