package judge

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis/stats"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

func fixedPtrF(v float64) *float64 { return &v }
func fixedPtrI(v int64) *int64     { return &v }

// fixedSpec is a fixed judge spec with the given changes applied.
func fixedSpec(compare string, mutate ...func(*spec.Judge)) spec.Judge {
	j := spec.Judge{Compare: compare, Method: spec.JudgeMethodFixed}
	for _, m := range mutate {
		m(&j)
	}
	return j
}

func withAlpha(a float64) func(*spec.Judge) { return func(j *spec.Judge) { j.Alpha = &a } }
func withTol(d float64) func(*spec.Judge)   { return func(j *spec.Judge) { j.MaxRelativeIncrease = &d } }
func withMin(n int64) func(*spec.Judge)     { return func(j *spec.Judge) { j.MinSamples = &n } }
func withDir(d string) func(*spec.Judge)    { return func(j *spec.Judge) { j.Direction = d } }

func counts(requests, errors int64) provider.Sample {
	return provider.Sample{Requests: requests, Errors: errors, Span: time.Minute}
}

// assessFixed builds the judge and runs one assessment.
func assessFixed(t *testing.T, j spec.Judge, in Input) Decision {
	t.Helper()
	jd, err := NewFixed(j)
	if err != nil {
		t.Fatalf("NewFixed: %v", err)
	}
	d, state, err := jd.Assess(nil, in)
	if err != nil {
		t.Fatalf("Assess: %v", err)
	}
	if state != nil {
		t.Errorf("fixed judge returned state %q, want none", state)
	}
	// Evidence goes to the API and the store as JSON: no NaN or Inf.
	if _, err := json.Marshal(d.Evidence); err != nil {
		t.Errorf("evidence does not encode: %v (%+v)", err, d.Evidence)
	}
	return d
}

func TestFixedErrorRate(t *testing.T) {
	cases := []struct {
		name           string
		spec           spec.Judge
		canary, stable provider.Sample
		elapsed        time.Duration
		want           Verdict
		message        []string // substrings of the message
	}{
		{
			name:   "10% vs 0.1% fails",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, withAlpha(0.01), withTol(0.5), withMin(500)),
			canary: counts(812, 82), stable: counts(15402, 15),
			want:    Failed,
			message: []string{"canary error rate 10.1% vs stable 0.0974% (n=812/15402): p=", "< α=0.01 for ratio > 1.5"},
		},
		{
			name:   "equal rates pass",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, withAlpha(0.01), withTol(0.5), withMin(500)),
			canary: counts(800, 8), stable: counts(15000, 150),
			want:    Successful,
			message: []string{"canary error rate 1% vs stable 1% (n=800/15000): p=", "≥ α=0.01 for ratio > 1.5"},
		},
		{
			name:   "no errors anywhere pass",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, withMin(100)),
			canary: counts(800, 0), stable: counts(15000, 0),
			want:    Successful,
			message: []string{"p=1 ≥ α=0.05 for ratio > 1"},
		},
		{
			name:   "a significant increase within the tolerance passes",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, withTol(0.5), withMin(1000)),
			canary: counts(200000, 2600), stable: counts(2000000, 20000),
			want: Successful,
		},
		{
			name:   "the same increase without tolerance fails",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, withMin(1000)),
			canary: counts(200000, 2600), stable: counts(2000000, 20000),
			want: Failed,
		},
		{
			name:   "errors only in the canary fail without an upper bound",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, withMin(1000)),
			canary: counts(1000, 12), stable: counts(19000, 0),
			want:    Failed,
			message: []string{"canary error rate 1.2% vs stable 0%"},
		},
		{
			name:   "below minSamples is NoData with what is missing",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, withMin(1000)),
			canary: counts(312, 40), stable: counts(15402, 15),
			want:    NoData,
			message: []string{"312 canary and 15402 stable requests, below minSamples 1000 per version: canary needs 688 more"},
		},
		{
			name:   "default minSamples is 1000",
			spec:   fixedSpec(spec.JudgeCompareErrorRate),
			canary: counts(999, 500), stable: counts(999, 0),
			want:    NoData,
			message: []string{"canary needs 1 more, stable needs 1 more"},
		},
		{
			name:   "minSamples 0 still needs a request per version",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, withMin(0)),
			canary: counts(0, 0), stable: counts(10, 0),
			want:    NoData,
			message: []string{"canary needs 1 more"},
		},
		{
			name: "maxDuration below minSamples stays NoData and says so",
			spec: fixedSpec(spec.JudgeCompareErrorRate, withMin(1000), func(j *spec.Judge) {
				d := spec.Duration(10 * time.Minute)
				j.MaxDuration = &d
			}),
			canary: counts(300, 1), stable: counts(6000, 4), elapsed: 11 * time.Minute,
			want:    NoData,
			message: []string{"maxDuration 10m0s reached without enough data to test"},
		},
		{
			name:   "maxSamples caps the default horizon",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, func(j *spec.Judge) { j.MaxSamples = fixedPtrI(300) }),
			canary: counts(300, 30), stable: counts(6000, 6),
			want: Failed,
		},
		{
			name:   "decrease: a canary with far fewer errors is worse",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, withDir(spec.DirectionDecrease), withTol(0.2), withMin(500)),
			canary: counts(2000, 2), stable: counts(20000, 400),
			want:    Failed,
			message: []string{"for ratio < 0.833"},
		},
		{
			name:   "decrease: a canary with more errors is not",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, withDir(spec.DirectionDecrease), withMin(500)),
			canary: counts(812, 82), stable: counts(15402, 15),
			want: Successful,
		},
		{
			name:   "either catches an increase",
			spec:   fixedSpec(spec.JudgeCompareErrorRate, withDir(spec.DirectionEither), withTol(0.5), withMin(500)),
			canary: counts(812, 82), stable: counts(15402, 15),
			want:    Failed,
			message: []string{"for ratio > 1.5 or < 0.667"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := assessFixed(t, c.spec, Input{Canary: c.canary, Stable: c.stable, Elapsed: c.elapsed})
			if d.Verdict != c.want {
				t.Errorf("verdict %s, want %s (%s)", d.Verdict, c.want, d.Message)
			}
			for _, m := range c.message {
				if !strings.Contains(d.Message, m) {
					t.Errorf("message %q does not contain %q", d.Message, m)
				}
			}
			ev := d.Evidence
			if ev.Canary.Requests != c.canary.Requests || ev.Stable.Errors != c.stable.Errors {
				t.Errorf("evidence samples %+v / %+v", ev.Canary, ev.Stable)
			}
			if d.Verdict == NoData {
				if ev.PValue != nil {
					t.Errorf("NoData with a p-value %v", *ev.PValue)
				}
				return
			}
			if ev.PValue == nil || ev.Alpha == 0 || ev.Threshold == 0 || ev.Method == "" {
				t.Fatalf("evidence incomplete: %+v", ev)
			}
			if (d.Verdict == Failed) != (*ev.PValue <= ev.Alpha) {
				t.Errorf("verdict %s with p=%v, alpha=%v", d.Verdict, *ev.PValue, ev.Alpha)
			}
		})
	}
}

func TestFixedErrorRateEvidence(t *testing.T) {
	d := assessFixed(t, fixedSpec(spec.JudgeCompareErrorRate, withAlpha(0.01), withTol(0.5), withMin(500)),
		Input{Canary: counts(812, 82), Stable: counts(15402, 15)})
	ev := d.Evidence
	if !closeTo(ev.Canary.ErrorRate, 82.0/812, 1e-15) || !closeTo(ev.Stable.ErrorRate, 15.0/15402, 1e-15) {
		t.Errorf("rates %v, %v", ev.Canary.ErrorRate, ev.Stable.ErrorRate)
	}
	ratio := (82.0 / 812) / (15.0 / 15402)
	if ev.Statistic == nil || !closeTo(*ev.Statistic, ratio, 1e-12) {
		t.Errorf("statistic %v, want the ratio %v", ev.Statistic, ratio)
	}
	want, _ := stats.ConditionalBinomialTest(82, 812, 15, 15402, 1.5)
	if *ev.PValue != want.PGreater || !(want.PGreater < 1e-30) {
		t.Errorf("p = %v, want %v", *ev.PValue, want.PGreater)
	}
	// The interval's ends each exclude α: its lower end is above 1.5
	// exactly because the test failed.
	if len(ev.Interval) != 2 || !(ev.Interval[0] > 1.5 && ev.Interval[0] < ratio && ratio < ev.Interval[1]) {
		t.Errorf("interval %v around %v", ev.Interval, ratio)
	}
	if !strings.Contains(ev.IntervalOf, "98%") {
		t.Errorf("interval described as %q", ev.IntervalOf)
	}
	if ev.Threshold != 1.5 || ev.Alpha != 0.01 {
		t.Errorf("threshold %v alpha %v", ev.Threshold, ev.Alpha)
	}

	// Without stable errors the upper end is unbounded: left out of the
	// interval (JSON has no infinity) and said in words.
	d = assessFixed(t, fixedSpec(spec.JudgeCompareErrorRate, withMin(1000)), Input{Canary: counts(1000, 12), Stable: counts(19000, 0)})
	if d.Evidence.Interval != nil || !strings.Contains(d.Evidence.IntervalOf, "no upper bound") || d.Evidence.Statistic != nil {
		t.Errorf("unbounded interval: %+v", d.Evidence)
	}
}

func TestFixedErrorRateRejectsBadInput(t *testing.T) {
	jd, err := NewFixed(fixedSpec(spec.JudgeCompareErrorRate, withMin(1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []Input{
		{Canary: counts(10, 11), Stable: counts(10, 0)},
		{Canary: counts(10, 1), Stable: counts(-1, 0)},
	} {
		if _, _, err := jd.Assess(nil, in); err == nil {
			t.Errorf("%+v accepted", in)
		}
	}
}

func TestNewFixedRejectsBadSpecs(t *testing.T) {
	cases := map[string]spec.Judge{
		"sequential method":    {Compare: spec.JudgeCompareErrorRate, Method: spec.JudgeMethodSequential},
		"unknown comparison":   fixedSpec("throughput"),
		"unknown direction":    fixedSpec(spec.JudgeCompareErrorRate, withDir("up")),
		"alpha 0":              fixedSpec(spec.JudgeCompareErrorRate, withAlpha(0)),
		"alpha 1":              fixedSpec(spec.JudgeCompareErrorRate, withAlpha(1)),
		"negative tolerance":   fixedSpec(spec.JudgeCompareErrorRate, withTol(-0.1)),
		"NaN tolerance":        fixedSpec(spec.JudgeCompareErrorRate, withTol(math.NaN())),
		"quantile on errors":   fixedSpec(spec.JudgeCompareErrorRate, func(j *spec.Judge) { j.Quantile = fixedPtrF(0.99) }),
		"quantile 1":           fixedSpec(spec.JudgeCompareLatency, func(j *spec.Judge) { j.Quantile = fixedPtrF(1) }),
		"minSamples > max":     fixedSpec(spec.JudgeCompareLatency, withMin(100), func(j *spec.Judge) { j.MaxSamples = fixedPtrI(50) }),
		"negative minSamples":  fixedSpec(spec.JudgeCompareLatency, withMin(-1)),
		"unknown onLimit":      fixedSpec(spec.JudgeCompareLatency, func(j *spec.Judge) { j.OnLimit = "fail" }),
		"non-positive maxTime": fixedSpec(spec.JudgeCompareLatency, func(j *spec.Judge) { d := spec.Duration(0); j.MaxDuration = &d }),
	}
	for name, j := range cases {
		if _, err := NewFixed(j); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// logGrid is a DDSketch-style grid with relative accuracy 1 %: bucket i
// holds (γ^(i−1), γ^i] seconds, represented by 2γ^i/(γ+1).
const logGridGamma = 1.01 / 0.99

func logGridBucket(key int32) provider.Bucket {
	g := logGridGamma
	return provider.Bucket{
		Key:   key,
		Lower: math.Pow(g, float64(key-1)),
		Upper: math.Pow(g, float64(key)),
		Value: 2 * math.Pow(g, float64(key)) / (g + 1),
	}
}

// lognormalHistogram puts n deterministic draws (the (k−½)/n quantiles) of
// a log-normal with median seconds and log-sd sigma on the grid, so tests
// get realistic latency shapes without randomness.
func lognormalHistogram(n int, median, sigma float64) []provider.Bucket {
	byKey := map[int32]uint64{}
	var keys []int32
	for k := 1; k <= n; k++ {
		x := median * math.Exp(sigma*stats.NormQuantile((float64(k)-0.5)/float64(n)))
		key := int32(math.Ceil(math.Log(x) / math.Log(logGridGamma)))
		if byKey[key] == 0 {
			keys = append(keys, key)
		}
		byKey[key]++
	}
	out := make([]provider.Bucket, 0, len(keys))
	for _, k := range keys { // keys arrive in increasing order
		b := logGridBucket(k)
		b.Count = byKey[k]
		out = append(out, b)
	}
	return out
}

// withTail moves the slowest fraction of a histogram's observations to
// factor times their latency, keeping the body (median) where it was.
func withTail(h []provider.Bucket, frac, factor float64) []provider.Bucket {
	var total uint64
	for _, b := range h {
		total += b.Count
	}
	move := uint64(frac * float64(total))
	byKey := map[int32]uint64{}
	for i := len(h) - 1; i >= 0; i-- {
		b := h[i]
		m := min(move, b.Count)
		move -= m
		byKey[b.Key] += b.Count - m
		if m > 0 {
			byKey[b.Key+int32(math.Round(math.Log(factor)/math.Log(logGridGamma)))] += m
		}
	}
	var out []provider.Bucket
	for k := int32(-2000); k < 2000; k++ {
		if n := byKey[k]; n > 0 {
			b := logGridBucket(k)
			b.Count = n
			out = append(out, b)
		}
	}
	return out
}

func latencySample(requests int64, h []provider.Bucket) provider.Sample {
	return provider.Sample{Requests: requests, Latency: h, Span: time.Minute}
}

func TestFixedLatency(t *testing.T) {
	stable := lognormalHistogram(15000, 0.1, 0.5)
	cases := []struct {
		name    string
		spec    spec.Judge
		canary  []provider.Bucket
		stable  []provider.Bucket
		want    Verdict
		message []string
	}{
		{
			name:    "+50% latency fails",
			spec:    fixedSpec(spec.JudgeCompareLatency, withTol(0.2), withAlpha(0.01)),
			canary:  lognormalHistogram(800, 0.15, 0.5),
			stable:  stable,
			want:    Failed,
			message: []string{"canary p50/p90/p99 ", " ms vs stable ", "(n=800/15000): Mann-Whitney z=", "< α=0.01 and typical latency ratio 1.49 > 1.2"},
		},
		{
			name:    "equal distributions pass",
			spec:    fixedSpec(spec.JudgeCompareLatency, withTol(0.2)),
			canary:  lognormalHistogram(800, 0.1, 0.5),
			stable:  stable,
			want:    Successful,
			message: []string{"≥ α=0.05 (typical latency ratio 1)"},
		},
		{
			name:    "+5% is within a 20% tolerance: the tolerance is in the null, so the test does not reject",
			spec:    fixedSpec(spec.JudgeCompareLatency, withTol(0.2)),
			canary:  lognormalHistogram(5000, 0.105, 0.5),
			stable:  stable,
			want:    Successful,
			message: []string{"p=1 ≥ α=0.05 (typical latency ratio 1.04)"},
		},
		{
			name:   "+5% fails without a tolerance",
			spec:   fixedSpec(spec.JudgeCompareLatency),
			canary: lognormalHistogram(5000, 0.105, 0.5),
			stable: stable,
			want:   Failed,
		},
		{
			name:   "a p99 regression with the same median passes on the whole distribution",
			spec:   fixedSpec(spec.JudgeCompareLatency, withTol(0.2)),
			canary: withTail(lognormalHistogram(3000, 0.1, 0.5), 0.03, 3),
			stable: stable,
			want:   Successful,
		},
		{
			name:    "and fails on quantile 0.99",
			spec:    fixedSpec(spec.JudgeCompareLatency, withTol(0.2), func(j *spec.Judge) { j.Quantile = fixedPtrF(0.99) }),
			canary:  withTail(lognormalHistogram(3000, 0.1, 0.5), 0.03, 3),
			stable:  stable,
			want:    Failed,
			message: []string{"canary p99 951 ms vs stable 323 ms (n=3000/15000): ", "of canary above", "p99 ratio 2.94 > 1.2"},
		},
		{
			name:    "decrease: a faster canary is worse",
			spec:    fixedSpec(spec.JudgeCompareLatency, withTol(0.2), withDir(spec.DirectionDecrease)),
			canary:  lognormalHistogram(800, 0.05, 0.5),
			stable:  stable,
			want:    Failed,
			message: []string{"typical latency ratio 0.497 < 0.833"},
		},
		{
			name:   "increase: a faster canary is fine",
			spec:   fixedSpec(spec.JudgeCompareLatency, withTol(0.2)),
			canary: lognormalHistogram(800, 0.05, 0.5),
			stable: stable,
			want:   Successful,
		},
		{
			name:   "either catches a slower canary",
			spec:   fixedSpec(spec.JudgeCompareLatency, withTol(0.2), withDir(spec.DirectionEither)),
			canary: lognormalHistogram(800, 0.15, 0.5),
			stable: stable,
			want:   Failed,
		},
		{
			name:    "below minSamples is NoData",
			spec:    fixedSpec(spec.JudgeCompareLatency, withMin(500)),
			canary:  lognormalHistogram(120, 0.3, 0.5),
			stable:  stable,
			want:    NoData,
			message: []string{"120 canary and 15000 stable latency observations, below minSamples 500 per version: canary needs 380 more"},
		},
		{
			name:    "no canary latencies is NoData",
			spec:    fixedSpec(spec.JudgeCompareLatency),
			canary:  nil,
			stable:  stable,
			want:    NoData,
			message: []string{"canary p50/p90/p99 -/-/- ms", "canary needs 200 more"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var nc uint64
			for _, b := range c.canary {
				nc += b.Count
			}
			in := Input{Canary: latencySample(int64(nc), c.canary), Stable: latencySample(15000, c.stable)}
			d := assessFixed(t, c.spec, in)
			if d.Verdict != c.want {
				t.Errorf("verdict %s, want %s (%s)", d.Verdict, c.want, d.Message)
			}
			for _, m := range c.message {
				if !strings.Contains(d.Message, m) {
					t.Errorf("message %q does not contain %q", d.Message, m)
				}
			}
			ev := d.Evidence
			if d.Verdict == NoData {
				return
			}
			for _, q := range []string{"p50", "p90", "p99"} {
				if ev.Canary.Quantiles[q] <= 0 || ev.Stable.Quantiles[q] <= 0 {
					t.Errorf("quantile %s missing: %v / %v", q, ev.Canary.Quantiles, ev.Stable.Quantiles)
				}
			}
			if ev.PValue == nil || ev.Statistic == nil {
				t.Errorf("evidence incomplete: %+v", ev)
			}
			if c.spec.Quantile == nil && (!strings.Contains(ev.StatisticName, "U=") || !strings.Contains(ev.StatisticName, "CLES")) {
				t.Errorf("statistic %q lacks U or CLES", ev.StatisticName)
			}
			if c.spec.Quantile != nil && !strings.Contains(ev.StatisticName, "of canary above") {
				t.Errorf("statistic %q lacks the exceedance fractions", ev.StatisticName)
			}
			if ev.Threshold != 1+valueOr(c.spec.MaxRelativeIncrease, 0) {
				t.Errorf("threshold %v", ev.Threshold)
			}
		})
	}
}

func TestFixedLatencyEvidenceNumbers(t *testing.T) {
	canary := lognormalHistogram(800, 0.15, 0.5)
	stable := lognormalHistogram(15000, 0.1, 0.5)
	d := assessFixed(t, fixedSpec(spec.JudgeCompareLatency, withTol(0.2)), Input{
		Canary: latencySample(812, canary), Stable: latencySample(15402, stable),
	})
	ev := d.Evidence
	// The stable median of a log-normal with median 100 ms, to the grid's 1 %.
	if p50 := ev.Stable.Quantiles["p50"]; math.Abs(p50-100) > 2 {
		t.Errorf("stable p50 = %v ms", p50)
	}
	if p50 := ev.Canary.Quantiles["p50"]; math.Abs(p50-150) > 3 {
		t.Errorf("canary p50 = %v ms", p50)
	}
	// p99 of the stable: 100 ms · e^(0.5·2.326) ≈ 320 ms.
	if p99 := ev.Stable.Quantiles["p99"]; math.Abs(p99-320) > 8 {
		t.Errorf("stable p99 = %v ms", p99)
	}
	// The request counts come from the sample, the n of the test from the
	// histograms.
	if ev.Canary.Requests != 812 || !strings.Contains(d.Message, "(n=800/15000)") {
		t.Errorf("requests %d, message %q", ev.Canary.Requests, d.Message)
	}
	// z and p agree with the stats package on the same buckets, the
	// stable's moved up by the tolerance.
	g, _ := fixedMergeGrids(canary, stable)
	cc, sc := g.shiftedCounts(toleranceShift(fixedTolOf(t, d), g.gridGamma()))
	mw, _ := stats.MannWhitneyFromHistogram(cc, sc)
	if *ev.PValue != mw.PValue(stats.TailGreater, true) || *ev.Statistic != mw.Z(stats.TailGreater, true) {
		t.Errorf("p %v z %v, want %v %v", *ev.PValue, *ev.Statistic, mw.PValue(stats.TailGreater, true), mw.Z(stats.TailGreater, true))
	}
	if r := g.hodgesLehmannRatio(); math.Abs(r-1.5) > 0.03 {
		t.Errorf("Hodges-Lehmann ratio %v, want ≈ 1.5", r)
	}
}

func TestFixedHodgesLehmannRatioMatchesPairs(t *testing.T) {
	canary := []provider.Bucket{logGridBucket(0), logGridBucket(3), logGridBucket(10)}
	stable := []provider.Bucket{logGridBucket(-2), logGridBucket(3), logGridBucket(5)}
	for i, n := range []uint64{3, 1, 2} {
		canary[i].Count = n
	}
	for i, n := range []uint64{1, 4, 2} {
		stable[i].Count = n
	}
	g, err := fixedMergeGrids(canary, stable)
	if err != nil {
		t.Fatal(err)
	}
	// Brute force: the lower weighted median of all pairwise log ratios.
	type pair struct{ d, w float64 }
	var pairs []pair
	total := 0.0
	for _, c := range canary {
		for _, s := range stable {
			w := float64(c.Count * s.Count)
			pairs = append(pairs, pair{math.Log(c.Value) - math.Log(s.Value), w})
			total += w
		}
	}
	best := math.Inf(1)
	for _, p := range pairs {
		below := 0.0
		for _, q := range pairs {
			if q.d <= p.d {
				below += q.w
			}
		}
		if below >= total/2 && p.d < best {
			best = p.d
		}
	}
	if got := g.hodgesLehmannRatio(); !closeTo(got, math.Exp(best), 1e-9) {
		t.Errorf("ratio %v, brute force %v", got, math.Exp(best))
	}
}

func TestFixedLatencyRejectsMismatchedGrids(t *testing.T) {
	canary := lognormalHistogram(500, 0.1, 0.5)
	stable := lognormalHistogram(500, 0.1, 0.5)
	stable[3].Upper *= 1.5
	jd, _ := NewFixed(fixedSpec(spec.JudgeCompareLatency, withMin(10)))
	if _, _, err := jd.Assess(nil, Input{Canary: latencySample(500, canary), Stable: latencySample(500, stable)}); err == nil || !strings.Contains(err.Error(), "grids differ") {
		t.Errorf("error %v, want grids differ", err)
	}
}

func closeTo(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)
}

func valueOr(p *float64, v float64) float64 {
	if p == nil {
		return v
	}
	return *p
}

// fixedTolOf reads the tolerance the judge used back from its evidence.
func fixedTolOf(t *testing.T, d Decision) float64 {
	t.Helper()
	return d.Evidence.Threshold - 1
}
