package istio

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// counting counts the adapter's reads of the VirtualService.
type counting struct {
	*Driver
	observes atomic.Int64
}

func (c *counting) Observe(ctx context.Context) (router.Applied, error) {
	c.observes.Add(1)
	return c.Driver.Observe(ctx)
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

// Through the adapter the controller uses: a weight Istio can only round
// is reported as asked (so the step completes), resyncs of an applied
// VirtualService write nothing, and one that lost coalmine's annotation
// is given the routing again.
func TestThroughTheExternalAdapter(t *testing.T) {
	s, d := hostSetup(t)
	cd := &counting{Driver: d}
	x := router.NewExternal(router.ExternalConfig{
		New:    func(string, spec.Router) (router.Driver, error) { return cd, nil },
		Resync: 5 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); x.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	r := &spec.Rollout{}
	r.Metadata.Name = "shop"
	r.Spec.Stable.Version = "v1"
	r.Spec.Canary = &spec.VersionSpec{Version: "v2"}
	r.Spec.TrafficRouting.Router.Istio = &hostCfg
	tb, err := route.Compile(route.Config{Rollout: "shop", Generation: 4, Weight: 2550})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Apply(ctx, r, tb); err != nil {
		t.Fatal(err)
	}
	gen, w, avail, err := x.Observed("shop")
	if err != nil || gen != 4 || w != 2550 || !avail {
		t.Fatalf("Observed = %d %d %v %v, want 4 2550 true", gen, w, avail, err)
	}
	if got := dests(byName(t, s, "primary")); got != "shop-stable:8080=74,shop-canary.prod.svc.cluster.local:8080=26" {
		t.Errorf("routes %s", got)
	}
	// Let it resync a good many times: nothing is written.
	from := cd.observes.Load()
	waitFor(t, "20 resyncs", func() bool { return cd.observes.Load() >= from+20 })
	if s.Writes() != 1 {
		t.Errorf("%d writes after resyncs of an applied VirtualService, want 1", s.Writes())
	}
	// Someone strips coalmine's annotations (and resets the weights).
	o := s.Get(VirtualServices, ns, "shop")
	delete(o["metadata"].(map[string]any), "annotations")
	s.Put(VirtualServices, o)
	waitFor(t, "the routing given again", func() bool {
		g, _, _, err := x.Observed("shop")
		return err == nil && g == 4 && s.Writes() == 2
	})
}
