package judge

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// seqGamma is the telemetry grid's γ (relative accuracy 1 %).
var (
	seqGamma   = 1.01 / 0.99
	seqLnGamma = math.Log(seqGamma)
)

// seqSim produces cumulative inputs the way the builtin provider does:
// per-second batches of requests split by a routing weight, errors and
// latencies drawn from a fixed-seed PCG.
type seqSim struct {
	rng            *rand.Rand
	in             Input
	canary, stable map[int32]uint64
}

func newSeqSim(seed uint64) *seqSim {
	return &seqSim{rng: rand.New(rand.NewPCG(seed, 0x5eed)), canary: map[int32]uint64{}, stable: map[int32]uint64{}}
}

// seqArm describes one version's behaviour in a batch: error probability and
// latency median (seconds, lognormal with σ = 0.5); median 0 records no
// latency.
type seqArm struct {
	errRate float64
	median  float64
}

// step adds one second of total requests, each routed to the canary with
// probability weight.
func (s *seqSim) step(total int, weight float64, c, st seqArm) Input {
	nc := seqBinomial(s.rng, int64(total), weight)
	for _, v := range []struct {
		n    int64
		a    seqArm
		smp  *provider.Sample
		hist map[int32]uint64
	}{{nc, c, &s.in.Canary, s.canary}, {int64(total) - nc, st, &s.in.Stable, s.stable}} {
		v.smp.Requests += v.n
		v.smp.Errors += seqBinomial(s.rng, v.n, v.a.errRate)
		if v.a.median > 0 {
			// Lognormal latencies: ln x = ln median + σ·z, σ = 0.5.
			lm := math.Log(v.a.median)
			for range v.n {
				v.hist[int32(math.Ceil((lm+0.5*s.rng.NormFloat64())/seqLnGamma))]++
			}
		}
	}
	s.in.Elapsed += time.Second
	s.in.Canary.Latency = seqBuckets(s.canary)
	s.in.Stable.Latency = seqBuckets(s.stable)
	return s.in
}

// seqBuckets renders a sparse histogram as provider buckets on the grid.
func seqBuckets(h map[int32]uint64) []provider.Bucket {
	keys := make([]int32, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]provider.Bucket, len(keys))
	for i, k := range keys {
		out[i] = seqBucket(k)
		out[i].Count = h[k]
	}
	return out
}

// seqBucket returns the grid bucket of key k (bounds cached: math.Pow is
// the simulation's hot spot).
func seqBucket(k int32) provider.Bucket {
	if b, ok := seqBucketCache.Load(k); ok {
		return b.(provider.Bucket)
	}
	up := math.Pow(seqGamma, float64(k))
	b := provider.Bucket{Key: k, Lower: math.Pow(seqGamma, float64(k-1)), Upper: up, Value: 2 * up / (seqGamma + 1)}
	seqBucketCache.Store(k, b)
	return b
}

var seqBucketCache sync.Map

func seqPtr[T any](v T) *T { return &v }

func seqMustJudge(t *testing.T, j spec.Judge) Judge {
	t.Helper()
	jj, err := NewSequential(j)
	if err != nil {
		t.Fatalf("NewSequential: %v", err)
	}
	return jj
}

// seqRun feeds inputs to a judge until it decides, and returns the decision,
// the number of calls and the final state.
func seqRun(t *testing.T, j Judge, looks int, next func(i int) Input) (Decision, int, []byte) {
	t.Helper()
	var state []byte
	var d Decision
	for i := 1; i <= looks; i++ {
		var err error
		d, state, err = j.Assess(state, next(i))
		if err != nil {
			t.Fatalf("look %d: %v", i, err)
		}
		if d.Verdict != Continue && d.Verdict != NoData {
			return d, i, state
		}
	}
	return d, looks, state
}

func TestSequentialErrorRateFailsAClearRegression(t *testing.T) {
	// Canary 10 % errors vs stable 0.1 %, 5 % weight, 400 req/s.
	j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareErrorRate, Alpha: seqPtr(0.01), MaxRelativeIncrease: seqPtr(0.2)})
	sim := newSeqSim(1)
	d, looks, _ := seqRun(t, j, 60, func(int) Input {
		return sim.step(400, 0.05, seqArm{errRate: 0.10}, seqArm{errRate: 0.001})
	})
	if d.Verdict != Failed || looks > 10 {
		t.Fatalf("after %d looks: %s %q, want Failed within 10", looks, d.Verdict, d.Message)
	}
	t.Logf("failed after %d one-second batches: %s", looks, d.Message)
	ev := d.Evidence
	if ev.EValue == nil || *ev.EValue < 100 || ev.Threshold != 100 || ev.Alpha != 0.01 {
		t.Errorf("evidence e-value %v threshold %v alpha %v", ev.EValue, ev.Threshold, ev.Alpha)
	}
	if len(ev.Interval) != 2 || !(ev.Interval[0] >= 1.2) {
		t.Errorf("interval %v: the lower end must exceed the tolerated 1.2", ev.Interval)
	}
	if ev.Canary.Requests == 0 || ev.Canary.ErrorRate <= ev.Stable.ErrorRate || ev.Canary.Quantiles != nil {
		t.Errorf("samples %+v / %+v", ev.Canary, ev.Stable)
	}
	for _, want := range []string{"canary error rate", "vs stable", "(n=", "e-value", "≥ 100 = 1/α", "ratio >", "99% CS"} {
		if !strings.Contains(d.Message, want) {
			t.Errorf("message %q lacks %q", d.Message, want)
		}
	}
}

func TestSequentialErrorRateAAStaysUnrejected(t *testing.T) {
	cases := []struct {
		name   string
		weight func(i int) float64
		rate   func(i int) float64
	}{
		{"constant_5pct", func(int) float64 { return 0.05 }, func(int) float64 { return 0.005 }},
		// The weight moves 5 % → 25 % while the error rate of both
		// versions jumps tenfold: a test on the pooled split would see the
		// canary's share of errors rise (Simpson's paradox) and fail it.
		{"weight_5_to_25pct_with_incident", func(i int) float64 {
			if i <= 1800 {
				return 0.05
			}
			return 0.25
		}, func(i int) float64 {
			if i <= 1800 {
				return 0.002
			}
			return 0.02
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareErrorRate, Alpha: seqPtr(0.05)})
			sim := newSeqSim(2)
			var state []byte
			var d Decision
			for i := 1; i <= 3600; i++ {
				in := sim.step(400, c.weight(i), seqArm{errRate: c.rate(i)}, seqArm{errRate: c.rate(i)})
				var err error
				d, state, err = j.Assess(state, in)
				if err != nil {
					t.Fatal(err)
				}
				if d.Verdict == Failed {
					t.Fatalf("A/A failed at look %d: %s", i, d.Message)
				}
			}
			t.Logf("after an hour: %s", d.Message)
		})
	}
}

func TestSequentialErrorRatePooledSplitWouldBeFooled(t *testing.T) {
	// The counts of the weight-change case above, judged by the fixed-split
	// Beta-binomial test on the pooled split, reject: the per-batch split
	// is what keeps the judge valid.
	sim := newSeqSim(2)
	var in Input
	for i := 1; i <= 3600; i++ {
		w, p := 0.05, 0.002
		if i > 1800 {
			w, p = 0.25, 0.02
		}
		in = sim.step(400, w, seqArm{errRate: p}, seqArm{errRate: p})
	}
	rho := float64(in.Canary.Requests) / float64(in.Canary.Requests+in.Stable.Requests)
	share := float64(in.Canary.Errors) / float64(in.Canary.Errors+in.Stable.Errors)
	if !(share > rho*1.3) {
		t.Fatalf("pooled canary share of errors %v vs traffic share %v: the scenario lost its point", share, rho)
	}
}

func TestSequentialErrorRateNoData(t *testing.T) {
	j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareErrorRate})
	d, state, err := j.Assess(nil, Input{Stable: provider.Sample{Requests: 500, Errors: 3}, Elapsed: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != NoData || !strings.Contains(d.Message, "no canary requests") {
		t.Fatalf("%s %q, want NoData", d.Verdict, d.Message)
	}
	// The stable's counts so far are the reference for the next batch.
	d, _, err = j.Assess(state, Input{Canary: provider.Sample{Requests: 10}, Stable: provider.Sample{Requests: 700, Errors: 3}, Elapsed: 2 * time.Second})
	if err != nil || d.Verdict != Continue {
		t.Fatalf("%s %q %v, want Continue", d.Verdict, d.Message, err)
	}
}

func TestSequentialErrorRateLimitsAndMinSamples(t *testing.T) {
	healthy := func(sim *seqSim) func(int) Input {
		return func(int) Input { return sim.step(400, 0.05, seqArm{errRate: 0.005}, seqArm{errRate: 0.005}) }
	}
	cases := []struct {
		name  string
		j     spec.Judge
		looks int
		want  Verdict
		msg   string
	}{
		{"max_duration_pass", spec.Judge{Compare: spec.JudgeCompareErrorRate, MaxDuration: seqPtr(spec.Duration(30 * time.Second))},
			30, Successful, "maxDuration 30s reached without a regression shown, onLimit pass"},
		{"max_samples_inconclusive", spec.Judge{Compare: spec.JudgeCompareErrorRate, MaxSamples: seqPtr(int64(500)), OnLimit: spec.OnLimitInconclusive},
			60, Inconclusive, "maxSamples 500 reached without a decision"},
		{"below_min_samples_is_no_data", spec.Judge{Compare: spec.JudgeCompareErrorRate, MinSamples: seqPtr(int64(1_000_000))},
			20, NoData, "below minSamples 1000000: no verdict yet"},
		{"limit_below_min_samples_is_no_data", spec.Judge{Compare: spec.JudgeCompareErrorRate, MinSamples: seqPtr(int64(1_000_000)), MaxDuration: seqPtr(spec.Duration(10 * time.Second))},
			10, NoData, "below minSamples 1000000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := seqMustJudge(t, c.j)
			d, looks, _ := seqRun(t, j, c.looks, healthy(newSeqSim(3)))
			if d.Verdict != c.want || !strings.Contains(d.Message, c.msg) {
				t.Fatalf("after %d looks: %s %q, want %s containing %q", looks, d.Verdict, d.Message, c.want, c.msg)
			}
		})
	}
}

func TestSequentialErrorRateMinSamplesDefersAFailure(t *testing.T) {
	j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareErrorRate, MinSamples: seqPtr(int64(300))})
	sim := newSeqSim(4)
	d, looks, _ := seqRun(t, j, 100, func(int) Input {
		return sim.step(400, 0.05, seqArm{errRate: 0.3}, seqArm{errRate: 0.001})
	})
	if d.Verdict != Failed || d.Evidence.Canary.Requests < 300 {
		t.Fatalf("look %d: %s with %d canary requests, want Failed at ≥ 300", looks, d.Verdict, d.Evidence.Canary.Requests)
	}
}

func TestSequentialErrorRateNonInferiority(t *testing.T) {
	// Equal rates of 2 % and a 50 % tolerance: the confidence sequence
	// eventually puts the ratio below 1.5.
	j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareErrorRate, MaxRelativeIncrease: seqPtr(0.5)})
	sim := newSeqSim(5)
	d, looks, _ := seqRun(t, j, 3600, func(int) Input {
		return sim.step(400, 0.25, seqArm{errRate: 0.02}, seqArm{errRate: 0.02})
	})
	if d.Verdict != Successful || !strings.Contains(d.Message, "non-inferiority shown") {
		t.Fatalf("after %d looks: %s %q, want Successful by non-inferiority", looks, d.Verdict, d.Message)
	}
	if d.Evidence.Interval[1] > 1.5 {
		t.Errorf("upper end %v, want at most the tolerated 1.5 (the end itself is excluded)", d.Evidence.Interval[1])
	}
	t.Logf("passed after %d looks: %s", looks, d.Message)
}

func TestSequentialErrorRateDirections(t *testing.T) {
	lower := func(sim *seqSim) func(int) Input {
		return func(int) Input { return sim.step(400, 0.5, seqArm{errRate: 0.001}, seqArm{errRate: 0.05}) }
	}
	for _, c := range []struct {
		dir  string
		want Verdict
	}{
		{spec.DirectionIncrease, Continue}, // an improvement is never a failure
		{spec.DirectionDecrease, Failed},
		{spec.DirectionEither, Failed},
	} {
		t.Run(c.dir, func(t *testing.T) {
			j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareErrorRate, Direction: c.dir, MaxRelativeIncrease: seqPtr(0.2)})
			d, looks, _ := seqRun(t, j, 30, lower(newSeqSim(6)))
			if c.want == Continue && d.Verdict == Failed || c.want == Failed && d.Verdict != Failed {
				t.Fatalf("after %d looks: %s %q, want %s", looks, d.Verdict, d.Message, c.want)
			}
		})
	}
}

// TestSequentialResumeMatchesUninterrupted restarts the judge (a new
// instance, the persisted bytes) at every look and compares every
// decision with an uninterrupted run.
func TestSequentialResumeMatchesUninterrupted(t *testing.T) {
	for _, js := range []spec.Judge{
		{Compare: spec.JudgeCompareErrorRate, Direction: spec.DirectionEither, MaxRelativeIncrease: seqPtr(0.1), Alpha: seqPtr(0.01)},
		{Compare: spec.JudgeCompareLatency, MaxRelativeIncrease: seqPtr(0.1)},
		{Compare: spec.JudgeCompareLatency, Direction: spec.DirectionEither, Quantiles: []float64{0.99, 0.5, 0.95}, MaxRelativeIncrease: seqPtr(0.1)},
	} {
		t.Run(js.Compare+"_"+js.Direction, func(t *testing.T) {
			sim := newSeqSim(7)
			inputs := make([]Input, 200)
			for i := range inputs {
				c := seqArm{errRate: 0.01, median: 0.05}
				if i >= 100 {
					c = seqArm{errRate: 0.03, median: 0.07}
				}
				inputs[i] = sim.step(200, 0.1, c, seqArm{errRate: 0.01, median: 0.05})
			}
			one := seqMustJudge(t, js)
			var s1, s2 []byte
			for i, in := range inputs {
				d1, n1, err := one.Assess(s1, in)
				if err != nil {
					t.Fatal(err)
				}
				// A restart: a new judge, the state through a JSON round trip
				// of a record that stores it (as the analysis run does).
				type record struct{ JudgeState []byte }
				raw, err := json.Marshal(record{s2})
				if err != nil {
					t.Fatal(err)
				}
				var stored record
				if err := json.Unmarshal(raw, &stored); err != nil {
					t.Fatal(err)
				}
				d2, n2, err := seqMustJudge(t, js).Assess(stored.JudgeState, in)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(d1, d2) || string(n1) != string(n2) {
					t.Fatalf("look %d: resumed %s %q, uninterrupted %s %q", i, d2.Verdict, d2.Message, d1.Verdict, d1.Message)
				}
				s1, s2 = n1, n2
			}
			if len(s1) > 8<<10 {
				t.Errorf("state is %d bytes", len(s1))
			}
			t.Logf("state %d bytes", len(s1))
		})
	}
}

func TestSequentialStateRejectsAnotherConfiguration(t *testing.T) {
	a := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareErrorRate, Alpha: seqPtr(0.05)})
	_, state, err := a.Assess(nil, Input{Canary: provider.Sample{Requests: 10}, Stable: provider.Sample{Requests: 100}})
	if err != nil {
		t.Fatal(err)
	}
	b := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareErrorRate, Alpha: seqPtr(0.01)})
	if _, _, err := b.Assess(state, Input{}); err == nil || !strings.Contains(err.Error(), "another configuration") {
		t.Fatalf("err = %v, want a configuration mismatch", err)
	}
	if _, _, err := a.Assess([]byte("{"), Input{}); err == nil {
		t.Fatal("a corrupt state was accepted")
	}
}

func TestSequentialCounterResetSkipsTheBatch(t *testing.T) {
	j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareErrorRate})
	_, s, _ := j.Assess(nil, Input{Canary: provider.Sample{Requests: 1000, Errors: 10}, Stable: provider.Sample{Requests: 9000, Errors: 90}})
	// The counters restart from zero: no negative batch, no error.
	d, s2, err := j.Assess(s, Input{Canary: provider.Sample{Requests: 5, Errors: 5}, Stable: provider.Sample{Requests: 50}})
	if err != nil || d.Verdict != Continue {
		t.Fatalf("%s %v", d.Verdict, err)
	}
	var st seqErrorRateState
	if err := json.Unmarshal(s2, &st); err != nil || st.Canary.Requests != 5 || st.Stable.Requests != 50 {
		t.Fatalf("state after reset %+v (%v)", st, err)
	}
}

func TestNewSequentialRejectsBadSpecs(t *testing.T) {
	for _, j := range []spec.Judge{
		{Compare: "errors"},
		{Compare: spec.JudgeCompareErrorRate, Method: spec.JudgeMethodFixed},
		{Compare: spec.JudgeCompareErrorRate, Direction: "up"},
		{Compare: spec.JudgeCompareErrorRate, OnLimit: "fail"},
		{Compare: spec.JudgeCompareErrorRate, Alpha: seqPtr(1.0)},
		{Compare: spec.JudgeCompareErrorRate, MaxRelativeIncrease: seqPtr(-0.1)},
		{Compare: spec.JudgeCompareErrorRate, Quantile: seqPtr(0.9)},
		{Compare: spec.JudgeCompareLatency, Quantile: seqPtr(1.0)},
		{Compare: spec.JudgeCompareLatency, MaxSamples: seqPtr(int64(0))},
	} {
		if _, err := NewSequential(j); err == nil {
			t.Errorf("NewSequential(%+v) accepted", j)
		}
	}
}

func TestSequentialLatency(t *testing.T) {
	const base = 0.05 // 50 ms median
	cases := []struct {
		name     string
		j        spec.Judge
		canary   float64 // canary median / stable median
		looks    int
		want     Verdict
		contains string
	}{
		{"plus_50pct_fails", spec.Judge{Compare: spec.JudgeCompareLatency, MaxRelativeIncrease: seqPtr(0.2), Alpha: seqPtr(0.01)},
			1.5, 120, Failed, "canary slower than 1.2 × stable"},
		{"plus_50pct_p90_fails", spec.Judge{Compare: spec.JudgeCompareLatency, Quantile: seqPtr(0.9), MaxRelativeIncrease: seqPtr(0.2)},
			1.5, 120, Failed, "at p90"},
		{"equal_passes_early", spec.Judge{Compare: spec.JudgeCompareLatency, MaxRelativeIncrease: seqPtr(0.2)},
			1.0, 600, Successful, "non-inferiority shown at p50, p90 (e-values p50 "},
		{"equal_no_tolerance_never_fails", spec.Judge{Compare: spec.JudgeCompareLatency},
			1.0, 600, Continue, "e-value"},
		{"plus_10pct_within_20pct_tolerance_passes", spec.Judge{Compare: spec.JudgeCompareLatency, Quantile: seqPtr(0.5), MaxRelativeIncrease: seqPtr(0.2)},
			1.1, 3600, Successful, "non-inferiority shown at p50"},
		{"faster_is_worse_when_decrease", spec.Judge{Compare: spec.JudgeCompareLatency, Direction: spec.DirectionDecrease, MaxRelativeIncrease: seqPtr(0.2)},
			0.6, 120, Failed, "canary faster than stable / 1.2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			j := seqMustJudge(t, c.j)
			sim := newSeqSim(8)
			d, looks, state := seqRun(t, j, c.looks, func(int) Input {
				return sim.step(400, 0.1, seqArm{median: base * c.canary}, seqArm{median: base})
			})
			if d.Verdict != c.want || !strings.Contains(d.Message, c.contains) {
				t.Fatalf("after %d looks: %s %q, want %s containing %q", looks, d.Verdict, d.Message, c.want, c.contains)
			}
			t.Logf("%s after %d looks (state %d bytes): %s", d.Verdict, looks, len(state), d.Message)
			q := d.Evidence.Canary.Quantiles
			if q["p50"] == 0 || q["p90"] == 0 || q["p99"] == 0 || d.Evidence.Stable.Quantiles["p50"] == 0 {
				t.Errorf("quantiles %v / %v", q, d.Evidence.Stable.Quantiles)
			}
			if want := base * c.canary * 1000; math.Abs(q["p50"]/want-1) > 0.1 {
				t.Errorf("canary p50 %v ms, want about %v", q["p50"], want)
			}
		})
	}
}

func TestSequentialLatencyNoData(t *testing.T) {
	j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareLatency})
	sim := newSeqSim(9)
	in := sim.step(100, 0, seqArm{median: 0.05}, seqArm{median: 0.05})
	d, _, err := j.Assess(nil, in)
	if err != nil || d.Verdict != NoData || !strings.Contains(d.Message, "no canary latency") {
		t.Fatalf("%s %q %v, want NoData", d.Verdict, d.Message, err)
	}
}

// TestSequentialFalseFailureRate is the Monte-Carlo check of the α
// guarantee: A/A runs observed at every batch (with the weight moving
// mid-run) must fail at most α of the time, up to sampling error. The
// judges' pure update functions are used directly (the JSON round trip is
// covered by TestSequentialResumeMatchesUninterrupted) to keep it fast.
func TestSequentialFalseFailureRate(t *testing.T) {
	const alpha = 0.05
	t.Run("error-rate", func(t *testing.T) {
		t.Parallel()
		const runs, looks = 200, 300
		j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareErrorRate, Alpha: seqPtr(alpha)}).(*seqErrorRateJudge)
		rng := rand.New(rand.NewPCG(10, 10))
		failed := 0
		for range runs {
			s, _ := j.load(nil)
			var cur [2]seqCounts
			for i := range looks {
				w := 0.05
				if i >= looks/2 {
					w = 0.25
				}
				// 400 requests, 2 % errors in both versions.
				nc := seqBinomial(rng, 400, w)
				cur[0].Requests += nc
				cur[0].Errors += seqBinomial(rng, nc, 0.02)
				cur[1].Requests += 400 - nc
				cur[1].Errors += seqBinomial(rng, 400-nc, 0.02)
				s = j.update(s, cur, 0)
				if s.MaxLogE >= -math.Log(alpha) {
					failed++
					break
				}
			}
		}
		rate := float64(failed) / runs
		t.Logf("false failures: %d of %d runs × %d looks (%.1f%%), α = %v", failed, runs, looks, 100*rate, alpha)
		if rate > alpha+0.03 {
			t.Errorf("false-failure rate %v exceeds α + 0.03", rate)
		}
	})
	t.Run("latency", func(t *testing.T) {
		t.Parallel()
		const runs, looks = 100, 100
		j := seqMustJudge(t, spec.Judge{Compare: spec.JudgeCompareLatency, Alpha: seqPtr(alpha)}).(*seqLatencyJudge)
		failed := 0
		for r := range runs {
			sim := newSeqSim(uint64(1000 + r))
			s, _ := j.load(nil)
			for i := range looks {
				w := 0.05
				if i >= looks/2 {
					w = 0.25
				}
				in := sim.step(200, w, seqArm{median: 0.05}, seqArm{median: 0.05})
				s = j.update(s, seqHistogram(in.Canary.Latency), seqHistogram(in.Stable.Latency))
				if s.MaxLogE >= -math.Log(alpha) {
					failed++
					break
				}
			}
		}
		rate := float64(failed) / runs
		t.Logf("false failures: %d of %d runs × %d looks (%.1f%%), α = %v", failed, runs, looks, 100*rate, alpha)
		if rate > alpha+0.05 {
			t.Errorf("false-failure rate %v exceeds α + 0.05", rate)
		}
	})
}

// seqBinomial draws Binomial(n, p) by skipping from success to success
// with geometric gaps, in time proportional to n·p.
func seqBinomial(rng *rand.Rand, n int64, p float64) int64 {
	switch {
	case p <= 0 || n <= 0:
		return 0
	case p >= 1:
		return n
	}
	lq := math.Log1p(-p)
	var k, i int64
	for {
		i += int64(math.Log(1-rng.Float64())/lq) + 1
		if i > n {
			return k
		}
		k++
	}
}
