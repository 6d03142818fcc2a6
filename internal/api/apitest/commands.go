package apitest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Apply stores a rollout document after filling defaults and validating it
// like `coalmine lint`, including that the templates it names exist. A
// changed stable or canary version starts a new revision; other changes
// only replace the spec.
func (f *Fake) Apply(_ context.Context, doc spec.Rollout) (model.View, error) {
	doc = clone(doc)
	doc.SetDefaults()
	f.mu.Lock()
	errs := doc.Validate()
	errs = append(errs, f.missingTemplates(doc.Spec)...)
	f.mu.Unlock()
	if len(errs) > 0 {
		return model.View{}, errs
	}
	name := doc.Metadata.Name

	f.mu.Lock()
	if _, ok := f.rollouts[name]; !ok && f.err == nil {
		r := &rollout{
			view: model.View{
				APIVersion: doc.APIVersion, Kind: doc.Kind, Metadata: doc.Metadata, Spec: doc.Spec,
				Status: model.Status{AnalysisRuns: []model.AnalysisRunStatus{}},
			},
			stable:   doc.Spec.Stable,
			watchers: map[*watcher]struct{}{},
		}
		f.rollouts[name] = r
	}
	f.mu.Unlock()

	return f.change(name, func(r *rollout, now time.Time) error {
		old := r.view.Spec
		r.view.APIVersion, r.view.Kind, r.view.Spec = doc.APIVersion, doc.Kind, doc.Spec
		if r.view.Status.Revision == 0 { // just created
			r.startRevision(now, doc.Spec.Stable, effectiveCanary(doc.Spec), "created", false)
			return nil
		}
		stableChanged := doc.Spec.Stable.Version != old.Stable.Version
		canaryChanged := versionOf(effectiveCanary(doc.Spec)) != versionOf(effectiveCanary(old))
		if !stableChanged && !canaryChanged {
			// Same versions: pick up changed endpoints, keep the status.
			if r.stable.Version == doc.Spec.Stable.Version {
				r.stable = doc.Spec.Stable
			}
			if c := effectiveCanary(doc.Spec); c != nil && r.canary != nil && r.canary.Version == c.Version {
				r.canary = c
			}
			r.updateEndpoints()
			return nil
		}
		stable := r.stable
		if stableChanged {
			stable = doc.Spec.Stable
		}
		r.startRevision(now, stable, effectiveCanary(doc.Spec), "applied", false)
		return nil
	})
}

// missingTemplates reports template references to templates the Fake does
// not hold. Callers hold f.mu.
func (f *Fake) missingTemplates(s spec.RolloutSpec) spec.FieldErrors {
	var errs spec.FieldErrors
	check := func(p spec.FieldPath, refs []spec.TemplateRef) {
		for i, ref := range refs {
			if _, ok := f.templates[ref.TemplateName]; !ok && ref.TemplateName != "" {
				errs.Add(p.Child("templates").Index(i).Child("templateName").String(),
					"analysis template %q not found: apply it first", ref.TemplateName)
			}
		}
	}
	c := spec.FieldPath("spec.strategy.canary")
	if a := s.Strategy.Canary.Analysis; a != nil {
		check(c.Child("analysis"), a.Templates)
	}
	for i, st := range s.Strategy.Canary.Steps {
		if st.Analysis != nil {
			check(c.Child("steps").Index(i).Child("analysis"), st.Analysis.Templates)
		}
	}
	return errs
}

// Promote leaves the current pause or analysis step (or a manual pause);
// full skips every remaining step and completes.
func (f *Fake) Promote(_ context.Context, name string, full bool) (model.View, error) {
	return f.change(name, func(r *rollout, now time.Time) error {
		if err := r.needCanary("promote"); err != nil {
			return err
		}
		if r.aborted {
			return fmt.Errorf("rollout %q is Degraded: revision %d was aborted, so there is nothing to promote; retry it or undo: %w",
				name, r.view.Status.Revision, model.ErrConflict)
		}
		i := r.view.Status.StepIndex
		if full {
			r.endRuns("Terminated")
			r.record(now, "rollout-promoted", fmt.Sprintf("promoted by hand to the end: skipping steps %d to %d", i+1, len(r.steps())),
				map[string]any{"full": true, "step": i})
			r.manual = false
			r.complete(now)
			return nil
		}
		step := r.currentStep()
		if !r.manual && (step == nil || (step.Pause == nil && step.Analysis == nil)) {
			return fmt.Errorf("rollout %q is at step %d (%s), which completes by itself: promote leaves only a pause or analysis step; use promote --full to skip every step: %w",
				name, i+1, describeStep(step), model.ErrConflict)
		}
		r.manual = false
		if step != nil && (step.Pause != nil || step.Analysis != nil) {
			r.record(now, "rollout-promoted", fmt.Sprintf("promoted by hand: left step %d (%s)", i+1, describeStep(step)),
				map[string]any{"step": i})
			r.endStepRun(i, "Terminated")
			r.stepPause = model.PauseNone
			r.view.Status.StepIndex++
			r.stepStarted(now)
		} else {
			r.record(now, "rollout-promoted", fmt.Sprintf("promoted by hand: released the manual pause at step %d (%s)", i+1, describeStep(step)),
				map[string]any{"step": i})
		}
		r.settle(now)
		return nil
	})
}

// Abort returns all traffic to stable and marks the revision aborted.
func (f *Fake) Abort(_ context.Context, name string) (model.View, error) {
	return f.change(name, func(r *rollout, now time.Time) error {
		if err := r.needCanary("abort"); err != nil {
			return err
		}
		if r.aborted {
			return fmt.Errorf("rollout %q is already aborted: retry it, or undo: %w", name, model.ErrConflict)
		}
		from := r.view.Status.Weight
		r.aborted, r.manual, r.stepPause = true, false, model.PauseNone
		r.setWeight(0)
		r.view.Status.PauseUntil = nil
		r.endRuns("Terminated")
		r.view.Status.Message = "aborted by hand: all traffic is back on stable " + r.stable.Version
		r.record(now, "rollout-aborted", r.view.Status.Message, map[string]any{"previousWeight": from, "canary": r.canary.Version})
		return nil
	})
}

// Retry starts an aborted revision again from step 0 with fresh runs.
func (f *Fake) Retry(_ context.Context, name string) (model.View, error) {
	return f.change(name, func(r *rollout, now time.Time) error {
		if err := r.needCanary("retry"); err != nil {
			return err
		}
		if !r.aborted {
			return fmt.Errorf("rollout %q is %s: only an aborted revision can be retried: %w", name, r.view.Status.Phase, model.ErrConflict)
		}
		r.aborted, r.manual = false, false
		r.view.Status.AnalysisRuns = []model.AnalysisRunStatus{}
		r.view.Status.StepIndex = 0
		r.stepStarted(now)
		r.record(now, "rollout-started", fmt.Sprintf("revision %d retried from step 1: %s over stable %s", r.view.Status.Revision, r.canary.Version, r.stable.Version),
			map[string]any{"retry": true, "stable": r.stable.Version, "canary": r.canary.Version})
		r.settle(now)
		return nil
	})
}

// Pause holds the rollout at its current step (reason Manual).
func (f *Fake) Pause(_ context.Context, name string) (model.View, error) {
	return f.change(name, func(r *rollout, now time.Time) error {
		if err := r.needCanary("pause"); err != nil {
			return err
		}
		switch {
		case r.aborted:
			return fmt.Errorf("rollout %q is Degraded: the aborted revision holds no traffic, so there is nothing to pause; retry it or undo: %w", name, model.ErrConflict)
		case r.manual:
			return fmt.Errorf("rollout %q is already paused by hand: resume it to continue: %w", name, model.ErrConflict)
		}
		r.manual = true
		i := r.view.Status.StepIndex
		r.view.Status.Message = fmt.Sprintf("paused by hand at step %d (%s)", i+1, describeStep(r.currentStep()))
		r.record(now, "rollout-paused", r.view.Status.Message, map[string]any{"reason": string(model.PauseManual), "step": i})
		return nil
	})
}

// Resume releases a manual pause; a pause step still needs promote.
func (f *Fake) Resume(_ context.Context, name string) (model.View, error) {
	return f.change(name, func(r *rollout, now time.Time) error {
		if err := r.needCanary("resume"); err != nil {
			return err
		}
		if !r.manual {
			what := string(r.view.Status.Phase)
			if r.view.Status.PauseReason != model.PauseNone {
				what += " (" + string(r.view.Status.PauseReason) + ")"
			}
			return fmt.Errorf("rollout %q is %s, not paused by hand: resume releases only `pause` and `set weight`; promote leaves a pause or analysis step: %w",
				name, what, model.ErrConflict)
		}
		r.manual = false
		i := r.view.Status.StepIndex
		r.view.Status.Message = fmt.Sprintf("resumed by hand at step %d (%s)", i+1, describeStep(r.currentStep()))
		r.record(now, "rollout-resumed", r.view.Status.Message, map[string]any{"step": i})
		r.settle(now)
		return nil
	})
}

// SetWeight applies the weight at once (applied and observed) and pauses
// the rollout with reason Manual, as SPEC §4 says `set weight` does. A
// rollout without a canary, or an aborted one, answers model.ErrConflict.
func (f *Fake) SetWeight(_ context.Context, name string, w spec.Weight) (model.View, error) {
	return f.change(name, func(r *rollout, now time.Time) error {
		if r.canary == nil {
			return fmt.Errorf("rollout %q has no canary, so there is no weight to set; add spec.canary first: %w", name, model.ErrConflict)
		}
		if r.aborted {
			return fmt.Errorf("rollout %q is Degraded: revision %d was aborted; retry it before setting a weight: %w", name, r.view.Status.Revision, model.ErrConflict)
		}
		if w > spec.MaxWeight {
			return fmt.Errorf("weight %d basis points is above 100%%: %w", w, model.ErrInvalid)
		}
		from := r.view.Status.Weight
		r.setWeight(w.Percent())
		r.view.Status.Message = "canary weight set by hand to " + w.String() + "%"
		r.record(now, "rollout-weight-changed", r.view.Status.Message, map[string]any{"weight": w.Percent(), "previousWeight": from})
		if !r.manual {
			r.manual = true
			r.record(now, "rollout-paused", "paused by hand: the weight was set by hand", map[string]any{"reason": string(model.PauseManual), "step": r.view.Status.StepIndex})
		}
		return nil
	})
}

// SetCanary starts a new revision with this canary, like `set image`: the
// applied spec's canary changes too.
func (f *Fake) SetCanary(_ context.Context, name string, canary spec.VersionSpec) (model.View, error) {
	canary = clone(canary)
	return f.change(name, func(r *rollout, now time.Time) error {
		doc := clone(spec.Rollout{APIVersion: r.view.APIVersion, Kind: r.view.Kind, Metadata: r.view.Metadata, Spec: r.view.Spec})
		doc.Spec.Canary = &canary
		doc.SetDefaults()
		if errs := doc.Validate(); len(errs) > 0 {
			return errs
		}
		if r.canary != nil && !r.aborted && r.canary.Version == canary.Version && slices.Equal(r.canary.Endpoints, canary.Endpoints) {
			return fmt.Errorf("rollout %q is already rolling out %s with these endpoints: %w", name, canary.Version, model.ErrConflict)
		}
		r.view.Spec = doc.Spec
		r.startRevision(now, r.stable, effectiveCanary(doc.Spec), "set canary", false)
		return nil
	})
}

// Undo starts a new revision whose canary is the previous revision's
// version, as Argo's rollback to revision N-1 (or revision toRevision's
// canary). While a canary is in progress that is usually the stable
// version, so undo returns every request to it at once. When the target
// was stable within the last rollbackWindow revisions the steps are
// skipped (fast rollback).
func (f *Fake) Undo(_ context.Context, name string, toRevision int64) (model.View, error) {
	return f.change(name, func(r *rollout, now time.Time) error {
		if toRevision < 0 {
			return spec.FieldError{Path: "toRevision", Msg: fmt.Sprintf("revision %d is not a revision number: use 1 or more", toRevision)}
		}
		target, err := r.undoTarget(toRevision)
		if err != nil {
			return err
		}
		r.view.Spec.Canary = &target
		r.startRevision(now, r.stable, &target, "undo", r.recentlyStable(target.Version))
		return nil
	})
}

func (r *rollout) undoTarget(toRevision int64) (spec.VersionSpec, error) {
	name, rev := r.view.Metadata.Name, r.view.Status.Revision
	if toRevision > 0 {
		if toRevision == rev {
			return spec.VersionSpec{}, fmt.Errorf("revision %d is the current revision of rollout %q: %w", rev, name, model.ErrConflict)
		}
		for _, h := range slices.Backward(r.history) {
			if h.Number != toRevision {
				continue
			}
			if h.Canary == nil {
				return spec.VersionSpec{}, spec.FieldError{Path: "toRevision", Msg: fmt.Sprintf("revision %d of rollout %q had no canary to return to", toRevision, name)}
			}
			return *h.Canary, nil
		}
		return spec.VersionSpec{}, spec.FieldError{Path: "toRevision", Msg: fmt.Sprintf("rollout %q has no revision %d; known revisions: %s", name, toRevision, r.knownRevisions())}
	}
	asked := r.askedVersions()
	if len(asked) < 2 {
		return spec.VersionSpec{}, fmt.Errorf("rollout %q has no earlier revision to go back to: use set canary: %w", name, model.ErrConflict)
	}
	return asked[len(asked)-2], nil
}

// askedVersions lists the versions the rollout was asked to run, oldest
// first, each where it was last asked for (Argo's revisions): a revision
// asks for its canary, or for its stable when it has none; a stable not
// seen before was asked for first. Undo goes to the one before the last.
func (r *rollout) askedVersions() []spec.VersionSpec {
	var out []spec.VersionSpec
	has := func(v string) int {
		return slices.IndexFunc(out, func(o spec.VersionSpec) bool { return o.Version == v })
	}
	ask := func(v spec.VersionSpec) {
		if i := has(v.Version); i >= 0 {
			out = slices.Delete(out, i, i+1)
		}
		out = append(out, v)
	}
	revision := func(stable spec.VersionSpec, canary *spec.VersionSpec) {
		if canary == nil || has(stable.Version) < 0 {
			ask(stable)
		}
		if canary != nil {
			ask(*canary)
		}
	}
	for _, h := range r.history {
		revision(h.Stable, h.Canary)
	}
	revision(r.stable, r.canary)
	return out
}

func (r *rollout) knownRevisions() string {
	var nums []string
	for _, h := range r.history {
		nums = append(nums, strconv.FormatInt(h.Number, 10))
	}
	nums = append(nums, strconv.FormatInt(r.view.Status.Revision, 10)+" (current)")
	return strings.Join(nums, ", ")
}

// recentlyStable reports whether version was stable within the last
// rollbackWindow revisions (the current one included).
func (r *rollout) recentlyStable(version string) bool {
	if r.stable.Version == version {
		return true
	}
	window := spec.DefaultRollbackWindow
	if w := r.view.Spec.RollbackWindow; w != nil {
		window = int(*w)
	}
	for i, h := range slices.Backward(r.history) {
		if len(r.history)-i > window {
			break
		}
		if h.Stable.Version == version {
			return true
		}
	}
	return false
}

// needCanary rejects commands on a rollout with nothing to roll out.
func (r *rollout) needCanary(verb string) error {
	if r.canary != nil {
		return nil
	}
	return fmt.Errorf("rollout %q is Healthy: there is nothing to %s: %w", r.view.Metadata.Name, verb, model.ErrConflict)
}

func (r *rollout) steps() []spec.Step { return r.view.Spec.Strategy.Canary.Steps }

// currentStep is the step at status.stepIndex, or nil after the last.
func (r *rollout) currentStep() *spec.Step {
	i := r.view.Status.StepIndex
	if steps := r.steps(); i >= 0 && i < len(steps) {
		return &steps[i]
	}
	return nil
}

func (r *rollout) stepStarted(now time.Time) {
	t := now
	r.view.Status.StepStartedAt = &t
	r.view.Status.PauseUntil = nil
}

func (r *rollout) setWeight(percent float64) {
	r.view.Status.Weight = percent
	r.view.Status.ObservedWeight = percent
}

// startRevision ends the current revision and starts the next one from
// step 0. A canary equal to stable (or none) means nothing to roll out: the
// new revision is Healthy at once. fast skips the steps: traffic moves at
// once and the revision completes (undo's fast rollback).
func (r *rollout) startRevision(now time.Time, stable spec.VersionSpec, canary *spec.VersionSpec, why string, fast bool) {
	st := &r.view.Status
	if n := len(r.history); st.Revision > 0 && (n == 0 || r.history[n-1].Number != st.Revision) { // complete recorded it already
		r.history = append(r.history, Revision{Number: st.Revision, Stable: r.stable, Canary: r.canary})
	}
	if canary != nil && canary.Version == stable.Version {
		canary = nil
	}
	st.Revision++
	r.stable, r.canary = stable, canary
	r.aborted, r.manual, r.stepPause = false, false, model.PauseNone
	st.AnalysisRuns = []model.AnalysisRunStatus{}
	st.StepIndex = 0
	r.stepStarted(now)
	r.setWeight(0)
	r.updateEndpoints()
	if canary == nil {
		st.Message = "nothing to roll out: " + stable.Version + " is stable"
		if why != "created" {
			r.record(now, "rollout-completed", fmt.Sprintf("revision %d (%s) completed at once: %s is stable", st.Revision, why, stable.Version),
				map[string]any{"stable": stable.Version})
		}
		return
	}
	r.record(now, "rollout-started", fmt.Sprintf("revision %d (%s): rolling out %s over stable %s", st.Revision, why, canary.Version, stable.Version),
		map[string]any{"stable": stable.Version, "canary": canary.Version, "fast": fast})
	if fast {
		r.setWeight(100)
		r.record(now, "rollout-weight-changed", "fast rollback: all traffic on "+canary.Version+" at once", map[string]any{"weight": 100.0})
		r.complete(now)
		return
	}
	r.settle(now)
}

// settle does what a controller does at once: it runs the steps that
// complete by themselves until one holds the rollout (a pause or an
// analysis), or completes the rollout after the last step.
func (r *rollout) settle(now time.Time) {
	st := &r.view.Status
	for r.canary != nil && !r.aborted && !r.manual {
		i := st.StepIndex
		r.startBackgroundAnalysis(now, i)
		step := r.currentStep()
		switch {
		case step == nil:
			if st.Weight != 100 {
				r.setWeight(100)
				r.record(now, "rollout-weight-changed", "all traffic on canary "+r.canary.Version, map[string]any{"weight": 100.0})
			}
			r.complete(now)
			return
		case step.Pause != nil:
			if r.stepPause == model.PauseNone {
				r.stepPause = model.PauseStep
				st.Message = fmt.Sprintf("paused at step %d until promoted", i+1)
				if d := step.Pause.Duration; d != nil {
					until := st.StepStartedAt.Add(d.D())
					st.PauseUntil = &until
					st.Message = fmt.Sprintf("pausing for %s (until %s UTC)", shortDuration(*d), until.UTC().Format(time.TimeOnly))
				}
				r.record(now, "rollout-paused", st.Message, map[string]any{"reason": string(model.PauseStep), "step": i})
			}
			return
		case step.Analysis != nil:
			id := r.stepRunID(i)
			if !slices.ContainsFunc(st.AnalysisRuns, func(a model.AnalysisRunStatus) bool { return a.ID == id }) {
				tpl := templateNames(step.Analysis.Templates)
				st.AnalysisRuns = append(slices.Clone(st.AnalysisRuns), model.AnalysisRunStatus{ID: id, Template: tpl, Phase: "Running"})
				st.Message = fmt.Sprintf("running analysis %s at step %d", tpl, i+1)
				r.record(now, "analysis-started", st.Message, map[string]any{"run": id, "step": i})
			}
			return
		case step.SetWeight != nil:
			if *step.SetWeight != st.Weight {
				from := st.Weight
				r.setWeight(*step.SetWeight)
				r.record(now, "rollout-weight-changed", fmt.Sprintf("canary weight %v%% → %v%%", from, *step.SetWeight),
					map[string]any{"weight": *step.SetWeight, "previousWeight": from})
			}
		}
		r.record(now, "rollout-step-completed", fmt.Sprintf("step %d (%s) completed", i+1, describeStep(step)), map[string]any{"step": i})
		st.StepIndex++
		r.stepStarted(now)
	}
}

func (r *rollout) stepRunID(i int) string {
	return fmt.Sprintf("%s-%d-step-%d", r.view.Metadata.Name, r.view.Status.Revision, i)
}

func (r *rollout) startBackgroundAnalysis(now time.Time, i int) {
	bg := r.view.Spec.Strategy.Canary.Analysis
	st := &r.view.Status
	if bg == nil || i < bg.StartingStep {
		return
	}
	id := fmt.Sprintf("%s-%d-background", r.view.Metadata.Name, st.Revision)
	if slices.ContainsFunc(st.AnalysisRuns, func(a model.AnalysisRunStatus) bool { return a.ID == id }) {
		return
	}
	st.AnalysisRuns = append(slices.Clone(st.AnalysisRuns), model.AnalysisRunStatus{ID: id, Template: templateNames(bg.Templates), Phase: "Running"})
	r.record(now, "analysis-started", "background analysis "+templateNames(bg.Templates)+" started", map[string]any{"run": id, "step": i})
}

// complete makes the canary the new stable version (SPEC §4).
func (r *rollout) complete(now time.Time) {
	st := &r.view.Status
	r.history = append(r.history, Revision{Number: st.Revision, Stable: r.stable, Canary: r.canary, Completed: true})
	r.endRuns("Successful")
	r.stable, r.canary = *r.canary, nil
	r.manual, r.stepPause = false, model.PauseNone
	st.StepIndex = len(r.steps())
	r.stepStarted(now)
	r.setWeight(0)
	r.updateEndpoints()
	st.Message = "rollout completed: " + r.stable.Version + " is stable"
	r.record(now, "rollout-completed", st.Message, map[string]any{"stable": r.stable.Version})
}

// endRuns sets every running analysis run to phase.
func (r *rollout) endRuns(phase string) {
	runs := slices.Clone(r.view.Status.AnalysisRuns)
	for i := range runs {
		if runs[i].Phase == "Running" {
			runs[i].Phase = phase
		}
	}
	r.view.Status.AnalysisRuns = runs
}

// endStepRun ends the running run of step i, if any.
func (r *rollout) endStepRun(i int, phase string) {
	id := r.stepRunID(i)
	runs := slices.Clone(r.view.Status.AnalysisRuns)
	for j := range runs {
		if runs[j].ID == id && runs[j].Phase == "Running" {
			runs[j].Phase = phase
		}
	}
	r.view.Status.AnalysisRuns = runs
}

// updateEndpoints lists the endpoints of the running versions, keeping
// what is known about those that stay.
func (r *rollout) updateEndpoints() {
	known := map[string]model.EndpointStatus{}
	for _, e := range r.view.Status.Endpoints {
		known[e.URL] = e
	}
	var out []model.EndpointStatus
	add := func(role spec.Role, v spec.VersionSpec) {
		for _, u := range v.Endpoints {
			e, ok := known[u]
			if !ok {
				e = model.EndpointStatus{URL: u, Healthy: true}
			}
			e.Role, e.Version = role, v.Version
			out = append(out, e)
		}
	}
	add(spec.RoleStable, r.stable)
	if r.canary != nil {
		add(spec.RoleCanary, *r.canary)
	}
	r.view.Status.Endpoints = out
}

// effectiveCanary is the canary a spec rolls out, nil when there is none
// (no canary, an empty one, or one equal to stable).
func effectiveCanary(s spec.RolloutSpec) *spec.VersionSpec {
	c := s.Canary
	if c == nil || c.Version == "" || c.Version == s.Stable.Version {
		return nil
	}
	cp := *c
	return &cp
}

func versionOf(v *spec.VersionSpec) string {
	if v == nil {
		return ""
	}
	return v.Version
}

func templateNames(refs []spec.TemplateRef) string {
	names := make([]string, len(refs))
	for i, t := range refs {
		names[i] = t.TemplateName
	}
	return strings.Join(names, ",")
}

// describeStep names a step the way the CLI lists it.
func describeStep(s *spec.Step) string {
	switch {
	case s == nil:
		return "end"
	case s.SetWeight != nil:
		return "setWeight " + strconv.FormatFloat(*s.SetWeight, 'f', -1, 64) + "%"
	case s.Pause != nil && s.Pause.Duration != nil:
		return "pause " + shortDuration(*s.Pause.Duration)
	case s.Pause != nil:
		return "pause until promoted"
	case s.Analysis != nil:
		return "analysis " + templateNames(s.Analysis.Templates)
	case s.SetHeaderRoute != nil:
		return "setHeaderRoute " + s.SetHeaderRoute.Name
	case s.SetMirrorRoute != nil:
		return "setMirrorRoute " + s.SetMirrorRoute.Name
	default:
		return "empty step"
	}
}

// shortDuration drops the zero units Go prints: 5m rather than 5m0s.
func shortDuration(d spec.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
