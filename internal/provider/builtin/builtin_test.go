package builtin

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// fakeClock is the one clock shared by the registry and the provider.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a rollout "shop" with stable v1 and canary v2 and this
// history (ticks every time the clock moves, as Registry.Run would):
//
//	t0            canary 8×200 @10ms + 2×500 @100ms; stable 100×200 @20ms
//	t0+2m         canary 4×200 @10ms + 1×502 @10ms;  stable 10×200 @20ms
//	now = t0+2m1s
type fixture struct {
	clk    *fakeClock
	reg    *telemetry.Registry
	p      *Provider
	logs   *bytes.Buffer
	canary *telemetry.VersionStats
	stable *telemetry.VersionStats
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := &fakeClock{t: t0}
	reg := telemetry.NewRegistry(telemetry.Options{Now: clk.Now})
	logs := &bytes.Buffer{}
	p, err := New(Config{Telemetry: reg, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rs := reg.Rollout("shop")
	f := &fixture{clk: clk, reg: reg, p: p, logs: logs,
		canary: rs.Version(spec.RoleCanary, "v2"), stable: rs.Version(spec.RoleStable, "v1")}
	reg.Tick(t0)
	observe(f.canary, 8, 200, 10*time.Millisecond)
	observe(f.canary, 2, 500, 100*time.Millisecond)
	observe(f.stable, 100, 200, 20*time.Millisecond)
	reg.Tick(clk.Advance(time.Second))
	reg.Tick(clk.Advance(2*time.Minute - time.Second))
	observe(f.canary, 4, 200, 10*time.Millisecond)
	observe(f.canary, 1, 502, 10*time.Millisecond)
	observe(f.stable, 10, 200, 20*time.Millisecond)
	reg.Tick(clk.Advance(time.Second))
	return f
}

func observe(v *telemetry.VersionStats, n, code int, latency time.Duration) {
	for range n {
		v.Observe(code, latency)
	}
}

func window(d time.Duration) *spec.Duration {
	w := spec.Duration(d)
	return &w
}

func (f *fixture) query(t *testing.T, w *spec.Duration, since time.Time) (provider.Result, error) {
	t.Helper()
	return f.p.Query(context.Background(), provider.Query{
		Rollout: "shop", Metric: "errors",
		Spec:  spec.Provider{Builtin: &spec.BuiltinProvider{Window: w}},
		Since: since,
	})
}

// role returns the S object of one role from a result.
func role(t *testing.T, res provider.Result, name string) map[string]any {
	t.Helper()
	v, ok := res.Value.(map[string]any)
	if !ok {
		t.Fatalf("Value is %T, want map[string]any", res.Value)
	}
	s, ok := v[name].(map[string]any)
	if !ok {
		t.Fatalf("Value[%q] is %T, want map[string]any", name, v[name])
	}
	return s
}

func TestQuerySpans(t *testing.T) {
	tests := []struct {
		name   string
		window *spec.Duration
		since  time.Duration // before now; 0 = zero Since
		// want: canary and stable requests/errors and the span covered.
		canaryReq, canaryErr, stableReq int64
		span                            time.Duration
	}{
		{name: "window 1m sees only the second batch", window: window(time.Minute),
			canaryReq: 5, canaryErr: 1, stableReq: 10, span: time.Minute},
		{name: "window 5m reaches back to the revision start", window: window(5 * time.Minute),
			canaryReq: 15, canaryErr: 3, stableReq: 110, span: 2*time.Minute + time.Second},
		{name: "window 30m is clamped to the 10m retention", window: window(30 * time.Minute),
			canaryReq: 15, canaryErr: 3, stableReq: 110, span: 2*time.Minute + time.Second},
		{name: "no window, no Since: since the revision",
			canaryReq: 15, canaryErr: 3, stableReq: 110, span: 2*time.Minute + time.Second},
		{name: "no window: since the run started 30s ago", since: 30 * time.Second,
			canaryReq: 5, canaryErr: 1, stableReq: 10, span: 30 * time.Second},
		{name: "no window: run older than the retention reads since the revision", since: 20 * time.Minute,
			canaryReq: 15, canaryErr: 3, stableReq: 110, span: 2*time.Minute + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			var since time.Time
			if tt.since > 0 {
				since = f.clk.Now().Add(-tt.since)
			}
			res, err := f.query(t, tt.window, since)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			c, s := role(t, res, "canary"), role(t, res, "stable")
			if c["requests"] != tt.canaryReq || c["errors"] != tt.canaryErr || s["requests"] != tt.stableReq {
				t.Errorf("canary requests/errors = %v/%v, stable requests = %v; want %d/%d, %d",
					c["requests"], c["errors"], s["requests"], tt.canaryReq, tt.canaryErr, tt.stableReq)
			}
			v := res.Versions
			if v == nil {
				t.Fatal("Versions is nil")
			}
			if v.Canary.Requests != tt.canaryReq || v.Canary.Errors != tt.canaryErr || v.Stable.Requests != tt.stableReq {
				t.Errorf("Versions = canary %d/%d stable %d, want %d/%d %d",
					v.Canary.Requests, v.Canary.Errors, v.Stable.Requests, tt.canaryReq, tt.canaryErr, tt.stableReq)
			}
			if v.Canary.Span != tt.span || v.Stable.Span != tt.span {
				t.Errorf("spans = %s/%s, want %s", v.Canary.Span, v.Stable.Span, tt.span)
			}
			var n uint64
			for _, b := range v.Canary.Latency {
				n += b.Count
			}
			if int64(n) != tt.canaryReq {
				t.Errorf("canary histogram holds %d observations, want %d", n, tt.canaryReq)
			}
		})
	}
}

func TestQueryValueFields(t *testing.T) {
	f := newFixture(t)
	res, err := f.query(t, window(time.Minute), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	c := role(t, res, "canary")
	wantKeys := []string{"requests", "errors", "connectFailures", "errorRate", "successRate", "rps", "p50", "p90", "p95", "p99", "mean"}
	if len(c) != len(wantKeys) {
		t.Errorf("S has %d fields, want %d: %v", len(c), len(wantKeys), c)
	}
	for _, k := range wantKeys[3:] {
		if _, ok := c[k].(float64); !ok {
			t.Errorf("%s is %T, want float64", k, c[k])
		}
	}
	for _, k := range wantKeys[:3] {
		if _, ok := c[k].(int64); !ok {
			t.Errorf("%s is %T, want int64", k, c[k])
		}
	}
	// The last minute: 5 canary requests, all 10 ms, one 502.
	near := func(got any, want, rel float64) bool {
		g := got.(float64)
		return math.Abs(g-want) <= rel*math.Abs(want)
	}
	checks := []struct {
		key       string
		want, rel float64
	}{
		{"errorRate", 0.2, 1e-12}, {"successRate", 0.8, 1e-12}, {"rps", 5.0 / 60, 1e-12},
		{"p50", 10, 0.01}, {"p99", 10, 0.01}, {"mean", 10, 1e-9},
	}
	for _, c2 := range checks {
		if !near(c[c2.key], c2.want, c2.rel) {
			t.Errorf("canary %s = %v, want %v (±%g relative)", c2.key, c[c2.key], c2.want, c2.rel)
		}
	}
	s := role(t, res, "stable")
	if !near(s["p90"], 20, 0.01) || s["errorRate"] != 0.0 || s["successRate"] != 1.0 {
		t.Errorf("stable = %v, want p90 ≈ 20ms, errorRate 0, successRate 1", s)
	}
	lat := res.Versions.Canary.Latency
	if len(lat) != 1 {
		t.Fatalf("canary latency buckets = %+v, want one", lat)
	}
	b := lat[0]
	if b.Count != 5 || !(b.Lower < 0.010 && 0.010 <= b.Upper) || math.Abs(b.Value-0.010) > 0.0001 ||
		b.Key != int32(telemetry.BucketKey(0.010)) {
		t.Errorf("canary bucket = %+v, want 5 observations around 0.010 s with key %d", b, telemetry.BucketKey(0.010))
	}
}

func TestQueryWholeRevisionLatency(t *testing.T) {
	f := newFixture(t)
	res, err := f.query(t, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// 13 of 15 canary requests at 10 ms, 2 at 100 ms: p50 10 ms, p99 100 ms,
	// mean (13·10 + 2·100)/15 = 22 ms.
	c := role(t, res, "canary")
	if p := c["p50"].(float64); math.Abs(p-10) > 0.1 {
		t.Errorf("p50 = %v, want ≈ 10", p)
	}
	if p := c["p99"].(float64); math.Abs(p-100) > 1 {
		t.Errorf("p99 = %v, want ≈ 100", p)
	}
	if m := c["mean"].(float64); math.Abs(m-22) > 1e-9 {
		t.Errorf("mean = %v, want 22", m)
	}
	keys := res.Versions.Canary.Latency
	for i := 1; i < len(keys); i++ {
		if keys[i-1].Key >= keys[i].Key {
			t.Fatalf("buckets not in increasing key order: %+v", keys)
		}
	}
}

func TestClampLoggedOnce(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		if _, err := f.query(t, window(time.Hour), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(f.logs.String(), "longer than the telemetry keeps"); n != 1 {
		t.Errorf("clamp warning logged %d times, want 1:\n%s", n, f.logs)
	}
	if !strings.Contains(f.logs.String(), "rollout=shop") || !strings.Contains(f.logs.String(), "window=1h0m0s") {
		t.Errorf("warning lacks rollout or window: %s", f.logs)
	}
}

func TestNoData(t *testing.T) {
	t.Run("idle canary with a busy stable", func(t *testing.T) {
		f := newFixture(t)
		f.reg.Tick(f.clk.Advance(2 * time.Minute))
		observe(f.stable, 7, 200, time.Millisecond)
		f.reg.Tick(f.clk.Advance(time.Second))
		res, err := f.query(t, window(time.Minute), time.Time{})
		if !errors.Is(err, provider.ErrNoData) {
			t.Fatalf("err = %v, want ErrNoData", err)
		}
		for _, want := range []string{`"errors"`, `"shop"`, "canary answered no requests in the last 1m0s"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		// The result still says what was seen.
		if s := role(t, res, "stable"); s["requests"] != int64(7) {
			t.Errorf("stable requests = %v, want 7", s["requests"])
		}
		if c := role(t, res, "canary"); c["requests"] != int64(0) || c["p99"] != 0.0 || c["errorRate"] != 0.0 {
			t.Errorf("empty canary = %v, want zeros", c)
		}
	})
	t.Run("idle stable with a busy canary is data", func(t *testing.T) {
		f := newFixture(t)
		f.reg.Tick(f.clk.Advance(2 * time.Minute))
		observe(f.canary, 3, 200, time.Millisecond)
		f.reg.Tick(f.clk.Advance(time.Second))
		res, err := f.query(t, window(time.Minute), time.Time{})
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		if s := role(t, res, "stable"); s["requests"] != int64(0) {
			t.Errorf("stable requests = %v, want 0", s["requests"])
		}
	})
	t.Run("run that just started", func(t *testing.T) {
		f := newFixture(t)
		f.reg.Tick(f.clk.Advance(5 * time.Second))
		_, err := f.query(t, nil, f.clk.Now())
		if !errors.Is(err, provider.ErrNoData) {
			t.Fatalf("err = %v, want ErrNoData", err)
		}
		if !strings.Contains(err.Error(), "since the analysis run started") {
			t.Errorf("error %q does not say which span it read", err)
		}
	})
	t.Run("unknown rollout is not created", func(t *testing.T) {
		f := newFixture(t)
		res, err := f.p.Query(context.Background(), provider.Query{Rollout: "ghost", Metric: "m",
			Spec: spec.Provider{Builtin: &spec.BuiltinProvider{}}})
		if !errors.Is(err, provider.ErrNoData) {
			t.Fatalf("err = %v, want ErrNoData", err)
		}
		if res.Versions == nil || res.Versions.Canary.Requests != 0 {
			t.Errorf("Versions = %+v, want empty samples", res.Versions)
		}
		for _, rs := range f.reg.Rollouts() {
			if rs.Name() == "ghost" {
				t.Error("the query created telemetry for rollout ghost")
			}
		}
	})
}

func TestRevisionBoundsTheSpan(t *testing.T) {
	f := newFixture(t)
	f.reg.Rollout("shop").StartRevision(2)
	observe(f.canary, 6, 200, time.Millisecond)
	f.reg.Tick(f.clk.Advance(time.Second))
	for _, w := range []*spec.Duration{nil, window(5 * time.Minute)} {
		res, err := f.query(t, w, t0)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Versions.Canary.Requests; got != 6 {
			t.Errorf("window %v: canary requests = %d, want 6 (only the new revision)", w, got)
		}
		if got := res.Versions.Canary.Span; got != time.Second {
			t.Errorf("window %v: span = %s, want 1s", w, got)
		}
	}
}

func TestVersionsOfOneRoleAreMerged(t *testing.T) {
	f := newFixture(t)
	other := f.reg.Rollout("shop").Version(spec.RoleCanary, "v3")
	observe(other, 5, 503, 50*time.Millisecond)
	f.reg.Tick(f.clk.Advance(time.Second))
	res, err := f.query(t, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Versions.Canary; v.Requests != 20 || v.Errors != 8 {
		t.Errorf("canary = %d requests, %d errors; want 20, 8", v.Requests, v.Errors)
	}
	if c := role(t, res, "canary"); c["errorRate"] != 0.4 {
		t.Errorf("errorRate = %v, want 0.4", c["errorRate"])
	}
}

func TestQueryErrors(t *testing.T) {
	f := newFixture(t)
	_, err := f.p.Query(context.Background(), provider.Query{Rollout: "shop", Metric: "m",
		Spec: spec.Provider{Web: &spec.WebProvider{URL: "http://x"}}})
	if err == nil || errors.Is(err, provider.ErrNoData) || !strings.Contains(err.Error(), "no builtin provider") {
		t.Errorf("wrong spec kind: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = f.p.Query(ctx, provider.Query{Rollout: "shop", Metric: "m", Spec: spec.Provider{Builtin: &spec.BuiltinProvider{}}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v, want context.Canceled", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a registry succeeded")
	}
}

func TestChooseSpan(t *testing.T) {
	now := t0.Add(time.Hour)
	const ret = 10 * time.Minute
	tests := []struct {
		name    string
		window  *spec.Duration
		since   time.Time
		want    time.Duration
		clamped bool
	}{
		{"window", window(time.Minute), time.Time{}, time.Minute, false},
		{"window ignores Since", window(time.Minute), now.Add(-5 * time.Minute), time.Minute, false},
		{"window at retention", window(ret), time.Time{}, ret, false},
		{"window over retention", window(ret + time.Second), time.Time{}, ret, true},
		{"no Since", nil, time.Time{}, 0, false},
		{"Since 3m ago", nil, now.Add(-3 * time.Minute), 3 * time.Minute, false},
		{"Since at retention", nil, now.Add(-ret), ret, false},
		{"Since beyond retention", nil, now.Add(-ret - time.Second), 0, false},
		{"Since now", nil, now, time.Nanosecond, false},
		{"Since in the future", nil, now.Add(time.Minute), time.Nanosecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := chooseSpan(tt.window, tt.since, now, ret)
			if got.window != tt.want || got.clamped != tt.clamped || got.describe == "" {
				t.Errorf("chooseSpan = %+v, want window %s clamped %v", got, tt.want, tt.clamped)
			}
		})
	}
}

// TestConnectFailures: attempts the canary refused, answered by a retry on
// stable, are the canary's errors unless the metric says to ignore them
// (SPEC §3: a connect failure is that version's failure).
func TestConnectFailures(t *testing.T) {
	f := newFixture(t)
	for range 5 {
		f.canary.FailedAttempt(telemetry.ErrorConnect)
	}
	f.reg.Tick(f.clk.Advance(time.Second))
	for _, tt := range []struct {
		mode                 string
		requests, errors, cf int64
	}{
		{"", 15 + 5, 3 + 5, 5},
		{spec.ConnectFailuresCount, 15 + 5, 3 + 5, 5},
		{spec.ConnectFailuresIgnore, 15, 3, 5},
	} {
		res, err := f.p.Query(context.Background(), provider.Query{Rollout: "shop", Metric: "errors",
			Spec: spec.Provider{Builtin: &spec.BuiltinProvider{ConnectFailures: tt.mode}}})
		if err != nil {
			t.Fatal(err)
		}
		c := role(t, res, "canary")
		if c["requests"] != tt.requests || c["errors"] != tt.errors || c["connectFailures"] != tt.cf {
			t.Errorf("connectFailures %q: canary %v, want requests %d errors %d connectFailures %d", tt.mode, c, tt.requests, tt.errors, tt.cf)
		}
		if res.Versions.Canary.Requests != tt.requests || res.Versions.Canary.Errors != tt.errors {
			t.Errorf("connectFailures %q: judge sample %+v, want %d/%d", tt.mode, res.Versions.Canary, tt.errors, tt.requests)
		}
	}
}
