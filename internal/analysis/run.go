// Package analysis keeps the books of analysis runs (SPEC §5): which
// measurement is due when, what a provider's answer means for a metric
// (conditions, judges, no data), when a metric and a run are decided, and
// why. It is pure: no goroutines, no I/O, no clock (every function takes
// now), so the rollout controller can persist a Run in its state, replay it
// after a restart and table-test every rule.
//
// The semantics follow Argo Rollouts' analysis controller
// (assessMetricStatus, assessRunStatus, calculateNextReconcileTime), plus
// coalmine's own outcomes: NoData (SPEC §5.2) and the canary-vs-stable
// judges (SPEC §5.4). Where SPEC and Argo are silent the rule chosen is
// written on the function that applies it.
//
// A run is driven like this:
//
//	metrics, err := analysis.Resolve(templates, refs, args, analysis.Vars(name, canary, stable))
//	run := analysis.NewRun(id, analysis.KindStep, step, names, metrics, now)
//	due, next := analysis.Due(run, metrics, now)  // measure each due metric ...
//	run, err = analysis.Record(run, metrics, i, outcome, judges, now)  // ... and record it
//	run = analysis.Terminate(run, now, "rollout aborted")  // when the rollout moves on
//
// The metrics passed to Due and Record must be the ones the run was created
// with, in the same order: the controller keeps them (or the templates it
// resolved them from) with the run.
package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Phase is where a run, a metric or a measurement stands. The values are
// the strings the API shows (model.AnalysisRunStatus.Phase).
type Phase string

// Phases. Running is the only phase that is not final. NoData is a
// measurement's outcome when the provider found nothing; a metric or a run
// only ends NoData when it is terminated while waiting for data.
const (
	PhaseRunning      Phase = "Running"
	PhaseSuccessful   Phase = "Successful"
	PhaseFailed       Phase = "Failed"
	PhaseInconclusive Phase = "Inconclusive"
	PhaseError        Phase = "Error"
	PhaseNoData       Phase = "NoData"
	// PhaseSkipped: the run ended before the metric measured anything, so
	// it has no verdict. It counts against nothing, and it says so rather
	// than show a Successful it never earned.
	PhaseSkipped Phase = "Skipped"
)

// Completed reports whether the phase is final.
func (p Phase) Completed() bool {
	switch p {
	case PhaseSuccessful, PhaseFailed, PhaseInconclusive, PhaseError, PhaseNoData, PhaseSkipped:
		return true
	}
	return false
}

// rank orders phases from best to worst: Successful < Running < NoData <
// Inconclusive < Error < Failed. It is SPEC §5.1's order with NoData placed
// above Running (it is not a verdict on the canary, but it is not good news
// either) and below Inconclusive (it never counts against the canary by
// itself). An unknown phase ranks as Running.
func (p Phase) rank() int {
	switch p {
	case PhaseSuccessful, PhaseSkipped:
		return 0
	case PhaseNoData:
		return 2
	case PhaseInconclusive:
		return 3
	case PhaseError:
		return 4
	case PhaseFailed:
		return 5
	}
	return 1
}

// worse reports whether p is worse than q in rank order.
func (p Phase) worse(q Phase) bool { return p.rank() > q.rank() }

// Kinds of runs.
const (
	// KindStep is the run of an `analysis` step; the step completes when
	// the run is Successful.
	KindStep = "step"
	// KindBackground is the run of strategy.canary.analysis; it runs from
	// its starting step until the rollout ends and is then terminated.
	KindBackground = "background"
)

// Scheduling constants (SPEC §5.1, §5.4).
const (
	// ErrorRetryInterval is when a measurement that ended in Error is
	// retried, whatever the metric's interval (as in Argo).
	ErrorRetryInterval = 10 * time.Second
	// JudgeInterval is how often a judge metric without an interval is
	// evaluated: "continuously" in SPEC §5.4.
	JudgeInterval = time.Second
	// MaxMeasurements is how many measurements a metric keeps, newest
	// last; the counters keep the totals (Argo keeps 10 too).
	MaxMeasurements = 10
)

// ErrNotRunning is returned (wrapped) by Record for a run or a metric that
// has already ended: a measurement that was in flight while the run was
// terminated. The controller drops such a measurement.
var ErrNotRunning = errors.New("not running")

// Run is one analysis run: the bookkeeping of every metric's measurements
// and the verdict so far. It is plain data, safe to copy and to persist as
// JSON, and a JSON round trip yields an equal Run, so a controller restart
// resumes the run exactly (counters, schedule, judge state). Times are
// stored in UTC without a monotonic reading for that reason.
//
// The functions of this package never modify a Run they are given: they
// return a new one that shares nothing mutable with the old.
type Run struct {
	ID string `json:"id"`
	// Kind is KindStep or KindBackground.
	Kind string `json:"kind"`
	// Step is the index of the analysis step (KindStep), or the step the
	// background run started at.
	Step int `json:"step"`
	// Templates names the AnalysisTemplates the metrics come from.
	Templates []string `json:"templates"`
	Phase     Phase    `json:"phase"`
	// StartedAt is when the run began. Providers query data since then
	// (provider.Query.Since), so judges see cumulative data of the run.
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Message says why the run stands where it does, naming the metric
	// that decided it, e.g. `metric "error-rate" assessed Failed: ...`.
	Message string      `json:"message,omitempty"`
	Metrics []MetricRun `json:"metrics"`
	// Score is Kayenta's score of the judge.method kayenta metrics, updated
	// whenever one of them is evaluated; it decides the run (see
	// assessScore).
	Score *model.KayentaScore `json:"score,omitempty"`
	// Scoring is the run's merged spec.kayentaScore (Resolution's), nil
	// for Kayenta's defaults. The controller sets it after NewRun; it is
	// never modified, so runs may share it.
	Scoring *spec.KayentaScore `json:"scoring,omitempty"`
}

// MetricRun is one metric of a run: its counters (SPEC §5.1), its schedule
// and its latest measurements.
type MetricRun struct {
	Name  string `json:"name"`
	Phase Phase  `json:"phase"`
	// DryRun metrics are measured and reported but never decide the run.
	DryRun bool `json:"dryRun,omitempty"`
	// Count is the number of counted measurements: Successful, Failed and
	// Inconclusive ones, plus NoData ones that onNoData counts as one of
	// those. Errors, NoData under onNoData wait and undecided judge
	// evaluations are not counted.
	Count        int `json:"count"`
	Successful   int `json:"successful"`
	Failed       int `json:"failed"`
	Inconclusive int `json:"inconclusive"`
	Error        int `json:"error"`
	// NoData counts measurements that found no data, whatever onNoData
	// made of them.
	NoData            int `json:"noData"`
	ConsecutiveErrors int `json:"consecutiveErrors"`
	// ConsecutiveSuccesses counts the successful measurements in a row,
	// for consecutiveSuccessLimit.
	ConsecutiveSuccesses int `json:"consecutiveSuccesses,omitempty"`
	// NextAt is when the next measurement is due; zero once the metric has
	// ended.
	NextAt time.Time `json:"nextAt,omitzero"`
	// NoDataSince is when the metric started waiting for data (onNoData
	// wait); zero while it has data.
	NoDataSince time.Time `json:"noDataSince,omitzero"`
	Message     string    `json:"message,omitempty"`
	// Measurements are the newest MaxMeasurements measurements, oldest
	// first. A judge evaluation that has not decided yet is a Running
	// measurement; it is always the last one and the next evaluation
	// replaces it.
	Measurements []Measurement `json:"measurements"`
	// JudgeState is the judge's opaque state between evaluations, so a
	// sequential test resumes after a restart instead of starting over.
	JudgeState []byte `json:"judgeState"`
	// ScoredFailure: the metric ended Failed on its kayenta label alone (a
	// judge that is not critical, at its limit). It does not end the run;
	// the run's Kayenta score, which it lowers, decides.
	ScoredFailure bool `json:"scoredFailure,omitempty"`
}

// Measurement is one evaluation of a metric.
type Measurement struct {
	// Phase is Successful, Failed, Inconclusive, Error, NoData, or Running
	// for a judge that has not decided yet.
	Phase      Phase     `json:"phase"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// Value is the provider's result as the conditions saw it, as JSON.
	// NaN and infinities, which JSON cannot hold, are the strings "NaN",
	// "+Inf" and "-Inf" (as Argo shows them).
	Value json.RawMessage `json:"value,omitempty"`
	// Message explains the phase with the numbers, e.g. `result [0.97]
	// did not satisfy result[0] >= 0.99`.
	Message  string          `json:"message,omitempty"`
	Evidence *model.Evidence `json:"evidence,omitempty"`
}

// NewRun starts a run of the given resolved metrics at now. Every metric
// is Running and due at once, or after its initialDelay.
func NewRun(id, kind string, step int, templates []string, metrics []spec.Metric, now time.Time) Run {
	now = stamp(now)
	r := Run{
		ID:        id,
		Kind:      kind,
		Step:      step,
		Templates: slices.Clone(templates),
		Phase:     PhaseRunning,
		StartedAt: now,
		Metrics:   make([]MetricRun, len(metrics)),
	}
	for i, m := range metrics {
		mr := MetricRun{Name: m.Name, Phase: PhaseRunning, DryRun: m.DryRun, NextAt: now}
		if d := m.InitialDelay; d != nil && *d > 0 {
			mr.NextAt = now.Add(d.D())
		}
		mr.Message = fmt.Sprintf("%s: Running (first measurement due %s)", m.Name, mr.NextAt.Format(time.RFC3339))
		r.Metrics[i] = mr
	}
	return r
}

// Due reports which metrics need a measurement at now (indexes into
// metrics and r.Metrics) and when the next one after those falls due; next
// is zero when nothing else is scheduled (the run has ended, or every
// remaining metric is due now).
//
// A metric is due again only after Record has moved its NextAt on, so a
// caller that measures asynchronously must remember what is in flight. A
// metric whose name does not match the run's at the same index is never
// due: Record would reject its measurement.
func Due(r Run, metrics []spec.Metric, now time.Time) (due []int, next time.Time) {
	if r.Phase.Completed() {
		return nil, time.Time{}
	}
	for i, mr := range r.Metrics {
		if mr.Phase != PhaseRunning || i >= len(metrics) || metrics[i].Name != mr.Name {
			continue
		}
		if !mr.NextAt.After(now) {
			due = append(due, i)
			continue
		}
		if next.IsZero() || mr.NextAt.Before(next) {
			next = mr.NextAt
		}
	}
	return due, next
}

// NoDataSince is the earliest time since which a decisive metric of a
// running run has been waiting for data (onNoData wait), or zero. The
// controller pauses the rollout with reason NoData when this is older than
// progressDeadline (SPEC §4); the run itself never fails for lack of data.
// Dry-run metrics count too: as in Argo, the run waits for them.
func NoDataSince(r Run) time.Time {
	if r.Phase.Completed() {
		return time.Time{}
	}
	var since time.Time
	for _, mr := range r.Metrics {
		if mr.Phase != PhaseRunning || mr.NoDataSince.IsZero() {
			continue
		}
		if since.IsZero() || mr.NoDataSince.Before(since) {
			since = mr.NoDataSince
		}
	}
	return since
}

// NewQuery is the provider query for metric m of run r: the run's start
// is the start of the data, so builtin queries without a window and judges
// see everything since the run began.
func NewQuery(rollout string, r Run, m spec.Metric) provider.Query {
	return provider.Query{Rollout: rollout, Metric: m.Name, Spec: m.Provider, Since: r.StartedAt}
}

// Terminate ends a running run at now because the rollout no longer needs
// it (promoted, aborted, completed, a new revision); why says which, e.g.
// "rollout promoted". A run that has already ended is returned unchanged.
//
// Following Argo, a metric still running ends Successful (nothing it
// measured crossed a limit), and a judge evaluation still undecided ends
// Successful too; the messages say the metric was terminated and how far it
// got. Two exceptions keep what is not a verdict from being shown as one: a
// metric waiting for data (onNoData wait) ends NoData, and one without any
// verdict yet (nothing measured, or a judge that has not decided) ends
// Skipped. The run's phase is
// then the worst decisive metric phase, so a run terminated while waiting
// for data ends NoData and one with nothing against it ends Successful.
func Terminate(r Run, now time.Time, why string) Run {
	if r.Phase.Completed() {
		return r
	}
	now = stamp(now)
	r.Metrics = slices.Clone(r.Metrics)
	for i := range r.Metrics {
		if r.Metrics[i].Phase == PhaseRunning {
			r.Metrics[i] = terminateMetric(r.Metrics[i], now, why)
		}
	}
	r.Phase = worstPhase(r)
	r.FinishedAt = now
	r.Message = fmt.Sprintf("run terminated (%s); %s", why, runVerdict(r))
	if r.Phase == PhaseSuccessful && r.Score != nil {
		r = applyFinalScore(r, scoringOf(r), true)
		if r.Score.Decided {
			r.Message = fmt.Sprintf("run terminated (%s); %s", why, r.Message)
		}
	}
	return r
}

// scoringOf is the run's latest Kayenta score as scoring, for Terminate,
// which has no metric specs: the metrics the score labels are its kayenta
// ones.
func scoringOf(r Run) scoring {
	sc := scoring{score: cloneScore(r.Score), labelled: true}
	for _, mr := range r.Metrics {
		label, ok := r.Score.Labels[mr.Name]
		if !ok || mr.DryRun {
			continue
		}
		sc.scored++
		sc.labelled = sc.labelled && label != "Nodata"
	}
	return sc
}

// terminateMetric ends one running metric; see Terminate.
func terminateMetric(mr MetricRun, now time.Time, why string) MetricRun {
	mr.Measurements = slices.Clone(mr.Measurements)
	mr.NextAt = time.Time{}
	// No verdict yet: nothing measured, or only NoData and an undecided
	// judge evaluation. It ends Skipped, never a Successful it did not earn.
	verdictless := mr.Successful+mr.Failed+mr.Inconclusive+mr.Error == 0
	last := ""
	if n := len(mr.Measurements); n > 0 && mr.Measurements[n-1].Phase == PhaseRunning {
		m := &mr.Measurements[n-1]
		last = m.Message
		m.Phase = PhaseSuccessful
		if verdictless && mr.NoDataSince.IsZero() {
			m.Phase = PhaseSkipped
		}
		m.FinishedAt = now
		m.Message = fmt.Sprintf("terminated (%s) before the judge decided; last: %s", why, m.Message)
	}
	if !mr.NoDataSince.IsZero() {
		mr.Phase = PhaseNoData
		mr.Message = fmt.Sprintf("%s: NoData (terminated: %s; no data since %s; %s)",
			mr.Name, why, mr.NoDataSince.Format(time.RFC3339), tally(mr))
		return mr
	}
	if verdictless {
		mr.Phase = PhaseSkipped
		if last != "" {
			mr.Message = fmt.Sprintf("%s: Skipped: no verdict, the run ended (%s) before the judge decided; last: %s", mr.Name, why, last)
		} else {
			mr.Message = fmt.Sprintf("%s: Skipped: no verdict, the run ended (%s) before it measured anything", mr.Name, why)
		}
		return mr
	}
	mr.Phase = PhaseSuccessful
	mr.Message = fmt.Sprintf("%s: Successful (terminated: %s; %s)", mr.Name, why, tally(mr))
	return mr
}

// worstPhase is the run's phase once it has ended: the worst phase of its
// decisive metrics, Successful when it has none. A metric Failed on a
// kayenta label alone is left to the run's score.
func worstPhase(r Run) Phase {
	worst := PhaseSuccessful
	for _, mr := range r.Metrics {
		if !mr.DryRun && !mr.ScoredFailure && mr.Phase.worse(worst) {
			worst = mr.Phase
		}
	}
	return worst
}

// stamp normalises a time for storage: UTC, no monotonic reading, so that
// a JSON round trip gives back an equal value.
func stamp(t time.Time) time.Time { return t.Round(0).UTC() }
