package alb

import (
	"context"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// TestThroughTheAdapter drives the ALB driver the way serve does, through
// router.External with a fast resync: the routing is applied and read
// back, resyncs that find it in place write nothing, a weight changed by
// hand on the ALB is put back, and removing the rollout sends all traffic
// to stable.
func TestThroughTheAdapter(t *testing.T) {
	f := newFakeELB(t)
	cfg := spec.ALBRouter{RuleARN: mainRuleARN}
	x := router.NewExternal(router.ExternalConfig{
		New:    func(string, spec.Router) (router.Driver, error) { return f.driver(t, cfg), nil },
		Resync: 10 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); x.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	r := &spec.Rollout{}
	r.Metadata.Name = "shop"
	c := cfg
	c.ListenerARN, c.StableTargetGroupARN, c.CanaryTargetGroupARN = listenerARN, stableTG, canaryTG
	r.Spec.TrafficRouting.Router.ALB = &c
	r.Spec.Stable = spec.VersionSpec{Version: "v1"}
	r.Spec.Canary = &spec.VersionSpec{Version: "v2"}
	exact := "yes"
	tb, err := route.Compile(route.Config{Rollout: "shop", Revision: 1, Generation: 7, Weight: 500,
		HeaderRoutes: []spec.HeaderRoute{{Name: "beta", To: spec.RoleCanary, Match: []spec.HeaderMatch{{HeaderName: "X-Canary", HeaderValue: spec.StringMatch{Exact: &exact}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Apply(ctx, r, tb); err != nil {
		t.Fatal(err)
	}
	gen, w, avail, err := x.Observed("shop")
	if err != nil || gen != 7 || w != 500 || !avail {
		t.Fatalf("Observed = %d %d %v %v, want 7 500 true", gen, w, avail, err)
	}
	// Let several resyncs run: they read, and write nothing.
	f.take()
	waitFor(t, "five resyncs", func() bool { return count(peek(f), "DescribeTargetHealth") >= 5 })
	if got := writesIn(f.take()); len(got) != 0 {
		t.Fatalf("resyncs wrote %v", got)
	}
	// Someone moves the weights in the console: the next resync puts them back.
	f.mu.Lock()
	f.rules[mainRuleARN].actions = []any{normaliseAction(forwardTo(stableTG))}
	f.mu.Unlock()
	waitFor(t, "the weights restored", func() bool {
		got := f.weights(mainRuleARN)
		return got["shop-canary"] == "50" && got["shop-stable"] == "950"
	})
	waitFor(t, "generation 7 observed again", func() bool { g, _, _, err := x.Observed("shop"); return err == nil && g == 7 })
	if err := x.Remove(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if got := f.weights(mainRuleARN); got["shop-canary"] != "0" || got["shop-stable"] != "999" {
		t.Fatalf("after Remove: %v", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tags) != 0 {
		t.Fatalf("header-route rules left after Remove: %v", f.tags)
	}
}

func peek(f *fakeELB) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
