package main

import (
	"fmt"
	"math"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis/judge"
	"github.com/coalmine-dev/coalmine/internal/analysis/stats"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// The deciders compared. Tolerances are those a user would configure for a
// canary gate: an error rate may rise by half (ratio ≤ 1.5) and latency by
// 5 % before the canary counts as worse, so every regression of the
// benchmark (error ratios 2, 4, 10; latency ×1.10, ×1.25, ×1.50) is beyond
// them and must be caught. The error-rate judge also tolerates an absolute
// increase of 0.2 percentage points (maxAbsoluteIncrease): at the stable's
// 0.5% the relative tolerance (0.75%) is the larger, so every scenario
// keeps its meaning, and a canary without errors can pass.
const (
	alpha        = 0.01
	errTolerance = 0.5
	errAbsPoints = 0.2
	latTolerance = 0.05

	// Argo-style threshold rule: an AnalysisTemplate metric with interval
	// 1m, count = the rollout's minutes, failureLimit 0, querying the last
	// minute of data: errors / requests of the canary > 1 % fails; the
	// canary's p99 > 1.1 × the stable's p99 (histogram_quantile over the
	// minute) fails.
	argoInterval     = 60
	argoErrThreshold = 0.01
	argoP99Factor    = 1.1
)

// onceName is the decider of one fixed-horizon test at the horizon.
const onceName = "fixed-horizon, once at the horizon"

// metric is what a decider judges.
type metric int

const (
	errorRate metric = iota
	latency
)

func (m metric) String() string {
	if m == latency {
		return "latency"
	}
	return "error rate"
}

// deciderSpec names one decider of a metric and builds it for a run.
type deciderSpec struct {
	Name   string
	Metric metric
	// Family groups the error-rate and latency deciders of the same method
	// for the rollout-level rate (either metric fails the rollout).
	Family string
	build  func() decider
}

// decision is what one decider did in one simulated rollout.
type decision struct {
	failed bool
	passed bool  // passed before the end (the sequential judge's early stop)
	at     int   // second of the decision; 0 if undecided at the end
	canary int64 // canary requests seen at the decision
}

// decider watches one rollout, second by second.
type decider interface {
	// step sees the cumulative data after second t and reports whether
	// the decider has decided (it is not called again then).
	step(t int, w *world) bool
	result() decision
}

// world is the state of one simulated rollout after second t.
type world struct {
	grid           bucketGrid
	canary, stable cumulative
	t              int
	built          bool
	cs, ss         provider.Sample
	cbuf, sbuf     []provider.Bucket
}

// samples returns the cumulative samples of both versions, as the builtin
// provider would report them (histograms only when latency is simulated).
func (w *world) samples() (c, s provider.Sample) {
	if !w.built {
		w.cs = provider.Sample{Requests: w.canary.requests, Errors: w.canary.errors}
		w.ss = provider.Sample{Requests: w.stable.requests, Errors: w.stable.errors}
		if w.canary.hist != nil {
			w.cbuf = w.grid.fill(w.canary.hist, nil, w.cbuf)
			w.sbuf = w.grid.fill(w.stable.hist, nil, w.sbuf)
			w.cs.Latency, w.ss.Latency = w.cbuf, w.sbuf
		}
		w.built = true
	}
	return w.cs, w.ss
}

// judgeDecider asks one of the project's judges every `every` seconds on
// all data since the start. Failed ends the rollout (rollback). Successful
// ends it only for the sequential judge (stopOnPass: it proved
// non-inferiority); a fixed-horizon judge re-run on growing data keeps
// watching after a pass, as Kayenta's and Argo's monitors do.
type judgeDecider struct {
	j          judge.Judge
	m          metric
	every      int
	stopOnPass bool
	// screen, if set, reports whether the judge could return Failed on
	// w; when it cannot, the (stateless, fixed-horizon) judge is not asked.
	screen func(w *world) bool
	state  []byte
	res    decision
}

func (d *judgeDecider) step(t int, w *world) bool {
	if t%d.every != 0 {
		return false
	}
	if d.screen != nil && !d.screen(w) {
		return false
	}
	c, s := w.samples()
	if d.m == errorRate {
		// The error-rate judges decide on the counters alone; dropping the
		// histograms only skips the quantiles they would put in the
		// evidence.
		c.Latency, s.Latency = nil, nil
	}
	dec, next, err := d.j.Assess(d.state, judge.Input{Canary: c, Stable: s, Elapsed: time.Duration(t) * time.Second})
	if err != nil {
		panic(fmt.Sprintf("judge at t=%ds: %v", t, err))
	}
	d.state = next
	switch {
	case dec.Verdict == judge.Failed:
		d.res = decision{failed: true, at: t, canary: c.Requests}
		return true
	case dec.Verdict == judge.Successful && d.stopOnPass:
		d.res = decision{passed: true, at: t, canary: c.Requests}
		return true
	}
	return false
}

func (d *judgeDecider) result() decision { return d.res }

// argoDecider is the threshold rule checked once a minute on the last
// minute's data (see argoErrThreshold, argoP99Factor).
type argoDecider struct {
	m            metric
	baseC, baseS cumulative
	res          decision
}

func (d *argoDecider) step(t int, w *world) bool {
	if t%argoInterval != 0 {
		return false
	}
	defer func() { d.baseC, d.baseS = snapshot(w.canary, d.baseC), snapshot(w.stable, d.baseS) }()
	fail := false
	switch d.m {
	case errorRate:
		n, e := w.canary.requests-d.baseC.requests, w.canary.errors-d.baseC.errors
		fail = n > 0 && float64(e)/float64(n) > argoErrThreshold
	case latency:
		pc, okc := windowQuantile(w.grid, w.canary.hist, d.baseC.hist, 0.99)
		ps, oks := windowQuantile(w.grid, w.stable.hist, d.baseS.hist, 0.99)
		fail = okc && oks && pc > argoP99Factor*ps
	}
	if fail {
		d.res = decision{failed: true, at: t, canary: w.canary.requests}
	}
	return fail
}

func (d *argoDecider) result() decision { return d.res }

// snapshot copies c into dst, reusing dst's histogram.
func snapshot(c, dst cumulative) cumulative {
	h := dst.hist
	if c.hist != nil {
		if h == nil {
			h = make([]uint64, len(c.hist))
		}
		copy(h, c.hist)
	}
	return cumulative{requests: c.requests, errors: c.errors, hist: h}
}

// windowQuantile reads quantile q of hist − base (base may be nil) by the
// sketch rank rule the judges use (stats.HistQuantile): the representative
// value of the first bucket whose cumulative count exceeds q·(n−1).
func windowQuantile(g bucketGrid, hist, base []uint64, q float64) (float64, bool) {
	var n uint64
	for i, c := range hist {
		if base != nil {
			c -= base[i]
		}
		n += c
	}
	if n == 0 {
		return math.NaN(), false
	}
	rank := q * float64(n-1)
	var cum float64
	for i, c := range hist {
		if base != nil {
			c -= base[i]
		}
		cum += float64(c)
		if cum > rank {
			return g.buckets[i].Value, true
		}
	}
	return g.buckets[len(hist)-1].Value, true
}

// deciders returns the deciders of a metric for rollouts of maxDur.
func deciders(m metric, maxDur time.Duration, fixedEverySecond, seqP99 bool) []deciderSpec {
	f := func(x float64) *float64 { return &x }
	d := spec.Duration(maxDur)
	compare, tol := spec.JudgeCompareErrorRate, errTolerance
	if m == latency {
		compare, tol = spec.JudgeCompareLatency, latTolerance
	}
	mk := func(js spec.Judge) judge.Judge {
		j, err := judge.New(js)
		if err != nil {
			panic(err)
		}
		return j
	}
	seqSpec := spec.Judge{Compare: compare, Method: spec.JudgeMethodSequential, Alpha: f(alpha),
		MaxRelativeIncrease: f(tol), MaxDuration: &d, Direction: spec.DirectionIncrease, OnLimit: spec.OnLimitPass}
	if m == errorRate {
		seqSpec.MaxAbsoluteIncrease = f(errAbsPoints)
	}
	seq := mk(seqSpec)
	fixed := mk(spec.Judge{Compare: compare, Method: spec.JudgeMethodFixed, Alpha: f(alpha),
		MaxRelativeIncrease: f(tol), Direction: spec.DirectionIncrease, OnLimit: spec.OnLimitPass})
	// Critical: the decider is a run of one metric, whose High makes the
	// run's Kayenta score 0 at once; a critical judge fails on it directly.
	kayenta := mk(spec.Judge{Compare: compare, Method: spec.JudgeMethodKayenta, Critical: true,
		MaxRelativeIncrease: f(tol), Direction: spec.DirectionIncrease, OnLimit: spec.OnLimitPass})
	out := []deciderSpec{
		{Name: "sequential, every 1 s", Family: "sequential", build: func() decider {
			return &judgeDecider{j: seq, m: m, every: 1, stopOnPass: true}
		}},
	}
	if m == latency && seqP99 {
		p99 := mk(spec.Judge{Compare: compare, Method: spec.JudgeMethodSequential, Alpha: f(alpha), Quantile: f(0.99),
			MaxRelativeIncrease: f(tol), MaxDuration: &d, Direction: spec.DirectionIncrease, OnLimit: spec.OnLimitPass})
		out = append(out, deciderSpec{Name: "sequential p99 only, every 1 s", Family: "sequential p99", build: func() decider {
			return &judgeDecider{j: p99, m: m, every: 1, stopOnPass: true}
		}})
	}
	out = append(out,
		deciderSpec{Name: "Argo-style threshold, every 60 s", Family: "argo", build: func() decider {
			return &argoDecider{m: m}
		}},
		deciderSpec{Name: "fixed-horizon, re-run every 60 s", Family: "fixed 60 s", build: func() decider {
			return &judgeDecider{j: fixed, m: m, every: 60}
		}},
		// The reference for power: one fixed test at the horizon, the
		// best a test at level α can do at that sample size.
		deciderSpec{Name: onceName, Family: "fixed once", build: func() decider {
			return &judgeDecider{j: fixed, m: m, every: int(maxDur / time.Second)}
		}},
		// Kayenta's judge as configured in Spinnaker: its own 98% interval
		// (alpha left at the method's default), one point a minute,
		// classified again at every minute; the first High rolls back.
		deciderSpec{Name: "kayenta, every 60 s", Family: "kayenta 60 s", build: func() decider {
			return &judgeDecider{j: kayenta, m: m, every: 60}
		}},
	)
	if fixedEverySecond {
		screen := screenErrorRate
		if m == latency {
			screen = screenLatency
		}
		out = append(out, deciderSpec{Name: "fixed-horizon, re-run every 1 s", Family: "fixed 1 s", build: func() decider {
			return &judgeDecider{j: fixed, m: m, every: 1, screen: screen}
		}})
	}
	for i := range out {
		out[i].Metric = m
	}
	return out
}

// The fixed-horizon judges spend most of their time on evidence (the exact
// rate-ratio interval; the latency ratio's interval), ten times what their
// significance test costs. Re-run every second that would dominate the
// benchmark, so the 1-s variants first run the judge's own significance
// test from internal/analysis/stats, on the same counts in the same order,
// and ask the judge only when that p-value is ≤ α: the fixed judges
// (direction increase) return Failed only then, so the screen changes no
// decision (TestScreensAgree checks it against the unscreened judge).

// screenErrorRate is the fixed error-rate judge's test: the conditional
// binomial test of ψ ≤ 1+δ.
func screenErrorRate(w *world) bool {
	c, s := w.canary, w.stable
	if c.requests == 0 || s.requests == 0 {
		return false // the judge says NoData
	}
	// With no more canary errors than the floor of their expected number
	// under the null's boundary, p ≥ 1/2 (a binomial's median is at least
	// ⌊Kθ₀⌋): skip the exact test, with a margin of one error for rounding.
	rho := float64(c.requests) / float64(c.requests+s.requests)
	theta0 := rho * (1 + errTolerance) / (rho*(1+errTolerance) + 1 - rho)
	if float64(c.errors) <= float64(c.errors+s.errors)*theta0-1 {
		return false
	}
	t, err := stats.ConditionalBinomialTest(c.errors, c.requests, s.errors, s.requests, 1+errTolerance)
	return err != nil || t.PGreater <= alpha
}

// screenLatency is the fixed latency judge's test: the one-sided
// Mann-Whitney U on the histograms, continuity-corrected, of the canary
// against the stable moved up by the tolerance (ceil(log(1+δ)/log γ)
// buckets of the log grid), so the tolerance is in the null.
func screenLatency(w *world) bool {
	k := 0
	for _, b := range w.grid.buckets {
		if b.Lower > 0 && b.Upper > b.Lower {
			k = int(math.Ceil(math.Log1p(latTolerance)/math.Log(b.Upper/b.Lower) - 1e-9))
			break
		}
	}
	n := len(w.canary.hist)
	c, s := make([]float64, n+k), make([]float64, n+k)
	for i := range n {
		c[i], s[i+k] = float64(w.canary.hist[i]), float64(w.stable.hist[i])
	}
	m, err := stats.MannWhitneyFromHistogram(c, s)
	return err != nil || m.PValue(stats.TailGreater, true) <= alpha
}
