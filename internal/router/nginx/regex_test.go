package nginx

import (
	"strings"
	"testing"
)

func TestPatterns(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{exactPattern("v2.1"), `\A(?!\z)v2\x2e1\z`},
		{exactPattern(""), `\A(?!\z)\z`}, // never matches: NGINX cannot tell empty from missing
		{prefixPattern("a b"), `\A(?!\z)a\x20b`},
		{prefixPattern("é"), `\A(?!\z)\xc3\xa9`},
		{mustRegex(t, "v2"), `\A(?!\z)(?:v2)\z`},
		{mustRegex(t, "v[0-9]+"), `\A(?!\z)(?:v(?:[0-9])+)\z`},
		{mustRegex(t, "(?i)beta"), `\A(?!\z)(?:(?i:BETA))\z`},
		{mustRegex(t, "ab|c.d"), `\A(?!\z)(?:(?:ab|c[^\x0a]d))\z`},
		{mustRegex(t, "(?P<host>x)y"), `\A(?!\z)(?:(?:x)y)\z`},
		{mustRegex(t, "^a$"), `\A(?!\z)(?:\Aa\z)\z`},
		{mustRegex(t, "(?m)^a$"), `\A(?!\z)(?:(?:\A|(?<=\x0a))a(?=\x0a|\z))\z`},
		{mustRegex(t, "[^a]{2,5}?"), `\A(?!\z)(?:(?:[\x00-\x60b-\x7f\x80-\xff]){2,5}?)\z`},
		{mustRegex(t, "(?s).*"), `\A(?!\z)(?:(?:[\x00-\xff])*)\z`},
		{mustRegex(t, `\bx\B`), `\A(?!\z)(?:\bx\B)\z`},
		{mustRegex(t, "é+"), `\A(?!\z)(?:(?:\xc3\xa9)+)\z`},
		{mustRegex(t, "(?i)[ks]"), `\A(?!\z)(?:[KSks])\z`},
	} {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
	}
}

func mustRegex(t *testing.T, re string) string {
	t.Helper()
	p, err := regexPattern(re)
	if err != nil {
		t.Fatal(err)
	}
	if err := safeInQuotes(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRegexPatternRefuses(t *testing.T) {
	for _, re := range []string{"(", "a{1001}", "[à-ü]", "[^é]", "(?i)é"} {
		_, err := regexPattern(re)
		if err == nil {
			t.Errorf("%q accepted", re)
			continue
		}
		if strings.Contains(re, "à") && !strings.Contains(err.Error(), "alternation") {
			t.Errorf("%q: error %q does not say what to do", re, err)
		}
	}
}
