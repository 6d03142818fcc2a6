package judge

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis/stats"
	"github.com/coalmine-dev/coalmine/internal/model"
)

// seqErrorRateJudge is the sequential error-rate judge (see NewSequential).
// It keeps nothing between calls: everything lives in the state.
type seqErrorRateJudge struct{ c seqConfig }

var _ Judge = (*seqErrorRateJudge)(nil)

// seqCounts is one version's cumulative counters.
type seqCounts struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
}

// seqErrorRateState is the persisted test: the counters of the previous
// call (to form the next batch), the grids and the running decisions.
type seqErrorRateState struct {
	V      int       `json:"v"`
	Key    string    `json:"key"`
	Canary seqCounts `json:"canary"`
	Stable seqCounts `json:"stable"`
	// Up is the log-likelihood of ψ = canary rate / stable rate, for
	// direction increase or either; Down the same with the versions
	// swapped, for decrease or either.
	Up   *stats.RateRatioGrid `json:"up,omitempty"`
	Down *stats.RateRatioGrid `json:"down,omitempty"`
	// MaxLogE is the running maximum of ln e-value for failure, Passed
	// whether non-inferiority was shown at some call.
	MaxLogE float64 `json:"maxLogE"`
	Passed  bool    `json:"passed,omitempty"`
	// Horizon is the one fixed-horizon look (nil when no limit ends the
	// test, or in a state written before the look existed, which keeps
	// all of α on the e-values as it started).
	Horizon *seqHorizon `json:"horizon,omitempty"`
	// AbsFailed records that the absolute margin was shown exceeded at
	// some call (maxAbsoluteIncrease; the verdict also needs the ratio).
	AbsFailed bool `json:"absFailed,omitempty"`
}

// seqHorizon is the score test of stats.RateRatioScore, one per judged
// direction, taken once when the first limit is reached.
type seqHorizon struct {
	Up   *stats.RateRatioScore `json:"up,omitempty"`
	Down *stats.RateRatioScore `json:"down,omitempty"`
	// Looked is set at the look; Rejected when it showed a regression, Z
	// and Critical are the larger direction's numbers for the message.
	Looked   bool `json:"looked,omitempty"`
	Rejected bool `json:"rejected,omitempty"`
	// AbsRejected: the look also showed the difference beyond Δ (the
	// absolute part of the null, with maxAbsoluteIncrease).
	AbsRejected bool    `json:"absRejected,omitempty"`
	Z           float64 `json:"z,omitempty"`
	Critical    float64 `json:"critical,omitempty"`
}

// newGrid returns the empty error-rate grid, centred on ln(1+δ).
func (j *seqErrorRateJudge) newGrid() *stats.RateRatioGrid {
	g, err := stats.NewRateRatioGrid(math.Log1p(j.c.tol), seqStep, seqHalfWidth, 2*seqHalfWidth+1)
	if err != nil {
		panic(err) // the constants and a validated δ make this unreachable
	}
	return &g
}

func (j *seqErrorRateJudge) load(state []byte) (seqErrorRateState, error) {
	var s seqErrorRateState
	// A run started before the absolute margin and the horizon look
	// resumes under the rules it started with (see Assess).
	keys := []string{j.c.key(), j.c.legacyKey()}
	fresh, err := seqLoadStateKeys(state, keys, &s, &s.V, &s.Key)
	switch {
	case err != nil:
		return s, err
	case fresh:
		s = seqErrorRateState{V: seqStateVersion, Key: j.c.key()}
		if j.c.up {
			s.Up = j.newGrid()
		}
		if j.c.down {
			s.Down = j.newGrid()
		}
		if j.c.hasHorizon() {
			s.Horizon = &seqHorizon{}
			psi0 := math.Log1p(j.c.tol)
			if j.c.up {
				s.Horizon.Up = &stats.RateRatioScore{LogPsi0: psi0}
			}
			if j.c.down {
				s.Horizon.Down = &stats.RateRatioScore{LogPsi0: psi0}
			}
		}
		return s, nil
	}
	if s.Key == j.c.key() && j.c.hasHorizon() && s.Horizon == nil {
		return s, fmt.Errorf("sequential judge state is malformed: no horizon look for a judge with a limit")
	}
	for _, g := range []struct {
		want bool
		g    *stats.RateRatioGrid
	}{{j.c.up, s.Up}, {j.c.down, s.Down}} {
		if g.want != (g.g != nil) || (g.g != nil && len(g.g.LogLR) != 2*seqHalfWidth+1) {
			return s, fmt.Errorf("sequential judge state is malformed: grids do not match the configuration")
		}
	}
	return s, nil
}

// Assess implements Judge.
func (j *seqErrorRateJudge) Assess(state []byte, in Input) (Decision, []byte, error) {
	s, err := j.load(state)
	if err != nil {
		return Decision{}, nil, err
	}
	if s.Key != j.c.key() {
		// A state from before the absolute margin: judged without it (it
		// has no horizon either), as when it started. Changing the rules
		// half-way would void the guarantee.
		legacy := *j
		legacy.c.absTol = 0
		j = &legacy
	}
	cur := [2]seqCounts{
		{Requests: in.Canary.Requests, Errors: in.Canary.Errors},
		{Requests: in.Stable.Requests, Errors: in.Stable.Errors},
	}
	s = j.update(s, cur, in.Elapsed)
	o, ev := j.outcome(s, in)
	v, msg := j.c.decide(o, in.Elapsed)
	next, err := json.Marshal(s)
	if err != nil {
		return Decision{}, nil, fmt.Errorf("encode sequential judge state: %w", err)
	}
	return Decision{Verdict: v, Evidence: ev, Message: msg}, next, nil
}

// The α budget. Failure: without a horizon look all of α goes to the
// e-values; with one, a fifth, and four fifths to the look (split between
// the directions for either). A canary within the tolerance is then failed
// with probability ≤ α/5 + 4α/5, at whatever time the test is stopped.
// Why that split: bench/stats measured, for errors 0.5% → 1% (ratio 2
// against a tolerated 1.5) over 10 minutes, detection of 32% (20 canary
// req/s) and 81% (50 req/s) with all of α on the e-values, 55% and 95%
// with half on the look, 61% and 96% with four fifths, against 65% and
// 98% for one fixed-horizon test at 10 minutes: anytime validity costs an
// e-value about sqrt(2·ln(1/α)) standard errors where one look needs
// z₁₋α, so the look recovers most of the power a fixed test has at its
// horizon, while large regressions (0.5% → 5%) are still caught by the
// e-values in 4 s instead of 3. With
// maxAbsoluteIncrease the canary fails only when the absolute part of the
// null is rejected too: the null "within the relative or the absolute
// tolerance" is a union, rejected only when each part is, so each part
// keeps the whole α. The absolute part is rejected when confidence
// sequences of each version's rate show the difference beyond Δ (α/2: 3/4
// of it to the tested version, 1/4 to the other, which has the larger
// sample at low weights), or through the reference's lower bound l (α/4):
// l ≥ Δ/δ means (1+δ)·p ≥ p + Δ, the relative tolerance is the larger and
// the absolute part of the null lies inside the relative part, which the
// e-values test; or the ratio's anytime lower bound (α/4) exceeds
// 1 + Δ/l (see absPartRejected). Halved per direction for either. With a
// horizon look these anytime routes share a fifth of α, as the e-values
// do, and the look tests the difference beyond Δ with the rest.
// Non-inferiority: the canary passes when the ratio is shown below 1+δ
// (the rate-ratio grid) or the difference below Δ (the confidence
// sequences); with Δ each of the two gets α/2 (3/8 and 1/8 for the
// versions' sequences).

// eAlpha is the level of the failure e-values.
func (j *seqErrorRateJudge) eAlpha(s seqErrorRateState) float64 {
	if s.Horizon != nil {
		return j.c.alpha * seqEShare
	}
	return j.c.alpha
}

// seqEShare is the e-values' share of α when a horizon look is taken.
const seqEShare = 0.2

// dirs is the number of judged directions.
func (c seqConfig) dirs() float64 {
	if c.up && c.down {
		return 2
	}
	return 1
}

// update adds the batch since the previous call and the decisions it
// allows. It is a pure function of the state, the new counters and the
// elapsed time (which says whether the horizon look is due).
func (j *seqErrorRateJudge) update(s seqErrorRateState, cur [2]seqCounts, elapsed time.Duration) seqErrorRateState {
	dc := seqCounts{Requests: cur[0].Requests - s.Canary.Requests, Errors: cur[0].Errors - s.Canary.Errors}
	ds := seqCounts{Requests: cur[1].Requests - s.Stable.Requests, Errors: cur[1].Errors - s.Stable.Errors}
	if dc.Requests >= 0 && dc.Errors >= 0 && ds.Requests >= 0 && ds.Errors >= 0 {
		b := stats.RateRatioBatch{
			CanaryEvents: float64(dc.Errors), BaselineEvents: float64(ds.Errors),
			CanaryExposure: float64(dc.Requests), BaselineExposure: float64(ds.Requests),
		}
		if s.Up != nil {
			g := s.Up.Update(b)
			s.Up = &g
		}
		if s.Down != nil {
			g := s.Down.Update(seqSwapBatch(b))
			s.Down = &g
		}
		if h := s.Horizon; h != nil && !h.Looked {
			next := *h
			if h.Up != nil {
				u := h.Up.Add(b)
				next.Up = &u
			}
			if h.Down != nil {
				d := h.Down.Add(seqSwapBatch(b))
				next.Down = &d
			}
			s.Horizon = &next
		}
	} // else: the counters went backwards (a reset); restart the batches from here.
	s.Canary, s.Stable = cur[0], cur[1]

	var fail []float64
	relPassAlpha := j.c.alpha
	if j.c.absTol > 0 {
		relPassAlpha = j.c.alpha / 2
	}
	pass := !s.Passed
	for i, g := range []*stats.RateRatioGrid{s.Up, s.Down} {
		if g == nil {
			continue
		}
		le, _ := g.LogE(g.Mid, seqMixWidth, true)
		fail = append(fail, le)
		if !pass {
			continue // shown already, or not in the other direction
		}
		ni, _ := g.LogE(g.Mid, seqMixWidth, false)
		ok := ni >= -math.Log(relPassAlpha)
		if !ok && j.c.absTol > 0 {
			tested, ref := s.Canary, s.Stable
			if i == 1 {
				tested, ref = ref, tested
			}
			ok = j.absNonInferior(tested, ref)
		}
		pass = ok
	}
	s.MaxLogE = max(s.MaxLogE, seqLogMeanExp(fail))
	s.Passed = s.Passed || pass
	if j.c.absTol > 0 && !s.AbsFailed {
		a0 := j.absFailAlpha(s)
		s.AbsFailed = (s.Up != nil && j.absPartRejected(s.Canary, s.Stable, s.Up, a0)) || (s.Down != nil && j.absPartRejected(s.Stable, s.Canary, s.Down, a0))
	}
	if h := s.Horizon; h != nil && !h.Looked {
		if _, at := j.c.limit(min(s.Canary.Requests, s.Stable.Requests), elapsed); at {
			s.Horizon = j.look(*h, s.Canary, s.Stable)
		}
	}
	return s
}

// absFailAlpha is the level of the anytime routes that reject the absolute
// part of a failure: like the e-values, a fifth of α when the look at the
// limit takes the rest (the look then tests the difference too).
func (j *seqErrorRateJudge) absFailAlpha(s seqErrorRateState) float64 {
	if s.Horizon != nil {
		return j.c.alpha * seqEShare
	}
	return j.c.alpha
}

// look takes the horizon's one fixed-horizon test: the score test of the
// ratio and, with maxAbsoluteIncrease, a one-sided z-test of the
// difference beyond Δ (unpooled variances; the absolute part of the null
// at the look, so that a small regression on little reference traffic is
// not held back by the anytime bounds of each rate).
func (j *seqErrorRateJudge) look(h seqHorizon, canary, stable seqCounts) *seqHorizon {
	h.Looked = true
	a := j.c.alpha * (1 - seqEShare) / j.c.dirs()
	if j.c.absTol > 0 {
		zc := stats.NormQuantile(1 - a)
		h.AbsRejected = (h.Up != nil && seqDiffZ(canary, stable, j.c.absTol) >= zc) ||
			(h.Down != nil && seqDiffZ(stable, canary, j.c.absTol) >= zc)
	}
	first := true
	for _, sc := range []*stats.RateRatioScore{h.Up, h.Down} {
		if sc == nil {
			continue
		}
		z, ok := sc.Z()
		crit, _ := sc.Critical(a)
		if !ok {
			continue
		}
		if first || z-crit > h.Z-h.Critical {
			h.Z, h.Critical, first = z, crit, false
		}
		h.Rejected = h.Rejected || sc.Reject(a)
	}
	return &h
}

// seqDiffZ is the z statistic of the tested rate minus the reference's
// against Δ, with each version's binomial variance (at least that of half
// an event, so that a version without errors still counts as uncertain).
func seqDiffZ(tested, ref seqCounts, delta float64) float64 {
	if tested.Requests == 0 || ref.Requests == 0 {
		return math.Inf(-1)
	}
	v := func(x seqCounts) float64 {
		n := float64(x.Requests)
		p := max(seqRate(x), 0.5/n)
		return p * (1 - p) / n
	}
	return (seqRate(tested) - seqRate(ref) - delta) / math.Sqrt(v(tested)+v(ref))
}

// absBounds returns the anytime-valid bounds of the tested and the
// reference version's rates the absolute margin compares, at the pass
// (upper tested, lower reference) or the fail (lower tested, upper
// reference) budget.
func (j *seqErrorRateJudge) absBounds(tested, ref seqCounts, forPass bool, a0 float64) (t, r float64) {
	if forPass {
		a := j.c.alpha / 2
		return stats.BernoulliUpperBound(tested.Errors, tested.Requests, a*3/4),
			stats.BernoulliLowerBound(ref.Errors, ref.Requests, a/4)
	}
	a := a0 / 2 / j.c.dirs()
	return stats.BernoulliLowerBound(tested.Errors, tested.Requests, a*3/4),
		stats.BernoulliUpperBound(ref.Errors, ref.Requests, a/4)
}

// absPartRejected reports whether the absolute part of the failure null,
// tested ≤ reference + Δ, is rejected (see the α budget): by the two
// versions' own confidence sequences (α/2), or through the reference's
// lower bound l (α/4, shared by two routes): when l ≥ Δ/δ the relative
// tolerance is the larger and the relative test decides alone; otherwise
// the ratio's anytime lower bound (α/4, the grid g of this direction)
// above 1 + Δ/l shows tested > reference·(1 + Δ/l) ≥ reference + Δ. The
// second way is as fast as the ratio test itself, where the first needs
// the looser bounds of each rate: without it a canary going from 0.5% to
// 2% errors waited twice as long for the absolute part as for the ratio.
func (j *seqErrorRateJudge) absPartRejected(tested, ref seqCounts, g *stats.RateRatioGrid, a0 float64) bool {
	if j.absWorse(tested, ref, a0) {
		return true
	}
	if ref.Requests == 0 || tested.Requests == 0 {
		return false
	}
	a := a0 / 4 / j.c.dirs()
	if j.c.tol > 0 {
		floor := j.c.absTol / j.c.tol
		// The lower bound is at least floor exactly when H₀: p ≤ floor is
		// rejected (the test is monotone): one e-value, no search.
		if floor < 1 && seqRate(ref) > floor && stats.BernoulliLowerLogE(ref.Errors, ref.Requests, floor) >= -math.Log(a) {
			return true
		}
	}
	if seqRate(tested) <= seqRate(ref)+j.c.absTol {
		return false // the ratio's bound lies below its estimate: cannot show it
	}
	l := stats.BernoulliLowerBound(ref.Errors, ref.Requests, a)
	if l <= 0 {
		return false
	}
	return g.LowerBound(seqMixWidth, -math.Log(a)) > 1+j.c.absTol/l
}

// absNonInferior reports whether the tested rate is shown below the
// reference's plus Δ: the tested version's upper bound below the
// reference's lower bound plus Δ. The tests are monotone in the bound, so
// this is the tested version's test at u = (reference's lower bound) + Δ,
// and it is first tried at the reference's estimate + Δ, above any lower
// bound: when it fails there it fails everywhere below, which settles
// most calls with one e-value instead of a search.
func (j *seqErrorRateJudge) absNonInferior(tested, ref seqCounts) bool {
	if tested.Requests == 0 || ref.Requests == 0 || seqRate(tested) >= seqRate(ref)+j.c.absTol {
		return false // the bounds lie beyond the estimates: cannot pass
	}
	a := j.c.alpha / 2
	thr := -math.Log(a * 3 / 4)
	if stats.BernoulliUpperLogE(tested.Errors, tested.Requests, seqRate(ref)+j.c.absTol) < thr {
		return false
	}
	r := stats.BernoulliLowerBound(ref.Errors, ref.Requests, a/4)
	return stats.BernoulliUpperLogE(tested.Errors, tested.Requests, r+j.c.absTol) >= thr
}

// absWorse reports whether the tested rate is shown above the reference's
// plus Δ, the mirror of absNonInferior, at α/2.
func (j *seqErrorRateJudge) absWorse(tested, ref seqCounts, a0 float64) bool {
	if tested.Requests == 0 || ref.Requests == 0 || seqRate(tested) <= seqRate(ref)+j.c.absTol {
		return false
	}
	a := a0 / 2 / j.c.dirs()
	thr := -math.Log(a * 3 / 4)
	if stats.BernoulliLowerLogE(tested.Errors, tested.Requests, seqRate(ref)+j.c.absTol) < thr {
		return false
	}
	r := stats.BernoulliUpperBound(ref.Errors, ref.Requests, a/4)
	return r+j.c.absTol < 1 && stats.BernoulliLowerLogE(tested.Errors, tested.Requests, r+j.c.absTol) >= thr
}

// seqRate is a version's observed error rate (0 without requests).
func seqRate(x seqCounts) float64 {
	if x.Requests == 0 {
		return 0
	}
	return float64(x.Errors) / float64(x.Requests)
}

// seqSwapBatch exchanges the versions' roles, for the decrease direction.
func seqSwapBatch(b stats.RateRatioBatch) stats.RateRatioBatch {
	return stats.RateRatioBatch{
		CanaryEvents: b.BaselineEvents, BaselineEvents: b.CanaryEvents,
		CanaryExposure: b.BaselineExposure, BaselineExposure: b.CanaryExposure,
	}
}

// seqLogMeanExp is ln of the mean of exp(xs): averaging e-values is how
// the two directions of "either" are combined without splitting α.
func seqLogMeanExp(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = max(m, x)
	}
	if len(xs) == 0 || math.IsInf(m, -1) {
		return math.Inf(-1)
	}
	sum := 0.0
	for _, x := range xs {
		sum += math.Exp(x - m)
	}
	return m + math.Log(sum/float64(len(xs)))
}

// interval returns the anytime-valid bounds of ψ = canary rate / stable
// rate from the grid of the judged direction.
func (j *seqErrorRateJudge) interval(s seqErrorRateState) (lo, hi float64) {
	thr := j.c.logThreshold()
	if s.Up != nil {
		return s.Up.LowerBound(seqMixWidth, thr), s.Up.UpperBound(seqMixWidth, thr)
	}
	// Down bounds 1/ψ.
	return 1 / s.Down.UpperBound(seqMixWidth, thr), 1 / s.Down.LowerBound(seqMixWidth, thr)
}

// tolerated describes the tolerated range of ψ for messages.
func (c seqConfig) tolerated() string {
	hi, lo := seqNum(1+c.tol), seqNum(1/(1+c.tol))
	switch {
	case c.up && c.down:
		return fmt.Sprintf("tolerated %s … %s", lo, hi)
	case c.down:
		return "tolerated ≥ " + lo
	}
	return "tolerated ≤ " + hi
}

// outcome gathers the numbers, the evidence and the reasons.
func (j *seqErrorRateJudge) outcome(s seqErrorRateState, in Input) (seqOutcome, model.Evidence) {
	c := j.c
	lo, hi := j.interval(s)
	ev := model.Evidence{
		Method: "sequential rate-ratio test (grid mixture, per-batch split)",
		Canary: model.EvidenceSample{Requests: s.Canary.Requests, Errors: s.Canary.Errors, ErrorRate: seqRate(s.Canary),
			Quantiles: seqQuantilesMs(seqHistogram(in.Canary.Latency), nil)},
		Stable: model.EvidenceSample{Requests: s.Stable.Requests, Errors: s.Stable.Errors, ErrorRate: seqRate(s.Stable),
			Quantiles: seqQuantilesMs(seqHistogram(in.Stable.Latency), nil)},
		IntervalOf: "canary/stable error-rate ratio (anytime-valid bounds, each at 1-alpha)",
		Interval:   []float64{lo, hi},
	}
	if s.Horizon != nil {
		ev.Method += " with one fixed-horizon score test at the limit"
	}
	if c.absTol > 0 {
		ev.Method += " and an absolute margin (confidence sequences of each rate)"
	}
	seqEEvidence(&ev, c, s.MaxLogE)
	eA := j.eAlpha(s)
	ev.Threshold, ev.Alpha = 1/eA, c.alpha

	eFailed := s.MaxLogE >= -math.Log(eA)
	lookFailed := s.Horizon != nil && s.Horizon.Rejected
	o := seqOutcome{
		samples: min(s.Canary.Requests, s.Stable.Requests),
		failed:  (eFailed || lookFailed) && (c.absTol == 0 || s.AbsFailed || (s.Horizon != nil && s.Horizon.AbsRejected)),
		passed:  s.Passed,
		summary: fmt.Sprintf("canary error rate %s vs stable %s (n=%d/%d)",
			seqPct(seqRate(s.Canary)), seqPct(seqRate(s.Stable)), s.Canary.Requests, s.Stable.Requests),
	}
	switch {
	case s.Canary.Requests == 0:
		o.noData = fmt.Sprintf("no canary requests yet (stable n=%d)", s.Stable.Requests)
	case s.Stable.Requests == 0:
		o.noData = fmt.Sprintf("no stable requests yet (canary n=%d)", s.Canary.Requests)
	}
	e, thr := seqNum(math.Exp(s.MaxLogE)), seqNum(1/eA)+" = 1/α"
	if eA != c.alpha {
		thr = seqNum(1/eA) + " = 5/α" // 4/5 of α is kept for the look at the limit
	}
	cs := fmt.Sprintf("%s (%s CS; %s)", seqRatioCS(lo, hi, true), c.confidencePct(), c.tolerated())
	abs := ""
	if c.absTol > 0 && o.noData == "" {
		// The bounds take a search each; a running test states them only
		// once something is decided or the limit is near.
		_, atLimit := c.limit(o.samples, in.Elapsed)
		if s.Passed || o.failed || s.AbsFailed || atLimit {
			abs = "; " + j.absSummary(s, o.failed || s.AbsFailed)
		} else {
			abs = fmt.Sprintf("; absolute margin (%s points) not shown either way yet", seqNum(c.absTol*100))
		}
	}
	switch {
	case eFailed:
		o.failReason = fmt.Sprintf("e-value %s ≥ %s, %s%s", e, thr, cs, abs)
	case lookFailed:
		o.failReason = fmt.Sprintf("the fixed-horizon look at the limit shows it: score z %s ≥ %s (its share of α), e-value %s, %s%s",
			seqNum(s.Horizon.Z), seqNum(s.Horizon.Critical), e, cs, abs)
	}
	o.passReason = fmt.Sprintf("non-inferiority shown, %s%s, e-value %s < %s", cs, abs, e, thr)
	o.statusReason = fmt.Sprintf("e-value %s < %s, %s%s", e, thr, cs, abs)
	if (eFailed || lookFailed) && !o.failed {
		o.statusReason = fmt.Sprintf("ratio beyond %s shown, but not beyond the absolute margin: %s%s", seqNum(1+c.tol), cs, abs)
	}
	return o, ev
}

// absSummary states the absolute margin's bounds for messages: for a pass
// the canary's upper bound against the stable's lower bound plus Δ, for a
// failure the canary's lower bound against the stable's upper bound (for
// direction increase; the mirror for decrease).
func (j *seqErrorRateJudge) absSummary(s seqErrorRateState, failing bool) string {
	c := j.c
	tested, ref, tn, rn := s.Canary, s.Stable, "canary", "stable"
	if c.down && !c.up {
		tested, ref, tn, rn = ref, tested, rn, tn
	}
	margin := seqPct(c.absTol)
	t, r := j.absBounds(tested, ref, !failing, j.absFailAlpha(s))
	if failing {
		return fmt.Sprintf("%s rate > %s vs %s ≤ %s (tolerated: %s ≤ %s + %s)", tn, seqPct(t), rn, seqPct(r), tn, rn, margin)
	}
	return fmt.Sprintf("%s rate < %s vs %s ≥ %s (tolerated: %s ≤ %s + %s)", tn, seqPct(t), rn, seqPct(r), tn, rn, margin)
}
