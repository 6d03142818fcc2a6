package rollout

import (
	"fmt"
	"strconv"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// State is the persisted state of one rollout: everything a restart needs to
// resume exactly where it was. It is a value; the pure functions of this
// package take one and return a new one.
type State struct {
	// Revision numbers attempts to move from one stable to one canary.
	Revision int64 `json:"revision"`
	// Stable is the version serving traffic outside the canary share. After
	// a completion it is the former canary, whatever the spec file still
	// says, so its endpoints are kept here.
	Stable spec.VersionSpec `json:"stable"`
	// Canary is the version being rolled out; nil when there is nothing to
	// roll out (phase Healthy).
	Canary *spec.VersionSpec `json:"canary,omitempty"`

	StepIndex     int       `json:"stepIndex"`
	StepStartedAt time.Time `json:"stepStartedAt"`
	// PauseUntil is the absolute end of the current timed pause step, set
	// when the step starts, so a restart does not reset it.
	PauseUntil time.Time `json:"pauseUntil,omitzero"`
	// StepPause is set while a step holds the rollout: PauseStep for a pause
	// step, Inconclusive or NoData for an analysis.
	StepPause model.PauseReason `json:"stepPause,omitempty"`
	// ManualPause is set by `pause` and `set weight`; it holds the rollout
	// whatever the step, until `resume` or `promote`.
	ManualPause bool `json:"manualPause,omitempty"`
	Aborted     bool `json:"aborted,omitempty"`
	// AnalysisHold is set when background analysis holds the rollout
	// (Inconclusive, or NoData past progressDeadline) until `promote`.
	AnalysisHold model.PauseReason `json:"analysisHold,omitempty"`

	// Runs are the analysis runs of the current attempt: step runs and the
	// background run. PastRuns keeps ended ones (bounded) for the API.
	Runs     []AnalysisRun `json:"runs,omitempty"`
	PastRuns []AnalysisRun `json:"pastRuns,omitempty"`
	// RunSeq numbers analysis runs, so run IDs are unique per rollout.
	RunSeq int `json:"runSeq,omitempty"`

	// Weight is the canary weight the controller applies.
	Weight spec.Weight `json:"weight"`
	// WeightSince is when the current setWeight step applied its weight; the
	// step fails after progressDeadline without taking effect.
	WeightSince time.Time `json:"weightSince,omitzero"`

	// HeaderRoutes and MirrorRoutes are the routes added by steps; they are
	// removed on abort and completion.
	HeaderRoutes []spec.HeaderRoute `json:"headerRoutes,omitempty"`
	MirrorRoutes []spec.MirrorRoute `json:"mirrorRoutes,omitempty"`

	Message   string    `json:"message,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	UpdatedAt time.Time `json:"updatedAt"`

	// History lists ended revisions, newest last, for `undo`.
	History []RevisionRecord `json:"history,omitempty"`
}

// Outcome is how a revision ended.
type Outcome string

// Outcomes of a revision.
const (
	OutcomeCompleted  Outcome = "Completed"
	OutcomeAborted    Outcome = "Aborted"
	OutcomeSuperseded Outcome = "Superseded"
)

// RevisionRecord is one ended revision.
type RevisionRecord struct {
	Revision int64             `json:"revision"`
	Stable   spec.VersionSpec  `json:"stable"`
	Canary   *spec.VersionSpec `json:"canary,omitempty"`
	Outcome  Outcome           `json:"outcome"`
	EndedAt  time.Time         `json:"endedAt"`
}

// maxHistory bounds State.History.
const maxHistory = 20

// Phase derives the phase of SPEC §4 from the state.
func (s *State) Phase() model.Phase {
	switch {
	case s.Canary == nil:
		return model.PhaseHealthy
	case s.Aborted:
		return model.PhaseDegraded
	case s.ManualPause || s.StepPause != "" || s.AnalysisHold != "":
		return model.PhasePaused
	default:
		return model.PhaseProgressing
	}
}

// PauseReason is the reason reported for a paused rollout; a manual pause
// wins over the step's own.
func (s *State) PauseReason() model.PauseReason {
	switch {
	case s.Canary == nil || s.Aborted:
		return model.PauseNone
	case s.ManualPause:
		return model.PauseManual
	case s.AnalysisHold != "":
		return s.AnalysisHold
	default:
		return s.StepPause
	}
}

// clone returns a deep copy, so that a pure function can change the copy
// while the caller's value stays as it was.
func (s State) clone() State {
	if s.Canary != nil {
		c := *s.Canary
		c.Endpoints = append([]string(nil), c.Endpoints...)
		s.Canary = &c
	}
	s.Stable.Endpoints = append([]string(nil), s.Stable.Endpoints...)
	s.HeaderRoutes = append([]spec.HeaderRoute(nil), s.HeaderRoutes...)
	s.MirrorRoutes = append([]spec.MirrorRoute(nil), s.MirrorRoutes...)
	s.History = append([]RevisionRecord(nil), s.History...)
	s.Runs = append([]AnalysisRun(nil), s.Runs...)
	s.PastRuns = append([]AnalysisRun(nil), s.PastRuns...)
	return s
}

func (s *State) record(outcome Outcome, now time.Time) {
	var canary *spec.VersionSpec
	if s.Canary != nil {
		c := *s.Canary
		canary = &c
	}
	s.History = append(s.History, RevisionRecord{Revision: s.Revision, Stable: s.Stable, Canary: canary, Outcome: outcome, EndedAt: now})
	if len(s.History) > maxHistory {
		s.History = s.History[len(s.History)-maxHistory:]
	}
}

// EventDraft is an event before the store gives it a sequence number.
type EventDraft struct {
	Type    string
	Message string
	Details map[string]any
	// Time is when it happened; zero means the time of the state it is
	// saved with. Events that wait to be saved (an unsaved abort) keep
	// their own.
	Time time.Time
}

// Event types (SPEC §6.4).
const (
	EventStarted       = "rollout-started"
	EventStepCompleted = "rollout-step-completed"
	EventPaused        = "rollout-paused"
	EventResumed       = "rollout-resumed"
	EventPromoted      = "rollout-promoted"
	EventCompleted     = "rollout-completed"
	EventAborted       = "rollout-aborted"
	EventWeightChanged = "rollout-weight-changed"
	EventEndpointDown  = "endpoint-unhealthy"
	EventEndpointUp    = "endpoint-healthy"
	// The load balancer that carries a rollout stopped or resumed routing
	// as its state says (spec.trafficRouting.router).
	EventRouterDown = "router-unavailable"
	EventRouterUp   = "router-available"
)

// DescribeStep renders a step the way the CLI and messages show it.
func DescribeStep(st spec.Step) string {
	switch {
	case st.SetWeight != nil:
		return "setWeight " + strconv.FormatFloat(*st.SetWeight, 'f', -1, 64)
	case st.Pause != nil && st.Pause.Duration != nil:
		return "pause " + st.Pause.Duration.String()
	case st.Pause != nil:
		return "pause until promoted"
	case st.Analysis != nil:
		names := ""
		for i, t := range st.Analysis.Templates {
			if i > 0 {
				names += ","
			}
			names += t.TemplateName
		}
		return "analysis " + names
	case st.SetHeaderRoute != nil:
		return "setHeaderRoute " + st.SetHeaderRoute.Name
	case st.SetMirrorRoute != nil:
		return "setMirrorRoute " + st.SetMirrorRoute.Name
	}
	return "unknown step"
}

func stepLabel(steps []spec.Step, i int) string {
	if i < 0 || i >= len(steps) {
		return fmt.Sprintf("step %d/%d", i+1, len(steps))
	}
	return fmt.Sprintf("step %d/%d (%s)", i+1, len(steps), DescribeStep(steps[i]))
}
