package telemetry

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/prometheus/client_golang/prometheus"
)

// encoded is the canonical form of c, for comparisons.
func encoded(t *testing.T, c Counters) []byte {
	t.Helper()
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// traffic observes a mix of answers, failed attempts and proxy errors.
func traffic(v *VersionStats, n int, seed time.Duration) {
	for i := range n {
		code := 200
		if i%7 == 0 {
			code = 503
		}
		v.Observe(code, seed+time.Duration(i)*time.Millisecond)
	}
	v.FailedAttempt(ErrorConnect)
	v.ProxyError(ErrorTimeout)
	v.ObserveMirror(200, time.Millisecond) // not shared
}

func exportOne(t *testing.T, rs *RolloutStats, role spec.Role, version string) (int64, Counters) {
	t.Helper()
	own := rs.ExportOwn()
	rev := own.Revision
	for _, v := range own.Versions {
		if v.Role == role && v.Version == version {
			return rev, v.Counters
		}
	}
	return rev, Counters{}
}

func TestImportAddsUpAndExportStaysOwn(t *testing.T) {
	clk := newFakeClock()
	follower := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	leader := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	follower.StartRevision(3)
	leader.StartRevision(3)

	traffic(follower.Version(spec.RoleCanary, "v2"), 50, 5*time.Millisecond)
	traffic(leader.Version(spec.RoleCanary, "v2"), 30, 40*time.Millisecond)
	leaderOwnRev, leaderOwn := exportOne(t, leader, spec.RoleCanary, "v2")

	rev, theirs := exportOne(t, follower, spec.RoleCanary, "v2")
	if rev != 3 || theirs.Requests() != 50 {
		t.Fatalf("follower export: revision %d, %d requests; want 3, 50", rev, theirs.Requests())
	}
	if !leader.Import(rev, spec.RoleCanary, "v2", theirs) {
		t.Fatal("Import into the current revision refused")
	}

	// Every reader of the leader sees both replicas.
	got := leader.Version(spec.RoleCanary, "v2").Summary(0)
	if got.Requests != 80 || got.FailedAttempts != 2 || got.Errors != 8+5 {
		t.Errorf("merged summary: %d requests, %d failed attempts, %d errors; want 80, 2, 13", got.Requests, got.FailedAttempts, got.Errors)
	}
	wantHist := follower.Version(spec.RoleCanary, "v2").Summary(0).Histogram
	wantHist = wantHist.Merge(exportedHist(leaderOwn))
	if !equalSnapshots(got.Histogram, wantHist) {
		t.Errorf("merged histogram differs from the bucket-wise sum")
	}

	// The leader's own export is unchanged by the import: a leader that
	// becomes a follower never republishes what it imported.
	rev, own := exportOne(t, leader, spec.RoleCanary, "v2")
	if rev != leaderOwnRev || !bytes.Equal(encoded(t, own), encoded(t, leaderOwn)) {
		t.Errorf("export after import = %d requests, want the leader's own %d", own.Requests(), leaderOwn.Requests())
	}
}

func exportedHist(c Counters) Snapshot { return c.s.hist }

func equalSnapshots(a, b Snapshot) bool {
	if a.count != b.count || a.sumMicros != b.sumMicros || len(a.idx) != len(b.idx) {
		return false
	}
	for i := range a.idx {
		if a.idx[i] != b.idx[i] || a.n[i] != b.n[i] {
			return false
		}
	}
	return true
}

func TestImportRefusesOtherRevisions(t *testing.T) {
	clk := newFakeClock()
	src := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	traffic(src.Version(spec.RoleStable, "v1"), 10, time.Millisecond)
	_, c := exportOne(t, src, spec.RoleStable, "v1")

	dst := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	dst.StartRevision(2)
	for _, rev := range []int64{1, 3} {
		if dst.Import(rev, spec.RoleStable, "v1", c) {
			t.Errorf("Import of revision %d accepted at revision 2", rev)
		}
	}
	// Nor into a version this process does not route (not created here,
	// or removed when the revision started): it is never created.
	if dst.Import(2, spec.RoleStable, "v1", c) {
		t.Errorf("Import into an unknown version accepted")
	}
	if len(dst.Versions()) != 0 {
		t.Errorf("a refused import created a version")
	}
	v := dst.Version(spec.RoleStable, "v1")
	if !dst.Import(2, spec.RoleStable, "v1", c) {
		t.Fatal("Import of the current revision refused")
	}
	if s := v.Summary(0); s.Requests != 10 {
		t.Errorf("imported requests = %d, want 10", s.Requests)
	}
}

func TestExportStartsWithTheRevision(t *testing.T) {
	clk := newFakeClock()
	rs := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	v := rs.Version(spec.RoleCanary, "v2")
	traffic(v, 20, time.Millisecond)
	other := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	traffic(other.Version(spec.RoleCanary, "v2"), 5, time.Millisecond)
	_, theirs := exportOne(t, other, spec.RoleCanary, "v2")
	rs.Import(0, spec.RoleCanary, "v2", theirs)

	clk.Set(at(time.Minute))
	rs.StartRevision(1)
	if own := rs.ExportOwn(); own.Revision != 1 || !own.Started.Equal(at(time.Minute)) || len(own.Versions) != 0 {
		t.Errorf("export right after StartRevision: revision %d started %v, %d versions; want 1, %v, none", own.Revision, own.Started, len(own.Versions), at(time.Minute))
	}
	v.Observe(200, time.Millisecond)
	v.ProxyError(ErrorOverflow)
	_, c := exportOne(t, rs, spec.RoleCanary, "v2")
	if c.Requests() != 1 || c.errors[ErrorOverflow.index()] != 1 || c.errors[ErrorTimeout.index()] != 0 {
		t.Errorf("export = %d requests, errors %v; want 1 request and one overflow", c.Requests(), c.errors)
	}
	// Imports of the old revision are not subtracted from the new one.
	rs.Import(1, spec.RoleCanary, "v2", theirs)
	if _, c := exportOne(t, rs, spec.RoleCanary, "v2"); c.Requests() != 1 {
		t.Errorf("export after a new import = %d requests, want 1", c.Requests())
	}
}

func TestImportReachesMetrics(t *testing.T) {
	clk := newFakeClock()
	src := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	traffic(src.Version(spec.RoleCanary, "v2"), 14, time.Millisecond)
	_, c := exportOne(t, src, spec.RoleCanary, "v2")

	reg := NewRegistry(Options{Now: clk.Now})
	reg.Rollout("shop").Version(spec.RoleCanary, "v2")
	reg.Rollout("shop").Import(0, spec.RoleCanary, "v2", c)
	pr := prometheus.NewRegistry()
	pr.MustRegister(reg.Collector())
	s := series(t, pr)
	for key, want := range map[string]float64{
		"coalmine_requests_total{code=200,role=canary,rollout=shop,source=live,version=v2}": 12,
		"coalmine_requests_total{code=503,role=canary,rollout=shop,source=live,version=v2}": 2,
		"coalmine_request_duration_seconds{role=canary,rollout=shop,version=v2}_count":      14,
		"coalmine_proxy_errors_total{kind=connect,role=canary,rollout=shop}":                1,
		"coalmine_proxy_errors_total{kind=timeout,role=canary,rollout=shop}":                1,
	} {
		if s[key] != want {
			t.Errorf("%s = %v, want %v", key, s[key], want)
		}
	}
}

func TestCountersSince(t *testing.T) {
	clk := newFakeClock()
	rs := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	v := rs.Version(spec.RoleCanary, "v2")
	traffic(v, 10, time.Millisecond)
	_, before := exportOne(t, rs, spec.RoleCanary, "v2")
	traffic(v, 10, 2*time.Second) // new buckets too
	_, after := exportOne(t, rs, spec.RoleCanary, "v2")

	d, ok := after.Since(before)
	if !ok || d.Requests() != 10 || d.errors[ErrorConnect.index()] != 1 {
		t.Errorf("after.Since(before) = %d requests, %v, ok %v; want 10, one connect, true", d.Requests(), d.errors, ok)
	}
	if !bytes.Equal(encoded(t, before.add(d)), encoded(t, after)) {
		t.Errorf("before + delta != after")
	}
	if _, ok := before.Since(after); ok {
		t.Errorf("counters going backwards accepted")
	}
	if d, ok := after.Since(after); !ok || !d.IsZero() {
		t.Errorf("c.Since(c) = %v, %v; want zero, true", d, ok)
	}
	// Only one counter lower (an error kind) is enough to refuse.
	lower := after
	lower.errors[ErrorTimeout.index()]++
	if _, ok := after.Since(lower); ok {
		t.Errorf("a higher error count accepted as earlier")
	}
}

func TestCountersBinary(t *testing.T) {
	clk := newFakeClock()
	rs := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	v := rs.Version(spec.RoleCanary, "v2")
	traffic(v, 300, 0) // the underflow bucket (0 latency) too
	v.Observe(42, time.Hour*2)
	_, c := exportOne(t, rs, spec.RoleCanary, "v2")
	data := encoded(t, c)

	var back Counters
	if err := back.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encoded(t, back), data) || back.Requests() != c.Requests() || !equalSnapshots(back.s.hist, c.s.hist) || back.errors != c.errors {
		t.Errorf("round trip changed the counters")
	}
	var zero Counters
	if err := zero.UnmarshalBinary(encoded(t, Counters{})); err != nil || !zero.IsZero() {
		t.Errorf("zero round trip: %v, zero %v", err, zero.IsZero())
	}

	// Every truncation, and a few corruptions, are refused with an error.
	for n := range len(data) {
		if err := new(Counters).UnmarshalBinary(data[:n]); !errors.Is(err, errCorruptCounters) {
			t.Fatalf("truncated to %d bytes: err = %v", n, err)
		}
	}
	for name, bad := range map[string][]byte{
		"other format":  append([]byte{2}, data[1:]...),
		"trailing byte": append(bytes.Clone(data), 0),
		"zero count":    {1, 0, 1, 5, 0, 0, 0},
		"index repeats": {1, 0, 2, 5, 1, 0, 1, 0, 0},
		"code too high": {1, 0, 1, 0xd8, 0x04, 1, 0, 0}, // slot 600
		"huge gap":      {1, 0, 2, 5, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 0, 0},
		"many entries":  {1, 0, 0xff, 0xff, 0x03},
	} {
		if err := new(Counters).UnmarshalBinary(bad); !errors.Is(err, errCorruptCounters) {
			t.Errorf("%s: err = %v, want a corruption error", name, err)
		}
	}
}

// TestShareConcurrently imports and exports while the hot path observes
// (run with -race): at the end the own export is exactly what was
// observed locally and the summary is own plus imported.
func TestShareConcurrently(t *testing.T) {
	clk := newFakeClock()
	src := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	traffic(src.Version(spec.RoleCanary, "v2"), 3, time.Millisecond)
	_, c := exportOne(t, src, spec.RoleCanary, "v2")

	rs := NewRegistry(Options{Now: clk.Now}).Rollout("shop")
	v := rs.Version(spec.RoleCanary, "v2")
	const observers, perObserver, imports = 4, 5000, 200
	var wg sync.WaitGroup
	for range observers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perObserver {
				v.Observe(200, time.Duration(i)*time.Microsecond)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last int64
		for range imports {
			rs.Import(0, spec.RoleCanary, "v2", c)
			_, own := exportOne(t, rs, spec.RoleCanary, "v2")
			if own.Requests() < last {
				t.Errorf("own export went down from %d to %d", last, own.Requests())
			}
			last = own.Requests()
		}
	}()
	wg.Wait()
	if _, own := exportOne(t, rs, spec.RoleCanary, "v2"); own.Requests() != observers*perObserver {
		t.Errorf("own export = %d requests, want %d", own.Requests(), observers*perObserver)
	}
	if s := v.Summary(0); s.Requests != observers*perObserver+imports*3 {
		t.Errorf("summary = %d requests, want %d", s.Requests, observers*perObserver+imports*3)
	}
}

func TestLookupDoesNotCreate(t *testing.T) {
	reg := NewRegistry(Options{})
	if _, ok := reg.Lookup("shop"); ok {
		t.Errorf("Lookup found a rollout never created")
	}
	if len(reg.Rollouts()) != 0 {
		t.Errorf("Lookup created a rollout")
	}
	rs := reg.Rollout("shop")
	if got, ok := reg.Lookup("shop"); !ok || got != rs {
		t.Errorf("Lookup = %p, %v; want %p, true", got, ok, rs)
	}
}
