package rollout

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Situations of the story's rollout (steps: 0 setWeight 20, 1 pause 2s,
// 2 setWeight 50, 3 pause {}, 4 setWeight 100) that commands meet.
func atTimedPause() State {
	return with(running(1, w20), func(s *State) { s.StepPause, s.PauseUntil = model.PauseStep, t0.Add(2*time.Second) })
}

func atIndefinitePause() State {
	return with(running(3, w50), func(s *State) { s.StepPause = model.PauseStep })
}

func atSetWeight() State { return with(running(2, w50), weightSince(t0)) }

func manuallyPausedAtSetWeight() State {
	return with(running(2, w30), func(s *State) { s.ManualPause = true })
}

func manuallyPausedAtPause() State {
	return with(atIndefinitePause(), func(s *State) { s.ManualPause = true })
}

func abortedAtSetWeight() State { return with(running(2, w0), func(s *State) { s.Aborted = true }) }

func healthyState() State {
	return State{Revision: 1, Stable: version("v1", 9001), StartedAt: t0, UpdatedAt: t0}
}

func withRoutes(st State) State {
	return with(st, func(s *State) {
		s.HeaderRoutes = []spec.HeaderRoute{headerRoute("beta", "1")}
		s.MirrorRoutes = []spec.MirrorRoute{mirrorRoute("shadow", 10)}
	})
}

type commandFunc func(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error)

func promote(full bool) commandFunc {
	return func(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
		return Promote("shop", st, sp, full, now)
	}
}

func abortCmd(st State, _ *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
	return Abort("shop", st, now)
}

func retryCmd(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
	return Retry("shop", st, sp, now)
}

func pauseCmd(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
	return Pause("shop", st, sp, now)
}

func resumeCmd(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
	return Resume("shop", st, sp, now)
}

func setWeightCmd(w spec.Weight) commandFunc {
	return func(st State, _ *spec.RolloutSpec, now time.Time) (State, []EventDraft, error) {
		return SetWeight("shop", st, w, now)
	}
}

// TestCommands runs every command in every situation where it applies and
// where it does not. A command that does not apply returns an error
// wrapping model.ErrConflict (409) whose message says what to do instead,
// and leaves the state as it was.
func TestCommands(t *testing.T) {
	now := t0.Add(time.Minute)
	type want struct {
		err    error    // nil, model.ErrConflict or model.ErrInvalid
		msg    []string // in the error, or else in the state's message
		step   int
		weight spec.Weight
		phase  model.Phase
		reason model.PauseReason
		events []string
		check  func(t *testing.T, got State, evs []EventDraft)
	}
	completed := func(stable string) func(t *testing.T, got State, evs []EventDraft) {
		return func(t *testing.T, got State, _ []EventDraft) {
			if got.Canary != nil || got.Stable.Version != stable || got.Aborted || got.ManualPause {
				t.Errorf("stable %s canary %v aborted %v manual %v: want %s stable and nothing else", got.Stable.Version, got.Canary, got.Aborted, got.ManualPause, stable)
			}
			if n := len(got.History); n == 0 || got.History[n-1].Outcome != OutcomeCompleted || got.History[n-1].Canary.Version != stable {
				t.Errorf("History = %+v, want a Completed record", got.History)
			}
		}
	}
	cases := []struct {
		name  string
		steps []spec.Step
		st    State
		cmd   commandFunc
		want  want
	}{
		// promote
		{name: "promote at a timed pause goes to the next step", st: atTimedPause(), cmd: promote(false),
			want: want{step: 2, weight: w20, phase: model.PhaseProgressing, events: []string{EventPromoted, EventStepCompleted},
				check: func(t *testing.T, got State, _ []EventDraft) {
					if !got.PauseUntil.IsZero() || got.StepPause != "" || !got.StepStartedAt.Equal(now) {
						t.Errorf("PauseUntil %v StepPause %q StepStartedAt %v", got.PauseUntil, got.StepPause, got.StepStartedAt)
					}
				}}},
		{name: "promote at an indefinite pause goes to the next step", st: atIndefinitePause(), cmd: promote(false),
			want: want{step: 4, weight: w50, phase: model.PhaseProgressing, events: []string{EventPromoted, EventStepCompleted}}},
		{name: "promote at a manual pause on a pause step releases both", st: manuallyPausedAtPause(), cmd: promote(false),
			want: want{step: 4, weight: w50, phase: model.PhaseProgressing, events: []string{EventPromoted, EventStepCompleted}}},
		{name: "promote at a manual pause on a setWeight step releases the pause", st: manuallyPausedAtSetWeight(), cmd: promote(false),
			want: want{step: 2, weight: w30, phase: model.PhaseProgressing, events: []string{EventPromoted}, msg: []string{"resumed at step 3/5"}}},
		{name: "promote at an analysis step goes to the next step",
			steps: []spec.Step{setWeightStep(20), analysisStep("golden-signals"), setWeightStep(100)},
			st:    with(running(1, w20), func(s *State) { s.StepPause = model.PauseStep }), cmd: promote(false),
			want: want{step: 2, weight: w20, phase: model.PhaseProgressing, events: []string{EventPromoted, EventStepCompleted}}},
		{name: "promote past a last pause completes",
			steps: []spec.Step{setWeightStep(20), pauseUntilPromoted()},
			st:    with(running(1, w20), func(s *State) { s.StepPause = model.PauseStep }), cmd: promote(false),
			want: want{step: 2, weight: w0, phase: model.PhaseHealthy, events: []string{EventPromoted, EventStepCompleted, EventCompleted}, check: completed("v2")}},
		{name: "promote at a setWeight step is a conflict", st: atSetWeight(), cmd: promote(false),
			want: want{err: model.ErrConflict, msg: []string{`rollout "shop"`, "step 3/5 (setWeight 50)", "completes on its own", "--full"}}},
		{name: "promote on Healthy is a conflict", st: healthyState(), cmd: promote(false),
			want: want{err: model.ErrConflict, msg: []string{"Healthy", "v1 stable", "nothing to promote", "coalmine set canary"}}},
		{name: "promote on Aborted is a conflict", st: abortedAtSetWeight(), cmd: promote(false),
			want: want{err: model.ErrConflict, msg: []string{"was aborted", "coalmine retry", "revision 1", "promote --full"}}},
		{name: "promote --full at a setWeight step completes at once", st: withRoutes(atSetWeight()), cmd: promote(true),
			want: want{step: 5, weight: w0, phase: model.PhaseHealthy, events: []string{EventPromoted, EventCompleted},
				msg: []string{"promoted in full", "v2 is the new stable"},
				check: func(t *testing.T, got State, evs []EventDraft) {
					completed("v2")(t, got, evs)
					if got.HeaderRoutes != nil || got.MirrorRoutes != nil {
						t.Errorf("routes left after completion: %+v %+v", got.HeaderRoutes, got.MirrorRoutes)
					}
					if evs[0].Details["full"] != true {
						t.Errorf("promoted details = %v", evs[0].Details)
					}
				}}},
		{name: "promote --full at a manual pause completes at once", st: manuallyPausedAtSetWeight(), cmd: promote(true),
			want: want{step: 5, weight: w0, phase: model.PhaseHealthy, events: []string{EventPromoted, EventCompleted}, check: completed("v2")}},
		{name: "promote --full completes an aborted revision", st: abortedAtSetWeight(), cmd: promote(true),
			want: want{step: 5, weight: w0, phase: model.PhaseHealthy, events: []string{EventPromoted, EventCompleted}, check: completed("v2")}},
		{name: "promote --full on Healthy is a conflict", st: healthyState(), cmd: promote(true),
			want: want{err: model.ErrConflict, msg: []string{"nothing to promote"}}},

		// abort
		{name: "abort at a setWeight step returns all traffic to stable", st: withRoutes(atSetWeight()), cmd: abortCmd,
			want: want{step: 2, weight: w0, phase: model.PhaseDegraded, events: []string{EventAborted},
				msg: []string{"aborted by hand", "100% of traffic is back on stable v1"},
				check: func(t *testing.T, got State, _ []EventDraft) {
					if !got.Aborted || got.HeaderRoutes != nil || got.MirrorRoutes != nil || !got.WeightSince.IsZero() {
						t.Errorf("after abort: %+v", got)
					}
				}}},
		{name: "abort at a pause clears the pause", st: atTimedPause(), cmd: abortCmd,
			want: want{step: 1, weight: w0, phase: model.PhaseDegraded, events: []string{EventAborted},
				check: func(t *testing.T, got State, _ []EventDraft) {
					if got.StepPause != "" || !got.PauseUntil.IsZero() {
						t.Errorf("pause left after abort: %q %v", got.StepPause, got.PauseUntil)
					}
				}}},
		{name: "abort at a manual pause clears it", st: manuallyPausedAtSetWeight(), cmd: abortCmd,
			want: want{step: 2, weight: w0, phase: model.PhaseDegraded, events: []string{EventAborted}}},
		{name: "abort twice is a conflict", st: abortedAtSetWeight(), cmd: abortCmd,
			want: want{err: model.ErrConflict, msg: []string{"already aborted", "100% of traffic is on stable v1"}}},
		{name: "abort on Healthy is a conflict", st: healthyState(), cmd: abortCmd,
			want: want{err: model.ErrConflict, msg: []string{"nothing to abort"}}},

		// retry
		{name: "retry starts an aborted revision again from step 0", st: abortedAtSetWeight(), cmd: retryCmd,
			want: want{step: 0, weight: w0, phase: model.PhaseProgressing, events: []string{EventStarted}, msg: []string{"revision 1 retried", "step 1/5 (setWeight 20) started"},
				check: func(t *testing.T, got State, evs []EventDraft) {
					if got.Aborted || got.Revision != 1 || !got.StepStartedAt.Equal(now) {
						t.Errorf("after retry: aborted %v revision %d StepStartedAt %v", got.Aborted, got.Revision, got.StepStartedAt)
					}
					if evs[0].Details["retry"] != true {
						t.Errorf("started details = %v", evs[0].Details)
					}
				}}},
		{name: "retry of a progressing rollout is a conflict", st: atSetWeight(), cmd: retryCmd,
			want: want{err: model.ErrConflict, msg: []string{"is Progressing, not aborted"}}},
		{name: "retry of a paused rollout is a conflict", st: atIndefinitePause(), cmd: retryCmd,
			want: want{err: model.ErrConflict, msg: []string{"is Paused, not aborted"}}},
		{name: "retry on Healthy is a conflict", st: healthyState(), cmd: retryCmd,
			want: want{err: model.ErrConflict, msg: []string{"nothing to retry"}}},

		// pause
		{name: "pause holds a setWeight step", st: atSetWeight(), cmd: pauseCmd,
			want: want{step: 2, weight: w50, phase: model.PhasePaused, reason: model.PauseManual, events: []string{EventPaused}, msg: []string{"paused by hand at step 3/5", "coalmine resume"}}},
		{name: "pause at a pause step makes it manual", st: atTimedPause(), cmd: pauseCmd,
			want: want{step: 1, weight: w20, phase: model.PhasePaused, reason: model.PauseManual, events: []string{EventPaused}}},
		{name: "pause twice is a conflict", st: manuallyPausedAtSetWeight(), cmd: pauseCmd,
			want: want{err: model.ErrConflict, msg: []string{"already paused by hand", "coalmine resume"}}},
		{name: "pause of an aborted rollout is a conflict", st: abortedAtSetWeight(), cmd: pauseCmd,
			want: want{err: model.ErrConflict, msg: []string{"aborted"}}},
		{name: "pause on Healthy is a conflict", st: healthyState(), cmd: pauseCmd,
			want: want{err: model.ErrConflict, msg: []string{"nothing to pause"}}},

		// resume
		{name: "resume releases a manual pause", st: manuallyPausedAtSetWeight(), cmd: resumeCmd,
			want: want{step: 2, weight: w30, phase: model.PhaseProgressing, events: []string{EventResumed}, msg: []string{"resumed at step 3/5"}}},
		{name: "resume of a manual pause at a pause step leaves the step's pause", st: manuallyPausedAtPause(), cmd: resumeCmd,
			want: want{step: 3, weight: w50, phase: model.PhasePaused, reason: model.PauseStep, events: []string{EventResumed}}},
		{name: "resume at a pause step says to use promote", st: atIndefinitePause(), cmd: resumeCmd,
			want: want{err: model.ErrConflict, msg: []string{"waits at step 4/5 (pause until promoted) (PauseStep)", "not at a manual pause", "coalmine promote"}}},
		{name: "resume of a rollout that is not paused is a conflict", st: atSetWeight(), cmd: resumeCmd,
			want: want{err: model.ErrConflict, msg: []string{"is not paused"}}},
		{name: "resume of an aborted rollout says to retry", st: abortedAtSetWeight(), cmd: resumeCmd,
			want: want{err: model.ErrConflict, msg: []string{"aborted", "coalmine retry"}}},
		{name: "resume on Healthy is a conflict", st: healthyState(), cmd: resumeCmd,
			want: want{err: model.ErrConflict, msg: []string{"nothing to resume"}}},

		// set weight
		{name: "set weight overrides the weight and pauses", st: atSetWeight(), cmd: setWeightCmd(250),
			want: want{step: 2, weight: 250, phase: model.PhasePaused, reason: model.PauseManual, events: []string{EventWeightChanged, EventPaused},
				msg: []string{"canary weight set to 2.5% by hand", "coalmine resume"},
				check: func(t *testing.T, got State, evs []EventDraft) {
					if !got.WeightSince.IsZero() {
						t.Errorf("WeightSince = %v: a manual weight has no deadline", got.WeightSince)
					}
					if d := evs[0].Details; d["from"] != 50.0 || d["to"] != 2.5 || d["manual"] != true {
						t.Errorf("weight-changed details = %v", d)
					}
					mustContain(t, "event", evs[0].Message, "50% → 2.5% by hand")
				}}},
		{name: "set weight at a pause step pauses by hand", st: atTimedPause(), cmd: setWeightCmd(w100),
			want: want{step: 1, weight: w100, phase: model.PhasePaused, reason: model.PauseManual, events: []string{EventWeightChanged, EventPaused}}},
		{name: "set weight while paused by hand announces the pause only once", st: manuallyPausedAtSetWeight(), cmd: setWeightCmd(w20),
			want: want{step: 2, weight: w20, phase: model.PhasePaused, reason: model.PauseManual, events: []string{EventWeightChanged}}},
		{name: "set weight to 0 is allowed", st: atSetWeight(), cmd: setWeightCmd(0),
			want: want{step: 2, weight: w0, phase: model.PhasePaused, reason: model.PauseManual, events: []string{EventWeightChanged, EventPaused}}},
		{name: "set weight on Healthy is a conflict", st: healthyState(), cmd: setWeightCmd(w20),
			want: want{err: model.ErrConflict, msg: []string{"has no canary", "coalmine set canary"}}},
		{name: "set weight of an aborted rollout is a conflict", st: abortedAtSetWeight(), cmd: setWeightCmd(w20),
			want: want{err: model.ErrConflict, msg: []string{"aborted", "coalmine retry"}}},
		{name: "set weight above 100% is invalid", st: atSetWeight(), cmd: setWeightCmd(spec.MaxWeight + 1),
			want: want{err: model.ErrInvalid, msg: []string{"100.01%", "above 100%"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := testSpec(tc.steps)
			before := snapshot(t, tc.st)
			got, evs, err := tc.cmd(tc.st, sp, now)
			if after := snapshot(t, tc.st); after != before {
				t.Errorf("the command changed its input state:\nbefore %s\nafter  %s", before, after)
			}
			if tc.want.err != nil {
				if !errors.Is(err, tc.want.err) {
					t.Fatalf("err = %v, want one wrapping %v", err, tc.want.err)
				}
				mustContain(t, "error", err.Error(), tc.want.msg...)
				if evs != nil || !reflect.DeepEqual(got, tc.st) {
					t.Errorf("a refused command returned events %v or a changed state", eventTypes(evs))
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got.StepIndex != tc.want.step || got.Weight != tc.want.weight || got.Phase() != tc.want.phase || got.PauseReason() != tc.want.reason {
				t.Errorf("step %d weight %s%% phase %s reason %q; want step %d weight %s%% phase %s reason %q (message %q)",
					got.StepIndex, got.Weight, got.Phase(), got.PauseReason(), tc.want.step, tc.want.weight, tc.want.phase, tc.want.reason, got.Message)
			}
			if types := eventTypes(evs); !sameStrings(types, tc.want.events) {
				t.Errorf("events %v, want %v", types, tc.want.events)
			}
			if !got.UpdatedAt.Equal(now) {
				t.Errorf("UpdatedAt = %v, want now", got.UpdatedAt)
			}
			mustContain(t, "message", got.Message, tc.want.msg...)
			if tc.want.check != nil {
				tc.want.check(t, got, evs)
			}
		})
	}
}

// TestPromoteThenNextContinues checks that what a promote leaves is a
// state Next carries on from: the next step's weight is applied.
func TestPromoteThenNextContinues(t *testing.T) {
	sp := testSpec(nil)
	st, _, err := Promote("shop", atIndefinitePause(), sp, false, t0)
	if err != nil {
		t.Fatal(err)
	}
	got, fx := Next(st, sp, Observation{Synced: true, Weight: w50, CanaryAvailable: true}, t0)
	if got.StepIndex != 4 || got.Weight != w100 || !sameStrings(eventTypes(fx.Events), []string{EventWeightChanged}) {
		t.Errorf("after promote, Next: step %d weight %s events %v", got.StepIndex, got.Weight, eventTypes(fx.Events))
	}
}

func completedRecord(rev int64, stable, canary string) RevisionRecord {
	return RevisionRecord{Revision: rev, Stable: version(stable, 9001), Canary: versionPtr(canary, 9002), Outcome: OutcomeCompleted, EndedAt: t0}
}

// TestPlan covers what loading or applying a spec does to the state.
func TestPlan(t *testing.T) {
	now := t0.Add(time.Hour)
	// completedV2 is the state after v2 was promoted over v1 in revision 1.
	completedV2 := State{Revision: 1, Stable: version("v2", 9002), StepIndex: 5, StartedAt: t0, UpdatedAt: t0,
		History: []RevisionRecord{completedRecord(1, "v1", "v2")}}
	rollout := func(stable, canary string, edit ...func(*spec.Rollout)) *spec.RolloutSpec {
		r := testRollout("shop", stable, canary, nil)
		for _, e := range edit {
			e(&r)
		}
		return &r.Spec
	}
	cases := []struct {
		name       string
		st         State
		sp         *spec.RolloutSpec
		wantRev    int64
		wantStable string
		wantCanary string
		wantStep   int
		wantWeight spec.Weight
		wantEvents []string
		wantMsg    []string
		check      func(t *testing.T, got State)
	}{
		{
			name: "first load without a canary serves stable", st: State{}, sp: rollout("v1", ""),
			wantRev: 1, wantStable: "v1", wantMsg: []string{"v1 is stable; nothing to roll out"},
			check: func(t *testing.T, got State) {
				if !got.StartedAt.Equal(now) || got.Phase() != model.PhaseHealthy {
					t.Errorf("StartedAt %v phase %s", got.StartedAt, got.Phase())
				}
			},
		},
		{
			name: "first load with a canary starts revision 1 at step 0", st: State{}, sp: rollout("v1", "v2"),
			wantRev: 1, wantStable: "v1", wantCanary: "v2", wantEvents: []string{EventStarted},
			wantMsg: []string{"revision 1: rolling out v2 over stable v1", "step 1/5 (setWeight 20) started"},
			check: func(t *testing.T, got State) {
				if !got.StepStartedAt.Equal(now) || got.Phase() != model.PhaseProgressing {
					t.Errorf("StepStartedAt %v phase %s", got.StepStartedAt, got.Phase())
				}
				if !reflect.DeepEqual(got.Canary.Endpoints, []string{"http://127.0.0.1:9002"}) {
					t.Errorf("canary endpoints %v", got.Canary.Endpoints)
				}
			},
		},
		{
			name: "a spec whose canary is its stable has nothing to roll out", st: State{}, sp: rollout("v1", "v1"),
			wantRev: 1, wantStable: "v1",
		},
		{
			name: "an unchanged spec changes nothing", st: atSetWeight(), sp: rollout("v1", "v2"),
			wantRev: 1, wantStable: "v1", wantCanary: "v2", wantStep: 2, wantWeight: w50,
			check: func(t *testing.T, got State) {
				if !reflect.DeepEqual(got, atSetWeight()) {
					t.Errorf("state changed:\n got %+v\nwant %+v", got, atSetWeight())
				}
			},
		},
		{
			name: "same versions with new endpoints keep the revision and its progress", st: atSetWeight(),
			sp: rollout("v1", "v2", func(r *spec.Rollout) {
				r.Spec.Stable.Endpoints = []string{"http://127.0.0.1:9101", "http://127.0.0.1:9102"}
				r.Spec.Canary.Endpoints = []string{"http://127.0.0.1:9201"}
			}),
			wantRev: 1, wantStable: "v1", wantCanary: "v2", wantStep: 2, wantWeight: w50,
			check: func(t *testing.T, got State) {
				if len(got.Stable.Endpoints) != 2 || got.Canary.Endpoints[0] != "http://127.0.0.1:9201" {
					t.Errorf("endpoints not taken: stable %v canary %v", got.Stable.Endpoints, got.Canary.Endpoints)
				}
				if !got.UpdatedAt.Equal(now) || !got.WeightSince.Equal(t0) {
					t.Errorf("UpdatedAt %v WeightSince %v", got.UpdatedAt, got.WeightSince)
				}
			},
		},
		{
			name: "a new canary version supersedes the running revision", st: withRoutes(atSetWeight()), sp: rollout("v1", "v3"),
			wantRev: 2, wantStable: "v1", wantCanary: "v3", wantStep: 0, wantWeight: w0, wantEvents: []string{EventStarted},
			wantMsg: []string{"revision 2: rolling out v3 over stable v1"},
			check: func(t *testing.T, got State) {
				last := got.History[len(got.History)-1]
				if last.Revision != 1 || last.Outcome != OutcomeSuperseded || last.Canary.Version != "v2" || !last.EndedAt.Equal(now) {
					t.Errorf("History = %+v, want revision 1 Superseded", got.History)
				}
				if got.HeaderRoutes != nil || got.MirrorRoutes != nil || !got.WeightSince.IsZero() || !got.StartedAt.Equal(now) {
					t.Errorf("revision 2 inherited revision 1's progress: %+v", got)
				}
			},
		},
		{
			name: "a new canary version after an abort records the abort", st: abortedAtSetWeight(), sp: rollout("v1", "v3"),
			wantRev: 2, wantStable: "v1", wantCanary: "v3", wantEvents: []string{EventStarted},
			check: func(t *testing.T, got State) {
				if last := got.History[len(got.History)-1]; last.Outcome != OutcomeAborted || got.Aborted {
					t.Errorf("History %+v aborted %v", got.History, got.Aborted)
				}
			},
		},
		{
			name: "an unchanged spec keeps an aborted revision aborted", st: abortedAtSetWeight(), sp: rollout("v1", "v2"),
			wantRev: 1, wantStable: "v1", wantCanary: "v2", wantStep: 2,
			check: func(t *testing.T, got State) {
				if !got.Aborted {
					t.Errorf("the abort was undone by reloading the same spec")
				}
			},
		},
		{
			name: "a spec without its canary ends the revision", st: atSetWeight(), sp: rollout("v1", ""),
			wantRev: 2, wantStable: "v1", wantMsg: []string{"revision 2: v1 is stable"},
			check: func(t *testing.T, got State) {
				if last := got.History[len(got.History)-1]; last.Outcome != OutcomeSuperseded {
					t.Errorf("History = %+v", got.History)
				}
			},
		},
		{
			name: "a revision with nothing to roll out is recorded when a canary starts over it", st: healthyState(), sp: rollout("v1", "v2"),
			wantRev: 2, wantStable: "v1", wantCanary: "v2", wantEvents: []string{EventStarted},
			check: func(t *testing.T, got State) {
				want := []RevisionRecord{{Revision: 1, Stable: version("v1", 9001), Outcome: OutcomeSuperseded, EndedAt: now}}
				if !reflect.DeepEqual(got.History, want) {
					t.Errorf("History = %+v, want %+v", got.History, want)
				}
			},
		},
		{
			name: "a completed revision is not recorded twice when a canary starts over it", st: completedV2, sp: rollout("v2", "v3"),
			wantRev: 2, wantStable: "v2", wantCanary: "v3", wantEvents: []string{EventStarted},
			check: func(t *testing.T, got State) {
				if !reflect.DeepEqual(got.History, completedV2.History) {
					t.Errorf("History = %+v, want %+v", got.History, completedV2.History)
				}
			},
		},
		{
			name: "a file still naming the promoted canary as canary changes nothing", st: completedV2, sp: rollout("v1", "v2"),
			wantRev: 1, wantStable: "v2", wantStep: 5,
			check: func(t *testing.T, got State) {
				if !reflect.DeepEqual(got, completedV2) {
					t.Errorf("state changed:\n got %+v\nwant %+v", got, completedV2)
				}
			},
		},
		{
			name: "a file naming a former stable with a new canary keeps the promoted stable and says so", st: completedV2, sp: rollout("v1", "v3"),
			wantRev: 2, wantStable: "v2", wantCanary: "v3", wantEvents: []string{EventStarted},
			wantMsg: []string{"rolling out v3 over stable v2", "spec.stable names v1, but v2 has been promoted since, so v2 stays stable"},
			check: func(t *testing.T, got State) {
				if len(got.History) != 1 {
					t.Errorf("a completed revision was recorded twice: %+v", got.History)
				}
			},
		},
		{
			name: "a brand-new stable without a canary replaces the stable", st: healthyState(), sp: rollout("v9", ""),
			wantRev: 2, wantStable: "v9", wantMsg: []string{"revision 2: v9 is stable; nothing to roll out"},
		},
		{
			name: "a brand-new stable with a canary starts a revision over it", st: completedV2, sp: rollout("v8", "v9"),
			wantRev: 2, wantStable: "v8", wantCanary: "v9", wantEvents: []string{EventStarted},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, tc.st)
			got, evs := Plan(tc.st, tc.sp, now)
			if snapshot(t, tc.st) != before {
				t.Errorf("Plan changed its input state")
			}
			if got.Revision != tc.wantRev || got.Stable.Version != tc.wantStable || versionOf(got.Canary) != tc.wantCanary ||
				got.StepIndex != tc.wantStep || got.Weight != tc.wantWeight {
				t.Errorf("revision %d stable %s canary %q step %d weight %s; want revision %d stable %s canary %q step %d weight %s (message %q)",
					got.Revision, got.Stable.Version, versionOf(got.Canary), got.StepIndex, got.Weight,
					tc.wantRev, tc.wantStable, tc.wantCanary, tc.wantStep, tc.wantWeight, got.Message)
			}
			if types := eventTypes(evs); !sameStrings(types, nonNil(tc.wantEvents)) {
				t.Errorf("events %v, want %v", types, tc.wantEvents)
			}
			mustContain(t, "message", got.Message, tc.wantMsg...)
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

// TestUndoTarget covers where `undo` goes and when it is fast.
func TestUndoTarget(t *testing.T) {
	stableAfter := func(stable string, history ...RevisionRecord) State {
		return State{Revision: history[len(history)-1].Revision, Stable: version(stable, 9002), History: history}
	}
	aborted := func(rev int64, stable, canary string) RevisionRecord {
		r := completedRecord(rev, stable, canary)
		r.Outcome = OutcomeAborted
		return r
	}
	superseded := func(rev int64, stable, canary string) RevisionRecord {
		r := completedRecord(rev, stable, canary)
		r.Outcome = OutcomeSuperseded
		return r
	}
	// canaryOver is a revision rolling out canary over stable, after history.
	canaryOver := func(stable, canary string, history ...RevisionRecord) State {
		return State{Revision: int64(len(history) + 1), Stable: version(stable, 9001), Canary: versionPtr(canary, 9002), History: history}
	}
	stableOnly := func(rev int64, stable string) RevisionRecord {
		return RevisionRecord{Revision: rev, Stable: version(stable, 9001), Outcome: OutcomeSuperseded, EndedAt: t0}
	}
	stableOnlyNow := func(rev int64, stable string, history ...RevisionRecord) State {
		return State{Revision: rev, Stable: version(stable, 9001), History: history}
	}
	v1v2 := completedRecord(1, "v1", "v2")
	v2v3 := completedRecord(2, "v2", "v3")
	v3v4 := completedRecord(3, "v3", "v4")
	cases := []struct {
		name       string
		st         State
		toRevision int64
		window     int
		want       string
		wantFast   bool
		wantErr    error
		wantMsg    []string
	}{
		{name: "back to the previous stable, fast within the window", st: stableAfter("v2", v1v2), window: 1, want: "v1", wantFast: true},
		{name: "back to the previous stable after several completions", st: stableAfter("v4", v1v2, v2v3, v3v4), window: 1, want: "v3", wantFast: true},
		{name: "an aborted revision does not count toward the window",
			st: stableAfter("v3", v1v2, aborted(2, "v2", "v4"), completedRecord(3, "v2", "v3")), toRevision: 1, window: 1, want: "v2", wantFast: true},
		{name: "after an aborted revision, undo goes to it, with its steps (Argo's revision N-1)",
			st: stableAfter("v3", v1v2, aborted(2, "v2", "v4"), completedRecord(3, "v2", "v3")), window: 1, want: "v4", wantFast: false},
		// Argo: undo is a rollback to revision N-1, the version asked for
		// before the current one. During a canary that is the stable.
		{name: "during a canary: back to the stable, ending the canary (issue 11)",
			st: canaryOver("v2", "v3", v1v2), window: 1, want: "v2"},
		{name: "during a canary, with rollbackWindow 0: the stable all the same",
			st: canaryOver("v2", "v3", v1v2), window: 0, want: "v2"},
		{name: "an aborted canary: back to its stable", st: with(canaryOver("v2", "v3", v1v2), func(s *State) { s.Aborted = true }),
			window: 1, want: "v2"},
		{name: "during the first revision's canary: back to the first stable", st: canaryOver("v1", "v2"), window: 1, want: "v1"},
		{name: "after a stable-only first revision", st: canaryOver("v1", "v2", stableOnly(1, "v1")), window: 1, want: "v1"},
		{name: "an aborted revision is still a revision, as in Argo",
			st: canaryOver("v2", "v4", v1v2, aborted(2, "v2", "v3")), window: 1, want: "v3"},
		{name: "undo after an undo to the stable goes forward again, as in Argo",
			st: stableOnlyNow(3, "v2", v1v2, superseded(2, "v2", "v3")), window: 1, want: "v3"},
		{name: "a revision that went back to its stable asked for that stable again",
			st: canaryOver("v2", "v5", v1v2, superseded(2, "v2", "v3"), stableOnly(3, "v2")), window: 1, want: "v2"},
		{name: "--to-revision N goes to revision N's canary", st: stableAfter("v4", v1v2, v2v3, v3v4), toRevision: 1, window: 2, want: "v2", wantFast: true},
		{name: "--to-revision N outside the window walks the steps", st: stableAfter("v4", v1v2, v2v3, v3v4), toRevision: 1, window: 1, want: "v2", wantFast: false},
		{name: "--to-revision N of a revision that did not complete goes to its stable",
			st: stableAfter("v4", v1v2, aborted(2, "v2", "v3"), completedRecord(3, "v2", "v4")), toRevision: 2, window: 1, want: "v2", wantFast: true},
		{name: "a window of 0 never skips the steps", st: stableAfter("v2", v1v2), window: 0, want: "v1", wantFast: false},
		{name: "nothing earlier to go back to", st: healthyState(), wantErr: model.ErrConflict,
			wantMsg: []string{"no earlier revision to go back to", "v1 is the only version it has run"}},
		{name: "--to-revision of a stable-only revision goes to its stable",
			st: canaryOver("v2", "v5", v1v2, superseded(2, "v2", "v3"), stableOnly(3, "v2"), completedRecord(4, "v2", "v4")), toRevision: 3, window: 1, want: "v2", wantFast: true},
		{name: "the current revision", st: stableAfter("v4", v1v2, v2v3, v3v4), toRevision: 3, wantErr: model.ErrConflict,
			wantMsg: []string{"is at revision 3 already"}},
		{name: "a revision not in the history", st: stableAfter("v2", v1v2), toRevision: 7, wantErr: model.ErrNotFound,
			wantMsg: []string{"no revision 7 in its history", "keeps the last 20"}},
		{name: "a revision whose version is stable now",
			st: stableAfter("v1", v1v2, completedRecord(2, "v2", "v1"), completedRecord(3, "v1", "v3"), completedRecord(4, "v3", "v1")), toRevision: 2,
			wantErr: model.ErrConflict, wantMsg: []string{"already has v1 as its stable version"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, tc.st)
			got, fast, err := UndoTarget("shop", tc.st, tc.toRevision, tc.window)
			if snapshot(t, tc.st) != before {
				t.Errorf("UndoTarget changed its input")
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want one wrapping %v", err, tc.wantErr)
				}
				mustContain(t, "error", err.Error(), tc.wantMsg...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != tc.want || fast != tc.wantFast || len(got.Endpoints) == 0 {
				t.Errorf("target %+v fast %v, want %s fast %v", got, fast, tc.want, tc.wantFast)
			}
		})
	}
}

// TestManualPauseDoesNotCountAgainstProgressDeadline: progressDeadline
// limits a setWeight waiting to take effect and "never limits a pause"
// (SPEC §4). A rollout paused by hand while a setWeight waits, and resumed
// after the deadline, waits afresh instead of aborting at once.
func TestManualPauseDoesNotCountAgainstProgressDeadline(t *testing.T) {
	sp := testSpec(nil) // progressDeadline 10m
	down := Observation{Synced: true, Weight: w20, CanaryAvailable: false}
	st := with(running(0, w20), weightSince(t0))

	st, _, err := Pause("shop", st, sp, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resumedAt := t0.Add(30 * time.Minute)
	if st, _, err = Resume("shop", st, sp, resumedAt); err != nil {
		t.Fatal(err)
	}
	got, fx := Next(st, sp, down, resumedAt)
	if got.Aborted {
		t.Fatalf("resumed after a 29-minute manual pause, the setWeight aborted at once: %q", got.Message)
	}
	got, fx = Next(got, sp, down, resumedAt.Add(time.Second))
	if got.Aborted || fx.WakeAt.After(resumedAt.Add(10*time.Minute)) {
		t.Fatalf("aborted %v, wake %v", got.Aborted, fx.WakeAt)
	}
	// The fresh wait still ends at its own deadline.
	got, _ = Next(got, sp, down, resumedAt.Add(10*time.Minute))
	if !got.Aborted {
		t.Fatalf("no abort 10m after the resume: %q", got.Message)
	}

	// The same when promote releases the manual pause.
	st = with(running(0, w20), func(s *State) { s.WeightSince = t0 })
	st, _, _ = Pause("shop", st, sp, t0.Add(time.Minute))
	if st, _, err = Promote("shop", st, sp, false, resumedAt); err != nil {
		t.Fatal(err)
	}
	if got, _ := Next(st, sp, down, resumedAt); got.Aborted {
		t.Fatalf("released by promote after the deadline, the setWeight aborted at once: %q", got.Message)
	}
}

func TestRolledBackNote(t *testing.T) {
	v := func(s string) *spec.VersionSpec { return &spec.VersionSpec{Version: s} }
	undone := []RevisionRecord{
		{Revision: 1, Stable: *v("v1"), Canary: v("v2"), Outcome: OutcomeCompleted},
		{Revision: 2, Stable: *v("v2"), Canary: v("v1"), Outcome: OutcomeCompleted}, // undo
	}
	forward := []RevisionRecord{
		{Revision: 1, Stable: *v("v1"), Canary: v("v2"), Outcome: OutcomeCompleted},
		{Revision: 2, Stable: *v("v2"), Canary: v("v3"), Outcome: OutcomeCompleted},
	}
	aborted := []RevisionRecord{{Revision: 1, Stable: *v("v1"), Canary: v("v2"), Outcome: OutcomeAborted}}
	for _, tt := range []struct {
		name           string
		history        []RevisionRecord
		canary, stable string
		want           string
	}{
		{"re-applying after an undo", undone, "v2", "v1", "note: v2 was rolled back in revision 2, when v1 replaced it"},
		{"an upgrade chain is no rollback", forward, "v1", "v3", ""},
		{"an aborted canary again", aborted, "v2", "v1", "note: v2 was aborted in revision 1"},
		{"a new version", undone, "v9", "v1", ""},
	} {
		got := rolledBackNote(tt.history, tt.canary, tt.stable)
		if (tt.want == "") != (got == "") || !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: %q, want %q…", tt.name, got, tt.want)
		}
	}
}
