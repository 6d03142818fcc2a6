package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// A replica that does not lead follows: it keeps its entries, its data
// plane and its watchers in line with the store the leader writes, and
// decides nothing (no Next, no measurements, no notifications, no
// writes). Commands never reach a follower's controller: the admin API
// forwards them to the leader. See docs/architecture.md "High
// availability".

// FollowResync is how often a follower re-reads every rollout, the safety
// net under the change feed (a lost notification, a reconnection).
const FollowResync = 2 * time.Second

// Follow keeps this replica in line with the store until ctx ends: it
// re-reads what changes announces at once, and everything every
// FollowResync. changes may be nil (no change feed: polling only).
func (c *Controller) Follow(ctx context.Context, changes <-chan store.Change) {
	t := time.NewTicker(FollowResync)
	defer t.Stop()
	c.refreshLogged(ctx, c.Refresh)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.refreshLogged(ctx, c.Refresh)
		case <-c.health:
			// The leader's data plane records endpoint health; a
			// follower's own observations are not events.
		case ch, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			c.followChanges(ctx, append([]store.Change{ch}, drain(changes)...))
		}
	}
}

// bulkRefresh is how many changed rollouts make one full re-read (two
// queries for all) cheaper than re-reading each (three queries apiece):
// a thousand rollouts stepping at once reach the followers in one read.
const bulkRefresh = 16

// followChanges re-reads what a batch of change notifications names.
func (c *Controller) followChanges(ctx context.Context, batch []store.Change) {
	rollouts := map[string]bool{}
	templates := false
	for _, ch := range batch {
		switch {
		case ch.Resync:
			c.refreshLogged(ctx, c.Refresh)
			return
		case ch.Collection == specCollection || ch.Collection == stateCollection:
			rollouts[ch.Key] = true
		case ch.Collection == templateCollection:
			templates = true
		}
	}
	if len(rollouts) >= bulkRefresh {
		c.refreshLogged(ctx, c.Refresh)
		return
	}
	if templates {
		c.refreshLogged(ctx, c.refreshStoredTemplates)
	}
	for name := range rollouts {
		c.refreshLogged(ctx, func(ctx context.Context) error { return c.RefreshRollout(ctx, name) })
	}
}

// drain takes the changes already waiting, without blocking.
func drain(changes <-chan store.Change) []store.Change {
	var out []store.Change
	for {
		select {
		case ch, ok := <-changes:
			if !ok {
				return out
			}
			out = append(out, ch)
		default:
			return out
		}
	}
}

// followErr is the last error a follower's re-read met, nil once one
// succeeds; FollowError reports it.
type followState struct {
	err atomic.Pointer[error]
	// synced is set once a re-read of every rollout succeeded.
	synced atomic.Bool
	// bad holds, by rollout, why the stored rollout could not be taken.
	mu  sync.Mutex
	bad map[string]string
}

// Synced reports whether this replica has read every rollout from the
// store at least once (Refresh), so it routes what the leader decided.
func (c *Controller) Synced() bool { return c.follow.synced.Load() }

// FollowError returns why the last re-read of the store failed, or nil.
func (c *Controller) FollowError() error {
	if p := c.follow.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *Controller) refreshLogged(ctx context.Context, fn func(context.Context) error) {
	rctx, cancel := context.WithTimeout(ctx, FollowResync)
	defer cancel()
	err := fn(rctx)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		if c.follow.err.Swap(nil) != nil {
			c.log.Info("the store answers again; this replica routes with its current state")
		}
		return
	}
	if prev := c.follow.err.Swap(&err); prev == nil {
		c.log.Error("cannot read the store; this replica keeps routing with the last state it read", "err", err)
	}
}

// Refresh re-reads every rollout and template from the store, serves what
// changed, and stops serving rollouts no longer stored.
func (c *Controller) Refresh(ctx context.Context) error {
	if err := c.refreshStoredTemplates(ctx); err != nil {
		return err
	}
	specs, err := c.cfg.Store.List(ctx, specCollection)
	if err != nil {
		return fmt.Errorf("list stored rollouts: %w", err)
	}
	states, err := c.cfg.Store.List(ctx, stateCollection)
	if err != nil {
		return fmt.Errorf("list stored rollout states: %w", err)
	}
	stateOf := make(map[string]store.Record, len(states))
	for _, s := range states {
		stateOf[s.Key] = s
	}
	stored := make(map[string]bool, len(specs))
	for _, sp := range specs {
		stored[sp.Key] = true
		st, ok := stateOf[sp.Key]
		if !ok {
			continue // written in one batch with its spec; not there yet
		}
		if err := c.refreshEntry(ctx, sp, st); err != nil {
			if ctx.Err() != nil {
				return err
			}
			// One rollout that cannot be read or served must not keep
			// this replica from serving the others.
			c.noteRolloutError(sp.Key, err)
			continue
		}
		c.noteRolloutError(sp.Key, nil)
	}
	c.mu.RLock()
	var gone []string
	for name := range c.entries {
		if !stored[name] {
			gone = append(gone, name)
		}
	}
	c.mu.RUnlock()
	for _, name := range gone {
		c.forget(ctx, name)
	}
	c.follow.synced.Store(true)
	return nil
}

// noteRolloutError logs why a rollout could not be taken from the store,
// once per distinct reason, and that it can be again.
func (c *Controller) noteRolloutError(name string, err error) {
	c.follow.mu.Lock()
	defer c.follow.mu.Unlock()
	prev, had := c.follow.bad[name]
	switch {
	case err == nil && had:
		delete(c.follow.bad, name)
		c.log.Info("the stored rollout can be served again", "rollout", name)
	case err != nil && (!had || prev != err.Error()):
		if c.follow.bad == nil {
			c.follow.bad = map[string]string{}
		}
		c.follow.bad[name] = err.Error()
		c.log.Error("a stored rollout cannot be served; this replica keeps what it had of it and serves the others", "rollout", name, "err", err)
	}
}

// RefreshRollout re-reads one rollout (after a change notification).
func (c *Controller) RefreshRollout(ctx context.Context, name string) error {
	sp, err := c.cfg.Store.Get(ctx, specCollection, name)
	if errors.Is(err, store.ErrNotFound) {
		c.forget(ctx, name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read spec of rollout %q: %w", name, err)
	}
	st, err := c.cfg.Store.Get(ctx, stateCollection, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read state of rollout %q: %w", name, err)
	}
	return c.refreshEntry(ctx, sp, st)
}

// refreshEntry takes a stored spec and state into the rollout's entry when
// they are newer than what it has, publishes the events appended since,
// and serves the state.
func (c *Controller) refreshEntry(ctx context.Context, sp, st store.Record) error {
	name := sp.Key
	if c.unchanged(name, sp.Version, st.Version) {
		return nil // the common case of a periodic re-read: decode nothing
	}
	var rec specRecord
	if err := json.Unmarshal(sp.Data, &rec); err != nil {
		return fmt.Errorf("decode stored rollout %q: %w", name, err)
	}
	var state State
	if err := json.Unmarshal(st.Data, &state); err != nil {
		return fmt.Errorf("decode state of rollout %q: %w", name, err)
	}
	rec.Rollout.SetDefaults()
	e, fresh := c.entryOrNew(name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !fresh && !e.removed && e.specVer == sp.Version && e.stVer == st.Version {
		return nil
	}
	// Reads happen one after the other (Follow is one goroutine, and a
	// takeover re-reads after it stopped), so a different version is
	// always the newer state, even a lower one: a rollout removed and
	// added again starts its records, and its event stream, afresh.
	recreated := !fresh && (sp.Version < e.specVer || st.Version < e.stVer)
	stream := model.EventStream(name)
	var events []store.Event
	if fresh || e.removed || recreated {
		last, err := c.cfg.Store.LastSeq(ctx, stream)
		if err != nil {
			c.dropIfEmpty(name, e)
			return fmt.Errorf("read events of rollout %q: %w", name, err)
		}
		e.lastSeq = last
	} else {
		var err error
		if events, err = c.cfg.Store.Events(ctx, stream, e.lastSeq, 0); err != nil {
			return fmt.Errorf("read events of rollout %q: %w", name, err)
		}
	}
	e.removed = false
	if e.dirty && !recreated && !abortSettled(e.st, state) {
		// An abort this replica applied while no leader could save it
		// stays in effect until the store has it (or the rollout moved on
		// to another revision); the replica hands it to the leader
		// meanwhile (UnsavedAborts).
		state = e.st
	} else {
		e.dirty, e.unsaved, e.saveErr = false, nil, nil
	}
	if fresh || recreated || state.Weight != e.st.Weight || versionOf(state.Canary) != versionOf(e.st.Canary) {
		// What a leader checks the replicas against, should this one lead.
		e.weightVer = st.Version
	}
	e.rec, e.specVer, e.st, e.stVer = rec, sp.Version, state, st.Version
	for _, raw := range events {
		var ev model.Event
		if err := json.Unmarshal(raw.Data, &ev); err != nil {
			c.log.Warn("skip an undecodable event", "rollout", name, "seq", raw.Seq, "err", err)
			continue
		}
		ev.Seq = raw.Seq
		e.lastSeq = raw.Seq
		c.hub.publish(name, model.WatchUpdate{Event: &ev})
	}
	if err := c.sync(ctx, e); err != nil {
		return err
	}
	v := c.view(e)
	c.hub.publish(name, model.WatchUpdate{View: &v})
	if c.cfg.OnRouted != nil {
		c.cfg.OnRouted()
	}
	return nil
}

// unchanged reports whether the entry already holds these versions.
func (c *Controller) unchanged(name string, specVer, stVer uint64) bool {
	c.mu.RLock()
	e := c.entries[name]
	c.mu.RUnlock()
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.removed && e.specVer == specVer && e.stVer == stVer
}

// forget stops serving a rollout the store no longer has, without
// writing anything (the leader removed it).
func (c *Controller) forget(ctx context.Context, name string) {
	c.mu.Lock()
	e := c.entries[name]
	delete(c.entries, name)
	c.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.removed = true
	e.routed.Store(nil)
	if e.served {
		if err := c.cfg.Router.Remove(ctx, name); err != nil {
			c.log.Warn("stop serving removed rollout", "rollout", name, "err", err)
		}
	}
	c.queue.Forget(name)
	c.hub.closeAll(name)
	c.log.Info("rollout removed by the leader; no longer served here", "rollout", name)
}

// refreshStoredTemplates replaces the templates with the stored ones.
func (c *Controller) refreshStoredTemplates(ctx context.Context) error {
	recs, err := c.cfg.Store.List(ctx, templateCollection)
	if err != nil {
		return fmt.Errorf("list stored analysis templates: %w", err)
	}
	m := make(map[string]templateRecord, len(recs))
	for _, raw := range recs {
		var rec templateRecord
		if err := json.Unmarshal(raw.Data, &rec); err != nil {
			return fmt.Errorf("decode stored analysis template %q: %w", raw.Key, err)
		}
		m[raw.Key] = rec
	}
	c.mu.Lock()
	c.templates = m
	c.refreshTemplates()
	c.mu.Unlock()
	return nil
}

// WakeWeightWaiters reconciles at once the rollouts waiting for a weight
// to take effect: another replica reported what it routes with.
func (c *Controller) WakeWeightWaiters() {
	now := c.cfg.Now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for name, e := range c.entries {
		// A rollout busy with a reconcile or a command is woken anyway
		// rather than waited for.
		waiting := true
		if e.mu.TryLock() {
			waiting = !e.st.WeightSince.IsZero()
			e.mu.Unlock()
		}
		if waiting {
			c.queue.Add(name, now)
		}
	}
}

// StepDown forgets what only a leader tracks once Run has returned: a
// store error of its writes (a follower's readiness is its re-reads).
func (c *Controller) StepDown() {
	c.storeErr.Store(nil)
	// Measurements cancelled with Run never recorded their end: forget
	// them, or a metric would never be measured again when this replica
	// leads the same analysis run later.
	c.runMu.Lock()
	c.pending = nil
	c.runMu.Unlock()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.entries {
		e.mu.Lock()
		e.inflight = nil
		e.mu.Unlock()
	}
}

// ServedRoute is what this replica's data plane routes one rollout with.
type ServedRoute struct {
	Rollout      string
	Revision     int64
	StateVersion uint64
	Weight       spec.Weight
}

// Served lists what this replica's data plane routes with, for its
// heartbeat: the leader completes a setWeight step only once every live
// replica reports the new weight.
func (c *Controller) Served() []ServedRoute {
	c.mu.RLock()
	entries := make(map[string]*entry, len(c.entries))
	for n, e := range c.entries {
		entries[n] = e
	}
	c.mu.RUnlock()
	out := make([]ServedRoute, 0, len(entries))
	// No entry lock: a heartbeat must not wait for a slow commit, or a
	// busy leader would look dead. sync publishes what it served.
	for name, e := range entries {
		p := e.routed.Load()
		if p == nil {
			continue
		}
		if _, w, _, err := c.cfg.Router.Observed(name); err == nil {
			out = append(out, ServedRoute{Rollout: name, Revision: p.Revision, StateVersion: p.StateVersion, Weight: w})
		}
	}
	return out
}

// abortSettled reports whether a stored state makes a local, unsaved abort
// of inEffect moot: the store has the abort, or a later revision.
func abortSettled(inEffect, stored State) bool {
	return stored.Revision != inEffect.Revision || stored.Aborted || stored.Canary == nil
}

// UnsavedAborts names the rollouts with an abort in effect in this
// replica's data plane that the store does not have yet.
func (c *Controller) UnsavedAborts() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for name, e := range c.entries {
		if e.mu.TryLock() {
			if e.dirty {
				out = append(out, name)
			}
			e.mu.Unlock()
		}
	}
	return out
}
