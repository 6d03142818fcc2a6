package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/prometheus/client_golang/prometheus"
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
	// CheckListen reports whether rollout name could listen on addr now
	// (nil when it already does).
	CheckListen(name, addr string) error
	// ListenError says why a served rollout has no listener, or nil.
	ListenError(name string) error
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
	// probeCollection holds the record written to check the store
	// recovered (probeStore).
	probeCollection = "store-probe"
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
	// Providers answer analysis measurements; Judges builds the judge of
	// a judge metric (nil: judge metrics end in Error).
	Providers Providers
	Judges    analysis.JudgeFactory
	// AllowAPICommands accepts AnalysisTemplates with command metrics
	// through the API (ApplyTemplate); without it only the -f files may
	// define them (see commands_gate.go).
	AllowAPICommands bool
	// ResolveArgSecret reads a secret argument (args[].valueFrom) when a
	// measurement runs; nil makes such measurements end in Error.
	ResolveArgSecret func(spec.ArgValueFrom) (string, error)
	// OnRouted is called after a follower's data plane took in a new state
	// (Follow), so the replica can report what it routes with at once.
	OnRouted func()
	// ReplicaRoutes reports what the other live replicas route a rollout
	// with; nil (one process) means there are none. A setWeight step
	// completes only once every one of them routes with the new weight.
	ReplicaRoutes func(rollout string) []ReplicaRoute
	// ReplicaID names this replica in the status's list of replicas.
	ReplicaID string
	// Degraded says why no controller advances rollouts right now (the
	// store is unreachable, no replica leads), or "" when one does; the
	// status shows it.
	Degraded func() string
}

// ReplicaRoute is what another replica's data plane routes a rollout with.
type ReplicaRoute struct {
	Replica string
	// Known is false when the replica does not serve the rollout (yet).
	Known        bool
	StateVersion uint64
	Weight       spec.Weight
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
	// templateSet is a read-only copy of the templates for Next, replaced
	// whenever a template changes.
	templateSet atomic.Pointer[map[string]spec.AnalysisTemplate]
	// refusedSet names the stored templates that may not run, with why
	// (refusedTemplate); they are not in templateSet.
	refusedSet atomic.Pointer[map[string]string]

	// runCtx is Run's context while it runs; measurements run on
	// goroutines it owns and waits for.
	runMu     sync.Mutex
	runCtx    context.Context
	measuring sync.WaitGroup
	pending   []pendingMeasurement

	measurements *prometheus.CounterVec

	// storeErr is the last error the store gave a write, nil once a write
	// succeeds again; /readyz reports it.
	storeErr atomic.Pointer[error]

	// follow is the state of a follower's re-reads (follow.go).
	follow followState
}

// resolveUnsaved settles an unsaved state (an abort in effect) after a
// conflict made the entry re-read the store. When the store holds exactly
// the state in effect, an earlier write that reported an error landed after
// all: its events are saved, nothing is pending. Otherwise the state in
// effect stays in effect (an abort is never undone by a stale copy) and is
// written, with its events, at the next commit.
func (c *Controller) resolveUnsaved(e *entry, inEffect State) {
	stored, _ := json.Marshal(e.st)
	mine, _ := json.Marshal(inEffect)
	if bytes.Equal(stored, mine) {
		e.dirty, e.unsaved, e.saveErr = false, nil, nil
		return
	}
	e.st = inEffect
}

// unavailableError is a store write that failed: its message is the real
// reason (the API passes it on, with 503), and it is model.ErrUnavailable.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() []error {
	return []error{e.err, model.ErrUnavailable}
}

// noteStore records the outcome of a store write.
func (c *Controller) noteStore(err error) {
	if err == nil {
		if c.storeErr.Load() != nil {
			c.storeErr.Store(nil)
		}
		return
	}
	c.storeErr.Store(&err)
}

// StoreError returns the error of the last store write when it failed, or
// nil: a store that cannot write (disk full, read-only) makes the process
// not ready, because no command can be kept.
func (c *Controller) StoreError() error {
	if p := c.storeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// saveRetry is how often a state in effect but unsaved is written again,
// and how often a store that failed a write is probed; listenRecheck is
// how often a rollout whose listener is down is looked at.
const (
	saveRetry     = 5 * time.Second
	listenRecheck = 2 * time.Second
)

// probeStore writes a small record while the last store write failed, so
// that /readyz recovers when the store does, even if no command or
// rollout writes in the meantime.
func (c *Controller) probeStore(ctx context.Context) {
	t := time.NewTicker(saveRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.probeStoreOnce(ctx)
	}
}

// probeStoreOnce tries one small write when the last one failed.
func (c *Controller) probeStoreOnce(ctx context.Context) {
	if c.storeErr.Load() == nil {
		return
	}
	rec, err := c.cfg.Store.Get(ctx, probeCollection, "write-check")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return
	}
	rec.Key, rec.Data = "write-check", []byte(c.cfg.Now().UTC().Format(time.RFC3339Nano))
	if _, err := c.cfg.Store.Put(ctx, probeCollection, rec); err == nil {
		c.noteStore(nil)
		c.log.Info("the store takes writes again")
	}
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
	// weightVer is the state version that set the weight routed now; with
	// several replicas, each must route with this version or a later one
	// before a setWeight step completes.
	weightVer uint64
	// routed is what the data plane routes with, for heartbeats read
	// without e.mu (Served); nil while not served.
	routed atomic.Pointer[ServedRoute]
	// What the data plane was last given.
	served     bool
	servedSpec spec.Rollout
	table      *route.Table
	tableKey   string
	// inflight are the measurements running now (not persisted: after a
	// restart a due measurement is simply taken again).
	inflight map[measureKey]bool
	// runSaved is when a measurement was last saved (see lazyRunSave).
	runSaved time.Time
	// unsaved holds the events of a state that is in effect (st, routed)
	// but could not be written because the store failed; saveErr is why.
	// Only abort takes effect unsaved (it is the emergency button); the
	// next commit writes these events first, and reconcile retries.
	dirty   bool
	unsaved []EventDraft
	saveErr error
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
		measurements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coalmine_analysis_measurements_total",
			Help: "Analysis measurements taken, by rollout, metric and verdict.",
		}, []string{"rollout", "metric", "verdict"}),
	}
}

// Run reconciles rollouts as they become due until ctx ends, and returns
// when every worker has stopped.
func (c *Controller) Run(ctx context.Context) {
	c.runMu.Lock()
	c.runCtx = ctx
	c.runMu.Unlock()
	defer func() {
		c.runMu.Lock()
		c.runCtx = nil
		c.runMu.Unlock()
		c.measuring.Wait()
	}()
	// Measurements queued before Run started (at Load) run now.
	c.runMu.Lock()
	queued := c.pending
	c.pending = nil
	c.runMu.Unlock()
	for _, p := range queued {
		c.startMeasurement(p.name, p.run, p.metric, p.q)
	}
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
	wg.Add(1)
	go func() { defer wg.Done(); c.probeStore(ctx) }()
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
	e, err := c.lock(name)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	now := c.cfg.Now()
	if e.dirty {
		// An abort is in effect but unsaved: save it before anything else
		// moves, so that nothing is decided on a state the store lacks.
		if err := c.commit(ctx, e, e.st, nil, nil); err != nil {
			if e.saveErr == nil || e.saveErr.Error() != err.Error() {
				c.log.Error("the state in effect is still not saved; retrying every "+saveRetry.String(), "rollout", name, "err", err)
			}
			e.saveErr = err
			// The data plane follows the state in effect even unsaved
			// (the abort may have failed to reach it the first time).
			if serr := c.sync(ctx, e); serr != nil {
				c.log.Error("apply the unsaved state to the data plane", "rollout", name, "err", serr)
			}
			c.queue.Add(name, now.Add(saveRetry))
			return nil
		}
	}
	if err := c.cfg.Router.ListenError(name); err != nil {
		if !e.rec.Rollout.Spec.TrafficRouting.Router.External() {
			// Nothing is served, so nothing may move: no step completes and
			// no deadline runs out on a rollout that takes no traffic. The
			// data plane retries binding; look again shortly.
			c.queue.Add(name, now.Add(listenRecheck))
			return nil
		}
		// A load balancer that does not route as said (unreachable,
		// refusing a reload) still carries traffic at what it held: the
		// analysis goes on and may abort, while no weight step completes
		// (observe reports it unsynced). Look again shortly.
		c.queue.Add(name, now.Add(listenRecheck))
	}
	next, fx := Next(e.st, &e.rec.Rollout.Spec, c.observe(e), now)
	if fx.Changed {
		if err := c.commit(ctx, e, next, fx.Events, nil); err != nil {
			return err
		}
	}
	if err := c.sync(ctx, e); err != nil {
		return err
	}
	c.scheduleMeasurements(e, now)
	switch {
	case !fx.WakeAt.IsZero():
		c.queue.Add(name, fx.WakeAt)
	case fx.Changed:
		// The state moved: look again at once (e.g. a weight just applied).
		c.queue.Add(name, now)
	}
	return nil
}

// observe reads what the data plane does for e: this replica's, and,
// with several replicas, every live one's (the weight is the smallest, and
// the table counts as applied only once each routes with the state that
// set the weight).
func (c *Controller) observe(e *entry) Observation {
	base := Observation{Rollout: e.rec.Rollout.Metadata.Name, Templates: c.templateMap(), RefusedTemplates: c.refusedTemplates()}
	if !e.served {
		return base
	}
	gen, w, avail, err := c.cfg.Router.Observed(e.rec.Rollout.Metadata.Name)
	if err != nil {
		return base
	}
	obs := Observation{Synced: e.table != nil && gen == e.table.Generation, Weight: w, CanaryAvailable: avail,
		Rollout: e.rec.Rollout.Metadata.Name, Templates: c.templateMap(), RefusedTemplates: c.refusedTemplates()}
	// With another load balancer there is one data plane, read back by the
	// leader: the replicas route nothing of it.
	if obs.Synced && c.cfg.ReplicaRoutes != nil && !e.rec.Rollout.Spec.TrafficRouting.Router.External() {
		for _, r := range c.cfg.ReplicaRoutes(obs.Rollout) {
			if !r.Known || r.StateVersion < e.weightVer {
				obs.Synced = false
				break
			}
			obs.Weight = min(obs.Weight, r.Weight)
		}
	}
	return obs
}

// commit persists a new state with its events (and, when given, a new
// spec record) in one atomic batch, then publishes them. Nothing reaches
// the data plane, the watchers or the notifier before this returns.
func (c *Controller) commit(ctx context.Context, e *entry, next State, drafts []EventDraft, rec *specRecord) error {
	if e.dirty {
		drafts = append(slices.Clone(e.unsaved), drafts...)
	}
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
			at := next.UpdatedAt
			if !d.Time.IsZero() {
				at = d.Time
			}
			events[i] = model.Event{Seq: e.lastSeq + uint64(i) + 1, Time: at.UTC(), Rollout: name, Revision: next.Revision, Type: d.Type, Message: d.Message, Details: d.Details}
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
		inEffect := e.st
		if rerr := c.read(ctx, name, e); rerr != nil {
			c.log.Error("re-read rollout after a conflict", "rollout", name, "err", rerr)
		}
		if e.dirty {
			c.resolveUnsaved(e, inEffect)
		}
		return &conflictError{msg: fmt.Sprintf("rollout %q was changed by another writer meanwhile; try again", name)}
	}
	if errors.Is(err, store.ErrFenced) {
		// Not a store failure: another replica leads now (or this one is
		// stepping down), and it has the rollout.
		return &unavailableError{fmt.Errorf("save rollout %q: %w; send the command again: any replica forwards it to the one that leads", name, err)}
	}
	if err != nil {
		c.noteStore(err)
		return &unavailableError{fmt.Errorf("save rollout %q: %w", name, err)}
	}
	c.noteStore(nil)
	if next.Weight != e.st.Weight || versionOf(next.Canary) != versionOf(e.st.Canary) || e.weightVer == 0 {
		e.weightVer = done.Records[0].Version
	}
	if e.dirty {
		c.log.Info("the state in effect is saved again", "rollout", name)
		e.dirty, e.unsaved, e.saveErr = false, nil, nil
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
	default:
		e.routed.Store(&ServedRoute{Rollout: name, Revision: e.st.Revision, StateVersion: e.stVer})
		return nil
	}
	e.routed.Store(&ServedRoute{Rollout: name, Revision: e.st.Revision, StateVersion: e.stVer})
	// The view published at commit time showed the data plane as it was
	// before this change (its endpoints, what it observed); watchers get
	// the view as it is now, or they would show stale endpoints and
	// weights until the next event.
	v := c.view(e)
	c.hub.publish(name, model.WatchUpdate{View: &v})
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

// templateMap returns the current templates (read-only).
func (c *Controller) templateMap() map[string]spec.AnalysisTemplate {
	if m := c.templateSet.Load(); m != nil {
		return *m
	}
	return nil
}

// refusedTemplates returns the stored templates that may not run, with
// why (read-only).
func (c *Controller) refusedTemplates() map[string]string {
	if m := c.refusedSet.Load(); m != nil {
		return *m
	}
	return nil
}

// refreshTemplates publishes a new read-only copy of the templates.
// Callers hold c.mu.
func (c *Controller) refreshTemplates() {
	m := make(map[string]spec.AnalysisTemplate, len(c.templates))
	refused := map[string]string{}
	for n, t := range c.templates {
		if why := c.refusedTemplate(t); why != "" {
			refused[n] = why
			continue
		}
		m[n] = t.Template
	}
	c.templateSet.Store(&m)
	c.refusedSet.Store(&refused)
}
