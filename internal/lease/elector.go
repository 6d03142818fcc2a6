package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/store"
)

// Defaults: a dead leader is replaced within TTL plus one Renew interval.
const (
	DefaultTTL   = 3 * time.Second
	DefaultRenew = time.Second
)

// Elector campaigns for the lease on behalf of one replica.
type Elector struct {
	Store store.Store
	// ID names this replica; it must be unique among replicas.
	ID string
	// TTL is how long a lease lasts without renewal; Renew how often it is
	// renewed (or tried for). Zero means the defaults.
	TTL, Renew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnLead, when set, is called after every round this replica leads
	// in (each renewal), with the new expiry.
	OnLead func(Status)

	mu     sync.Mutex
	leader bool
	// asideUntil: the elector does not campaign before it (StepAside).
	asideUntil time.Time
	// resigned counts Resign and StepAside calls: a round that started
	// before one never makes this elector a leader when it ends.
	resigned uint64
	lease    State
	rec      store.Record // the lease record as last written or read
	epochV   uint64       // the epoch record's version when we took the lease
}

// Status is what the elector knows after a round.
type Status struct {
	Leader bool
	// Epoch is the current lease's epoch and Holder its holder, as last
	// seen.
	Epoch  uint64
	Holder string
	// Fence is the check a leader puts in each batch; valid when Leader.
	Fence store.Check
	// ExpiresAt is when the lease runs out by this replica's clock unless
	// renewed; a leader must not write after it (FencedStore).
	ExpiresAt time.Time
}

func (e *Elector) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Elector) ttl() time.Duration {
	if e.TTL > 0 {
		return e.TTL
	}
	return DefaultTTL
}

// Status returns what the last round decided.
func (e *Elector) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Status{Leader: e.leader, Epoch: e.lease.Epoch, Holder: e.lease.Holder, Fence: Fence(e.epochV), ExpiresAt: e.lease.ExpiresAt}
}

// Step runs one round: read the lease, decide, write. It reports whether
// this replica leads after the round. A store error leaves a leader
// leading until its lease would have expired by its own clock, then not:
// another replica may have taken over by then.
func (e *Elector) Step(ctx context.Context) (Status, error) {
	now := e.now()
	e.mu.Lock()
	aside, gen := now.Before(e.asideUntil), e.resigned
	e.mu.Unlock()
	if aside {
		return e.Status(), nil
	}
	rec, err := e.Store.Get(ctx, Collection, LeaseKey)
	var cur *State
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec = store.Record{Key: LeaseKey}
	case err != nil:
		return e.unreachable(now, err)
	default:
		if cur, err = decodeState(rec); err != nil {
			return e.unreachable(now, err)
		}
	}
	action := Decide(cur, e.ID, now)
	if action == Renew && !e.Status().Leader {
		// The record names us but this elector does not know its fence
		// (a restart with the same id): take the lease anew, with a new
		// epoch, rather than trust a fence we did not write.
		action = Acquire
	}
	if action == Wait {
		e.set(false, *cur, rec, 0)
		return e.Status(), nil
	}
	next := Next(cur, action, e.ID, now, e.ttl())
	data, _ := json.Marshal(next)
	b := store.Batch{Puts: []store.Put{{Collection: Collection, Record: store.Record{Key: LeaseKey, Version: rec.Version, Data: data}}}}
	if action == Acquire {
		epoch, err := e.Store.Get(ctx, Collection, EpochKey)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return e.unreachable(now, err)
		}
		b.Puts = append(b.Puts, store.Put{Collection: Collection, Record: store.Record{Key: EpochKey, Version: epoch.Version,
			Data: []byte(strconv.FormatUint(next.Epoch, 10))}})
	}
	c, err := e.Store.Commit(ctx, b)
	switch {
	case errors.Is(err, store.ErrConflict):
		// Someone else wrote first: we do not lead, whatever we thought.
		e.set(false, State{}, store.Record{}, 0)
		return e.Status(), nil
	case err != nil:
		return e.unreachable(now, err)
	}
	epochV := e.Status().Fence.Version
	if action == Acquire {
		epochV = c.Records[1].Version
	}
	e.mu.Lock()
	if e.resigned != gen {
		// Resigned while this round was writing: the lease names us, but
		// we lead again only under a new epoch, next round.
		e.leader = false
		e.mu.Unlock()
		return e.Status(), nil
	}
	e.mu.Unlock()
	e.set(true, next, c.Records[0], epochV)
	return e.Status(), nil
}

func (e *Elector) set(leader bool, s State, rec store.Record, epochV uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.leader, e.lease, e.rec = leader, s, rec
	if leader {
		e.epochV = epochV
	}
}

// Resign makes this elector forget that it leads: its next round takes
// the lease anew (with a new epoch) if it is still free for it. A replica
// calls it when the store refused its fence, so that leading again always
// starts from a new epoch.
func (e *Elector) Resign() {
	e.mu.Lock()
	e.leader = false
	e.resigned++
	e.mu.Unlock()
}

// StepAside makes this elector stop leading and not campaign for d, so
// that another replica can take the lease once it runs out: a replica
// that was elected but cannot take over (its store calls fail) must not
// keep the lease from the others.
func (e *Elector) StepAside(d time.Duration) {
	e.mu.Lock()
	e.leader = false
	e.resigned++
	e.asideUntil = e.now().Add(d)
	e.mu.Unlock()
}

// unreachable keeps a leader leading while its own lease lasts.
func (e *Elector) unreachable(now time.Time, err error) (Status, error) {
	e.mu.Lock()
	if e.leader && !now.Before(e.lease.ExpiresAt) {
		e.leader = false
	}
	e.mu.Unlock()
	return e.Status(), fmt.Errorf("lease: %w", err)
}

// Run campaigns until ctx ends, calling changed whenever this replica
// starts or stops leading (with the status after the round), and errf
// with store errors (at most once per Renew interval). On return it
// releases nothing: a lease simply expires, which is what a crash does
// too.
func (e *Elector) Run(ctx context.Context, changed func(Status), errf func(error)) {
	interval := e.Renew
	if interval <= 0 {
		interval = DefaultRenew
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	was, wasEpoch := false, uint64(0)
	for {
		// A round never outlasts its interval: a store that hangs (a lock
		// held by a stalled leader, a dead connection) is an error of this
		// round, and a leader's own lease keeps counting down meanwhile.
		sctx, cancel := context.WithTimeout(ctx, interval)
		st, err := e.Step(sctx)
		cancel()
		if err != nil && errf != nil && ctx.Err() == nil {
			errf(err)
		}
		// A new epoch while leading is a new leadership too (the lease was
		// lost and taken back between two rounds, or Resign was called):
		// whoever acts on it must start afresh with the new fence.
		if st.Leader != was || (st.Leader && st.Epoch != wasEpoch) {
			was, wasEpoch = st.Leader, st.Epoch
			changed(st)
		}
		if st.Leader && e.OnLead != nil {
			e.OnLead(st)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
