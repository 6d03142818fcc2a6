package rollout

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// t0 is the start of every test's fake time.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is the controller's clock in tests: time moves only when the
// test says so.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Steps.

func setWeightStep(p float64) spec.Step { return spec.Step{SetWeight: &p} }

func pauseStep(d time.Duration) spec.Step {
	sd := spec.Duration(d)
	return spec.Step{Pause: &spec.PauseStep{Duration: &sd}}
}

func pauseUntilPromoted() spec.Step { return spec.Step{Pause: &spec.PauseStep{}} }

func analysisStep(template string) spec.Step {
	return spec.Step{Analysis: &spec.AnalysisStep{Templates: []spec.TemplateRef{{TemplateName: template}}}}
}

func headerRouteStep(name, header, value string) spec.Step {
	return spec.Step{SetHeaderRoute: &spec.HeaderRoute{Name: name, To: spec.RoleCanary,
		Match: []spec.HeaderMatch{{HeaderName: header, HeaderValue: spec.StringMatch{Exact: &value}}}}}
}

func removeHeaderRouteStep(name string) spec.Step {
	return spec.Step{SetHeaderRoute: &spec.HeaderRoute{Name: name}}
}

func mirrorRouteStep(name string, percent float64) spec.Step {
	return spec.Step{SetMirrorRoute: &spec.MirrorRoute{Name: name, Percentage: &percent}}
}

func removeMirrorRouteStep(name string) spec.Step {
	return spec.Step{SetMirrorRoute: &spec.MirrorRoute{Name: name}}
}

// storySteps are the steps of the acceptance story.
func storySteps() []spec.Step {
	return []spec.Step{setWeightStep(20), pauseStep(2 * time.Second), setWeightStep(50), pauseUntilPromoted(), setWeightStep(100)}
}

func version(v string, port int) spec.VersionSpec {
	return spec.VersionSpec{Version: v, Endpoints: []string{"http://127.0.0.1:" + strconv.Itoa(port)}}
}

func versionPtr(v string, port int) *spec.VersionSpec {
	vs := version(v, port)
	return &vs
}

// testRollout builds a valid rollout with defaults filled in, as
// internal/config hands them over. canary "" means no canary; nil steps
// means the story's steps.
func testRollout(name, stable, canary string, steps []spec.Step) spec.Rollout {
	if steps == nil {
		steps = storySteps()
	}
	r := spec.Rollout{
		APIVersion: spec.APIVersion, Kind: spec.KindRollout, Metadata: spec.Metadata{Name: name},
		Spec: spec.RolloutSpec{
			Listen:   "127.0.0.1:18080",
			Stable:   version(stable, 9001),
			Strategy: spec.Strategy{Canary: spec.CanaryStrategy{Steps: steps}},
		},
	}
	if canary != "" {
		c := version(canary, 9002)
		r.Spec.Canary = &c
	}
	r.SetDefaults()
	return r
}

// testSpec is the spec of testRollout.
func testSpec(steps []spec.Step) *spec.RolloutSpec {
	r := testRollout("shop", "v1", "v2", steps)
	return &r.Spec
}

// eventTypes lists the types of drafts.
func eventTypes(evs []EventDraft) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// snapshot encodes v so a test can tell whether a function changed its
// input through a shared pointer or slice.
func snapshot(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustContain(t testing.TB, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not mention %q", what, s, sub)
		}
	}
}
