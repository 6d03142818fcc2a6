package judge

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis/stats"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Defaults of the sequential judges for fields the configuration leaves
// unset.
const (
	// seqDefaultAlpha bounds the probability that a canary as good as
	// stable (within the tolerance) is ever failed.
	seqDefaultAlpha = 0.05
	// seqDefaultAbsTol is maxAbsoluteIncrease's default for error rates,
	// 0.1 percentage points (one request in a thousand; see
	// docs/analysis.md): a canary as clean as its stable passes early, and
	// a rise that small is not called a regression whatever the ratio.
	seqDefaultAbsTol = 0.001
)

// seqDefaultQuantiles are the latency quantiles judged when the spec names
// none: the median and p90. p99 is left out, of the failure test as well
// as of non-inferiority, because a pass needs every judged quantile's
// non-inferiority and p99's needs about 38,000 canary observations for a
// healthy canary at a 5 % tolerance (median over simulated runs; p50 and
// p90 need about 8,500), past the 10 minutes of a typical step at 50
// canary requests a second. Users who want the tail judged add it with
// quantiles (docs/analysis.md has the table).
var seqDefaultQuantiles = []float64{0.5, 0.9}

// Grid of the rate-ratio tests (statistics.md §4.3): ln ψ in steps of 0.1
// around the null, with alternatives 0.1 … 2.0 beyond it (ratios ×1.105 …
// ×7.4 of the tolerance), equally weighted. The error-rate grid reaches
// seqHalfWidth steps either side of ln(1+δ), so the reported confidence
// bounds range over (1+δ)·e^(±7).
const (
	seqStep         = 0.1
	seqMixWidth     = 20
	seqHalfWidth    = 70
	seqStateVersion = 1
)

// NewSequential returns the judge of method sequential for compare
// error-rate or latency (SPEC §5.4, statistics.md §4). Both are one-sided
// anytime-valid tests: the judge may be asked after every request and the
// probability that it ever fails a canary that is within the tolerance
// stays ≤ alpha. The rules, in the order they are applied at each call:
//
//  1. Data. The input holds cumulative counts since the run started; the
//     batch is the difference from the previous call's counts (kept in
//     the state). A batch with negative differences (the counters were
//     reset) is skipped and the counts are taken as the new reference.
//     The test statistics are updated on every call, whatever follows.
//  2. NoData when either version has no data at all (no requests for
//     error-rate, no latency observations for latency): nothing can be
//     compared yet, and low traffic is never a reason to fail.
//  3. Below minSamples (either version, if set) the verdict is NoData
//     (SPEC §5.4): no decision is taken, the statistics keep accumulating
//     in the state, and the analysis engine treats it like any lack of data
//     (onNoData; by default wait, and pause after progressDeadline).
//  4. Failed once the e-value for "the canary is worse than
//     (1+maxRelativeIncrease) × stable" has reached 1/alpha at any call so
//     far (Ville's inequality; the running maximum is kept in the state, so
//     the decision is final).
//  5. Successful once non-inferiority has been shown at any call so far:
//     the (1−alpha) confidence sequence puts the canary below
//     (1+maxRelativeIncrease) × stable.
//  6. At a limit — min(canary, stable) samples ≥ maxSamples, or Elapsed ≥
//     maxDuration — Successful with onLimit pass (the default) and
//     Inconclusive with onLimit inconclusive.
//  7. Otherwise Continue.
//
// Error rate: the rate-ratio grid mixture of statistics.md §4.3 on error
// counts with request counts as exposure. Each batch uses its own observed
// split ρ_k = canary requests / all requests of the batch, so the test stays
// valid when the weight changes between steps (a batch should not span a
// weight change; with one evaluation per second that is at most a second
// of mixed traffic). ψ is the canary's per-request error rate over the
// stable's. Failure tests H₀: ψ ≤ 1+δ against ψ = (1+δ)·e^(0.1…2.0);
// non-inferiority tests H₀: ψ ≥ 1+δ against ψ = (1+δ)·e^−(0.1…2.0); the
// reported interval inverts the same tests on the grid (each end holds
// with probability ≥ 1−alpha; conservative by one grid step, 10 %).
//
// Latency: one-sided tests of stochastic order on the histograms.
// maxRelativeIncrease scales the stable's latencies: the canary is "worse"
// when P(canary > (1+δ)·x) > P(stable > x) for some x, i.e. when it is
// slower than the stable slowed down by (1+δ). For each judged quantile q
// (quantile, quantiles, or p50 and p90 when neither is set) the threshold x
// is the upper bound of the bucket holding the stable's q-quantile as of
// the previous call (chosen before the batch it judges, so the tests stay
// valid), and every batch contributes the two arms' counts above x·(1+δ)
// (canary) and above x (stable), with the batch's observation counts as
// exposure, to rate-ratio grid mixtures on ψ, the canary's exceedance rate
// over the stable's. Failure tests H₀: ψ ≤ 1 against ψ = e^(0.1…2.0); a
// canary bucket counts as above only if its lower bound is ≥ x·(1+δ), so
// the tolerance is rounded up to the grid (by at most one bucket, ≈2 %).
// The judged quantiles' failure e-values are averaged (a mixture, no α
// splitting). Non-inferiority is the mirror test on the same exceedances,
// H₀: ψ ≥ 1 (the canary's q-quantile at least (1+δ) × the stable's)
// against ψ = e^−(0.1…2.0), with a canary bucket counted as above when its
// upper bound exceeds x·(1+δ), so that here too the rounding favours the
// null. The judge passes once every judged quantile's test has reached
// 1/α (intersection-union: each at α, see seqLatencyJudge.update). With
// the default maxRelativeIncrease 0 an identical canary is on that null
// and is not passed early: it passes at a limit. The time-uniform quantile
// confidence sequences of §4.5.1 (each version at alpha/2) give the
// reported interval only.
//
// direction decrease runs the same tests with canary and stable swapped
// (the canary is worse when lower); either runs both, averages the two
// e-values for failure and needs non-inferiority both ways to pass.
// Defaults: alpha 0.05, maxRelativeIncrease 0, direction increase, onLimit
// pass, latency quantiles p50 and p90. The state is JSON (previous counts, the grids' log-likelihoods and
// the running maximum); a judge resumed from it after a restart decides
// exactly as an uninterrupted one.
func NewSequential(j spec.Judge) (Judge, error) {
	c, err := newSeqConfig(j)
	if err != nil {
		return nil, err
	}
	if c.compare == spec.JudgeCompareLatency {
		return &seqLatencyJudge{c: c}, nil
	}
	return &seqErrorRateJudge{c: c}, nil
}

// seqConfig is a judge spec with its defaults applied and checked.
type seqConfig struct {
	compare   string
	alpha     float64
	tol       float64 // δ, maxRelativeIncrease
	absTol    float64 // Δ, maxAbsoluteIncrease as a proportion; error-rate only
	up, down  bool    // which directions count as worse
	quantiles []float64
	// defaultQuantiles: the spec named none (a state of version 1 was
	// keyed with that build's default set).
	defaultQuantiles bool
	minSamples       int64
	maxSamples       int64
	maxDuration      time.Duration
	onLimitPass      bool
}

func newSeqConfig(j spec.Judge) (seqConfig, error) {
	switch j.Method {
	case "", spec.JudgeMethodSequential:
	default:
		return seqConfig{}, fmt.Errorf("sequential judge built for method %q", j.Method)
	}
	cm, err := parseCommon(j, seqDefaultAlpha)
	if err != nil {
		return seqConfig{}, err
	}
	c := seqConfig{compare: cm.compare, alpha: cm.alpha, tol: cm.tol, absTol: cm.absTol, up: cm.up, down: cm.down,
		maxSamples: cm.maxSamples, maxDuration: cm.maxDuration, onLimitPass: cm.onLimitPass}
	switch {
	case len(cm.quantiles) > 0:
		c.quantiles = cm.quantiles
	case c.compare == spec.JudgeCompareLatency:
		c.quantiles, c.defaultQuantiles = seqDefaultQuantiles, true
	}
	if cm.minSamples != nil {
		c.minSamples = *cm.minSamples
	}
	if c.compare == spec.JudgeCompareErrorRate && j.MaxAbsoluteIncrease == nil {
		c.absTol = seqDefaultAbsTol
	}
	return c, nil
}

// key fingerprints everything a persisted test depends on. A state written
// under another configuration is refused: changing α, the tolerance, the
// horizon or the grid after seeing data would void the guarantee.
func (c seqConfig) key() string {
	k := c.legacyKey()
	if c.absTol > 0 {
		k += fmt.Sprintf(" abs=%g", c.absTol)
	}
	if c.compare == spec.JudgeCompareErrorRate && c.hasHorizon() {
		k += fmt.Sprintf(" horizon=%v/%d", c.maxDuration, c.maxSamples)
	}
	return k
}

// legacyKey is the fingerprint of the judges before the absolute margin
// and the horizon look: a state written then resumes with the rules it
// started with.
func (c seqConfig) legacyKey() string {
	return fmt.Sprintf("%s dir=%v/%v alpha=%g tol=%g q=%v grid=%g/%d/%d",
		c.compare, c.up, c.down, c.alpha, c.tol, c.quantiles, seqStep, seqMixWidth, seqHalfWidth)
}

// hasHorizon reports whether a limit (maxDuration or maxSamples) ends the
// test at a point fixed in advance, where the error-rate judge takes its
// one fixed-horizon look.
func (c seqConfig) hasHorizon() bool { return c.maxDuration > 0 || c.maxSamples > 0 }

// v1Key is the key a version-1 latency state was written under for this
// configuration: the same fields, with that build's default quantiles
// (p50, p90, p99) when the spec names none.
func (c seqConfig) v1Key() string {
	if c.defaultQuantiles {
		c.quantiles = []float64{0.5, 0.9, 0.99}
	}
	return c.legacyKey()
}

// logThreshold is ln(1/α), the level an e-value must reach.
func (c seqConfig) logThreshold() float64 { return -math.Log(c.alpha) }

// confidencePct formats 1−α as a percentage for messages ("95%").
func (c seqConfig) confidencePct() string { return seqPct(1 - c.alpha) }

// limit reports whether a sample or time limit is reached, and which.
func (c seqConfig) limit(samples int64, elapsed time.Duration) (string, bool) {
	switch {
	case c.maxSamples > 0 && samples >= c.maxSamples:
		return fmt.Sprintf("maxSamples %d", c.maxSamples), true
	case c.maxDuration > 0 && elapsed >= c.maxDuration:
		return "maxDuration " + c.maxDuration.String(), true
	}
	return "", false
}

// seqOutcome is what the tests of one call established, for decide.
type seqOutcome struct {
	noData       string // non-empty: why there is nothing to compare
	samples      int64  // min over versions
	failed       bool   // the e-value reached 1/α at some call
	passed       bool   // non-inferiority shown at some call
	summary      string // the numbers, for every message
	failReason   string
	passReason   string
	statusReason string // the current evidence when undecided
}

// decide applies rules 2–7 of NewSequential.
func (c seqConfig) decide(o seqOutcome, elapsed time.Duration) (Verdict, string) {
	if o.noData != "" {
		return NoData, o.noData
	}
	lim, atLimit := c.limit(o.samples, elapsed)
	if c.minSamples > 0 && o.samples < c.minSamples {
		if atLimit {
			return NoData, fmt.Sprintf("%s reached with %d samples per version, below minSamples %d: %s", lim, o.samples, c.minSamples, o.summary)
		}
		return NoData, fmt.Sprintf("%s: %d samples per version, below minSamples %d: no verdict yet", o.summary, o.samples, c.minSamples)
	}
	switch {
	case o.failed:
		return Failed, o.summary + ": " + o.failReason
	case o.passed:
		return Successful, o.summary + ": " + o.passReason
	case atLimit && c.onLimitPass:
		return Successful, fmt.Sprintf("%s: %s; %s reached without a regression shown, onLimit pass", o.summary, o.statusReason, lim)
	case atLimit:
		return Inconclusive, fmt.Sprintf("%s: %s; %s reached without a decision, onLimit inconclusive", o.summary, o.statusReason, lim)
	}
	return Continue, o.summary + ": " + o.statusReason
}

// seqLoadState decodes a persisted state into v (nil or empty: fresh) and
// checks its version and configuration fingerprint.
func seqLoadState(state []byte, key string, v any, version *int, stateKey *string) (fresh bool, err error) {
	return seqLoadStateKeys(state, []string{key}, v, version, stateKey)
}

// seqLoadStateKeys is seqLoadState accepting any of keys (the current
// fingerprint first, then older forms the judge still resumes).
func seqLoadStateKeys(state []byte, keys []string, v any, version *int, stateKey *string) (fresh bool, err error) {
	key := keys[0]
	if len(state) == 0 {
		return true, nil
	}
	if err := json.Unmarshal(state, v); err != nil {
		return false, fmt.Errorf("decode sequential judge state: %w", err)
	}
	if *version != seqStateVersion {
		return false, fmt.Errorf("sequential judge state version %d, this build reads %d", *version, seqStateVersion)
	}
	if !slices.Contains(keys, *stateKey) {
		return false, fmt.Errorf("sequential judge state was written for another configuration (%s, now %s): the test cannot continue with changed parameters", *stateKey, key)
	}
	return false, nil
}

// seqQuantilesMs returns a version's p50/p90/p99 (and any judged
// quantile) in milliseconds, read from its histogram by the sketch rank
// rule; nil without latency data.
func seqQuantilesMs(h []stats.HistBucket, extra []float64) map[string]float64 {
	if stats.HistTotal(h) == 0 {
		return nil
	}
	out := map[string]float64{}
	for _, q := range append([]float64{0.5, 0.9, 0.99}, extra...) {
		v, _ := stats.HistQuantile(h, q)
		out[seqQuantileName(q)] = v * 1000
	}
	return out
}

// seqHistogram converts provider buckets to the stats form.
func seqHistogram(bs []provider.Bucket) []stats.HistBucket {
	out := make([]stats.HistBucket, len(bs))
	for i, b := range bs {
		out[i] = stats.HistBucket{Lower: b.Lower, Upper: b.Upper, Value: b.Value, Count: b.Count}
	}
	return out
}

// seqQuantileName is "p50", "p99.9".
func seqQuantileName(q float64) string {
	return "p" + seqTrim(fmt.Sprintf("%.4f", q*100))
}

// seqPct formats a proportion as a percentage with up to three significant
// decimals ("10.2%", "0.05%", "95%").
func seqPct(p float64) string {
	switch {
	case p == 0:
		return "0%"
	case p*100 >= 10:
		return seqTrim(fmt.Sprintf("%.1f", p*100)) + "%"
	}
	return seqTrim(fmt.Sprintf("%.2g", p*100)) + "%"
}

// seqNum formats a statistic for a message: three significant digits, no
// exponent for everyday magnitudes, ∞ for infinity.
func seqNum(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return "∞"
	case math.IsNaN(x):
		return "NaN"
	case x != 0 && (math.Abs(x) >= 1e6 || math.Abs(x) < 1e-3):
		return fmt.Sprintf("%.3g", x)
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	}
	return seqTrim(fmt.Sprintf("%.3g", x))
}

func seqTrim(s string) string {
	if strings.Contains(s, ".") && !strings.ContainsAny(s, "e") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// seqRatioCS formats bounds of a ratio for a message. Open bounds come
// from inverting tests on a grid (the bound itself is rejected), closed
// ones from order statistics.
func seqRatioCS(lo, hi float64, open bool) string {
	lt, gt, l, r := "≤", "≥", "[", "]"
	if open {
		lt, gt, l, r = "<", ">", "(", ")"
	}
	switch {
	case lo > 0 && !math.IsInf(hi, 1):
		return fmt.Sprintf("ratio in %s%s, %s%s", l, seqNum(lo), seqNum(hi), r)
	case lo > 0:
		return fmt.Sprintf("ratio %s %s", gt, seqNum(lo))
	case !math.IsInf(hi, 1):
		return fmt.Sprintf("ratio %s %s", lt, seqNum(hi))
	}
	return "ratio not bounded yet"
}

// seqEEvidence fills the e-value fields of evidence from the running maximum.
func seqEEvidence(ev *model.Evidence, c seqConfig, maxLogE float64) {
	e := math.Exp(maxLogE)
	p := math.Min(1, 1/e)
	s := maxLogE
	ev.StatisticName = "ln e-value (running maximum)"
	ev.Statistic = &s
	ev.EValue = &e
	ev.PValue = &p
	ev.ThresholdOf = "e-value (1/alpha)"
	ev.Threshold = 1 / c.alpha
	ev.Alpha = c.alpha
}
