package router

import (
	"context"
	"errors"
	"sync"
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
		return lb.held != nil && lb.held.Generation == 4 && lb.held.Weight == 1000
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
