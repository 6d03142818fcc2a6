package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

var update = flag.Bool("update", false, "rewrite testdata/config/invalid-*.txt from the current output")

// chdirRoot runs the test from the repository root so that file names in
// error lines read "testdata/config/...", as a user passing that path sees.
func chdirRoot(t *testing.T) {
	t.Helper()
	t.Chdir(filepath.Join("..", ".."))
}

func TestLoadValid(t *testing.T) {
	chdirRoot(t)
	files, err := filepath.Glob("testdata/config/valid-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := Load(f)
			if err != nil {
				t.Fatalf("Load(%s):\n%v", f, err)
			}
			if len(b.Rollouts) == 0 && len(b.Templates) == 0 {
				t.Fatalf("Load(%s) returned no documents", f)
			}
			// What Load returns must be exactly what Validate accepts, so
			// the API can re-validate a bundle without surprises.
			for _, r := range b.Rollouts {
				if errs := r.Validate(); len(errs) > 0 {
					t.Errorf("rollout %s: %v", r.Metadata.Name, errs)
				}
			}
			for _, tm := range b.Templates {
				if errs := tm.Validate(); len(errs) > 0 {
					t.Errorf("template %s: %v", tm.Metadata.Name, errs)
				}
			}
		})
	}
}

// TestLoadInvalid compares the error output for every invalid-*.yaml with
// its invalid-*.txt. Run `go test ./internal/config -run TestLoadInvalid
// -update` to rewrite the expected files after an intended change, and
// review the diff.
func TestLoadInvalid(t *testing.T) {
	chdirRoot(t)
	files, err := filepath.Glob("testdata/config/invalid-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := Load(f)
			if err == nil {
				t.Fatalf("Load(%s) succeeded with %d rollouts, want errors", f, len(b.Rollouts))
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load(%s) error is %T, want config.Errors", f, err)
			}
			for _, e := range errs {
				if e.File != f {
					t.Errorf("error names file %q, want %q as passed", e.File, f)
				}
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".txt"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read %s (run with -update to create it): %v", golden, err)
			}
			if got != string(want) {
				t.Errorf("Load(%s) errors differ from %s\n--- got:\n%s--- want:\n%s", f, golden, got, want)
			}
		})
	}
}

func TestLoadPositions(t *testing.T) {
	src := `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata:
  name: checkout
spec:
  listen: 127.0.0.1:8080
  stable:
    version: v1
    endpoints:
      - http://127.0.0.1:9001
      - http://127.0.0.1:9002/path
  strategy:
    canary:
      steps:
        - setWeight: 150
`
	_, err := Parse("r.yaml", []byte(src))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse error = %v, want Errors", err)
	}
	want := []Error{
		{File: "r.yaml", Line: 11, Column: 9, Path: "spec.stable.endpoints[1]"},
		{File: "r.yaml", Line: 15, Column: 22, Path: "spec.strategy.canary.steps[0].setWeight"},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		g := errs[i]
		if g.File != w.File || g.Line != w.Line || g.Column != w.Column || g.Path != w.Path || g.Msg == "" {
			t.Errorf("error %d = %+v, want position %s:%d:%d path %s", i, g, w.File, w.Line, w.Column, w.Path)
		}
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rollout := func(name, listen, tmpl string) string {
		return "apiVersion: coalmine.dev/v1alpha1\nkind: Rollout\nmetadata: {name: " + name + "}\nspec:\n" +
			"  listen: " + listen + "\n  stable: {version: v1, endpoints: [http://127.0.0.1:9001]}\n" +
			"  strategy: {canary: {steps: [{analysis: {templates: [{templateName: " + tmpl + "}]}}]}}\n"
	}
	const template = "apiVersion: coalmine.dev/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: smoke}\n" +
		"spec: {metrics: [{name: m, provider: {builtin: {}}, judge: {compare: error-rate}}]}\n"

	write("b.yaml", rollout("b", ":8081", "smoke"))
	write("a.yml", rollout("a", ":8080", "smoke"))
	write("c.yaml", template)
	write("empty.yaml", "# nothing here yet\n")
	write("notes.txt", "not yaml: [")
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}

	// A template in one file satisfies a reference in another, and files
	// load in name order whatever order the directory lists them in.
	b, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(dir): %v", err)
	}
	var names []string
	for _, r := range b.Rollouts {
		names = append(names, r.Metadata.Name)
	}
	if strings.Join(names, ",") != "a,b" || len(b.Templates) != 1 {
		t.Errorf("rollouts %v, %d templates; want a,b and 1", names, len(b.Templates))
	}
	if src, ok := b.Source(spec.KindRollout, "b"); !ok || src.File != filepath.Join(dir, "b.yaml") || src.Line != 1 {
		t.Errorf("Source(b) = %+v, %v", src, ok)
	}
	if _, ok := b.Template("smoke"); !ok {
		t.Errorf("Template(smoke) not found")
	}

	// Passing a file twice (directly and through its directory) loads it once.
	if _, err := Load(dir, filepath.Join(dir, "a.yml")); err != nil {
		t.Errorf("Load(dir, dir/a.yml): %v", err)
	}

	// The same name in two files is reported at the second, naming the first.
	dup := write("d.yaml", rollout("a", ":8090", "smoke"))
	_, err = Load(dir)
	want := dup + ":3:18: metadata.name: duplicate Rollout name \"a\": already defined at " + filepath.Join(dir, "a.yml") + ":3:18"
	if err == nil || err.Error() != want {
		t.Errorf("Load with duplicate:\n got: %v\nwant: %s", err, want)
	}
}

func TestLoadPathErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	_, err := Load(empty, missing)
	want := empty + ": no *.yaml or *.yml files in this directory\n" +
		missing + ": cannot read: no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "no configuration files given") {
		t.Errorf("Load() = %v, want an error asking for files", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, src := range []string{"", "\n", "# only a comment\n", "---\n", "---\n...\n---\n", "~\n"} {
		b, err := Parse("empty.yaml", []byte(src))
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		if len(b.Rollouts)+len(b.Templates) != 0 {
			t.Errorf("Parse(%q) returned documents", src)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	b, err := Parse("r.yaml", []byte(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: r}
spec:
  listen: :8080
  stable: {version: v1, endpoints: ["http://127.0.0.1:9001"]}
  healthCheck: {interval: 3s}
`))
	if err != nil {
		t.Fatal(err)
	}
	hc := b.Rollouts[0].Spec.HealthCheck
	if hc.Interval.String() != "3s" || hc.Timeout.String() != "2s" || hc.Path != "/health" {
		t.Errorf("health check = %+v, want interval 3s and defaults for the rest", hc)
	}
}

// TestWrongTypeKeepsCheckingTheRest pins that a value of the wrong type
// does not hide problems later in the document (yaml.v3 alone aborts the
// decode at the first failing duration) and does not cause follow-on
// errors for the same field.
func TestWrongTypeKeepsCheckingTheRest(t *testing.T) {
	_, err := Parse("r.yaml", []byte(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: r}
spec:
  listen: :8080
  progressDeadline: 10 min
  stable: {version: v1, endpoints: ["http://127.0.0.1:9001"]}
  strategy: {canary: {steps: [{setWeight: ten}, {setWeight: 101}]}}
`))
	want := `r.yaml:6:21: spec.progressDeadline: invalid duration "10 min": use a number with a unit, such as 500ms, 30s, 5m or 1h, or whole seconds
r.yaml:8:43: spec.strategy.canary.steps[0].setWeight: expected a number, got the string "ten"
r.yaml:8:61: spec.strategy.canary.steps[1].setWeight: weight 101% is out of range: it must be between 0 and 100`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestAliasBomb(t *testing.T) {
	// 400 steps that each alias a mirror route with 400 aliased matches:
	// a 10 KB file that expands to 160,000 values.
	matches := strings.TrimSuffix(strings.Repeat("*m, ", 400), ", ")
	steps := strings.TrimSuffix(strings.Repeat("*s, ", 400), ", ")
	src := "apiVersion: coalmine.dev/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n" +
		"  stable: {version: v1, endpoints: [&m {method: {exact: GET}}]}\n" +
		"  canary: {version: v2, endpoints: [&s {setMirrorRoute: {name: x, match: [" + matches + "]}}]}\n" +
		"  strategy: {canary: {steps: [" + steps + "]}}\n"
	_, err := Parse("bomb.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "document is too large") {
		t.Errorf("alias bomb: got %v, want a too-large error", err)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"listen", "tls", "stable", "canary", "healthCheck", "strategy", "notifications"}
	tests := map[string]string{
		"lisen":         "listen",
		"healthcheck":   "healthCheck",
		"stabel":        "stable",
		"notification":  "notifications",
		"strategies":    "strategy",
		"cannary":       "canary",
		"upstream":      "",
		"x":             "",
		"tl":            "tls",
		"somethingelse": "",
	}
	for got, want := range tests {
		if s := suggest(got, known); s != want {
			t.Errorf("suggest(%q) = %q, want %q", got, s, want)
		}
	}
}

// TestMergeKeys pins that merged mappings are checked like written ones and
// that an explicit key may override a merged one without being a duplicate.
func TestMergeKeys(t *testing.T) {
	src := `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: r}
spec:
  listen: :8080
  stable: &base {version: v1, endpoints: ["http://127.0.0.1:9001"]}
  healthCheck:
    <<: [{path: /ready, intervall: 5s}, {timeout: 1s}]
    path: /live
`
	_, err := Parse("m.yaml", []byte(src))
	want := `m.yaml:8:25: spec.healthCheck.intervall: unknown field "intervall" (did you mean "interval"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
	b, err := Parse("m.yaml", []byte(strings.Replace(src, "intervall", "interval", 1)))
	if err != nil {
		t.Fatal(err)
	}
	hc := b.Rollouts[0].Spec.HealthCheck
	if hc.Path != "/live" || hc.Interval.String() != "5s" || hc.Timeout.String() != "1s" {
		t.Errorf("merged health check = %+v", hc)
	}
}
