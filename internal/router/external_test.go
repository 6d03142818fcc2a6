package router

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// fakeLB is a load balancer at the unit boundary: it holds what it was
// given, can be made unreachable, and can lose its state as a restart does.
type fakeLB struct {
	mu      sync.Mutex
	down    bool
	held    *Desired
	applies int
	removed bool
}

func (f *fakeLB) Apply(_ context.Context, d Desired) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	if f.down {
		return errors.New("connection refused")
	}
	f.held = &d
	return nil
}

func (f *fakeLB) Observe(context.Context) (Applied, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return Applied{}, errors.New("connection refused")
	}
	if f.held == nil {
		return Applied{}, nil
	}
	return Applied{Generation: f.held.Generation, Weight: f.held.Weight, CanaryAvailable: f.held.Canary != nil}, nil
}

func (f *fakeLB) Check(context.Context) error { return nil }

func (f *fakeLB) Remove(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed, f.held = true, nil
	return nil
}

func (f *fakeLB) Backends() map[string]spec.Role {
	return map[string]spec.Role{"shop_stable": spec.RoleStable, "shop_canary": spec.RoleCanary}
}

func (f *fakeLB) set(fn func(*fakeLB)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

type change struct {
	ok     bool
	reason string
}

func newTestExternal(t *testing.T, lb *fakeLB) (*External, chan change) {
	t.Helper()
	changes := make(chan change, 16)
	x := NewExternal(ExternalConfig{
		New:      func(string, spec.Router) (Driver, error) { return lb, nil },
		Resync:   5 * time.Millisecond,
		OnChange: func(_, _ string, ok bool, reason string) { changes <- change{ok, reason} },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); x.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return x, changes
}

func shop(canary bool) *spec.Rollout {
	r := &spec.Rollout{}
	r.Metadata.Name = "shop"
	r.Spec.TrafficRouting.Router.HAProxy = &spec.HAProxyRouter{RuntimeAPI: "tcp://127.0.0.1:9999"}
	r.Spec.TrafficRouting.Assignment.UserHeader = "X-User-Id"
	r.Spec.Stable = spec.VersionSpec{Version: "v1", Endpoints: []string{"http://127.0.0.1:9001"}}
	if canary {
		r.Spec.Canary = &spec.VersionSpec{Version: "v2", Endpoints: []string{"http://127.0.0.1:9002"}}
	}
	return r
}

func table(t *testing.T, gen uint64, w spec.Weight) *route.Table {
	t.Helper()
	exact := "yes"
	tb, err := route.Compile(route.Config{Rollout: "shop", Revision: 3, Generation: gen, Weight: w,
		Assignment:   spec.Assignment{UserHeader: "X-User-Id"},
		HeaderRoutes: []spec.HeaderRoute{{Name: "beta", Match: []spec.HeaderMatch{{HeaderName: "X-Canary", HeaderValue: spec.StringMatch{Exact: &exact}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestExternalAppliesTheWholeRoutingAndReadsItBack(t *testing.T) {
	lb := &fakeLB{}
	x, _ := newTestExternal(t, lb)
	if err := x.Apply(context.Background(), shop(true), table(t, 7, 500)); err != nil {
		t.Fatal(err)
	}
	gen, w, avail, err := x.Observed("shop")
	if err != nil || gen != 7 || w != 500 || !avail {
		t.Fatalf("Observed = %d %d %v %v, want 7 500 true nil", gen, w, avail, err)
	}
	lb.mu.Lock()
	d := *lb.held
	lb.mu.Unlock()
	if d.Revision != 3 || d.UserHeader != "X-User-Id" || len(d.HeaderRoutes) != 1 || d.Canary == nil || d.Canary.Version != "v2" || d.Stable.Endpoints[0] != "http://127.0.0.1:9001" {
		t.Fatalf("the load balancer was given %+v", d)
	}
	if err := x.SetTable("shop", table(t, 8, 3000)); err != nil {
		t.Fatal(err)
	}
	if gen, w, _, _ := x.Observed("shop"); gen != 8 || w != 3000 {
		t.Fatalf("after SetTable Observed = %d %d, want 8 3000", gen, w)
	}
	ref, ok := x.Backend("shop_canary")
	if !ok || ref.Rollout != "shop" || ref.Role != spec.RoleCanary || ref.Version != "v2" {
		t.Fatalf("Backend(shop_canary) = %+v %v", ref, ok)
	}
	// Without a canary the weight is 0 whatever the table says, and the
	// canary backend stands for no version.
	if err := x.Apply(context.Background(), shop(false), table(t, 9, 3000)); err != nil {
		t.Fatal(err)
	}
	if _, w, _, _ := x.Observed("shop"); w != 0 {
		t.Fatalf("weight without a canary = %d", w)
	}
	if ref, _ := x.Backend("shop_canary"); ref.Version != "" {
		t.Fatalf("canary backend without a canary stands for %q", ref.Version)
	}
	if err := x.Remove(context.Background(), "shop"); err != nil || !lb.removed || x.Has("shop") {
		t.Fatalf("Remove: err %v, removed %v, still has %v", err, lb.removed, x.Has("shop"))
	}
	if _, ok := x.Backend("shop_stable"); ok {
		t.Fatal("a removed rollout's backends still resolve")
	}
}

func TestExternalUnreachableLoadBalancerIsReportedAndGivenTheRoutingWhenBack(t *testing.T) {
	lb := &fakeLB{}
	x, changes := newTestExternal(t, lb)
	if err := x.Apply(context.Background(), shop(true), table(t, 1, 100)); err != nil {
		t.Fatal(err)
	}
	lb.set(func(f *fakeLB) { f.down = true })
	// The next change cannot be applied: the command is not refused (its
	// state stands), but the rollout is reported unserved rather than
	// observed at the new weight.
	if err := x.SetTable("shop", table(t, 2, 2500)); err != nil {
		t.Fatal(err)
	}
	if c := <-changes; c.ok || c.reason == "" {
		t.Fatalf("first change = %+v, want not ok with a reason", c)
	}
	if _, _, _, err := x.Observed("shop"); err == nil {
		t.Fatal("Observed has no error while the load balancer is unreachable")
	}
	if x.ServeError("shop") == nil {
		t.Fatal("ServeError is nil while the load balancer is unreachable")
	}
	lb.set(func(f *fakeLB) { f.down = false })
	if c := <-changes; !c.ok {
		t.Fatalf("second change = %+v, want ok", c)
	}
	gen, w, _, err := x.Observed("shop")
	if err != nil || gen != 2 || w != 2500 {
		t.Fatalf("after recovery Observed = %d %d %v, want the change that was refused (2, 2500)", gen, w, err)
	}
}

func TestExternalReappliesWhatALoadBalancerLost(t *testing.T) {
	lb := &fakeLB{}
	x, _ := newTestExternal(t, lb)
	if err := x.Apply(context.Background(), shop(true), table(t, 4, 1000)); err != nil {
		t.Fatal(err)
	}
	lb.set(func(f *fakeLB) { f.held = nil }) // a restart without coalmine's entries
	waitFor(t, "the lost routing to be applied again", func() bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		return lb.held != nil && lb.held.Weight == 1000
	})
}

func TestExternalFollowerDrivesNothing(t *testing.T) {
	lb := &fakeLB{}
	x := NewExternal(ExternalConfig{New: func(string, spec.Router) (Driver, error) { return lb, nil }, Active: func() bool { return false }})
	if err := x.Apply(context.Background(), shop(true), table(t, 1, 100)); err != nil {
		t.Fatal(err)
	}
	if lb.applies != 0 {
		t.Fatalf("a follower applied %d times", lb.applies)
	}
}

// removeFails is a load balancer that cannot take a removal until told.
type removeFails struct {
	*fakeLB
	fail atomic.Bool
}

func (r *removeFails) Remove(ctx context.Context) error {
	if r.fail.Load() {
		return errors.New("connection refused")
	}
	return r.fakeLB.Remove(ctx)
}

// A rollout deleted while its load balancer is down is given back once the
// load balancer is up, not forgotten with the canary still weighted.
func TestExternalFailedRemoveIsRetried(t *testing.T) {
	lb := &removeFails{fakeLB: &fakeLB{}}
	lb.fail.Store(true)
	x := NewExternal(ExternalConfig{New: func(string, spec.Router) (Driver, error) { return lb, nil }, Resync: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go x.Run(ctx)
	_ = x.Apply(ctx, shop(true), table(t, 1, 5000))
	_ = x.Remove(ctx, "shop")
	if x.Has("shop") {
		t.Fatal("a removed rollout is still served")
	}
	lb.fail.Store(false)
	waitFor(t, "the removal to be retried", func() bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		return lb.removed
	})
}

// A load balancer holding another process's routing under the same table
// generation (a restart, a replica that led before) is given this
// process's routing: an abort is never lost to a generation number that
// happens to match.
func TestExternalForeignGenerationIsNotTrusted(t *testing.T) {
	lb := &fakeLB{}
	var active atomic.Bool
	x := NewExternal(ExternalConfig{New: func(string, spec.Router) (Driver, error) { return lb, nil }, Resync: 5 * time.Millisecond, Active: active.Load})
	other := NewExternal(ExternalConfig{New: func(string, spec.Router) (Driver, error) { return lb, nil }})
	if err := other.Apply(context.Background(), shop(true), table(t, 5, 5000)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go x.Run(ctx)
	_ = x.Apply(ctx, shop(true), table(t, 5, 0)) // the aborted state, under the same table generation
	active.Store(true)
	waitFor(t, "the abort to reach the load balancer", func() bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		return lb.held.Weight == 0
	})
	if gen, w, _, err := x.Observed("shop"); err != nil || gen != 5 || w != 0 {
		t.Fatalf("Observed = %d %d %v", gen, w, err)
	}
}

// Moving a rollout to another load balancer gives the first one back.
func TestExternalRouterChangeGivesTheOldLoadBalancerBack(t *testing.T) {
	hap, ngx := &fakeLB{}, &fakeLB{}
	x := NewExternal(ExternalConfig{New: func(_ string, r spec.Router) (Driver, error) {
		if r.NGINX != nil {
			return ngx, nil
		}
		return hap, nil
	}})
	_ = x.Apply(context.Background(), shop(true), table(t, 1, 5000))
	r := shop(true)
	r.Spec.TrafficRouting.Router = spec.Router{NGINX: &spec.NGINXRouter{IncludeFile: "/x/shop.conf"}}
	_ = x.Apply(context.Background(), r, table(t, 2, 0))
	if !hap.removed || ngx.held == nil {
		t.Fatalf("HAProxy removed %v, NGINX given the routing %v", hap.removed, ngx.held != nil)
	}
	// Settings that drive the same objects (a longer timeout) keep them.
	r2 := shop(true)
	r2.Spec.TrafficRouting.Router.HAProxy.Timeout = spec.Duration(5 * time.Second)
	hap2 := &fakeLB{}
	y := NewExternal(ExternalConfig{New: func(string, spec.Router) (Driver, error) { return hap2, nil }})
	_ = y.Apply(context.Background(), shop(true), table(t, 1, 5000))
	_ = y.Apply(context.Background(), r2, table(t, 2, 5000))
	if hap2.removed {
		t.Fatal("a timeout change removed the routing of the same backends")
	}
}

// A router whose driver cannot be built stays reported, and nothing is
// pushed through the driver of the settings it replaced.
func TestExternalFactoryErrorDropsTheStaleDriver(t *testing.T) {
	lb := &fakeLB{}
	x := NewExternal(ExternalConfig{New: func(_ string, r spec.Router) (Driver, error) {
		if r.HAProxy.StableBackend == "web,stable" {
			return nil, errors.New("bad backend name")
		}
		return lb, nil
	}})
	_ = x.Apply(context.Background(), shop(true), table(t, 1, 100))
	r := shop(true)
	r.Spec.TrafficRouting.Router.HAProxy.StableBackend = "web,stable"
	_ = x.Apply(context.Background(), r, table(t, 2, 100))
	_ = x.SetTable("shop", table(t, 3, 2000))
	if x.ServeError("shop") == nil {
		t.Fatal("the factory's error was cleared")
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.held != nil && lb.held.Weight == 2000 {
		t.Fatal("the weight went through the replaced driver")
	}
}

// A follower drives nothing and echoes the desired routing, so the
// leader's view of the replicas is not held at weight 0.
func TestExternalFollowerEchoesTheDesiredRouting(t *testing.T) {
	x := NewExternal(ExternalConfig{New: func(string, spec.Router) (Driver, error) { return &fakeLB{}, nil }, Active: func() bool { return false }})
	_ = x.Apply(context.Background(), shop(true), table(t, 1, 2000))
	if gen, w, _, err := x.Observed("shop"); err != nil || gen != 1 || w != 2000 {
		t.Fatalf("a follower observes %d %d %v", gen, w, err)
	}
}
