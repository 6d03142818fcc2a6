package notify_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/notify"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// TestRestartContinuesFromCursor closes the store under a dispatcher,
// reopens it with a new dispatcher and checks that delivery continues after
// the last delivered event without sending any event twice.
func TestRestartContinuesFromCursor(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t, nil)
	chans := []spec.Notification{webhookTo(rcv.URL, "*")}

	st := openStore(t, dir)
	cfg := testConfig(st, nil)
	sw := watch(&cfg)
	d := notify.New(cfg)
	d.SetRollout("web", chans)
	stop := run(t, d)
	commit(t, st, "web", "rollout-started", "rollout-paused")
	d.Wake("web")
	for want := uint64(1); want <= 2; want++ {
		if got := seqOf(t, rcv.next(t)); got != want {
			t.Fatalf("seq %d, want %d", got, want)
		}
	}
	sw.until(t, d, "web", "seq 2 delivered", delivered(2))
	stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The controller keeps committing while notifications are down.
	st = openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	commit(t, st, "web", "rollout-resumed", "rollout-completed")
	cfg = testConfig(st, nil)
	sw = watch(&cfg)
	d = notify.New(cfg)
	d.SetRollout("web", chans)
	stop = run(t, d)
	for want := uint64(3); want <= 4; want++ {
		if got := seqOf(t, rcv.next(t)); got != want {
			t.Fatalf("after restart: seq %d, want %d", got, want)
		}
	}
	sw.until(t, d, "web", "seq 4 delivered", delivered(4))
	stop()
	rcv.none(t)
}

// TestNewChannelStartsAtLastSeq: a channel without a cursor is not flooded
// with the events that existed when it was set.
func TestNewChannelStartsAtLastSeq(t *testing.T) {
	st := newStore(t)
	rcv := newReceiver(t, nil)
	commit(t, st, "web", "rollout-started", "rollout-paused", "rollout-resumed")
	d := notify.New(testConfig(st, nil))
	d.SetRollout("web", []spec.Notification{webhookTo(rcv.URL, "*")})
	commit(t, st, "web", "rollout-completed") // after SetRollout, before Run
	run(t, d)
	if got := seqOf(t, rcv.next(t)); got != 4 {
		t.Fatalf("first delivery is seq %d, want 4", got)
	}
}

// TestChangedChannelStartsAfterNewestEvent: editing a channel (here its
// URL) starts it after the newest event; the old configuration's backlog
// is not sent to the new target, nor retried at the old one.
func TestChangedChannelStartsAfterNewestEvent(t *testing.T) {
	st := newStore(t)
	broken := newReceiver(t, func(n int, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) })
	fixed := newReceiver(t, nil)
	cfg := testConfig(st, nil)
	sw := watch(&cfg)
	d := notify.New(cfg)
	d.SetRollout("web", []spec.Notification{webhookTo(broken.URL, "*")})
	stop := run(t, d)
	commit(t, st, "web", "rollout-started")
	d.Wake("web")
	if got := seqOf(t, broken.next(t)); got != 1 {
		t.Fatalf("seq %d", got)
	}
	d.SetRollout("web", []spec.Notification{webhookTo(fixed.URL, "*")})
	commit(t, st, "web", "rollout-paused")
	d.Wake("web")
	if got := seqOf(t, fixed.next(t)); got != 2 {
		t.Fatalf("new target got seq %d first, want 2", got)
	}
	sw.until(t, d, "web", "seq 2 delivered", delivered(2))
	stop()
	fixed.none(t)

	// Reapplying the same configuration keeps the worker and position.
	d2 := notify.New(testConfig(st, nil))
	d2.SetRollout("web", []spec.Notification{webhookTo(fixed.URL, "*")})
	commit(t, st, "web", "rollout-resumed")
	run(t, d2)
	if got := seqOf(t, fixed.next(t)); got != 3 {
		t.Fatalf("after restart got seq %d, want 3", got)
	}
}

// TestRemovedChannelsForgetTheirCursors: shrinking the list and removing
// the rollout delete the cursors, so a channel added back later starts at
// the newest event instead of replaying what happened in between.
func TestRemovedChannelsForgetTheirCursors(t *testing.T) {
	st := newStore(t)
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	cfg := testConfig(st, nil)
	sw := watch(&cfg)
	d := notify.New(cfg)
	d.SetRollout("web", []spec.Notification{webhookTo(a.URL, "*"), webhookTo(b.URL, "*")})
	stop := run(t, d)
	commit(t, st, "web", "rollout-started")
	d.Wake("web")
	a.next(t)
	b.next(t)
	sw.until(t, d, "web", "seq 1 delivered", delivered(1))
	cursorExists(t, st, "web/0", true)
	cursorExists(t, st, "web/1", true)

	d.SetRollout("web", []spec.Notification{webhookTo(a.URL, "*")})
	stop() // waits for the removed worker, including its cleanup
	cursorExists(t, st, "web/0", true)
	cursorExists(t, st, "web/1", false)

	// Removed before Run: the cleanup still happens once Run starts.
	d = notify.New(testConfig(st, nil))
	d.SetRollout("web", []spec.Notification{webhookTo(a.URL, "*")})
	d.RemoveRollout("web")
	if s := d.Status("web"); s != nil {
		t.Errorf("Status after RemoveRollout = %+v", s)
	}
	run(t, d)()
	cursorExists(t, st, "web/0", false)
	a.none(t)
}

func cursorExists(t *testing.T, st store.Store, key string, want bool) {
	t.Helper()
	_, err := st.Get(context.Background(), notify.CursorCollection, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if got := err == nil; got != want {
		t.Errorf("cursor %s exists = %v, want %v", key, got, want)
	}
}

// TestReaddedRolloutWaitsForRemovedWorker: removing a rollout whose channel
// is in the middle of a request and adding it straight back must neither
// run two workers on one cursor nor replay the interrupted event.
func TestReaddedRolloutWaitsForRemovedWorker(t *testing.T) {
	st := newStore(t)
	release := make(chan struct{})
	rcv := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			<-release
		}
	})
	t.Cleanup(func() { close(release) })
	cfg := testConfig(st, nil)
	sw := watch(&cfg)
	d := notify.New(cfg)
	chans := []spec.Notification{webhookTo(rcv.URL, "*")}
	d.SetRollout("web", chans)
	stop := run(t, d)
	commit(t, st, "web", "rollout-started")
	d.Wake("web")
	if got := seqOf(t, rcv.next(t)); got != 1 {
		t.Fatalf("seq %d", got)
	}
	d.RemoveRollout("web")
	d.SetRollout("web", chans)
	commit(t, st, "web", "rollout-paused")
	d.Wake("web")
	if got := seqOf(t, rcv.next(t)); got != 2 {
		t.Fatalf("after re-adding: seq %d, want 2", got)
	}
	sw.until(t, d, "web", "seq 2 delivered", delivered(2))
	stop()
	rcv.none(t)
}
