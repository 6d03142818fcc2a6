package rollout

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
)

// blockFirstProvider blocks its first query until the query's context
// ends (a leader steps down mid-measurement), then answers at once.
type blockFirstProvider struct {
	mu    sync.Mutex
	calls int
}

func (p *blockFirstProvider) Query(ctx context.Context, _ provider.Query) (provider.Result, error) {
	p.mu.Lock()
	p.calls++
	n := p.calls
	p.mu.Unlock()
	if n == 1 {
		<-ctx.Done()
		return provider.Result{}, ctx.Err()
	}
	return provider.Result{Value: 0.999}, nil
}

func (p *blockFirstProvider) n() int { p.mu.Lock(); defer p.mu.Unlock(); return p.calls }

// TestMeasurementInFlightAcrossRunRestart: Run stops (this replica steps
// down) while a measurement's query is in flight, then starts again (it
// leads again) during the same analysis run: the metric is measured again.
func TestMeasurementInFlightAcrossRunRestart(t *testing.T) {
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := newFakeClock()
	prov := &blockFirstProvider{}
	c := New(Config{Router: newFakeRouter(st), Store: st, Now: clock.Now, Providers: Providers{Web: prov}})
	ctx := context.Background()
	if err := c.Load(ctx, []spec.Rollout{analysisRollout()}, []spec.AnalysisTemplate{successRateTemplate()}, true); err != nil {
		t.Fatal(err)
	}
	// Lead #1.
	ctx1, stop1 := context.WithCancel(ctx)
	done1 := make(chan struct{})
	go func() { defer close(done1); c.Run(ctx1) }()
	deadline := time.Now().Add(5 * time.Second)
	for prov.n() < 1 && time.Now().Before(deadline) {
		_ = c.Reconcile(ctx, "shop")
		time.Sleep(20 * time.Millisecond)
	}
	if prov.n() != 1 {
		t.Fatalf("no measurement started (calls %d)", prov.n())
	}
	stop1() // step down mid-measurement
	<-done1
	// Lead #2.
	ctx2, stop2 := context.WithCancel(ctx)
	defer stop2()
	go c.Run(ctx2)
	for range 20 {
		clock.Advance(10 * time.Second)
		_ = c.Reconcile(ctx, "shop")
		time.Sleep(20 * time.Millisecond)
	}
	if prov.n() == 1 {
		t.Errorf("after Run restarted, the measurement whose query was cancelled was never taken again")
	}
}
