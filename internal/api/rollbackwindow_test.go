package api_test

import (
	"strings"
	"testing"
)

// TestApplyRollbackWindowShapes: the JSON API takes rollbackWindow as an
// integer or in Argo's shape {"revisions": N}, and answers with the integer.
func TestApplyRollbackWindowShapes(t *testing.T) {
	for body, want := range map[string]int{`{"revisions": 0}`: 0, `{"revisions": 3}`: 3, `2`: 2} {
		h, _, _ := newHandler(t, nil)
		v := decodeView(t, do(t, h, "PUT", "/api/v1/rollouts/web", withSpec(`"rollbackWindow": `+body)))
		if w := v.Spec.RollbackWindow; w == nil || int(*w) != want {
			t.Errorf("rollbackWindow %s: got %v, want %d", body, w, want)
		}
	}
	h, _, _ := newHandler(t, nil)
	res := do(t, h, "PUT", "/api/v1/rollouts/web", withSpec(`"rollbackWindow": {"revison": 1}`))
	b := errorBody(t, res)
	if res.status != 400 || b.Field != "spec.rollbackWindow" || !strings.Contains(b.Error, `{revisions: 1}`) {
		t.Errorf("a misspelt Argo shape: %d %+v, want 400 at spec.rollbackWindow saying what to write", res.status, b)
	}
}
