package rollout

import (
	"reflect"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// running is revision 1 rolling v2 out over v1, at step with weight w;
// the step started at t0.
func running(step int, w spec.Weight) State {
	return State{
		Revision: 1, Stable: version("v1", 9001), Canary: versionPtr("v2", 9002),
		StepIndex: step, StepStartedAt: t0, Weight: w, StartedAt: t0, UpdatedAt: t0,
	}
}

// with returns st changed by f.
func with(st State, f func(*State)) State {
	f(&st)
	return st
}

func weightSince(at time.Time) func(*State) { return func(s *State) { s.WeightSince = at } }

func headerRoute(name, value string) spec.HeaderRoute {
	return *headerRouteStep(name, "x-"+name, value).SetHeaderRoute
}

func mirrorRoute(name string, percent float64) spec.MirrorRoute {
	return *mirrorRouteStep(name, percent).SetMirrorRoute
}

const (
	w0   spec.Weight = 0
	w20  spec.Weight = 2000
	w30  spec.Weight = 3000
	w50  spec.Weight = 5000
	w100 spec.Weight = 10000
)

// TestNext covers every transition of the state machine. The spec is the
// story's unless a case names its steps: 0 setWeight 20, 1 pause 2s,
// 2 setWeight 50, 3 pause {}, 4 setWeight 100; progressDeadline is 10m.
func TestNext(t *testing.T) {
	deadline := t0.Add(10 * time.Minute)
	cases := []struct {
		name  string
		steps []spec.Step
		st    State
		obs   Observation
		now   time.Time

		wantStep    int
		wantWeight  spec.Weight
		wantPhase   model.Phase
		wantEvents  []string
		wantWake    time.Time
		wantChanged bool
		wantMsg     []string
		check       func(t *testing.T, got State, fx Effects)
	}{
		// setWeight
		{
			name: "setWeight applies its weight and looks again at once",
			st:   running(0, w0), now: t0.Add(time.Second),
			wantStep: 0, wantWeight: w20, wantPhase: model.PhaseProgressing,
			wantEvents: []string{EventWeightChanged}, wantWake: t0.Add(time.Second), wantChanged: true,
			wantMsg: []string{"step 1/5 (setWeight 20)", "waiting for the data plane to route 20% to canary v2"},
			check: func(t *testing.T, got State, fx Effects) {
				if !got.WeightSince.Equal(t0.Add(time.Second)) {
					t.Errorf("WeightSince = %v, want the time the weight was applied", got.WeightSince)
				}
				d := fx.Events[0].Details
				if d["from"] != 0.0 || d["to"] != 20.0 || d["step"] != 0 {
					t.Errorf("weight-changed details = %v, want from 0 to 20 at step 0", d)
				}
			},
		},
		{
			name: "setWeight whose weight is already set (after a manual weight and resume) starts its wait without an event",
			st:   running(2, w50), now: t0.Add(time.Second),
			wantStep: 2, wantWeight: w50, wantPhase: model.PhaseProgressing,
			wantEvents: nil, wantWake: t0.Add(time.Second), wantChanged: true,
			check: func(t *testing.T, got State, _ Effects) {
				if !got.WeightSince.Equal(t0.Add(time.Second)) {
					t.Errorf("WeightSince = %v, want now", got.WeightSince)
				}
			},
		},
		{
			name: "after a manual weight and resume the step's own weight is applied again",
			st:   running(2, w30), now: t0.Add(time.Second),
			wantStep: 2, wantWeight: w50, wantPhase: model.PhaseProgressing,
			wantEvents: []string{EventWeightChanged}, wantWake: t0.Add(time.Second), wantChanged: true,
		},
		{
			name: "setWeight waits while the data plane has not synced",
			st:   with(running(0, w20), weightSince(t0)), obs: Observation{Synced: false, Weight: w0, CanaryAvailable: true},
			now:      t0.Add(5 * time.Second),
			wantStep: 0, wantWeight: w20, wantPhase: model.PhaseProgressing,
			wantWake: t0.Add(6 * time.Second), wantChanged: false,
		},
		{
			name: "setWeight waits while the data plane routes another weight",
			st:   with(running(0, w20), weightSince(t0)), obs: Observation{Synced: true, Weight: 1000, CanaryAvailable: true},
			now:      t0.Add(5 * time.Second),
			wantStep: 0, wantWeight: w20, wantPhase: model.PhaseProgressing,
			wantWake: t0.Add(6 * time.Second), wantChanged: false,
		},
		{
			name: "setWeight waits for the canary to have a healthy endpoint and says so",
			st:   with(running(0, w20), weightSince(t0)), obs: Observation{Synced: true, Weight: w20, CanaryAvailable: false},
			now:      t0.Add(5 * time.Second),
			wantStep: 0, wantWeight: w20, wantPhase: model.PhaseProgressing,
			wantWake: t0.Add(6 * time.Second), wantChanged: true,
			wantMsg: []string{"waiting for canary v2 to have a healthy endpoint", "aborts at 2026-01-02T03:14:05Z"},
		},
		{
			name: "the healthy-endpoint message is written once, not every second",
			st: with(running(0, w20), func(s *State) {
				s.WeightSince = t0
				s.Message = "step 1/5 (setWeight 20): waiting for canary v2 to have a healthy endpoint (aborts at 2026-01-02T03:14:05Z)"
			}),
			obs: Observation{Synced: true, Weight: w20}, now: t0.Add(6 * time.Second),
			wantStep: 0, wantWeight: w20, wantPhase: model.PhaseProgressing,
			wantWake: t0.Add(7 * time.Second), wantChanged: false,
		},
		{
			name: "a wait wakes at the deadline when that comes before the recheck",
			st:   with(running(0, w20), weightSince(t0)), obs: Observation{Synced: true, Weight: w20},
			now:      deadline.Add(-300 * time.Millisecond),
			wantStep: 0, wantWeight: w20, wantPhase: model.PhaseProgressing,
			wantWake: deadline, wantChanged: true,
		},
		{
			name: "setWeight completes when the data plane routes it to an available canary",
			st:   with(running(0, w20), weightSince(t0)), obs: Observation{Synced: true, Weight: w20, CanaryAvailable: true},
			now:      t0.Add(3 * time.Second),
			wantStep: 1, wantWeight: w20, wantPhase: model.PhasePaused,
			wantEvents: []string{EventStepCompleted, EventPaused}, wantWake: t0.Add(5 * time.Second), wantChanged: true,
			check: func(t *testing.T, got State, fx Effects) {
				if !got.WeightSince.IsZero() || !got.StepStartedAt.Equal(t0.Add(3*time.Second)) || !got.PauseUntil.Equal(t0.Add(5*time.Second)) {
					t.Errorf("WeightSince %v, StepStartedAt %v, PauseUntil %v: want zero, now, now+2s", got.WeightSince, got.StepStartedAt, got.PauseUntil)
				}
				if d := fx.Events[0].Details; d["step"] != 0 || d["description"] != "setWeight 20" {
					t.Errorf("step-completed details = %v", d)
				}
			},
		},
		{
			name:  "setWeight 0 completes without an available canary",
			steps: []spec.Step{setWeightStep(0), pauseUntilPromoted()},
			st:    with(running(0, w0), weightSince(t0)), obs: Observation{Synced: true, Weight: w0, CanaryAvailable: false},
			now:      t0.Add(time.Second),
			wantStep: 1, wantWeight: w0, wantPhase: model.PhasePaused,
			wantEvents: []string{EventStepCompleted, EventPaused}, wantChanged: true,
		},
		{
			name: "setWeight aborts after progressDeadline when the data plane never routes it",
			st:   with(running(0, w20), weightSince(t0)), obs: Observation{},
			now:      deadline,
			wantStep: 0, wantWeight: w0, wantPhase: model.PhaseDegraded,
			wantEvents: []string{EventAborted}, wantChanged: true,
			wantMsg: []string{"aborted:", "step 1/5 (setWeight 20) did not take effect within progressDeadline 10m0s", "the data plane does not route with it yet", "100% of traffic is back on stable v1"},
			check: func(t *testing.T, got State, fx Effects) {
				if !got.Aborted || !got.WeightSince.IsZero() {
					t.Errorf("Aborted %v, WeightSince %v", got.Aborted, got.WeightSince)
				}
				if d := fx.Events[0].Details; d["stable"] != "v1" || d["canary"] != "v2" {
					t.Errorf("aborted details = %v", d)
				}
			},
		},
		{
			name: "setWeight aborts after progressDeadline when the canary has no healthy endpoint",
			st:   with(running(0, w20), weightSince(t0)), obs: Observation{Synced: true, Weight: w20},
			now:      deadline.Add(time.Second),
			wantStep: 0, wantWeight: w0, wantPhase: model.PhaseDegraded,
			wantEvents: []string{EventAborted}, wantChanged: true,
			wantMsg: []string{"progressDeadline", "canary v2 has no healthy endpoint"},
		},

		// pause
		{
			name: "a timed pause ends at a persisted time measured from the step's start",
			st:   running(1, w20), now: t0.Add(500 * time.Millisecond),
			wantStep: 1, wantWeight: w20, wantPhase: model.PhasePaused,
			wantEvents: []string{EventPaused}, wantWake: t0.Add(2 * time.Second), wantChanged: true,
			wantMsg: []string{"step 2/5 (pause 2s): paused until 2026-01-02T03:04:07Z"},
			check: func(t *testing.T, got State, fx Effects) {
				if !got.PauseUntil.Equal(t0.Add(2*time.Second)) || got.StepPause != model.PauseStep || got.PauseReason() != model.PauseStep {
					t.Errorf("PauseUntil %v, StepPause %q", got.PauseUntil, got.StepPause)
				}
				if d := fx.Events[0].Details; d["reason"] != "PauseStep" || d["step"] != 1 {
					t.Errorf("paused details = %v", d)
				}
			},
		},
		{
			name: "a restarted timed pause keeps its end and is not announced again",
			st: with(running(1, w20), func(s *State) {
				s.StepPause, s.PauseUntil = model.PauseStep, t0.Add(2*time.Second)
			}),
			now:      t0.Add(time.Second),
			wantStep: 1, wantWeight: w20, wantPhase: model.PhasePaused,
			wantWake: t0.Add(2 * time.Second), wantChanged: false,
		},
		{
			name: "a timed pause completes at its end and the next step starts",
			st: with(running(1, w20), func(s *State) {
				s.StepPause, s.PauseUntil = model.PauseStep, t0.Add(2*time.Second)
			}),
			now:      t0.Add(2 * time.Second),
			wantStep: 2, wantWeight: w50, wantPhase: model.PhaseProgressing,
			wantEvents: []string{EventStepCompleted, EventWeightChanged}, wantWake: t0.Add(2 * time.Second), wantChanged: true,
			check: func(t *testing.T, got State, _ Effects) {
				if !got.PauseUntil.IsZero() || got.StepPause != model.PauseNone {
					t.Errorf("PauseUntil %v, StepPause %q: want them cleared", got.PauseUntil, got.StepPause)
				}
			},
		},
		{
			name: "a restart long after a timed pause ended completes it at once",
			st: with(running(1, w20), func(s *State) {
				s.StepPause, s.PauseUntil = model.PauseStep, t0.Add(2*time.Second)
			}),
			now:      t0.Add(time.Hour),
			wantStep: 2, wantWeight: w50, wantPhase: model.PhaseProgressing,
			wantEvents: []string{EventStepCompleted, EventWeightChanged}, wantWake: t0.Add(time.Hour), wantChanged: true,
		},
		{
			name: "an indefinite pause waits for promote and never wakes by itself",
			st:   running(3, w50), now: t0.Add(time.Hour),
			wantStep: 3, wantWeight: w50, wantPhase: model.PhasePaused,
			wantEvents: []string{EventPaused}, wantChanged: true,
			wantMsg: []string{"step 4/5 (pause until promoted)", "coalmine promote"},
		},
		{
			name:     "an indefinite pause already announced changes nothing",
			st:       with(running(3, w50), func(s *State) { s.StepPause = model.PauseStep }),
			now:      t0.Add(48 * time.Hour),
			wantStep: 3, wantWeight: w50, wantPhase: model.PhasePaused,
		},

		// header and mirror routes
		{
			name:  "setHeaderRoute adds a route and completes at once",
			steps: []spec.Step{headerRouteStep("beta", "x-beta", "1"), pauseUntilPromoted()},
			st:    running(0, w0), now: t0,
			wantStep: 1, wantWeight: w0, wantPhase: model.PhasePaused,
			wantEvents: []string{EventStepCompleted, EventPaused}, wantChanged: true,
			check: func(t *testing.T, got State, _ Effects) {
				if want := []spec.HeaderRoute{headerRoute("beta", "1")}; !reflect.DeepEqual(got.HeaderRoutes, want) {
					t.Errorf("HeaderRoutes = %+v, want %+v", got.HeaderRoutes, want)
				}
			},
		},
		{
			name:  "setHeaderRoute replaces the route of the same name",
			steps: []spec.Step{headerRouteStep("beta", "x-beta", "2"), pauseUntilPromoted()},
			st: with(running(0, w0), func(s *State) {
				s.HeaderRoutes = []spec.HeaderRoute{headerRoute("beta", "1"), headerRoute("other", "1")}
			}),
			now: t0, wantStep: 1, wantWeight: w0, wantPhase: model.PhasePaused,
			wantEvents: []string{EventStepCompleted, EventPaused}, wantChanged: true,
			check: func(t *testing.T, got State, _ Effects) {
				if want := []spec.HeaderRoute{headerRoute("other", "1"), headerRoute("beta", "2")}; !reflect.DeepEqual(got.HeaderRoutes, want) {
					t.Errorf("HeaderRoutes = %+v, want %+v", got.HeaderRoutes, want)
				}
			},
		},
		{
			name:  "setHeaderRoute with only a name removes that route",
			steps: []spec.Step{removeHeaderRouteStep("beta"), pauseUntilPromoted()},
			st: with(running(0, w0), func(s *State) {
				s.HeaderRoutes = []spec.HeaderRoute{headerRoute("beta", "1"), headerRoute("other", "1")}
			}),
			now: t0, wantStep: 1, wantWeight: w0, wantPhase: model.PhasePaused,
			wantEvents: []string{EventStepCompleted, EventPaused}, wantChanged: true,
			check: func(t *testing.T, got State, _ Effects) {
				if want := []spec.HeaderRoute{headerRoute("other", "1")}; !reflect.DeepEqual(got.HeaderRoutes, want) {
					t.Errorf("HeaderRoutes = %+v, want %+v", got.HeaderRoutes, want)
				}
			},
		},
		{
			name:  "setMirrorRoute adds a route and completes at once",
			steps: []spec.Step{mirrorRouteStep("shadow", 10), pauseUntilPromoted()},
			st:    running(0, w0), now: t0,
			wantStep: 1, wantWeight: w0, wantPhase: model.PhasePaused,
			wantEvents: []string{EventStepCompleted, EventPaused}, wantChanged: true,
			check: func(t *testing.T, got State, _ Effects) {
				if want := []spec.MirrorRoute{mirrorRoute("shadow", 10)}; !reflect.DeepEqual(got.MirrorRoutes, want) {
					t.Errorf("MirrorRoutes = %+v, want %+v", got.MirrorRoutes, want)
				}
			},
		},
		{
			name:  "setMirrorRoute replaces the route of the same name",
			steps: []spec.Step{mirrorRouteStep("shadow", 50), pauseUntilPromoted()},
			st:    with(running(0, w0), func(s *State) { s.MirrorRoutes = []spec.MirrorRoute{mirrorRoute("shadow", 10)} }),
			now:   t0, wantStep: 1, wantWeight: w0, wantPhase: model.PhasePaused,
			wantEvents: []string{EventStepCompleted, EventPaused}, wantChanged: true,
			check: func(t *testing.T, got State, _ Effects) {
				if want := []spec.MirrorRoute{mirrorRoute("shadow", 50)}; !reflect.DeepEqual(got.MirrorRoutes, want) {
					t.Errorf("MirrorRoutes = %+v, want %+v", got.MirrorRoutes, want)
				}
			},
		},
		{
			name:  "setMirrorRoute with only a name removes that route",
			steps: []spec.Step{removeMirrorRouteStep("shadow"), pauseUntilPromoted()},
			st: with(running(0, w0), func(s *State) {
				s.MirrorRoutes = []spec.MirrorRoute{mirrorRoute("shadow", 10), mirrorRoute("keep", 5)}
			}),
			now: t0, wantStep: 1, wantWeight: w0, wantPhase: model.PhasePaused,
			wantEvents: []string{EventStepCompleted, EventPaused}, wantChanged: true,
			check: func(t *testing.T, got State, _ Effects) {
				if want := []spec.MirrorRoute{mirrorRoute("keep", 5)}; !reflect.DeepEqual(got.MirrorRoutes, want) {
					t.Errorf("MirrorRoutes = %+v, want %+v", got.MirrorRoutes, want)
				}
			},
		},
		{
			name:  "several instant steps complete in one call up to the first that waits",
			steps: []spec.Step{headerRouteStep("beta", "x-beta", "1"), mirrorRouteStep("shadow", 10), pauseStep(time.Second), setWeightStep(100)},
			st:    running(0, w0), now: t0.Add(time.Minute),
			wantStep: 2, wantWeight: w0, wantPhase: model.PhasePaused,
			wantEvents: []string{EventStepCompleted, EventStepCompleted, EventPaused}, wantWake: t0.Add(time.Minute + time.Second), wantChanged: true,
			check: func(t *testing.T, got State, _ Effects) {
				if len(got.HeaderRoutes) != 1 || len(got.MirrorRoutes) != 1 {
					t.Errorf("routes %+v %+v: want one of each", got.HeaderRoutes, got.MirrorRoutes)
				}
			},
		},
		{
			name:  "an elapsed pause, a route and the next pause chain in one call",
			steps: []spec.Step{setWeightStep(20), pauseStep(2 * time.Second), headerRouteStep("beta", "x-beta", "1"), pauseUntilPromoted()},
			st:    running(1, w20), now: t0.Add(time.Hour),
			wantStep: 3, wantWeight: w20, wantPhase: model.PhasePaused,
			wantEvents: []string{EventPaused, EventStepCompleted, EventStepCompleted, EventPaused}, wantChanged: true,
		},

		// completion
		{
			name: "after the last step the canary becomes the new stable",
			st: with(running(4, w100), func(s *State) {
				s.WeightSince = t0
				s.HeaderRoutes = []spec.HeaderRoute{headerRoute("beta", "1")}
				s.MirrorRoutes = []spec.MirrorRoute{mirrorRoute("shadow", 10)}
			}),
			obs: Observation{Synced: true, Weight: w100, CanaryAvailable: true}, now: t0.Add(time.Minute),
			wantStep: 5, wantWeight: w0, wantPhase: model.PhaseHealthy,
			wantEvents: []string{EventStepCompleted, EventCompleted}, wantChanged: true,
			wantMsg: []string{"every step completed", "v2 is the new stable, serving 100%", "was v1"},
			check: func(t *testing.T, got State, fx Effects) {
				if got.Canary != nil || !reflect.DeepEqual(got.Stable, version("v2", 9002)) {
					t.Errorf("stable %+v, canary %+v: want the canary (with its endpoints) as stable and no canary", got.Stable, got.Canary)
				}
				if got.HeaderRoutes != nil || got.MirrorRoutes != nil || got.StepPause != "" || !got.PauseUntil.IsZero() || !got.WeightSince.IsZero() {
					t.Errorf("leftovers after completion: %+v", got)
				}
				want := []RevisionRecord{{Revision: 1, Stable: version("v1", 9001), Canary: versionPtr("v2", 9002), Outcome: OutcomeCompleted, EndedAt: t0.Add(time.Minute)}}
				if !reflect.DeepEqual(got.History, want) {
					t.Errorf("History = %+v, want %+v", got.History, want)
				}
				if d := fx.Events[1].Details; d["stable"] != "v2" || d["previousStable"] != "v1" {
					t.Errorf("completed details = %v", d)
				}
			},
		},
		{
			name:  "a strategy without steps completes at once",
			steps: []spec.Step{},
			st:    running(0, w0), now: t0,
			wantStep: 0, wantWeight: w0, wantPhase: model.PhaseHealthy,
			wantEvents: []string{EventCompleted}, wantChanged: true,
		},

		// nothing to do
		{
			name: "no canary: nothing to do",
			st:   State{Revision: 1, Stable: version("v1", 9001), StartedAt: t0, UpdatedAt: t0},
			now:  t0.Add(time.Hour), wantPhase: model.PhaseHealthy,
		},
		{
			name: "an aborted rollout stays where it is",
			st:   with(running(2, w0), func(s *State) { s.Aborted = true }),
			obs:  Observation{Synced: true, CanaryAvailable: true}, now: t0.Add(time.Hour),
			wantStep: 2, wantWeight: w0, wantPhase: model.PhaseDegraded,
		},
		{
			name: "a manual pause holds even a setWeight step",
			st:   with(running(0, w30), func(s *State) { s.ManualPause = true }),
			obs:  Observation{Synced: true, Weight: w30, CanaryAvailable: true}, now: t0.Add(time.Hour),
			wantStep: 0, wantWeight: w30, wantPhase: model.PhasePaused,
		},
		{
			name: "a manual pause holds a timed pause past its end",
			st: with(running(1, w20), func(s *State) {
				s.ManualPause, s.StepPause, s.PauseUntil = true, model.PauseStep, t0.Add(2*time.Second)
			}),
			now: t0.Add(time.Hour), wantStep: 1, wantWeight: w20, wantPhase: model.PhasePaused,
		},

		// analysis (until issue 4)
		{
			name:  "an analysis step whose template is gone aborts and says so",
			steps: []spec.Step{setWeightStep(20), analysisStep("golden-signals"), setWeightStep(100)},
			st:    running(1, w20), now: t0,
			wantStep: 1, wantWeight: w0, wantPhase: model.PhaseDegraded,
			wantEvents: []string{EventAborted}, wantChanged: true,
			wantMsg: []string{"step 2/3 (analysis golden-signals)", "does not exist"},
		},

		// steps validation should have rejected
		{
			name:  "a step of no known kind aborts rather than pass",
			steps: []spec.Step{{}},
			st:    running(0, w0), now: t0,
			wantStep: 0, wantWeight: w0, wantPhase: model.PhaseDegraded,
			wantEvents: []string{EventAborted}, wantChanged: true, wantMsg: []string{"no known kind"},
		},
		{
			name:  "a setWeight out of range aborts rather than route",
			steps: []spec.Step{setWeightStep(150)},
			st:    running(0, w0), now: t0,
			wantStep: 0, wantWeight: w0, wantPhase: model.PhaseDegraded,
			wantEvents: []string{EventAborted}, wantChanged: true, wantMsg: []string{"is invalid"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := testSpec(tc.steps)
			stBefore, spBefore := snapshot(t, tc.st), snapshot(t, sp)
			stCopy := tc.st

			got, fx := Next(tc.st, sp, tc.obs, tc.now)

			if after := snapshot(t, tc.st); after != stBefore || !reflect.DeepEqual(tc.st, stCopy) {
				t.Errorf("Next changed its input state:\nbefore %s\nafter  %s", stBefore, after)
			}
			if after := snapshot(t, sp); after != spBefore {
				t.Errorf("Next changed the spec")
			}
			if got.StepIndex != tc.wantStep || got.Weight != tc.wantWeight || got.Phase() != tc.wantPhase {
				t.Errorf("step %d, weight %s%%, phase %s; want step %d, weight %s%%, phase %s (message %q)",
					got.StepIndex, got.Weight, got.Phase(), tc.wantStep, tc.wantWeight, tc.wantPhase, got.Message)
			}
			if types := eventTypes(fx.Events); !sameStrings(types, nonNil(tc.wantEvents)) {
				t.Errorf("events %v, want %v", types, tc.wantEvents)
			}
			if !fx.WakeAt.Equal(tc.wantWake) {
				t.Errorf("WakeAt %v, want %v", fx.WakeAt, tc.wantWake)
			}
			if fx.Changed != tc.wantChanged {
				t.Errorf("Changed = %v, want %v", fx.Changed, tc.wantChanged)
			}
			// The contract the controller relies on.
			if !fx.Changed && !reflect.DeepEqual(got, tc.st) {
				t.Errorf("Changed is false but the state differs:\n got %+v\nwant %+v", got, tc.st)
			}
			if fx.Changed && !got.UpdatedAt.Equal(tc.now) {
				t.Errorf("UpdatedAt = %v, want now %v when the state changed", got.UpdatedAt, tc.now)
			}
			if len(fx.Events) > 0 && !fx.Changed {
				t.Errorf("events without Changed: %v", eventTypes(fx.Events))
			}
			if !fx.WakeAt.IsZero() && fx.WakeAt.After(tc.now) && got.StepIndex < len(sp.Strategy.Canary.Steps) &&
				sp.Strategy.Canary.Steps[got.StepIndex].SetWeight != nil && !got.WeightSince.IsZero() &&
				fx.WakeAt.After(got.WeightSince.Add(sp.ProgressDeadline.D())) {
				t.Errorf("a setWeight wait wakes at %v, after its deadline", fx.WakeAt)
			}
			for _, ev := range fx.Events {
				if ev.Message == "" {
					t.Errorf("event %s has no message", ev.Type)
				}
			}
			mustContain(t, "message", got.Message, tc.wantMsg...)
			if tc.check != nil {
				tc.check(t, got, fx)
			}
		})
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// fullState has every slice and pointer of State filled, so that a function
// changing its input through shared memory is caught.
func fullState(step int, w spec.Weight) State {
	return with(running(step, w), func(s *State) {
		s.WeightSince = t0
		s.HeaderRoutes = []spec.HeaderRoute{headerRoute("beta", "1"), headerRoute("other", "1")}
		s.MirrorRoutes = []spec.MirrorRoute{mirrorRoute("shadow", 10), mirrorRoute("keep", 5)}
		s.History = []RevisionRecord{{Revision: 0, Stable: version("v0", 9000), Canary: versionPtr("v1", 9001), Outcome: OutcomeCompleted, EndedAt: t0}}
	})
}

// TestNextDoesNotChangeItsInput runs the transitions that rewrite slices
// (routes, completion, abort) and compares the input with a fresh copy.
func TestNextDoesNotChangeItsInput(t *testing.T) {
	routeSteps := []spec.Step{
		headerRouteStep("beta", "x-beta", "2"), removeHeaderRouteStep("other"),
		mirrorRouteStep("shadow", 50), removeMirrorRouteStep("keep"), setWeightStep(100),
	}
	cases := []struct {
		name  string
		steps []spec.Step
		st    func() State
		obs   Observation
		now   time.Time
	}{
		{"routes replaced and removed", routeSteps, func() State { return fullState(0, w20) }, Observation{}, t0},
		{"completion", routeSteps, func() State { return fullState(4, w100) }, Observation{Synced: true, Weight: w100, CanaryAvailable: true}, t0},
		{"abort at the deadline", nil, func() State { return fullState(0, w20) }, Observation{}, t0.Add(time.Hour)},
		{"pause entered", nil, func() State { return fullState(1, w20) }, Observation{}, t0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.st()
			got, fx := Next(in, testSpec(tc.steps), tc.obs, tc.now)
			if !fx.Changed {
				t.Fatalf("the case changes nothing, so it tests nothing")
			}
			if !reflect.DeepEqual(in, tc.st()) {
				t.Errorf("Next changed its input:\n got %+v\nwant %+v", in, tc.st())
			}
			// And the result does not share memory with the input either.
			if len(got.History) > 0 && len(in.History) > 0 && &got.History[0] == &in.History[0] {
				t.Errorf("the result shares History with the input")
			}
			if got.Canary != nil && got.Canary == in.Canary {
				t.Errorf("the result shares Canary with the input")
			}
		})
	}
}

// TestNextStory drives the story's steps through Next alone with a data
// plane that does what it is told, as a pure counterpart of the
// controller's scenario tests.
func TestNextStory(t *testing.T) {
	sp := testSpec(nil)
	st := running(0, w0)
	now := t0
	var all []string
	step := func() Effects {
		obs := Observation{Synced: true, Weight: st.Weight, CanaryAvailable: true}
		next, fx := Next(st, sp, obs, now)
		st = next
		all = append(all, eventTypes(fx.Events)...)
		return fx
	}
	// Run until Next wants nothing before some future time.
	settle := func() Effects {
		for i := 0; ; i++ {
			if i > 20 {
				t.Fatalf("Next never settles: %+v", st)
			}
			fx := step()
			if fx.WakeAt.IsZero() || fx.WakeAt.After(now) {
				return fx
			}
		}
	}
	fx := settle()
	if st.StepIndex != 1 || st.Weight != w20 || !fx.WakeAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("after the start: step %d weight %s wake %v", st.StepIndex, st.Weight, fx.WakeAt)
	}
	now = fx.WakeAt
	fx = settle()
	if st.StepIndex != 3 || st.Weight != w50 || st.Phase() != model.PhasePaused || !fx.WakeAt.IsZero() {
		t.Fatalf("after the timed pause: step %d weight %s phase %s wake %v", st.StepIndex, st.Weight, st.Phase(), fx.WakeAt)
	}
	now = now.Add(24 * time.Hour)
	if fx := settle(); fx.Changed || st.StepIndex != 3 {
		t.Fatalf("an indefinite pause moved on by itself: %+v", st)
	}
	var evs []EventDraft
	var err error
	if st, evs, err = Promote("shop", st, sp, false, now); err != nil {
		t.Fatal(err)
	}
	all = append(all, eventTypes(evs)...)
	settle()
	if st.Phase() != model.PhaseHealthy || st.Stable.Version != "v2" {
		t.Fatalf("after promote: phase %s stable %s", st.Phase(), st.Stable.Version)
	}
	want := []string{
		EventWeightChanged, EventStepCompleted, EventPaused,
		EventStepCompleted, EventWeightChanged, EventStepCompleted, EventPaused,
		EventPromoted, EventStepCompleted, EventWeightChanged, EventStepCompleted, EventCompleted,
	}
	if !sameStrings(all, want) {
		t.Errorf("events\n got %v\nwant %v", all, want)
	}
}
