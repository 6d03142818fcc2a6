package judge

import (
	"encoding/json"
	"fmt"
	"math"
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
// its share of all observations. Only three counters per judged quantile
// need to be kept, not the histograms.
type seqLatencyJudge struct{ c seqConfig }

var _ Judge = (*seqLatencyJudge)(nil)

// seqTrack is the exceedance test of one quantile in one direction. In
// direction up the canary is tested against the stable's threshold (the
// canary is worse when slower); down swaps the roles.
type seqTrack struct {
	Q  float64 `json:"q"`
	Up bool    `json:"up"`
	// Threshold is x in seconds, the upper bound of the bucket holding the
	// reference version's q-quantile at the previous call; 0 until that
	// version has data.
	Threshold float64 `json:"threshold"`
	// TestedAbove and RefAbove are the cumulative counts above x·(1+δ)
	// (tested version) and above x (reference version) at the previous call.
	TestedAbove uint64              `json:"testedAbove"`
	RefAbove    uint64              `json:"refAbove"`
	Grid        stats.RateRatioGrid `json:"grid"`
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
}

func (j *seqLatencyJudge) load(state []byte) (seqLatencyState, error) {
	var s seqLatencyState
	fresh, err := seqLoadState(state, j.c.key(), &s, &s.V, &s.Key)
	switch {
	case err != nil:
		return s, err
	case fresh:
		s = seqLatencyState{V: seqStateVersion, Key: j.c.key()}
		for _, up := range []bool{true, false} {
			if (up && !j.c.up) || (!up && !j.c.down) {
				continue
			}
			for _, q := range j.c.quantiles {
				// The null ψ = 1 at index 0, alternatives e^0.1 … e^2.0.
				g, err := stats.NewRateRatioGrid(0, seqStep, 0, seqMixWidth+1)
				if err != nil {
					return s, err
				}
				s.Tracks = append(s.Tracks, seqTrack{Q: q, Up: up, Grid: g})
			}
		}
		return s, nil
	}
	for _, t := range s.Tracks {
		if len(t.Grid.LogLR) != seqMixWidth+1 || t.Grid.Mid != 0 {
			return s, fmt.Errorf("sequential judge state is malformed: grids do not match the configuration")
		}
	}
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
// above, which errs towards "not slower".
func seqCountAbove(h []stats.HistBucket, x float64) uint64 {
	var n uint64
	for _, b := range h {
		if b.Lower >= x {
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
	batches := make([]stats.RateRatioBatch, len(tracks))
	for i, t := range tracks {
		if t.Threshold == 0 || reset {
			continue
		}
		tested, ref := seqRoles(t.Up, hc, hs)
		ta, ra := seqCountAbove(tested, t.Threshold*scale), seqCountAbove(ref, t.Threshold)
		if ta < t.TestedAbove || ra < t.RefAbove {
			reset = true
			continue
		}
		b := stats.RateRatioBatch{
			CanaryEvents: float64(ta - t.TestedAbove), BaselineEvents: float64(ra - t.RefAbove),
			CanaryExposure: float64(nc - s.CanaryN), BaselineExposure: float64(ns - s.StableN),
		}
		if !t.Up {
			b.CanaryExposure, b.BaselineExposure = b.BaselineExposure, b.CanaryExposure
		}
		batches[i] = b
	}
	fail := make([]float64, len(tracks))
	for i := range tracks {
		t := &tracks[i]
		if t.Threshold != 0 && !reset {
			t.Grid = t.Grid.Update(batches[i])
		}
		tested, ref := seqRoles(t.Up, hc, hs)
		t.Threshold = seqQuantileUpper(ref, t.Q)
		t.TestedAbove, t.RefAbove = seqCountAbove(tested, t.Threshold*scale), seqCountAbove(ref, t.Threshold)
		fail[i], _ = t.Grid.LogE(0, seqMixWidth, true)
	}
	s.Tracks = tracks
	s.CanaryN, s.StableN = nc, ns
	s.MaxLogE = max(s.MaxLogE, seqLogMeanExp(fail))
	if nc > 0 && ns > 0 {
		pass := true
		for _, q := range j.c.quantiles {
			cc, cs := j.quantileCS(hc, hs, q)
			if j.c.up {
				pass = pass && cc.Upper < cs.Lower*scale
			}
			if j.c.down {
				pass = pass && cs.Upper < cc.Lower*scale
			}
		}
		s.Passed = s.Passed || pass
	}
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
		if le, _ := t.Grid.LogE(0, seqMixWidth, true); le > best+1e-12 {
			focus, best = t, le
		}
	}
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
			ErrorRate: rate(in.Canary.Errors, in.Canary.Requests), Quantiles: seqQuantilesMs(hc, c.quantiles)},
		Stable: model.EvidenceSample{Requests: in.Stable.Requests, Errors: in.Stable.Errors,
			ErrorRate: rate(in.Stable.Errors, in.Stable.Requests), Quantiles: seqQuantilesMs(hs, c.quantiles)},
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
	names := make([]string, len(c.quantiles))
	for i, q := range c.quantiles {
		names[i] = seqQuantileName(q)
	}
	o.failReason = fmt.Sprintf("e-value %s ≥ %s = 1/α at %s, %s; %s", e, thr, name, worse, cs95)
	o.passReason = fmt.Sprintf("non-inferiority shown at %s, %s, e-value %s < %s = 1/α", strings.Join(names, ", "), cs95, e, thr)
	o.statusReason = fmt.Sprintf("e-value %s < %s = 1/α, %s", e, thr, cs95)
	return o, ev
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
