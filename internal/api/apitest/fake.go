// Package apitest provides an in-memory model.Commands and a few fixed
// rollouts, for tests of the API, the client and the CLI that want a real
// HTTP round trip without a controller behind it.
package apitest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Fake is an in-memory model.Commands. It is safe for concurrent use.
type Fake struct {
	// Now stamps status.updatedAt on changes. Required.
	Now func() time.Time

	mu    sync.Mutex
	views map[string]model.View
	err   error
}

var _ model.Commands = (*Fake)(nil)

// NewFake returns a Fake holding views, stamping changes with now.
func NewFake(now func() time.Time, views ...model.View) *Fake {
	f := &Fake{Now: now, views: map[string]model.View{}}
	for _, v := range views {
		f.views[v.Metadata.Name] = v
	}
	return f
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
	out := make([]model.View, 0, len(f.views))
	for _, v := range f.views {
		out = append(out, v)
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
	v, ok := f.views[name]
	if !ok {
		return model.View{}, model.ErrNotFound
	}
	return v, nil
}

// SetWeight applies the weight at once (applied and observed) and pauses
// the rollout with reason Manual, as SPEC §4 says `set weight` does. A
// rollout without a canary answers model.ErrConflict.
func (f *Fake) SetWeight(_ context.Context, name string, w spec.Weight) (model.View, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return model.View{}, f.err
	}
	v, ok := f.views[name]
	if !ok {
		return model.View{}, model.ErrNotFound
	}
	if v.Status.CanaryVersion == "" {
		return model.View{}, fmt.Errorf("rollout %q has no canary, so there is no weight to set; add spec.canary first: %w", name, model.ErrConflict)
	}
	v.Status.Weight = w.Percent()
	v.Status.ObservedWeight = w.Percent()
	v.Status.Phase = model.PhasePaused
	v.Status.PauseReason = model.PauseManual
	v.Status.Message = "canary weight set by hand to " + w.String() + "%"
	v.Status.UpdatedAt = f.Now().UTC()
	f.views[name] = v
	return v, nil
}
