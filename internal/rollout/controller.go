package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// Router is the data plane as the rollout layer sees it (the built-in proxy
// today; HAProxy or a cloud load balancer later).
type Router interface {
	// Apply serves a rollout (or updates it) with a routing table.
	Apply(ctx context.Context, r *spec.Rollout, t *route.Table) error
	// SetTable swaps the routing table of a served rollout.
	SetTable(name string, t *route.Table) error
	// Observed reports the table generation and weight the data plane routes
	// with, and whether the canary has an endpoint that can take traffic.
	Observed(name string) (generation uint64, weight spec.Weight, canaryAvailable bool, err error)
	// Endpoints reports endpoint health.
	Endpoints(name string) ([]model.EndpointStatus, error)
	// Remove stops serving a rollout.
	Remove(ctx context.Context, name string) error
}

// Notifier delivers a rollout's events to its notification channels. It
// reads the events from the store itself; Wake only says there are new ones
// and must never block.
type Notifier interface {
	SetRollout(name string, notifications []spec.Notification)
	RemoveRollout(name string)
	Wake(name string)
	Status(name string) []model.ChannelStatus
}

// Checker validates a set of rollouts and templates as `coalmine lint`
// does, returning spec.FieldErrors (or another error) for the problems.
type Checker func(rollouts []spec.Rollout, templates []spec.AnalysisTemplate) error

// Store collections.
const (
	specCollection     = "rollouts"
	stateCollection    = "rollout-state"
	templateCollection = "analysis-templates"
)

// Sources of a stored spec.
const (
	sourceFile = "file"
	sourceAPI  = "api"
)

// specRecord is a stored rollout spec. A spec from a file remembers the
// digest of the file's version, so that a restart or SIGHUP with an
// unchanged file keeps what `apply`, `set canary` or `undo` changed since,
// while an edited file wins.
type specRecord struct {
	Rollout    spec.Rollout `json:"rollout"`
	Source     string       `json:"source"`
	FileDigest string       `json:"fileDigest,omitempty"`
}

type templateRecord struct {
	Template   spec.AnalysisTemplate `json:"template"`
	Source     string                `json:"source"`
	FileDigest string                `json:"fileDigest,omitempty"`
}

// Config wires a Controller.
type Config struct {
	Router Router
	Store  store.Store
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Notifier may be nil (no notifications).
	Notifier Notifier
	// Check validates applied objects; nil accepts what spec.Validate accepts.
	Check Checker
	// CheckSecrets checks that an applied rollout's secret references
	// resolve; nil skips the check.
	CheckSecrets func(spec.Rollout) error
	// OnRevision is called when a rollout starts (or resumes) a revision,
	// after the data plane serves it, so telemetry can open a fresh
	// since-revision window and forget versions no longer routed.
	OnRevision func(rollout string, revision int64, stableVersion, canaryVersion string)
	// Workers is how many rollouts reconcile at once; 0 means 4.
	Workers int
}

// Controller runs rollouts: it keeps each one's spec and persisted State,
// runs Next when something is due, carries out commands through the pure
// functions of this package, and keeps the data plane in line with the
// state. It is the service layer (model.Commands) of the API, the CLI and
// the dashboard.
//
// Concurrency: each rollout has a mutex held for the whole of a reconcile
// or a command, so they are serialized per rollout; different rollouts
// proceed in parallel.
type Controller struct {
	cfg        Config
	log        *slog.Logger
	generation atomic.Uint64
	queue      *delayQueue
	hub        *hub
	health     chan healthChange

	mu        sync.RWMutex
	entries   map[string]*entry
	templates map[string]templateRecord
}

// entry is one rollout.
type entry struct {
	mu      sync.Mutex
	removed bool
	rec     specRecord
	specVer uint64
	st      State
	stVer   uint64
	lastSeq uint64
	// trimmedTo is the newest event seq trimmed by this process.
	trimmedTo uint64
	// What the data plane was last given.
	served     bool
	servedSpec spec.Rollout
	table      *route.Table
	tableKey   string
}

var _ model.Commands = (*Controller)(nil)

// New creates a Controller with no rollouts; Load adds them and Run starts
// reconciling.
func New(cfg Config) *Controller {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	return &Controller{
		cfg:       cfg,
		log:       cfg.Logger,
		queue:     newDelayQueue(cfg.Now),
		hub:       newHub(),
		health:    make(chan healthChange, 1024),
		entries:   map[string]*entry{},
		templates: map[string]templateRecord{},
	}
}

// Run reconciles rollouts as they become due until ctx ends, and returns
// when every worker has stopped.
func (c *Controller) Run(ctx context.Context) {
	work := make(chan string)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.queue.Run(ctx, work) }()
	for range c.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case name := <-work:
					c.reconcileSafely(ctx, name)
					c.queue.Done(name)
				}
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); c.recordHealth(ctx) }()
	wg.Wait()
}

func (c *Controller) reconcileSafely(ctx context.Context, name string) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("rollout reconcile panicked; retrying in 5s", "rollout", name, "panic", v)
			c.queue.Add(name, c.cfg.Now().Add(5*time.Second))
		}
	}()
	if err := c.Reconcile(ctx, name); err != nil && !errors.Is(err, model.ErrNotFound) {
		c.log.Error("rollout reconcile failed; retrying in 1s", "rollout", name, "err", err)
		c.queue.Add(name, c.cfg.Now().Add(time.Second))
	}
}

// Reconcile runs Next once for a rollout and carries out its effects:
// persist the state and its events, then tell the data plane, then
// schedule the next run. Tests call it directly with a fake clock.
func (c *Controller) Reconcile(ctx context.Context, name string) error {
	e, err := c.entry(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return nil
	}
	now := c.cfg.Now()
	next, fx := Next(e.st, &e.rec.Rollout.Spec, c.observe(e), now)
	if fx.Changed {
		if err := c.commit(ctx, e, next, fx.Events, nil); err != nil {
			return err
		}
	}
	if err := c.sync(ctx, e); err != nil {
		return err
	}
	switch {
	case !fx.WakeAt.IsZero():
		c.queue.Add(name, fx.WakeAt)
	case fx.Changed:
		// The state moved: look again at once (e.g. a weight just applied).
		c.queue.Add(name, now)
	}
	return nil
}

// observe reads what the data plane does for e.
func (c *Controller) observe(e *entry) Observation {
	if !e.served {
		return Observation{}
	}
	gen, w, avail, err := c.cfg.Router.Observed(e.rec.Rollout.Metadata.Name)
	if err != nil {
		return Observation{}
	}
	return Observation{Synced: e.table != nil && gen == e.table.Generation, Weight: w, CanaryAvailable: avail}
}

// commit persists a new state with its events (and, when given, a new
// spec record) in one atomic batch, then publishes them. Nothing reaches
// the data plane, the watchers or the notifier before this returns.
func (c *Controller) commit(ctx context.Context, e *entry, next State, drafts []EventDraft, rec *specRecord) error {
	name := e.rec.Rollout.Metadata.Name
	if rec != nil {
		name = rec.Rollout.Metadata.Name
	}
	stData, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encode state of rollout %q: %w", name, err)
	}
	b := store.Batch{Puts: []store.Put{{Collection: stateCollection, Record: store.Record{Key: name, Version: e.stVer, Data: stData}}}}
	if rec != nil {
		data, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode spec of rollout %q: %w", name, err)
		}
		b.Puts = append(b.Puts, store.Put{Collection: specCollection, Record: store.Record{Key: name, Version: e.specVer, Data: data}})
	}
	events := make([]model.Event, len(drafts))
	if len(drafts) > 0 {
		data := make([][]byte, len(drafts))
		for i, d := range drafts {
			events[i] = model.Event{Seq: e.lastSeq + uint64(i) + 1, Time: next.UpdatedAt.UTC(), Rollout: name, Revision: next.Revision, Type: d.Type, Message: d.Message, Details: d.Details}
			if events[i].Time.IsZero() {
				events[i].Time = c.cfg.Now().UTC()
			}
			if data[i], err = json.Marshal(events[i]); err != nil {
				return fmt.Errorf("encode event of rollout %q: %w", name, err)
			}
		}
		b.Appends = []store.Append{{Stream: model.EventStream(name), Data: data}}
	}
	done, err := c.cfg.Store.Commit(ctx, b)
	if errors.Is(err, store.ErrConflict) {
		c.log.Warn("rollout changed by another writer; reading it again", "rollout", name, "err", err)
		if rerr := c.read(ctx, name, e); rerr != nil {
			c.log.Error("re-read rollout after a conflict", "rollout", name, "err", rerr)
		}
		return &conflictError{msg: fmt.Sprintf("rollout %q was changed by another writer meanwhile; try again", name)}
	}
	if err != nil {
		return fmt.Errorf("save rollout %q: %w", name, err)
	}
	e.st, e.stVer = next, done.Records[0].Version
	if rec != nil {
		e.rec, e.specVer = *rec, done.Records[1].Version
	}
	if len(drafts) > 0 {
		got := done.Events[0]
		if got[0].Seq != events[0].Seq {
			// Only this controller appends to the stream, under e.mu, so
			// this means the store was written by someone else.
			c.log.Error("event sequence numbers differ from the expected ones", "rollout", name, "expected", events[0].Seq, "stored", got[0].Seq)
		}
		e.lastSeq = got[len(got)-1].Seq
		c.trimEvents(ctx, name, e)
		for i := range events {
			ev := events[i]
			ev.Seq = got[i].Seq
			c.log.Info(ev.Message, "rollout", name, "revision", ev.Revision, "event", ev.Type, "seq", ev.Seq)
			c.hub.publish(name, model.WatchUpdate{Event: &ev})
		}
		if c.cfg.Notifier != nil {
			c.cfg.Notifier.Wake(name)
		}
	}
	v := c.view(e)
	c.hub.publish(name, model.WatchUpdate{View: &v})
	return nil
}

// EventRetention is how many events each rollout keeps; older ones are
// trimmed in chunks of eventTrimChunk so trimming is rare.
const (
	EventRetention = 10000
	eventTrimChunk = 1000
)

func (c *Controller) trimEvents(ctx context.Context, name string, e *entry) {
	if e.lastSeq <= EventRetention || e.lastSeq-EventRetention < e.trimmedTo+eventTrimChunk {
		return
	}
	upTo := e.lastSeq - EventRetention
	if err := c.cfg.Store.Trim(ctx, model.EventStream(name), upTo); err != nil {
		c.log.Warn("trim old events", "rollout", name, "err", err)
		return
	}
	e.trimmedTo = upTo
}

// routedSpec is the rollout as the data plane must serve it: the versions
// of the state, not of the spec file (after a completion the spec's canary
// is the state's stable).
func routedSpec(e *entry) spec.Rollout {
	r := e.rec.Rollout
	r.Spec.Stable = e.st.Stable
	r.Spec.Canary = nil
	if e.st.Canary != nil {
		c := *e.st.Canary
		r.Spec.Canary = &c
	}
	return r
}

// tableKey identifies what a routing table is compiled from, apart from
// the weight, which has its own fast path.
func tableKey(e *entry, r *spec.Rollout) string {
	b, _ := json.Marshal(struct {
		Rev    int64
		A      spec.Assignment
		H, SH  []spec.HeaderRoute
		M      []spec.MirrorRoute
		Canary bool
	}{e.st.Revision, r.Spec.TrafficRouting.Assignment, r.Spec.TrafficRouting.HeaderRoutes, e.st.HeaderRoutes, e.st.MirrorRoutes, e.st.Canary != nil})
	return string(b)
}

// sync makes the data plane route as the state says. A weight change is
// one atomic table swap; new versions or settings re-apply the rollout.
func (c *Controller) sync(ctx context.Context, e *entry) error {
	r := routedSpec(e)
	name := r.Metadata.Name
	key := tableKey(e, &r)
	weight := e.st.Weight
	if e.st.Canary == nil {
		weight = 0
	}
	switch {
	case !e.served || !reflect.DeepEqual(r, e.servedSpec) || key != e.tableKey:
		table, err := route.Compile(route.Config{
			Rollout:      name,
			Revision:     e.st.Revision,
			Generation:   c.generation.Add(1),
			Weight:       weight,
			Assignment:   r.Spec.TrafficRouting.Assignment,
			HeaderRoutes: append(slices.Clone(r.Spec.TrafficRouting.HeaderRoutes), e.st.HeaderRoutes...),
			MirrorRoutes: e.st.MirrorRoutes,
		})
		if err != nil {
			return fmt.Errorf("compile routing table of rollout %q: %w", name, err)
		}
		if err := c.cfg.Router.Apply(ctx, &r, table); err != nil {
			return fmt.Errorf("serve rollout %q: %w", name, err)
		}
		// Telemetry starts afresh when the revision or the routed versions
		// change (a completion keeps the revision but drops the old stable).
		changed := !e.served || e.table == nil || e.table.Revision != e.st.Revision ||
			e.servedSpec.Spec.Stable.Version != r.Spec.Stable.Version || versionOf(e.servedSpec.Spec.Canary) != versionOf(r.Spec.Canary)
		e.served, e.servedSpec, e.table, e.tableKey = true, r, table, key
		if c.cfg.OnRevision != nil && changed {
			c.cfg.OnRevision(name, e.st.Revision, e.st.Stable.Version, versionOf(e.st.Canary))
		}
	case weight != e.table.Weight:
		table := e.table.WithWeight(weight, c.generation.Add(1))
		if err := c.cfg.Router.SetTable(name, table); err != nil {
			return fmt.Errorf("apply weight of rollout %q: %w", name, err)
		}
		e.table = table
	}
	return nil
}

func (c *Controller) entry(name string) (*entry, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.entries[name]
	if e == nil {
		return nil, fmt.Errorf("rollout %q %w", name, model.ErrNotFound)
	}
	return e, nil
}

// command runs a pure command function on a rollout and carries out the
// result like a reconcile does.
func (c *Controller) command(ctx context.Context, name string, fn func(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error)) (model.View, error) {
	e, err := c.entry(name)
	if err != nil {
		return model.View{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return model.View{}, fmt.Errorf("rollout %q %w", name, model.ErrNotFound)
	}
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

// Abort implements model.Commands.
func (c *Controller) Abort(ctx context.Context, name string) (model.View, error) {
	return c.command(ctx, name, func(st State, _ *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
		return Abort(name, st, now)
	})
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
		window = *r.Spec.RollbackWindow
	}
	target, fast, err := UndoTarget(name, st, toRevision, window)
	if err != nil {
		return model.View{}, err
	}
	r.Spec.Stable = st.Stable
	r.Spec.Canary = &target
	return c.applyRollout(ctx, r, func(s State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
		if !fast || s.Canary == nil {
			return s, nil, nil
		}
		var e emitter
		e.emit(EventPromoted, fmt.Sprintf("fast rollback to %s: it was stable within the last %d revision(s), so the steps are skipped", target.Version, window), map[string]any{"full": true, "undo": true})
		complete(&s, now, "fast rollback", e.emit)
		return s, e.events, nil
	})
}

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
	v, err := c.upsert(ctx, specRecord{Rollout: r, Source: sourceAPI}, then)
	if err != nil {
		return model.View{}, err
	}
	return v, nil
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
	c.mu.Lock()
	e := c.entries[name]
	fresh := e == nil
	if fresh {
		e = &entry{}
		c.entries[name] = e
	}
	c.mu.Unlock()

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
			var rec specRecord
			if err := json.Unmarshal(raw.Data, &rec); err != nil {
				return fmt.Errorf("decode stored rollout %q: %w", raw.Key, err)
			}
			if inFiles[raw.Key] {
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

// Get implements model.Commands.
func (c *Controller) Get(_ context.Context, name string) (model.View, error) {
	e, err := c.entry(name)
	if err != nil {
		return model.View{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return model.View{}, fmt.Errorf("rollout %q %w", name, model.ErrNotFound)
	}
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
	r := e.rec.Rollout
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
		AnalysisRuns:  []model.AnalysisRunStatus{},
		Aborted:       st.Aborted && st.Canary != nil,
		LastEventSeq:  e.lastSeq,
		UpdatedAt:     st.UpdatedAt.UTC(),
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
			if avail {
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
	return model.View{APIVersion: r.APIVersion, Kind: r.Kind, Metadata: r.Metadata, Spec: r.Spec, Status: status}
}

// AnalysisRuns implements model.Commands; analysis arrives with issue 4.
func (c *Controller) AnalysisRuns(_ context.Context, name string) ([]model.AnalysisRunStatus, error) {
	if _, err := c.entry(name); err != nil {
		return nil, err
	}
	return []model.AnalysisRunStatus{}, nil
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
