package apitest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// WatchBuffer is how many live updates a watcher may fall behind by before
// the Fake drops it (its channel closes), as the service does.
const WatchBuffer = 64

// watcher is one Watch subscription. live is written under Fake.mu and
// closed, under Fake.mu, when the watcher is dropped or unsubscribes.
type watcher struct {
	live chan model.WatchUpdate
}

// notify sends u to every watcher without blocking; a watcher whose buffer
// is full is dropped. Callers hold Fake.mu.
func (r *rollout) notify(u model.WatchUpdate) {
	for w := range r.watchers {
		select {
		case w.live <- u:
		default:
			delete(r.watchers, w)
			close(w.live)
		}
	}
}

// Events returns up to limit events with Seq > after, oldest first; a
// limit of 0 or less means all of them.
func (f *Fake) Events(_ context.Context, name string, after uint64, limit int) ([]model.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	r, ok := f.rollouts[name]
	if !ok {
		return nil, model.ErrNotFound
	}
	out := []model.Event{}
	for _, e := range r.events {
		if e.Seq > after && (limit <= 0 || len(out) < limit) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Watch streams the rollout's current view, its events after after, and
// then every change, until ctx ends; the channel is then closed. A watcher
// more than WatchBuffer updates behind is dropped (the channel closes
// early). Each stream runs one goroutine, which ends with the stream.
func (f *Fake) Watch(ctx context.Context, name string, after uint64) (<-chan model.WatchUpdate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	r, ok := f.rollouts[name]
	if !ok {
		return nil, model.ErrNotFound
	}
	v := r.view
	initial := []model.WatchUpdate{{View: &v}}
	for _, e := range r.events {
		if e.Seq > after {
			initial = append(initial, model.WatchUpdate{Event: &e})
		}
	}
	w := &watcher{live: make(chan model.WatchUpdate, WatchBuffer)}
	r.watchers[w] = struct{}{}
	out := make(chan model.WatchUpdate)
	f.watching.Add(1)
	go func() {
		defer f.watching.Done()
		defer close(out)
		defer f.unwatch(r, w)
		for _, u := range initial {
			select {
			case out <- u:
			case <-ctx.Done():
				return
			}
		}
		for {
			select {
			case u, ok := <-w.live:
				if !ok {
					return
				}
				select {
				case out <- u:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (f *Fake) unwatch(r *rollout, w *watcher) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := r.watchers[w]; ok {
		delete(r.watchers, w)
		close(w.live)
	}
}

// Watchers returns how many Watch streams of the rollout are open, so tests
// can check that a stream ended when its client went away.
func (f *Fake) Watchers(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.rollouts[name]; ok {
		return len(r.watchers)
	}
	return 0
}

// Wait blocks until every Watch goroutine has ended; use it after the
// contexts of all watches are done.
func (f *Fake) Wait() { f.watching.Wait() }

// ListTemplates returns every analysis template ordered by name.
func (f *Fake) ListTemplates(_ context.Context) ([]spec.AnalysisTemplate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := make([]spec.AnalysisTemplate, 0, len(f.templates))
	for _, t := range f.templates {
		out = append(out, clone(t))
	}
	slices.SortFunc(out, func(a, b spec.AnalysisTemplate) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	return out, nil
}

// GetTemplate returns one template, or the bare model.ErrNotFound.
func (f *Fake) GetTemplate(_ context.Context, name string) (spec.AnalysisTemplate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return spec.AnalysisTemplate{}, f.err
	}
	t, ok := f.templates[name]
	if !ok {
		return spec.AnalysisTemplate{}, model.ErrNotFound
	}
	return clone(t), nil
}

// ApplyTemplate fills defaults, validates and stores a template.
func (f *Fake) ApplyTemplate(_ context.Context, t spec.AnalysisTemplate) (spec.AnalysisTemplate, error) {
	t = clone(t)
	t.SetDefaults()
	if errs := t.Validate(); len(errs) > 0 {
		return spec.AnalysisTemplate{}, errs
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return spec.AnalysisTemplate{}, f.err
	}
	f.templates[t.Metadata.Name] = t
	return clone(t), nil
}

// DeleteTemplate removes a template; one a rollout still uses is a
// conflict that names the rollouts.
func (f *Fake) DeleteTemplate(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if _, ok := f.templates[name]; !ok {
		return model.ErrNotFound
	}
	var users []string
	for rn, r := range f.rollouts {
		if uses(r.view.Spec, name) {
			users = append(users, fmt.Sprintf("%q", rn))
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return fmt.Errorf("analysis template %q is still used by rollout %s: remove it from their strategy first: %w",
			name, strings.Join(users, ", "), model.ErrConflict)
	}
	delete(f.templates, name)
	return nil
}

func uses(s spec.RolloutSpec, template string) bool {
	is := func(t spec.TemplateRef) bool { return t.TemplateName == template }
	if a := s.Strategy.Canary.Analysis; a != nil && slices.ContainsFunc(a.Templates, is) {
		return true
	}
	for _, st := range s.Strategy.Canary.Steps {
		if st.Analysis != nil && slices.ContainsFunc(st.Analysis.Templates, is) {
			return true
		}
	}
	return false
}
