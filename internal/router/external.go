package router

import (
	"context"
	"crypto/rand"
	"encoding/binary"
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
//
// The generation a load balancer is given is External's own, unique to
// this process (a random epoch in the high bits): a load balancer still
// holding what another process (an earlier run, a replica that led
// before) applied under the same table generation is never mistaken for
// holding this process's routing. Observed translates it back to the
// controller's table generation.
type External struct {
	cfg ExternalConfig
	log *slog.Logger

	epoch uint64
	seq   atomic.Uint64

	mu       sync.Mutex
	rollouts map[string]*managed
	// retired are drivers of load balancers a rollout left (deleted,
	// moved to another router) whose Remove failed; resync retries them.
	retired []*retiredDriver
	// backends is Backends' answer, rebuilt whenever a rollout's versions
	// or router change, so the access-log receiver looks a line's backend
	// up without a lock.
	backends atomic.Pointer[map[string]BackendRef]
	// clashes are backend names two rollouts claim, logged once each.
	clashes map[string]bool

	wg sync.WaitGroup // resyncs in flight
}

// managed is one rollout on its load balancer. Its call mutex serialises
// the driver's calls (Driver methods are never called at once for one
// rollout).
type managed struct {
	name string
	busy atomic.Bool // a resync is running

	call sync.Mutex // held during driver calls

	mu     sync.Mutex // guards the fields below
	drv    Driver
	router spec.Router
	// desired is what the load balancer must hold; its Generation is
	// External's, tableGen the controller's table generation for it.
	desired  Desired
	tableGen uint64
	observed Applied
	// readErr is why the load balancer could not be read back or given
	// the desired routing (nil when it routes with it).
	readErr error
}

// retiredDriver is a load balancer a rollout no longer uses, to be given
// back (Remove) until it takes it.
type retiredDriver struct {
	rollout string
	kind    string
	drv     Driver
	busy    atomic.Bool
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
	var b [4]byte
	_, _ = rand.Read(b[:])
	epoch := uint64(binary.BigEndian.Uint32(b[:])&0x7fffffff) | 1 // nonzero, and the generation fits an int64
	return &External{cfg: cfg, log: cfg.Logger, rollouts: map[string]*managed{}, epoch: epoch, clashes: map[string]bool{}}
}

func (x *External) active() bool { return x.cfg.Active == nil || x.cfg.Active() }

// nextGen is a generation no other process gives a load balancer.
func (x *External) nextGen() uint64 { return x.epoch<<32 | x.seq.Add(1)&0xffffffff }

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
		// Without a canary everything goes to stable: no header route
		// or mirror has anywhere else to send to (a Service scaled to
		// zero between releases must not get the testers' requests).
		d.Weight, d.HeaderRoutes, d.MirrorRoutes = 0, nil, nil
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
	d.Generation = x.nextGen()
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
	old, oldRouter := m.drv, m.router
	changed := old == nil || !reflect.DeepEqual(oldRouter, r.Spec.TrafficRouting.Router)
	m.desired, m.tableGen = d, t.Generation
	m.mu.Unlock()
	if changed {
		// A load balancer the rollout leaves is given back first (all
		// traffic to stable, coalmine's entries removed), unless the new
		// settings drive the very same objects.
		if old != nil && !slices.Equal(oldRouter.Claims(name), r.Spec.TrafficRouting.Router.Claims(name)) {
			x.retire(ctx, name, oldRouter.Kind(), old)
		}
		drv, err := x.cfg.New(name, r.Spec.TrafficRouting.Router)
		m.mu.Lock()
		m.drv, m.router = drv, r.Spec.TrafficRouting.Router
		if err != nil {
			m.drv = nil
			x.setErr(m, fmt.Errorf("%s router of rollout %q: %w", r.Spec.TrafficRouting.Router.Kind(), name, err))
		}
		m.mu.Unlock()
		if err != nil {
			x.refreshBackends()
			return nil // recorded; lint refuses what would make it fail
		}
		// The router's own check says best what is missing (a map, a
		// backend, coalmine's lines in haproxy.cfg): report that rather
		// than the first command that failed. Resyncs keep trying.
		if x.active() {
			cctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
			err := drv.Check(cctx)
			cancel()
			if err != nil {
				m.mu.Lock()
				x.setErr(m, err)
				m.mu.Unlock()
				x.refreshBackends()
				return nil
			}
		}
	}
	x.refreshBackends()
	_ = x.push(ctx, m) // recorded in m.readErr
	return nil
}

// Errors lists the rollouts whose load balancer does not route as they
// say, with why (for /readyz).
func (x *External) Errors() map[string]error {
	if !x.active() {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[string]error{}
	for name, m := range x.rollouts {
		m.mu.Lock()
		if m.readErr != nil {
			out[name] = m.readErr
		}
		m.mu.Unlock()
	}
	return out
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
	d.Generation, d.Weight, d.Revision = x.nextGen(), t.Weight, t.Revision
	if d.Canary == nil {
		d.Weight = 0
	}
	m.desired, m.tableGen = d, t.Generation
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
	m.mu.Lock()
	d, drv := m.desired, m.drv
	if drv == nil {
		// Its driver could not be built; Apply said why and will again.
		err := m.readErr
		m.mu.Unlock()
		return err
	}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	err := drv.Apply(ctx, d)
	var got Applied
	if err == nil {
		got, err = drv.Observe(ctx)
		if err == nil && (got.Generation != d.Generation || got.Weight != d.Weight) {
			err = fmt.Errorf("%s router of rollout %q: after applying weight %v (generation %d) the load balancer reads back weight %v (generation %d): "+
				"is another coalmine or replica driving the same objects, or does the load balancer read another map or include file than the router names?",
				m.routerKind(), m.name, d.Weight, d.Generation, got.Weight, got.Generation)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.desired.Generation != d.Generation {
		return nil // a newer routing came meanwhile; its push decides
	}
	if err != nil {
		// Drivers name themselves and the rollout in their errors.
		x.setErr(m, err)
		return err
	}
	m.observed = got
	x.setErr(m, nil)
	return nil
}

func (m *managed) routerKind() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.router.Kind()
}

// Observed reports what the load balancer was last seen routing with, in
// the controller's table generation. A process that does not drive load
// balancers (a follower replica) has nothing to route and echoes the
// desired routing: the leader's read-back is the one that counts.
func (x *External) Observed(name string) (uint64, spec.Weight, bool, error) {
	m, err := x.get(name)
	if err != nil {
		return 0, 0, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !x.active() {
		return m.tableGen, m.desired.Weight, true, nil
	}
	if m.readErr != nil {
		return 0, 0, false, m.readErr
	}
	if m.observed.Generation != m.desired.Generation {
		return 0, m.observed.Weight, m.observed.CanaryAvailable, nil // not yet applied
	}
	return m.tableGen, m.observed.Weight, m.observed.CanaryAvailable, nil
}

// ServeError says why the load balancer does not route as the rollout
// says (unreachable, refusing the change, lost it and not yet given it
// again), or nil.
func (x *External) ServeError(name string) error {
	m, err := x.get(name)
	if err != nil || !x.active() {
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
// to stable, coalmine's entries removed) and forgets it. A load balancer
// that cannot take the removal now is retried every resync until it does.
func (x *External) Remove(ctx context.Context, name string) error {
	x.mu.Lock()
	m := x.rollouts[name]
	delete(x.rollouts, name)
	x.mu.Unlock()
	if m == nil {
		return nil
	}
	x.refreshBackends()
	m.call.Lock()
	defer m.call.Unlock()
	m.mu.Lock()
	drv, kind := m.drv, m.router.Kind()
	m.drv = nil // a resync still holding m finds nothing to drive
	m.mu.Unlock()
	if drv != nil {
		x.retire(ctx, name, kind, drv)
	}
	return nil
}

// retire gives a load balancer back (Remove) now, or, when it cannot take
// it, keeps retrying on every resync, so a rollout that is deleted or
// moved while HAProxy is down does not leave HAProxy sending traffic to
// its canary.
func (x *External) retire(ctx context.Context, rollout, kind string, drv Driver) {
	if !x.active() {
		return // the leader gives it back
	}
	r := &retiredDriver{rollout: rollout, kind: kind, drv: drv}
	if x.removeRetired(ctx, r) {
		return
	}
	x.mu.Lock()
	x.retired = append(x.retired, r)
	x.mu.Unlock()
}

// removeRetired tries r's Remove once and reports whether it took.
func (x *External) removeRetired(ctx context.Context, r *retiredDriver) bool {
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	if err := r.drv.Remove(ctx); err != nil {
		x.log.Warn("the load balancer a rollout left still routes it; retrying every resync", "rollout", r.rollout, "router", r.kind, "err", err)
		return false
	}
	x.log.Info("the load balancer a rollout left no longer routes it", "rollout", r.rollout, "router", r.kind)
	return true
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
// has now. A name two rollouts use is left out (its lines cannot be told
// apart) and logged once.
func (x *External) Backends() map[string]BackendRef {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[string]BackendRef{}
	clash := map[string]bool{}
	for _, m := range x.rollouts {
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
				if prev, ok := out[b]; ok && prev.Rollout != ref.Rollout {
					clash[b] = true
				}
				out[b] = ref
			}
		}
		m.mu.Unlock()
	}
	for b := range clash {
		delete(out, b)
		if !x.clashes[b] {
			x.clashes[b] = true
			x.log.Error("two rollouts' load balancers name the same backend; its access-log lines are not recorded: give each rollout its own backend names", "backend", b)
		}
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
// routing again when it does not hold it, and retries the removals that
// failed. A slow or unreachable load balancer delays only its own
// rollout's resync.
func (x *External) Run(ctx context.Context) {
	defer x.wg.Wait()
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
		retired := slices.Clone(x.retired)
		x.mu.Unlock()
		for _, m := range ms {
			if m.busy.CompareAndSwap(false, true) {
				x.wg.Add(1)
				go func() { defer x.wg.Done(); defer m.busy.Store(false); x.resync(ctx, m) }()
			}
		}
		for _, r := range retired {
			if r.busy.CompareAndSwap(false, true) {
				x.wg.Add(1)
				go func() {
					defer x.wg.Done()
					defer r.busy.Store(false)
					if x.removeRetired(ctx, r) {
						x.mu.Lock()
						x.retired = slices.DeleteFunc(x.retired, func(o *retiredDriver) bool { return o == r })
						x.mu.Unlock()
					}
				}()
			}
		}
	}
}

// resync reads m's load balancer back and re-applies when it does not
// route with the desired generation and weight. The whole of it is
// bounded by one Timeout, so a command waiting for m.call (an abort)
// waits at most that long behind it.
func (x *External) resync(ctx context.Context, m *managed) {
	m.call.Lock()
	defer m.call.Unlock()
	m.mu.Lock()
	drv, d := m.drv, m.desired
	m.mu.Unlock()
	if drv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	got, err := drv.Observe(ctx)
	if err == nil && got.Generation == d.Generation && got.Weight == d.Weight {
		m.mu.Lock()
		if m.desired.Generation == d.Generation {
			m.observed = got
			x.setErr(m, nil)
		}
		m.mu.Unlock()
		return
	}
	// Lost (a restart), missed (an earlier Apply failed), another
	// process's, or unreachable: give it the routing again; push records
	// why it could not.
	_ = x.push(ctx, m)
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
