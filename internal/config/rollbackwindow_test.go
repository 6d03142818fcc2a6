package config

import (
	"strings"
	"testing"
)

// TestRollbackWindowShapes: the strict walker accepts both the integer and
// Argo's {revisions: N}, and reports a wrong shape at its line and column.
func TestRollbackWindowShapes(t *testing.T) {
	doc := func(w string) []byte {
		return []byte(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: r}
spec:
  listen: :8080
  stable: {version: v1, endpoints: ["http://127.0.0.1:9001"]}
  rollbackWindow: ` + w + "\n")
	}
	for _, tc := range []struct {
		w    string
		want int
	}{{"2", 2}, {"{revisions: 3}", 3}, {"{revisions: 0}", 0}, {"\n    revisions: 5", 5}} {
		b, err := Parse("r.yaml", doc(tc.w))
		if err != nil {
			t.Fatalf("rollbackWindow: %s: %v", tc.w, err)
		}
		if got := b.Rollouts[0].Spec.RollbackWindow; got == nil || int(*got) != tc.want {
			t.Errorf("rollbackWindow: %s read as %v, want %d", tc.w, got, tc.want)
		}
	}
	for _, tc := range []struct{ w, want string }{
		{"{revisons: 1}", `r.yaml:7:19: spec.rollbackWindow: unknown field "revisons" in rollbackWindow`},
		{`"1"`, `r.yaml:7:19: spec.rollbackWindow: rollbackWindow must be an integer, not "1"; remove the quotes`},
		{"-1", `r.yaml:7:19: spec.rollbackWindow: must be at least 0, not -1`},
		{"{revisions: -2}", `r.yaml:7:3: spec.rollbackWindow: must be at least 0, not -2`},
	} {
		_, err := Parse("r.yaml", doc(tc.w))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("rollbackWindow: %s: got %v, want an error starting %q", tc.w, err, tc.want)
		}
	}
}
