package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Factory builds the driver of one rollout's router.
type Factory func(rollout string, r spec.Router) (Driver, error)

// ExternalConfig wires an External.
type ExternalConfig struct {
	New    Factory
	Logger *slog.Logger
	// Active reports whether this process drives load balancers (with
	// several replicas, only the leader does); nil means always.
	Active func() bool
	// Timeout bounds one Apply on a load balancer. Default 10s.
	Timeout time.Duration
	// Resync is how often each load balancer is read back and, when it
	// lost or missed coalmine's routing, given it again. Default 1s.
	Resync time.Duration
	// OnChange, when set, hears when a rollout's load balancer stops (ok
	// false, with why) or resumes routing as the rollout says. It is
	// called with the rollout's lock held and must not block.
	OnChange func(rollout, router string, ok bool, reason string)
}

// External serves the rollouts another load balancer carries, with the
// method set the rollout layer expects of its data plane. It keeps each
// rollout's desired routing and reconciles it with the load balancer:
// what fails to apply (the load balancer down, a reload refused) or is
// lost (HAProxy restarted without coalmine's map entries) is applied again
// on the next resync, and while a load balancer cannot be read back the
// rollout is reported unserved, so no step completes on a routing that is
// not in effect.
type External struct {
	cfg ExternalConfig
	log *slog.Logger

	mu       sync.Mutex
	rollouts map[string]*managed
	// backends is Backends' answer, rebuilt whenever a rollout's versions
	// or router change, so the access-log receiver looks a line's backend
	// up without a lock.
	backends atomic.Pointer[map[string]BackendRef]
}

// managed is one rollout on its load balancer. Its mutex serialises the
// driver's calls (Driver methods are never called at once for one rollout).
type managed struct {
	name string

	call sync.Mutex // held during driver calls
	drv  Driver

	mu       sync.Mutex // guards the fields below
	router   spec.Router
	desired  Desired
	observed Applied
	// readErr is why the load balancer could not be read back or given
	// the desired routing (nil when it routes with it).
	readErr error
	removed bool
}

// NewExternal returns an External; Run reconciles it.
func NewExternal(cfg ExternalConfig) *External {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Second
	}
	return &External{cfg: cfg, log: cfg.Logger, rollouts: map[string]*managed{}}
}

func (x *External) active() bool { return x.cfg.Active == nil || x.cfg.Active() }

// Has reports whether rollout name is served by an external router.
func (x *External) Has(name string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := x.rollouts[name]
	return ok
}

// DesiredFrom turns a rollout and its routing table into the routing a
// load balancer is given.
func DesiredFrom(r *spec.Rollout, t *route.Table) Desired {
	src := t.Source()
	d := Desired{
		Rollout:      r.Metadata.Name,
		Revision:     t.Revision,
		Generation:   t.Generation,
		Weight:       t.Weight,
		Stable:       Target{Version: r.Spec.Stable.Version, Endpoints: slices.Clone(r.Spec.Stable.Endpoints)},
		UserHeader:   src.Assignment.UserHeader,
		HeaderRoutes: slices.Clone(src.HeaderRoutes),
		MirrorRoutes: slices.Clone(src.MirrorRoutes),
	}
	if c := r.Spec.Canary; c != nil {
		d.Canary = &Target{Version: c.Version, Endpoints: slices.Clone(c.Endpoints)}
	} else {
		d.Weight = 0
	}
	return d
}

// Apply serves rollout r through its router with table t. A load balancer
// that cannot take the routing now (down, refusing a reload) is not an
// error of the command that changed it: the routing is kept, ServeError
// and Observed say why it is not in effect (so no step completes on it),
// and every resync tries again. An abort given while HAProxy is down thus
// takes effect the moment it is back.
func (x *External) Apply(ctx context.Context, r *spec.Rollout, t *route.Table) error {
	name := r.Metadata.Name
	d := DesiredFrom(r, t)
	x.mu.Lock()
	m := x.rollouts[name]
	if m == nil {
		m = &managed{name: name}
		x.rollouts[name] = m
	}
	x.mu.Unlock()

	m.call.Lock()
	defer m.call.Unlock()
	m.mu.Lock()
	changed := m.drv == nil || !reflect.DeepEqual(m.router, r.Spec.TrafficRouting.Router)
	m.mu.Unlock()
	if changed {
		drv, err := x.cfg.New(name, r.Spec.TrafficRouting.Router)
		if err != nil {
			err = fmt.Errorf("%s router of rollout %q: %w", r.Spec.TrafficRouting.Router.Kind(), name, err)
			m.mu.Lock()
			m.router, m.desired = r.Spec.TrafficRouting.Router, d
			x.setErr(m, err)
			m.mu.Unlock()
			return nil // recorded; lint refuses what would make it fail
		}
		m.mu.Lock()
		m.drv, m.router = drv, r.Spec.TrafficRouting.Router
		m.mu.Unlock()
	}
	m.mu.Lock()
	m.desired, m.removed = d, false
	m.mu.Unlock()
	x.refreshBackends()
	_ = x.push(ctx, m) // recorded in m.readErr
	return nil
}

// SetTable applies a new weight (a table with the same rules); like Apply,
// a load balancer that cannot take it now is reported, not an error.
func (x *External) SetTable(name string, t *route.Table) error {
	m, err := x.get(name)
	if err != nil {
		return err
	}
	m.call.Lock()
	defer m.call.Unlock()
	m.mu.Lock()
	d := m.desired
	d.Generation, d.Weight, d.Revision = t.Generation, t.Weight, t.Revision
	if d.Canary == nil {
		d.Weight = 0
	}
	m.desired = d
	m.mu.Unlock()
	_ = x.push(context.Background(), m) // recorded in m.readErr
	return nil
}

// push gives the load balancer m's desired routing and reads it back. The
// caller holds m.call.
func (x *External) push(ctx context.Context, m *managed) error {
	if !x.active() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	m.mu.Lock()
	d, drv := m.desired, m.drv
	if drv == nil {
		// Its driver could not be built; Apply said why and will again.
		err := m.readErr
		m.mu.Unlock()
		return err
	}
	m.mu.Unlock()
	err := drv.Apply(ctx, d)
	var got Applied
	if err == nil {
		got, err = drv.Observe(ctx)
		if err == nil && got.Generation != d.Generation {
			err = fmt.Errorf("the load balancer reports routing generation %d after applying %d", got.Generation, d.Generation)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		// Drivers name themselves and the rollout in their errors.
		x.setErr(m, err)
		return err
	}
	m.observed = got
	x.setErr(m, nil)
	return nil
}

// Observed reports what the load balancer was last seen routing with.
func (x *External) Observed(name string) (uint64, spec.Weight, bool, error) {
	m, err := x.get(name)
	if err != nil {
		return 0, 0, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readErr != nil {
		return 0, 0, false, m.readErr
	}
	return m.observed.Generation, m.observed.Weight, m.observed.CanaryAvailable, nil
}

// ServeError says why the load balancer does not route as the rollout
// says (unreachable, refusing the change, lost it and not yet given it
// again), or nil.
func (x *External) ServeError(name string) error {
	m, err := x.get(name)
	if err != nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readErr
}

// Endpoints lists the endpoints the rollout names; their health is the
// load balancer's business, so each is reported healthy while the load
// balancer says the role has a server up.
func (x *External) Endpoints(name string) ([]model.EndpointStatus, error) {
	m, err := x.get(name)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []model.EndpointStatus
	for _, u := range m.desired.Stable.Endpoints {
		out = append(out, model.EndpointStatus{Role: spec.RoleStable, Version: m.desired.Stable.Version, URL: u, Healthy: m.readErr == nil})
	}
	if c := m.desired.Canary; c != nil {
		for _, u := range c.Endpoints {
			out = append(out, model.EndpointStatus{Role: spec.RoleCanary, Version: c.Version, URL: u, Healthy: m.readErr == nil && m.observed.CanaryAvailable})
		}
	}
	return out, nil
}

// Remove stops routing the rollout through its load balancer (all traffic
// to stable, coalmine's entries removed) and forgets it.
func (x *External) Remove(ctx context.Context, name string) error {
	x.mu.Lock()
	m := x.rollouts[name]
	delete(x.rollouts, name)
	x.mu.Unlock()
	if m == nil {
		return nil
	}
	m.call.Lock()
	defer m.call.Unlock()
	m.mu.Lock()
	m.removed = true
	drv := m.drv
	m.mu.Unlock()
	x.refreshBackends()
	if drv == nil || !x.active() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	return drv.Remove(ctx)
}

// Backend says which rollout, role and version a backend or upstream name
// in an access-log line stands for. It takes no lock.
func (x *External) Backend(name string) (BackendRef, bool) {
	m := x.backends.Load()
	if m == nil {
		return BackendRef{}, false
	}
	ref, ok := (*m)[name]
	return ref, ok
}

func (x *External) refreshBackends() {
	b := x.Backends()
	x.backends.Store(&b)
}

// Backends maps every backend or upstream name an external rollout's
// access-log lines carry to its rollout, role and the version the role
// has now.
func (x *External) Backends() map[string]BackendRef {
	x.mu.Lock()
	ms := make([]*managed, 0, len(x.rollouts))
	for _, m := range x.rollouts {
		ms = append(ms, m)
	}
	x.mu.Unlock()
	out := map[string]BackendRef{}
	for _, m := range ms {
		m.mu.Lock()
		if m.drv != nil {
			for b, role := range m.drv.Backends() {
				ref := BackendRef{Rollout: m.name, Role: role, Version: m.desired.Stable.Version}
				if role == spec.RoleCanary {
					ref.Version = ""
					if c := m.desired.Canary; c != nil {
						ref.Version = c.Version
					}
				}
				out[b] = ref
			}
		}
		m.mu.Unlock()
	}
	return out
}

// BackendRef is what a backend name in an access-log line stands for.
type BackendRef struct {
	Rollout string
	Role    spec.Role
	// Version is "" for a canary backend while the rollout has no canary.
	Version string
}

// Run reconciles every rollout with its load balancer each Resync until
// ctx ends: it reads the load balancer back and gives it the desired
// routing again when it does not hold it.
func (x *External) Run(ctx context.Context) {
	t := time.NewTicker(x.cfg.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !x.active() {
			continue
		}
		x.mu.Lock()
		ms := make([]*managed, 0, len(x.rollouts))
		for _, m := range x.rollouts {
			ms = append(ms, m)
		}
		x.mu.Unlock()
		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Add(1)
			go func() { defer wg.Done(); x.resync(ctx, m) }()
		}
		wg.Wait()
	}
}

// resync reads m's load balancer back and re-applies when it does not
// route with the desired generation.
func (x *External) resync(ctx context.Context, m *managed) {
	m.call.Lock()
	defer m.call.Unlock()
	m.mu.Lock()
	drv, d, removed := m.drv, m.desired, m.removed
	m.mu.Unlock()
	if drv == nil || removed {
		return
	}
	octx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	got, err := drv.Observe(octx)
	cancel()
	if err == nil && got.Generation == d.Generation {
		m.mu.Lock()
		m.observed = got
		x.setErr(m, nil)
		m.mu.Unlock()
		return
	}
	// Lost (a restart), missed (an earlier Apply failed) or unreachable:
	// give it the routing again; push records why it could not.
	if perr := x.push(ctx, m); perr != nil && errors.Is(perr, context.Canceled) {
		return
	}
}

// setErr records whether m's load balancer routes as desired (err nil)
// and reports a change. The caller holds m.mu.
func (x *External) setErr(m *managed, err error) {
	was := m.readErr
	m.readErr = err
	switch {
	case was == nil && err != nil:
		x.log.Warn("the load balancer does not route as the rollout says; retrying every resync", "rollout", m.name, "router", m.router.Kind(), "err", err)
		if x.cfg.OnChange != nil {
			x.cfg.OnChange(m.name, m.router.Kind(), false, err.Error())
		}
	case was != nil && err == nil:
		x.log.Info("the load balancer routes as the rollout says again", "rollout", m.name, "router", m.router.Kind())
		if x.cfg.OnChange != nil {
			x.cfg.OnChange(m.name, m.router.Kind(), true, "")
		}
	case was != nil && err != nil && was.Error() != err.Error():
		x.log.Warn("the load balancer still does not route as the rollout says", "rollout", m.name, "router", m.router.Kind(), "err", err)
	}
}

func (x *External) get(name string) (*managed, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.rollouts[name]
	if m == nil {
		return nil, fmt.Errorf("rollout %q is not served by an external router", name)
	}
	return m, nil
}
