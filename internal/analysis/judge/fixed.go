package judge

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis/stats"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Defaults of the fixed-horizon judges for fields the configuration leaves
// unset. alpha and the tolerance match the sequential judges, so switching
// method does not silently change what is tested.
const (
	fixedDefaultAlpha = 0.05
	// A fixed test is run once, at its horizon minSamples; without one it
	// would decide on the first handful of requests. 1000 requests per
	// version detect an error rate tripling from 1 % (α 0.05, power 0.8);
	// 200 latency observations detect a shift where the canary is slower
	// in 60 % of pairs (Noether: ~100 per version at power 0.8).
	fixedDefaultMinRequests     = 1000
	fixedDefaultMinObservations = 200
	// fixedLatencyFloor (seconds) replaces zero latencies in log ratios, so
	// a zero bucket compares as very fast rather than as −∞.
	fixedLatencyFloor = 1e-9
)

// NewFixed returns the judge of method fixed for compare error-rate or
// latency (SPEC §5.4, statistics.md §3). A fixed-horizon test is valid when
// it is run once, on a sample size chosen in advance; the judge therefore
// answers NoData until both versions have minSamples and then decides at
// once, on all data since the run started, Failed or Successful. Asking it
// again later re-runs the test on more data, which a fixed test does not
// account for: use method sequential to watch continuously.
//
// Error rate tests H₀: ψ ≤ 1+δ against ψ > 1+δ, where ψ is the canary's
// per-request error rate over the stable's and δ = maxRelativeIncrease,
// with the conditional binomial test of statistics.md §3.4: given the
// K = e_canary + e_stable errors, the canary's share is Binomial(K, θ₀) at
// the boundary of H₀, θ₀ = ρ(1+δ)/(ρ(1+δ) + 1 − ρ), ρ = n_canary/(n_canary
// + n_stable), and p = P(Bin(K, θ₀) ≥ e_canary). The test is exact under
// the Poisson model of error counts, whatever the common error rate and the
// traffic split, and is Fisher's exact test in all but name when errors are
// rare (< 10 %); unlike Fisher it can put the tolerance into the null.
// Failed when p ≤ alpha. The evidence carries the exact (Clopper–Pearson)
// interval of ψ whose ends each exclude alpha, so the verdict is Failed
// exactly when its lower end exceeds 1+δ.
//
// Latency, whole distribution (no quantile): the one-sided Mann-Whitney U
// test on the two histograms (statistics.md §5.4, continuity-corrected,
// ties within buckets) of the canary against the stable moved up by
// 1+δ on the log grid (rounded up to whole buckets), so the tolerance is
// in the null and a canary exactly at it fails at most α of the time; and,
// as Kayenta does, an effect beyond the tolerance: Failed when p ≤ alpha
// and the Hodges–Lehmann ratio exceeds 1+δ. That ratio is the median over
// all canary×stable pairs of the latency ratio, the scale-free typical
// slowdown, read from the buckets' representative values (exact to the
// grid's resolution).
//
// Latency with quantile q: a rank test of the whole distribution hardly
// notices a regression of the slowest 1 %, so significance comes from
// Mood's quantile test instead: with x the pooled q-quantile, Fisher's
// exact test of whether more canary observations lie beyond x·(1+δ) than
// stable ones beyond x. Failed when p ≤ alpha and the canary's q-quantile
// exceeds (1+δ) × the stable's.
//
// direction decrease tests the mirror image (the canary is worse when lower:
// ψ or the ratio below 1/(1+δ)); either tests both sides with alpha split
// between them (the reported p is the smaller one-sided p doubled).
//
// Limits: the decision is immediate once minSamples is reached (maxSamples
// ≥ minSamples), so a limit can only be met before that, with too little
// data to test; the verdict then stays NoData and says which limit was
// reached, the same as the sequential judges, so that missing data is never
// folded into a pass (the metric's onNoData decides). An unset minSamples
// is 1000 requests for error-rate and 200 observations for latency, capped
// at maxSamples. Defaults: alpha 0.05, maxRelativeIncrease 0, direction
// increase. Fixed judges keep no state.
func NewFixed(j spec.Judge) (Judge, error) {
	c, err := newFixedConfig(j)
	if err != nil {
		return nil, err
	}
	if c.compare == spec.JudgeCompareLatency {
		return fixedLatencyJudge{c: c}, nil
	}
	return fixedErrorRateJudge{c: c}, nil
}

// fixedConfig is a judge spec with its defaults applied and checked.
type fixedConfig struct {
	compare     string
	alpha       float64
	tol         float64 // δ, maxRelativeIncrease
	up, down    bool    // which directions count as worse
	quantile    float64 // 0: whole distribution
	minSamples  int64
	maxSamples  int64 // 0: none
	maxDuration time.Duration
}

func newFixedConfig(j spec.Judge) (fixedConfig, error) {
	if j.Method != spec.JudgeMethodFixed {
		return fixedConfig{}, fmt.Errorf("fixed judge built for method %q", j.Method)
	}
	cm, err := parseCommon(j, fixedDefaultAlpha)
	if err != nil {
		return fixedConfig{}, err
	}
	if cm.absTol > 0 {
		return fixedConfig{}, fmt.Errorf("maxAbsoluteIncrease applies to method sequential; the fixed-horizon test has only maxRelativeIncrease")
	}
	c := fixedConfig{compare: cm.compare, alpha: cm.alpha, tol: cm.tol, up: cm.up, down: cm.down,
		maxSamples: cm.maxSamples, maxDuration: cm.maxDuration}
	if len(cm.quantiles) == 1 {
		c.quantile = cm.quantiles[0]
	}
	// A fixed test needs a horizon: without minSamples it waits for a
	// default number of requests (error rate) or observations (latency),
	// never more than maxSamples.
	c.minSamples = fixedDefaultMinRequests
	if c.compare == spec.JudgeCompareLatency {
		c.minSamples = fixedDefaultMinObservations
	}
	if c.maxSamples > 0 {
		c.minSamples = min(c.minSamples, c.maxSamples)
	}
	if cm.minSamples != nil {
		if c.maxSamples > 0 && *cm.minSamples > c.maxSamples {
			return c, fmt.Errorf("maxSamples %d is below minSamples %d", c.maxSamples, *cm.minSamples)
		}
		c.minSamples = *cm.minSamples
	}
	return c, nil
}

// waiting returns a NoData message while either version has fewer than
// minSamples (or none at all), "" once the test can run. unit names what
// is counted ("requests", "latency observations").
func (c fixedConfig) waiting(nCanary, nStable int64, unit string, elapsed time.Duration) string {
	need := max(c.minSamples, 1) // an empty version can never be compared
	if nCanary >= need && nStable >= need {
		return ""
	}
	var short []string
	if nCanary < need {
		short = append(short, fmt.Sprintf("canary needs %d more", need-nCanary))
	}
	if nStable < need {
		short = append(short, fmt.Sprintf("stable needs %d more", need-nStable))
	}
	msg := fmt.Sprintf("%d canary and %d stable %s, below minSamples %d per version: %s", nCanary, nStable, unit, need, strings.Join(short, ", "))
	switch {
	case c.maxSamples > 0 && min(nCanary, nStable) >= c.maxSamples:
		msg += fmt.Sprintf(" (maxSamples %d reached without enough data to test)", c.maxSamples)
	case c.maxDuration > 0 && elapsed >= c.maxDuration:
		msg += fmt.Sprintf(" (maxDuration %v reached without enough data to test)", c.maxDuration)
	}
	return msg
}

// combine turns the one-sided p-values into the decision's p: either
// direction splits alpha over the two sides (Bonferroni), which is the
// smaller p doubled against alpha.
func (c fixedConfig) combine(pUp, pDown float64) float64 {
	switch {
	case c.up && c.down:
		return math.Min(1, 2*math.Min(pUp, pDown))
	case c.down:
		return pDown
	}
	return pUp
}

// sideAlpha is the level of each one-sided test.
func (c fixedConfig) sideAlpha() float64 {
	if c.up && c.down {
		return c.alpha / 2
	}
	return c.alpha
}

// worseThan describes the alternative for messages: "ratio > 1.5",
// "ratio < 0.667", "ratio > 1.5 or < 0.667".
func (c fixedConfig) worseThan(what string) string {
	hi, lo := fixedNum(1+c.tol), fixedNum(1/(1+c.tol))
	switch {
	case c.up && c.down:
		return fmt.Sprintf("%s > %s or < %s", what, hi, lo)
	case c.down:
		return fmt.Sprintf("%s < %s", what, lo)
	}
	return fmt.Sprintf("%s > %s", what, hi)
}

// fixedErrorRateJudge is NewFixed for compare error-rate.
type fixedErrorRateJudge struct{ c fixedConfig }

var _ Judge = fixedErrorRateJudge{}

// Assess implements Judge.
func (j fixedErrorRateJudge) Assess(_ []byte, in Input) (Decision, []byte, error) {
	c := j.c
	cs, ss := in.Canary, in.Stable
	for _, s := range []struct {
		name string
		s    provider.Sample
	}{{"canary", cs}, {"stable", ss}} {
		if s.s.Requests < 0 || s.s.Errors < 0 || s.s.Errors > s.s.Requests {
			return Decision{}, nil, fmt.Errorf("fixed error-rate judge: %s has %d errors in %d requests", s.name, s.s.Errors, s.s.Requests)
		}
	}
	ev := model.Evidence{
		Method: "conditional binomial (exact rate-ratio test)",
		Canary: fixedCountSample(cs),
		Stable: fixedCountSample(ss),
		Alpha:  c.alpha,
	}
	rates := fmt.Sprintf("canary error rate %s vs stable %s (n=%d/%d)",
		fixedPct(ev.Canary.ErrorRate), fixedPct(ev.Stable.ErrorRate), cs.Requests, ss.Requests)
	if msg := c.waiting(cs.Requests, ss.Requests, "requests", in.Elapsed); msg != "" {
		return Decision{Verdict: NoData, Evidence: ev, Message: rates + ": " + msg}, nil, nil
	}

	psi0 := 1 + c.tol
	upTest, err := stats.ConditionalBinomialTest(cs.Errors, cs.Requests, ss.Errors, ss.Requests, psi0)
	if err != nil {
		return Decision{}, nil, fmt.Errorf("fixed error-rate judge: %w", err)
	}
	downTest, err := stats.ConditionalBinomialTest(cs.Errors, cs.Requests, ss.Errors, ss.Requests, 1/psi0)
	if err != nil {
		return Decision{}, nil, fmt.Errorf("fixed error-rate judge: %w", err)
	}
	p := c.combine(upTest.PGreater, downTest.PLess)
	conf := 1 - 2*c.sideAlpha()
	lo, hi, err := stats.RateRatioInterval(cs.Errors, cs.Requests, ss.Errors, ss.Requests, conf)
	if err != nil {
		return Decision{}, nil, fmt.Errorf("fixed error-rate judge: %w", err)
	}

	ev.StatisticName = "error-rate ratio canary/stable (estimate)"
	ev.Statistic = fixedFinite(upTest.RateRatio)
	ev.PValue = &p
	ev.IntervalOf = fmt.Sprintf("error-rate ratio canary/stable (exact, %s two-sided)", fixedPct(conf))
	if !math.IsInf(hi, 0) {
		ev.Interval = []float64{lo, hi}
	} else {
		ev.IntervalOf += fmt.Sprintf(": at least %s, no upper bound without stable errors", fixedNum(lo))
	}
	ev.ThresholdOf = "tolerated error-rate ratio canary/stable (1+maxRelativeIncrease)"
	ev.Threshold = psi0

	d := Decision{Verdict: Successful, Evidence: ev}
	cmp := "≥"
	if p <= c.alpha {
		d.Verdict, cmp = Failed, fixedLE(p, c.alpha)
	}
	d.Message = fmt.Sprintf("%s: p=%s %s α=%s for %s", rates, fixedP(p), cmp, fixedNum(c.alpha), c.worseThan("ratio"))
	return d, nil, nil
}

// fixedLatencyJudge is NewFixed for compare latency.
type fixedLatencyJudge struct{ c fixedConfig }

var _ Judge = fixedLatencyJudge{}

// Assess implements Judge.
func (j fixedLatencyJudge) Assess(_ []byte, in Input) (Decision, []byte, error) {
	c := j.c
	grid, err := fixedMergeGrids(in.Canary.Latency, in.Stable.Latency)
	if err != nil {
		return Decision{}, nil, fmt.Errorf("fixed latency judge: %w", err)
	}
	nc, ns := grid.total(true), grid.total(false)
	ev := model.Evidence{
		Method: "mann-whitney u on latency histograms",
		Canary: fixedCountSample(in.Canary),
		Stable: fixedCountSample(in.Stable),
		Alpha:  c.alpha,
	}
	extra := []float64{0.5, 0.9, 0.99}
	if c.quantile > 0 {
		extra = append(extra, c.quantile)
	}
	ev.Canary.Quantiles = fixedQuantilesMs(grid.hist(true), extra)
	ev.Stable.Quantiles = fixedQuantilesMs(grid.hist(false), extra)
	names := []string{"p50", "p90", "p99"}
	if c.quantile > 0 {
		names = []string{fixedQuantileName(c.quantile)}
	}
	summary := fmt.Sprintf("canary %s %s ms vs stable %s ms (n=%d/%d)", strings.Join(names, "/"),
		fixedMsList(ev.Canary.Quantiles, names), fixedMsList(ev.Stable.Quantiles, names), nc, ns)
	if msg := c.waiting(int64(nc), int64(ns), "latency observations", in.Elapsed); msg != "" {
		return Decision{Verdict: NoData, Evidence: ev, Message: summary + ": " + msg}, nil, nil
	}

	var (
		p, ratio  float64
		test      string
		ratioName = "typical latency ratio"
	)
	if c.quantile > 0 {
		p, test, err = grid.exceedanceTest(c, &ev)
		if err != nil {
			return Decision{}, nil, fmt.Errorf("fixed latency judge: %w", err)
		}
		qc, _ := stats.HistQuantile(grid.hist(true), c.quantile)
		qs, _ := stats.HistQuantile(grid.hist(false), c.quantile)
		ratio = math.Max(qc, fixedLatencyFloor) / math.Max(qs, fixedLatencyFloor)
		ratioName = names[0] + " ratio"
	} else {
		// One-sided tests against the stable moved by the tolerance: "up"
		// compares with the stable (1+δ)× slower, "down" with it (1+δ)×
		// faster.
		k := toleranceShift(c.tol, grid.gridGamma())
		pUp, pDown := 1.0, 1.0
		var mw stats.MannWhitney
		if c.up {
			cc, sc := grid.shiftedCounts(k)
			mwUp, err := stats.MannWhitneyFromHistogram(cc, sc)
			if err != nil {
				return Decision{}, nil, fmt.Errorf("fixed latency judge: %w", err)
			}
			pUp, mw = mwUp.PValue(stats.TailGreater, true), mwUp
		}
		if c.down {
			cc, sc := grid.shiftedCounts(-k)
			mwDown, err := stats.MannWhitneyFromHistogram(cc, sc)
			if err != nil {
				return Decision{}, nil, fmt.Errorf("fixed latency judge: %w", err)
			}
			pDown = mwDown.PValue(stats.TailLess, true)
			if !c.up {
				mw = mwDown
			}
		}
		p = c.combine(pUp, pDown)
		z := mw.Z(stats.TailGreater, true)
		if c.down && !c.up {
			z = mw.Z(stats.TailLess, true)
		}
		ev.StatisticName = fmt.Sprintf("z (Mann-Whitney U=%s, CLES %s)", fixedNum(mw.U1), fixedNum(mw.CLES))
		ev.Statistic = fixedFinite(z)
		test = fmt.Sprintf("Mann-Whitney z=%s, CLES %s, p=%s", fixedNum(z), fixedNum(mw.CLES), fixedP(p))
		ratio = grid.hodgesLehmannRatio()
	}
	worse := (c.up && ratio > 1+c.tol) || (c.down && ratio < 1/(1+c.tol))
	ev.PValue = &p
	ev.ThresholdOf = fmt.Sprintf("tolerated %s canary/stable (1+maxRelativeIncrease); observed %s", ratioName, fixedNum(ratio))
	ev.Threshold = 1 + c.tol

	d := Decision{Verdict: Successful, Evidence: ev}
	switch {
	case p <= c.alpha && worse:
		d.Verdict = Failed
		bound := "> " + fixedNum(1+c.tol)
		if !(c.up && ratio > 1+c.tol) {
			bound = "< " + fixedNum(1/(1+c.tol))
		}
		d.Message = fmt.Sprintf("%s: %s %s α=%s and %s %s %s", summary, test, fixedLE(p, c.alpha), fixedNum(c.alpha),
			ratioName, fixedNum(ratio), bound)
	case p <= c.alpha:
		d.Message = fmt.Sprintf("%s: %s %s α=%s but %s %s is within the tolerance (worse means %s)", summary, test, fixedLE(p, c.alpha), fixedNum(c.alpha),
			ratioName, fixedNum(ratio), c.worseThan("ratio"))
	default:
		d.Message = fmt.Sprintf("%s: %s ≥ α=%s (%s %s)", summary, test, fixedNum(c.alpha), ratioName, fixedNum(ratio))
	}
	return d, nil, nil
}

// fixedGrid is the union of two versions' histogram buckets on their
// common grid, in increasing order.
type fixedGrid []fixedCell

type fixedCell struct {
	b              provider.Bucket // Count unused
	canary, stable uint64
}

// fixedMergeGrids aligns the two versions' buckets by key. The provider
// promises one global grid; a key with different bounds in the two
// versions means it did not, and comparing them would be meaningless.
func fixedMergeGrids(canary, stable []provider.Bucket) (fixedGrid, error) {
	cells := map[int32]*fixedCell{}
	add := func(bs []provider.Bucket, isCanary bool) error {
		for _, b := range bs {
			cell, ok := cells[b.Key]
			if !ok {
				cell = &fixedCell{b: b}
				cells[b.Key] = cell
			} else if cell.b.Lower != b.Lower || cell.b.Upper != b.Upper || cell.b.Value != b.Value {
				return fmt.Errorf("histogram grids differ at bucket %d: (%v, %v] vs (%v, %v]", b.Key, cell.b.Lower, cell.b.Upper, b.Lower, b.Upper)
			}
			if isCanary {
				cell.canary += b.Count
			} else {
				cell.stable += b.Count
			}
		}
		return nil
	}
	if err := add(canary, true); err != nil {
		return nil, err
	}
	if err := add(stable, false); err != nil {
		return nil, err
	}
	g := make(fixedGrid, 0, len(cells))
	for _, cell := range cells {
		g = append(g, *cell)
	}
	sort.Slice(g, func(a, b int) bool { return g[a].b.Key < g[b].b.Key })
	for i := 1; i < len(g); i++ {
		if g[i].b.Value < g[i-1].b.Value {
			return nil, fmt.Errorf("histogram buckets %d and %d are out of order (%v > %v)", g[i-1].b.Key, g[i].b.Key, g[i-1].b.Value, g[i].b.Value)
		}
	}
	return g, nil
}

func (g fixedGrid) total(canary bool) uint64 {
	var n uint64
	for _, c := range g {
		if canary {
			n += c.canary
		} else {
			n += c.stable
		}
	}
	return n
}

// counts returns the per-bucket counts of both versions for the rank test.
func (g fixedGrid) counts() (canary, stable []float64) {
	canary, stable = make([]float64, len(g)), make([]float64, len(g))
	for i, c := range g {
		canary[i], stable[i] = float64(c.canary), float64(c.stable)
	}
	return canary, stable
}

// hist returns one version's non-empty buckets in the stats form.
func (g fixedGrid) hist(canary bool) []stats.HistBucket {
	var out []stats.HistBucket
	for _, c := range g {
		n := c.stable
		if canary {
			n = c.canary
		}
		if n > 0 {
			out = append(out, stats.HistBucket{Lower: c.b.Lower, Upper: c.b.Upper, Value: c.b.Value, Count: n})
		}
	}
	return out
}

// exceedanceTest is the significance test of quantile mode, Mood's
// quantile test with the tolerance built in: x is the pooled q-quantile
// (the bucket holding it), and Fisher's exact test asks whether the canary
// has more observations beyond x·(1+δ) than the stable beyond x (below
// x/(1+δ) and x for direction decrease). A rank test of the whole
// distribution barely notices a regression of the slowest 1 %, this one is
// aimed at it. The pooled threshold is a symmetric function of all data, so
// for δ = 0 the test is exact under H₀ (both versions alike); a canary
// bucket counts only when it lies wholly beyond x·(1+δ), which errs on the
// side of passing. It fills the statistic of ev and returns p and a phrase
// for the message.
func (g fixedGrid) exceedanceTest(c fixedConfig, ev *model.Evidence) (float64, string, error) {
	nc, ns := int64(g.total(true)), int64(g.total(false))
	var pooled []stats.HistBucket
	for _, cell := range g {
		pooled = append(pooled, stats.HistBucket{Lower: cell.b.Lower, Upper: cell.b.Upper, Value: cell.b.Value, Count: cell.canary + cell.stable})
	}
	at := fixedRankBucket(pooled, c.quantile)
	const slack = 1e-12 // bucket bounds computed twice may differ in the last bit
	type side struct {
		canary, stable int64
		p              float64
	}
	var up, down side
	up.p, down.p = 1, 1
	hiX, loX := g[at].b.Upper, g[at].b.Lower
	for _, cell := range g {
		if cell.b.Lower >= hiX*(1+c.tol)*(1-slack) {
			up.canary += int64(cell.canary)
		}
		if cell.b.Lower >= hiX*(1-slack) {
			up.stable += int64(cell.stable)
		}
		if cell.b.Upper <= loX/(1+c.tol)*(1+slack) {
			down.canary += int64(cell.canary)
		}
		if cell.b.Upper <= loX*(1+slack) {
			down.stable += int64(cell.stable)
		}
	}
	for _, s := range []*side{&up, &down} {
		f, err := stats.FisherExact(s.canary, nc-s.canary, s.stable, ns-s.stable)
		if err != nil {
			return 0, "", err
		}
		s.p = f.PGreater
	}
	p := c.combine(up.p, down.p)
	name := fixedQuantileName(c.quantile)
	var parts []string
	if c.up {
		parts = append(parts, fmt.Sprintf("%s of canary above %s ms vs %s of stable above %s ms",
			fixedPct(float64(up.canary)/float64(nc)), fixedNum(hiX*(1+c.tol)*1000), fixedPct(float64(up.stable)/float64(ns)), fixedNum(hiX*1000)))
	}
	if c.down {
		parts = append(parts, fmt.Sprintf("%s of canary below %s ms vs %s of stable below %s ms",
			fixedPct(float64(down.canary)/float64(nc)), fixedNum(loX/(1+c.tol)*1000), fixedPct(float64(down.stable)/float64(ns)), fixedNum(loX*1000)))
	}
	ev.Method = fmt.Sprintf("exceedance of the pooled %s (Mood's quantile test, Fisher exact) on latency histograms", name)
	ev.StatisticName = "exceedance fractions: " + strings.Join(parts, "; ")
	frac := float64(up.canary) / float64(nc)
	if c.down && !c.up {
		frac = float64(down.canary) / float64(nc)
	}
	ev.Statistic = fixedFinite(frac)
	return p, strings.Join(parts, "; ") + ", p=" + fixedP(p), nil
}

// fixedRankBucket returns the index of the bucket holding quantile q by the
// sketch rank rule (the first bucket whose cumulative count exceeds
// q·(n−1)), the same rule stats.HistQuantile reads values with.
func fixedRankBucket(h []stats.HistBucket, q float64) int {
	rank := q * float64(stats.HistTotal(h)-1)
	var cum float64
	for i, b := range h {
		cum += float64(b.Count)
		if cum > rank {
			return i
		}
	}
	return len(h) - 1
}

// hodgesLehmannRatio returns exp of the lower weighted median of
// ln v_canary − ln v_stable over all pairs of observations (weights: the
// bucket counts' products), using each bucket's representative value. It
// finds the median by bisection on the log ratio t, counting the pairs with
// difference ≤ t in one merge pass, so the cost is O(buckets) per step
// rather than O(buckets²) pairs.
func (g fixedGrid) hodgesLehmannRatio() float64 {
	type pt struct{ x, w float64 }
	var cs, ss []pt
	for _, c := range g {
		v := math.Log(math.Max(c.b.Value, fixedLatencyFloor))
		if c.canary > 0 {
			cs = append(cs, pt{v, float64(c.canary)})
		}
		if c.stable > 0 {
			ss = append(ss, pt{v, float64(c.stable)})
		}
	}
	if len(cs) == 0 || len(ss) == 0 {
		return math.NaN()
	}
	var nc, ns float64
	for _, p := range cs {
		nc += p.w
	}
	for _, p := range ss {
		ns += p.w
	}
	half := nc * ns / 2
	// below(t) = Σ_i c_i · #{stable ≥ x_i − t}, the weight of pairs with
	// x_canary − x_stable ≤ t; x_i − t rises with i, so one pointer over
	// the stable buckets serves every canary bucket.
	below := func(t float64) float64 {
		sum, j, stableBelow := 0.0, 0, 0.0
		for _, c := range cs {
			for j < len(ss) && ss[j].x < c.x-t {
				stableBelow += ss[j].w
				j++
			}
			sum += c.w * (ns - stableBelow)
		}
		return sum
	}
	lo := cs[0].x - ss[len(ss)-1].x - 1 // below(lo) = 0
	hi := cs[len(cs)-1].x - ss[0].x     // below(hi) = all pairs
	for range 200 {
		mid := 0.5 * (lo + hi)
		if mid <= lo || mid >= hi {
			break
		}
		if below(mid) >= half {
			hi = mid
		} else {
			lo = mid
		}
	}
	return math.Exp(hi)
}

// fixedCountSample is a version's request side of the evidence.
func fixedCountSample(s provider.Sample) model.EvidenceSample {
	out := model.EvidenceSample{Requests: s.Requests, Errors: s.Errors}
	if s.Requests > 0 {
		out.ErrorRate = float64(s.Errors) / float64(s.Requests)
	}
	return out
}

// fixedQuantilesMs returns p50/p90/p99 (and any judged quantile) of a
// histogram in milliseconds, read by the sketch rank rule like the
// sequential judges do; nil without data.
func fixedQuantilesMs(h []stats.HistBucket, qs []float64) map[string]float64 {
	if stats.HistTotal(h) == 0 {
		return nil
	}
	out := make(map[string]float64, len(qs))
	for _, q := range qs {
		v, _ := stats.HistQuantile(h, q)
		out[fixedQuantileName(q)] = v * 1000
	}
	return out
}

// fixedQuantileName is "p50", "p99.9".
func fixedQuantileName(q float64) string {
	return "p" + strconv.FormatFloat(math.Round(q*1e6)/1e4, 'f', -1, 64)
}

// fixedMsList formats the named quantiles as "150/301/905" ("-" if absent).
func fixedMsList(qs map[string]float64, names []string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		v, ok := qs[n]
		if !ok {
			parts[i] = "-"
			continue
		}
		parts[i] = fixedNum(v)
	}
	return strings.Join(parts, "/")
}

// fixedPct formats a proportion as a percentage with three significant
// digits: "10.1%", "0.1%", "0.0123%".
func fixedPct(p float64) string {
	return strconv.FormatFloat(p*100, 'g', 3, 64) + "%"
}

// fixedP formats a p-value with two significant digits: "3e-40", "0.62".
func fixedP(p float64) string {
	return strconv.FormatFloat(p, 'g', 2, 64)
}

// fixedNum formats a statistic with three significant digits, without an
// exponent for everyday magnitudes.
func fixedNum(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return "∞"
	case math.IsNaN(x):
		return "NaN"
	case x != 0 && (math.Abs(x) >= 1e6 || math.Abs(x) < 1e-3):
		return strconv.FormatFloat(x, 'g', 3, 64)
	case math.Abs(x) >= 1000:
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

// fixedLE is "<" or, when the p-value sits exactly on alpha, "≤".
func fixedLE(p, alpha float64) string {
	if p == alpha {
		return "≤"
	}
	return "<"
}

// fixedFinite returns &x, or nil for NaN and ±Inf, which JSON cannot carry.
func fixedFinite(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// gridGamma is the ratio between consecutive bucket bounds of the grid
// (about 1.02 for the 1% grid), read from the first bucket with a positive
// lower bound; 0 when the grid does not say.
func (g fixedGrid) gridGamma() float64 {
	for _, c := range g {
		if c.b.Lower > 0 && c.b.Upper > c.b.Lower {
			return c.b.Upper / c.b.Lower
		}
	}
	return 0
}

// shiftedCounts lines up the canary's buckets against the stable's moved
// up by shift buckets (down when negative): on a log grid that is the
// stable's latencies multiplied by γ^shift. Testing the canary against
// that puts the tolerance into the null hypothesis ("the canary is at most
// (1+δ)× slower"), so a canary exactly at the tolerance fails no more than
// α of the time — a point-estimate gate next to a test of "no difference"
// does not hold that.
func (g fixedGrid) shiftedCounts(shift int) (canary, stable []float64) {
	type pair struct{ c, s float64 }
	cells := map[int64]*pair{}
	at := func(k int64) *pair {
		p, ok := cells[k]
		if !ok {
			p = &pair{}
			cells[k] = p
		}
		return p
	}
	for _, c := range g {
		at(int64(c.b.Key)).c += float64(c.canary)
		at(int64(c.b.Key) + int64(shift)).s += float64(c.stable)
	}
	keys := make([]int64, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a] < keys[b] })
	canary, stable = make([]float64, len(keys)), make([]float64, len(keys))
	for i, k := range keys {
		canary[i], stable[i] = cells[k].c, cells[k].s
	}
	return canary, stable
}

// toleranceShift is how many buckets (1+tol) spans on a grid of ratio
// gamma, rounded up so the test stays on the safe side.
func toleranceShift(tol, gamma float64) int {
	if tol <= 0 || gamma <= 1 {
		return 0
	}
	return int(math.Ceil(math.Log1p(tol)/math.Log(gamma) - 1e-9))
}
