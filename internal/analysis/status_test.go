package analysis_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/analysis/judge"
	"github.com/coalmine-dev/coalmine/internal/model"
)

func TestStatus(t *testing.T) {
	f := &fakeJudge{script: []fakeAnswer{{d: judge.Decision{Verdict: judge.Failed, Message: "worse",
		Evidence: model.Evidence{Method: "fisher exact", Canary: model.EvidenceSample{Requests: 812, Errors: 25}}}}}}
	d := newDriver(t,
		metric("success-rate", success("result[0] >= 0.95"), interval(time.Minute)),
		metric("error-rate", judged),
		metric("shadow", success("true"), interval(time.Minute), dryRun),
	)
	d.judges = f.factory()
	d.record(0, vec(0.99))
	running := analysis.Status(d.run)
	if running.FinishedAt != nil || running.Phase != "Running" || running.StartedAt == nil || !running.StartedAt.Equal(t0) {
		t.Errorf("running status %+v", running)
	}
	d.record(1, versions(812, 25, 15402, 31))
	s := analysis.Status(d.run)
	if s.ID != "run-1" || s.Template != "tmpl" || s.Kind != analysis.KindStep || s.Step != 3 || s.Phase != "Failed" ||
		s.Message != d.run.Message || s.FinishedAt == nil || len(s.Metrics) != 3 {
		t.Fatalf("status %+v", s)
	}
	sr := s.Metrics[0]
	if sr.Name != "success-rate" || sr.Phase != "Successful" || sr.Count != 1 || sr.Successful != 1 || len(sr.Measurements) != 1 {
		t.Errorf("metric %+v", sr)
	}
	if v := sr.Measurements[0].Value; !reflect.DeepEqual(v, []any{0.99}) {
		t.Errorf("value %#v, want the decoded list", v)
	}
	er := s.Metrics[1]
	if er.Phase != "Failed" || er.Failed != 1 || er.Measurements[0].Evidence == nil || er.Measurements[0].Evidence.Canary.Requests != 812 {
		t.Errorf("judge metric %+v", er)
	}
	if !s.Metrics[2].DryRun {
		t.Error("dry-run flag lost")
	}
	two := analysis.NewRun("r", analysis.KindBackground, 0, []string{"a", "b"}, nil, t0)
	if got := analysis.Status(two).Template; got != "a,b" {
		t.Errorf("template %q", got)
	}
}

func TestEvent(t *testing.T) {
	tests := []struct {
		prev, next analysis.Phase
		want       string
	}{
		{"", analysis.PhaseRunning, analysis.EventStarted},
		{analysis.PhaseRunning, analysis.PhaseRunning, ""},
		{analysis.PhaseRunning, analysis.PhaseSuccessful, analysis.EventSuccessful},
		{analysis.PhaseRunning, analysis.PhaseFailed, analysis.EventFailed},
		{analysis.PhaseRunning, analysis.PhaseInconclusive, analysis.EventInconclusive},
		{analysis.PhaseRunning, analysis.PhaseError, analysis.EventError},
		{analysis.PhaseRunning, analysis.PhaseNoData, analysis.EventNoData},
		{analysis.PhaseFailed, analysis.PhaseFailed, ""},
		{analysis.PhaseSuccessful, analysis.PhaseRunning, ""},
	}
	for _, tt := range tests {
		if got := analysis.Event(tt.prev, tt.next); got != tt.want {
			t.Errorf("Event(%q, %q) = %q, want %q", tt.prev, tt.next, got, tt.want)
		}
	}
}
