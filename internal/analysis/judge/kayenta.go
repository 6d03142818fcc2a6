package judge

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis/stats"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

const (
	// kayentaDefaultQuantile is the latency read from each interval's
	// histogram when the spec names none. Kayenta judges whatever value a
	// query returns per step, and what canary configurations most often
	// query for latency is a high percentile: a regression shows in the
	// tail first, and the per-step median of a service that got slower for
	// a tenth of its requests does not move. The cost is noise: the p99 of
	// an interval with fewer than 100 requests is its slowest request, so
	// intervals should hold a few hundred requests per version.
	kayentaDefaultQuantile = 0.99
	kayentaStateVersion    = 1
)

// NewKayenta returns the judge of method kayenta (issue 15, statistics.md
// §2): Kayenta's Mann-Whitney classifier on time series, one point per
// evaluation and version, for teams that know Spinnaker's canary analysis.
//
// Each call forms the batch since the previous call (the difference of the
// cumulative counters and histograms, kept in the state) and appends one
// point per version: for compare error-rate the batch's error rate
// (errors/requests), for latency the batch's quantile `quantile` (p99 by
// default) read from the batch's histogram. A batch without requests (or
// without latency observations) is NaN for that version, which Kayenta's
// NaN strategy "remove" drops; a version whose counters went back (a
// reset) gets a NaN for that call and its current counters become the
// reference of the next batch. The metric's interval is therefore
// Kayenta's step: `interval: 60s` makes one point a minute.
//
// The series (at most spec.KayentaMaxPoints points per version, the oldest
// dropped beyond that) are classified with stats.KayentaClassify, control
// = stable and experiment = canary, with Kayenta's judge defaults except:
// the interval's level is 1−alpha (alpha 0.02 by default: Kayenta's 98 %),
// direction comes from the judge, and the effect a High needs is a mean
// ratio canary/stable ≥ 1+maxRelativeIncrease (a Low ≤ 1/(1+δ)), so the
// tolerance means what it means for the other judges. Verdicts:
//
//  1. NoData while either version has fewer than minSamples points (not
//     NaN); the default is the fewest with which the interval can exclude
//     zero at all (5 at alpha 0.02, spec.KayentaMinPoints).
//  2. A critical judge (judge.critical) is Failed as soon as the label is
//     High (direction increase or either) or Low (decrease or either), as
//     Kayenta's critical metrics fail a run on their own.
//  3. At a limit — min(canary, stable) points ≥ maxSamples, or Elapsed ≥
//     maxDuration — Successful when the label is Pass, Failed when it is
//     High or Low; a label that is not a classification (Error: the
//     interval could not be computed) follows onLimit: Successful with
//     pass, Inconclusive with inconclusive.
//  4. Otherwise Continue, with the current label in the message and the
//     evidence. A High or Low of a judge that is not critical lands here:
//     its label lowers the run's Kayenta score, and the score decides the
//     run (internal/analysis), not this metric alone.
//
// The classifier is a fixed-horizon test re-run at every call on growing
// series, so the chance of failing a canary as good as the stable grows
// with the number of calls (docs/analysis.md). The state is JSON (the
// reference counters and both series); a judge resumed from it decides
// exactly as an uninterrupted one.
func NewKayenta(j spec.Judge) (Judge, error) {
	c, err := newKayentaConfig(j)
	if err != nil {
		return nil, err
	}
	return &kayentaJudge{c: c}, nil
}

// kayentaConfig is a judge spec with its defaults applied and checked.
type kayentaConfig struct {
	compare     string
	alpha       float64
	tol         float64
	up, down    bool
	quantile    float64 // latency only
	minPoints   int64
	maxPoints   int64 // 0: none
	maxDuration time.Duration
	onLimitPass bool
	critical    bool
}

func newKayentaConfig(j spec.Judge) (kayentaConfig, error) {
	if j.Method != spec.JudgeMethodKayenta {
		return kayentaConfig{}, fmt.Errorf("kayenta judge built for method %q", j.Method)
	}
	cm, err := parseCommon(j, spec.KayentaDefaultAlpha)
	if err != nil {
		return kayentaConfig{}, err
	}
	if cm.absTol > 0 {
		return kayentaConfig{}, fmt.Errorf("maxAbsoluteIncrease applies to method sequential; method kayenta has only maxRelativeIncrease")
	}
	c := kayentaConfig{compare: cm.compare, alpha: cm.alpha, tol: cm.tol, up: cm.up, down: cm.down,
		maxPoints: cm.maxSamples, maxDuration: cm.maxDuration, onLimitPass: cm.onLimitPass, critical: j.Critical}
	if c.compare == spec.JudgeCompareLatency {
		c.quantile = kayentaDefaultQuantile
		if len(cm.quantiles) > 0 {
			c.quantile = cm.quantiles[0] // one: quantiles is refused below sequential
		}
	}
	least := spec.KayentaMinPoints(c.alpha)
	if least > spec.KayentaMaxPoints {
		return c, fmt.Errorf("alpha %v needs more than %d points per version before the interval can exclude zero", c.alpha, spec.KayentaMaxPoints)
	}
	c.minPoints = least
	if cm.minSamples != nil {
		if n := *cm.minSamples; n < least {
			return c, fmt.Errorf("minSamples %d: with fewer than %d points per version the %v interval can never exclude zero", n, least, 1-c.alpha)
		}
		c.minPoints = *cm.minSamples
	}
	for _, f := range []struct {
		name string
		n    int64
	}{{"minSamples", c.minPoints}, {"maxSamples", c.maxPoints}} {
		if f.n > spec.KayentaMaxPoints {
			return c, fmt.Errorf("%s %d: the judge keeps at most %d points per version", f.name, f.n, spec.KayentaMaxPoints)
		}
	}
	if c.maxPoints > 0 && c.maxPoints < c.minPoints {
		return c, fmt.Errorf("maxSamples %d is below minSamples %d", c.maxPoints, c.minPoints)
	}
	return c, nil
}

// key fingerprints what the points mean; a state written for another
// comparison or quantile is refused, since its series would be mixed with
// different values. The thresholds are not part of it: the series is data,
// and every call classifies it afresh.
func (c kayentaConfig) key() string {
	return fmt.Sprintf("kayenta %s q=%g", c.compare, c.quantile)
}

// classifierConfig is Kayenta's judge configuration with the judge's
// level, direction and tolerance.
func (c kayentaConfig) classifierConfig() stats.KayentaConfig {
	cfg := stats.DefaultKayentaConfig()
	cfg.ConfidenceLevel = 1 - c.alpha
	switch {
	case c.up && c.down:
		cfg.Direction = spec.DirectionEither
	case c.down:
		cfg.Direction = spec.DirectionDecrease
	default:
		cfg.Direction = spec.DirectionIncrease
	}
	cfg.AllowedIncrease = 1 + c.tol
	cfg.AllowedDecrease = 1 / (1 + c.tol)
	return cfg
}

// pointName says what one point is, for messages: "error rate", "p99".
func (c kayentaConfig) pointName() string {
	if c.compare == spec.JudgeCompareLatency {
		return seqQuantileName(c.quantile)
	}
	return "error rate"
}

// kayentaSeries is one version's reference counters and points.
type kayentaSeries struct {
	// Requests, Errors and Latency are the cumulative data at the previous
	// call: the next batch is what was added since.
	Requests int64          `json:"requests"`
	Errors   int64          `json:"errors"`
	Latency  []kayentaCount `json:"latency,omitempty"`
	// Points are the per-call values, oldest first; null is NaN (a batch
	// without data or after a reset).
	Points []*float64 `json:"points"`
	// Dropped counts the oldest points removed to keep the bound.
	Dropped int `json:"dropped,omitempty"`
}

// kayentaCount is a histogram bucket's cumulative count, by grid key.
type kayentaCount struct {
	Key   int32  `json:"k"`
	Count uint64 `json:"n"`
}

type kayentaState struct {
	V      int           `json:"v"`
	Key    string        `json:"key"`
	Canary kayentaSeries `json:"canary"`
	Stable kayentaSeries `json:"stable"`
}

// kayentaJudge is NewKayenta's judge.
type kayentaJudge struct{ c kayentaConfig }

var _ Judge = (*kayentaJudge)(nil)

func (j *kayentaJudge) load(state []byte) (kayentaState, error) {
	s := kayentaState{V: kayentaStateVersion, Key: j.c.key()}
	if len(state) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(state, &s); err != nil {
		return s, fmt.Errorf("decode kayenta judge state: %w", err)
	}
	if s.V != kayentaStateVersion {
		return s, fmt.Errorf("kayenta judge state version %d, this build reads %d", s.V, kayentaStateVersion)
	}
	if s.Key != j.c.key() {
		return s, fmt.Errorf("kayenta judge state was written for other points (%s, now %s): the series cannot continue", s.Key, j.c.key())
	}
	return s, nil
}

// Assess implements Judge.
func (j *kayentaJudge) Assess(state []byte, in Input) (Decision, []byte, error) {
	c := j.c
	for _, v := range []struct {
		name string
		s    provider.Sample
	}{{"canary", in.Canary}, {"stable", in.Stable}} {
		if v.s.Requests < 0 || v.s.Errors < 0 || v.s.Errors > v.s.Requests {
			return Decision{}, nil, fmt.Errorf("kayenta judge: %s has %d errors in %d requests", v.name, v.s.Errors, v.s.Requests)
		}
	}
	s, err := j.load(state)
	if err != nil {
		return Decision{}, nil, err
	}
	s.Canary = c.extend(s.Canary, in.Canary)
	s.Stable = c.extend(s.Stable, in.Stable)
	next, err := json.Marshal(s)
	if err != nil {
		return Decision{}, nil, fmt.Errorf("encode kayenta judge state: %w", err)
	}
	d := c.decide(s, in)
	return d, next, nil
}

// extend appends the point of the batch between the series' reference and
// cur, and makes cur the new reference.
func (c kayentaConfig) extend(s kayentaSeries, cur provider.Sample) kayentaSeries {
	point := math.NaN()
	if c.compare == spec.JudgeCompareLatency {
		batch, reset := kayentaHistDiff(s.Latency, cur.Latency)
		if !reset && stats.HistTotal(batch) > 0 {
			point, _ = stats.HistQuantile(batch, c.quantile)
		}
	} else {
		req, errs := cur.Requests-s.Requests, cur.Errors-s.Errors
		if req > 0 && errs >= 0 && errs <= req {
			point = float64(errs) / float64(req)
		}
	}
	s.Requests, s.Errors = cur.Requests, cur.Errors
	s.Latency = nil // an error-rate judge keeps no histogram: the state stays small
	if c.compare == spec.JudgeCompareLatency {
		s.Latency = make([]kayentaCount, len(cur.Latency))
		for i, b := range cur.Latency {
			s.Latency[i] = kayentaCount{Key: b.Key, Count: b.Count}
		}
	}
	var p *float64
	if !math.IsNaN(point) {
		p = &point
	}
	s.Points = append(s.Points[:len(s.Points):len(s.Points)], p)
	if over := len(s.Points) - spec.KayentaMaxPoints; over > 0 {
		s.Points = s.Points[over:]
		s.Dropped += over
	}
	return s
}

// kayentaHistDiff returns the histogram of what cur adds to prev, or reset
// when a bucket's count went back (the counters restarted).
func kayentaHistDiff(prev []kayentaCount, cur []provider.Bucket) (batch []stats.HistBucket, reset bool) {
	before := make(map[int32]uint64, len(prev))
	for _, p := range prev {
		before[p.Key] = p.Count
	}
	for _, b := range cur {
		n, ok := before[b.Key]
		if b.Count < n {
			return nil, true
		}
		delete(before, b.Key)
		if ok && b.Count == n {
			continue
		}
		batch = append(batch, stats.HistBucket{Lower: b.Lower, Upper: b.Upper, Value: b.Value, Count: b.Count - n})
	}
	for _, n := range before {
		if n > 0 { // a bucket that disappeared went back to zero
			return nil, true
		}
	}
	return batch, false
}

// values returns the series' non-NaN points.
func (s kayentaSeries) values() []float64 {
	out := make([]float64, 0, len(s.Points))
	for _, p := range s.Points {
		if p != nil {
			out = append(out, *p)
		}
	}
	return out
}

// decide applies the rules of NewKayenta to the series.
func (c kayentaConfig) decide(s kayentaState, in Input) Decision {
	xs, ys := s.Canary.values(), s.Stable.values()
	nc, ns := int64(len(xs)), int64(len(ys))
	ev := model.Evidence{
		Method: fmt.Sprintf("kayenta mann-whitney classifier on the %s of each interval", c.pointName()),
		Canary: fixedCountSample(in.Canary),
		Stable: fixedCountSample(in.Stable),
		Alpha:  c.alpha,
	}
	if c.compare == spec.JudgeCompareLatency {
		ev.Canary.Quantiles = seqQuantilesMs(seqHistogram(in.Canary.Latency), []float64{c.quantile})
		ev.Stable.Quantiles = seqQuantilesMs(seqHistogram(in.Stable.Latency), []float64{c.quantile})
	}
	summary := fmt.Sprintf("canary %s per interval %s vs stable %s (mean of %d/%d points)",
		c.pointName(), c.show(kayentaMean(xs)), c.show(kayentaMean(ys)), nc, ns)

	lim, atLimit := "", false
	switch {
	case c.maxPoints > 0 && min(nc, ns) >= c.maxPoints:
		lim, atLimit = fmt.Sprintf("maxSamples %d points", c.maxPoints), true
	case c.maxDuration > 0 && in.Elapsed >= c.maxDuration:
		lim, atLimit = "maxDuration "+c.maxDuration.String(), true
	}
	if min(nc, ns) < c.minPoints {
		msg := fmt.Sprintf("%s: below minSamples %d points per version", summary, c.minPoints)
		if atLimit {
			msg += fmt.Sprintf(" (%s reached without enough points to classify)", lim)
		}
		return Decision{Verdict: NoData, Evidence: ev, Message: msg}
	}

	cfg := c.classifierConfig()
	cl := stats.KayentaClassify(ys, xs, cfg)
	c.fillEvidence(&ev, cl, nc, ns)
	label := fmt.Sprintf("label %s: %s", cl.Label, cl.Reason)
	if !math.IsNaN(cl.Deviation) && cl.Label != stats.KayentaError {
		label += fmt.Sprintf(", mean ratio %s", seqNum(cl.Deviation))
	}
	worse := cl.Label == stats.KayentaHigh || cl.Label == stats.KayentaLow
	switch {
	case worse && c.critical:
		return Decision{Verdict: Failed, Evidence: ev, Message: fmt.Sprintf("%s: %s, %s; critical: fails the run on its own", summary, label, c.worse())}
	case worse && atLimit:
		return Decision{Verdict: Failed, Evidence: ev, Message: fmt.Sprintf("%s: %s, %s; %s reached", summary, label, c.worse(), lim)}
	case worse:
		return Decision{Verdict: Continue, Evidence: ev, Message: fmt.Sprintf("%s: %s, %s, so far; not critical: the run's Kayenta score decides", summary, label, c.worse())}
	case atLimit && cl.Label == stats.KayentaPass:
		return Decision{Verdict: Successful, Evidence: ev, Message: fmt.Sprintf("%s: %s; %s reached", summary, label, lim)}
	case atLimit && c.onLimitPass:
		return Decision{Verdict: Successful, Evidence: ev, Message: fmt.Sprintf("%s: %s; %s reached without a regression shown, onLimit pass", summary, label, lim)}
	case atLimit:
		return Decision{Verdict: Inconclusive, Evidence: ev, Message: fmt.Sprintf("%s: %s; %s reached without a classification, onLimit inconclusive", summary, label, lim)}
	}
	return Decision{Verdict: Continue, Evidence: ev, Message: fmt.Sprintf("%s: %s so far", summary, label)}
}

// worse says what a High or Low needed, for the message of a failure.
func (c kayentaConfig) worse() string {
	hi, lo := seqNum(1+c.tol), seqNum(1/(1+c.tol))
	switch {
	case c.up && c.down:
		return fmt.Sprintf("tolerated mean ratio %s to %s", lo, hi)
	case c.down:
		return "tolerated mean ratio ≥ " + lo
	}
	return "tolerated mean ratio ≤ " + hi
}

// fillEvidence puts the classification into ev: the label, the mean ratio
// as the statistic, the shift interval with its estimate and the points.
func (c kayentaConfig) fillEvidence(ev *model.Evidence, cl stats.KayentaClassification, nc, ns int64) {
	ev.Label = string(cl.Label)
	ev.StatisticName = "mean ratio canary/stable of the points (Kayenta's effect size)"
	ev.Statistic = fixedFinite(cl.Deviation)
	scale, unit := 1.0, ""
	if c.compare == spec.JudgeCompareLatency {
		scale, unit = 1000, " ms"
	}
	ev.IntervalOf = fmt.Sprintf("shift canary − stable of the %s per interval%s (Mann-Whitney, %s two-sided; estimate %s; %d/%d points)",
		c.pointName(), unit, seqPct(1-c.alpha), seqNum(cl.Estimate*scale), nc, ns)
	if !math.IsNaN(cl.CILower) && !math.IsNaN(cl.CIUpper) {
		ev.Interval = []float64{cl.CILower * scale, cl.CIUpper * scale}
	}
	ev.ThresholdOf = "tolerated mean ratio canary/stable (1+maxRelativeIncrease); the interval must also clear 25% of the estimate"
	ev.Threshold = 1 + c.tol
}

// show formats a point value: a percentage or milliseconds.
func (c kayentaConfig) show(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case c.compare == spec.JudgeCompareLatency:
		return seqNum(v*1000) + " ms"
	}
	return seqPct(v)
}

// kayentaMean is the arithmetic mean, NaN without values.
func kayentaMean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
