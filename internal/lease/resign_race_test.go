package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/lease"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// gateStore blocks Commit while gate is set, to interleave a renewal round.
type gateStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
	armed   bool
}

func (g *gateStore) Commit(ctx context.Context, b store.Batch) (store.Committed, error) {
	if g.armed {
		g.armed = false
		g.entered <- struct{}{}
		<-g.release
	}
	return g.Store.Commit(ctx, b)
}

// TestResignDuringARenewalIsKept: Resign while a renewal round is writing
// (it decided Renew before) is not overwritten when the round ends: the
// elector leads again only under a new epoch, which Run reports as a new
// leadership.
func TestResignDuringARenewalIsKept(t *testing.T) {
	ctx := context.Background()
	g := &gateStore{Store: openStore(t), entered: make(chan struct{}), release: make(chan struct{})}
	c := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	e := &lease.Elector{Store: g, ID: "a", Now: c.now}
	st, err := e.Step(ctx)
	if err != nil || !st.Leader {
		t.Fatalf("first round: %+v %v", st, err)
	}
	c.t = c.t.Add(time.Second)
	g.armed = true
	done := make(chan lease.Status)
	go func() { st, _ := e.Step(ctx); done <- st }()
	<-g.entered
	e.Resign() // the role switch: a write was fenced, lead again only under a new epoch
	close(g.release)
	after := <-done
	if after.Leader {
		t.Fatalf("the round that was writing when Resign came made the elector lead: %+v", after)
	}
	next, _ := e.Step(ctx)
	if !next.Leader || next.Epoch == st.Epoch {
		t.Errorf("after Resign: leader %v under epoch %d (was %d); want a new epoch", next.Leader, next.Epoch, st.Epoch)
	}
}
