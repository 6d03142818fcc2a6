package lease_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/lease"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	held := &lease.State{Holder: "a", Epoch: 3, ExpiresAt: t0.Add(5 * time.Second)}
	for _, tc := range []struct {
		name string
		cur  *lease.State
		me   string
		now  time.Time
		want lease.Action
	}{
		{"never taken", nil, "a", t0, lease.Acquire},
		{"holder renews", held, "a", t0, lease.Renew},
		{"other waits", held, "b", t0, lease.Wait},
		{"other takes an expired lease", held, "b", t0.Add(5 * time.Second), lease.Acquire},
		{"holder whose lease expired takes it anew", held, "a", t0.Add(6 * time.Second), lease.Acquire},
	} {
		if got := lease.Decide(tc.cur, tc.me, tc.now); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if n := lease.Next(held, lease.Acquire, "b", t0, time.Second); n.Epoch != 4 || n.Holder != "b" || !n.ExpiresAt.Equal(t0.Add(time.Second)) {
		t.Errorf("acquire: %+v", n)
	}
	if n := lease.Next(held, lease.Renew, "a", t0, time.Second); n.Epoch != 3 {
		t.Errorf("renew changed the epoch: %+v", n)
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openStore(t *testing.T) store.Store {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestOneLeaderAndFencing: two replicas on one store; one leads; when it
// stops renewing (paused), the other takes over after the lease time, and
// the paused one's writes are refused before it even knows.
func TestOneLeaderAndFencing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	clk := &clock{time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	a := &lease.Elector{Store: s, ID: "a", TTL: 5 * time.Second, Now: clk.now}
	b := &lease.Elector{Store: s, ID: "b", TTL: 5 * time.Second, Now: clk.now}

	st, err := a.Step(ctx)
	if err != nil || !st.Leader || st.Epoch != 1 {
		t.Fatalf("a: %+v, %v", st, err)
	}
	if st, err := b.Step(ctx); err != nil || st.Leader || st.Holder != "a" {
		t.Fatalf("b while a leads: %+v, %v", st, err)
	}
	fenceA := a.Status().Fence
	write := func(f store.Check, data string) error {
		_, err := s.Commit(ctx, store.Batch{Checks: []store.Check{f},
			Appends: []store.Append{{Stream: "rollout/shop", Data: [][]byte{[]byte(data)}}}})
		return err
	}
	if err := write(fenceA, "a1"); err != nil {
		t.Fatalf("the leader's fenced write: %v", err)
	}
	for range 3 { // a renews; b keeps waiting
		clk.t = clk.t.Add(time.Second)
		if st, _ := a.Step(ctx); !st.Leader {
			t.Fatal("a lost the lease while renewing")
		}
		if st, _ := b.Step(ctx); st.Leader {
			t.Fatal("b leads while a renews")
		}
	}
	if a.Status().Fence != fenceA {
		t.Error("renewals changed the fence")
	}

	// a is paused past its lease; b takes over with the next epoch.
	clk.t = clk.t.Add(6 * time.Second)
	st, err = b.Step(ctx)
	if err != nil || !st.Leader || st.Epoch != 2 {
		t.Fatalf("b after a's lease passed: %+v, %v", st, err)
	}
	if err := write(fenceA, "a-late"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a's late write: %v, want ErrConflict", err)
	}
	if err := write(b.Status().Fence, "b1"); err != nil {
		t.Fatalf("b's fenced write: %v", err)
	}
	if st, _ := a.Step(ctx); st.Leader || st.Holder != "b" {
		t.Fatalf("a after waking: %+v", st)
	}
	evs, err := s.Events(ctx, "rollout/shop", 0, 0)
	if err != nil || len(evs) != 2 || string(evs[0].Data) != "a1" || string(evs[1].Data) != "b1" {
		t.Fatalf("events %v, %v", evs, err)
	}
}

// TestRestartWithTheSameIDTakesANewEpoch: a replica restarted with its old
// id does not reuse a fence it cannot know.
func TestRestartWithTheSameIDTakesANewEpoch(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	clk := &clock{time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	first := &lease.Elector{Store: s, ID: "a", Now: clk.now}
	if st, _ := first.Step(ctx); st.Epoch != 1 {
		t.Fatalf("first: %+v", st)
	}
	again := &lease.Elector{Store: s, ID: "a", Now: clk.now}
	st, err := again.Step(ctx)
	if err != nil || !st.Leader || st.Epoch != 2 {
		t.Fatalf("restarted: %+v, %v", st, err)
	}
	if _, err := s.Commit(ctx, store.Batch{Checks: []store.Check{first.Status().Fence}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the old incarnation's fence still works: %v", err)
	}
}

// TestRun reports leadership changes through the callback.
func TestRun(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := &lease.Elector{Store: s, ID: "a", Renew: 10 * time.Millisecond}
	got := make(chan lease.Status, 1)
	go e.Run(ctx, func(st lease.Status) { got <- st }, nil)
	select {
	case st := <-got:
		if !st.Leader || st.Epoch != 1 {
			t.Fatalf("first change: %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no leadership change reported")
	}
}
