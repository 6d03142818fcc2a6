package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/provider"
)

const doc = `{
  "data": {"value": 0.25, "ok": true, "name": "gate", "nothing": null,
           "result": [{"value": [1700000000, "42"]}, {"value": [1700000001, "43"]}],
           "empty": [],
           "odd key": {"it's": 7}, "ünï": 8, "a.b": 9, "x-y_z": 10}
}`

func decodeDoc(t testing.TB) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEval(t *testing.T) {
	d := decodeDoc(t)
	tests := []struct {
		path string
		want any
	}{
		{"{$.data.value}", 0.25},
		{"$.data.value", 0.25},
		{"  { $.data.value }  ", 0.25},
		{"{.data.value}", 0.25},
		{".data.ok", true},
		{"$.data.name", "gate"},
		{"$['data']['value']", 0.25},
		{`$["data"].value`, 0.25},
		{"['data'].value", 0.25},
		{"$.data.result[0].value[1]", "42"},
		{"$.data.result[1]['value'][0]", 1700000001.0},
		{"$.data.result[-1].value[-2]", 1700000001.0},
		{"$.data.result[ 0 ].value[ 1 ]", "42"},
		{`$.data['odd key']['it\'s']`, 7.0},
		{`$.data["odd key"]["it's"]`, 7.0},
		{"$.data.ünï", 8.0},
		{"$.data['a.b']", 9.0},
		{"$.data.x-y_z", 10.0},
		{"$.data.empty", []any{}},
		{"$.data['odd key']", map[string]any{"it's": 7.0}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := parsePath(tt.path)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got, err := p.eval(d)
			if err != nil {
				t.Fatalf("eval: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	for _, whole := range []string{"", "$", "{$}", "{}"} {
		p, err := parsePath(whole)
		if err != nil {
			t.Fatalf("parse %q: %v", whole, err)
		}
		if got, err := p.eval(d); err != nil || !reflect.DeepEqual(got, d) {
			t.Errorf("%q selects %v, %v; want the whole document", whole, got, err)
		}
	}
}

func TestEvalNoDataAndShapeErrors(t *testing.T) {
	d := decodeDoc(t)
	tests := []struct {
		path   string
		noData bool
		want   string
	}{
		{"$.data.missing", true, `$.data has no field "missing"`},
		{"$.data.nothing", true, "$.data.nothing is null"},
		{"$.data.nothing.deeper", true, "$.data.nothing is null"},
		{"$.data.empty[0]", true, "$.data.empty has 0 elements, no index 0"},
		{"$.data.result[2]", true, "has 2 elements, no index 2"},
		{"$.data.result[-3]", true, "no index -3"},
		{"$.nope.value", true, `$ has no field "nope"`},
		{"$.data.result.value", false, "$.data.result is an array, not an object"},
		{"$.data[0]", false, "$.data is an object, not an array, so [0] cannot index it"},
		{"$.data.value.x", false, "$.data.value is a number"},
		{"$.data.name[0]", false, "is a string, not an array"},
		{"$.data.ok.x", false, "is a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := parsePath(tt.path)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			_, err = p.eval(d)
			if err == nil {
				t.Fatal("eval succeeded")
			}
			if errors.Is(err, provider.ErrNoData) != tt.noData {
				t.Errorf("no data = %v, want %v: %v", !tt.noData, tt.noData, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ path, want string }{
		{"{$.a", "missing the closing }"},
		{"$.a}", "} without an opening {"},
		{"{$.a} {$.b}", "only one {…} expression"},
		{"value is {$.a}", "only one {…} expression"},
		{"$..a", "recursive descent"},
		{"$.a.*", "wildcards"},
		{"$.a[*]", "wildcards"},
		{"$.a[?(@.x > 1)]", "filter"},
		{"$.a[(@.length-1)]", "filter"},
		{"$.a[0:2]", "slices"},
		{"$.a[0,1]", "unions"},
		{"$.a['x','y']", "unions"},
		{"$.a[", "missing ]"},
		{"$.a[0", "missing ]"},
		{"$.a['x", "unterminated quoted name"},
		{"$.a['x'", "missing ]"},
		{`$.a['x\`, "unterminated quoted name"},
		{`$.a['\n']`, `unknown escape \n`},
		{"$.a[x]", "expected an array index or a quoted name"},
		{"$.a[-]", "invalid array index"},
		{"$.a[99999999999999999999]", "invalid array index"},
		{"$.a[0 1]", "expected ] after"},
		{"$.", "a field name must follow '.'"},
		{"$.a.", "a field name must follow '.'"},
		{"$.a b", "expected '.' or '['"},
		{"data.value", "a path starts with $, '.' or '['"},
		{"$$", "a path starts with"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := parsePath(tt.path)
			if err == nil {
				t.Fatal("parsed")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.path)) {
				t.Errorf("error %q should contain %q and the path", err, tt.want)
			}
		})
	}
}

func TestPathString(t *testing.T) {
	for in, want := range map[string]string{
		"{.data.result[0]['value'][-1]}": "$.data.result[0].value[-1]",
		`$['odd key']["it's"]`:           `$['odd key']['it\'s']`,
		`$['a\\b']['']`:                  `$['a\\b']['']`,
		"":                               "$",
	} {
		p, err := parsePath(in)
		if err != nil {
			t.Fatalf("parse %q: %v", in, err)
		}
		if got := p.String(); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParsePath checks that the parser never panics, that every path it
// accepts prints to a canonical form that parses back to the same steps,
// and that evaluation never panics.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"{$.data.value}", "$.a[0]['b'][-1]", `$["x\"y"]`, "$..a", "{$.a[?(@)]}", "[0][1]", "$.ü-_1", "{ }", "$['\\\\']"} {
		f.Add(s)
	}
	d := decodeDoc(f)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePath(s)
		if err != nil {
			return
		}
		again, err := parsePath(p.String())
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", p.String(), s, err)
		}
		if !reflect.DeepEqual(p.steps, again.steps) && (len(p.steps) != 0 || len(again.steps) != 0) {
			t.Fatalf("%q → %q → %#v, want %#v", s, p.String(), again.steps, p.steps)
		}
		p.eval(d) //nolint:errcheck // only checking that it does not panic
	})
}
