package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
)

// harness is one coalmine process as the rollout layer sees it: a
// Controller over a real bolt store, an in-memory data plane and a fake
// clock. Tests call Reconcile themselves, step by step; nothing runs in
// the background.
type harness struct {
	t      *testing.T
	ctx    context.Context
	store  *bolt.Store
	clock  *fakeClock
	router *fakeRouter
	c      *Controller
	// files is what the configuration files say.
	files []spec.Rollout
	// revisions records the OnRevision calls of the current controller.
	revisions []string
	// beat names the part of a story being played, for failure messages.
	beat string
}

func newHarness(t *testing.T, files ...spec.Rollout) *harness {
	t.Helper()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, ctx: context.Background(), store: st, clock: newFakeClock(), files: files}
	h.start()
	return h
}

// start builds a new data plane and a new Controller on the store and
// loads the files, as a process start does.
func (h *harness) start() {
	h.t.Helper()
	r := newFakeRouter(h.store)
	h.t.Cleanup(func() {
		for _, v := range r.takeViolations() {
			h.t.Errorf("persist before acting: %s", v)
		}
	})
	h.router = r
	h.revisions = nil
	h.c = New(Config{Router: r, Store: h.store, Now: h.clock.Now,
		OnRevision: func(name string, rev int64, stable, canary string) {
			h.revisions = append(h.revisions, fmt.Sprintf("%s r%d %s→%s", name, rev, stable, canary))
		}})
	if err := h.c.Load(h.ctx, copyRollouts(h.t, h.files), nil, true); err != nil {
		h.fatalf("load: %v", err)
	}
}

// crash drops the controller and its data plane without stopping
// anything, as kill -9 does, and starts a new process on the same store.
func (h *harness) crash() { h.start() }

// reload is a SIGHUP with new file contents.
func (h *harness) reload(files ...spec.Rollout) {
	h.t.Helper()
	h.files = files
	if err := h.c.Load(h.ctx, copyRollouts(h.t, files), nil, false); err != nil {
		h.fatalf("reload: %v", err)
	}
}

func copyRollouts(t testing.TB, rs []spec.Rollout) []spec.Rollout {
	t.Helper()
	b, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	var out []spec.Rollout
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *harness) fatalf(format string, args ...any) {
	h.t.Helper()
	if h.beat != "" {
		format = "[" + h.beat + "] " + format
	}
	h.t.Fatalf(format, args...)
}

// reconcile runs one reconcile of name, as a worker does when the queue
// hands it out.
func (h *harness) reconcile(name string) {
	h.t.Helper()
	q := h.c.queue
	q.mu.Lock()
	delete(q.due, name)
	q.mu.Unlock()
	if err := h.c.Reconcile(h.ctx, name); err != nil {
		h.fatalf("reconcile %s: %v", name, err)
	}
}

// due reports when the queue will next reconcile name.
func (h *harness) due(name string) (time.Time, bool) {
	q := h.c.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	at, ok := q.due[name]
	return at, ok
}

func (h *harness) status(name string) model.Status {
	h.t.Helper()
	v, err := h.c.Get(h.ctx, name)
	if err != nil {
		h.fatalf("get %s: %v", name, err)
	}
	return v.Status
}

func (h *harness) events(name string) []model.Event {
	h.t.Helper()
	evs, err := h.c.Events(h.ctx, name, 0, 0)
	if err != nil {
		h.fatalf("events of %s: %v", name, err)
	}
	return evs
}

func (h *harness) eventTypes(name string) []string {
	out := []string{}
	for _, e := range h.events(name) {
		out = append(out, e.Type)
	}
	return out
}

// checkSequence checks that name's events are numbered 1..n.
func (h *harness) checkSequence(name string) {
	h.t.Helper()
	evs := h.events(name)
	for i, e := range evs {
		if e.Seq != uint64(i+1) || e.Rollout != name || e.Time.IsZero() {
			h.fatalf("event %d of %s: seq %d rollout %q time %v; events must be numbered 1..n", i, name, e.Seq, e.Rollout, e.Time)
		}
	}
	if st := h.status(name); st.LastEventSeq != uint64(len(evs)) {
		h.fatalf("LastEventSeq %d with %d events", st.LastEventSeq, len(evs))
	}
}

// want is what a rollout's status and data plane must show.
type want struct {
	phase    model.Phase
	revision int64
	step     int
	weight   float64
	stable   string
	canary   string
	reason   model.PauseReason
}

// expect checks the status and that the data plane routes what it says.
func (h *harness) expect(name string, w want) model.Status {
	h.t.Helper()
	st := h.status(name)
	got := want{st.Phase, st.Revision, st.StepIndex, st.Weight, st.StableVersion, st.CanaryVersion, st.PauseReason}
	if got != w {
		h.fatalf("status %+v\n          want %+v\n(message %q)", got, w, st.Message)
	}
	tbl := h.router.table(name)
	if tbl == nil || tbl.Weight.Percent() != w.weight || tbl.Revision != w.revision {
		h.fatalf("the data plane routes with %+v, want weight %v revision %d", tbl, w.weight, w.revision)
	}
	served, _ := h.router.served(name)
	if served.Spec.Stable.Version != w.stable || versionOf(served.Spec.Canary) != w.canary {
		h.fatalf("the data plane serves stable %s canary %q, want %s and %q", served.Spec.Stable.Version, versionOf(served.Spec.Canary), w.stable, w.canary)
	}
	return st
}

// beat is one part of a story; it acts and checks what follows.
type beat struct {
	name string
	do   func(h *harness)
}

// storyBeats is the acceptance story of the issue: a rollout with
// setWeight 20, pause 2s, setWeight 50, pause {}, setWeight 100.
func storyBeats() []beat {
	const shop = "shop"
	rev1 := func(phase model.Phase, step int, weight float64, reason model.PauseReason) want {
		return want{phase: phase, revision: 1, step: step, weight: weight, stable: "v1", canary: "v2", reason: reason}
	}
	rev2 := func(phase model.Phase, step int, weight float64, reason model.PauseReason) want {
		return want{phase: phase, revision: 2, step: step, weight: weight, stable: "v2", canary: "v3", reason: reason}
	}
	return []beat{
		{"the file names canary v2: revision 1 starts at step 0 with nothing on the canary", func(h *harness) {
			h.expect(shop, rev1(model.PhaseProgressing, 0, 0, ""))
			if at, ok := h.due(shop); !ok || at.After(h.clock.Now()) {
				h.fatalf("a loaded rollout is not due at once: %v %v", at, ok)
			}
		}},
		{"the first reconcile applies setWeight 20", func(h *harness) {
			h.reconcile(shop)
			h.expect(shop, rev1(model.PhaseProgressing, 0, 20, ""))
		}},
		{"once the data plane routes 20% the 2s pause starts, measured from its persisted start", func(h *harness) {
			h.reconcile(shop)
			st := h.expect(shop, rev1(model.PhasePaused, 1, 20, model.PauseStep))
			end := t0.Add(2 * time.Second)
			if st.PauseUntil == nil || !st.PauseUntil.Equal(end) {
				h.fatalf("PauseUntil = %v, want %v", st.PauseUntil, end)
			}
			if at, _ := h.due(shop); !at.Equal(end) {
				h.fatalf("next reconcile at %v, want the end of the pause %v", at, end)
			}
		}},
		{"a second later the pause still holds", func(h *harness) {
			h.clock.Advance(time.Second)
			h.reconcile(shop)
			h.expect(shop, rev1(model.PhasePaused, 1, 20, model.PauseStep))
		}},
		{"when the pause ends setWeight 50 is applied on its own", func(h *harness) {
			h.clock.Advance(time.Second)
			h.reconcile(shop)
			h.expect(shop, rev1(model.PhaseProgressing, 2, 50, ""))
		}},
		{"then the rollout waits at the indefinite pause with 50%", func(h *harness) {
			h.reconcile(shop)
			h.expect(shop, rev1(model.PhasePaused, 3, 50, model.PauseStep))
		}},
		{"nothing but a promote moves it on", func(h *harness) {
			h.clock.Advance(time.Hour)
			h.reconcile(shop)
			h.expect(shop, rev1(model.PhasePaused, 3, 50, model.PauseStep))
			if at, ok := h.due(shop); ok {
				h.fatalf("an indefinite pause asks to be reconciled at %v", at)
			}
		}},
		{"promote leaves the pause", func(h *harness) {
			v, err := h.c.Promote(h.ctx, shop, false)
			if err != nil {
				h.fatalf("promote: %v", err)
			}
			if v.Status.StepIndex != 4 {
				h.fatalf("promote returned step %d", v.Status.StepIndex)
			}
			h.expect(shop, rev1(model.PhaseProgressing, 4, 50, ""))
		}},
		{"setWeight 100 is applied", func(h *harness) {
			h.reconcile(shop)
			h.expect(shop, rev1(model.PhaseProgressing, 4, 100, ""))
		}},
		{"and the rollout completes: v2 is the new stable, serving 100%", func(h *harness) {
			h.reconcile(shop)
			st := h.expect(shop, want{phase: model.PhaseHealthy, revision: 1, step: 5, weight: 0, stable: "v2"})
			mustContain(h.t, "message", st.Message, "v2 is the new stable, serving 100%")
			served, _ := h.router.served(shop)
			if !reflect.DeepEqual(served.Spec.Stable, version("v2", 9002)) || served.Spec.Canary != nil || h.router.table(shop).Weight != 0 {
				h.fatalf("the data plane serves stable %+v canary %+v weight %s; want v2 with its endpoints, no canary, weight 0",
					served.Spec.Stable, served.Spec.Canary, h.router.table(shop).Weight)
			}
		}},
		{"set canary v3 starts revision 2 over the new stable", func(h *harness) {
			if _, err := h.c.SetCanary(h.ctx, shop, version("v3", 9003)); err != nil {
				h.fatalf("set canary: %v", err)
			}
			h.expect(shop, rev2(model.PhaseProgressing, 0, 0, ""))
		}},
		{"which applies setWeight 20", func(h *harness) {
			h.reconcile(shop)
			h.expect(shop, rev2(model.PhaseProgressing, 0, 20, ""))
		}},
		{"abort returns all traffic to stable at once", func(h *harness) {
			v, err := h.c.Abort(h.ctx, shop)
			if err != nil {
				h.fatalf("abort: %v", err)
			}
			if !v.Status.Aborted {
				h.fatalf("abort returned %+v", v.Status)
			}
			h.expect(shop, rev2(model.PhaseDegraded, 0, 0, ""))
		}},
		{"an aborted rollout stays put", func(h *harness) {
			h.clock.Advance(time.Hour)
			h.reconcile(shop)
			h.expect(shop, rev2(model.PhaseDegraded, 0, 0, ""))
			if _, err := h.c.Abort(h.ctx, shop); !errors.Is(err, model.ErrConflict) {
				h.fatalf("abort twice: %v, want a conflict", err)
			}
		}},
		{"retry starts again at step 0", func(h *harness) {
			if _, err := h.c.Retry(h.ctx, shop); err != nil {
				h.fatalf("retry: %v", err)
			}
			h.expect(shop, rev2(model.PhaseProgressing, 0, 0, ""))
		}},
		{"and applies setWeight 20 again", func(h *harness) {
			h.reconcile(shop)
			h.expect(shop, rev2(model.PhaseProgressing, 0, 20, ""))
		}},
		{"promote --full completes at once", func(h *harness) {
			if _, err := h.c.Promote(h.ctx, shop, true); err != nil {
				h.fatalf("promote --full: %v", err)
			}
			h.expect(shop, want{phase: model.PhaseHealthy, revision: 2, step: 5, weight: 0, stable: "v3"})
		}},
		{"and nothing more happens", func(h *harness) {
			h.reconcile(shop)
			h.clock.Advance(time.Hour)
			h.reconcile(shop)
			h.expect(shop, want{phase: model.PhaseHealthy, revision: 2, step: 5, weight: 0, stable: "v3"})
		}},
	}
}

// storyEvents are the events of the story, in order.
var storyEvents = []string{
	// revision 1
	EventStarted, EventWeightChanged, EventStepCompleted, EventPaused,
	EventStepCompleted, EventWeightChanged, EventStepCompleted, EventPaused,
	EventPromoted, EventStepCompleted, EventWeightChanged, EventStepCompleted, EventCompleted,
	// revision 2
	EventStarted, EventWeightChanged, EventAborted, EventStarted, EventWeightChanged, EventPromoted, EventCompleted,
}

func TestAcceptanceStory(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	for _, b := range storyBeats() {
		h.beat = b.name
		b.do(h)
	}
	h.beat = ""
	if got := h.eventTypes("shop"); !sameStrings(got, storyEvents) {
		t.Errorf("events\n got %v\nwant %v", got, storyEvents)
	}
	h.checkSequence("shop")
	for _, e := range h.events("shop") {
		if want := int64(1); e.Seq > 13 {
			want = 2
			if e.Revision != want {
				t.Errorf("event %d (%s) has revision %d, want %d", e.Seq, e.Type, e.Revision, want)
			}
		} else if e.Revision != want {
			t.Errorf("event %d (%s) has revision %d, want %d", e.Seq, e.Type, e.Revision, want)
		}
	}
	// Telemetry restarts with each revision and with each completion, which
	// stops routing the old stable.
	want := []string{"shop r1 v1→v2", "shop r1 v2→", "shop r2 v2→v3", "shop r2 v3→"}
	if !slices.Equal(h.revisions, want) {
		t.Errorf("OnRevision calls %v, want %v", h.revisions, want)
	}
}

// TestAcceptanceStorySurvivesACrashAtEveryPoint plays the story again,
// killing the process after every beat: a new Controller on the same
// store, loading the same files, resumes exactly where the old one was
// (same status, same data plane weight, same events), and the story ends
// with the same events as without crashes: nothing announced twice,
// nothing lost.
func TestAcceptanceStorySurvivesACrashAtEveryPoint(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	for _, b := range storyBeats() {
		h.beat = b.name
		b.do(h)

		before, beforeEvents := h.status("shop"), h.events("shop")
		beforeTable := h.router.table("shop")
		h.crash()
		after, afterEvents := h.status("shop"), h.events("shop")
		if !reflect.DeepEqual(before, after) {
			h.fatalf("after a crash the status differs:\nbefore %+v\nafter  %+v", before, after)
		}
		if !reflect.DeepEqual(beforeEvents, afterEvents) {
			h.fatalf("after a crash the events differ: %d before, %d after", len(beforeEvents), len(afterEvents))
		}
		if at := h.router.table("shop"); at.Weight != beforeTable.Weight || at.Revision != beforeTable.Revision {
			h.fatalf("after a crash the data plane routes weight %s revision %d, before %s revision %d", at.Weight, at.Revision, beforeTable.Weight, beforeTable.Revision)
		}
		h.checkSequence("shop")
	}
	h.beat = ""
	if got := h.eventTypes("shop"); !sameStrings(got, storyEvents) {
		t.Errorf("events\n got %v\nwant %v", got, storyEvents)
	}
}

// TestCrashInTheMiddleOfAStep checks the restart points inside a step:
// a setWeight waiting for the data plane keeps its deadline, a timed
// pause keeps its end, and a reconcile after the restart announces
// nothing again.
func TestCrashInTheMiddleOfAStep(t *testing.T) {
	r := testRollout("shop", "v1", "v2", nil)
	r.Spec.ProgressDeadline = spec.Duration(time.Minute)
	h := newHarness(t, r)
	h.router.setDown("shop", true)
	h.reconcile("shop") // setWeight 20 applied
	h.clock.Advance(40 * time.Second)
	h.reconcile("shop") // waiting for a healthy canary endpoint
	n := len(h.events("shop"))

	h.crash()
	h.router.setDown("shop", true)
	h.reconcile("shop")
	if got := len(h.events("shop")); got != n {
		t.Fatalf("a reconcile after the restart added events: %v", h.eventTypes("shop")[n:])
	}
	h.expect("shop", want{phase: model.PhaseProgressing, revision: 1, weight: 20, stable: "v1", canary: "v2"})
	// The deadline counts from before the crash: 20s more and it aborts.
	h.clock.Advance(20 * time.Second)
	h.reconcile("shop")
	st := h.expect("shop", want{phase: model.PhaseDegraded, revision: 1, weight: 0, stable: "v1", canary: "v2"})
	mustContain(t, "message", st.Message, "progressDeadline 1m0s", "no healthy endpoint")

	// A timed pause: crash halfway, the end stays where it was.
	h2 := newHarness(t, testRollout("shop", "v1", "v2", nil))
	h2.reconcile("shop")
	h2.reconcile("shop")
	end := *h2.status("shop").PauseUntil
	h2.clock.Advance(1500 * time.Millisecond)
	h2.crash()
	h2.reconcile("shop")
	st = h2.expect("shop", want{phase: model.PhasePaused, revision: 1, step: 1, weight: 20, stable: "v1", canary: "v2", reason: model.PauseStep})
	if !st.PauseUntil.Equal(end) {
		t.Errorf("PauseUntil %v after the restart, want %v", st.PauseUntil, end)
	}
	if at, _ := h2.due("shop"); !at.Equal(end) {
		t.Errorf("after the restart the pause wakes at %v, want %v", at, end)
	}
	h2.clock.Advance(500 * time.Millisecond)
	h2.reconcile("shop")
	h2.expect("shop", want{phase: model.PhaseProgressing, revision: 1, step: 2, weight: 50, stable: "v1", canary: "v2"})
	h2.checkSequence("shop")
}

// TestWeightIsPersistedBeforeTheDataPlaneGetsIt checks the fake data
// plane's own check, so that a story passing means something: told a
// weight the store does not hold, it records a violation.
func TestWeightIsPersistedBeforeTheDataPlaneGetsIt(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	h.reconcile("shop")
	if v := h.router.takeViolations(); len(v) != 0 {
		t.Fatalf("violations in a normal reconcile: %v", v)
	}
	stale := h.router.table("shop").WithWeight(7700, 99)
	if err := h.router.SetTable("shop", stale); err != nil {
		t.Fatal(err)
	}
	if v := h.router.takeViolations(); len(v) != 1 || !strings.Contains(v[0], "weight 77%") {
		t.Fatalf("the check did not catch an unstored weight: %v", v)
	}
}

// TestDataPlaneFailureIsCaughtUp: the state is saved but the data plane
// refuses the table (as if the process died between the two); the next
// reconcile gives it the stored weight, and the step waits until then.
func TestDataPlaneFailureIsCaughtUp(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	h.router.fail(errors.New("proxy busy"))
	if err := h.c.Reconcile(h.ctx, "shop"); err == nil || !strings.Contains(err.Error(), "proxy busy") {
		t.Fatalf("reconcile with a failing data plane: %v", err)
	}
	if st := h.status("shop"); st.Weight != 20 || h.router.table("shop").Weight != 0 {
		t.Fatalf("stored weight %v, routed %s: want 20 stored, 0 routed", st.Weight, h.router.table("shop").Weight)
	}
	h.reconcile("shop")
	h.expect("shop", want{phase: model.PhaseProgressing, revision: 1, weight: 20, stable: "v1", canary: "v2"})
	h.reconcile("shop")
	h.expect("shop", want{phase: model.PhasePaused, revision: 1, step: 1, weight: 20, stable: "v1", canary: "v2", reason: model.PauseStep})
}

// TestLoadKeepsAPIChangesWhileTheFileIsUnchanged: a canary set through
// the API survives restarts and reloads of an unchanged file; an edited
// file wins.
func TestLoadKeepsAPIChangesWhileTheFileIsUnchanged(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	if _, err := h.c.SetCanary(h.ctx, "shop", version("v3", 9003)); err != nil {
		t.Fatal(err)
	}
	v3 := want{phase: model.PhaseProgressing, revision: 2, stable: "v1", canary: "v3"}
	h.expect("shop", v3)

	h.crash()
	h.expect("shop", v3)
	h.reload(testRollout("shop", "v1", "v2", nil))
	h.expect("shop", v3)

	h.reload(testRollout("shop", "v1", "v4", nil))
	h.expect("shop", want{phase: model.PhaseProgressing, revision: 3, stable: "v1", canary: "v4"})
	h.crash()
	h.expect("shop", want{phase: model.PhaseProgressing, revision: 3, stable: "v1", canary: "v4"})
	got := h.eventTypes("shop")
	if want := []string{EventStarted, EventStarted, EventStarted}; !sameStrings(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	h.checkSequence("shop")

	// SetCanary refuses what would not start a revision.
	for _, tc := range []struct {
		version string
		msg     string
	}{
		{"v4", "already rolling out v4"},
		{"v1", "already has v1 as its stable version"},
	} {
		if _, err := h.c.SetCanary(h.ctx, "shop", version(tc.version, 9004)); !errors.Is(err, model.ErrConflict) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("set canary %s: %v, want a conflict saying %q", tc.version, err, tc.msg)
		}
	}
	if _, err := h.c.Abort(h.ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.SetCanary(h.ctx, "shop", version("v4", 9004)); !errors.Is(err, model.ErrConflict) || !strings.Contains(err.Error(), "coalmine retry") {
		t.Errorf("set canary of the aborted version: %v, want a conflict pointing at retry", err)
	}
	// An invalid canary is rejected and the running spec stays.
	if _, err := h.c.SetCanary(h.ctx, "shop", spec.VersionSpec{Version: "v5", Endpoints: []string{"not a url"}}); err == nil {
		t.Errorf("set canary with a bad endpoint was accepted")
	}
	h.expect("shop", want{phase: model.PhaseDegraded, revision: 3, stable: "v1", canary: "v4"})
}

// TestReloadRemovesARolloutGoneFromTheFiles: a SIGHUP without a file's
// rollout stops serving it and deletes its state and events; one applied
// through the API stays, across restarts too.
func TestReloadRemovesARolloutGoneFromTheFiles(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil), testRollout("cart", "v1", "v2", nil))
	api := testRollout("search", "v1", "", nil)
	if _, err := h.c.Apply(h.ctx, api); err != nil {
		t.Fatal(err)
	}
	h.reconcile("cart")
	ch, err := h.c.Watch(h.ctx, "cart", 0)
	if err != nil {
		t.Fatal(err)
	}

	h.reload(testRollout("shop", "v1", "v2", nil))

	if _, err := h.c.Get(h.ctx, "cart"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("get cart after removal: %v, want not found", err)
	}
	if _, err := h.c.Events(h.ctx, "cart", 0, 0); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("events of cart after removal: %v, want not found", err)
	}
	if _, err := h.store.Get(h.ctx, stateCollection, "cart"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stored state of cart: %v, want none", err)
	}
	if seq, _ := h.store.LastSeq(h.ctx, model.EventStream("cart")); seq != 0 {
		t.Errorf("cart's event stream is still there (last seq %d)", seq)
	}
	if _, ok := h.router.served("cart"); ok || !sameStrings(h.router.removed, []string{"cart"}) {
		t.Errorf("the data plane still serves cart (removed %v)", h.router.removed)
	}
	// The watch of a removed rollout ends.
	drainUntilClosed(t, ch)
	if err := h.c.Reconcile(h.ctx, "cart"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("reconcile of a removed rollout: %v", err)
	}

	h.crash()
	views, err := h.c.List(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range views {
		names = append(names, v.Metadata.Name)
	}
	if !sameStrings(names, []string{"search", "shop"}) {
		t.Errorf("after a restart: %v, want [search shop]", names)
	}

	// A file rollout missing at start-up is removed too.
	h.files = nil
	h.crash()
	if _, err := h.c.Get(h.ctx, "shop"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("shop is still there after starting without its file: %v", err)
	}
	if _, err := h.c.Get(h.ctx, "search"); err != nil {
		t.Errorf("the API-applied rollout is gone: %v", err)
	}
}

func recvUpdate(t *testing.T, ch <-chan model.WatchUpdate) model.WatchUpdate {
	t.Helper()
	select {
	case u, ok := <-ch:
		if !ok {
			t.Fatal("the watch ended")
		}
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("no watch update within 5s")
		return model.WatchUpdate{}
	}
}

func drainUntilClosed(t *testing.T, ch <-chan model.WatchUpdate) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the watch did not end within 5s")
		}
	}
}

// TestWatch: a watch delivers the current view, then the events after
// `after`, then what happens as it happens, until its context ends.
func TestWatch(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	h.reconcile("shop")
	h.reconcile("shop") // events 1..4: started, weight-changed, step-completed, paused

	if _, err := h.c.Watch(h.ctx, "nope", 0); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("watch of an unknown rollout: %v", err)
	}

	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	ch, err := h.c.Watch(ctx, "shop", 2)
	if err != nil {
		t.Fatal(err)
	}
	u := recvUpdate(t, ch)
	if u.View == nil || u.Event != nil || u.View.Status.StepIndex != 1 || u.View.Status.LastEventSeq != 4 {
		t.Fatalf("first update %+v, want the current view", u)
	}
	for _, seq := range []uint64{3, 4} {
		u := recvUpdate(t, ch)
		if u.Event == nil || u.Event.Seq != seq {
			t.Fatalf("backlog: got %+v, want event %d", u, seq)
		}
	}

	if _, err := h.c.Pause(h.ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	u = recvUpdate(t, ch)
	if u.Event == nil || u.Event.Seq != 5 || u.Event.Type != EventPaused {
		t.Fatalf("live: got %+v, want event 5 (paused)", u)
	}
	u = recvUpdate(t, ch)
	if u.View == nil || u.View.Status.PauseReason != model.PauseManual {
		t.Fatalf("live: got %+v, want the view after the pause", u)
	}

	cancel()
	drainUntilClosed(t, ch)
}

// TestCanaryWithoutHealthyEndpoint: setWeight never counts as done while
// the canary has no healthy endpoint; it waits, says why, and aborts
// after progressDeadline. A canary that recovers in time goes on.
func TestCanaryWithoutHealthyEndpoint(t *testing.T) {
	r := testRollout("shop", "v1", "v2", nil)
	r.Spec.ProgressDeadline = spec.Duration(time.Minute)

	h := newHarness(t, r)
	h.router.setDown("shop", true)
	h.reconcile("shop")
	h.reconcile("shop")
	st := h.expect("shop", want{phase: model.PhaseProgressing, revision: 1, weight: 20, stable: "v1", canary: "v2"})
	mustContain(t, "message", st.Message, "waiting for canary v2 to have a healthy endpoint", "aborts at 2026-01-02T03:05:05Z")
	if st.ObservedWeight != 0 {
		t.Errorf("ObservedWeight = %v while the canary is down, want 0", st.ObservedWeight)
	}
	deadline := t0.Add(time.Minute)
	if at, ok := h.due("shop"); !ok || at.After(deadline) {
		t.Errorf("next look at %v, want one before the deadline %v", at, deadline)
	}
	h.clock.Advance(59 * time.Second)
	h.reconcile("shop")
	h.expect("shop", want{phase: model.PhaseProgressing, revision: 1, weight: 20, stable: "v1", canary: "v2"})
	if at, _ := h.due("shop"); !at.Equal(deadline) {
		t.Errorf("next look at %v, want the deadline %v", at, deadline)
	}
	h.clock.Advance(time.Second)
	h.reconcile("shop")
	st = h.expect("shop", want{phase: model.PhaseDegraded, revision: 1, weight: 0, stable: "v1", canary: "v2"})
	mustContain(t, "message", st.Message, "did not take effect within progressDeadline 1m0s", "canary v2 has no healthy endpoint")
	evs := h.events("shop")
	if last := evs[len(evs)-1]; last.Type != EventAborted {
		t.Errorf("last event %s, want %s", last.Type, EventAborted)
	}

	// The same, but the canary recovers before the deadline.
	h2 := newHarness(t, r)
	h2.router.setDown("shop", true)
	h2.reconcile("shop")
	h2.clock.Advance(30 * time.Second)
	h2.reconcile("shop")
	h2.router.setDown("shop", false)
	h2.reconcile("shop")
	h2.expect("shop", want{phase: model.PhasePaused, revision: 1, step: 1, weight: 20, stable: "v1", canary: "v2", reason: model.PauseStep})
}

// TestEndpointHealthBecomesAnEvent: the data plane reports an endpoint
// going down; the controller records it as an event and wakes the rollout.
func TestEndpointHealthBecomesAnEvent(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	h.reconcile("shop")
	h.clock.Advance(time.Second)
	h.c.EndpointHealth("shop", spec.RoleCanary, "v2", "http://127.0.0.1:9002", false, "3 failed checks: connection refused")
	// What Run's health goroutine does, step by step.
	hc := <-h.c.health
	if err := h.c.appendHealthEvent(h.ctx, hc); err != nil {
		t.Fatal(err)
	}
	evs := h.events("shop")
	last := evs[len(evs)-1]
	if last.Type != EventEndpointDown || last.Revision != 1 || !last.Time.Equal(t0.Add(time.Second)) {
		t.Fatalf("last event %+v, want endpoint-unhealthy at t0+1s", last)
	}
	mustContain(t, "event", last.Message, "canary endpoint http://127.0.0.1:9002 of v2 is unhealthy", "connection refused")
	if last.Details["endpoint"] != "http://127.0.0.1:9002" || last.Details["role"] != "canary" {
		t.Errorf("details %v", last.Details)
	}
	h.checkSequence("shop")
	// The state itself did not move.
	h.expect("shop", want{phase: model.PhaseProgressing, revision: 1, weight: 20, stable: "v1", canary: "v2"})

	// A report for a rollout that is gone is dropped without harm.
	if err := h.c.appendHealthEvent(h.ctx, healthChange{rollout: "gone"}); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("health event of an unknown rollout: %v", err)
	}
}

// TestCommandsThroughTheController: the controller's commands return the
// pure functions' conflicts unchanged and do nothing then.
func TestCommandsThroughTheController(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil), testRollout("idle", "v1", "", nil))
	h.reconcile("shop")
	n := len(h.events("shop"))
	for _, tc := range []struct {
		name string
		do   func() (model.View, error)
		err  error
	}{
		{"promote at a setWeight step", func() (model.View, error) { return h.c.Promote(h.ctx, "shop", false) }, model.ErrConflict},
		{"resume when not paused", func() (model.View, error) { return h.c.Resume(h.ctx, "shop") }, model.ErrConflict},
		{"retry when not aborted", func() (model.View, error) { return h.c.Retry(h.ctx, "shop") }, model.ErrConflict},
		{"set weight above 100%", func() (model.View, error) { return h.c.SetWeight(h.ctx, "shop", spec.MaxWeight+1) }, model.ErrInvalid},
		{"abort on Healthy", func() (model.View, error) { return h.c.Abort(h.ctx, "idle") }, model.ErrConflict},
		{"undo without history", func() (model.View, error) { return h.c.Undo(h.ctx, "idle", 0) }, model.ErrConflict},
		{"promote an unknown rollout", func() (model.View, error) { return h.c.Promote(h.ctx, "nope", false) }, model.ErrNotFound},
	} {
		if _, err := tc.do(); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	if got := len(h.events("shop")); got != n {
		t.Errorf("refused commands added events: %v", h.eventTypes("shop")[n:])
	}

	// set weight pauses by hand and reaches the data plane before it returns.
	v, err := h.c.SetWeight(h.ctx, "shop", 250)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status.Weight != 2.5 || v.Status.PauseReason != model.PauseManual || h.router.table("shop").Weight != 250 {
		t.Errorf("after set weight: %+v, table %s", v.Status, h.router.table("shop").Weight)
	}
	h.reconcile("shop")
	h.expect("shop", want{phase: model.PhasePaused, revision: 1, weight: 2.5, stable: "v1", canary: "v2", reason: model.PauseManual})
	if _, err := h.c.Resume(h.ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	h.reconcile("shop")
	h.expect("shop", want{phase: model.PhaseProgressing, revision: 1, weight: 20, stable: "v1", canary: "v2"})
	types := h.eventTypes("shop")[n:]
	if want := []string{EventWeightChanged, EventPaused, EventResumed, EventWeightChanged}; !sameStrings(types, want) {
		t.Errorf("events %v, want %v", types, want)
	}
}

// TestUndoThroughTheController: after v2 was promoted, undo goes back to
// v1 at once (fast rollback), and with rollbackWindow 0 walks the steps.
func TestUndoThroughTheController(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window spec.RollbackWindow
		want   want
	}{
		{"fast within the rollback window", 1, want{phase: model.PhaseHealthy, revision: 2, step: 5, weight: 0, stable: "v1"}},
		{"the steps with rollbackWindow 0", 0, want{phase: model.PhaseProgressing, revision: 2, weight: 0, stable: "v2", canary: "v1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testRollout("shop", "v1", "v2", nil)
			r.Spec.RollbackWindow = &tc.window
			h := newHarness(t, r)
			if _, err := h.c.Promote(h.ctx, "shop", true); err != nil {
				t.Fatal(err)
			}
			if _, err := h.c.Undo(h.ctx, "shop", 0); err != nil {
				t.Fatal(err)
			}
			h.expect("shop", tc.want)
			h.crash()
			h.expect("shop", tc.want)
		})
	}
}

// TestUndoDuringACanaryGoesToThePreviousRevision is issue 11's case: v1,
// then v2 promoted in full, then v3 set as canary; undo goes back to v2
// (Argo's revision N-1), ending v3 at once whatever rollbackWindow says,
// not to v1.
func TestUndoDuringACanaryGoesToThePreviousRevision(t *testing.T) {
	for _, window := range []spec.RollbackWindow{0, 1} {
		t.Run(fmt.Sprintf("rollbackWindow %d", window), func(t *testing.T) {
			r := testRollout("shop", "v1", "", nil)
			r.Spec.RollbackWindow = &window
			h := newHarness(t, r)
			if _, err := h.c.SetCanary(h.ctx, "shop", version("v2", 9002)); err != nil {
				t.Fatal(err)
			}
			if _, err := h.c.Promote(h.ctx, "shop", true); err != nil {
				t.Fatal(err)
			}
			if _, err := h.c.SetCanary(h.ctx, "shop", version("v3", 9003)); err != nil {
				t.Fatal(err)
			}
			v, err := h.c.Undo(h.ctx, "shop", 0)
			if err != nil {
				t.Fatal(err)
			}
			want := want{phase: model.PhaseHealthy, revision: 4, weight: 0, stable: "v2"}
			h.expect("shop", want)
			if v.Status.StableVersion != "v2" || v.Status.CanaryVersion != "" || !strings.Contains(v.Status.Message, "undo: back to v2, the previous revision") {
				t.Errorf("undo answered stable %q canary %q message %q, want v2, none and what undo did", v.Status.StableVersion, v.Status.CanaryVersion, v.Status.Message)
			}
			// Undo again goes forward to v3, as Argo's undo of an undo does,
			// and walks the steps: v3 was never stable.
			if _, err := h.c.Undo(h.ctx, "shop", 0); err != nil {
				t.Fatal(err)
			}
			h.expect("shop", want2(model.PhaseProgressing, 5, "v2", "v3"))
			h.crash()
			h.expect("shop", want2(model.PhaseProgressing, 5, "v2", "v3"))
		})
	}
}

// TestUndoToARevisionThatEndedOnTheStable: --to-revision naming the
// revision that promoted the current stable ends the canary at once too,
// and says which revision it went back to.
func TestUndoToARevisionThatEndedOnTheStable(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	if _, err := h.c.Promote(h.ctx, "shop", true); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.SetCanary(h.ctx, "shop", version("v3", 9003)); err != nil {
		t.Fatal(err)
	}
	v, err := h.c.Undo(h.ctx, "shop", 1)
	if err != nil {
		t.Fatal(err)
	}
	h.expect("shop", want{phase: model.PhaseHealthy, revision: 3, stable: "v2"})
	if !strings.Contains(v.Status.Message, "undo: back to v2, as revision 1 ended") {
		t.Errorf("message %q", v.Status.Message)
	}
}

func want2(phase model.Phase, revision int64, stable, canary string) want {
	return want{phase: phase, revision: revision, stable: stable, canary: canary}
}

// TestRun lets the controller run on its own with the real clock: the
// queue and the workers take a rollout through its steps, and an endpoint
// health report arrives as an event.
func TestRun(t *testing.T) {
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	router := newFakeRouter(st)
	c := New(Config{Router: router, Store: st, Workers: 2})
	steps := []spec.Step{setWeightStep(20), pauseStep(20 * time.Millisecond), setWeightStep(50), setWeightStep(100)}
	if err := c.Load(context.Background(), []spec.Rollout{testRollout("shop", "v1", "v2", steps), testRollout("cart", "v1", "v2", steps)}, nil, true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		for _, v := range router.takeViolations() {
			t.Errorf("persist before acting: %s", v)
		}
	}()

	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	for _, name := range []string{"shop", "cart"} {
		ch, err := c.Watch(wctx, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		waitForEvent(t, ch, EventCompleted)
		v, err := c.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status.Phase != model.PhaseHealthy || v.Status.StableVersion != "v2" || router.table(name).Weight != 0 {
			t.Errorf("%s: %+v", name, v.Status)
		}
	}

	ch, err := c.Watch(wctx, "shop", 0)
	if err != nil {
		t.Fatal(err)
	}
	c.EndpointHealth("shop", spec.RoleStable, "v2", "http://127.0.0.1:9002", false, "timeout")
	waitForEvent(t, ch, EventEndpointDown)
}

// waitForEvent reads a watch until an event of type typ arrives.
func waitForEvent(t *testing.T, ch <-chan model.WatchUpdate, typ string) model.Event {
	t.Helper()
	for {
		u, ok := <-ch
		if !ok {
			t.Fatalf("the watch ended before a %s event", typ)
		}
		if u.Event != nil && u.Event.Type == typ {
			return *u.Event
		}
	}
}

// benchController loads n rollouts with steps into a controller over a
// bolt store in a temporary directory, and returns the live heap each
// rollout costs (to report after the timed loop: ResetTimer drops
// metrics reported before it).
func benchController(b *testing.B, n int, steps []spec.Step) (*Controller, *fakeClock, []string, float64) {
	b.Helper()
	st, err := bolt.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	clk := newFakeClock()
	c := New(Config{Router: newFakeRouter(nil), Store: st, Now: clk.Now})
	rollouts := make([]spec.Rollout, n)
	names := make([]string, n)
	for i := range rollouts {
		names[i] = fmt.Sprintf("r%04d", i)
		rollouts[i] = testRollout(names[i], "v1", "v2", steps)
	}
	var before, after runtimeMem
	before.read()
	if err := c.Load(context.Background(), rollouts, nil, true); err != nil {
		b.Fatal(err)
	}
	rollouts = nil
	after.read()
	return c, clk, names, float64(after.heap-before.heap) / float64(n)
}

// BenchmarkReconcile measures one Reconcile among 1,000 rollouts: one
// that changes nothing (a rollout at an indefinite pause) and one that
// advances a step (a timed pause ends and the next begins: one atomic,
// fsynced commit with two events).
func BenchmarkReconcile(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	b.Run("unchanged", func(b *testing.B) {
		c, _, names, perRollout := benchController(b, n, []spec.Step{pauseUntilPromoted()})
		for _, name := range names {
			if err := c.Reconcile(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := c.Reconcile(ctx, names[i%n]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(perRollout, "bytes/rollout")
	})
	b.Run("advance", func(b *testing.B) {
		steps := make([]spec.Step, b.N/n+2)
		for i := range steps {
			steps[i] = pauseStep(time.Second)
		}
		c, clk, names, perRollout := benchController(b, n, steps)
		for _, name := range names {
			if err := c.Reconcile(ctx, name); err != nil { // enter the first pause
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if i%n == 0 {
				clk.Advance(time.Second)
			}
			if err := c.Reconcile(ctx, names[i%n]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if v, _ := c.Get(ctx, names[0]); v.Status.StepIndex != (b.N-1)/n+1 {
			b.Fatalf("rollout 0 is at step %d after %d reconciles", v.Status.StepIndex, b.N)
		}
		b.ReportMetric(perRollout, "bytes/rollout")
	})
}

// BenchmarkWeightChange measures a `set weight` from the command to the
// data plane holding the new table (SPEC: a weight change reaches the
// proxy within 10 ms), including the fsynced commit before it.
func BenchmarkWeightChange(b *testing.B) {
	ctx := context.Background()
	st, err := bolt.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	router := newFakeRouter(nil)
	c := New(Config{Router: router, Store: st})
	if err := c.Load(ctx, []spec.Rollout{testRollout("shop", "v1", "v2", nil)}, nil, true); err != nil {
		b.Fatal(err)
	}
	var worst time.Duration
	b.ResetTimer()
	for i := range b.N {
		w := spec.Weight(100 + i%2*100)
		start := time.Now()
		if _, err := c.SetWeight(ctx, "shop", w); err != nil {
			b.Fatal(err)
		}
		router.mu.Lock()
		got, at := router.tables["shop"].Weight, router.tableAt
		router.mu.Unlock()
		if got != w {
			b.Fatalf("the data plane routes %s after set weight %s", got, w)
		}
		if d := at.Sub(start); d > worst {
			worst = d
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms-to-table")
}

// runtimeMem is the live heap after a collection.
type runtimeMem struct{ heap int64 }

func (m *runtimeMem) read() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heap = int64(ms.HeapAlloc)
}

// TestConcurrentCommandsWhileRunning runs commands, reads and watches on
// many rollouts at once while the controller runs, for the race detector
// and for the per-rollout guarantees: commands answer or refuse with a
// conflict, events stay numbered 1..n, and the data plane never gets a
// weight the store does not hold.
func TestConcurrentCommandsWhileRunning(t *testing.T) {
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	router := newFakeRouter(st)
	c := New(Config{Router: router, Store: st, Workers: 4})
	steps := []spec.Step{setWeightStep(10), pauseStep(5 * time.Millisecond), setWeightStep(20), pauseUntilPromoted(), setWeightStep(100)}
	var rollouts []spec.Rollout
	var names []string
	for i := range 8 {
		name := fmt.Sprintf("r%d", i)
		names = append(names, name)
		rollouts = append(rollouts, testRollout(name, "v1", "v2", steps))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Load(ctx, rollouts, nil, true); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(runCtx) }()

	errs := make(chan error, len(names))
	for _, name := range names {
		go func() {
			ok := func(_ model.View, err error) error {
				if err != nil && !errors.Is(err, model.ErrConflict) {
					return fmt.Errorf("%s: %w", name, err)
				}
				return nil
			}
			w, err := c.Watch(ctx, name, 0)
			if err != nil {
				errs <- err
				return
			}
			for _, do := range []func() error{
				func() error { return ok(c.Pause(ctx, name)) },
				func() error { _, err := c.List(ctx); return err },
				func() error { return ok(c.Resume(ctx, name)) },
				func() error { return ok(c.SetWeight(ctx, name, 500)) },
				func() error { return ok(c.Promote(ctx, name, false)) },
				func() error { return ok(c.Get(ctx, name)) },
				func() error { return ok(c.Promote(ctx, name, true)) },
			} {
				if err := do(); err != nil {
					errs <- err
					return
				}
			}
			for {
				u, open := <-w
				if !open {
					errs <- fmt.Errorf("%s: the watch ended before completion", name)
					return
				}
				if u.View != nil && u.View.Status.Phase == model.PhaseHealthy {
					errs <- nil
					return
				}
			}
		}()
	}
	for range names {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	stop()
	<-done
	for _, name := range names {
		evs, err := c.Events(context.Background(), name, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range evs {
			if e.Seq != uint64(i+1) {
				t.Fatalf("%s: event %d has seq %d", name, i, e.Seq)
			}
		}
		if last := evs[len(evs)-1]; last.Type != EventCompleted {
			t.Errorf("%s: last event %s", name, last.Type)
		}
	}
	for _, v := range router.takeViolations() {
		t.Errorf("persist before acting: %s", v)
	}
}

// CloseWatches ends open streams and every later one, so the admin server's
// drain is not held by SSE clients.
func TestCloseWatchesEndsStreams(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	h.reconcile("shop")
	ch, err := h.c.Watch(h.ctx, "shop", 0)
	if err != nil {
		t.Fatal(err)
	}
	h.c.CloseWatches()
	drainUntilClosed(t, ch)
	later, err := h.c.Watch(h.ctx, "shop", 0)
	if err != nil {
		t.Fatal(err)
	}
	drainUntilClosed(t, later)
}
