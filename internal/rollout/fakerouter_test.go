package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// fakeRouter is an in-memory data plane: it keeps the last spec and table
// of each rollout and observes them at once. When store is set, every
// Apply and SetTable checks that the store already holds a state with the
// weight, revision and versions the data plane is told about, and records
// a violation otherwise (persist before acting, SPEC §4).
type fakeRouter struct {
	store store.Store

	mu         sync.Mutex
	specs      map[string]spec.Rollout
	tables     map[string]*route.Table
	down       map[string]bool // canary has no healthy endpoint
	failNext   error           // returned by the next Apply or SetTable
	applies    int
	setTables  int
	removed    []string
	violations []string
	tableAt    time.Time // when the last table arrived
	badListen  map[string]error
	listenErr  map[string]error
}

var _ Router = (*fakeRouter)(nil)

func newFakeRouter(st store.Store) *fakeRouter {
	return &fakeRouter{store: st, specs: map[string]spec.Rollout{}, tables: map[string]*route.Table{}, down: map[string]bool{}}
}

func (f *fakeRouter) Apply(_ context.Context, r *spec.Rollout, t *route.Table) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	name := r.Metadata.Name
	f.checkPersisted("Apply", name, t, r)
	f.specs[name] = *r
	f.tables[name] = t
	f.applies++
	f.tableAt = time.Now()
	return nil
}

// CheckListen refuses the addresses listed in badListen.
func (f *fakeRouter) CheckListen(_, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.badListen[addr]; err != nil {
		return err
	}
	return nil
}

// ListenError reports the error set with setListenError.
func (f *fakeRouter) ListenError(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listenErr[name]
}

func (f *fakeRouter) setListenError(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listenErr == nil {
		f.listenErr = map[string]error{}
	}
	f.listenErr[name] = err
}

func (f *fakeRouter) SetTable(name string, t *route.Table) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	if _, ok := f.tables[name]; !ok {
		return fmt.Errorf("set table of %q: not served", name)
	}
	f.checkPersisted("SetTable", name, t, nil)
	f.tables[name] = t
	f.setTables++
	f.tableAt = time.Now()
	return nil
}

// checkPersisted records a violation when the store does not hold what
// the data plane is being told. Callers hold f.mu.
func (f *fakeRouter) checkPersisted(op, name string, t *route.Table, r *spec.Rollout) {
	if f.store == nil {
		return
	}
	rec, err := f.store.Get(context.Background(), stateCollection, name)
	if err != nil {
		f.violations = append(f.violations, fmt.Sprintf("%s %s: no stored state: %v", op, name, err))
		return
	}
	var st State
	if err := json.Unmarshal(rec.Data, &st); err != nil {
		f.violations = append(f.violations, fmt.Sprintf("%s %s: %v", op, name, err))
		return
	}
	want := st.Weight
	if st.Canary == nil {
		want = 0
	}
	if t.Weight != want || t.Revision != st.Revision {
		f.violations = append(f.violations, fmt.Sprintf("%s %s: data plane told weight %s%% revision %d while the store holds weight %s%% revision %d",
			op, name, t.Weight, t.Revision, want, st.Revision))
	}
	if r != nil && (r.Spec.Stable.Version != st.Stable.Version || versionOf(r.Spec.Canary) != versionOf(st.Canary)) {
		f.violations = append(f.violations, fmt.Sprintf("%s %s: data plane told stable %s canary %q while the store holds stable %s canary %q",
			op, name, r.Spec.Stable.Version, versionOf(r.Spec.Canary), st.Stable.Version, versionOf(st.Canary)))
	}
}

func (f *fakeRouter) Observed(name string) (uint64, spec.Weight, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tables[name]
	if !ok {
		return 0, 0, false, fmt.Errorf("observe %q: not served", name)
	}
	return t.Generation, t.Weight, !f.down[name], nil
}

func (f *fakeRouter) Endpoints(name string) ([]model.EndpointStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.specs[name]
	if !ok {
		return nil, errors.New("not served")
	}
	var out []model.EndpointStatus
	for _, u := range r.Spec.Stable.Endpoints {
		out = append(out, model.EndpointStatus{Role: spec.RoleStable, Version: r.Spec.Stable.Version, URL: u, Healthy: true})
	}
	if c := r.Spec.Canary; c != nil {
		for _, u := range c.Endpoints {
			out = append(out, model.EndpointStatus{Role: spec.RoleCanary, Version: c.Version, URL: u, Healthy: !f.down[name]})
		}
	}
	return out, nil
}

func (f *fakeRouter) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.specs, name)
	delete(f.tables, name)
	f.removed = append(f.removed, name)
	return nil
}

// table returns the table the data plane routes name with.
func (f *fakeRouter) table(name string) *route.Table {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tables[name]
}

// served returns the spec the data plane serves name with.
func (f *fakeRouter) served(name string) (spec.Rollout, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.specs[name]
	return r, ok
}

func (f *fakeRouter) setDown(name string, down bool) {
	f.mu.Lock()
	f.down[name] = down
	f.mu.Unlock()
}

func (f *fakeRouter) fail(err error) {
	f.mu.Lock()
	f.failNext = err
	f.mu.Unlock()
}

func (f *fakeRouter) takeViolations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.violations
	f.violations = nil
	return v
}
