package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Issue 11, items 1 and 11, through the binary: `undo` goes to the previous
// revision as Argo's does (here, during a canary, the stable it runs
// against), and rollbackWindow in Argo's shape {revisions: 0} is accepted
// and makes an undo to an earlier stable walk the steps, as Argo does by
// default.
func TestArgoUndoGoesToThePreviousRevision(t *testing.T) {
	v1, v2, v3 := startBackend(t, "v1"), startBackend(t, "v2"), startBackend(t, "v3")
	s := newServer(t, v1, v2)
	s.writeConfig(fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  trafficRouting:
    assignment: {userHeader: X-User-ID}
  rollbackWindow: {revisions: 0}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: {}
`, s.Listen, v1.URL, v2.URL))
	s.start()
	atPause := func(canary string) func(status) bool {
		return func(st status) bool {
			return st.CanaryVersion == canary && st.StepIndex == 1 && st.PauseReason == "PauseStep" && st.ObservedWeight == 20
		}
	}
	s.waitFor("v2 at its pause", 20*time.Second, atPause("v2"))
	s.mustCLI("promote", "shop", "--full")
	s.mustCLI("set", "canary", "shop", "v3", "--endpoint", v3.URL)
	st := s.waitFor("v3 at its pause", 20*time.Second, atPause("v3"))
	rev := st.Revision

	// The case: stable v1, v2 promoted in full, canary v3, undo.
	// Argo goes back to revision N-1, v2, ending v3 at once even with a
	// rollback window of 0 (a rollback to the stable skips the steps).
	out := s.mustCLI("undo", "shop")
	if !strings.Contains(out, "rolled back to v2") {
		t.Errorf("undo said:\n%s", out)
	}
	st = s.status()
	if st.Phase != "Healthy" || st.StableVersion != "v2" || st.CanaryVersion != "" || st.Revision != rev+1 {
		t.Fatalf("after undo during the v3 canary: %+v, want v2 stable and no canary", st)
	}
	if !strings.Contains(st.Message, "undo: back to v2, the previous revision") {
		t.Errorf("message %q does not say what undo did", st.Message)
	}
	if sh := share(assign(t, s.Listen, 300), "v2"); sh != 100 {
		t.Fatalf("after undo v2 serves %.1f%%, want 100", sh)
	}
	if evs := eventsOf(s, "rollout-completed"); len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Message, "v3 is rolled back") {
		t.Errorf("no rollout-completed event for the undo: %+v", evs)
	}

	// An undo of that undo goes forward to v3 again, as Argo's does, and
	// walks the steps: v3 was never stable.
	s.mustCLI("undo", "shop")
	s.waitFor("v3 rolled out again, through its steps", 20*time.Second, atPause("v3"))

	// Promote v3, then undo: v2 is the previous revision and was stable
	// one revision ago, but {revisions: 0} means no fast rollback, so
	// the steps run as they do in Argo by default.
	s.mustCLI("promote", "shop", "--full")
	s.waitFor("v3 stable", 10*time.Second, func(st status) bool { return st.Phase == "Healthy" && st.StableVersion == "v3" })
	s.mustCLI("undo", "shop")
	s.waitFor("v2 rolled back through the steps", 20*time.Second, atPause("v2"))
	if st := s.status(); st.StableVersion != "v3" {
		t.Errorf("during the undo through the steps, stable is %s, want v3", st.StableVersion)
	}

	// Both shapes lint; a wrong one says what to write.
	dir := t.TempDir()
	for shape, want := range map[string]string{
		"rollbackWindow: {revisions: 2}": "",
		"rollbackWindow: 2":              "",
		"rollbackWindow: {revison: 2}":   `unknown field "revison" in rollbackWindow: the only field is revisions`,
	} {
		f := filepath.Join(dir, "r.yaml")
		writeFile(t, f, fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: r}
spec:
  listen: 127.0.0.1:1
  stable: {version: v1, endpoints: [http://127.0.0.1:2]}
  %s
`, shape))
		out, code := run(t, "lint", "-f", f)
		switch {
		case want == "" && code != 0:
			t.Errorf("lint of %q: exit %d:\n%s", shape, code, out)
		case want != "" && (code != 2 || !strings.Contains(out, "r.yaml:7:19") || !strings.Contains(out, want)):
			t.Errorf("lint of %q: exit %d, want 2 with %q at 7:19:\n%s", shape, code, want, out)
		}
	}
}

// mirrorLog is a canary backend that records the paths of the mirrored
// requests it receives.
type mirrorLog struct {
	mu    sync.Mutex
	paths []string
}

func (m *mirrorLog) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.paths...)
}

// Issue 11, items 2 and 3, through the binary: the match entries of a
// header route are alternatives (Argo with Istio makes each its own
// match), a regex must match the whole value, and a setMirrorRoute
// without match is refused by lint (Argo removes such a route).
func TestArgoHeaderAndMirrorRoutes(t *testing.T) {
	stable := startBackend(t, "v1")
	mirrors := &mirrorLog{}
	canaryURL := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Coalmine-Mirror") == "true" {
			mirrors.mu.Lock()
			mirrors.paths = append(mirrors.paths, r.URL.Path)
			mirrors.mu.Unlock()
		}
		w.Header().Set("X-Backend", "v2")
		io.WriteString(w, "v2") //nolint:errcheck
	})
	s := newServer(t, stable, stable)
	s.writeConfig(fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  trafficRouting:
    headerRoutes:
      - name: pinned
        to: stable
        match:
          - {headerName: X-Pin, headerValue: {exact: stable}}
          - {headerName: X-Region, headerValue: {regex: "eu-(west|north)"}}
  strategy:
    canary:
      steps:
        - setHeaderRoute:
            name: testers
            match:
              - {headerName: X-Tester, headerValue: {exact: "yes"}}
              - {headerName: X-Team, headerValue: {regex: "qa-.*"}}
        - setMirrorRoute:
            name: shadow
            percentage: 100
            match:
              - path: {regex: "/api/v[0-9]+"}
        - pause: {}
`, s.Listen, stable.URL, canaryURL))
	s.start()
	s.waitFor("the routes to be set, at the pause", 20*time.Second, func(st status) bool {
		return st.StepIndex == 2 && st.PauseReason == "PauseStep"
	})

	for _, c := range []struct {
		headers []string
		want    string
	}{
		{[]string{"X-Tester", "yes"}, "v2"},
		{[]string{"X-Team", "qa-berlin"}, "v2"},                      // the second entry alone routes: any may match
		{[]string{"X-Tester", "no", "X-Team", "qa-berlin"}, "v2"},    // one failing entry does not veto the other
		{[]string{"X-Team", "xqa-berlin"}, "v1"},                     // the regex must match the whole value
		{[]string{"X-Tester", "yes", "X-Pin", "stable"}, "v1"},       // the static route comes first
		{[]string{"X-Tester", "yes", "X-Region", "eu-west"}, "v1"},   // its second entry alone pins too
		{[]string{"X-Tester", "yes", "X-Region", "eu-west-2"}, "v2"}, // not the whole value: not pinned
		{[]string{"X-Tester", "maybe", "X-Region", "us-east"}, "v1"}, // nothing matches: weight 0
	} {
		if got := versionFor(t, s.Listen, "", c.headers...); got != c.want {
			t.Errorf("headers %v: served by %s, want %s", c.headers, got, c.want)
		}
	}

	// The mirror regex must match the whole path: /api/v2 is mirrored,
	// /api/v2/orders and /x/api/v2 are not.
	for _, p := range []string{"/api/v2/orders", "/x/api/v2", "/api/v2"} {
		resp, err := client.Get("http://" + s.Listen + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
	}
	eventually(t, 10*time.Second, "the mirror of /api/v2", func() bool { return len(mirrors.got()) >= 1 })
	time.Sleep(300 * time.Millisecond) // mirrors of the other two, if any, were sent before the last one
	if got := mirrors.got(); len(got) != 1 || got[0] != "/api/v2" {
		t.Errorf("mirrored paths %v, want only /api/v2", got)
	}

	// A mirror route with a percentage but no match: Argo removes such a
	// route, so lint refuses it and says how to mirror or remove.
	f := filepath.Join(t.TempDir(), "mirror.yaml")
	writeFile(t, f, fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: m}
spec:
  listen: 127.0.0.1:1
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  strategy:
    canary:
      steps:
        - setMirrorRoute: {name: shadow, percentage: 10}
        - pause: {}
`, stable.URL, canaryURL))
	out, code := run(t, "lint", "-f", f)
	if code != 2 || !strings.Contains(out, "mirror.yaml:11:11") || !strings.Contains(out, "a mirror route needs a match") ||
		!strings.Contains(out, "match: [{method: {exact: GET}}]") || !strings.Contains(out, `to remove route "shadow", give only its name`) {
		t.Errorf("lint of a mirror route without match: exit %d:\n%s", code, out)
	}
}
