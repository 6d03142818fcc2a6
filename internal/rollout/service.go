package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// lock returns the rollout's entry locked (the caller unlocks it), or
// ErrNotFound when it does not exist or was removed meanwhile.
func (c *Controller) lock(name string) (*entry, error) {
	e, err := c.entry(name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if e.removed {
		e.mu.Unlock()
		return nil, fmt.Errorf("rollout %q %w", name, model.ErrNotFound)
	}
	return e, nil
}

// command runs a pure command function on a rollout and carries out the
// result like a reconcile does.
func (c *Controller) command(ctx context.Context, name string, fn func(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error)) (model.View, error) {
	e, err := c.lock(name)
	if err != nil {
		return model.View{}, err
	}
	defer e.mu.Unlock()
	now := c.cfg.Now()
	next, events, err := fn(e.st, &e.rec.Rollout.Spec, now)
	if err != nil {
		return model.View{}, err
	}
	if err := c.commit(ctx, e, next, events, nil); err != nil {
		return model.View{}, err
	}
	if err := c.sync(ctx, e); err != nil {
		return model.View{}, err
	}
	c.queue.Add(name, now)
	return c.view(e), nil
}

// Promote implements model.Commands.
func (c *Controller) Promote(ctx context.Context, name string, full bool) (model.View, error) {
	return c.command(ctx, name, func(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
		return Promote(name, st, sp, full, now)
	})
}

// Abort implements model.Commands. Abort is the emergency button, so it
// takes effect in the data plane even when the store cannot write: the
// aborted state is routed at once, kept in memory as unsaved, reported in
// the view (status.unsaved) and /readyz, and written as soon as the store
// takes writes again (Reconcile retries). Every other command fails
// instead when its state cannot be saved.
func (c *Controller) Abort(ctx context.Context, name string) (model.View, error) {
	e, err := c.lock(name)
	if err != nil {
		return model.View{}, err
	}
	defer e.mu.Unlock()
	now := c.cfg.Now()
	next, events, err := Abort(name, e.st, now)
	if err != nil {
		return model.View{}, err
	}
	if err := c.commit(ctx, e, next, events, nil); err != nil {
		if errors.Is(err, model.ErrConflict) {
			return model.View{}, err
		}
		for i := range events {
			events[i].Time = now // saved later, with the time it happened
		}
		e.unsaved = append(e.unsaved, events...)
		e.st, e.dirty, e.saveErr = next, true, err
		c.log.Error("abort is in effect but could not be saved; retrying every "+saveRetry.String(), "rollout", name, "err", err)
		if serr := c.sync(ctx, e); serr != nil {
			return model.View{}, fmt.Errorf("abort could not be saved (%v) nor applied to the data plane: %w", err, serr)
		}
		c.queue.Add(name, now.Add(saveRetry))
		return c.view(e), nil
	}
	if err := c.sync(ctx, e); err != nil {
		return model.View{}, err
	}
	c.queue.Add(name, now)
	return c.view(e), nil
}

// Retry implements model.Commands.
func (c *Controller) Retry(ctx context.Context, name string) (model.View, error) {
	return c.command(ctx, name, func(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
		return Retry(name, st, sp, now)
	})
}

// Pause implements model.Commands.
func (c *Controller) Pause(ctx context.Context, name string) (model.View, error) {
	return c.command(ctx, name, func(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
		return Pause(name, st, sp, now)
	})
}

// Resume implements model.Commands.
func (c *Controller) Resume(ctx context.Context, name string) (model.View, error) {
	return c.command(ctx, name, func(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
		return Resume(name, st, sp, now)
	})
}

// SetWeight implements model.Commands.
func (c *Controller) SetWeight(ctx context.Context, name string, w spec.Weight) (model.View, error) {
	return c.command(ctx, name, func(st State, _ *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
		return SetWeight(name, st, w, now)
	})
}

// SetCanary implements model.Commands: it changes the stored spec's canary,
// which starts a new revision.
func (c *Controller) SetCanary(ctx context.Context, name string, canary spec.VersionSpec) (model.View, error) {
	e, err := c.entry(name)
	if err != nil {
		return model.View{}, err
	}
	e.mu.Lock()
	r := e.rec.Rollout
	st := e.st
	e.mu.Unlock()
	switch {
	case canary.Version == versionOf(st.Canary) && st.Aborted:
		return model.View{}, conflict(name, "already tried %s in revision %d, which was aborted: `coalmine retry` starts it again", canary.Version, st.Revision)
	case canary.Version == versionOf(st.Canary):
		return model.View{}, conflict(name, "is already rolling out %s (revision %d)", canary.Version, st.Revision)
	case canary.Version == st.Stable.Version:
		return model.View{}, conflict(name, "already has %s as its stable version: name a new version", canary.Version)
	}
	r.Spec.Stable = st.Stable
	r.Spec.Canary = &canary
	return c.applyRollout(ctx, r, nil)
}

// Undo implements model.Commands.
func (c *Controller) Undo(ctx context.Context, name string, toRevision int64) (model.View, error) {
	e, err := c.entry(name)
	if err != nil {
		return model.View{}, err
	}
	e.mu.Lock()
	r := e.rec.Rollout
	st := e.st
	e.mu.Unlock()
	window := 1
	if r.Spec.RollbackWindow != nil {
		window = int(*r.Spec.RollbackWindow)
	}
	target, fast, err := UndoTarget(name, st, toRevision, window)
	if err != nil {
		return model.View{}, err
	}
	r.Spec.Stable = st.Stable
	r.Spec.Canary = &target
	return c.applyRollout(ctx, r, func(s State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
		var e emitter
		if s.Canary == nil && st.Canary != nil {
			// Back to the stable during a canary: Plan ended the canary at
			// once, which Argo also does whatever the rollback window.
			which := "the previous revision"
			if toRevision > 0 {
				which = fmt.Sprintf("as revision %d ended", toRevision)
			}
			s.Message = fmt.Sprintf("undo: back to %s, %s, serving 100%%; %s is rolled back", s.Stable.Version, which, st.Canary.Version)
			e.emit(EventCompleted, s.Message, map[string]any{"stable": s.Stable.Version, "rolledBack": st.Canary.Version, "undo": true})
			return s, e.events, nil
		}
		if !fast || s.Canary == nil {
			return s, nil, nil
		}
		e.emit(EventPromoted, fmt.Sprintf("fast rollback to %s: it was stable within the last %d revision(s), so the steps are skipped", target.Version, window), map[string]any{"full": true, "undo": true})
		complete(&s, len(sp.Strategy.Canary.Steps), now, "fast rollback", e.emit)
		return s, e.events, nil
	})
}

// Get implements model.Commands.
func (c *Controller) Get(_ context.Context, name string) (model.View, error) {
	e, err := c.lock(name)
	if err != nil {
		return model.View{}, err
	}
	defer e.mu.Unlock()
	return c.view(e), nil
}

// List implements model.Commands.
func (c *Controller) List(ctx context.Context) ([]model.View, error) {
	c.mu.RLock()
	names := make([]string, 0, len(c.entries))
	for n := range c.entries {
		names = append(names, n)
	}
	c.mu.RUnlock()
	sort.Strings(names)
	out := make([]model.View, 0, len(names))
	for _, n := range names {
		v, err := c.Get(ctx, n)
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, v)
	}
	return out, nil
}

// view builds the API object. Callers hold e.mu.
func (c *Controller) view(e *entry) model.View {
	// The spec shown is the one in effect: its stable and canary are the
	// state's. After a completion or an undo the stored spec still names
	// the versions it was applied with (an unchanged file must not undo a
	// promotion), and showing those beside the status's versions gave two
	// answers to "what is stable?". Applying this spec back changes nothing.
	r := e.rec.Rollout
	if e.st.Revision > 0 {
		r = routedSpec(e)
	}
	name := r.Metadata.Name
	st := &e.st
	status := model.Status{
		Phase:         st.Phase(),
		Revision:      st.Revision,
		StepIndex:     st.StepIndex,
		StepCount:     len(r.Spec.Strategy.Canary.Steps),
		Weight:        st.Weight.Percent(),
		StableVersion: st.Stable.Version,
		CanaryVersion: versionOf(st.Canary),
		PauseReason:   st.PauseReason(),
		Message:       st.Message,
		AnalysisRuns:  make([]model.AnalysisRunStatus, 0, len(st.Runs)),
		Aborted:       st.Aborted && st.Canary != nil,
		LastEventSeq:  e.lastSeq,
		UpdatedAt:     st.UpdatedAt.UTC(),
	}
	for _, r := range st.Runs {
		status.AnalysisRuns = append(status.AnalysisRuns, runStatus(r))
	}
	if st.Canary == nil {
		status.Weight = 0
	}
	if st.Canary != nil && !st.StepStartedAt.IsZero() {
		t := st.StepStartedAt.UTC()
		status.StepStartedAt = &t
	}
	if !st.PauseUntil.IsZero() {
		t := st.PauseUntil.UTC()
		status.PauseUntil = &t
	}
	if e.served {
		if _, w, avail, err := c.cfg.Router.Observed(name); err == nil {
			if avail && st.Canary != nil {
				status.ObservedWeight = w.Percent()
			}
		}
		if eps, err := c.cfg.Router.Endpoints(name); err == nil {
			status.Endpoints = eps
		}
	}
	if c.cfg.Notifier != nil {
		status.Notifications = c.cfg.Notifier.Status(name)
	}
	if err := c.cfg.Router.ListenError(name); err != nil {
		if e.rec.Rollout.Spec.TrafficRouting.Router.External() {
			status.RouterError = err.Error()
		} else {
			status.ListenError = err.Error()
		}
	}
	if c.cfg.ReplicaRoutes != nil {
		status.Replicas = c.replicaWeights(e, name, status.ObservedWeight)
	}
	if c.cfg.Degraded != nil {
		status.Controller = c.cfg.Degraded()
	}
	if e.dirty {
		status.Unsaved = fmt.Sprintf("in effect in the data plane but not saved: %v; saving is retried every %s, and a restart before it succeeds would bring back the previous state", e.saveErr, saveRetry)
	}
	return model.View{APIVersion: r.APIVersion, Kind: r.Kind, Metadata: r.Metadata, Spec: r.Spec, Status: status}
}

// AnalysisRuns implements model.Commands: the runs of the current attempt
// and the ended ones kept, newest first.
func (c *Controller) AnalysisRuns(_ context.Context, name string) ([]model.AnalysisRunStatus, error) {
	e, err := c.lock(name)
	if err != nil {
		return nil, err
	}
	defer e.mu.Unlock()
	all := append(slices.Clone(e.st.PastRuns), e.st.Runs...)
	out := make([]model.AnalysisRunStatus, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		out = append(out, runStatus(all[i]))
	}
	return out, nil
}

func runStatus(r AnalysisRun) model.AnalysisRunStatus {
	st := analysis.Status(r.Run)
	st.Revision = r.Revision
	return st
}

// Events implements model.Commands.
func (c *Controller) Events(ctx context.Context, name string, after uint64, limit int) ([]model.Event, error) {
	if _, err := c.entry(name); err != nil {
		return nil, err
	}
	raw, err := c.cfg.Store.Events(ctx, model.EventStream(name), after, limit)
	if err != nil {
		return nil, fmt.Errorf("read events of rollout %q: %w", name, err)
	}
	out := make([]model.Event, 0, len(raw))
	for _, r := range raw {
		var ev model.Event
		if err := json.Unmarshal(r.Data, &ev); err != nil {
			return nil, fmt.Errorf("decode event %d of rollout %q: %w", r.Seq, name, err)
		}
		ev.Seq = r.Seq
		out = append(out, ev)
	}
	return out, nil
}

// replicaWeights lists what each replica routes the rollout with, this one
// first. Callers hold e.mu.
func (c *Controller) replicaWeights(e *entry, name string, own float64) []model.ReplicaWeight {
	out := []model.ReplicaWeight{{Replica: c.cfg.ReplicaID, ObservedWeight: own, StateVersion: e.stVer, Current: e.served}}
	for _, r := range c.cfg.ReplicaRoutes(name) {
		w := 0.0
		if e.st.Canary != nil {
			w = r.Weight.Percent()
		}
		out = append(out, model.ReplicaWeight{Replica: r.Replica, ObservedWeight: w, StateVersion: r.StateVersion,
			Current: r.Known && r.StateVersion >= e.weightVer})
	}
	return out
}
