package judge

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/analysis/stats"
	"github.com/coalmine-dev/coalmine/internal/model"
)

// seqLatencyJudge is the sequential latency judge (see NewSequential).
//
// Why not the binned equality test of statistics.md §4.5.2 as it stands:
// it rejects any difference in distribution, a faster canary included, and
// against a stable scaled by (1+δ) it would fail a canary identical to
// stable. What the judge needs is one-sided — "slower than tolerated" — so
// it tests stochastic order through exceedances of thresholds, which is
// §4.5.2 collapsed to two bins (≤ x, > x) with §4.3's per-batch split: the
// canary's share of the observations above the threshold may not exceed
// its share of all observations. Only a few counters per judged quantile
// need to be kept, not the histograms.
type seqLatencyJudge struct{ c seqConfig }

var _ Judge = (*seqLatencyJudge)(nil)

// seqLatencyStateVersion is the latency state's own version (the error-rate
// state keeps seqStateVersion). Version 1 had no non-inferiority test on
// the exceedances: 21-entry grids holding the failure test alone.
const (
	seqLatencyStateVersion = 2
	seqLatencyV1GridLen    = seqMixWidth + 1
)

// seqTrack is the pair of exceedance tests of one quantile in one
// direction. In direction up the canary is tested against the stable's
// threshold (the canary is worse when slower); down swaps the roles.
//
// One grid holds both tests. Its points are ln ψ = (i − Mid)·0.1, Mid =
// seqMixWidth: the failure test (H₀: ψ ≤ 1 against ψ = e^0.1 … e^2.0) reads
// the upper half, the non-inferiority test (H₀: ψ ≥ 1 against ψ = e^−0.1 …
// e^−2.0) the lower half, and the null ψ = 1 in the middle has log-likelihood
// 0 whatever the data. The halves are fed different canary counts (see
// seqCountAbove and seqCountReaching), each rounded against its own test.
type seqTrack struct {
	Q  float64 `json:"q"`
	Up bool    `json:"up"`
	// Threshold is x in seconds, the upper bound of the bucket holding the
	// reference version's q-quantile at the previous call; 0 until that
	// version has data.
	Threshold float64 `json:"threshold"`
	// TestedAbove and RefAbove are the cumulative counts above x·(1+δ)
	// (tested version, buckets wholly above it) and above x (reference
	// version) at the previous call; TestedReach counts the tested
	// version's buckets that reach above x·(1+δ), straddling ones included.
	TestedAbove uint64              `json:"testedAbove"`
	TestedReach uint64              `json:"testedReach"`
	RefAbove    uint64              `json:"refAbove"`
	Grid        stats.RateRatioGrid `json:"grid"`
	// NIMaxLogE is the running maximum of the non-inferiority test's
	// ln e-value.
	NIMaxLogE float64 `json:"niMaxLogE"`

	// niFromHere marks a track upgraded from a version-1 state, which has
	// no TestedReach: its first non-inferiority batch is the next one.
	niFromHere bool
}

// seqLatencyState is the persisted latency test.
type seqLatencyState struct {
	V       int        `json:"v"`
	Key     string     `json:"key"`
	CanaryN uint64     `json:"canaryN"`
	StableN uint64     `json:"stableN"`
	Tracks  []seqTrack `json:"tracks"`
	MaxLogE float64    `json:"maxLogE"`
	Passed  bool       `json:"passed,omitempty"`
	// From is 1 in a state upgraded from version 1: it keeps that
	// version's key (and so its quantiles) to the end of the run.
	From int `json:"from,omitempty"`
}

// newLatencyGrid returns an empty two-sided track grid.
func newLatencyGrid() stats.RateRatioGrid {
	g, err := stats.NewRateRatioGrid(0, seqStep, seqMixWidth, 2*seqMixWidth+1)
	if err != nil {
		panic(err) // the constants make this unreachable
	}
	return g
}

func (j *seqLatencyJudge) load(state []byte) (seqLatencyState, error) {
	var s seqLatencyState
	if len(state) == 0 {
		s = seqLatencyState{V: seqLatencyStateVersion, Key: j.c.key()}
		for _, up := range []bool{true, false} {
			if (up && !j.c.up) || (!up && !j.c.down) {
				continue
			}
			for _, q := range j.c.quantiles {
				s.Tracks = append(s.Tracks, seqTrack{Q: q, Up: up, Grid: newLatencyGrid()})
			}
		}
		return s, nil
	}
	if err := json.Unmarshal(state, &s); err != nil {
		return s, fmt.Errorf("decode sequential judge state: %w", err)
	}
	key := j.c.key()
	switch {
	case s.V == 1 || (s.V == seqLatencyStateVersion && s.From == 1):
		key = j.c.v1Key()
	case s.V == seqLatencyStateVersion:
	default:
		return s, fmt.Errorf("sequential latency judge state version %d, this build reads 1 and %d", s.V, seqLatencyStateVersion)
	}
	if s.Key != key {
		return s, fmt.Errorf("sequential judge state was written for another configuration (%s, now %s): the test cannot continue with changed parameters", s.Key, key)
	}
	if len(s.Tracks) == 0 {
		return s, fmt.Errorf("sequential judge state is malformed: no tracks")
	}
	if s.V == 1 {
		return seqUpgradeV1(s)
	}
	for _, t := range s.Tracks {
		if len(t.Grid.LogLR) != 2*seqMixWidth+1 || t.Grid.Mid != seqMixWidth {
			return s, fmt.Errorf("sequential judge state is malformed: grids do not match the configuration")
		}
	}
	return s, nil
}

// seqUpgradeV1 carries a version-1 state (written by the previous build,
// perhaps mid-run) over: each failure grid becomes the upper half of the
// new grid unchanged, so the failure test continues as it was; the lower
// half starts at the null's value, so the non-inferiority test starts at
// e-value 1 from this call, which is a test started now and valid as such.
// The tracks keep the quantiles the run started with, whatever the
// defaults of this build: the failure mixture may not lose a part mid-run.
func seqUpgradeV1(s seqLatencyState) (seqLatencyState, error) {
	for i := range s.Tracks {
		t := &s.Tracks[i]
		if len(t.Grid.LogLR) != seqLatencyV1GridLen || t.Grid.Mid != 0 {
			return s, fmt.Errorf("sequential judge state is malformed: grids do not match the configuration")
		}
		g := newLatencyGrid()
		null := t.Grid.LogLR[0]
		for k := range g.LogLR {
			g.LogLR[k] = null
		}
		copy(g.LogLR[g.Mid:], t.Grid.LogLR)
		t.Grid, t.NIMaxLogE, t.niFromHere = g, 0, true
	}
	s.V, s.From = seqLatencyStateVersion, 1
	return s, nil
}

// Assess implements Judge.
func (j *seqLatencyJudge) Assess(state []byte, in Input) (Decision, []byte, error) {
	s, err := j.load(state)
	if err != nil {
		return Decision{}, nil, err
	}
	hc, hs := seqHistogram(in.Canary.Latency), seqHistogram(in.Stable.Latency)
	s = j.update(s, hc, hs)
	o, ev := j.outcome(s, in, hc, hs)
	v, msg := j.c.decide(o, in.Elapsed)
	next, err := json.Marshal(s)
	if err != nil {
		return Decision{}, nil, fmt.Errorf("encode sequential judge state: %w", err)
	}
	return Decision{Verdict: v, Evidence: ev, Message: msg}, next, nil
}

// seqCountAbove returns the observations of h certainly above x: those in
// buckets whose lower bound is at least x. Straddling buckets count as not
// above, which errs towards "not slower": the rounding of the failure test.
func seqCountAbove(h []stats.HistBucket, x float64) uint64 {
	var n uint64
	for _, b := range h {
		if b.Lower >= x {
			n += b.Count
		}
	}
	return n
}

// seqCountReaching returns the observations of h possibly above x: those in
// buckets whose upper bound exceeds x. Straddling buckets count as above,
// which errs towards "slower": the rounding of the non-inferiority test.
func seqCountReaching(h []stats.HistBucket, x float64) uint64 {
	var n uint64
	for _, b := range h {
		if b.Upper > x {
			n += b.Count
		}
	}
	return n
}

// seqQuantileUpper returns the upper bound of the bucket holding the
// ⌈q·n⌉-th smallest observation, or 0 without data or when that bucket is
// unbounded (the overflow bucket: nothing can exceed it).
func seqQuantileUpper(h []stats.HistBucket, q float64) float64 {
	n := stats.HistTotal(h)
	if n == 0 {
		return 0
	}
	r := max(uint64(math.Ceil(q*float64(n))), 1)
	var cum uint64
	for _, b := range h {
		cum += b.Count
		if cum >= r {
			if math.IsInf(b.Upper, 1) {
				return 0
			}
			return b.Upper
		}
	}
	return 0
}

// seqRoles returns (tested, reference) histograms for a track.
func seqRoles(up bool, hc, hs []stats.HistBucket) (tested, ref []stats.HistBucket) {
	if up {
		return hc, hs
	}
	return hs, hc
}

// seqTrackUpdate adds one batch to a track's grid: fail to the failure
// half (ln ψ ≥ 0), ni to the non-inferiority half (ln ψ < 0); the null in
// the middle stays 0 either way.
func seqTrackUpdate(g stats.RateRatioGrid, fail, ni stats.RateRatioBatch) stats.RateRatioGrid {
	up, down := g.Update(fail), g.Update(ni)
	copy(up.LogLR[:g.Mid], down.LogLR[:g.Mid])
	return up
}

// seqLatencyBatch holds one track's batch for each test; ni stays the
// zero value (no exposure: no change) when it cannot be formed.
type seqLatencyBatch struct {
	fail, ni stats.RateRatioBatch
}

// update adds the batch since the previous call, moves the thresholds to
// the reference version's current quantiles for the next batch, and
// records the decisions. It is a pure function of the state and the input.
func (j *seqLatencyJudge) update(s seqLatencyState, hc, hs []stats.HistBucket) seqLatencyState {
	nc, ns := stats.HistTotal(hc), stats.HistTotal(hs)
	scale := 1 + j.c.tol
	tracks := make([]seqTrack, len(s.Tracks))
	copy(tracks, s.Tracks)

	// Form every track's batch first: a counter that went backwards (a
	// reset) skips the whole batch.
	reset := nc < s.CanaryN || ns < s.StableN
	batches := make([]seqLatencyBatch, len(tracks))
	for i, t := range tracks {
		if t.Threshold == 0 || reset {
			continue
		}
		tested, ref := seqRoles(t.Up, hc, hs)
		ta, tr := seqCountAbove(tested, t.Threshold*scale), seqCountReaching(tested, t.Threshold*scale)
		ra := seqCountAbove(ref, t.Threshold)
		if ta < t.TestedAbove || ra < t.RefAbove || (!t.niFromHere && tr < t.TestedReach) {
			reset = true
			continue
		}
		batch := func(events, since uint64) stats.RateRatioBatch {
			b := stats.RateRatioBatch{
				CanaryEvents: float64(events - since), BaselineEvents: float64(ra - t.RefAbove),
				CanaryExposure: float64(nc - s.CanaryN), BaselineExposure: float64(ns - s.StableN),
			}
			if !t.Up {
				b.CanaryExposure, b.BaselineExposure = b.BaselineExposure, b.CanaryExposure
			}
			return b
		}
		batches[i].fail = batch(ta, t.TestedAbove)
		if !t.niFromHere {
			batches[i].ni = batch(tr, t.TestedReach)
		}
	}
	fail := make([]float64, len(tracks))
	pass := nc > 0 && ns > 0
	for i := range tracks {
		t := &tracks[i]
		if t.Threshold != 0 && !reset {
			// A batch without exposure (the zero value) changes nothing.
			t.Grid = seqTrackUpdate(t.Grid, batches[i].fail, batches[i].ni)
		}
		tested, ref := seqRoles(t.Up, hc, hs)
		t.Threshold = seqQuantileUpper(ref, t.Q)
		t.TestedAbove, t.TestedReach = seqCountAbove(tested, t.Threshold*scale), seqCountReaching(tested, t.Threshold*scale)
		t.RefAbove = seqCountAbove(ref, t.Threshold)
		t.niFromHere = false
		fail[i], _ = t.Grid.LogE(t.Grid.Mid, seqMixWidth, true)
		ni, _ := t.Grid.LogE(t.Grid.Mid, seqMixWidth, false)
		t.NIMaxLogE = max(t.NIMaxLogE, ni)
		pass = pass && t.NIMaxLogE >= j.c.logThreshold()
	}
	s.Tracks = tracks
	s.CanaryN, s.StableN = nc, ns
	s.MaxLogE = max(s.MaxLogE, seqLogMeanExp(fail))
	// Non-inferiority is an intersection-union test: the null "worse than
	// tolerated at some judged quantile (in some judged direction)" is a
	// union of the tracks' nulls, and it is rejected only when every
	// track's own test has rejected its part at level α. Whichever part
	// is true, a false pass needs that part's test to reach 1/α, which
	// happens with probability ≤ α (Ville), so no α is split among the
	// tracks. Each track keeps its running maximum, as the error-rate
	// judge keeps Passed: a decision once reached is final.
	s.Passed = s.Passed || pass
	return s
}

// quantileCS returns both versions' confidence sequences for quantile q,
// each at α/2 so that the pair holds with probability ≥ 1−α.
func (j *seqLatencyJudge) quantileCS(hc, hs []stats.HistBucket, q float64) (canary, stable stats.SeqInterval) {
	return stats.HistQuantileCS(hc, q, j.c.alpha/2), stats.HistQuantileCS(hs, q, j.c.alpha/2)
}

// outcome gathers the numbers, the evidence and the reasons. The quantile
// reported is the one whose test holds the most evidence of a regression
// (the first judged one while none does).
func (j *seqLatencyJudge) outcome(s seqLatencyState, in Input, hc, hs []stats.HistBucket) (seqOutcome, model.Evidence) {
	c := j.c
	focus, best := s.Tracks[0], math.Inf(-1)
	for _, t := range s.Tracks {
		if le, _ := t.Grid.LogE(t.Grid.Mid, seqMixWidth, true); le > best+1e-12 {
			focus, best = t, le
		}
	}
	// The judged quantiles are the tracks' (a run upgraded from an older
	// state keeps the ones it started with).
	quantiles := seqTrackQuantiles(s.Tracks)
	q := focus.Q
	cc, cs := j.quantileCS(hc, hs, q)
	lo, hi := seqRatio(cc.Lower, cs.Upper), seqRatio(cc.Upper, cs.Lower)
	rate := func(errors, requests int64) float64 {
		if requests == 0 {
			return 0
		}
		return float64(errors) / float64(requests)
	}
	ev := model.Evidence{
		Method: "sequential tail rate-ratio test on latency histograms (grid mixture) with quantile confidence sequences",
		Canary: model.EvidenceSample{Requests: in.Canary.Requests, Errors: in.Canary.Errors,
			ErrorRate: rate(in.Canary.Errors, in.Canary.Requests), Quantiles: seqQuantilesMs(hc, quantiles)},
		Stable: model.EvidenceSample{Requests: in.Stable.Requests, Errors: in.Stable.Errors,
			ErrorRate: rate(in.Stable.Errors, in.Stable.Requests), Quantiles: seqQuantilesMs(hs, quantiles)},
		IntervalOf: fmt.Sprintf("canary/stable %s latency ratio (anytime-valid, 1-alpha)", seqQuantileName(q)),
		Interval:   []float64{lo, hi},
	}
	seqEEvidence(&ev, c, s.MaxLogE)

	name := seqQuantileName(q)
	qc, _ := stats.HistQuantile(hc, q)
	qs, _ := stats.HistQuantile(hs, q)
	o := seqOutcome{
		samples: int64(min(s.CanaryN, s.StableN)),
		failed:  s.MaxLogE >= c.logThreshold(),
		passed:  s.Passed,
		summary: fmt.Sprintf("canary %s %s vs stable %s (n=%d/%d)", name, seqMs(qc), seqMs(qs), s.CanaryN, s.StableN),
	}
	switch {
	case s.CanaryN == 0:
		o.noData = fmt.Sprintf("no canary latency observations yet (stable n=%d)", s.StableN)
	case s.StableN == 0:
		o.noData = fmt.Sprintf("no stable latency observations yet (canary n=%d)", s.CanaryN)
	}
	e, thr := seqNum(math.Exp(s.MaxLogE)), seqNum(1/c.alpha)
	cs95 := fmt.Sprintf("%s %s (%s CS; %s)", name, seqRatioCS(lo, hi, false), c.confidencePct(), c.tolerated())
	// The counts behind the failing test, at its current threshold x: the
	// tested version's share above x·(1+δ) against the reference's above x.
	worse := fmt.Sprintf("canary slower than %s × stable", seqNum(1+c.tol))
	tested, ref, testedName, refName := "canary", "stable", hc, hs
	if !focus.Up {
		worse = fmt.Sprintf("canary faster than stable / %s", seqNum(1+c.tol))
		tested, ref, testedName, refName = "stable", "canary", hs, hc
	}
	if x := focus.Threshold; x > 0 {
		share := func(h []stats.HistBucket, above float64) string {
			return seqPct(float64(seqCountAbove(h, above)) / float64(max(stats.HistTotal(h), 1)))
		}
		worse += fmt.Sprintf(" (%s of %s requests > %s vs %s of %s requests > %s, its %s)",
			share(testedName, x*(1+c.tol)), tested, seqMs(x*(1+c.tol)), share(refName, x), ref, seqMs(x), name)
	}
	names := make([]string, len(quantiles))
	for i, q := range quantiles {
		names[i] = seqQuantileName(q)
	}
	o.failReason = fmt.Sprintf("e-value %s ≥ %s = 1/α at %s, %s; %s", e, thr, name, worse, cs95)
	o.passReason = fmt.Sprintf("non-inferiority shown at %s (%s), %s, e-value %s < %s = 1/α",
		strings.Join(names, ", "), seqNIProgress(s.Tracks, c), cs95, e, thr)
	o.statusReason = fmt.Sprintf("e-value %s < %s = 1/α, %s; non-inferiority %s", e, thr, cs95, seqNIProgress(s.Tracks, c))
	return o, ev
}

// seqTrackQuantiles returns the distinct quantiles of the tracks, in order.
func seqTrackQuantiles(tracks []seqTrack) []float64 {
	var qs []float64
	for _, t := range tracks {
		if !slices.Contains(qs, t.Q) {
			qs = append(qs, t.Q)
		}
	}
	return qs
}

// seqNIProgress lists each track's non-inferiority e-value (running
// maximum) against the 1/α every one of them must reach for a pass:
// "e-values p50 120, p90 31 of 100 needed each".
func seqNIProgress(tracks []seqTrack, c seqConfig) string {
	parts := make([]string, len(tracks))
	for i, t := range tracks {
		name := seqQuantileName(t.Q)
		switch {
		case c.up && c.down && t.Up:
			name += " (no slower)"
		case c.up && c.down:
			name += " (no faster)"
		}
		parts[i] = name + " " + seqNum(math.Exp(t.NIMaxLogE))
	}
	return fmt.Sprintf("e-values %s of %s needed each", strings.Join(parts, ", "), seqNum(1/c.alpha))
}

// seqRatio divides confidence bounds: a/0 is +Inf for a > 0 and 0/b is 0.
func seqRatio(a, b float64) float64 {
	switch {
	case a == 0:
		return 0
	case b == 0:
		return math.Inf(1)
	}
	return a / b
}

// seqMs formats a latency in seconds as milliseconds.
func seqMs(seconds float64) string {
	if math.IsNaN(seconds) {
		return "n/a"
	}
	return seqNum(seconds*1000) + " ms"
}
