package command

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestParseResult(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"", nil},
		{" \n\t", nil},
		{"0.97\n", 0.97},
		{"42", 42.0},
		{`{"ok": true, "latency": 120}`, map[string]any{"ok": true, "latency": 120.0}},
		{"[1, 2]\n", []any{1.0, 2.0}},
		{"true", true},
		{"null", nil},
		{`"quoted"`, "quoted"},
		{"+1.5", 1.5}, // not JSON, a number
		{".5", 0.5},
		{"OK\n", "OK"},
		{"all 12 checks passed", "all 12 checks passed"},
		{"{not json", "{not json"},
		{"1\n2", "1\n2"}, // two values: neither one JSON document nor a number
	}
	for _, tt := range tests {
		if got := ParseResult([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseResult(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
	if got, ok := ParseResult([]byte("NaN")).(float64); !ok || !math.IsNaN(got) {
		t.Errorf("ParseResult(NaN) = %v", got)
	}
	if got := ParseResult([]byte("ok\xff")); got != "ok\uFFFD" {
		t.Errorf("invalid UTF-8 = %q", got)
	}
}

func TestCapped(t *testing.T) {
	c := &capped{max: 5}
	for _, s := range []string{"ab", "cd", "efg", "h"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if string(c.buf) != "abcde" || !c.overflow {
		t.Errorf("capped = %q, overflow %v", c.buf, c.overflow)
	}
	c = &capped{max: 4}
	c.Write([]byte("abcd"))
	if c.overflow {
		t.Error("exactly max bytes is no overflow")
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 8}
	tl.Write([]byte("hello "))
	if tl.String() != "hello" || tl.truncated {
		t.Errorf("short tail = %q", tl.String())
	}
	tl.Write([]byte("world\n"))
	if got := tl.String(); got != "…o world" {
		t.Errorf("tail = %q", got)
	}
	tl.Write([]byte(strings.Repeat("x", 20) + "END"))
	if got := tl.String(); got != "…xxxxxEND" {
		t.Errorf("tail after a long write = %q", got)
	}
}
