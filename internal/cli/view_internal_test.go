package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

func TestWithoutStep(t *testing.T) {
	v := model.View{Status: model.Status{StepIndex: 2, StepCount: 5}}
	for msg, want := range map[string]string{
		"step 3/5 (setWeight 50): waiting for the data plane": "waiting for the data plane",
		"step 2/5 (pause 20s): paused until 12:00":            "step 2/5 (pause 20s): paused until 12:00",
		"step 3/5 (setWeight 50): ":                           "step 3/5 (setWeight 50): ",
		"pausing for 5m":                                      "pausing for 5m",
	} {
		if got := withoutStep(v, msg); got != want {
			t.Errorf("withoutStep(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestPauseProgress(t *testing.T) {
	five := spec.Duration(5 * time.Minute)
	step := spec.Step{Pause: &spec.PauseStep{Duration: &five}}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	tests := []struct {
		name   string
		status model.Status
		now    time.Time
		want   string
	}{
		{"start and end", model.Status{Phase: model.PhasePaused, StepStartedAt: at(0), PauseUntil: at(5 * time.Minute)}, t0.Add(time.Minute),
			"[████░░░░░░░░░░░░░░░░] 1m of 5m, 4m left"},
		{"end only", model.Status{Phase: model.PhasePaused, PauseUntil: at(5 * time.Minute)}, t0.Add(150 * time.Second),
			"[██████████░░░░░░░░░░] 2m30s of 5m, 2m30s left"},
		{"start only", model.Status{Phase: model.PhaseProgressing, StepStartedAt: at(0)}, t0,
			"[░░░░░░░░░░░░░░░░░░░░] 0s of 5m, 5m left"},
		{"over", model.Status{Phase: model.PhasePaused, StepStartedAt: at(0), PauseUntil: at(5 * time.Minute)}, t0.Add(time.Hour),
			"[████████████████████] 5m of 5m, done"},
		{"clock behind", model.Status{Phase: model.PhasePaused, StepStartedAt: at(0), PauseUntil: at(5 * time.Minute)}, t0.Add(-time.Hour),
			"[░░░░░░░░░░░░░░░░░░░░] 0s of 5m, 5m left"},
		{"no times", model.Status{Phase: model.PhasePaused}, t0, ""},
		{"degraded", model.Status{Phase: model.PhaseDegraded, StepStartedAt: at(0)}, t0, ""},
	}
	for _, tt := range tests {
		if got := pauseProgress(model.View{Status: tt.status}, step, tt.now); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := pauseProgress(model.View{Status: model.Status{Phase: model.PhasePaused, StepStartedAt: at(0)}}, spec.Step{Pause: &spec.PauseStep{}}, t0); got != "" {
		t.Errorf("an indefinite pause has a bar: %q", got)
	}
}

func TestLiveView(t *testing.T) {
	var b strings.Builder
	pipe := &liveView{w: &b}
	for _, f := range []string{"a\nb\n", "a\nb\n", "c\n"} {
		if err := pipe.draw(f); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.String(); got != "a\nb\n\nc\n" {
		t.Errorf("pipe: %q", got)
	}

	b.Reset()
	tty := &liveView{w: &b, tty: true}
	for _, f := range []string{"a\nb\n", "a\nb\n", "c\n"} {
		if err := tty.draw(f); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := b.String(), "\x1b[2Ka\n\x1b[2Kb\n\x1b[J\x1b[2A\r\x1b[2Kc\n\x1b[J"; got != want {
		t.Errorf("tty: %q\nwant %q", got, want)
	}
}

func TestFitLineCutsWhatWouldWrap(t *testing.T) {
	for _, tc := range []struct {
		line  string
		width int
		want  string
	}{
		{"short\n", 80, "short\n"},
		{"abcdef\n", 6, "abcd…\n"},
		{"abcde\n", 6, "abcde\n"},
		{"✔ 1. setWeight 20%\n", 10, "✔ 1. set…\n"},
		{"no newline at all", 5, "no …"},
		{"anything\n", 0, "anything\n"},
	} {
		if got := fitLine(tc.line, tc.width); got != tc.want {
			t.Errorf("fitLine(%q, %d) = %q, want %q", tc.line, tc.width, got, tc.want)
		}
	}
}

// TestViewShowsEachReplicasWeight: with several replicas the view lists
// the weight each one's proxy routes with, and says why nothing advances.
func TestViewShowsEachReplicasWeight(t *testing.T) {
	v := model.View{Metadata: spec.Metadata{Name: "shop"}, Status: model.Status{Phase: model.PhaseProgressing, Weight: 20, ObservedWeight: 20,
		StableVersion: "v1", CanaryVersion: "v2",
		Replicas:   []model.ReplicaWeight{{Replica: "r1", ObservedWeight: 20, Current: true}, {Replica: "r2", ObservedWeight: 10}},
		Controller: "no replica leads right now"}}
	var b strings.Builder
	if err := writeRolloutView(&b, v, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Replicas:", "r1 20%, r2 10% (behind)", "Controller:", "no replica leads right now"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("view lacks %q:\n%s", want, b.String())
		}
	}
}
