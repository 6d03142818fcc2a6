package judge

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// The fixtures testdata/latency-v1-look{100,200}.json are the states the
// previous build (commit 8451d71, state version 1) wrote at looks 100 and
// 200 of this run; the judge resumes from the first after an upgrade.
func seqV1Run() (spec.Judge, func() Input) {
	js := spec.Judge{Compare: spec.JudgeCompareLatency, MaxRelativeIncrease: seqPtr(0.2)}
	sim := newSeqSim(21)
	return js, func() Input { return sim.step(400, 0.1, seqArm{median: 0.055}, seqArm{median: 0.05}) }
}

func seqReadState(t *testing.T, name string) (raw []byte, s seqLatencyState) {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return raw, s
}

// TestSequentialLatencyUpgradesV1State resumes a run from a state of the
// previous version: the failure test must continue exactly as the previous
// build would have (its grid is the new grid's upper half), and the
// non-inferiority test must start at e-value 1 from the upgrade.
func TestSequentialLatencyUpgradesV1State(t *testing.T) {
	js, next := seqV1Run()
	j := seqMustJudge(t, js)
	for range 100 {
		next()
	}
	state, old100 := seqReadState(t, "latency-v1-look100.json")
	_, old200 := seqReadState(t, "latency-v1-look200.json")
	if old100.V != 1 || len(old100.Tracks) != 3 || len(old100.Tracks[0].Grid.LogLR) != seqLatencyV1GridLen {
		t.Fatalf("fixture is not a version-1 state with three tracks: %+v", old100)
	}

	// The upgrade alone: the upper half is the old grid, the lower half the
	// null's value.
	up, err := j.(*seqLatencyJudge).load(state)
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range up.Tracks {
		if tr.Q != old100.Tracks[i].Q || tr.Grid.Mid != seqMixWidth || len(tr.Grid.LogLR) != 2*seqMixWidth+1 {
			t.Fatalf("track %d after the upgrade: %+v", i, tr)
		}
		for k, v := range tr.Grid.LogLR {
			want := 0.0
			if k >= tr.Grid.Mid {
				want = old100.Tracks[i].Grid.LogLR[k-tr.Grid.Mid]
			}
			if v != want {
				t.Fatalf("track %d grid[%d] = %v, want %v", i, k, v, want)
			}
		}
	}

	var s seqLatencyState
	var d Decision
	for look := 101; look <= 200; look++ {
		var err error
		d, state, err = j.Assess(state, next())
		if err != nil {
			t.Fatalf("look %d: %v", look, err)
		}
		if err := json.Unmarshal(state, &s); err != nil {
			t.Fatal(err)
		}
		if s.V != seqLatencyStateVersion {
			t.Fatalf("look %d: state version %d", look, s.V)
		}
		if look == 101 {
			// The first batch after the upgrade has no non-inferiority
			// counts to difference: the lower half is still untouched.
			for i, tr := range s.Tracks {
				if le, _ := tr.Grid.LogE(tr.Grid.Mid, seqMixWidth, false); le != 0 || tr.NIMaxLogE != 0 {
					t.Fatalf("track %d: non-inferiority ln e = %v (max %v) at the upgrade, want 0", i, le, tr.NIMaxLogE)
				}
			}
		}
	}
	// The failure test went on exactly as the previous build's.
	for i, tr := range s.Tracks {
		for k, want := range old200.Tracks[i].Grid.LogLR {
			if got := tr.Grid.LogLR[tr.Grid.Mid+k]; math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
				t.Fatalf("track %d failure grid[%d] = %v, the previous build has %v", i, k, got, want)
			}
		}
		if tr.Threshold != old200.Tracks[i].Threshold || tr.TestedAbove != old200.Tracks[i].TestedAbove || tr.RefAbove != old200.Tracks[i].RefAbove {
			t.Fatalf("track %d counters %+v, the previous build has %+v", i, tr, old200.Tracks[i])
		}
	}
	if s.MaxLogE != old200.MaxLogE {
		t.Fatalf("maxLogE %v, the previous build has %v", s.MaxLogE, old200.MaxLogE)
	}
	// And the non-inferiority test ran from look 102 on.
	if s.Tracks[0].NIMaxLogE <= 0 {
		t.Errorf("p50 non-inferiority ln e = %v after 99 batches of a canary well within the tolerance", s.Tracks[0].NIMaxLogE)
	}
	if !strings.Contains(d.Message, "p99") {
		t.Errorf("the upgraded run should keep judging the quantiles it started with (p99 among them): %q", d.Message)
	}
	t.Logf("look 200 after the upgrade: %s %s", d.Verdict, d.Message)

	// A version-1 state of another configuration is still refused.
	other := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareLatency, MaxRelativeIncrease: seqPtr(0.2), Quantiles: []float64{0.5, 0.9}})
	raw, _ := seqReadState(t, "latency-v1-look100.json")
	if _, _, err := other.Assess(raw, Input{}); err == nil || !strings.Contains(err.Error(), "another configuration") {
		t.Fatalf("err = %v, want a configuration mismatch", err)
	}
}

// seqLatencyRuns simulates runs of the latency judge js (through its pure
// update) with the canary's latencies ratio × the stable's, 400 requests a
// second at weight, and returns how many runs failed (at any of the looks
// until a pass), how many passed early, and the looks to each pass.
func seqLatencyRuns(t *testing.T, js spec.Judge, ratio, weight float64, runs, looks int, seed uint64) (failed, passed int, passLooks []int) {
	t.Helper()
	j := seqMustJudge(t, js).(*seqLatencyJudge)
	for r := range runs {
		sim := newSeqSim(seed + uint64(r))
		s, err := j.load(nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= looks; i++ {
			in := sim.step(400, weight, seqArm{median: 0.02 * ratio}, seqArm{median: 0.02})
			s = j.update(s, seqHistogram(in.Canary.Latency), seqHistogram(in.Stable.Latency))
			if s.Passed {
				passed++
				passLooks = append(passLooks, i)
				break
			}
		}
		// Failures are counted whether or not they came first: the
		// non-inferiority test runs on after a failure, and the callers
		// check that it never passes a canary that is worse.
		if s.MaxLogE >= j.c.logThreshold() {
			failed++
		}
	}
	return failed, passed, passLooks
}

// An A/A canary with a 20 % tolerance passes early in every run, on the
// default quantiles and on a list with p99.
func TestSequentialLatencyAAPassesEarly(t *testing.T) {
	for _, c := range []struct {
		name  string
		qs    []float64
		looks int
	}{{"default", nil, 150}, {"p50_p90_p99", []float64{0.5, 0.9, 0.99}, 600}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			js := spec.Judge{Compare: spec.JudgeCompareLatency, Quantiles: c.qs, MaxRelativeIncrease: seqPtr(0.2), Alpha: seqPtr(0.01)}
			failed, passed, at := seqLatencyRuns(t, js, 1, 0.1, 20, c.looks, 300)
			t.Logf("%d of 20 passed early (looks %v), %d failed", passed, at, failed)
			if failed != 0 || passed != 20 {
				t.Fatalf("%d of 20 A/A runs passed early within %d looks and %d failed; want all to pass", passed, c.looks, failed)
			}
		})
	}
}

// A canary 15 % slower than stable, with 5 % tolerated, is failed in every
// run, and its non-inferiority test, which runs on after the failure, never
// passes it.
func TestSequentialLatencySlowerNeverPasses(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{spec.DirectionIncrease, spec.DirectionEither} {
		js := spec.Judge{Compare: spec.JudgeCompareLatency, Direction: dir, MaxRelativeIncrease: seqPtr(0.05), Alpha: seqPtr(0.01)}
		failed, passed, _ := seqLatencyRuns(t, js, 1.15, 0.1, 12, 150, 400)
		t.Logf("%s: %d of 12 failed, %d passed", dir, failed, passed)
		if passed != 0 || failed != 12 {
			t.Fatalf("%s: a canary 15%% slower than stable with 5%% tolerated: %d of 12 runs passed early, %d failed; want none and all", dir, passed, failed)
		}
	}
	// Mirrored: with direction decrease a faster canary is the worse one.
	js := spec.Judge{Compare: spec.JudgeCompareLatency, Direction: spec.DirectionDecrease, MaxRelativeIncrease: seqPtr(0.05), Alpha: seqPtr(0.01)}
	failed, passed, _ := seqLatencyRuns(t, js, 1/1.15, 0.1, 12, 150, 450)
	if passed != 0 || failed != 12 {
		t.Fatalf("decrease: a canary 15%% faster than stable with 5%% tolerated: %d of 12 runs passed early, %d failed; want none and all", passed, failed)
	}
}

// A canary exactly at the tolerance lies on both tests' nulls (the
// rounding puts it on the failure test's side of "no worse" and the
// non-inferiority test's side of "worse"): it may be failed, and passed
// early, in at most α of the runs, up to sampling error. 200 runs of 100
// looks with the weight moving mid-run; the bound is loose (α + 0.05) so
// that only a broken guarantee trips it.
func TestSequentialLatencyAtToleranceStaysWithinAlpha(t *testing.T) {
	t.Parallel()
	const alpha, runs = 0.05, 200
	js := spec.Judge{Compare: spec.JudgeCompareLatency, Quantiles: []float64{0.5, 0.9, 0.99}, MaxRelativeIncrease: seqPtr(0.05), Alpha: seqPtr(alpha)}
	j := seqMustJudge(t, js).(*seqLatencyJudge)
	failed, passed := 0, 0
	for r := range runs {
		sim := newSeqSim(uint64(7000 + r))
		s, _ := j.load(nil)
		for i := range 100 {
			w := 0.1
			if i >= 50 {
				w = 0.3
			}
			in := sim.step(200, w, seqArm{median: 0.02 * 1.05}, seqArm{median: 0.02})
			s = j.update(s, seqHistogram(in.Canary.Latency), seqHistogram(in.Stable.Latency))
			if s.MaxLogE >= j.c.logThreshold() {
				failed++
				break
			}
			if s.Passed {
				passed++
				break
			}
		}
	}
	t.Logf("at the tolerance: %d of %d runs failed, %d passed early (α = %v)", failed, runs, passed, alpha)
	if float64(failed)/runs > alpha+0.05 || float64(passed)/runs > alpha+0.05 {
		t.Fatalf("at the tolerance %d of %d runs failed and %d passed early; each must stay within α + 0.05", failed, runs, passed)
	}
}

func TestNewSequentialRejectsBadQuantiles(t *testing.T) {
	for _, c := range []struct {
		j    spec.Judge
		want string
	}{
		{spec.Judge{Compare: spec.JudgeCompareLatency, Quantiles: []float64{}}, "at least one"},
		{spec.Judge{Compare: spec.JudgeCompareLatency, Quantiles: []float64{0.5, 1}}, "between 0 and 1"},
		{spec.Judge{Compare: spec.JudgeCompareLatency, Quantiles: []float64{0.9, 0.5, 0.9}}, "0.9 twice"},
		{spec.Judge{Compare: spec.JudgeCompareLatency, Quantiles: []float64{.1, .2, .3, .4, .5, .6, .7, .8, .9}}, "at most 8"},
		{spec.Judge{Compare: spec.JudgeCompareLatency, Quantile: seqPtr(0.9), Quantiles: []float64{0.5}}, "not both"},
		{spec.Judge{Compare: spec.JudgeCompareErrorRate, Quantiles: []float64{0.5}}, "only to compare: latency"},
	} {
		if _, err := NewSequential(c.j); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewSequential(%+v) = %v, want an error containing %q", c.j, err, c.want)
		}
	}
	if _, err := NewFixed(spec.Judge{Compare: spec.JudgeCompareLatency, Method: spec.JudgeMethodFixed, Quantiles: []float64{0.5}}); err == nil || !strings.Contains(err.Error(), "method sequential") {
		t.Errorf("NewFixed with quantiles: %v", err)
	}
	// The list is judged in increasing order whatever its order in the spec.
	a := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareLatency, Quantiles: []float64{0.99, 0.5}}).(*seqLatencyJudge)
	b := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareLatency, Quantiles: []float64{0.5, 0.99}}).(*seqLatencyJudge)
	if a.c.key() != b.c.key() || !strings.Contains(a.c.key(), "q=[0.5 0.99]") {
		t.Errorf("keys %q and %q", a.c.key(), b.c.key())
	}
}

// Each test rounds the canary's bucket that straddles x·(1+δ) against
// itself: the failure test counts it as not above (not slower), the
// non-inferiority test as above (slower). A canary whose observations all
// lie in that bucket, against a stable with half of its observations above
// x, therefore gives evidence to neither test.
func TestSequentialLatencyStraddlingBucketFavoursNeitherTest(t *testing.T) {
	j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareLatency, Quantiles: []float64{0.5}, MaxRelativeIncrease: seqPtr(0.05)}).(*seqLatencyJudge)
	const k = -150 // γ^-150 ≈ 50 ms
	hist := func(n uint64, keys ...int32) []provider.Bucket {
		var out []provider.Bucket
		for _, key := range keys {
			b := seqBucket(key)
			b.Count = n
			out = append(out, b)
		}
		return out
	}
	// x = γ^k, the stable's median bucket's upper bound; x·1.05 = γ^(k+2.44)
	// lies inside bucket k+3, which holds the whole canary.
	x := seqBucket(k).Upper
	if b := seqBucket(k + 3); !(b.Lower < x*1.05 && x*1.05 < b.Upper) {
		t.Fatalf("bucket k+3 (%v, %v] does not straddle %v", b.Lower, b.Upper, x*1.05)
	}
	s, _ := j.load(nil)
	for n := uint64(1); n <= 20; n++ {
		c, st := hist(50*n, k+3), hist(500*n, k, k+10)
		s = j.update(s, seqHistogram(c), seqHistogram(st))
	}
	tr := s.Tracks[0]
	if tr.Threshold != x {
		t.Fatalf("threshold %v, want %v", tr.Threshold, x)
	}
	fail, _ := tr.Grid.LogE(tr.Grid.Mid, seqMixWidth, true)
	ni, _ := tr.Grid.LogE(tr.Grid.Mid, seqMixWidth, false)
	if fail >= 0 || ni >= 0 || s.Passed || tr.NIMaxLogE != 0 {
		t.Fatalf("ln e-values: failure %v, non-inferiority %v (max %v, passed %v); both should be below 0", fail, ni, tr.NIMaxLogE, s.Passed)
	}
}

// The judge passes only when every judged quantile's non-inferiority test
// has: a canary faster at the median but with a slower tail is shown no
// slower at p50 and yet never passed.
func TestSequentialLatencyPassNeedsEveryQuantile(t *testing.T) {
	j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareLatency, Quantiles: []float64{0.5, 0.9}, MaxRelativeIncrease: seqPtr(0.05)}).(*seqLatencyJudge)
	const k = -150
	hist := func(n uint64, parts map[int32]uint64) []provider.Bucket {
		var out []provider.Bucket
		for _, key := range []int32{k - 5, k, k + 10, k + 30, k + 50} {
			if c := parts[key]; c > 0 {
				b := seqBucket(key)
				b.Count = 10 * c * n
				out = append(out, b)
			}
		}
		return out
	}
	s, _ := j.load(nil)
	for n := uint64(1); n <= 100; n++ {
		// Stable: 50 % at x50 = γ^k, 40 % at x90 = γ^(k+10), 10 % beyond.
		// Canary: 45 % above 1.05·x50 (against 50 %), 15 % above 1.05·x90
		// (against 10 %).
		c := hist(n, map[int32]uint64{k - 5: 11, k + 10: 6, k + 50: 3})
		st := hist(n, map[int32]uint64{k: 100, k + 10: 80, k + 30: 20})
		s = j.update(s, seqHistogram(c), seqHistogram(st))
	}
	if p50 := s.Tracks[0]; p50.Q != 0.5 || p50.NIMaxLogE < j.c.logThreshold() {
		t.Fatalf("p50 non-inferiority ln e %v, want ≥ %v", p50.NIMaxLogE, j.c.logThreshold())
	}
	if s.Passed || s.Tracks[1].NIMaxLogE > 0 {
		t.Fatalf("passed %v with p90 non-inferiority ln e %v: the slower tail must block the pass", s.Passed, s.Tracks[1].NIMaxLogE)
	}
	if s.MaxLogE < j.c.logThreshold() {
		t.Errorf("the slower tail should have been failed: ln e %v", s.MaxLogE)
	}
}
