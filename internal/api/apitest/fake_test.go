package apitest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/api/apitest"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

var ctx = context.Background()

func now() time.Time { return apitest.Epoch }

func TestFixturesAreValid(t *testing.T) {
	for _, tpl := range apitest.Templates() {
		if errs := tpl.Validate(); len(errs) > 0 {
			t.Errorf("template %s: %v", tpl.Metadata.Name, errs)
		}
	}
	for _, v := range apitest.Fixtures() {
		r := spec.Rollout{APIVersion: v.APIVersion, Kind: v.Kind, Metadata: v.Metadata, Spec: v.Spec}
		r.SetDefaults()
		if errs := r.Validate(); len(errs) > 0 {
			t.Errorf("rollout %s: %v", v.Metadata.Name, errs)
		}
		if v.Status.StepCount != len(v.Spec.Strategy.Canary.Steps) {
			t.Errorf("rollout %s: stepCount %d, steps %d", v.Metadata.Name, v.Status.StepCount, len(v.Spec.Strategy.Canary.Steps))
		}
	}
	f := apitest.NewFixtures(now)
	for _, v := range apitest.Fixtures() {
		evs, err := f.Events(ctx, v.Metadata.Name, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 || evs[len(evs)-1].Seq != v.Status.LastEventSeq {
			t.Errorf("rollout %s: events end at seq %v, lastEventSeq is %d", v.Metadata.Name, evs, v.Status.LastEventSeq)
		}
		for i, e := range evs {
			if e.Seq != uint64(i+1) || !isEventType(e.Type) {
				t.Errorf("rollout %s: event %d = seq %d type %q", v.Metadata.Name, i, e.Seq, e.Type)
			}
		}
	}
}

func isEventType(s string) bool {
	for _, t := range spec.EventTypes {
		if s == t {
			return true
		}
	}
	return false
}

// step runs one command and checks the status it leaves.
type step struct {
	name    string
	do      func(f *apitest.Fake) (model.View, error)
	want    string // phase/pause reason, e.g. "Paused/PauseStep"
	step    int
	weight  float64
	stable  string
	canary  string
	events  []string // types of the new events, in order
	errWant string   // substring of a conflict
}

func runSteps(t *testing.T, f *apitest.Fake, rollout string, steps []step) {
	t.Helper()
	for _, s := range steps {
		before, _ := f.Get(ctx, rollout)
		v, err := s.do(f)
		if s.errWant != "" {
			if !errors.Is(err, model.ErrConflict) || !strings.Contains(err.Error(), s.errWant) {
				t.Fatalf("%s: err = %v, want a conflict containing %q", s.name, err, s.errWant)
			}
			after, _ := f.Get(ctx, rollout)
			if after.Status.LastEventSeq != before.Status.LastEventSeq || !after.Status.UpdatedAt.Equal(before.Status.UpdatedAt) {
				t.Errorf("%s: a rejected command changed the rollout", s.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		st := v.Status
		got := string(st.Phase)
		if st.PauseReason != "" {
			got += "/" + string(st.PauseReason)
		}
		if got != s.want || st.StepIndex != s.step || st.Weight != s.weight || st.ObservedWeight != s.weight ||
			st.StableVersion != s.stable || st.CanaryVersion != s.canary {
			t.Fatalf("%s: status %s step %d weight %v/%v stable %q canary %q; want %s step %d weight %v stable %q canary %q",
				s.name, got, st.StepIndex, st.Weight, st.ObservedWeight, st.StableVersion, st.CanaryVersion,
				s.want, s.step, s.weight, s.stable, s.canary)
		}
		evs, _ := f.Events(ctx, rollout, before.Status.LastEventSeq, 0)
		var types []string
		for _, e := range evs {
			types = append(types, e.Type)
			if !e.Time.Equal(apitest.Epoch) || e.Revision != st.Revision && e.Type != "rollout-started" {
				t.Errorf("%s: event %+v: want time Epoch and revision %d", s.name, e, st.Revision)
			}
		}
		if strings.Join(types, " ") != strings.Join(s.events, " ") {
			t.Errorf("%s: events %v, want %v", s.name, types, s.events)
		}
		if n := len(evs); n > 0 && st.LastEventSeq != evs[n-1].Seq {
			t.Errorf("%s: lastEventSeq %d, newest event %d", s.name, st.LastEventSeq, evs[n-1].Seq)
		}
		if !st.UpdatedAt.Equal(apitest.Epoch) {
			t.Errorf("%s: updatedAt %v, want Now", s.name, st.UpdatedAt)
		}
	}
}

func promote(name string, full bool) func(*apitest.Fake) (model.View, error) {
	return func(f *apitest.Fake) (model.View, error) { return f.Promote(ctx, name, full) }
}

func TestCheckoutWalksItsSteps(t *testing.T) {
	f := apitest.NewFixtures(now)
	runSteps(t, f, "checkout", []step{
		{name: "resume without a manual pause", do: func(f *apitest.Fake) (model.View, error) { return f.Resume(ctx, "checkout") },
			errWant: `rollout "checkout" is Paused (PauseStep), not paused by hand`},
		{name: "promote leaves the pause step", do: promote("checkout", false),
			want: "Progressing", step: 4, weight: 1, stable: "v1.4.2", canary: "v1.5.0", events: []string{"rollout-promoted", "analysis-started"}},
		{name: "pause", do: func(f *apitest.Fake) (model.View, error) { return f.Pause(ctx, "checkout") },
			want: "Paused/Manual", step: 4, weight: 1, stable: "v1.4.2", canary: "v1.5.0", events: []string{"rollout-paused"}},
		{name: "pause twice", do: func(f *apitest.Fake) (model.View, error) { return f.Pause(ctx, "checkout") },
			errWant: "already paused by hand"},
		{name: "resume", do: func(f *apitest.Fake) (model.View, error) { return f.Resume(ctx, "checkout") },
			want: "Progressing", step: 4, weight: 1, stable: "v1.4.2", canary: "v1.5.0", events: []string{"rollout-resumed"}},
		{name: "promote leaves the analysis and sets 25%", do: promote("checkout", false),
			want: "Paused/PauseStep", step: 6, weight: 25, stable: "v1.4.2", canary: "v1.5.0",
			events: []string{"rollout-promoted", "rollout-weight-changed", "rollout-step-completed", "rollout-paused"}},
		{name: "set weight pauses by hand", do: func(f *apitest.Fake) (model.View, error) { return f.SetWeight(ctx, "checkout", 3000) },
			want: "Paused/Manual", step: 6, weight: 30, stable: "v1.4.2", canary: "v1.5.0", events: []string{"rollout-weight-changed", "rollout-paused"}},
		{name: "promote releases the manual pause and leaves the pause step, completing", do: promote("checkout", false),
			want: "Healthy", step: 8, weight: 0, stable: "v1.5.0",
			events: []string{"rollout-promoted", "rollout-weight-changed", "rollout-step-completed", "rollout-completed"}},
		{name: "promote a healthy rollout", do: promote("checkout", false),
			errWant: `rollout "checkout" is Healthy: there is nothing to promote`},
		{name: "abort a healthy rollout", do: func(f *apitest.Fake) (model.View, error) { return f.Abort(ctx, "checkout") },
			errWant: "nothing to abort"},
		{name: "undo goes to the previous revision, v1.5.0-rc.1 that v1.5.0 superseded (Argo's N-1), with its steps",
			do:   func(f *apitest.Fake) (model.View, error) { return f.Undo(ctx, "checkout", 0) },
			want: "Paused/PauseStep", step: 3, weight: 1, stable: "v1.5.0", canary: "v1.5.0-rc.1",
			events: []string{"rollout-started", "rollout-step-completed", "rollout-step-completed", "analysis-started",
				"rollout-weight-changed", "rollout-step-completed", "rollout-paused"}},
	})
	v, _ := f.Get(ctx, "checkout")
	if v.Status.Revision != 4 {
		t.Errorf("revision after undo = %d, want 4", v.Status.Revision)
	}
}

func TestPromoteFull(t *testing.T) {
	f := apitest.NewFixtures(now)
	runSteps(t, f, "checkout", []step{
		{name: "promote --full", do: promote("checkout", true),
			want: "Healthy", step: 8, weight: 0, stable: "v1.5.0", events: []string{"rollout-promoted", "rollout-completed"}},
	})
	v, _ := f.Get(ctx, "checkout")
	if v.Status.AnalysisRuns[0].Phase != "Terminated" || v.Status.Revision != 3 {
		t.Errorf("after promote --full: runs %+v revision %d", v.Status.AnalysisRuns, v.Status.Revision)
	}
	for _, e := range v.Status.Endpoints {
		if e.Role != spec.RoleStable || e.Version != "v1.5.0" {
			t.Errorf("endpoint after completion: %+v", e)
		}
	}
}

func TestAbortRetry(t *testing.T) {
	f := apitest.NewFixtures(now)
	runSteps(t, f, "checkout", []step{
		{name: "abort", do: func(f *apitest.Fake) (model.View, error) { return f.Abort(ctx, "checkout") },
			want: "Degraded", step: 3, weight: 0, stable: "v1.4.2", canary: "v1.5.0", events: []string{"rollout-aborted"}},
		{name: "abort twice", do: func(f *apitest.Fake) (model.View, error) { return f.Abort(ctx, "checkout") }, errWant: "already aborted"},
		{name: "promote aborted", do: promote("checkout", false), errWant: "retry it or undo"},
		{name: "pause aborted", do: func(f *apitest.Fake) (model.View, error) { return f.Pause(ctx, "checkout") }, errWant: "nothing to pause"},
		{name: "set weight aborted", do: func(f *apitest.Fake) (model.View, error) { return f.SetWeight(ctx, "checkout", 100) }, errWant: "retry it before"},
		{name: "retry runs the instant steps again", do: func(f *apitest.Fake) (model.View, error) { return f.Retry(ctx, "checkout") },
			want: "Paused/PauseStep", step: 3, weight: 1, stable: "v1.4.2", canary: "v1.5.0",
			events: []string{"rollout-started", "rollout-step-completed", "rollout-step-completed", "analysis-started",
				"rollout-weight-changed", "rollout-step-completed", "rollout-paused"}},
		{name: "retry a running rollout", do: func(f *apitest.Fake) (model.View, error) { return f.Retry(ctx, "checkout") },
			errWant: "only an aborted revision can be retried"},
	})
	runSteps(t, apitest.NewFixtures(now), "payments", []step{
		{name: "undo of an aborted canary goes back to its stable, the previous revision", do: func(f *apitest.Fake) (model.View, error) { return f.Undo(ctx, "payments", 0) },
			want: "Healthy", step: 0, weight: 0, stable: "v2.0.1", events: []string{"rollout-completed"}},
	})
	runSteps(t, f, "payments", []step{
		{name: "retry payments", do: func(f *apitest.Fake) (model.View, error) { return f.Retry(ctx, "payments") },
			want: "Progressing", step: 1, weight: 5, stable: "v2.0.1", canary: "v2.1.0",
			events: []string{"rollout-started", "rollout-weight-changed", "rollout-step-completed", "analysis-started"}},
	})
}

func TestUndoAndSetCanary(t *testing.T) {
	f := apitest.NewFixtures(now)
	runSteps(t, f, "search", []step{
		{name: "undo to the stable before v0.9.0, fast", do: func(f *apitest.Fake) (model.View, error) { return f.Undo(ctx, "search", 0) },
			want: "Healthy", step: 3, weight: 0, stable: "v0.8.3",
			events: []string{"rollout-started", "rollout-weight-changed", "rollout-completed"}},
		{name: "set canary starts a revision", do: func(f *apitest.Fake) (model.View, error) {
			return f.SetCanary(ctx, "search", spec.VersionSpec{Version: "v1.0.0", Endpoints: []string{"http://127.0.0.1:9202"}})
		}, want: "Paused/PauseStep", step: 1, weight: 20, stable: "v0.8.3", canary: "v1.0.0",
			events: []string{"rollout-started", "rollout-weight-changed", "rollout-step-completed", "rollout-paused"}},
		{name: "set the same canary", do: func(f *apitest.Fake) (model.View, error) {
			return f.SetCanary(ctx, "search", spec.VersionSpec{Version: "v1.0.0", Endpoints: []string{"http://127.0.0.1:9202"}})
		}, errWant: "already rolling out v1.0.0"},
		{name: "undo to revision 2's canary, stable in revision 3: fast", do: func(f *apitest.Fake) (model.View, error) { return f.Undo(ctx, "search", 2) },
			want: "Healthy", step: 3, weight: 0, stable: "v0.9.0",
			events: []string{"rollout-started", "rollout-weight-changed", "rollout-completed"}},
		{name: "undo to revision 4's canary, never stable: the steps run", do: func(f *apitest.Fake) (model.View, error) { return f.Undo(ctx, "search", 4) },
			want: "Paused/PauseStep", step: 1, weight: 20, stable: "v0.9.0", canary: "v1.0.0",
			events: []string{"rollout-started", "rollout-weight-changed", "rollout-step-completed", "rollout-paused"}},
	})
	v, _ := f.Get(ctx, "search")
	if v.Status.Revision != 6 || v.Spec.Canary == nil || v.Spec.Canary.Version != "v1.0.0" {
		t.Errorf("revision %d spec.canary %+v, want 6 and v1.0.0", v.Status.Revision, v.Spec.Canary)
	}

	_, err := f.Undo(ctx, "search", 42)
	var fe spec.FieldError
	if !errors.As(err, &fe) || fe.Path != "toRevision" || !strings.Contains(fe.Msg, "has no revision 42; known revisions: 1, 2, 3, 4, 5, 6 (current)") {
		t.Errorf("undo to an unknown revision: %v", err)
	}
	if _, err := apitest.NewFake(now, apitest.Search()).Undo(ctx, "search", 0); !errors.Is(err, model.ErrConflict) {
		t.Errorf("undo without history: %v, want a conflict", err)
	}
	_, err = f.SetCanary(ctx, "search", spec.VersionSpec{Version: "v2", Endpoints: []string{"ftp://x"}})
	var fes spec.FieldErrors
	if !errors.As(err, &fes) || fes[0].Path != "spec.canary.endpoints[0]" {
		t.Errorf("set canary with a bad endpoint: %v", err)
	}
}

func TestApply(t *testing.T) {
	f := apitest.NewFixtures(now)
	doc := spec.Rollout{APIVersion: spec.APIVersion, Kind: spec.KindRollout, Metadata: spec.Metadata{Name: "web"}, Spec: spec.RolloutSpec{
		Listen: "127.0.0.1:8090",
		Stable: spec.VersionSpec{Version: "v1", Endpoints: []string{"http://127.0.0.1:9301"}},
	}}
	v, err := f.Apply(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status.Phase != model.PhaseHealthy || v.Status.Revision != 1 || v.Spec.HealthCheck != nil || v.Spec.TrafficRouting.Timeouts.RequestHeaders == 0 || v.Status.AnalysisRuns == nil {
		t.Errorf("created: %+v", v.Status)
	}
	doc.Spec.Canary = &spec.VersionSpec{Version: "v2", Endpoints: []string{"http://127.0.0.1:9302"}}
	doc.Spec.Strategy.Canary.Steps = []spec.Step{{SetWeight: new(10.0)}, {Analysis: &spec.AnalysisStep{Templates: []spec.TemplateRef{{TemplateName: "canary-vs-stable"}}}}}
	v, err = f.Apply(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status.Phase != model.PhaseProgressing || v.Status.Revision != 2 || v.Status.Weight != 10 || v.Status.StepIndex != 1 ||
		len(v.Status.AnalysisRuns) != 1 || v.Status.StepCount != 2 {
		t.Errorf("canary applied: %+v", v.Status)
	}
	doc.Spec.HealthCheck = &spec.HealthCheck{Path: "/ready"}
	if v, err = f.Apply(ctx, doc); err != nil || v.Status.Revision != 2 || v.Status.Weight != 10 || v.Spec.HealthCheck.Path != "/ready" {
		t.Errorf("same versions keep the revision: %v %+v", err, v.Status)
	}

	doc.Spec.Strategy.Canary.Steps[1].Analysis.Templates[0].TemplateName = "nope"
	doc.Spec.Listen = ""
	_, err = f.Apply(ctx, doc)
	var fes spec.FieldErrors
	if !errors.As(err, &fes) || len(fes) != 2 || fes[1].Path != "spec.strategy.canary.steps[1].analysis.templates[0].templateName" {
		t.Errorf("invalid document: %v", err)
	}
	if v, _ := f.Get(ctx, "web"); v.Spec.HealthCheck.Path != "/ready" || v.Spec.Listen == "" {
		t.Errorf("a rejected document replaced the spec")
	}

	if err := f.DeleteTemplate(ctx, "canary-vs-stable"); !errors.Is(err, model.ErrConflict) || !strings.Contains(err.Error(), `"checkout", "payments", "web"`) {
		t.Errorf("delete a used template: %v", err)
	}
	if err := f.DeleteTemplate(ctx, "nope"); err != model.ErrNotFound { //nolint:errorlint
		t.Errorf("delete a missing template: %v", err)
	}
}

func TestWatch(t *testing.T) {
	f := apitest.NewFixtures(now)
	wctx, cancel := context.WithCancel(ctx)
	ch, err := f.Watch(wctx, "checkout", 6)
	if err != nil {
		t.Fatal(err)
	}
	next := func() model.WatchUpdate {
		t.Helper()
		select {
		case u, ok := <-ch:
			if !ok {
				t.Fatal("watch closed early")
			}
			return u
		case <-time.After(5 * time.Second):
			t.Fatal("no watch update")
		}
		return model.WatchUpdate{}
	}
	if u := next(); u.View == nil || u.View.Status.LastEventSeq != 8 {
		t.Fatalf("first update %+v, want the view", u)
	}
	for _, want := range []uint64{7, 8} {
		if u := next(); u.Event == nil || u.Event.Seq != want {
			t.Fatalf("backlog update %+v, want event %d", u, want)
		}
	}
	if _, err := f.Pause(ctx, "checkout"); err != nil {
		t.Fatal(err)
	}
	if u := next(); u.Event == nil || u.Event.Seq != 9 || u.Event.Type != "rollout-paused" {
		t.Fatalf("live update %+v, want event 9", u)
	}
	if u := next(); u.View == nil || u.View.Status.PauseReason != model.PauseManual {
		t.Fatalf("live update %+v, want the paused view", u)
	}
	cancel()
	for range ch {
	}
	f.Wait()
	if n := f.Watchers("checkout"); n != 0 {
		t.Errorf("%d watchers after cancel", n)
	}

	// A watcher that does not read is dropped instead of blocking commands.
	slow, err := f.Watch(ctx, "checkout", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < apitest.WatchBuffer; i++ {
		if _, err := f.Resume(ctx, "checkout"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Pause(ctx, "checkout"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Watchers("checkout"); n != 0 {
		t.Errorf("slow watcher not dropped: %d watchers", n)
	}
	for range slow {
	}
	f.Wait()
	if _, err := f.Watch(ctx, "nope", 0); err != model.ErrNotFound { //nolint:errorlint
		t.Errorf("watch a missing rollout: %v", err)
	}
}
