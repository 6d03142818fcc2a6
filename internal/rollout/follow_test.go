package rollout

import (
	"slices"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// follower is a second replica on the harness's store: its own data plane,
// a Controller that only follows.
type follower struct {
	router *fakeRouter
	c      *Controller
}

func (h *harness) newFollower() *follower {
	r := newFakeRouter(h.store)
	return &follower{router: r, c: New(Config{Router: r, Store: h.store, Now: h.clock.Now})}
}

// routes is what f reports about rollout name, as its heartbeat would.
func (f *follower) route(name string) ReplicaRoute {
	out := ReplicaRoute{Replica: "b"}
	e, err := f.c.entry(name)
	if err != nil {
		return out
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, w, _, err := f.router.Observed(name); err == nil {
		out.Known, out.StateVersion, out.Weight = true, e.stVer, w
	}
	return out
}

// TestFollowerRoutesWithTheLeadersState: a follower serves what the leader
// decided, sees its events, and a setWeight step completes only once the
// follower routes with the new weight.
func TestFollowerRoutesWithTheLeadersState(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	f := h.newFollower()
	h.c.cfg.ReplicaRoutes = func(name string) []ReplicaRoute { return []ReplicaRoute{f.route(name)} }
	h.c.cfg.ReplicaID = "a"

	if err := f.c.Refresh(h.ctx); err != nil {
		t.Fatal(err)
	}
	updates, err := f.c.Watch(h.ctx, "shop", h.status("shop").LastEventSeq)
	if err != nil {
		t.Fatal(err)
	}
	<-updates // the current view

	h.reconcile("shop") // step 0: setWeight 20 is applied on the leader
	h.reconcile("shop")
	if st := h.status("shop"); st.StepIndex != 0 || st.Weight != 20 {
		t.Fatalf("the step completed before the follower routes with it: %+v", st)
	}
	if st := h.status("shop"); len(st.Replicas) != 2 || st.Replicas[1].Current {
		t.Fatalf("replicas in the status: %+v", st.Replicas)
	}
	if err := f.c.Refresh(h.ctx); err != nil {
		t.Fatal(err)
	}
	if w := f.router.table("shop").Weight; w != spec.Weight(2000) {
		t.Fatalf("follower routes with %v, want 20%%", w)
	}
	h.reconcile("shop")
	if st := h.status("shop"); st.StepIndex != 1 {
		t.Fatalf("setWeight did not complete once both routed with it: %+v", st)
	}
	var seen []string
	deadline := time.After(10 * time.Second)
	for !slices.Contains(seen, EventWeightChanged) {
		select {
		case u := <-updates:
			if u.Event != nil {
				seen = append(seen, u.Event.Type)
			}
		case <-deadline:
			t.Fatalf("the follower's watcher saw %v, not the weight change", seen)
		}
	}

	// A follower never writes, so it cannot overtake the leader; when
	// the leader removes the rollout, the follower stops serving it.
	h.reload()
	if err := f.c.Refresh(h.ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.router.served("shop"); ok {
		t.Fatal("the follower still serves a removed rollout")
	}
	if _, err := f.c.Get(h.ctx, "shop"); err == nil {
		t.Fatal("the follower still lists a removed rollout")
	}
}

// TestRefreshRolloutTakesOnlyNewerState: a notification for a rollout
// re-reads just that one, and an older copy never replaces a newer one.
func TestRefreshRolloutTakesOnlyNewerState(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	f := h.newFollower()
	h.reconcile("shop")
	if err := f.c.RefreshRollout(h.ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	v, err := f.c.Get(h.ctx, "shop")
	if err != nil || v.Status.Weight != 20 {
		t.Fatalf("follower view %+v %v", v.Status, err)
	}
	if _, err := h.c.Abort(h.ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if err := f.c.RefreshRollout(h.ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	v, _ = f.c.Get(h.ctx, "shop")
	if v.Status.Phase != model.PhaseDegraded || f.router.table("shop").Weight != 0 {
		t.Fatalf("after the leader's abort the follower shows %s and routes %v", v.Status.Phase, f.router.table("shop").Weight)
	}
	if err := f.c.RefreshRollout(h.ctx, "missing"); err != nil {
		t.Fatalf("a notification for a rollout that is gone: %v", err)
	}
}

// TestFollowerTakesARecreatedRollout: a rollout removed and added again
// while a follower did not look starts its record versions afresh; the
// follower takes the new incarnation, though its versions are lower.
func TestFollowerTakesARecreatedRollout(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	f := h.newFollower()
	for range 4 {
		h.reconcile("shop")
	}
	if err := f.c.Refresh(h.ctx); err != nil {
		t.Fatal(err)
	}
	h.reload()
	h.reload(testRollout("shop", "v1", "v3", nil))
	h.reconcile("shop")
	if err := f.c.Refresh(h.ctx); err != nil {
		t.Fatal(err)
	}
	fv, _ := f.c.Get(h.ctx, "shop")
	if want := h.status("shop"); fv.Status.CanaryVersion != want.CanaryVersion || fv.Status.Weight != want.Weight {
		t.Fatalf("the follower routes canary %s at %v%%; the store holds %s at %v%%", fv.Status.CanaryVersion, fv.Status.Weight, want.CanaryVersion, want.Weight)
	}
}

// TestFollowerServesTheOthersAroundABadRollout: one stored rollout that
// cannot be decoded neither stops the others from being served nor shows
// up as an empty rollout, and the follower counts as synced.
func TestFollowerServesTheOthersAroundABadRollout(t *testing.T) {
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	f := h.newFollower()
	for _, coll := range []string{specCollection, stateCollection} {
		if _, err := h.store.Put(h.ctx, coll, store.Record{Key: "zzz", Data: []byte("not json")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.c.Refresh(h.ctx); err != nil {
		t.Fatalf("refresh with one bad rollout: %v", err)
	}
	vs, err := f.c.List(h.ctx)
	if err != nil || len(vs) != 1 || vs[0].Metadata.Name != "shop" {
		t.Fatalf("the follower lists %+v (%v), want shop only", vs, err)
	}
	if !f.c.Synced() {
		t.Fatal("a bad rollout keeps the follower from being ready")
	}
}
