package config

import (
	"strings"
	"testing"
)

// TestMirrorRouteWithoutMatchIsAnError: Argo removes a setMirrorRoute that
// has no match, whatever its percentage, so such a step would mirror
// nothing; lint says so at the step and tells both ways out. A step with
// only a name still removes the route, as in Argo.
func TestMirrorRouteWithoutMatchIsAnError(t *testing.T) {
	doc := func(steps string) []byte {
		return []byte(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: r}
spec:
  listen: :8080
  stable: {version: v1, endpoints: ["http://127.0.0.1:9001"]}
  canary: {version: v2, endpoints: ["http://127.0.0.1:9002"]}
  strategy:
    canary:
      steps:
` + steps)
	}
	_, err := Parse("r.yaml", doc(`        - setMirrorRoute: {name: shadow, percentage: 50}
`))
	want := `r.yaml:11:11: spec.strategy.canary.steps[0].setMirrorRoute.match: a mirror route needs a match: without one, Argo Rollouts removes the route whatever its percentage, so nothing would be mirrored`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v\nwant an error starting %s", err, want)
	}
	for _, hint := range []string{"match: [{method: {exact: GET}}]", `to remove route "shadow", give only its name`} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("error %q does not say %q", err, hint)
		}
	}
	if _, err := Parse("r.yaml", doc(`        - setMirrorRoute: {name: shadow, percentage: 50, match: [{method: {exact: GET}}]}
        - setMirrorRoute: {name: shadow}
`)); err != nil {
		t.Errorf("a mirror route with a match, then its removal: %v", err)
	}
}
