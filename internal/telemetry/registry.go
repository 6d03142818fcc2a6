package telemetry

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Default window settings.
const (
	DefaultWindowResolution = time.Second
	DefaultWindowRetention  = 10 * time.Minute
)

// Options configures a Registry. The zero value is usable.
type Options struct {
	// Now returns the current time; time.Now when nil. Summaries read it to
	// place their windows, Run to stamp its ticks.
	Now func() time.Time
	// WindowResolution is how often Run records a window snapshot, and so
	// the granularity of sliding windows: a window of length w covers
	// between w and w + WindowResolution. Default 1s.
	WindowResolution time.Duration
	// WindowRetention is the longest sliding window that stays exact;
	// longer windows reach back to the revision start instead. At least
	// WindowResolution. Default 10m.
	WindowRetention time.Duration
	// Logger receives the panics that Run recovers; slog.Default() when nil.
	Logger *slog.Logger
}

// Registry holds the telemetry of all rollouts. It is safe for concurrent
// use: lookups are lock-free (copy-on-write maps behind atomic pointers),
// creation and removal take a mutex. The proxy should still look its
// *VersionStats up once per routing-table build, not per request.
type Registry struct {
	now       func() time.Time
	res       time.Duration
	retention time.Duration
	log       *slog.Logger

	mu       sync.Mutex // serialises changes of the rollout map
	rollouts atomic.Pointer[map[string]*RolloutStats]

	tickMu   sync.Mutex // serialises Tick; guards lastTick and scratch
	lastTick time.Time
	scratch  scratch

	// newTicker is replaced by tests to drive Run deterministically.
	newTicker func(time.Duration) (<-chan time.Time, func())
}

// NewRegistry returns an empty registry; zero option fields get defaults.
func NewRegistry(opts Options) *Registry {
	r := &Registry{
		now:       opts.Now,
		res:       opts.WindowResolution,
		retention: opts.WindowRetention,
		log:       opts.Logger,
		newTicker: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		},
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.res <= 0 {
		r.res = DefaultWindowResolution
	}
	if r.retention <= 0 {
		r.retention = DefaultWindowRetention
	}
	if r.retention < r.res {
		r.retention = r.res
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	empty := map[string]*RolloutStats{}
	r.rollouts.Store(&empty)
	return r
}

// Rollout returns the statistics of the named rollout, creating them on
// first use.
func (r *Registry) Rollout(name string) *RolloutStats {
	if rs, ok := (*r.rollouts.Load())[name]; ok {
		return rs
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.rollouts.Load()
	if rs, ok := old[name]; ok {
		return rs
	}
	rs := newRolloutStats(r, name, r.now())
	next := make(map[string]*RolloutStats, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = rs
	r.rollouts.Store(&next)
	return rs
}

// Lookup returns the statistics of the named rollout if they exist,
// without creating them (a rollout this process does not serve must not
// appear on /metrics because someone asked). Lock-free.
func (r *Registry) Lookup(name string) (*RolloutStats, bool) {
	rs, ok := (*r.rollouts.Load())[name]
	return rs, ok
}

// Remove forgets a rollout: its series leave the exposition and its memory
// is released once nothing holds its *RolloutStats or *VersionStats.
// Observations through pointers still held go nowhere.
func (r *Registry) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.rollouts.Load()
	if _, ok := old[name]; !ok {
		return
	}
	next := make(map[string]*RolloutStats, len(old))
	for k, v := range old {
		if k != name {
			next[k] = v
		}
	}
	r.rollouts.Store(&next)
}

// Rollouts returns the current rollouts in no particular order.
func (r *Registry) Rollouts() []*RolloutStats {
	m := *r.rollouts.Load()
	out := make([]*RolloutStats, 0, len(m))
	for _, rs := range m {
		out = append(out, rs)
	}
	return out
}

// Tick records a window snapshot of every version at time now. Run calls it
// every WindowResolution; tests call it directly with a fake time. Ticks
// closer than WindowResolution/2 to the previous one are ignored, which
// bounds the number of snapshots kept per version.
func (r *Registry) Tick(now time.Time) {
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	if !r.lastTick.IsZero() && now.Sub(r.lastTick) < r.res/2 {
		return
	}
	r.lastTick = now
	at := now.UnixNano()
	for _, rs := range *r.rollouts.Load() {
		for _, v := range rs.versions.Load().list {
			v.tick(at, r.retention, &r.scratch)
		}
	}
}

// Run ticks every WindowResolution until ctx is done; it is the owned
// background sampler that makes sliding windows work. The caller owns the
// goroutine: run it with `go` and wait for it to return after cancelling
// ctx. A panic inside a tick is logged and the sampler continues, so a bug
// here never takes the proxy down.
func (r *Registry) Run(ctx context.Context) {
	c, stop := r.newTicker(r.res)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c:
			r.safeTick()
		}
	}
}

func (r *Registry) safeTick() {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("telemetry window tick panicked", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	r.Tick(r.now())
}
