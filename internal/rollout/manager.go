package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/coalmine-dev/coalmine/internal/model"
	"sort"
	"sync"
	"sync/atomic"
	"time"

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
}

// Store is the persistence the rollout layer needs.
type Store interface {
	Get(ctx context.Context, collection, key string) (store.Record, error)
	Put(ctx context.Context, collection string, r store.Record) (store.Record, error)
}

const statusCollection = "rollout-status"

// persisted is the part of a rollout's status that must survive restarts.
type persisted struct {
	Revision      int64             `json:"revision"`
	StableVersion string            `json:"stableVersion"`
	CanaryVersion string            `json:"canaryVersion,omitempty"`
	Weight        spec.Weight       `json:"weightBasisPoints"`
	StepIndex     int               `json:"stepIndex"`
	PauseReason   model.PauseReason `json:"pauseReason,omitempty"`
	Message       string            `json:"message,omitempty"`
	UpdatedAt     time.Time         `json:"updatedAt"`
}

// ManagerConfig wires a Manager.
type ManagerConfig struct {
	Router Router
	Store  Store
	Now    func() time.Time
	// OnRevision is called when a rollout starts (or resumes) a revision,
	// after the data plane serves it, so telemetry can open a fresh
	// since-revision window and forget versions no longer routed.
	OnRevision func(rollout string, revision int64, stableVersion, canaryVersion string)
}

// Manager holds every rollout's spec and status and carries out commands.
// Until the step controller lands it applies weights only by hand: a
// rollout's canary weight stays 0 until `set weight`.
type Manager struct {
	cfg        ManagerConfig
	generation atomic.Uint64

	mu      sync.RWMutex
	entries map[string]*entry
}

// entry is one rollout; mu serializes commands on it.
type entry struct {
	mu      sync.Mutex
	rollout spec.Rollout
	table   *route.Table
	state   persisted
	version uint64 // store record version, for compare-and-swap
}

var _ model.Commands = (*Manager)(nil)

// NewManager creates a Manager with no rollouts.
func NewManager(cfg ManagerConfig) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg, entries: map[string]*entry{}}
}

// Load serves rollouts from configuration, resuming their persisted state.
// A rollout whose stable or canary version differs from the stored one
// starts a new revision at weight 0.
func (m *Manager) Load(ctx context.Context, rollouts []spec.Rollout) error {
	for i := range rollouts {
		if err := m.load(ctx, rollouts[i]); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) load(ctx context.Context, r spec.Rollout) error {
	name := r.Metadata.Name
	m.mu.Lock()
	e := m.entries[name]
	if e == nil {
		e = &entry{}
		m.entries[name] = e
	}
	m.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()

	st, version, err := m.read(ctx, name)
	if err != nil {
		return err
	}
	canary := canaryVersion(r.Spec)
	newRevision := version == 0 || st.StableVersion != r.Spec.Stable.Version || st.CanaryVersion != canary
	if newRevision {
		st = persisted{Revision: st.Revision + 1, StableVersion: r.Spec.Stable.Version, CanaryVersion: canary, UpdatedAt: m.cfg.Now()}
		if canary != "" {
			st.PauseReason = model.PauseManual
			st.Message = "canary at 0%: raise its weight with `coalmine set weight " + name + " PERCENT`"
		}
		if version, err = m.write(ctx, name, st, version); err != nil {
			return err
		}
	}
	table, err := route.Compile(route.Config{
		Rollout:      name,
		Revision:     st.Revision,
		Generation:   m.generation.Add(1),
		Weight:       st.Weight,
		Assignment:   r.Spec.TrafficRouting.Assignment,
		HeaderRoutes: r.Spec.TrafficRouting.HeaderRoutes,
	})
	if err != nil {
		return fmt.Errorf("compile routing table of rollout %q: %w", name, err)
	}
	if err := m.cfg.Router.Apply(ctx, &r, table); err != nil {
		return err
	}
	if m.cfg.OnRevision != nil && (newRevision || e.table == nil) {
		m.cfg.OnRevision(name, st.Revision, st.StableVersion, st.CanaryVersion)
	}
	e.rollout, e.table, e.state, e.version = r, table, st, version
	return nil
}

func canaryVersion(s spec.RolloutSpec) string {
	if s.Canary == nil || len(s.Canary.Endpoints) == 0 || s.Canary.Version == s.Stable.Version {
		return ""
	}
	return s.Canary.Version
}

func (m *Manager) read(ctx context.Context, name string) (persisted, uint64, error) {
	rec, err := m.cfg.Store.Get(ctx, statusCollection, name)
	if errors.Is(err, store.ErrNotFound) {
		return persisted{}, 0, nil
	}
	if err != nil {
		return persisted{}, 0, fmt.Errorf("read status of rollout %q: %w", name, err)
	}
	var st persisted
	if err := json.Unmarshal(rec.Data, &st); err != nil {
		return persisted{}, 0, fmt.Errorf("decode status of rollout %q: %w", name, err)
	}
	return st, rec.Version, nil
}

func (m *Manager) write(ctx context.Context, name string, st persisted, version uint64) (uint64, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("encode status of rollout %q: %w", name, err)
	}
	rec, err := m.cfg.Store.Put(ctx, statusCollection, store.Record{Key: name, Version: version, Data: data})
	if errors.Is(err, store.ErrConflict) {
		// Someone else changed the rollout since we read it: the command no
		// longer applies to what is stored, which the API reports as 409.
		return 0, fmt.Errorf("save status of rollout %q: %w (%w)", name, model.ErrConflict, err)
	}
	if err != nil {
		return 0, fmt.Errorf("save status of rollout %q: %w", name, err)
	}
	return rec.Version, nil
}

func (m *Manager) entry(name string) (*entry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e := m.entries[name]
	if e == nil {
		return nil, fmt.Errorf("rollout %q: %w", name, model.ErrNotFound)
	}
	return e, nil
}

// SetWeight sets the canary weight by hand. The new weight is persisted
// before the data plane gets it, so a crash never leaves an unrecorded weight.
func (m *Manager) SetWeight(ctx context.Context, name string, w spec.Weight) (model.View, error) {
	e, err := m.entry(name)
	if err != nil {
		return model.View{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state.CanaryVersion == "" {
		return model.View{}, fmt.Errorf("rollout %q has no canary, so there is no weight to set; add spec.canary first: %w", name, model.ErrConflict)
	}
	if w > spec.MaxWeight {
		return model.View{}, fmt.Errorf("weight %d basis points is above 100%%: %w", w, model.ErrInvalid)
	}
	st := e.state
	st.Weight = w
	st.PauseReason = model.PauseManual
	st.Message = "canary weight set to " + w.String() + "% by hand"
	st.UpdatedAt = m.cfg.Now()
	version, err := m.write(ctx, name, st, e.version)
	if err != nil {
		return model.View{}, err
	}
	e.state, e.version = st, version
	table := e.table.WithWeight(w, m.generation.Add(1))
	if err := m.cfg.Router.SetTable(name, table); err != nil {
		return model.View{}, fmt.Errorf("apply weight of rollout %q: %w", name, err)
	}
	e.table = table
	return m.view(e), nil
}

// Get returns one rollout.
func (m *Manager) Get(_ context.Context, name string) (model.View, error) {
	e, err := m.entry(name)
	if err != nil {
		return model.View{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return m.view(e), nil
}

// List returns every rollout sorted by name.
func (m *Manager) List(ctx context.Context) ([]model.View, error) {
	m.mu.RLock()
	names := make([]string, 0, len(m.entries))
	for n := range m.entries {
		names = append(names, n)
	}
	m.mu.RUnlock()
	sort.Strings(names)
	out := make([]model.View, 0, len(names))
	for _, n := range names {
		v, err := m.Get(ctx, n)
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, v)
	}
	return out, nil
}

// view builds the API object. Callers hold e.mu.
func (m *Manager) view(e *entry) model.View {
	name := e.rollout.Metadata.Name
	st := e.state
	status := model.Status{
		Phase:         model.PhaseHealthy,
		Revision:      st.Revision,
		StepIndex:     st.StepIndex,
		Weight:        st.Weight.Percent(),
		StableVersion: st.StableVersion,
		CanaryVersion: st.CanaryVersion,
		PauseReason:   st.PauseReason,
		Message:       st.Message,
		AnalysisRuns:  []model.AnalysisRunStatus{},
		UpdatedAt:     st.UpdatedAt,
	}
	if st.CanaryVersion != "" {
		status.Phase = model.PhasePaused
	}
	if _, w, avail, err := m.cfg.Router.Observed(name); err == nil && avail {
		status.ObservedWeight = w.Percent()
	}
	if eps, err := m.cfg.Router.Endpoints(name); err == nil {
		status.Endpoints = eps
	}
	return model.View{APIVersion: e.rollout.APIVersion, Kind: e.rollout.Kind, Metadata: e.rollout.Metadata, Spec: e.rollout.Spec, Status: status}
}
