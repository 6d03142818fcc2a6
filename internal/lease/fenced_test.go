package lease_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/lease"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// TestFencedStoreRefusesLateWrites: replica a leads and writes through its
// FencedStore; b takes over after a's lease passed; a's next write (a
// paused process waking up) is refused by the store, logged, reported as
// ErrFenced and not as a conflict, and a stops leading.
func TestFencedStoreRefusesLateWrites(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	a := &lease.Elector{Store: st, ID: "a", Now: clk.now}
	b := &lease.Elector{Store: st, ID: "b", Now: clk.now}
	sa, err := a.Step(ctx)
	if err != nil || !sa.Leader {
		t.Fatalf("a: %+v %v", sa, err)
	}
	var logs bytes.Buffer
	fenced := 0
	fa := &lease.FencedStore{Store: st, Logger: slog.New(slog.NewTextHandler(&logs, nil)), OnFenced: func() { fenced++ }, Now: clk.now}
	if _, err := fa.Put(ctx, "rollout-state", store.Record{Key: "x", Data: []byte("1")}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("write before Lead: %v, want ErrFenced", err)
	}
	fa.Lead(sa.Fence, sa.ExpiresAt)
	rec, err := fa.Put(ctx, "rollout-state", store.Record{Key: "x", Data: []byte("1")})
	if err != nil {
		t.Fatalf("leader's write: %v", err)
	}
	// An ordinary conflict stays a conflict while the fence holds.
	if _, err := fa.Put(ctx, "rollout-state", store.Record{Key: "x", Version: 7}); !errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale version: %v, want a plain conflict", err)
	}

	clk.t = clk.t.Add(lease.DefaultTTL + time.Second) // a is paused past its lease
	if sb, err := b.Step(ctx); err != nil || !sb.Leader {
		t.Fatalf("b did not take over: %+v %v", sb, err)
	}
	// The database refuses a's write even when a's clock lags (here: a
	// still believes its lease lasts).
	fa.Extend(clk.t.Add(time.Hour))
	rec.Data = []byte("late")
	_, err = fa.Commit(ctx, store.Batch{Puts: []store.Put{{Collection: "rollout-state", Record: rec}},
		Appends: []store.Append{{Stream: "events/x", Data: [][]byte{[]byte("late event")}}}})
	if !errors.Is(err, store.ErrFenced) || errors.Is(err, store.ErrConflict) {
		t.Fatalf("late write: %v, want ErrFenced only", err)
	}
	if fenced != 1 || fa.Leading() {
		t.Fatalf("OnFenced called %d times, leading %v", fenced, fa.Leading())
	}
	if !strings.Contains(logs.String(), "a late write was refused") || !strings.Contains(logs.String(), "put rollout-state/x") {
		t.Fatalf("log: %s", logs.String())
	}
	got, _ := st.Get(ctx, "rollout-state", "x")
	if string(got.Data) != "1" {
		t.Fatalf("the late write landed: %q", got.Data)
	}
	if seq, _ := st.LastSeq(ctx, "events/x"); seq != 0 {
		t.Fatalf("the late event landed: seq %d", seq)
	}
	if err := fa.Trim(ctx, "events/x", 1); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("trim after losing: %v", err)
	}
}

// TestFencedStoreRefusesWritesPastItsOwnLease: a leader whose clock says
// its lease ran out refuses its own writes, before the database is asked
// and whether or not another replica took over yet.
func TestFencedStoreRefusesWritesPastItsOwnLease(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	a := &lease.Elector{Store: st, ID: "a", Now: clk.now}
	sa, err := a.Step(ctx)
	if err != nil || !sa.Leader {
		t.Fatalf("a: %+v %v", sa, err)
	}
	var logs bytes.Buffer
	fa := &lease.FencedStore{Store: st, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: clk.now}
	fa.Lead(sa.Fence, sa.ExpiresAt)
	clk.t = sa.ExpiresAt.Add(-time.Millisecond)
	if _, err := fa.Put(ctx, "rollout-state", store.Record{Key: "x", Data: []byte("1")}); err != nil {
		t.Fatalf("within the lease: %v", err)
	}
	clk.t = sa.ExpiresAt
	if _, err := fa.Put(ctx, "rollout-state", store.Record{Key: "y", Data: []byte("1")}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("at expiry: %v, want ErrFenced", err)
	}
	if fa.Leading() || !strings.Contains(logs.String(), "lease ran out") || !strings.Contains(logs.String(), "put rollout-state/y") {
		t.Fatalf("leading %v, log %s", fa.Leading(), logs.String())
	}
	if _, err := st.Get(ctx, "rollout-state", "y"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the write past the lease landed: %v", err)
	}
}

// TestResignTakesANewEpoch: after Resign (its fence was refused), a
// replica that still holds the lease leads again only under a new epoch,
// so whatever it writes next carries a fence no earlier write had.
func TestResignTakesANewEpoch(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	a := &lease.Elector{Store: st, ID: "a", Now: clk.now}
	first, err := a.Step(ctx)
	if err != nil || !first.Leader {
		t.Fatalf("a: %+v %v", first, err)
	}
	a.Resign()
	if a.Status().Leader {
		t.Fatal("still leading after Resign")
	}
	again, err := a.Step(ctx)
	if err != nil || !again.Leader || again.Epoch != first.Epoch+1 || again.Fence == first.Fence {
		t.Fatalf("after Resign: %+v (before %+v), %v", again, first, err)
	}
}

// TestStepAsideLetsAnotherLead: a replica elected but unable to take over
// steps aside; it does not renew, so another takes the lease once it runs
// out, and it does not campaign again until its time aside is over.
func TestStepAsideLetsAnotherLead(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	a := &lease.Elector{Store: st, ID: "a", Now: clk.now}
	b := &lease.Elector{Store: st, ID: "b", Now: clk.now}
	if sa, err := a.Step(ctx); err != nil || !sa.Leader {
		t.Fatalf("a: %+v %v", sa, err)
	}
	a.StepAside(2 * lease.DefaultTTL)
	clk.t = clk.t.Add(lease.DefaultTTL)
	if sa, _ := a.Step(ctx); sa.Leader {
		t.Fatal("a renewed while aside")
	}
	if sb, err := b.Step(ctx); err != nil || !sb.Leader {
		t.Fatalf("b did not take the lease a let run out: %+v %v", sb, err)
	}
}
