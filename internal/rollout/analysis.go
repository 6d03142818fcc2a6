package rollout

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// AnalysisRun is an analysis run as the rollout state keeps it: the run's
// books and the metrics it was created with (templates may change while it
// runs; the run keeps measuring what it started with).
type AnalysisRun struct {
	Revision int64         `json:"revision"`
	Run      analysis.Run  `json:"run"`
	Metrics  []spec.Metric `json:"metrics"`
	// Secrets says where the run's {{secret.NAME}} placeholders are read
	// from when a measurement runs; the values are never stored.
	Secrets map[string]spec.ArgValueFrom `json:"secrets,omitempty"`
}

// maxPastRuns bounds State.PastRuns.
const maxPastRuns = 20

// Event types of analysis (SPEC §6.4).
const (
	EventAnalysisStarted = analysis.EventStarted
	EventAnalysisNoData  = analysis.EventNoData
)

func (s *State) activeRun(kind string, step int) *AnalysisRun {
	for i := range s.Runs {
		r := &s.Runs[i]
		if r.Run.Kind == kind && (kind == analysis.KindBackground || r.Run.Step == step) {
			return r
		}
	}
	return nil
}

// archiveRuns terminates the running analysis runs (the rollout no longer
// needs them: aborted, completed, retried, a new revision) and moves every
// run to the history.
func archiveRuns(s *State, now time.Time, why string) {
	for _, r := range s.Runs {
		r.Run = analysis.Terminate(r.Run, now, why)
		s.PastRuns = append(s.PastRuns, r)
	}
	s.Runs = nil
	s.AnalysisHold = model.PauseNone
	if len(s.PastRuns) > maxPastRuns {
		s.PastRuns = slices.Clone(s.PastRuns[len(s.PastRuns)-maxPastRuns:])
	}
}

// archiveRun does the same for one run.
func archiveRun(s *State, id string, now time.Time, why string) {
	for i, r := range s.Runs {
		if r.Run.ID == id {
			r.Run = analysis.Terminate(r.Run, now, why)
			s.PastRuns = append(s.PastRuns, r)
			s.Runs = slices.Delete(slices.Clone(s.Runs), i, i+1)
			break
		}
	}
	if len(s.PastRuns) > maxPastRuns {
		s.PastRuns = slices.Clone(s.PastRuns[len(s.PastRuns)-maxPastRuns:])
	}
}

// startRun resolves the templates of an analysis and starts its run.
func startRun(s *State, obs *Observation, kind string, step int, req analysis.Request, now time.Time,
	emit func(string, string, map[string]any)) error {
	names := make([]string, 0, len(req.Refs))
	for _, ref := range req.Refs {
		_, ok := obs.Templates[ref.TemplateName]
		if why := obs.RefusedTemplates[ref.TemplateName]; !ok && why != "" {
			return fmt.Errorf("AnalysisTemplate %q %s", ref.TemplateName, why)
		}
		if !ok {
			return fmt.Errorf("AnalysisTemplate %q does not exist (any more): apply it, or change the rollout", ref.TemplateName)
		}
		names = append(names, ref.TemplateName)
	}
	// Every template, so that composed ones resolve too.
	templates := make([]spec.AnalysisTemplate, 0, len(obs.Templates))
	for _, name := range slices.Sorted(maps.Keys(obs.Templates)) {
		templates = append(templates, obs.Templates[name])
	}
	res, err := analysis.ResolveRun(templates, req, analysis.Vars(obs.Rollout, s.Canary.Version, s.Stable.Version))
	metrics := res.Metrics
	if err != nil {
		return fmt.Errorf("resolve analysis templates %s: %w", strings.Join(names, ", "), err)
	}
	s.RunSeq++
	// The id names the step as users count them (step 3 is r1-step3-…),
	// and the run's sequence number keeps it unique across retries.
	id := fmt.Sprintf("r%d-background-%d", s.Revision, s.RunSeq)
	if kind == analysis.KindStep {
		id = fmt.Sprintf("r%d-step%d-%d", s.Revision, step+1, s.RunSeq)
	}
	run := analysis.NewRun(id, kind, step, names, metrics, now)
	run.Scoring = res.KayentaScore
	s.Runs = append(s.Runs, AnalysisRun{Revision: s.Revision, Run: run, Metrics: metrics, Secrets: res.Secrets})
	metricNames := make([]string, len(metrics))
	for i, m := range metrics {
		metricNames[i] = m.Name
	}
	what := "background analysis"
	if kind == analysis.KindStep {
		what = fmt.Sprintf("analysis of step %d", step+1)
	}
	emit(EventAnalysisStarted, fmt.Sprintf("%s started: run %s measures %s", what, id, strings.Join(metricNames, ", ")),
		map[string]any{"run": id, "kind": kind, "step": step, "templates": strings.Join(names, ",")})
	return nil
}

// runVerdict turns a run's phase into what the rollout does (SPEC §4):
// Successful lets the step complete, Failed and Error abort, Inconclusive
// and a lack of data past progressDeadline hold the rollout.
type runVerdict int

const (
	runPending runVerdict = iota
	runPassed
	runAborts
	runHolds
)

// judgeRun reads a run at now; hold is the pause reason when it holds, and
// wake when to look again for a no-data deadline.
func judgeRun(r *AnalysisRun, sp *spec.RolloutSpec, now time.Time) (v runVerdict, hold model.PauseReason, wake time.Time) {
	switch r.Run.Phase {
	case analysis.PhaseSuccessful:
		return runPassed, "", time.Time{}
	case analysis.PhaseFailed, analysis.PhaseError:
		return runAborts, "", time.Time{}
	case analysis.PhaseInconclusive, analysis.PhaseNoData:
		return runHolds, model.PauseReason(r.Run.Phase), time.Time{}
	}
	if since := analysis.NoDataSince(r.Run); !since.IsZero() {
		deadline := since.Add(sp.ProgressDeadline.D())
		if !now.Before(deadline) {
			return runHolds, model.PauseNoData, time.Time{}
		}
		return runPending, "", deadline
	}
	return runPending, "", time.Time{}
}

// runHoldMessage explains a held rollout.
func runHoldMessage(r *AnalysisRun, hold model.PauseReason, sp *spec.RolloutSpec, label string) string {
	if hold == model.PauseNoData {
		return fmt.Sprintf("%s: analysis run %s has seen no data for progressDeadline %s; the canary is not judged without data: `coalmine promote` continues, `coalmine abort` ends", label, r.Run.ID, sp.ProgressDeadline)
	}
	return fmt.Sprintf("%s: %s; `coalmine promote` continues, `coalmine abort` ends", label, r.Run.Message)
}

// runStepAnalysis drives an analysis step: start its run, then follow it.
func runStepAnalysis(s *State, sp *spec.RolloutSpec, step spec.Step, obs *Observation, now time.Time,
	emit func(string, string, map[string]any), fx *Effects) (bool, time.Time) {
	steps := sp.Strategy.Canary.Steps
	label := stepLabel(steps, s.StepIndex)
	r := s.activeRun(analysis.KindStep, s.StepIndex)
	if r == nil {
		if err := startRun(s, obs, analysis.KindStep, s.StepIndex, analysis.Request{
			Refs: step.Analysis.Templates, Args: step.Analysis.Args, DryRun: step.Analysis.DryRun, MeasurementRetention: step.Analysis.MeasurementRetention}, now, emit); err != nil {
			abort(s, now, fmt.Sprintf("%s cannot start: %v", label, err), emit)
			return false, time.Time{}
		}
		s.Message = label + ": analysis running"
		return false, now
	}
	v, hold, wake := judgeRun(r, sp, now)
	switch v {
	case runPassed:
		archiveRun(s, r.Run.ID, now, "analysis step completed")
		fx.Changed = true
		return true, time.Time{}
	case runAborts:
		abort(s, now, r.Run.Message, emit)
		return false, time.Time{}
	case runHolds:
		if s.StepPause != hold {
			s.StepPause = hold
			s.Message = runHoldMessage(r, hold, sp, label)
			if hold == model.PauseNoData {
				emit(EventAnalysisNoData, s.Message, map[string]any{"run": r.Run.ID, "step": s.StepIndex})
			}
			emit(EventPaused, s.Message, map[string]any{"reason": string(hold), "step": s.StepIndex, "run": r.Run.ID})
		}
		return false, time.Time{}
	}
	if s.StepPause == model.PauseNoData {
		// Data came back: the run goes on.
		s.StepPause = model.PauseNone
		s.Message = label + ": analysis running"
		fx.Changed = true
	}
	return false, wake
}

// runBackgroundAnalysis starts and follows strategy.canary.analysis from
// its starting step. It reports whether the rollout may go on with its
// steps, and when to look again.
func runBackgroundAnalysis(s *State, sp *spec.RolloutSpec, obs *Observation, now time.Time,
	emit func(string, string, map[string]any), fx *Effects) (goOn bool, wake time.Time) {
	bg := sp.Strategy.Canary.Analysis
	if bg == nil || s.StepIndex < bg.StartingStep {
		return true, time.Time{}
	}
	r := s.activeRun(analysis.KindBackground, 0)
	if r == nil {
		if err := startRun(s, obs, analysis.KindBackground, s.StepIndex, analysis.Request{
			Refs: bg.Templates, Args: bg.Args, DryRun: bg.DryRun, MeasurementRetention: bg.MeasurementRetention}, now, emit); err != nil {
			abort(s, now, fmt.Sprintf("background analysis cannot start: %v", err), emit)
			return false, time.Time{}
		}
		return true, now
	}
	v, hold, wake := judgeRun(r, sp, now)
	switch v {
	case runAborts:
		abort(s, now, "background analysis: "+r.Run.Message, emit)
		return false, time.Time{}
	case runHolds:
		if s.AnalysisHold != hold {
			s.AnalysisHold = hold
			s.Message = runHoldMessage(r, hold, sp, "background analysis")
			if hold == model.PauseNoData {
				emit(EventAnalysisNoData, s.Message, map[string]any{"run": r.Run.ID})
			}
			emit(EventPaused, s.Message, map[string]any{"reason": string(hold), "run": r.Run.ID})
		}
		return false, time.Time{}
	}
	return true, wake
}
