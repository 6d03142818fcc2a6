package rollout

import (
	"fmt"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// The commands of SPEC §4 as pure functions: each takes the state and
// returns the new state and its events, or an error wrapping
// model.ErrConflict that says why the command does not apply now.

type emitter struct{ events []EventDraft }

func (e *emitter) emit(typ, msg string, details map[string]any) {
	e.events = append(e.events, EventDraft{Type: typ, Message: msg, Details: details})
}

// conflictError is a command that does not apply now. Its message is the
// reason alone (no trailing ": conflict"), because users read it as is.
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }
func (e *conflictError) Unwrap() error { return model.ErrConflict }

func conflict(name, format string, args ...any) error {
	return &conflictError{msg: fmt.Sprintf("rollout %q %s", name, fmt.Sprintf(format, args...))}
}

// needCanary rejects commands on a rollout with nothing to roll out.
func needCanary(name string, s *State, verb string) error {
	if s.Canary == nil {
		return conflict(name, "is Healthy with %s stable and no canary: there is nothing to %s; start a revision with `coalmine set canary`", s.Stable.Version, verb)
	}
	return nil
}

// Promote leaves the current pause or analysis step, or with full skips
// every remaining step and completes.
func Promote(name string, st State, sp *spec.RolloutSpec, full bool, now time.Time) (State, []EventDraft, error) {
	s := st.clone()
	var e emitter
	if err := needCanary(name, &s, "promote"); err != nil {
		return st, nil, err
	}
	steps := sp.Strategy.Canary.Steps
	if full {
		e.emit(EventPromoted, fmt.Sprintf("promoted in full at %s: remaining steps skipped", stepLabel(steps, s.StepIndex)), map[string]any{"full": true, "step": s.StepIndex})
		s.Aborted = false
		complete(&s, len(steps), now, "promoted in full", e.emit)
		return s, e.events, nil
	}
	if s.Aborted {
		return st, nil, conflict(name, "was aborted: use `coalmine retry` to start revision %d again, or `coalmine promote --full` to make %s stable anyway", s.Revision, s.Canary.Version)
	}
	atHold := s.StepIndex < len(steps) && (steps[s.StepIndex].Pause != nil || steps[s.StepIndex].Analysis != nil)
	switch {
	case s.AnalysisHold != "" && !s.ManualPause:
		// Background analysis held the rollout (Inconclusive, or no data):
		// promote accepts that and starts background analysis afresh.
		e.emit(EventPromoted, fmt.Sprintf("promoted past background analysis (%s) at %s", s.AnalysisHold, stepLabel(steps, s.StepIndex)), map[string]any{"step": s.StepIndex, "reason": string(s.AnalysisHold)})
		if r := s.activeRun(analysis.KindBackground, 0); r != nil {
			archiveRun(&s, r.Run.ID, now, "promoted past its verdict")
		}
		s.AnalysisHold = model.PauseNone
		s.Message = "resumed at " + stepLabel(steps, s.StepIndex)
	case atHold:
		if r := s.activeRun(analysis.KindStep, s.StepIndex); r != nil {
			archiveRun(&s, r.Run.ID, now, "step promoted")
		}
		e.emit(EventPromoted, "promoted past "+stepLabel(steps, s.StepIndex), map[string]any{"step": s.StepIndex})
		s.ManualPause = false
		advance(&s, steps, now, e.emit)
		if s.StepIndex >= len(steps) {
			complete(&s, len(steps), now, "every step completed", e.emit)
		}
	case s.ManualPause:
		e.emit(EventPromoted, "promoted: manual pause released at "+stepLabel(steps, s.StepIndex), map[string]any{"step": s.StepIndex})
		s.ManualPause = false
		s.Message = "resumed at " + stepLabel(steps, s.StepIndex)
	default:
		return st, nil, conflict(name, "is at %s, which completes on its own: there is no pause to promote past; use --full to skip every remaining step", stepLabel(steps, s.StepIndex))
	}
	s.UpdatedAt = now
	return s, e.events, nil
}

// Abort sends all traffic back to stable at once.
func Abort(name string, st State, now time.Time) (State, []EventDraft, error) {
	s := st.clone()
	var e emitter
	if err := needCanary(name, &s, "abort"); err != nil {
		return st, nil, err
	}
	if s.Aborted {
		return st, nil, conflict(name, "is already aborted: 100%% of traffic is on stable %s", s.Stable.Version)
	}
	abort(&s, now, "aborted by hand", e.emit)
	return s, e.events, nil
}

// Retry starts an aborted revision again from its first step.
func Retry(name string, st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
	s := st.clone()
	var e emitter
	if err := needCanary(name, &s, "retry"); err != nil {
		return st, nil, err
	}
	if !s.Aborted {
		return st, nil, conflict(name, "is %s, not aborted: only an aborted revision can be retried", s.Phase())
	}
	s.Aborted = false
	archiveRuns(&s, now, "rollout retried")
	s.StepIndex, s.StepStartedAt = 0, now
	s.Weight, s.WeightSince, s.PauseUntil, s.StepPause = 0, time.Time{}, time.Time{}, model.PauseNone
	s.Message = fmt.Sprintf("revision %d retried: %s", s.Revision, stepLabel(sp.Strategy.Canary.Steps, 0)+" started")
	s.UpdatedAt = now
	e.emit(EventStarted, s.Message, map[string]any{"retry": true, "stable": s.Stable.Version, "canary": s.Canary.Version})
	return s, e.events, nil
}

// Pause holds the rollout at its current step.
func Pause(name string, st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
	s := st.clone()
	var e emitter
	if err := needCanary(name, &s, "pause"); err != nil {
		return st, nil, err
	}
	switch {
	case s.Aborted:
		return st, nil, conflict(name, "is aborted: there is nothing to pause")
	case s.ManualPause:
		return st, nil, conflict(name, "is already paused by hand; `coalmine resume` releases it")
	}
	s.ManualPause = true
	// A held setWeight is not waiting to take effect: progressDeadline
	// never limits a pause (SPEC §4), so Next starts the wait afresh once
	// the rollout is released.
	s.WeightSince = time.Time{}
	s.Message = "paused by hand at " + stepLabel(sp.Strategy.Canary.Steps, s.StepIndex) + "; `coalmine resume` releases it"
	s.UpdatedAt = now
	e.emit(EventPaused, s.Message, map[string]any{"reason": string(model.PauseManual), "step": s.StepIndex})
	return s, e.events, nil
}

// Resume releases a manual pause.
func Resume(name string, st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
	s := st.clone()
	var e emitter
	if err := needCanary(name, &s, "resume"); err != nil {
		return st, nil, err
	}
	steps := sp.Strategy.Canary.Steps
	switch {
	case s.Aborted:
		return st, nil, conflict(name, "is aborted: use `coalmine retry` to start it again")
	case !s.ManualPause && s.StepPause != "":
		return st, nil, conflict(name, "waits at %s (%s), not at a manual pause: use `coalmine promote` to continue", stepLabel(steps, s.StepIndex), s.StepPause)
	case !s.ManualPause:
		return st, nil, conflict(name, "is not paused")
	}
	s.ManualPause = false
	s.Message = "resumed at " + stepLabel(steps, s.StepIndex)
	s.UpdatedAt = now
	e.emit(EventResumed, s.Message, map[string]any{"step": s.StepIndex})
	return s, e.events, nil
}

// SetWeight overrides the canary weight by hand and pauses the rollout.
func SetWeight(name string, st State, w spec.Weight, now time.Time) (State, []EventDraft, error) {
	s := st.clone()
	var e emitter
	if err := needCanary(name, &s, "weight"); err != nil {
		return st, nil, conflict(name, "has no canary, so there is no weight to set; start a revision with `coalmine set canary` first")
	}
	if s.Aborted {
		return st, nil, conflict(name, "is aborted: use `coalmine retry` first, then set its weight")
	}
	if w > spec.MaxWeight {
		return st, nil, fmt.Errorf("weight %s%% is above 100%%: %w", w, model.ErrInvalid)
	}
	from := s.Weight
	wasPaused := s.ManualPause
	s.Weight, s.WeightSince = w, time.Time{}
	s.ManualPause = true
	s.Message = fmt.Sprintf("canary weight set to %s%% by hand; the rollout is paused until `coalmine resume` or `coalmine promote`", w)
	s.UpdatedAt = now
	e.emit(EventWeightChanged, fmt.Sprintf("canary weight %s%% → %s%% by hand", from, w), map[string]any{"from": from.Percent(), "to": w.Percent(), "manual": true})
	if !wasPaused {
		e.emit(EventPaused, s.Message, map[string]any{"reason": string(model.PauseManual), "step": s.StepIndex})
	}
	return s, e.events, nil
}
