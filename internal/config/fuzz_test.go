package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that no input crashes the loader (SIGHUP reloads and
// `apply` feed it whatever is on disk) and that its output keeps its
// promises: a bundle that validates, or one-line errors with positions.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "config", "*.yaml"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "---", "kind: Rollout", "- a", "a: &a [*a]", "kind: Rollout\nspec: {<<: {listen: x}}",
		"kind: Rollout\nspec: {stable: {endpoints: {a: 1}}}", "\t", "kind: AnalysisTemplate\nspec: {metrics: [{successCondition: '('}]}",
		"kind: Rollout\nspec: {rollbackWindow: {revisions: {a: 1}, <<: {revisions: 2}}}", "kind: Rollout\nspec: {rollbackWindow: [1]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse("fuzz.yaml", data)
		if err == nil {
			if b == nil {
				t.Fatal("nil bundle without error")
			}
			for _, r := range b.Rollouts {
				r.SetDefaults() // idempotent: a loaded rollout stays valid
				if errs := r.Validate(); len(errs) > 0 {
					t.Fatalf("loaded rollout fails validation: %v", errs)
				}
			}
			for _, tm := range b.Templates {
				tm.SetDefaults()
				if errs := tm.Validate(); len(errs) > 0 {
					t.Fatalf("loaded template fails validation: %v", errs)
				}
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error %T %v, want non-empty Errors", err, err)
		}
		for _, e := range errs {
			line := e.Error()
			if strings.ContainsAny(line, "\r\n") || e.Msg == "" || e.Line < 0 || e.Column < 0 || e.File != "fuzz.yaml" {
				t.Fatalf("malformed error line %q (%+v)", line, e)
			}
		}
	})
}
