package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated pages of docs/")

// TestGeneratedPagesAreCurrent builds the coalmine binary and fails when
// docs/cli.md or docs/configuration-reference.md differs from what the
// code produces: a flag, a command or a field changed without
// `go run ./cmd/docgen`.
func TestGeneratedPagesAreCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the coalmine binary")
	}
	root := filepath.Join("..", "..")
	ps, err := pages(root)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range ps {
		path := filepath.Join(root, name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %s: %v; generate it with: go run ./cmd/docgen", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date; regenerate it with: go run ./cmd/docgen\n%s", name, firstDifference(want, got))
		}
	}
}

// TestParseFlags pins the reading of pflag's usage lines, including a bool
// flag (no type), a default and a usage that mentions "default:" itself.
func TestParseFlags(t *testing.T) {
	got, err := parseFlags([]string{
		`      --admin string             address of the admin API (default "127.0.0.1:7070")`,
		`  -f, --filename stringArray     YAML file or directory (repeatable)`,
		`      --log-format string        text or json (default: text on a terminal, json otherwise)`,
		`      --read-only-anonymous      allow reads without the token`,
		`  -w, --watch              wait until done; false prints the phase once (default true)`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []cliFlag{
		{name: "admin", typ: "string", def: `"127.0.0.1:7070"`, usage: "address of the admin API"},
		{short: "f", name: "filename", typ: "stringArray", usage: "YAML file or directory (repeatable)"},
		{name: "log-format", typ: "string", usage: "text or json (default: text on a terminal, json otherwise)"},
		{name: "read-only-anonymous", usage: "allow reads without the token"},
		{short: "w", name: "watch", def: "true", usage: "wait until done; false prints the phase once"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d flags, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("flag %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func firstDifference(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "first difference at line " + strconv.Itoa(i+1) + ":\n  committed: " + wl + "\n  generated: " + gl
		}
	}
	return ""
}
