// Package builtin answers analysis queries from the proxy's own per-version
// telemetry (SPEC §5.3 `builtin: {window}`), so a rollout can be judged
// without any external metrics system.
//
// Which time span a query covers:
//
//   - window set: the sliding window of that length, ending now. Sliding
//     windows exist only as far back as the telemetry keeps snapshots
//     (WindowRetention, 10 min by default); a longer window is clamped to
//     the retention, logged once per rollout and metric, and Sample.Span
//     says what was really covered. A window never reaches back before the
//     revision started (the telemetry clamps it).
//   - window omitted, the run's start (Query.Since) known: since the run
//     started, as a sliding window of length now − Since while that fits
//     in the retention (within one WindowResolution, the snapshot
//     granularity); once the run is older than the retention, since the
//     revision started. The revision is a superset of the run, so what a
//     run sees only ever grows, which the sequential judges need.
//   - window omitted, Since zero: since the revision started.
//
// No data: a query whose canary answered no requests in the span returns
// the full Result and an error wrapping provider.ErrNoData, because every
// builtin condition and judge is about the canary, and a canary with no
// traffic must neither pass (its error rate reads 0) nor fail. A stable
// version without requests is not no-data: the result is returned as is,
// with stable's numbers all 0 and requests 0 for conditions to check; the
// judges apply their own per-version minimum sample sizes.
package builtin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// Config configures a Provider.
type Config struct {
	// Telemetry is the proxy's registry; required.
	Telemetry *telemetry.Registry
	// Now is the registry's clock (telemetry.Options.Now); time.Now when
	// nil. It places "since the run started" windows.
	Now func() time.Time
	// Retention is the registry's telemetry.Options.WindowRetention, the
	// longest sliding window it keeps; telemetry.DefaultWindowRetention
	// when 0.
	Retention time.Duration
	// Logger receives the warning about a window clamped to Retention;
	// slog.Default() when nil.
	Logger *slog.Logger
}

// Provider reads a telemetry.Registry. It is safe for concurrent use.
type Provider struct {
	reg       *telemetry.Registry
	now       func() time.Time
	retention time.Duration
	log       *slog.Logger
	warned    sync.Map // rollout + "\x00" + metric → struct{}: clamp already logged
}

var _ provider.Provider = (*Provider)(nil)

// New returns a builtin provider over cfg.Telemetry.
func New(cfg Config) (*Provider, error) {
	if cfg.Telemetry == nil {
		return nil, errors.New("builtin provider: a telemetry registry is required")
	}
	p := &Provider{reg: cfg.Telemetry, now: cfg.Now, retention: cfg.Retention, log: cfg.Logger}
	if p.now == nil {
		p.now = time.Now
	}
	if p.retention <= 0 {
		p.retention = telemetry.DefaultWindowRetention
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	return p, nil
}

// Query summarises the canary and the stable versions of q.Rollout over
// the span described in the package documentation. Result.Value is
// {"canary": S, "stable": S} with S the fields of SPEC §5.3 (requests and
// errors int64; rates, rps and latencies in milliseconds float64), and
// Result.Versions holds the raw counts and latency histograms. When the
// canary has no requests, the Result is complete and the error wraps
// provider.ErrNoData.
func (p *Provider) Query(ctx context.Context, q provider.Query) (provider.Result, error) {
	b := q.Spec.Builtin
	if b == nil {
		return provider.Result{}, fmt.Errorf("builtin query for metric %q of rollout %q: the metric has no builtin provider", q.Metric, q.Rollout)
	}
	if err := ctx.Err(); err != nil {
		return provider.Result{}, fmt.Errorf("builtin query for metric %q of rollout %q: %w", q.Metric, q.Rollout, err)
	}
	sp := chooseSpan(b.Window, q.Since, p.now(), p.retention)
	if sp.clamped {
		p.warnClamped(q, b.Window.D())
	}
	var canary, stable []telemetry.Summary
	if rs := p.lookup(q.Rollout); rs != nil {
		for _, v := range rs.Versions() {
			switch v.Role() {
			case spec.RoleCanary:
				canary = append(canary, v.Summary(sp.window))
			case spec.RoleStable:
				stable = append(stable, v.Summary(sp.window))
			}
		}
	}
	countFailures := b.CountsConnectFailures()
	c, s := aggregate(canary, countFailures), aggregate(stable, countFailures)
	res := provider.Result{
		Value:    map[string]any{"canary": c.value(), "stable": s.value()},
		Versions: &provider.Versions{Canary: c.sample(), Stable: s.sample()},
	}
	if c.requests == 0 {
		return res, fmt.Errorf("builtin query for metric %q of rollout %q: the canary answered no requests %s: %w",
			q.Metric, q.Rollout, sp.describe, provider.ErrNoData)
	}
	return res, nil
}

// lookup finds a rollout's statistics without creating them, so that a
// query for a rollout the proxy never served leaves no empty series on
// /metrics.
func (p *Provider) lookup(name string) *telemetry.RolloutStats {
	for _, rs := range p.reg.Rollouts() {
		if rs.Name() == name {
			return rs
		}
	}
	return nil
}

func (p *Provider) warnClamped(q provider.Query, window time.Duration) {
	if _, seen := p.warned.LoadOrStore(q.Rollout+"\x00"+q.Metric, struct{}{}); seen {
		return
	}
	p.log.Warn("builtin window is longer than the telemetry keeps; using the retention instead",
		"rollout", q.Rollout, "metric", q.Metric, "window", window, "retention", p.retention)
}

// span is the telemetry window a query reads: a sliding window of length
// window, or since the revision started when window is 0.
type span struct {
	window   time.Duration
	clamped  bool
	describe string // for messages: "in the last 1m0s"
}

// chooseSpan maps a builtin spec and the run's start to a telemetry window
// (see the package documentation). It is pure.
func chooseSpan(window *spec.Duration, since, now time.Time, retention time.Duration) span {
	if window != nil {
		w := window.D()
		if w > retention {
			return span{window: retention, clamped: true,
				describe: fmt.Sprintf("in the last %s (window %s clamped to the telemetry's retention)", retention, w)}
		}
		return span{window: w, describe: "in the last " + w.String()}
	}
	if since.IsZero() {
		return span{describe: "since the revision started"}
	}
	d := now.Sub(since)
	if d > retention {
		return span{describe: "since the revision started (the run is older than the telemetry's " + retention.String() + " of sliding windows)"}
	}
	// A run that starts now covers at least the current snapshot interval;
	// a zero window would mean "since the revision" to the telemetry.
	d = max(d, time.Nanosecond)
	return span{window: d, describe: "since the analysis run started " + d.Round(time.Millisecond).String() + " ago"}
}

// agg is one role's traffic summed over its versions (normally one: the
// controller removes versions no longer routed when a revision starts).
type agg struct {
	requests, errors int64
	// connectFailures are attempts the version refused that a retry
	// elsewhere answered; counted in requests and errors unless the metric
	// says connectFailures: ignore.
	connectFailures int64
	span            time.Duration
	hist            telemetry.Snapshot
}

func aggregate(sums []telemetry.Summary, countFailures bool) agg {
	var a agg
	for _, s := range sums {
		a.requests += s.Requests
		a.errors += s.Errors
		a.connectFailures += s.FailedAttempts
		a.span = max(a.span, s.Span)
		a.hist = a.hist.Merge(s.Histogram)
	}
	if countFailures {
		a.requests += a.connectFailures
		a.errors += a.connectFailures
	}
	return a
}

// value is the S object conditions see (SPEC §5.3), latencies in
// milliseconds; all zero when there were no requests.
func (a agg) value() map[string]any {
	s := map[string]any{
		"requests": a.requests, "errors": a.errors, "connectFailures": a.connectFailures,
		"errorRate": 0.0, "successRate": 0.0, "rps": 0.0,
		"p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0,
	}
	if a.requests == 0 {
		return s
	}
	errorRate := float64(a.errors) / float64(a.requests)
	s["errorRate"] = errorRate
	s["successRate"] = 1 - errorRate
	if a.span > 0 {
		s["rps"] = float64(a.requests) / a.span.Seconds()
	}
	s["p50"] = a.hist.Quantile(0.50) * 1e3
	s["p90"] = a.hist.Quantile(0.90) * 1e3
	s["p95"] = a.hist.Quantile(0.95) * 1e3
	s["p99"] = a.hist.Quantile(0.99) * 1e3
	s["mean"] = a.hist.Mean() * 1e3
	return s
}

// sample is the raw data judges need, with the histogram in seconds.
func (a agg) sample() provider.Sample {
	s := provider.Sample{Requests: a.requests, Errors: a.errors, Span: a.span}
	for b := range a.hist.Buckets() {
		s.Latency = append(s.Latency, provider.Bucket{
			Key: int32(b.Key), Lower: b.Lower, Upper: b.Upper, Value: b.Value, Count: b.Count,
		})
	}
	return s
}
