package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// Apply implements model.Commands.
func (c *Controller) Apply(ctx context.Context, r spec.Rollout) (model.View, error) {
	return c.applyRollout(ctx, r, nil)
}

// applyRollout validates r against every other rollout and template, then
// stores it as an API-applied spec and plans the state; then (optional)
// runs on the result in the same commit.
func (c *Controller) applyRollout(ctx context.Context, r spec.Rollout, then func(State, *spec.RolloutSpec, time.Time) (State, []EventDraft, error)) (model.View, error) {
	if r.APIVersion == "" {
		r.APIVersion = spec.APIVersion
	}
	if r.Kind == "" {
		r.Kind = spec.KindRollout
	}
	if err := c.check(r); err != nil {
		return model.View{}, err
	}
	if c.cfg.CheckSecrets != nil {
		if err := c.cfg.CheckSecrets(r); err != nil {
			return model.View{}, err
		}
	}
	// A listen address this machine cannot bind would be saved and then
	// fail every start: refuse it now, saving nothing. Only a new or
	// changed address is checked: an unchanged one that is busy for a
	// moment must not block undo or set canary.
	if c.listenChanged(r) {
		if err := c.cfg.Router.CheckListen(r.Metadata.Name, r.Spec.Listen); err != nil {
			return model.View{}, spec.FieldErrors{{Path: "spec.listen", Msg: err.Error() + "; choose an address and port this machine can listen on"}}
		}
	}
	v, err := c.upsert(ctx, specRecord{Rollout: r, Source: sourceAPI}, then)
	if err != nil {
		return model.View{}, err
	}
	return v, nil
}

// listenChanged reports whether r is a new rollout or changes its listen
// address.
func (c *Controller) listenChanged(r spec.Rollout) bool {
	e, err := c.entry(r.Metadata.Name)
	if err != nil {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.removed || e.rec.Rollout.Spec.Listen != r.Spec.Listen
}

// check validates r as part of the whole configuration.
func (c *Controller) check(r spec.Rollout) error {
	r.SetDefaults()
	if fes := r.Validate(); len(fes) > 0 {
		return fes
	}
	if c.cfg.Check == nil {
		return nil
	}
	rollouts, templates := c.snapshot("")
	rollouts = slices.DeleteFunc(rollouts, func(x spec.Rollout) bool { return x.Metadata.Name == r.Metadata.Name })
	return c.cfg.Check(append(rollouts, r), templates)
}

// upsert stores a rollout's spec, plans its state, serves it and schedules
// it. then, when not nil, runs on the planned state in the same commit.
func (c *Controller) upsert(ctx context.Context, rec specRecord, then func(State, *spec.RolloutSpec, time.Time) (State, []EventDraft, error)) (model.View, error) {
	rec.Rollout.SetDefaults()
	name := rec.Rollout.Metadata.Name
	e, fresh := c.entryOrNew(name)

	e.mu.Lock()
	defer e.mu.Unlock()
	if fresh || e.removed {
		e.removed = false
		if err := c.read(ctx, name, e); err != nil {
			c.dropIfEmpty(name, e)
			return model.View{}, err
		}
	}
	if rec.Source == sourceAPI && rec.FileDigest == "" {
		// Keep the file's digest: an unchanged file must not undo this
		// change at the next restart, an edited one must win.
		rec.FileDigest = e.rec.FileDigest
	}
	now := c.cfg.Now()
	next, events := Plan(e.st, &rec.Rollout.Spec, now)
	if then != nil {
		var more []EventDraft
		var err error
		if next, more, err = then(next, &rec.Rollout.Spec, now); err != nil {
			return model.View{}, err
		}
		events = append(events, more...)
	}
	if c.cfg.Notifier != nil {
		c.cfg.Notifier.SetRollout(name, rec.Rollout.Spec.Notifications)
	}
	if err := c.commit(ctx, e, next, events, &rec); err != nil {
		c.dropIfEmpty(name, e)
		return model.View{}, err
	}
	if err := c.sync(ctx, e); err != nil {
		return model.View{}, err
	}
	c.queue.Add(name, now)
	return c.view(e), nil
}

// entryOrNew returns the rollout's entry, adding an empty one (fresh)
// when there is none; the caller reads or writes its state under e.mu.
func (c *Controller) entryOrNew(name string) (e *entry, fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e = c.entries[name]; e == nil {
		e, fresh = &entry{}, true
		c.entries[name] = e
	}
	return e, fresh
}

// dropIfEmpty forgets an entry that never got a state. Callers hold e.mu.
func (c *Controller) dropIfEmpty(name string, e *entry) {
	if e.stVer != 0 {
		return
	}
	e.removed = true
	c.mu.Lock()
	if c.entries[name] == e {
		delete(c.entries, name)
	}
	c.mu.Unlock()
}

// read loads a rollout's stored spec record version, state and last event
// sequence number into e.
func (c *Controller) read(ctx context.Context, name string, e *entry) error {
	e.st, e.stVer, e.specVer, e.lastSeq = State{}, 0, 0, 0
	rec, err := c.cfg.Store.Get(ctx, stateCollection, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read state of rollout %q: %w", name, err)
	default:
		if err := json.Unmarshal(rec.Data, &e.st); err != nil {
			return fmt.Errorf("decode state of rollout %q: %w", name, err)
		}
		e.stVer = rec.Version
	}
	srec, err := c.cfg.Store.Get(ctx, specCollection, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read spec of rollout %q: %w", name, err)
	default:
		e.specVer = srec.Version
	}
	if e.lastSeq, err = c.cfg.Store.LastSeq(ctx, model.EventStream(name)); err != nil {
		return err
	}
	return nil
}

// Load serves the rollouts and templates of the configuration files, at
// start-up and on SIGHUP. A file's rollout replaces the stored spec only
// when the file changed since it was last loaded, so specs changed through
// the API survive restarts with unchanged files. At start-up (initial)
// rollouts applied through the API are loaded from the store too; on
// reload, file rollouts no longer in the files are removed.
func (c *Controller) Load(ctx context.Context, rollouts []spec.Rollout, templates []spec.AnalysisTemplate, initial bool) error {
	if err := c.loadTemplates(ctx, templates, initial); err != nil {
		return err
	}
	inFiles := map[string]bool{}
	for _, r := range rollouts {
		inFiles[r.Metadata.Name] = true
		digest := digestOf(r)
		rec := specRecord{Rollout: r, Source: sourceFile, FileDigest: digest}
		stored, err := c.storedSpec(ctx, r.Metadata.Name)
		if err != nil {
			return err
		}
		if stored != nil && stored.FileDigest == digest {
			rec = *stored // unchanged file: keep what the API changed since
		}
		if _, err := c.upsert(ctx, rec, nil); err != nil {
			return err
		}
	}
	if initial {
		recs, err := c.cfg.Store.List(ctx, specCollection)
		if err != nil {
			return fmt.Errorf("list stored rollouts: %w", err)
		}
		for _, raw := range recs {
			if inFiles[raw.Key] {
				continue
			}
			var rec specRecord
			if err := json.Unmarshal(raw.Data, &rec); err != nil {
				// One damaged record must not keep every other rollout
				// from being served (nor, with replicas, every replica
				// from taking over): it is left as it is, and said.
				c.log.Error("a stored rollout cannot be read and is not served; apply it again (coalmine apply) to replace it", "rollout", raw.Key, "err", err)
				continue
			}
			if rec.FileDigest != "" {
				// It came from a file that no longer has it.
				if err := c.remove(ctx, raw.Key); err != nil {
					return err
				}
				continue
			}
			if _, err := c.upsert(ctx, rec, nil); err != nil {
				return err
			}
		}
		return nil
	}
	c.mu.RLock()
	var gone []string
	for name, e := range c.entries {
		e.mu.Lock()
		if !inFiles[name] && e.rec.FileDigest != "" {
			gone = append(gone, name)
		}
		e.mu.Unlock()
	}
	c.mu.RUnlock()
	for _, name := range gone {
		if err := c.remove(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (c *Controller) storedSpec(ctx context.Context, name string) (*specRecord, error) {
	raw, err := c.cfg.Store.Get(ctx, specCollection, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read spec of rollout %q: %w", name, err)
	}
	var rec specRecord
	if err := json.Unmarshal(raw.Data, &rec); err != nil {
		return nil, fmt.Errorf("decode spec of rollout %q: %w", name, err)
	}
	return &rec, nil
}

// remove stops serving a rollout and deletes its spec, state and events.
func (c *Controller) remove(ctx context.Context, name string) error {
	c.mu.Lock()
	e := c.entries[name]
	delete(c.entries, name)
	c.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.removed = true
		e.routed.Store(nil)
		if e.served {
			if err := c.cfg.Router.Remove(ctx, name); err != nil {
				c.log.Warn("stop serving removed rollout", "rollout", name, "err", err)
			}
		}
	}
	c.queue.Forget(name)
	if c.cfg.Notifier != nil {
		c.cfg.Notifier.RemoveRollout(name)
	}
	if _, err := c.cfg.Store.Commit(ctx, store.Batch{Deletes: []store.Delete{{Collection: specCollection, Key: name}, {Collection: stateCollection, Key: name}}}); err != nil {
		return fmt.Errorf("remove rollout %q: %w", name, err)
	}
	if err := c.cfg.Store.DeleteStream(ctx, model.EventStream(name)); err != nil {
		return fmt.Errorf("remove events of rollout %q: %w", name, err)
	}
	c.log.Info("rollout removed: it is no longer in the configuration files", "rollout", name)
	c.hub.closeAll(name)
	return nil
}

func digestOf(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
