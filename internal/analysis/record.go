package analysis

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis/judge"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Outcome is what the controller got from one provider query.
type Outcome struct {
	Result provider.Result
	// Err is the provider's error; one wrapping provider.ErrNoData means
	// the query worked and found nothing (SPEC §5.2).
	Err                   error
	StartedAt, FinishedAt time.Time
}

// JudgeFactory builds the judge of a metric's judge spec. The controller
// passes the real constructor; tests pass fakes. It is called for every
// judge evaluation, so it should be cheap: judges keep nothing between
// calls except the state Record stores.
type JudgeFactory func(spec.Judge) (judge.Judge, error)

// Record books one measurement of metric i and returns the run with the
// metric's and the run's phase reassessed at now. metrics must be the ones
// the run was created with. It returns an error wrapping ErrNotRunning when
// the run or the metric has already ended, and an error when metrics does
// not match the run; the run is then returned unchanged.
//
// The measurement's verdict:
//   - Err wrapping provider.ErrNoData: NoData;
//   - Err wrapping provider.ErrFailed: Failed, whatever the conditions say
//     (a command that exited non-zero);
//   - any other Err: Error (retried after ErrorRetryInterval, not counted);
//   - a judge metric: the judge's verdict on Result.Versions, which hold
//     the data since the run started; Continue leaves the measurement
//     Running, a judge's NoData (below minSamples) is NoData;
//   - conditions (see assessConditions); a metric with a judge and
//     conditions gets the worse of the two verdicts, so a condition can act
//     as a guard next to a judge.
//
// NoData is booked by the metric's onNoData (SPEC §5.2): wait (default)
// does not count it, keeps the metric Running and sets NoDataSince; the
// measurement is retried at the metric's usual cadence (its interval, every
// JudgeInterval for a judge without one, else every ErrorRetryInterval).
// inconclusive, fail and pass count it as an Inconclusive, Failed or
// Successful measurement; its phase stays NoData so it shows as such.
func Record(r Run, metrics []spec.Metric, i int, out Outcome, judges JudgeFactory, now time.Time) (Run, error) {
	if err := checkMetrics(r, metrics); err != nil {
		return r, err
	}
	if i < 0 || i >= len(metrics) {
		return r, fmt.Errorf("record measurement %d of analysis run %s: the run has %d metrics", i, r.ID, len(metrics))
	}
	if r.Phase.Completed() {
		return r, fmt.Errorf("record measurement of metric %q: analysis run %s ended %s: %w", metrics[i].Name, r.ID, r.Phase, ErrNotRunning)
	}
	if p := r.Metrics[i].Phase; p.Completed() {
		return r, fmt.Errorf("record measurement of metric %q of analysis run %s: the metric ended %s: %w", metrics[i].Name, r.ID, p, ErrNotRunning)
	}
	now = stamp(now)
	m := metrics[i]
	mr := r.Metrics[i]
	mr.Measurements = slices.Clone(mr.Measurements)

	meas := Measurement{StartedAt: stamp(out.StartedAt), FinishedAt: stamp(out.FinishedAt)}
	if out.StartedAt.IsZero() {
		meas.StartedAt = now
	}
	if out.FinishedAt.IsZero() {
		meas.FinishedAt = now
	}
	if out.Err == nil {
		meas.Value = encodeValue(out.Result.Value)
	}

	v, state := evaluate(m, mr, out, judges, r.StartedAt, meas.FinishedAt)
	mr.JudgeState = state
	meas.Phase, meas.Message, meas.Evidence = v.phase, v.message, finiteEvidence(v.evidence)

	counted := book(&mr, m, &meas)

	// A trailing Running measurement is a judge evaluation in progress:
	// whatever comes next replaces it, so the list never shows a stale
	// Running entry; the next evaluation of the same test inherits its
	// start, an error does not (it is a query of its own).
	if n := len(mr.Measurements); n > 0 && mr.Measurements[n-1].Phase == PhaseRunning {
		if meas.Phase != PhaseError {
			meas.StartedAt = mr.Measurements[n-1].StartedAt
		}
		mr.Measurements = mr.Measurements[:n-1]
	}
	mr.Measurements = append(mr.Measurements, meas)
	if n, keep := len(mr.Measurements), retention(m); n > keep {
		mr.Measurements = slices.Clone(mr.Measurements[n-keep:])
	}

	phase, summary := assessMetric(m, mr, counted)
	mr.Phase = phase
	mr.ScoredFailure = phase == PhaseFailed && labelFailure(m, meas, v.byJudge)
	mr.Message = fmt.Sprintf("%s: %s (%s); last: %s", m.Name, phase, summary, meas.Message)
	mr.NextAt = time.Time{}
	if phase == PhaseRunning {
		mr.NextAt = meas.FinishedAt.Add(retryAfter(m, meas.Phase))
	}

	r.Metrics = slices.Clone(r.Metrics)
	r.Metrics[i] = mr
	kayenta := m.Judge != nil && m.Judge.Method == spec.JudgeMethodKayenta
	var sc scoring
	if kayenta {
		sc = kayentaScore(r, metrics)
		r.Score = sc.score
	}
	if phase.Completed() {
		r = assessRun(r, metrics, i, summary, meas.Message, now)
	} else {
		r.Message = runningMessage(r)
	}
	if kayenta {
		r = assessScore(r, sc, now)
	}
	return r, nil
}

// checkMetrics makes sure the caller passes the metrics the run was made
// of: booking a measurement on the wrong metric would corrupt the run.
func checkMetrics(r Run, metrics []spec.Metric) error {
	if len(metrics) != len(r.Metrics) {
		return fmt.Errorf("analysis run %s has %d metrics, got %d metric specs", r.ID, len(r.Metrics), len(metrics))
	}
	for i, m := range metrics {
		if m.Name != r.Metrics[i].Name {
			return fmt.Errorf("analysis run %s: metric %d is %q, got the spec of %q", r.ID, i, r.Metrics[i].Name, m.Name)
		}
	}
	return nil
}

// evaluate computes the measurement's verdict and the judge's next state.
func evaluate(m spec.Metric, mr MetricRun, out Outcome, judges JudgeFactory, runStart, at time.Time) (verdict, []byte) {
	state := mr.JudgeState
	if out.Err != nil {
		if errors.Is(out.Err, provider.ErrNoData) {
			noData := verdict{phase: PhaseNoData, message: "no data: " + oneLine(out.Err.Error())}
			if m.Judge == nil && handlesEmpty(m) {
				// As in Argo, a condition written for an empty result
				// (default(result, 0) < 0.05, isNil(result) || ...) decides.
				if v := assessConditions(m, emptyValue(m)); v.phase != PhaseNoData {
					v.message += " (" + noData.message + ")"
					return v, state
				}
			}
			return noData, state
		}
		if errors.Is(out.Err, provider.ErrFailed) {
			return verdict{phase: PhaseFailed, message: oneLine(out.Err.Error())}, state
		}
		return verdict{phase: PhaseError, message: "query failed: " + oneLine(out.Err.Error())}, state
	}
	if m.Judge == nil {
		return assessConditions(m, out.Result.Value), state
	}
	jv, next := assessJudge(*m.Judge, state, out.Result.Versions, judges, at.Sub(runStart))
	if strings.TrimSpace(m.SuccessCondition) == "" && strings.TrimSpace(m.FailureCondition) == "" {
		return jv, next
	}
	cv := assessConditions(m, out.Result.Value)
	if cv.phase.worse(jv.phase) {
		cv.message += "; judge: " + jv.message
		cv.evidence = jv.evidence
		return cv, next
	}
	return jv, next
}

// assessJudge asks the metric's judge about the data since the run
// started. The state only moves on when the judge answered.
func assessJudge(js spec.Judge, state []byte, versions *provider.Versions, judges JudgeFactory, elapsed time.Duration) (verdict, []byte) {
	if versions == nil {
		return verdict{phase: PhaseError, message: "the judge needs per-version samples, which only the builtin provider returns"}, state
	}
	if judges == nil {
		return verdict{phase: PhaseError, message: "no judge implementation was configured"}, state
	}
	j, err := judges(js)
	if err != nil {
		return verdict{phase: PhaseError, message: "build judge: " + oneLine(err.Error())}, state
	}
	d, next, err := j.Assess(state, judge.Input{Canary: versions.Canary, Stable: versions.Stable, Elapsed: max(elapsed, 0)})
	if err != nil {
		return verdict{phase: PhaseError, message: "judge failed: " + oneLine(err.Error())}, state
	}
	ev := d.Evidence
	v := verdict{message: d.Message, evidence: &ev, byJudge: true}
	switch d.Verdict {
	case judge.Continue:
		v.phase = PhaseRunning
	case judge.Successful:
		v.phase = PhaseSuccessful
	case judge.Failed:
		v.phase = PhaseFailed
	case judge.Inconclusive:
		v.phase = PhaseInconclusive
	case judge.NoData:
		v.phase = PhaseNoData
		v.message = "no data: " + d.Message
	default:
		return verdict{phase: PhaseError, message: fmt.Sprintf("the judge answered an unknown verdict %q", d.Verdict)}, state
	}
	return v, next
}

// book updates the metric's counters for a measurement and returns the
// phase it counts as: the measurement's own phase, or for NoData the phase
// onNoData gives it (Running under wait: nothing counted).
//
// A NoData measurement resets ConsecutiveErrors, since the provider
// answered; an Error leaves NoDataSince alone, since an error is no data
// either.
func book(mr *MetricRun, m spec.Metric, meas *Measurement) Phase {
	switch meas.Phase {
	case PhaseRunning:
		mr.ConsecutiveErrors = 0
		mr.NoDataSince = time.Time{}
		return PhaseRunning
	case PhaseError:
		mr.Error++
		mr.ConsecutiveErrors++
		mr.ConsecutiveSuccesses = 0 // as in Argo: an error breaks the streak
		return PhaseError
	case PhaseNoData:
		mr.NoData++
		mr.ConsecutiveErrors = 0
		policy := onNoData(m)
		if policy == spec.OnNoDataWait {
			if mr.NoDataSince.IsZero() {
				mr.NoDataSince = meas.StartedAt
			}
			meas.Message += "; waiting for data (onNoData: wait)"
			return PhaseRunning
		}
		mr.NoDataSince = time.Time{}
		counted := map[string]Phase{
			spec.OnNoDataInconclusive: PhaseInconclusive,
			spec.OnNoDataFail:         PhaseFailed,
			spec.OnNoDataPass:         PhaseSuccessful,
		}[policy]
		meas.Message += fmt.Sprintf("; counted as %s (onNoData: %s)", counted, policy)
		count(mr, counted)
		return counted
	}
	mr.ConsecutiveErrors = 0
	mr.NoDataSince = time.Time{}
	count(mr, meas.Phase)
	return meas.Phase
}

// retention is how many measurements m keeps: its measurementRetention,
// or MaxMeasurements.
func retention(m spec.Metric) int {
	if r := m.MeasurementRetention; r != nil && *r > 0 {
		return *r
	}
	return MaxMeasurements
}

func count(mr *MetricRun, p Phase) {
	mr.Count++
	if p != PhaseSuccessful {
		mr.ConsecutiveSuccesses = 0
	}
	switch p {
	case PhaseSuccessful:
		mr.Successful++
		mr.ConsecutiveSuccesses++
	case PhaseFailed:
		mr.Failed++
	case PhaseInconclusive:
		mr.Inconclusive++
	}
}

// assessMetric decides the metric's phase after a measurement counted as
// counted, with a summary of the numbers behind it.
//
// A judge metric without interval and count (continuous, SPEC §5.4) ends
// with the judge's first decisive verdict, whatever the limits say; only
// consecutiveErrorLimit applies to it. Every other metric follows Argo's
// assessMetricStatus: consecutiveErrors > consecutiveErrorLimit is Error;
// an evaluation still running keeps it Running; failed > failureLimit is
// Failed; inconclusive > inconclusiveLimit is Inconclusive (a limit of -1
// never trips); and reaching count is Successful even with failures within
// the limit. One measurement moves one counter, so at most one limit trips
// at a time and the order of the checks cannot change a verdict.
func assessMetric(m spec.Metric, mr MetricRun, counted Phase) (Phase, string) {
	if cel := limit(m.ConsecutiveErrorLimit, spec.DefaultConsecutiveErrorLimit); cel >= 0 && mr.ConsecutiveErrors > cel {
		return PhaseError, fmt.Sprintf("%d consecutive errors > consecutiveErrorLimit %d", mr.ConsecutiveErrors, cel)
	}
	if continuous(m) {
		if counted.Completed() && counted != PhaseError {
			return counted, "judge verdict"
		}
		return PhaseRunning, runningSummary(m, mr)
	}
	if n := len(mr.Measurements); n > 0 && mr.Measurements[n-1].Phase == PhaseRunning {
		return PhaseRunning, runningSummary(m, mr)
	}
	if fl := limit(m.FailureLimit, spec.DefaultFailureLimit); fl >= 0 && mr.Failed > fl {
		return PhaseFailed, fmt.Sprintf("%d of %d measurements failed > failureLimit %d", mr.Failed, mr.Count, fl)
	}
	if il := limit(m.InconclusiveLimit, spec.DefaultInconclusiveLimit); il >= 0 && mr.Inconclusive > il {
		return PhaseInconclusive, fmt.Sprintf("%d of %d measurements inconclusive > inconclusiveLimit %d", mr.Inconclusive, mr.Count, il)
	}
	csl := 0
	if m.ConsecutiveSuccessLimit != nil {
		csl = *m.ConsecutiveSuccessLimit
	}
	if csl > 0 && mr.ConsecutiveSuccesses >= csl {
		return PhaseSuccessful, fmt.Sprintf("%d successful measurements in a row reached consecutiveSuccessLimit: %s", mr.ConsecutiveSuccesses, tally(mr))
	}
	if c := effectiveCount(m); c > 0 && mr.Count >= c {
		if csl > 0 {
			// As in Argo: without the streak, count reached is not a
			// success; Inconclusive while failureLimit still applies.
			if limit(m.FailureLimit, spec.DefaultFailureLimit) >= 0 {
				return PhaseInconclusive, fmt.Sprintf("count %d reached without %d successful measurements in a row (consecutiveSuccessLimit): %s", c, csl, tally(mr))
			}
			return PhaseFailed, fmt.Sprintf("count %d reached without %d successful measurements in a row (consecutiveSuccessLimit): %s", c, csl, tally(mr))
		}
		return PhaseSuccessful, fmt.Sprintf("count %d reached: %s", c, tally(mr))
	}
	return PhaseRunning, runningSummary(m, mr)
}

// runningSummary describes a metric that goes on.
func runningSummary(m spec.Metric, mr MetricRun) string {
	var b strings.Builder
	if c := effectiveCount(m); c > 0 && !continuous(m) {
		fmt.Fprintf(&b, "%d of %d measurements", mr.Count, c)
	} else {
		fmt.Fprintf(&b, "%d measurements", mr.Count)
	}
	b.WriteString(": " + tally(mr))
	if !mr.NoDataSince.IsZero() {
		fmt.Fprintf(&b, "; waiting for data since %s", mr.NoDataSince.Format(time.RFC3339))
	}
	return b.String()
}

// tally lists the non-zero counters, e.g. "3 successful, 1 failed".
func tally(mr MetricRun) string {
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{
		{mr.Successful, "successful"}, {mr.Failed, "failed"}, {mr.Inconclusive, "inconclusive"},
		{mr.Error, "error"}, {mr.NoData, "no data"},
	} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if len(parts) == 0 {
		return "no measurements yet"
	}
	return strings.Join(parts, ", ")
}

// assessRun reassesses the run after metric i ended. SPEC §5.1 and Argo:
//   - a decisive (not dry-run) metric that ends Failed, Error or
//     Inconclusive ends the run at once with that phase (Argo's
//     IsTerminating also stops the run on Inconclusive; with Running ranked
//     below Inconclusive the run's worst verdict is final anyway); the
//     metrics still running are terminated as in Terminate;
//   - the run is Successful when every metric has ended, the decisive ones
//     Successful: as in Argo, the run waits for its dry-run metrics too,
//     whose verdicts are reported but never decide;
//   - otherwise the run goes on; a background run whose metrics measure
//     until the run ends is only ended by Terminate.
//
// A metric that ended Failed on a kayenta label alone (ScoredFailure) does
// not end the run: the run's Kayenta score weighs it. When the run has
// scored kayenta metrics and would end Successful, its last score decides:
// Failed below pass (see finalScore). The rule for a score at or below
// marginal while the run goes on is assessScore's.
func assessRun(r Run, metrics []spec.Metric, i int, summary, last string, now time.Time) Run {
	mr := r.Metrics[i]
	if !mr.DryRun && !mr.ScoredFailure && (mr.Phase == PhaseFailed || mr.Phase == PhaseError || mr.Phase == PhaseInconclusive) {
		why := fmt.Sprintf("metric %q assessed %s", mr.Name, mr.Phase)
		r = endRunning(r, now, why)
		r.Phase = mr.Phase
		r.Message = fmt.Sprintf("metric %q assessed %s: %s", mr.Name, mr.Phase, reason(metrics[i], summary, last)) + dryRunNote(r)
		return r
	}
	decisive := 0
	for _, x := range r.Metrics {
		if !x.DryRun {
			decisive++
		}
	}
	if slices.ContainsFunc(r.Metrics, func(x MetricRun) bool { return !x.Phase.Completed() }) {
		r.Message = runningMessage(r)
		return r
	}
	r = endRunning(r, now, "run completed")
	r.Phase = PhaseSuccessful
	r.Message = runVerdict(r)
	if decisive == 1 && !mr.DryRun && !mr.ScoredFailure {
		r.Message = fmt.Sprintf("metric %q assessed Successful: %s", mr.Name, reason(metrics[i], summary, last)) + dryRunNote(r)
	}
	sc := kayentaScore(r, metrics)
	return applyFinalScore(r, sc, false)
}

// applyFinalScore lets the last Kayenta score decide a run that would
// otherwise end Successful (Failed below pass), and says so in the run's
// message and score; a run whose score does not apply is unchanged.
func applyFinalScore(r Run, sc scoring, terminated bool) Run {
	failed, why, ok := finalScore(sc, terminated)
	if !ok || r.Phase != PhaseSuccessful {
		return r
	}
	r.Score = sc.score
	r.Score.Decided = true
	scoredFailure := slices.ContainsFunc(r.Metrics, func(x MetricRun) bool { return x.ScoredFailure && !x.DryRun })
	switch {
	case failed:
		r.Phase = PhaseFailed
		r.Message = scoreMessage(why, *sc.score) + dryRunNote(r)
	case scoredFailure:
		r.Message = scoreMessage(why, *sc.score) + dryRunNote(r)
	default:
		r.Message += "; " + why
	}
	return r
}

// endRunning terminates the metrics still running and ends the run at now.
func endRunning(r Run, now time.Time, why string) Run {
	for j := range r.Metrics {
		if r.Metrics[j].Phase == PhaseRunning {
			r.Metrics[j] = terminateMetric(r.Metrics[j], now, why)
		}
	}
	r.FinishedAt = now
	return r
}

// reason is what a run message says about the metric that decided it: a
// continuous judge's own explanation, or the numbers against the limits
// and the last measurement.
func reason(m spec.Metric, summary, last string) string {
	if continuous(m) {
		return last
	}
	return summary + "; last: " + last
}

// runVerdict summarises an ended run whose phase no measurement decided
// (every decisive metric Successful, or terminated): it names the metric
// that makes the phase when that is not Successful.
func runVerdict(r Run) string {
	var names, skipped []string
	for _, mr := range r.Metrics {
		if mr.DryRun {
			continue
		}
		if mr.Phase == PhaseSkipped {
			skipped = append(skipped, fmt.Sprintf("%q", mr.Name))
			continue
		}
		if mr.Phase != PhaseSuccessful && mr.Phase == r.Phase {
			detail := tally(mr)
			if !mr.NoDataSince.IsZero() {
				detail = fmt.Sprintf("no data since %s (%s)", mr.NoDataSince.Format(time.RFC3339), detail)
			}
			return fmt.Sprintf("metric %q assessed %s: %s", mr.Name, mr.Phase, detail) + dryRunNote(r)
		}
		names = append(names, fmt.Sprintf("%q", mr.Name))
	}
	notMeasured := ""
	if len(skipped) > 0 {
		notMeasured = fmt.Sprintf("; not measured: %s", strings.Join(skipped, ", "))
	}
	if len(names) == 0 {
		if len(skipped) > 0 {
			return "no metric measured anything" + notMeasured + dryRunNote(r)
		}
		return "every metric is dry-run, so none decides" + dryRunNote(r)
	}
	return fmt.Sprintf("every metric assessed Successful (%s)", strings.Join(names, ", ")) + notMeasured + dryRunNote(r)
}

// dryRunNote reports dry-run metrics that did not succeed, which Argo
// appends to the run as its dry-run summary.
func dryRunNote(r Run) string {
	var notes []string
	for _, mr := range r.Metrics {
		if mr.DryRun && mr.Phase != PhaseSuccessful {
			notes = append(notes, fmt.Sprintf("%q %s", mr.Name, mr.Phase))
		}
	}
	if len(notes) == 0 {
		return ""
	}
	return "; dry-run, not decisive: " + strings.Join(notes, ", ")
}

// runningMessage is the message of a run that goes on: it names a metric
// waiting for data, if any, because that is what a paused rollout shows.
func runningMessage(r Run) string {
	since := NoDataSince(r)
	if since.IsZero() {
		return ""
	}
	for _, mr := range r.Metrics {
		if mr.Phase == PhaseRunning && mr.NoDataSince.Equal(since) {
			return fmt.Sprintf("metric %q has had no data since %s", mr.Name, since.Format(time.RFC3339))
		}
	}
	return ""
}

// retryAfter is how long after a measurement of a running metric the next
// one is due. Errors are retried after ErrorRetryInterval (Argo); anything
// else, including NoData under wait, at the metric's cadence.
func retryAfter(m spec.Metric, last Phase) time.Duration {
	if last == PhaseError {
		return ErrorRetryInterval
	}
	return cadence(m)
}

// cadence is the time between measurements: the interval; JudgeInterval
// for a judge without one (continuous evaluation); else ErrorRetryInterval,
// which only matters for a count above 1 without an interval, or to retry
// a one-shot metric that found no data (Argo uses the same default).
func cadence(m spec.Metric) time.Duration {
	switch {
	case m.Interval != nil && *m.Interval > 0:
		return m.Interval.D()
	case m.Judge != nil:
		return JudgeInterval
	}
	return ErrorRetryInterval
}

// continuous reports whether m is a judge metric evaluated until the
// judge decides (no interval, no count).
func continuous(m spec.Metric) bool {
	return m.Judge != nil && m.Interval == nil && m.Count == nil
}

// effectiveCount is how many counted measurements end the metric: count;
// 1 without interval and count (Argo's EffectiveCount); 0 = until the run
// ends (interval without count).
func effectiveCount(m spec.Metric) int {
	switch {
	case m.Count != nil && *m.Count > 0:
		return *m.Count
	case m.Interval == nil:
		return 1
	}
	return 0
}

func limit(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// onNoData is the metric's policy; an empty or unknown one (validation
// rejects those) waits, the one policy that cannot harm a healthy canary.
func onNoData(m spec.Metric) string {
	switch m.OnNoData {
	case spec.OnNoDataInconclusive, spec.OnNoDataFail, spec.OnNoDataPass:
		return m.OnNoData
	}
	return spec.OnNoDataWait
}
