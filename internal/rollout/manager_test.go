package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/coalmine-dev/coalmine/internal/model"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
)

// fakeRouter records what the data plane was told, and what the store
// held at that moment, to check that state is persisted before it is acted on.
type fakeRouter struct {
	mu      sync.Mutex
	st      Store
	tables  map[string]*route.Table
	applied []string
	// persistedAtSet is the stored weight when SetTable was called.
	persistedAtSet []spec.Weight
}

func (f *fakeRouter) Apply(_ context.Context, r *spec.Rollout, t *route.Table) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tables[r.Metadata.Name] = t
	f.applied = append(f.applied, r.Metadata.Name)
	return nil
}

func (f *fakeRouter) SetTable(name string, t *route.Table) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, err := f.st.Get(context.Background(), statusCollection, name)
	if err != nil {
		return err
	}
	var p persisted
	if err := json.Unmarshal(rec.Data, &p); err != nil {
		return err
	}
	f.persistedAtSet = append(f.persistedAtSet, p.Weight)
	f.tables[name] = t
	return nil
}

func (f *fakeRouter) Observed(name string) (uint64, spec.Weight, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[name]
	return t.Generation, t.Weight, true, nil
}

func (f *fakeRouter) Endpoints(string) ([]model.EndpointStatus, error) { return nil, nil }

func rolloutSpec(stable, canary string) spec.Rollout {
	r := spec.Rollout{APIVersion: spec.APIVersion, Kind: spec.KindRollout, Metadata: spec.Metadata{Name: "shop"},
		Spec: spec.RolloutSpec{Listen: "127.0.0.1:1", Stable: spec.VersionSpec{Version: stable, Endpoints: []string{"http://127.0.0.1:2"}}}}
	if canary != "" {
		r.Spec.Canary = &spec.VersionSpec{Version: canary, Endpoints: []string{"http://127.0.0.1:3"}}
	}
	r.SetDefaults()
	return r
}

func newTestManager(t *testing.T, dir string) (*Manager, *fakeRouter, func()) {
	t.Helper()
	st, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fr := &fakeRouter{st: st, tables: map[string]*route.Table{}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := NewManager(ManagerConfig{Router: fr, Store: st, Now: func() time.Time { return now }})
	return m, fr, func() { st.Close() }
}

func TestManagerWeightIsPersistedBeforeApplied(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m, fr, closeStore := newTestManager(t, dir)
	if err := m.Load(ctx, []spec.Rollout{rolloutSpec("v1", "v2")}); err != nil {
		t.Fatal(err)
	}
	v, _ := m.Get(ctx, "shop")
	if v.Status.Weight != 0 || v.Status.Revision != 1 || v.Status.Phase != model.PhasePaused {
		t.Fatalf("fresh rollout: %+v", v.Status)
	}
	w, _ := spec.WeightFromPercent(12.5)
	v, err := m.SetWeight(ctx, "shop", w)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status.Weight != 12.5 || v.Status.ObservedWeight != 12.5 || v.Status.PauseReason != model.PauseManual {
		t.Fatalf("after set weight: %+v", v.Status)
	}
	if len(fr.persistedAtSet) != 1 || fr.persistedAtSet[0] != w {
		t.Fatalf("the data plane got the weight before it was stored: %v", fr.persistedAtSet)
	}
	closeStore()

	// A restart resumes the same revision and weight.
	m2, fr2, closeStore2 := newTestManager(t, dir)
	defer closeStore2()
	if err := m2.Load(ctx, []spec.Rollout{rolloutSpec("v1", "v2")}); err != nil {
		t.Fatal(err)
	}
	v, _ = m2.Get(ctx, "shop")
	if v.Status.Weight != 12.5 || v.Status.Revision != 1 || fr2.tables["shop"].Weight != w {
		t.Fatalf("after restart: %+v, table weight %d", v.Status, fr2.tables["shop"].Weight)
	}

	// A new canary version starts a new revision at 0%.
	if err := m2.Load(ctx, []spec.Rollout{rolloutSpec("v1", "v3")}); err != nil {
		t.Fatal(err)
	}
	v, _ = m2.Get(ctx, "shop")
	if v.Status.Weight != 0 || v.Status.Revision != 2 || v.Status.CanaryVersion != "v3" || fr2.tables["shop"].Weight != 0 {
		t.Fatalf("new canary: %+v", v.Status)
	}
	if fr2.tables["shop"].Revision != 2 {
		t.Fatalf("routing table revision %d, want 2 (new salt)", fr2.tables["shop"].Revision)
	}
}

func TestManagerRejectsWhatDoesNotApply(t *testing.T) {
	ctx := context.Background()
	m, _, closeStore := newTestManager(t, t.TempDir())
	defer closeStore()
	if err := m.Load(ctx, []spec.Rollout{rolloutSpec("v1", "")}); err != nil {
		t.Fatal(err)
	}
	v, _ := m.Get(ctx, "shop")
	if v.Status.Phase != model.PhaseHealthy {
		t.Fatalf("no canary: phase %s", v.Status.Phase)
	}
	if _, err := m.SetWeight(ctx, "shop", 100); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("set weight without a canary: %v, want model.ErrConflict", err)
	}
	if _, err := m.SetWeight(ctx, "nope", 100); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("unknown rollout: %v, want model.ErrNotFound", err)
	}
	if _, err := m.Get(ctx, "nope"); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
}

// A stale status record (written by someone else) makes the command fail
// instead of overwriting it.
func TestManagerCompareAndSwap(t *testing.T) {
	ctx := context.Background()
	m, fr, closeStore := newTestManager(t, t.TempDir())
	defer closeStore()
	if err := m.Load(ctx, []spec.Rollout{rolloutSpec("v1", "v2")}); err != nil {
		t.Fatal(err)
	}
	rec, _ := fr.st.Get(ctx, statusCollection, "shop")
	if _, err := fr.st.Put(ctx, statusCollection, store.Record{Key: "shop", Version: rec.Version, Data: rec.Data}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetWeight(ctx, "shop", 500); !errors.Is(err, store.ErrConflict) || !errors.Is(err, model.ErrConflict) {
		t.Fatalf("stale write: %v, want model.ErrConflict", err)
	}
	if fr.tables["shop"].Weight != 0 {
		t.Fatal("the data plane got a weight that was not stored")
	}
}
