package telemetry

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// fakeClock is the injected time source; tests move it by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func at(d time.Duration) time.Time { return t0.Add(d) }

type obs struct {
	code    int
	latency time.Duration
}

func TestSummaryFigures(t *testing.T) {
	tests := []struct {
		name    string
		obs     []obs
		elapsed time.Duration
		want    Summary // Histogram and Span not compared here
	}{
		{
			name:    "no data",
			elapsed: 10 * time.Second,
			want:    Summary{},
		},
		{
			name: "mixed codes",
			obs: []obs{
				{200, 10 * time.Millisecond}, {200, 20 * time.Millisecond}, {201, 30 * time.Millisecond},
				{404, 40 * time.Millisecond}, {500, 50 * time.Millisecond}, {502, 60 * time.Millisecond},
				{503, 70 * time.Millisecond}, {200, 80 * time.Millisecond},
			},
			elapsed: 4 * time.Second,
			want: Summary{
				Requests: 8, Errors: 3, ErrorRate: 3.0 / 8, SuccessRate: 5.0 / 8, RPS: 2,
				P50:   BucketValue(BucketKey(0.040)) * 1e3,
				P90:   BucketValue(BucketKey(0.070)) * 1e3,
				P95:   BucketValue(BucketKey(0.070)) * 1e3,
				P99:   BucketValue(BucketKey(0.070)) * 1e3,
				Mean:  45,
				Codes: []CodeCount{{200, 3}, {201, 1}, {404, 1}, {500, 1}, {502, 1}, {503, 1}},
			},
		},
		{
			name:    "all errors",
			obs:     []obs{{504, time.Second}, {599, time.Second}},
			elapsed: time.Second,
			want: Summary{
				Requests: 2, Errors: 2, ErrorRate: 1, SuccessRate: 0, RPS: 2,
				P50: BucketValue(0) * 1e3, P90: BucketValue(0) * 1e3, P95: BucketValue(0) * 1e3, P99: BucketValue(0) * 1e3,
				Mean: 1000, Codes: []CodeCount{{504, 1}, {599, 1}},
			},
		},
		{
			name:    "invalid codes are counted as code 0, not as errors",
			obs:     []obs{{0, time.Millisecond}, {600, time.Millisecond}, {99, time.Millisecond}, {200, time.Millisecond}},
			elapsed: time.Second,
			want: Summary{
				Requests: 4, ErrorRate: 0, SuccessRate: 1, RPS: 4,
				P50: BucketValue(BucketKey(0.001)) * 1e3, P90: BucketValue(BucketKey(0.001)) * 1e3,
				P95: BucketValue(BucketKey(0.001)) * 1e3, P99: BucketValue(BucketKey(0.001)) * 1e3,
				Mean: 1, Codes: []CodeCount{{0, 3}, {200, 1}},
			},
		},
		{
			name:    "zero and negative latencies",
			obs:     []obs{{200, 0}, {200, -time.Second}},
			elapsed: time.Second,
			want:    Summary{Requests: 2, SuccessRate: 1, RPS: 2, Codes: []CodeCount{{200, 2}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			v := NewRegistry(Options{Now: clk.Now}).Rollout("shop").Version(spec.RoleCanary, "v2")
			for _, o := range tc.obs {
				v.Observe(o.code, o.latency)
			}
			clk.Set(at(tc.elapsed))
			got := v.Summary(0)
			if got.Span != tc.elapsed {
				t.Errorf("Span = %v, want %v", got.Span, tc.elapsed)
			}
			if got.Histogram.Count() != uint64(len(tc.obs)) {
				t.Errorf("Histogram.Count = %d, want %d", got.Histogram.Count(), len(tc.obs))
			}
			got.Histogram, got.Span = Snapshot{}, 0
			assertSummary(t, got, tc.want)
		})
	}
}

func assertSummary(t *testing.T, got, want Summary) {
	t.Helper()
	if got.Requests != want.Requests || got.Errors != want.Errors {
		t.Errorf("requests/errors = %d/%d, want %d/%d", got.Requests, got.Errors, want.Requests, want.Errors)
	}
	for _, f := range []struct {
		name      string
		got, want float64
	}{
		{"ErrorRate", got.ErrorRate, want.ErrorRate},
		{"SuccessRate", got.SuccessRate, want.SuccessRate},
		{"RPS", got.RPS, want.RPS},
		{"P50", got.P50, want.P50},
		{"P90", got.P90, want.P90},
		{"P95", got.P95, want.P95},
		{"P99", got.P99, want.P99},
		{"Mean", got.Mean, want.Mean},
	} {
		if math.IsNaN(f.got) || !relClose(f.got, f.want, 1e-12) {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
	if !slices.Equal(got.Codes, want.Codes) {
		t.Errorf("Codes = %v, want %v", got.Codes, want.Codes)
	}
}

// windowCase runs one scenario: traffic is one request per second during
// the seconds listed by busy (code 500 in odd seconds), with a Tick every
// WindowResolution up to until, then a Summary at now.
type windowCase struct {
	name       string
	opts       Options
	createAt   time.Duration // when the version first appears
	revisionAt time.Duration // StartRevision time; 0 = none
	busy       func(sec int) bool
	until      int // last tick, seconds after t0
	now        time.Duration
	window     time.Duration
	want       Summary // Requests, Errors, RPS and Span compared
}

func always(int) bool { return true }

func TestSlidingWindows(t *testing.T) {
	tests := []windowCase{
		{
			name: "window on tick boundaries", busy: always, until: 100,
			now: 100 * time.Second, window: 10 * time.Second,
			want: Summary{Requests: 10, Errors: 5, RPS: 1, Span: 10 * time.Second},
		},
		{
			name: "window between ticks starts at the snapshot before it", busy: always, until: 100,
			now: 100*time.Second + 500*time.Millisecond, window: 10 * time.Second,
			want: Summary{Requests: 10, Errors: 5, RPS: 10 / 10.5, Span: 10500 * time.Millisecond},
		},
		{
			name: "since revision", busy: always, until: 100,
			now: 100 * time.Second, window: 0,
			want: Summary{Requests: 100, Errors: 50, RPS: 1, Span: 100 * time.Second},
		},
		{
			name: "window longer than the revision is clamped to it", busy: always, until: 30,
			now: 30 * time.Second, window: time.Minute,
			want: Summary{Requests: 30, Errors: 15, RPS: 1, Span: 30 * time.Second},
		},
		{
			name: "window beyond retention reaches back to the revision start",
			opts: Options{WindowRetention: 30 * time.Second}, busy: always, until: 100,
			now: 100 * time.Second, window: time.Minute,
			want: Summary{Requests: 100, Errors: 50, RPS: 1, Span: 100 * time.Second},
		},
		{
			name: "window equal to retention is still exact",
			opts: Options{WindowRetention: 30 * time.Second}, busy: always, until: 100,
			now: 100 * time.Second, window: 30 * time.Second,
			want: Summary{Requests: 30, Errors: 15, RPS: 1, Span: 30 * time.Second},
		},
		{
			name: "idle period keeps an exact window start", busy: func(s int) bool { return s <= 50 }, until: 100,
			now: 100 * time.Second, window: 10 * time.Second,
			want: Summary{Requests: 0, Span: 10 * time.Second},
		},
		{
			name: "window reaching into an idle period", busy: func(s int) bool { return s <= 50 || s > 95 }, until: 100,
			now: 100 * time.Second, window: 20 * time.Second,
			want: Summary{Requests: 5, Errors: 2, RPS: 0.25, Span: 20 * time.Second},
		},
		{
			name: "version created inside the window", createAt: 60 * time.Second,
			busy: func(s int) bool { return s > 60 }, until: 100,
			now: 100 * time.Second, window: time.Minute,
			want: Summary{Requests: 40, Errors: 20, RPS: 40.0 / 60, Span: time.Minute},
		},
		{
			name: "version created before the window", createAt: 60 * time.Second,
			busy: func(s int) bool { return s > 60 }, until: 100,
			now: 100 * time.Second, window: 20 * time.Second,
			want: Summary{Requests: 20, Errors: 10, RPS: 1, Span: 20 * time.Second},
		},
		{
			name: "revision restarts the since-revision window", revisionAt: 70 * time.Second,
			busy: always, until: 100, now: 100 * time.Second, window: 0,
			want: Summary{Requests: 30, Errors: 15, RPS: 1, Span: 30 * time.Second},
		},
		{
			name: "sliding windows stop at the revision start", revisionAt: 70 * time.Second,
			busy: always, until: 100, now: 100 * time.Second, window: time.Minute,
			want: Summary{Requests: 30, Errors: 15, RPS: 1, Span: 30 * time.Second},
		},
		{
			name: "sliding window inside the revision", revisionAt: 70 * time.Second,
			busy: always, until: 100, now: 100 * time.Second, window: 10 * time.Second,
			want: Summary{Requests: 10, Errors: 5, RPS: 1, Span: 10 * time.Second},
		},
		{
			name: "without ticks a window falls back to the last known state", busy: always, until: 0,
			now: 50 * time.Second, window: 10 * time.Second,
			// The version appeared at 0.999s: zero is known until then.
			want: Summary{Requests: 50, Errors: 25, RPS: 50 / 49.001, Span: 49001 * time.Millisecond},
		},
		{
			name: "coarser resolution", opts: Options{WindowResolution: 5 * time.Second}, busy: always, until: 100,
			now: 100 * time.Second, window: 12 * time.Second,
			want: Summary{Requests: 15, Errors: 7, RPS: 1, Span: 15 * time.Second},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			tc.opts.Now = clk.Now
			reg := NewRegistry(tc.opts)
			rs := reg.Rollout("shop")
			var v *VersionStats
			secs := int(tc.now / time.Second)
			for s := 1; s <= secs; s++ {
				// Second s: the request arrives in (s−1, s], then the tick.
				clk.Set(at(time.Duration(s)*time.Second - time.Millisecond))
				if v == nil && time.Duration(s)*time.Second > tc.createAt {
					v = rs.Version(spec.RoleCanary, "v2")
				}
				if v != nil && tc.busy(s) {
					code := 200
					if s%2 == 1 {
						code = 500
					}
					v.Observe(code, time.Duration(s)*time.Millisecond)
				}
				clk.Set(at(time.Duration(s) * time.Second))
				if res := max(tc.opts.WindowResolution, time.Second); s <= tc.until && s%int(res/time.Second) == 0 {
					reg.Tick(clk.Now())
				}
				if tc.revisionAt > 0 && time.Duration(s)*time.Second == tc.revisionAt {
					rs.StartRevision(2)
				}
			}
			clk.Set(at(tc.now))
			got := v.Summary(tc.window)
			if got.Requests != tc.want.Requests || got.Errors != tc.want.Errors {
				t.Errorf("requests/errors = %d/%d, want %d/%d", got.Requests, got.Errors, tc.want.Requests, tc.want.Errors)
			}
			if got.Span != tc.want.Span {
				t.Errorf("Span = %v, want %v", got.Span, tc.want.Span)
			}
			if !relClose(got.RPS, tc.want.RPS, 1e-12) {
				t.Errorf("RPS = %v, want %v", got.RPS, tc.want.RPS)
			}
			if got.Histogram.Count() != uint64(got.Requests) {
				t.Errorf("Histogram.Count = %d, Requests = %d", got.Histogram.Count(), got.Requests)
			}
		})
	}
}

func TestWindowHistogramIsExactDelta(t *testing.T) {
	clk := newFakeClock()
	reg := NewRegistry(Options{Now: clk.Now})
	v := reg.Rollout("shop").Version(spec.RoleStable, "v1")
	var late []time.Duration
	for s := 1; s <= 20; s++ {
		clk.Set(at(time.Duration(s) * time.Second))
		for i := range 50 {
			d := time.Duration(s*1000+i*37) * time.Microsecond
			v.Observe(200, d)
			if s > 15 {
				late = append(late, d)
			}
		}
		reg.Tick(clk.Now())
	}
	got := v.Summary(5 * time.Second).Histogram
	want := snapshotOf(late)
	if !slices.Equal(rows(got), rows(want)) || got.Sum() != want.Sum() {
		t.Errorf("window histogram differs from the histogram of its observations:\n got %v\nwant %v", rows(got), rows(want))
	}
}

func TestSnapshotMemoryIsBounded(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		ticks   int
		every   time.Duration
		busy    bool
		maxKept int
	}{
		{"busy version at the defaults", Options{}, 1500, time.Second, true, 602},
		{"ticks faster than half the resolution are ignored", Options{WindowRetention: time.Minute}, 1000, 100 * time.Millisecond, true, 122},
		{"regular ticks", Options{WindowRetention: time.Minute}, 1000, time.Second, true, 62},
		{"jittery ticks at half the resolution", Options{WindowRetention: time.Minute}, 1000, 500 * time.Millisecond, true, 122},
		{"idle version keeps one entry", Options{}, 1500, time.Second, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			tc.opts.Now = clk.Now
			reg := NewRegistry(tc.opts)
			v := reg.Rollout("shop").Version(spec.RoleStable, "v1")
			for i := 1; i <= tc.ticks; i++ {
				if tc.busy {
					v.Observe(200, time.Duration(i)*time.Microsecond)
				}
				clk.Set(at(time.Duration(i) * tc.every))
				reg.Tick(clk.Now())
			}
			v.mu.Lock()
			n := v.entries.len()
			v.mu.Unlock()
			if n > tc.maxKept {
				t.Errorf("%d window entries kept, want at most %d", n, tc.maxKept)
			}
		})
	}
	// The fixed part stated in the VersionStats comment.
	if size := unsafe.Sizeof(VersionStats{}); size > 17*1024+512 {
		t.Errorf("VersionStats is %d bytes, the documented bound is ≈17 KiB", size)
	}
}

func TestTickIgnoresTimeGoingBack(t *testing.T) {
	clk := newFakeClock()
	reg := NewRegistry(Options{Now: clk.Now})
	v := reg.Rollout("shop").Version(spec.RoleStable, "v1")
	for s := 1; s <= 10; s++ {
		v.Observe(200, time.Millisecond)
		reg.Tick(at(time.Duration(s) * time.Second))
	}
	reg.Tick(at(3 * time.Second)) // ignored
	clk.Set(at(10 * time.Second))
	if got := v.Summary(5 * time.Second); got.Requests != 5 || got.Span != 5*time.Second {
		t.Errorf("after a stale tick: %d requests over %v, want 5 over 5s", got.Requests, got.Span)
	}
}

func TestRegistryLookups(t *testing.T) {
	reg := NewRegistry(Options{})
	rs := reg.Rollout("shop")
	if reg.Rollout("shop") != rs {
		t.Fatal("Rollout did not return the existing rollout")
	}
	stable := rs.Version(spec.RoleStable, "v1")
	canary := rs.Version(spec.RoleCanary, "v2")
	promoted := rs.Version(spec.RoleStable, "v2")
	if rs.Version(spec.RoleCanary, "v2") != canary || promoted == canary {
		t.Fatal("Version must be keyed by role and version")
	}
	var got []string
	for _, v := range rs.Versions() {
		got = append(got, string(v.Role())+"/"+v.Version()+"@"+v.Rollout())
	}
	if want := []string{"stable/v1@shop", "canary/v2@shop", "stable/v2@shop"}; !slices.Equal(got, want) {
		t.Errorf("Versions = %v, want %v", got, want)
	}
	rs.RemoveVersion(spec.RoleStable, "v1")
	rs.RemoveVersion(spec.RoleStable, "nope")
	if n := len(rs.Versions()); n != 2 {
		t.Errorf("%d versions after RemoveVersion, want 2", n)
	}
	if rs.Version(spec.RoleStable, "v1") == stable {
		t.Error("a removed version must come back fresh")
	}
	if n := len(reg.Rollouts()); n != 1 {
		t.Errorf("%d rollouts, want 1", n)
	}
	reg.Remove("shop")
	reg.Remove("nope")
	if n := len(reg.Rollouts()); n != 0 {
		t.Errorf("%d rollouts after Remove, want 0", n)
	}
	if reg.Rollout("shop") == rs {
		t.Error("a removed rollout must come back fresh")
	}
}

func TestRevision(t *testing.T) {
	clk := newFakeClock()
	rs := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	if rev, started := rs.Revision(); rev != 0 || !started.Equal(t0) {
		t.Errorf("Revision = %d, %v; want 0, creation time", rev, started)
	}
	clk.Set(at(time.Minute))
	rs.StartRevision(7)
	if rev, started := rs.Revision(); rev != 7 || !started.Equal(at(time.Minute)) {
		t.Errorf("Revision = %d, %v; want 7, %v", rev, started, at(time.Minute))
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	reg := NewRegistry(Options{})
	rs := reg.Rollout("shop")
	v := rs.Version(spec.RoleCanary, "v2")
	tests := []struct {
		name string
		f    func()
	}{
		{"Observe", func() { v.Observe(200, 3*time.Millisecond) }},
		{"ObserveMirror", func() { v.ObserveMirror(503, 3*time.Millisecond) }},
		{"ProxyError", func() { v.ProxyError(ErrorTimeout) }},
		{"MirrorDropped", func() { rs.MirrorDropped(DropPoolFull) }},
		{"existing Version lookup", func() { reg.Rollout("shop").Version(spec.RoleCanary, "v2") }},
	}
	for _, tc := range tests {
		if a := testing.AllocsPerRun(1000, tc.f); a != 0 {
			t.Errorf("%s allocates %v times per call", tc.name, a)
		}
	}
	clk := newFakeClock()
	reg = NewRegistry(Options{Now: clk.Now})
	reg.Rollout("shop").Version(spec.RoleCanary, "v2")
	i := 0
	idleTick := func() {
		i++
		reg.Tick(at(time.Duration(i) * time.Second))
	}
	if a := testing.AllocsPerRun(100, idleTick); a != 0 {
		t.Errorf("a tick of an idle version allocates %v times", a)
	}
}

func TestRun(t *testing.T) {
	clk := newFakeClock()
	reg := NewRegistry(Options{Now: clk.Now})
	ticks := make(chan time.Time) // unbuffered: a send returns once Run took it
	stopped := false
	reg.newTicker = func(d time.Duration) (<-chan time.Time, func()) {
		if d != DefaultWindowResolution {
			t.Errorf("ticker period %v, want %v", d, DefaultWindowResolution)
		}
		return ticks, func() { stopped = true }
	}
	v := reg.Rollout("shop").Version(spec.RoleCanary, "v2")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reg.Run(ctx)
	}()
	for s := 1; s <= 20; s++ {
		v.Observe(200, time.Millisecond)
		clk.Set(at(time.Duration(s) * time.Second))
		ticks <- time.Time{} // Run stamps ticks with Options.Now
		// Run takes this one only after the previous tick is done; at the
		// same time it is then ignored (closer than WindowResolution/2).
		ticks <- time.Time{}
	}
	cancel()
	<-done
	if !stopped {
		t.Error("Run did not stop its ticker")
	}
	if got := v.Summary(5 * time.Second); got.Requests != 5 || got.Span != 5*time.Second {
		t.Errorf("window after Run ticks: %d requests over %v, want 5 over 5s", got.Requests, got.Span)
	}
}

func TestKinds(t *testing.T) {
	for _, k := range ErrorKinds() {
		if !k.Valid() {
			t.Errorf("ErrorKind %q not valid", k)
		}
	}
	for _, r := range DropReasons() {
		if !r.Valid() {
			t.Errorf("DropReason %q not valid", r)
		}
	}
	if ErrorKind("typo").Valid() || DropReason("typo").Valid() {
		t.Error("unknown kinds must not be valid")
	}
	if len(ErrorKinds()) != numErrorKinds-1 || len(DropReasons()) != numDropReasons-1 {
		t.Error("kind lists and counter slots disagree")
	}
}
