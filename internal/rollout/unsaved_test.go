package rollout

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
)

// flakyStore is a real store whose commits can be made to fail, as on a
// full disk; with land set a failing commit is written anyway (an fsync
// that reports an error after the write reached the disk).
type flakyStore struct {
	*bolt.Store
	fail, land atomic.Bool
}

var errDiskFull = errors.New("write /data/coalmine.db: no space left on device")

func (f *flakyStore) Commit(ctx context.Context, b store.Batch) (store.Committed, error) {
	if f.fail.Load() {
		if f.land.Load() {
			_, _ = f.Store.Commit(ctx, b)
		}
		return store.Committed{}, errDiskFull
	}
	return f.Store.Commit(ctx, b)
}

func (f *flakyStore) Put(ctx context.Context, collection string, r store.Record) (store.Record, error) {
	if f.fail.Load() {
		return store.Record{}, errDiskFull
	}
	return f.Store.Put(ctx, collection, r)
}

func newFlaky(t *testing.T) (*Controller, *flakyStore, *fakeRouter, *fakeClock) {
	t.Helper()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &flakyStore{Store: st}
	clk := newFakeClock()
	r := newFakeRouter(nil)
	c := New(Config{Router: r, Store: fs, Now: clk.Now})
	if err := c.Load(context.Background(), []spec.Rollout{testRollout("shop", "v1", "v2", nil)}, nil, true); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := c.Reconcile(context.Background(), "shop"); err != nil {
			t.Fatal(err)
		}
	}
	return c, fs, r, clk
}

func storedEvents(t *testing.T, c *Controller) []model.Event {
	t.Helper()
	evs, err := c.Events(context.Background(), "shop", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// With the store failing, abort takes effect in the data plane, says it is
// unsaved, and is saved later with the time it happened; other commands
// fail with the real reason; the store error clears when writes work.
func TestUnsavedAbortIsSavedLater(t *testing.T) {
	ctx := context.Background()
	c, fs, r, clk := newFlaky(t)
	if w := r.table("shop").Weight; w == 0 {
		t.Fatalf("the canary has no weight before the abort")
	}
	fs.fail.Store(true)
	abortedAt := clk.Now()
	v, err := c.Abort(ctx, "shop")
	if err != nil {
		t.Fatalf("abort on a failing store: %v", err)
	}
	if r.table("shop").Weight != 0 || v.Status.Phase != model.PhaseDegraded || v.Status.Unsaved == "" {
		t.Fatalf("abort unsaved: weight %v phase %s unsaved %q", r.table("shop").Weight, v.Status.Phase, v.Status.Unsaved)
	}
	if _, err := c.Retry(ctx, "shop"); !errors.Is(err, model.ErrUnavailable) || !errors.Is(err, errDiskFull) {
		t.Fatalf("retry on a failing store: %v, want the store's reason and ErrUnavailable", err)
	}
	if c.StoreError() == nil {
		t.Fatal("StoreError is nil while the store fails")
	}
	clk.Advance(time.Minute)
	if err := c.Reconcile(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if r.table("shop").Weight != 0 {
		t.Fatal("the unsaved abort did not stay in effect")
	}
	fs.fail.Store(false)
	clk.Advance(saveRetry)
	if err := c.Reconcile(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	v, _ = c.Get(ctx, "shop")
	if v.Status.Unsaved != "" || c.StoreError() != nil {
		t.Fatalf("after the store recovered: unsaved %q, store error %v", v.Status.Unsaved, c.StoreError())
	}
	var aborted []model.Event
	for _, e := range storedEvents(t, c) {
		if e.Type == EventAborted {
			aborted = append(aborted, e)
		}
	}
	if len(aborted) != 1 || !aborted[0].Time.Equal(abortedAt.UTC()) {
		t.Fatalf("rollout-aborted events %+v, want one at %v (when it happened)", aborted, abortedAt)
	}
}

// A write that reported an error but landed is not written twice.
func TestUnsavedAbortThatLandedIsNotSavedTwice(t *testing.T) {
	ctx := context.Background()
	c, fs, _, clk := newFlaky(t)
	fs.fail.Store(true)
	fs.land.Store(true)
	if _, err := c.Abort(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	fs.fail.Store(false)
	fs.land.Store(false)
	clk.Advance(saveRetry)
	for range 3 {
		_ = c.Reconcile(ctx, "shop")
	}
	n := 0
	for _, e := range storedEvents(t, c) {
		if e.Type == EventAborted {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d rollout-aborted events, want 1", n)
	}
	if v, _ := c.Get(ctx, "shop"); v.Status.Phase != model.PhaseDegraded || v.Status.Unsaved != "" {
		t.Fatalf("phase %s unsaved %q", v.Status.Phase, v.Status.Unsaved)
	}
}

// The store error clears when a probe write succeeds, even with nothing
// else to write.
func TestStoreErrorClearsWhenTheStoreRecovers(t *testing.T) {
	ctx := context.Background()
	c, fs, _, _ := newFlaky(t)
	fs.fail.Store(true)
	if _, err := c.SetWeight(ctx, "shop", 300); err == nil || c.StoreError() == nil {
		t.Fatalf("set weight on a failing store: %v, store error %v", err, c.StoreError())
	}
	c.probeStoreOnce(ctx)
	if c.StoreError() == nil {
		t.Fatal("a failing probe cleared the store error")
	}
	fs.fail.Store(false)
	c.probeStoreOnce(ctx)
	if err := c.StoreError(); err != nil {
		t.Fatalf("store error %v after the store recovered", err)
	}
}

// A rollout whose listener is down does not move: a timed pause does not
// end and no step completes until it listens again.
func TestUnboundRolloutDoesNotAdvance(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, testRollout("shop", "v1", "v2", nil))
	h.reconcile("shop")
	h.reconcile("shop")
	before, _ := h.c.Get(ctx, "shop")
	h.router.setListenError("shop", errors.New("listen on 127.0.0.1:18080: bind: address already in use"))
	h.clock.Advance(time.Hour)
	h.reconcile("shop")
	h.reconcile("shop")
	after, _ := h.c.Get(ctx, "shop")
	if after.Status.StepIndex != before.Status.StepIndex || after.Status.Phase != before.Status.Phase {
		t.Fatalf("while not listening the rollout moved from step %d %s to step %d %s",
			before.Status.StepIndex, before.Status.Phase, after.Status.StepIndex, after.Status.Phase)
	}
	h.router.setListenError("shop", nil)
	h.reconcile("shop")
	h.reconcile("shop")
	if again, _ := h.c.Get(ctx, "shop"); again.Status.StepIndex == before.Status.StepIndex {
		t.Fatalf("once listening the rollout stays at step %d", again.Status.StepIndex)
	}
}
