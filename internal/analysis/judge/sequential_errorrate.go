package judge

import (
	"encoding/json"
	"fmt"
	"math"

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
	fresh, err := seqLoadState(state, j.c.key(), &s, &s.V, &s.Key)
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
		return s, nil
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
	cur := [2]seqCounts{
		{Requests: in.Canary.Requests, Errors: in.Canary.Errors},
		{Requests: in.Stable.Requests, Errors: in.Stable.Errors},
	}
	s = j.update(s, cur)
	o, ev := j.outcome(s, in)
	v, msg := j.c.decide(o, in.Elapsed)
	next, err := json.Marshal(s)
	if err != nil {
		return Decision{}, nil, fmt.Errorf("encode sequential judge state: %w", err)
	}
	return Decision{Verdict: v, Evidence: ev, Message: msg}, next, nil
}

// update adds the batch since the previous call and the decisions it
// allows. It is a pure function of the state and the new counters.
func (j *seqErrorRateJudge) update(s seqErrorRateState, cur [2]seqCounts) seqErrorRateState {
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
	} // else: the counters went backwards (a reset); restart the batches from here.
	s.Canary, s.Stable = cur[0], cur[1]

	var fail []float64
	pass := true
	for _, g := range []*stats.RateRatioGrid{s.Up, s.Down} {
		if g == nil {
			continue
		}
		le, _ := g.LogE(g.Mid, seqMixWidth, true)
		fail = append(fail, le)
		ni, _ := g.LogE(g.Mid, seqMixWidth, false)
		pass = pass && ni >= j.c.logThreshold()
	}
	s.MaxLogE = max(s.MaxLogE, seqLogMeanExp(fail))
	s.Passed = s.Passed || pass
	return s
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
	rate := func(x seqCounts) float64 {
		if x.Requests == 0 {
			return 0
		}
		return float64(x.Errors) / float64(x.Requests)
	}
	lo, hi := j.interval(s)
	ev := model.Evidence{
		Method: "sequential rate-ratio test (grid mixture, per-batch split)",
		Canary: model.EvidenceSample{Requests: s.Canary.Requests, Errors: s.Canary.Errors, ErrorRate: rate(s.Canary),
			Quantiles: seqQuantilesMs(seqHistogram(in.Canary.Latency), nil)},
		Stable: model.EvidenceSample{Requests: s.Stable.Requests, Errors: s.Stable.Errors, ErrorRate: rate(s.Stable),
			Quantiles: seqQuantilesMs(seqHistogram(in.Stable.Latency), nil)},
		IntervalOf: "canary/stable error-rate ratio (anytime-valid bounds, each at 1-alpha)",
		Interval:   []float64{lo, hi},
	}
	seqEEvidence(&ev, c, s.MaxLogE)

	o := seqOutcome{
		samples: min(s.Canary.Requests, s.Stable.Requests),
		failed:  s.MaxLogE >= c.logThreshold(),
		passed:  s.Passed,
		summary: fmt.Sprintf("canary error rate %s vs stable %s (n=%d/%d)",
			seqPct(rate(s.Canary)), seqPct(rate(s.Stable)), s.Canary.Requests, s.Stable.Requests),
	}
	switch {
	case s.Canary.Requests == 0:
		o.noData = fmt.Sprintf("no canary requests yet (stable n=%d)", s.Stable.Requests)
	case s.Stable.Requests == 0:
		o.noData = fmt.Sprintf("no stable requests yet (canary n=%d)", s.Canary.Requests)
	}
	e, thr := seqNum(math.Exp(s.MaxLogE)), seqNum(1/c.alpha)
	cs := fmt.Sprintf("%s (%s CS; %s)", seqRatioCS(lo, hi, true), c.confidencePct(), c.tolerated())
	o.failReason = fmt.Sprintf("e-value %s ≥ %s = 1/α, %s", e, thr, cs)
	o.passReason = fmt.Sprintf("non-inferiority shown, %s, e-value %s < %s = 1/α", cs, e, thr)
	o.statusReason = fmt.Sprintf("e-value %s < %s = 1/α, %s", e, thr, cs)
	return o, ev
}
