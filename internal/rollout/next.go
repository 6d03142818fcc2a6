package rollout

import (
	"fmt"
	"slices"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Observation is what the controller saw of the outside world before
// calling Next.
type Observation struct {
	// Synced is true when the data plane routes with the table the
	// controller last applied for the current state.
	Synced bool
	// Weight is the canary weight the data plane routes with.
	Weight spec.Weight
	// CanaryAvailable is true when the canary has an endpoint that can take
	// traffic (healthy and not ejected).
	CanaryAvailable bool
	// Rollout is the rollout's name and Templates the AnalysisTemplates
	// that exist, for starting analysis runs.
	Rollout   string
	Templates map[string]spec.AnalysisTemplate
	// RefusedTemplates are stored templates that exist but may not run,
	// with why (not in Templates).
	RefusedTemplates map[string]string
}

// Effects is what the controller must do after Next.
type Effects struct {
	// Events to persist together with the new state, in order.
	Events []EventDraft
	// Changed is true when the state differs and must be saved before the
	// data plane is told anything.
	Changed bool
	// WakeAt is when Next wants to run again even if nothing else happens;
	// zero means only a command or an observation change can move the
	// rollout on.
	WakeAt time.Time
}

// dataPlaneRecheck is how often a step waiting for the data plane looks
// again when nothing told it that something changed. Endpoint health
// changes wake the rollout at once; this is the safety net.
const dataPlaneRecheck = time.Second

// Next is the rollout state machine of SPEC §4: given the persisted state,
// the spec, what the data plane shows and the time, it returns the next
// state and what to do. It is pure: no I/O, no clock, no randomness.
//
// It walks as many steps as can complete at once (route steps, elapsed
// pauses, a setWeight that is already observed), and stops at the first
// step that has to wait.
func Next(st State, sp *spec.RolloutSpec, obs Observation, now time.Time) (State, Effects) {
	s := st.clone()
	var fx Effects
	emit := func(typ, msg string, details map[string]any) {
		fx.Events = append(fx.Events, EventDraft{Type: typ, Message: msg, Details: details})
		fx.Changed = true
	}
	if s.Canary == nil || s.Aborted || s.ManualPause || s.AnalysisHold != "" {
		return st, fx
	}
	steps := sp.Strategy.Canary.Steps
	var bgWake time.Time
	// Every iteration either returns or advances StepIndex, so the loop is
	// bounded by the number of steps.
	for {
		// Background analysis runs beside the steps from its starting step;
		// a verdict against the canary stops them.
		goOn, wake := runBackgroundAnalysis(&s, sp, &obs, now, emit, &fx)
		bgWake = earliestNonZero(bgWake, wake)
		if !goOn {
			s.UpdatedAt = now
			return s, fx
		}
		if s.StepIndex >= len(steps) {
			complete(&s, len(steps), now, "every step completed", emit)
			s.UpdatedAt = now
			return s, fx
		}
		step := steps[s.StepIndex]
		done, wake := runStep(&s, sp, step, &obs, now, emit, &fx)
		if !done {
			if fx.Changed {
				s.UpdatedAt = now
			}
			fx.WakeAt = earliestNonZero(wake, bgWake)
			return s, fx
		}
		advance(&s, steps, now, emit)
	}
}

// runStep makes progress on the current step and reports whether it is
// complete, or else when to look again.
func runStep(s *State, sp *spec.RolloutSpec, step spec.Step, obs *Observation, now time.Time,
	emit func(string, string, map[string]any), fx *Effects) (done bool, wake time.Time) {
	steps := sp.Strategy.Canary.Steps
	switch {
	case step.SetWeight != nil:
		w, err := spec.WeightFromPercent(*step.SetWeight)
		if err != nil { // validation rejects this; never route on a bad weight
			abort(s, now, fmt.Sprintf("%s is invalid: %v", stepLabel(steps, s.StepIndex), err), emit)
			return false, time.Time{}
		}
		if s.Weight != w || s.WeightSince.IsZero() {
			from := s.Weight
			s.Weight, s.WeightSince = w, now
			s.Message = fmt.Sprintf("%s: waiting for the data plane to route %s%% to canary %s", stepLabel(steps, s.StepIndex), w, s.Canary.Version)
			if from != w {
				emit(EventWeightChanged, fmt.Sprintf("canary weight %s%% → %s%%", from, w),
					map[string]any{"from": from.Percent(), "to": w.Percent(), "step": s.StepIndex})
			} else {
				fx.Changed = true
			}
			// Apply first; the next call observes the result.
			return false, now
		}
		if obs.Synced && obs.Weight == w && (w == 0 || obs.CanaryAvailable) {
			s.WeightSince = time.Time{}
			return true, time.Time{}
		}
		deadline := s.WeightSince.Add(sp.ProgressDeadline.D())
		if !now.Before(deadline) {
			why := "the data plane does not route with it yet"
			if obs.Synced && !obs.CanaryAvailable {
				why = "canary " + s.Canary.Version + " has no healthy endpoint"
			}
			abort(s, now, fmt.Sprintf("%s did not take effect within progressDeadline %s: %s", stepLabel(steps, s.StepIndex), sp.ProgressDeadline, why), emit)
			return false, time.Time{}
		}
		if obs.Synced && !obs.CanaryAvailable {
			msg := fmt.Sprintf("%s: waiting for canary %s to have a healthy endpoint (aborts at %s)", stepLabel(steps, s.StepIndex), s.Canary.Version, deadline.UTC().Format(time.RFC3339))
			if s.Message != msg {
				s.Message = msg
				fx.Changed = true
			}
		}
		return false, earliest(deadline, now.Add(dataPlaneRecheck))

	case step.Pause != nil:
		if s.StepPause != model.PauseStep {
			s.StepPause = model.PauseStep
			if step.Pause.Duration != nil {
				s.PauseUntil = s.StepStartedAt.Add(step.Pause.Duration.D())
				s.Message = fmt.Sprintf("%s: paused until %s", stepLabel(steps, s.StepIndex), s.PauseUntil.UTC().Format(time.RFC3339))
			} else {
				s.Message = fmt.Sprintf("%s: paused; continue with `coalmine promote`", stepLabel(steps, s.StepIndex))
			}
			emit(EventPaused, s.Message, map[string]any{"step": s.StepIndex, "reason": string(model.PauseStep)})
		}
		if step.Pause.Duration == nil {
			return false, time.Time{}
		}
		if now.Before(s.PauseUntil) {
			return false, s.PauseUntil
		}
		return true, time.Time{}

	case step.SetHeaderRoute != nil:
		s.HeaderRoutes = upsertRoute(s.HeaderRoutes, *step.SetHeaderRoute, func(r spec.HeaderRoute) string { return r.Name },
			func(r spec.HeaderRoute) bool { return len(r.Match) == 0 })
		return true, time.Time{}

	case step.SetMirrorRoute != nil:
		s.MirrorRoutes = upsertRoute(s.MirrorRoutes, *step.SetMirrorRoute, func(r spec.MirrorRoute) string { return r.Name },
			func(r spec.MirrorRoute) bool { return len(r.Match) == 0 && r.Percentage == nil })
		return true, time.Time{}

	case step.Analysis != nil:
		return runStepAnalysis(s, sp, step, obs, now, emit, fx)
	}
	abort(s, now, fmt.Sprintf("%s has no known kind", stepLabel(steps, s.StepIndex)), emit)
	return false, time.Time{}
}

// upsertRoute adds or replaces the route with r's name; a route that only
// names itself (isRemoval) removes it, as SPEC §4 says.
func upsertRoute[R any](routes []R, r R, name func(R) string, isRemoval func(R) bool) []R {
	out := slices.DeleteFunc(slices.Clone(routes), func(x R) bool { return name(x) == name(r) })
	if isRemoval(r) {
		return out
	}
	return append(out, r)
}

func advance(s *State, steps []spec.Step, now time.Time, emit func(string, string, map[string]any)) {
	emit(EventStepCompleted, stepLabel(steps, s.StepIndex)+" completed", map[string]any{"step": s.StepIndex, "description": DescribeStep(steps[s.StepIndex])})
	s.StepIndex++
	s.StepStartedAt = now
	s.PauseUntil = time.Time{}
	s.StepPause = model.PauseNone
	s.WeightSince = time.Time{}
	if s.StepIndex < len(steps) {
		s.Message = stepLabel(steps, s.StepIndex) + " started"
	}
	s.UpdatedAt = now
}

// complete makes the canary the new stable: the old stable is no longer
// routed, the routes added by steps are removed, and the phase is Healthy.
func complete(s *State, steps int, now time.Time, why string, emit func(string, string, map[string]any)) {
	from, to := s.Stable.Version, s.Canary.Version
	archiveRuns(s, now, "rollout completed")
	// Every step counts as done, skipped ones too (promote --full), so the
	// progress reads n/n, as in Argo.
	s.StepIndex = max(s.StepIndex, steps)
	s.record(OutcomeCompleted, now)
	s.Stable = *s.Canary
	s.Canary = nil
	s.Weight = 0
	s.WeightSince = time.Time{}
	s.HeaderRoutes, s.MirrorRoutes = nil, nil
	s.StepPause, s.ManualPause, s.PauseUntil = model.PauseNone, false, time.Time{}
	s.Message = fmt.Sprintf("%s: %s is the new stable, serving 100%% (was %s)", why, to, from)
	s.UpdatedAt = now
	emit(EventCompleted, s.Message, map[string]any{"stable": to, "previousStable": from})
}

// abort returns every request to stable and marks the revision Degraded.
func abort(s *State, now time.Time, why string, emit func(string, string, map[string]any)) {
	archiveRuns(s, now, "rollout aborted")
	s.Aborted = true
	s.Weight = 0
	s.WeightSince = time.Time{}
	s.HeaderRoutes, s.MirrorRoutes = nil, nil
	s.StepPause, s.ManualPause, s.PauseUntil = model.PauseNone, false, time.Time{}
	s.Message = fmt.Sprintf("aborted: %s; 100%% of traffic is back on stable %s", why, s.Stable.Version)
	s.UpdatedAt = now
	emit(EventAborted, s.Message, map[string]any{"reason": why, "stable": s.Stable.Version, "canary": s.Canary.Version})
}

// earliestNonZero is the earlier of two times, ignoring zero ones.
func earliestNonZero(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	}
	return earliest(a, b)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
