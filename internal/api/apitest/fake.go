// Package apitest provides an in-memory model.Commands and a few fixed
// rollouts, for tests of the API, the client and the CLI that want a real
// HTTP round trip without a controller behind it.
package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Fake is an in-memory model.Commands. It is safe for concurrent use.
//
// It behaves like the rollout service of SPEC §4 with a controller that
// settles instantly but never lets time pass: setWeight, setHeaderRoute and
// setMirrorRoute steps complete at once (the data plane observes every
// weight immediately), while pause steps (timed or not) and analysis steps
// hold until `promote`. Every state change is stamped with Now, appends
// events (types from spec.EventTypes) and is sent to watchers. Nothing
// changes by itself, so tests are deterministic.
//
// Lookups of a missing rollout or template return the bare
// model.ErrNotFound, as the service may; the API gives it a subject.
// Commands that do not apply return model.ErrConflict with the reason.
type Fake struct {
	// Now stamps changes and events. Required.
	Now func() time.Time

	mu        sync.Mutex
	rollouts  map[string]*rollout
	templates map[string]spec.AnalysisTemplate
	err       error
	// watching counts the goroutines of Watch streams, for leak checks.
	watching sync.WaitGroup
}

var _ model.Commands = (*Fake)(nil)

// Revision is an ended revision of a rollout: what `undo` can return to.
type Revision struct {
	Number int64
	Stable spec.VersionSpec
	Canary *spec.VersionSpec
	// Completed is true when the canary became the stable version.
	Completed bool
}

// rollout is one rollout's state. The running stable and canary versions
// are kept apart from the applied spec, as the service does: after a
// completion the former canary is stable whatever the document still says.
type rollout struct {
	view   model.View
	stable spec.VersionSpec
	canary *spec.VersionSpec // nil: nothing to roll out (Healthy)
	// manual holds the rollout (`pause`, `set weight`) until resume or promote.
	manual bool
	// stepPause is set while a pause step holds the rollout.
	stepPause model.PauseReason
	aborted   bool
	history   []Revision // ended revisions, oldest first
	events    []model.Event
	watchers  map[*watcher]struct{}

	pending []model.Event // events of the command in progress
}

// NewFake returns a Fake holding views, stamping changes with now. The
// views are copied; their status is taken as the running state.
func NewFake(now func() time.Time, views ...model.View) *Fake {
	f := &Fake{Now: now, rollouts: map[string]*rollout{}, templates: map[string]spec.AnalysisTemplate{}}
	for _, v := range views {
		f.rollouts[v.Metadata.Name] = load(clone(v))
	}
	return f
}

// NewFixtures returns a Fake holding Fixtures, their events
// (FixtureEvents), their earlier revisions (FixtureHistory) and the
// analysis templates they use (Templates).
func NewFixtures(now func() time.Time) *Fake {
	f := NewFake(now, Fixtures()...)
	f.AddEvents(FixtureEvents()...)
	for name, revs := range FixtureHistory() {
		f.AddHistory(name, revs...)
	}
	for _, t := range Templates() {
		f.templates[t.Metadata.Name] = clone(t)
	}
	return f
}

func load(v model.View) *rollout {
	r := &rollout{view: v, stable: v.Spec.Stable, watchers: map[*watcher]struct{}{}}
	st := v.Status
	if st.CanaryVersion != "" && v.Spec.Canary != nil {
		c := *v.Spec.Canary
		r.canary = &c
	}
	r.aborted = st.Aborted || st.Phase == model.PhaseDegraded
	r.manual = st.PauseReason == model.PauseManual
	switch {
	case st.PauseReason != model.PauseNone && st.PauseReason != model.PauseManual:
		r.stepPause = st.PauseReason
	case r.manual && r.currentStep() != nil && r.currentStep().Pause != nil:
		r.stepPause = model.PauseStep
	}
	if r.view.Status.AnalysisRuns == nil {
		r.view.Status.AnalysisRuns = []model.AnalysisRunStatus{}
	}
	return r
}

// AddEvents appends events to the rollouts they name (unknown rollouts are
// ignored), as if they had happened earlier; each rollout's
// status.lastEventSeq follows. Seqs must increase per rollout.
func (f *Fake) AddEvents(events ...model.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range events {
		r, ok := f.rollouts[e.Rollout]
		if !ok {
			continue
		}
		r.events = append(r.events, clone(e))
		r.view.Status.LastEventSeq = max(r.view.Status.LastEventSeq, e.Seq)
	}
}

// AddHistory records ended revisions of a rollout, oldest first, for undo.
func (f *Fake) AddHistory(name string, revs ...Revision) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.rollouts[name]; ok {
		r.history = append(r.history, revs...)
	}
}

// FailWith makes every later call return err (nil restores normal answers).
func (f *Fake) FailWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// List returns every rollout ordered by name.
func (f *Fake) List(_ context.Context) ([]model.View, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := make([]model.View, 0, len(f.rollouts))
	for _, r := range f.rollouts {
		out = append(out, r.view)
	}
	slices.SortFunc(out, func(a, b model.View) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	return out, nil
}

// Get returns one rollout, or the bare model.ErrNotFound.
func (f *Fake) Get(_ context.Context, name string) (model.View, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return model.View{}, f.err
	}
	r, ok := f.rollouts[name]
	if !ok {
		return model.View{}, model.ErrNotFound
	}
	return r.view, nil
}

// AnalysisRuns returns the rollout's runs, newest first.
func (f *Fake) AnalysisRuns(_ context.Context, name string) ([]model.AnalysisRunStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	r, ok := f.rollouts[name]
	if !ok {
		return nil, model.ErrNotFound
	}
	runs := slices.Clone(r.view.Status.AnalysisRuns)
	slices.Reverse(runs) // status lists them in start order
	if runs == nil {
		runs = []model.AnalysisRunStatus{}
	}
	return runs, nil
}

// change runs cmd on the named rollout under the lock and then commits:
// it stamps the status, numbers the events cmd recorded, and sends them and
// the new view to the watchers. cmd must check everything that can fail
// before it changes anything.
func (f *Fake) change(name string, cmd func(r *rollout, now time.Time) error) (model.View, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return model.View{}, f.err
	}
	r, ok := f.rollouts[name]
	if !ok {
		return model.View{}, model.ErrNotFound
	}
	now := f.Now().UTC()
	if err := cmd(r, now); err != nil {
		r.pending = nil
		return model.View{}, err
	}
	r.commit(now)
	return r.view, nil
}

// commit publishes a change: events first, oldest first, then the view.
func (r *rollout) commit(now time.Time) {
	r.refresh()
	r.view.Status.UpdatedAt = now
	seq := r.view.Status.LastEventSeq
	for _, e := range r.pending {
		seq++
		e.Seq = seq
		r.events = append(r.events, e)
		r.notify(model.WatchUpdate{Event: &e})
	}
	r.pending = nil
	r.view.Status.LastEventSeq = seq
	v := r.view
	r.notify(model.WatchUpdate{View: &v})
}

// record queues an event of the command in progress.
func (r *rollout) record(now time.Time, typ, msg string, details map[string]any) {
	r.pending = append(r.pending, model.Event{
		Time:     now,
		Rollout:  r.view.Metadata.Name,
		Revision: r.view.Status.Revision,
		Type:     typ,
		Message:  msg,
		Details:  details,
	})
}

// refresh derives the phase, the pause reason and the versions of the
// status from the state, like the service does.
func (r *rollout) refresh() {
	st := &r.view.Status
	st.StableVersion = r.stable.Version
	st.CanaryVersion = ""
	st.StepCount = len(r.steps())
	st.Aborted = r.aborted
	switch {
	case r.canary == nil:
		st.Phase, st.PauseReason = model.PhaseHealthy, model.PauseNone
		return
	case r.aborted:
		st.Phase, st.PauseReason = model.PhaseDegraded, model.PauseNone
	case r.manual:
		st.Phase, st.PauseReason = model.PhasePaused, model.PauseManual
	case r.stepPause != model.PauseNone:
		st.Phase, st.PauseReason = model.PhasePaused, r.stepPause
	default:
		st.Phase, st.PauseReason = model.PhaseProgressing, model.PauseNone
	}
	st.CanaryVersion = r.canary.Version
}

// clone deep-copies a value through JSON, which is how every value of the
// Fake leaves it anyway, so that callers never share memory with it.
func clone[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("apitest: cannot copy %T: %v", v, err))
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("apitest: cannot copy %T: %v", v, err))
	}
	return out
}
