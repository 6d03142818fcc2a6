package rollout

import (
	"fmt"
	"slices"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// DesiredCanary is the canary a spec asks for: nil when spec.canary is
// omitted, has no endpoints, or names the stable version.
func DesiredCanary(sp *spec.RolloutSpec) *spec.VersionSpec {
	if sp.Canary == nil || len(sp.Canary.Endpoints) == 0 || sp.Canary.Version == sp.Stable.Version {
		return nil
	}
	c := *sp.Canary
	c.Endpoints = slices.Clone(c.Endpoints)
	return &c
}

func versionOf(v *spec.VersionSpec) string {
	if v == nil {
		return ""
	}
	return v.Version
}

// Plan reconciles the state with a spec that was just loaded or applied.
// A canary version different from the current revision's starts a new
// revision at step 0; new endpoints of the same versions are taken as they
// are. Once a canary has been promoted, the spec file usually still names
// the old stable: the state's stable stays what was promoted, so an
// unchanged file never undoes a completed rollout.
func Plan(st State, sp *spec.RolloutSpec, now time.Time) (State, []EventDraft) {
	s := st.clone()
	var e emitter
	desired := DesiredCanary(sp)

	if s.Revision == 0 {
		s.Revision, s.Stable, s.StartedAt, s.UpdatedAt = 1, sp.Stable, now, now
		s.Stable.Endpoints = slices.Clone(sp.Stable.Endpoints)
		if desired != nil {
			startRevision(&s, desired, sp, now, &e)
		} else {
			s.Message = s.Stable.Version + " is stable; nothing to roll out"
		}
		return s, e.events
	}

	stable, lagging := resolveStable(&s, sp, desired)
	canary := desired
	if canary != nil && canary.Version == stable.Version {
		canary = nil
	}
	if versionOf(canary) == versionOf(s.Canary) && stable.Version == s.Stable.Version {
		// Same revision: only endpoints (or other settings) changed.
		s.Stable = stable
		if canary != nil {
			s.Canary = canary
		}
		if !slices.Equal(s.Stable.Endpoints, st.Stable.Endpoints) || (canary != nil && !slices.Equal(canary.Endpoints, st.Canary.Endpoints)) {
			s.UpdatedAt = now
		}
		return s, nil
	}

	switch {
	case s.Canary != nil && s.Aborted:
		s.record(OutcomeAborted, now)
	case s.Canary != nil:
		s.record(OutcomeSuperseded, now)
	case len(s.History) == 0 || s.History[len(s.History)-1].Revision != s.Revision:
		// A revision with nothing to roll out (the first one, or one that
		// went back to its stable) is kept too: `undo` must know that its
		// stable was the version in use, as Argo knows from its revisions.
		s.record(OutcomeSuperseded, now)
	}
	archiveRuns(&s, now, "a new revision started")
	s.Revision++
	s.Stable = stable
	s.StartedAt, s.UpdatedAt = now, now
	resetRevision(&s)
	if canary != nil {
		startRevision(&s, canary, sp, now, &e)
		if lagging != "" {
			s.Message += "; " + lagging
		}
		if note := rolledBackNote(st.History, canary.Version, s.Stable.Version); note != "" {
			s.Message += "; " + note
		}
		return s, e.events
	}
	s.Canary = nil
	s.Message = fmt.Sprintf("revision %d: %s is stable; nothing to roll out", s.Revision, s.Stable.Version)
	return s, e.events
}

// rolledBackNote says, when a new revision rolls out a version that an
// earlier revision moved away from (an undo, or an abort), that this is
// happening and how to choose otherwise: re-applying a file that still
// names the rolled-back version as canary is the usual way to do it by
// mistake.
func rolledBackNote(history []RevisionRecord, canary, stable string) string {
	for i := len(history) - 1; i >= 0; i-- {
		h := history[i]
		if h.Outcome == OutcomeCompleted && h.Canary != nil && h.Canary.Version == canary {
			return "" // rolled out in full since: whatever happened before is old news
		}
		switch {
		case h.Outcome == OutcomeCompleted && h.Stable.Version == canary && h.Canary != nil && stableIn(history[:i], h.Canary.Version):
			// Revision h went back to an earlier stable: a rollback.
			return fmt.Sprintf("note: %s was rolled back in revision %d, when %s replaced it; this spec asks for %s again. "+
				"To stay on %s, set spec.canary to %s (or remove it) and apply again", canary, h.Revision, h.Canary.Version, canary, stable, stable)
		case h.Outcome == OutcomeAborted && h.Canary != nil && h.Canary.Version == canary:
			return fmt.Sprintf("note: %s was aborted in revision %d; this spec rolls it out again. "+
				"To stay on %s, set spec.canary to %s (or remove it) and apply again", canary, h.Revision, stable, stable)
		}
	}
	return ""
}

func stableIn(history []RevisionRecord, version string) bool {
	for _, h := range history {
		if h.Stable.Version == version {
			return true
		}
	}
	return false
}

// resolveStable picks the stable version of the state after applying sp,
// and says when the spec's stable lags behind what was promoted.
func resolveStable(s *State, sp *spec.RolloutSpec, desired *spec.VersionSpec) (spec.VersionSpec, string) {
	switch {
	case sp.Stable.Version == s.Stable.Version:
		v := sp.Stable
		v.Endpoints = slices.Clone(v.Endpoints)
		return v, ""
	case desired != nil && desired.Version == s.Stable.Version:
		// The spec's canary was promoted; its endpoints are the stable's.
		return *desired, ""
	case formerStable(s, sp.Stable.Version):
		v := s.Stable
		v.Endpoints = slices.Clone(v.Endpoints)
		return v, fmt.Sprintf("spec.stable names %s, but %s has been promoted since, so %s stays stable", sp.Stable.Version, s.Stable.Version, s.Stable.Version)
	default:
		// A stable version never seen before: the operator replaced it.
		v := sp.Stable
		v.Endpoints = slices.Clone(v.Endpoints)
		return v, ""
	}
}

func formerStable(s *State, version string) bool {
	for _, h := range s.History {
		if h.Stable.Version == version {
			return true
		}
	}
	return false
}

func resetRevision(s *State) {
	s.StepIndex, s.StepStartedAt = 0, s.StartedAt
	s.Weight, s.WeightSince, s.PauseUntil = 0, time.Time{}, time.Time{}
	s.StepPause, s.ManualPause, s.Aborted = model.PauseNone, false, false
	s.HeaderRoutes, s.MirrorRoutes = nil, nil
}

func startRevision(s *State, canary *spec.VersionSpec, sp *spec.RolloutSpec, now time.Time, e *emitter) {
	s.Canary = canary
	resetRevision(s)
	s.StepStartedAt = now
	s.Message = fmt.Sprintf("revision %d: rolling out %s over stable %s; %s started", s.Revision, canary.Version, s.Stable.Version, stepLabel(sp.Strategy.Canary.Steps, 0))
	e.emit(EventStarted, fmt.Sprintf("revision %d: rolling out %s over stable %s", s.Revision, canary.Version, s.Stable.Version),
		map[string]any{"stable": s.Stable.Version, "canary": canary.Version, "steps": len(sp.Strategy.Canary.Steps)})
}

// UndoTarget finds the version `undo` goes back to. Without toRevision it
// is the previous revision's version, as in Argo Rollouts (where undo is a
// rollback to revision N-1): the version the rollout was asked to run
// before the current one. While a canary is in progress that is usually
// the stable version, so undo ends the canary (Argo's "rollback to the
// stable ReplicaSet", which always skips the steps). With toRevision it is
// the version that served all traffic at the end of that revision (its
// canary if it completed, otherwise the stable it ran against). fast
// reports whether the target was stable within the last rollbackWindow
// completed revisions, in which case the steps are skipped (fast rollback);
// with rollbackWindow 0 they never are. Going back to the current stable
// needs no steps whatever the window: Plan ends the canary at once.
func UndoTarget(name string, st State, toRevision int64, rollbackWindow int) (target spec.VersionSpec, fast bool, err error) {
	if toRevision > 0 {
		if toRevision == st.Revision {
			return target, false, conflict(name, "is at revision %d already", toRevision)
		}
		found := false
		for _, h := range st.History {
			if h.Revision == toRevision {
				found = true
				if h.Canary != nil && h.Outcome == OutcomeCompleted {
					target = *h.Canary
				} else {
					target = h.Stable
				}
			}
		}
		if !found {
			return target, false, fmt.Errorf("rollout %q has no revision %d in its history (it keeps the last %d): %w", name, toRevision, maxHistory, model.ErrNotFound)
		}
	} else {
		asked := askedVersions(st)
		if len(asked) < 2 {
			return target, false, conflict(name, "has no earlier revision to go back to: %s is the only version it has run", st.Stable.Version)
		}
		target = asked[len(asked)-2]
	}
	if target.Version == st.Stable.Version && st.Canary == nil {
		return target, false, conflict(name, "already has %s as its stable version", target.Version)
	}
	// rollbackWindow 0 is valid (spec.rollbackWindow: 0) and means undo
	// always walks the steps; the default of 1 is filled in by SetDefaults.
	seen := 0
	for i := len(st.History) - 1; i >= 0 && seen < rollbackWindow; i-- {
		h := st.History[i]
		if h.Outcome != OutcomeCompleted {
			continue
		}
		seen++
		if h.Stable.Version == target.Version {
			fast = true
		}
	}
	target.Endpoints = slices.Clone(target.Endpoints)
	return target, fast, nil
}

// askedVersions lists the versions the rollout was asked to run, oldest
// first, each where it was last asked for. These are Argo's revisions: a
// rollback to an old pod template makes it the newest revision, and an
// aborted canary stays a revision. A revision asks for its canary, or for
// its stable when it has none; a stable seen for the first time (the first
// revision's, or one the operator replaced) was asked for before its
// canary. A stable that an earlier revision promoted is not asked for
// again by a revision that rolls out a canary over it.
func askedVersions(st State) []spec.VersionSpec {
	var out []spec.VersionSpec
	ask := func(v spec.VersionSpec) {
		out = slices.DeleteFunc(out, func(o spec.VersionSpec) bool { return o.Version == v.Version })
		out = append(out, v)
	}
	seen := func(version string) bool {
		return slices.ContainsFunc(out, func(o spec.VersionSpec) bool { return o.Version == version })
	}
	revision := func(stable spec.VersionSpec, canary *spec.VersionSpec) {
		if canary == nil {
			ask(stable)
			return
		}
		if !seen(stable.Version) {
			ask(stable)
		}
		ask(*canary)
	}
	for _, h := range st.History {
		revision(h.Stable, h.Canary)
	}
	// After a completion the current revision is in the history already;
	// asking for its stable (the promoted canary) again changes nothing.
	revision(st.Stable, st.Canary)
	return out
}
