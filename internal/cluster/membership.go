package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/lease"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// errorLogInterval spaces the log lines of a failing heartbeat: a store
// that is down for an hour is one problem, not 3600.
const errorLogInterval = time.Minute

// Membership keeps one replica's heartbeat record and reads everyone's.
// Its methods are safe for concurrent use.
type Membership struct {
	Store store.Store
	// Self describes this replica as it is now; Beat calls it for every
	// heartbeat, so it reports the routing currently applied. Its Leader,
	// Gone and LastHeartbeat are ignored, and a zero StartedAt becomes the
	// time of the first heartbeat.
	Self func() model.Replica
	// Interval is the time between heartbeats; zero means DefaultInterval.
	Interval time.Duration
	// GoneAfter is how long after its last heartbeat a replica counts as
	// gone; zero means GoneAfterBeats × Interval.
	GoneAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives heartbeat failures (Run); nil discards.
	Logger *slog.Logger

	// beatMu makes heartbeats one at a time, so the version each writes
	// against is the one the previous wrote.
	beatMu    sync.Mutex
	version   uint64 // of our record as we last wrote it; 0: not written yet
	startedAt time.Time

	pokeOnce sync.Once
	poke     chan struct{}

	// Run's own state.
	errLog  throttle
	dupLog  throttle
	failing bool
	// onBeat, when set (tests), sees the result of every heartbeat of Run.
	onBeat func(error)
}

// Beat writes this replica's record with LastHeartbeat set to now, by
// compare-and-swap on the version it last wrote. When the record changed
// in between (this replica restarted under the same id, or Prune removed
// it while this replica was cut off), it reads the record and tries once
// more.
func (m *Membership) Beat(ctx context.Context) error {
	self := m.Self()
	if self.ID == "" {
		return errors.New("cluster: Membership.Self returned a replica without an id; give every replica a unique id")
	}
	m.beatMu.Lock()
	defer m.beatMu.Unlock()
	now := m.now()
	if m.startedAt.IsZero() {
		m.startedAt = now
	}
	if self.StartedAt.IsZero() {
		self.StartedAt = m.startedAt
	}
	self.LastHeartbeat = now
	data, err := json.Marshal(toRecord(self))
	if err != nil {
		return fmt.Errorf("cluster: encode the heartbeat of replica %s: %w", self.ID, err)
	}

	rec, err := m.Store.Put(ctx, Collection, store.Record{Key: self.ID, Version: m.version, Data: data})
	if errors.Is(err, store.ErrConflict) {
		cur, gerr := m.Store.Get(ctx, Collection, self.ID)
		switch {
		case errors.Is(gerr, store.ErrNotFound):
			cur = store.Record{}
		case gerr != nil:
			return fmt.Errorf("cluster: heartbeat of replica %s: re-read its record: %w", self.ID, gerr)
		default:
			m.noticeOtherWriter(cur, self)
		}
		rec, err = m.Store.Put(ctx, Collection, store.Record{Key: self.ID, Version: cur.Version, Data: data})
	}
	if err != nil {
		return fmt.Errorf("cluster: heartbeat of replica %s: %w", self.ID, err)
	}
	m.version = rec.Version
	return nil
}

// noticeOtherWriter warns when the record we lost a compare-and-swap to
// was written by another process (another start time) after we had
// written ours: two replicas share an id, and each hides the other.
// Finding a record of an earlier process at our first beat is a restart,
// not a problem.
func (m *Membership) noticeOtherWriter(cur store.Record, self model.Replica) {
	if m.version == 0 {
		return
	}
	var other record
	if json.Unmarshal(cur.Data, &other) != nil || other.StartedAt.Equal(self.StartedAt) {
		return
	}
	if ok, held := m.dupLog.allow(m.now(), errorLogInterval); ok {
		m.logger().Warn("another process registers as this replica: two replicas share an id, so each hides the other; give each a unique id",
			"replica", self.ID, "otherAdmin", other.Admin, "otherStartedAt", other.StartedAt, "suppressedSinceLast", held)
	}
}

// Run beats every Interval, and at once after Poke, until ctx ends. The
// first heartbeat is immediate. A store error is logged (at most once a
// minute) and retried at the next beat, never fatal: the data plane does
// not need the registry. Run leaves the record behind; call Remove after
// it returns on a clean shutdown.
func (m *Membership) Run(ctx context.Context) {
	interval := m.interval()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// A heartbeat never outlasts its interval: a hung store must not
		// hold back the next one.
		bctx, cancel := context.WithTimeout(ctx, interval)
		err := m.Beat(bctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		m.report(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.pokes():
			// Routing changes come in bursts (a thousand rollouts
			// stepping at once); one heartbeat carries them all, so
			// pokes are gathered for a moment before the next beat.
			select {
			case <-ctx.Done():
				return
			case <-time.After(pokeGather):
			}
		}
	}
}

// pokeGather is how long a poked heartbeat waits for more routing changes
// to carry: short beside the leader's 1 s re-check of a setWeight step,
// long enough to turn a burst into one write.
const pokeGather = 20 * time.Millisecond

// report logs a failing heartbeat once per errorLogInterval, and the
// first success after failures.
func (m *Membership) report(err error) {
	if m.onBeat != nil {
		defer m.onBeat(err)
	}
	if err == nil {
		if m.failing {
			m.failing = false
			m.logger().Info("replica heartbeat saved again")
		}
		return
	}
	m.failing = true
	if ok, held := m.errLog.allow(m.now(), errorLogInterval); ok {
		m.logger().Warn("replica heartbeat not saved; other replicas will list this one as gone until it is, while it keeps proxying",
			"err", err, "suppressedSinceLast", held)
	}
}

// Poke asks Run for a heartbeat now, for instance right after a routing
// change, so the leader learns of it without waiting for the next beat.
// It never blocks; pokes before the heartbeat happens coalesce into one.
func (m *Membership) Poke() {
	select {
	case m.pokes() <- struct{}{}:
	default:
	}
}

func (m *Membership) pokes() chan struct{} {
	m.pokeOnce.Do(func() { m.poke = make(chan struct{}, 1) })
	return m.poke
}

// List returns every registered replica sorted by id, with Gone and Leader
// as of now.
func (m *Membership) List(ctx context.Context) ([]model.Replica, error) {
	recs, err := m.Store.List(ctx, Collection)
	if err != nil {
		return nil, fmt.Errorf("cluster: list replicas: %w", err)
	}
	replicas := make([]model.Replica, 0, len(recs))
	for _, rec := range recs {
		r, err := decodeRecord(rec)
		if err != nil {
			return nil, err
		}
		replicas = append(replicas, r)
	}
	l, err := m.readLease(ctx)
	if err != nil {
		return nil, err
	}
	return Annotate(replicas, l, m.now(), m.goneAfter()), nil
}

// Live returns the replicas of List that are not gone.
func (m *Membership) Live(ctx context.Context) ([]model.Replica, error) {
	all, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	live := all[:0]
	for _, r := range all {
		if !r.Gone {
			live = append(live, r)
		}
	}
	return live, nil
}

// Remove deletes this replica's record, so that a clean shutdown leaves no
// gone replica behind. Call it after Run has returned: a later heartbeat
// registers the replica again.
func (m *Membership) Remove(ctx context.Context) error {
	id := m.Self().ID
	m.beatMu.Lock()
	defer m.beatMu.Unlock()
	if err := m.Store.Delete(ctx, Collection, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("cluster: remove replica %s: %w", id, err)
	}
	m.version = 0
	return nil
}

// Prune deletes the records of replicas gone for longer than olderThan.
// Each delete asserts the version it read, so a replica that comes back at
// that moment keeps its record.
func (m *Membership) Prune(ctx context.Context, olderThan time.Duration) error {
	recs, err := m.Store.List(ctx, Collection)
	if err != nil {
		return fmt.Errorf("cluster: prune replicas: %w", err)
	}
	now, goneAfter := m.now(), m.goneAfter()
	for _, rec := range recs {
		r, err := decodeRecord(rec)
		if err != nil {
			return err
		}
		if !PruneDue(r.LastHeartbeat, now, goneAfter, olderThan) {
			continue
		}
		_, err = m.Store.Commit(ctx, store.Batch{
			Checks:  []store.Check{{Collection: Collection, Key: rec.Key, Version: rec.Version}},
			Deletes: []store.Delete{{Collection: Collection, Key: rec.Key}},
		})
		switch {
		case errors.Is(err, store.ErrConflict):
			continue // it beat again meanwhile
		case err != nil:
			return fmt.Errorf("cluster: prune replica %s: %w", rec.Key, err)
		}
		m.logger().Info("removed the record of a replica gone for long", "replica", rec.Key, "lastHeartbeat", r.LastHeartbeat)
	}
	return nil
}

func (m *Membership) readLease(ctx context.Context) (*lease.State, error) {
	rec, err := m.Store.Get(ctx, lease.Collection, lease.LeaseKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("cluster: read the lease to find the leader: %w", err)
	}
	var l lease.State
	if err := json.Unmarshal(rec.Data, &l); err != nil {
		return nil, fmt.Errorf("cluster: read lease %s/%s: %w", lease.Collection, lease.LeaseKey, err)
	}
	return &l, nil
}

func (m *Membership) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Membership) interval() time.Duration {
	if m.Interval > 0 {
		return m.Interval
	}
	return DefaultInterval
}

func (m *Membership) goneAfter() time.Duration {
	if m.GoneAfter > 0 {
		return m.GoneAfter
	}
	return GoneAfterBeats * m.interval()
}

func (m *Membership) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// record is what the store holds: a model.Replica without the fields that
// depend on who reads it and when.
type record struct {
	ID            string                        `json:"id"`
	Admin         string                        `json:"admin"`
	Version       string                        `json:"version"`
	RouteRevision uint64                        `json:"routeRevision"`
	Routes        map[string]model.ReplicaRoute `json:"routes,omitempty"`
	StartedAt     time.Time                     `json:"startedAt"`
	LastHeartbeat time.Time                     `json:"lastHeartbeat"`
}

func toRecord(r model.Replica) record {
	return record{ID: r.ID, Admin: r.Admin, Version: r.Version, RouteRevision: r.RouteRevision, Routes: r.Routes,
		StartedAt: r.StartedAt, LastHeartbeat: r.LastHeartbeat}
}

func decodeRecord(rec store.Record) (model.Replica, error) {
	var r record
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return model.Replica{}, fmt.Errorf("cluster: read replica record %s/%s: %w; delete the record, a live replica writes it again within a second", Collection, rec.Key, err)
	}
	if r.ID == "" {
		r.ID = rec.Key
	}
	return model.Replica{ID: r.ID, Admin: r.Admin, Version: r.Version, RouteRevision: r.RouteRevision, Routes: r.Routes,
		StartedAt: r.StartedAt, LastHeartbeat: r.LastHeartbeat}, nil
}

// throttle lets one log line through per interval and counts the ones it
// held back.
type throttle struct {
	mu   sync.Mutex
	next time.Time
	held int
}

func (t *throttle) allow(now time.Time, every time.Duration) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Before(t.next) {
		t.held++
		return false, 0
	}
	n := t.held
	t.held, t.next = 0, now.Add(every)
	return true, n
}
