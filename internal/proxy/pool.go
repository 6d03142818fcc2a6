package proxy

import (
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// pool is the set of endpoints of one version in one role.
type pool struct {
	headerName    []byte // version response header name, nil when off
	target        route.Target
	version       string
	versionHeader []byte // value of the version response header
	endpoints     []*endpoint
	roundRobin    bool
	next          atomic.Uint64
	limit         *limiter
	outlier       outlier
	stats         *telemetry.VersionStats
	// grpcErrors are the gRPC codes that count as the version's errors.
	grpcErrors telemetry.GRPCErrors
}

// available reports whether any endpoint can take traffic.
func (p *pool) available(now int64) bool {
	for _, ep := range p.endpoints {
		if ep.available(now) {
			return true
		}
	}
	return false
}

// pick chooses an available endpoint other than skip, or nil. Least-requests
// uses the power of two choices: two candidates, the less busy wins, which
// is nearly as good as scanning all and needs no lock.
func (p *pool) pick(now int64, skip *endpoint) *endpoint {
	n := len(p.endpoints)
	if n == 1 {
		ep := p.endpoints[0]
		if ep != skip && ep.available(now) {
			return ep
		}
		return nil
	}
	start := int(p.next.Add(1) % uint64(n))
	var first *endpoint
	for i := 0; i < n; i++ {
		ep := p.endpoints[(start+i)%n]
		if ep == skip || !ep.available(now) {
			continue
		}
		if p.roundRobin {
			return ep
		}
		if first == nil {
			first = ep
			continue
		}
		if ep.inflight.Load() < first.inflight.Load() {
			return ep
		}
		return first
	}
	return first
}

// pickAny chooses any endpoint other than skip, available or not: the panic
// mode for a version whose every endpoint is marked down, because a health
// verdict alone never refuses all traffic. It prefers the least busy.
func (p *pool) pickAny(skip *endpoint) *endpoint {
	n := len(p.endpoints)
	start := int(p.next.Add(1) % uint64(n)) // ties rotate, as in pick
	var best *endpoint
	for i := 0; i < n; i++ {
		ep := p.endpoints[(start+i)%n]
		if ep != skip && (best == nil || ep.inflight.Load() < best.inflight.Load()) {
			best = ep
		}
	}
	return best
}

// limiter bounds concurrent upstream requests of a version, with a bounded
// queue of waiters. The fast path is one atomic add; only requests over the
// limit touch the wake channel.
type limiter struct {
	max, maxPending int64
	wait            time.Duration
	active          atomic.Int64
	pending         atomic.Int64
	wake            chan struct{}
}

func newLimiter(maxConns, maxPending int, wait time.Duration) *limiter {
	if maxPending < 0 {
		maxPending = 0
	}
	return &limiter{max: int64(maxConns), maxPending: int64(maxPending), wait: wait, wake: make(chan struct{}, 1)}
}

// tryAcquire takes a slot without waiting.
func (l *limiter) tryAcquire() bool {
	if l.active.Add(1) <= l.max {
		return true
	}
	l.active.Add(-1)
	return false
}

// acquire takes a slot, waiting up to l.wait when the pending queue has room.
func (l *limiter) acquire() bool {
	if l.tryAcquire() {
		return true
	}
	if l.pending.Add(1) > l.maxPending {
		l.pending.Add(-1)
		return false
	}
	defer l.pending.Add(-1)
	deadline := time.NewTimer(l.wait)
	defer deadline.Stop()
	// A release between our check and the select may be missed when the
	// wake token is taken by another waiter, so we also re-check on a short
	// tick; waiting is the overload path, not the hot path.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if l.tryAcquire() {
			return true
		}
		select {
		case <-l.wake:
		case <-tick.C:
		case <-deadline.C:
			return false
		}
	}
}

func (l *limiter) release() {
	l.active.Add(-1)
	if l.pending.Load() > 0 {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// release frees what a request to ep held: the version's slot and the
// endpoint's in-flight count.
func (p *pool) release(ep *endpoint) {
	ep.inflight.Add(-1)
	p.limit.release()
}
