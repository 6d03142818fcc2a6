package telemetry

import (
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// seriesFixture starts revision 1 at t0+300ms and ticks at t0+k s+300ms for
// k = 1..ticks; before tick k the stable version answers k requests and the
// canary one, a 500 when k is 3.
func seriesFixture(t *testing.T, ticks int, opts Options) (*Registry, *RolloutStats) {
	t.Helper()
	clk := newFakeClock()
	opts.Now = clk.Now
	r := NewRegistry(opts)
	rs := r.Rollout("shop")
	clk.Set(at(300 * time.Millisecond))
	rs.StartRevision(1)
	stable := rs.Version(spec.RoleStable, "v1")
	canary := rs.Version(spec.RoleCanary, "v2")
	for k := 1; k <= ticks; k++ {
		for range k {
			stable.Observe(200, 10*time.Millisecond)
		}
		code := 200
		if k == 3 {
			code = 500
		}
		canary.Observe(code, 40*time.Millisecond)
		now := at(time.Duration(k)*time.Second + 300*time.Millisecond)
		clk.Set(now)
		r.Tick(now)
	}
	return r, rs
}

func requestsOf(pts []SeriesPoint) []int64 {
	out := make([]int64, len(pts))
	for i, p := range pts {
		out[i] = p.Requests
	}
	return out
}

func TestSeriesSteps(t *testing.T) {
	_, rs := seriesFixture(t, 5, Options{})
	s := rs.Series(time.Time{}, time.Second)
	if s.Revision != 1 || !s.RevisionStart.Equal(at(300*time.Millisecond)) {
		t.Errorf("revision %d from %s, want 1 from t0+300ms", s.Revision, s.RevisionStart)
	}
	// The grid is whole seconds: from the first after the revision start to
	// the last at or before the latest snapshot.
	if !s.From.Equal(at(time.Second)) || !s.To.Equal(at(5*time.Second)) || s.Step != time.Second {
		t.Fatalf("from %s to %s step %s, want t0+1s to t0+5s step 1s", s.From, s.To, s.Step)
	}
	if len(s.Versions) != 2 || s.Versions[0].Role != spec.RoleStable || s.Versions[1].Version != "v2" {
		t.Fatalf("versions %+v", s.Versions)
	}
	// The state at a grid time is the snapshot before it: the point ending
	// at t0+2s holds what was observed before the tick at t0+1.3s.
	stable, canary := s.Versions[0].Points, s.Versions[1].Points
	if got, want := requestsOf(stable), []int64{1, 2, 3, 4}; !equalInts(got, want) {
		t.Errorf("stable requests per step %v, want %v", got, want)
	}
	for i, p := range stable {
		if want := at(time.Duration(i+2) * time.Second); !p.End.Equal(want) {
			t.Errorf("point %d ends %s, want %s", i, p.End, want)
		}
		if p.RPS != float64(p.Requests) || p.Span != time.Second {
			t.Errorf("point %d: rps %g span %s for %d requests in 1s", i, p.RPS, p.Span, p.Requests)
		}
		if p.ErrorRate != 0 || p.P50 < 9.8 || p.P50 > 10.2 {
			t.Errorf("point %d: error rate %g p50 %gms, want 0 and 10ms", i, p.ErrorRate, p.P50)
		}
	}
	for i, p := range canary {
		wantRate := 0.0
		if i == 2 { // the 500 of k=3 shows in the step ending t0+4s
			wantRate = 1
		}
		if p.Requests != 1 || p.ErrorRate != wantRate || p.P99 < 39.6 || p.P99 > 40.4 {
			t.Errorf("canary point %d: %d requests, error rate %g, p99 %gms; want 1, %g, 40ms", i, p.Requests, p.ErrorRate, p.P99, wantRate)
		}
		if p.Histogram.Count() != 0 {
			t.Errorf("canary point %d keeps its histogram", i)
		}
	}
}

func TestSeriesSinceAndStep(t *testing.T) {
	_, rs := seriesFixture(t, 8, Options{})
	// Polling with the last End seen gives the following points only.
	s := rs.Series(at(5*time.Second), time.Second)
	if !s.From.Equal(at(5 * time.Second)) {
		t.Errorf("from %s, want t0+5s", s.From)
	}
	if got, want := requestsOf(s.Versions[0].Points), []int64{5, 6, 7}; !equalInts(got, want) {
		t.Errorf("stable requests since t0+5s %v, want %v", got, want)
	}
	// A since that is not on the grid rounds up to it.
	s = rs.Series(at(5500*time.Millisecond), time.Second)
	if !s.From.Equal(at(6*time.Second)) || len(s.Versions[0].Points) != 2 {
		t.Errorf("since t0+5.5s: from %s with %d points, want t0+6s and 2", s.From, len(s.Versions[0].Points))
	}
	// Longer steps add up the shorter ones; the step is never below the
	// resolution.
	fine := rs.Series(time.Time{}, time.Second)
	coarse := rs.Series(time.Time{}, 3*time.Second)
	var sumFine, sumCoarse int64
	for _, p := range fine.Versions[0].Points {
		if !p.End.After(coarse.To) && p.End.After(coarse.From) {
			sumFine += p.Requests
		}
	}
	for _, p := range coarse.Versions[0].Points {
		sumCoarse += p.Requests
		if p.Span != 3*time.Second || p.RPS != float64(p.Requests)/3 {
			t.Errorf("coarse point %+v: want span 3s and rps = requests/3", p)
		}
	}
	if sumFine != sumCoarse || sumCoarse == 0 {
		t.Errorf("coarse steps hold %d requests, the fine ones over the same span %d", sumCoarse, sumFine)
	}
	if s := rs.Series(time.Time{}, time.Millisecond); s.Step != DefaultWindowResolution {
		t.Errorf("step %s, want it raised to the resolution", s.Step)
	}
}

func TestSeriesRetentionAndRevision(t *testing.T) {
	r, rs := seriesFixture(t, 10, Options{WindowRetention: 3 * time.Second})
	s := rs.Series(time.Time{}, time.Second)
	// Only the last 3 s are kept: the state at t0+7s is the oldest known.
	if !s.From.Equal(at(8*time.Second)) || s.Retention != 3*time.Second {
		t.Errorf("from %s retention %s, want t0+8s and 3s", s.From, s.Retention)
	}
	if got, want := requestsOf(s.Versions[0].Points), []int64{8, 9}; !equalInts(got, want) {
		t.Errorf("stable requests %v, want %v", got, want)
	}

	// A new revision starts the series afresh.
	now := at(10*time.Second + 500*time.Millisecond)
	r.now = func() time.Time { return now }
	rs.StartRevision(2)
	s = rs.Series(time.Time{}, time.Second)
	if s.Revision != 2 || !s.From.Equal(at(11*time.Second)) || len(s.Versions[0].Points) != 0 {
		t.Errorf("after the new revision: revision %d from %s, %d points; want 2, t0+11s, none", s.Revision, s.From, len(s.Versions[0].Points))
	}
	if !s.To.Equal(s.From) {
		t.Errorf("to %s, want from when no step is complete", s.To)
	}
	// Idle steps are points with no requests.
	now = at(13 * time.Second)
	r.Tick(now)
	s = rs.Series(time.Time{}, time.Second)
	if got := requestsOf(s.Versions[1].Points); !equalInts(got, []int64{0, 0}) {
		t.Errorf("idle canary points %v, want two empty ones", got)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
