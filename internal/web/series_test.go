package web_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
	"github.com/coalmine-dev/coalmine/internal/web"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sec(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func ev(seq uint64, at int, rev int64, typ string, details map[string]any) model.Event {
	return model.Event{Seq: seq, Time: sec(at), Rollout: "shop", Revision: rev, Type: typ, Details: details}
}

func TestWeightSteps(t *testing.T) {
	events := []model.Event{
		ev(1, 0, 1, "rollout-started", nil),
		ev(2, 1, 1, "rollout-weight-changed", map[string]any{"from": 0.0, "to": 10.0}),
		ev(3, 2, 1, "rollout-completed", nil),
		ev(4, 10, 2, "rollout-started", nil),
		ev(5, 11, 2, "rollout-weight-changed", map[string]any{"from": 0.0, "to": 20.0, "step": 0}),
		ev(6, 12, 2, "rollout-paused", map[string]any{"step": 1}),
		ev(7, 30, 2, "rollout-weight-changed", map[string]any{"from": 20.0, "to": 50.0, "manual": true}),
		ev(8, 40, 2, "rollout-aborted", nil),
	}
	st := model.Status{Revision: 2, Weight: 0}
	wp := func(at int, w float64, seq uint64) model.WeightPoint {
		return model.WeightPoint{T: sec(at), Weight: w, Seq: seq}
	}
	tests := []struct {
		name     string
		events   []model.Event
		status   model.Status
		from, to time.Time
		want     []model.WeightPoint
	}{
		{"the whole revision", events, st, sec(10), sec(60),
			[]model.WeightPoint{wp(10, 0, 0), wp(11, 20, 5), wp(30, 50, 7), wp(40, 0, 8)}},
		{"from inside the revision: the weight then", events, st, sec(20), sec(60),
			[]model.WeightPoint{wp(20, 20, 0), wp(30, 50, 7), wp(40, 0, 8)}},
		{"changes after to wait for the next poll", events, model.Status{Revision: 2, Weight: 50}, sec(20), sec(35),
			[]model.WeightPoint{wp(20, 20, 0), wp(30, 50, 7)}},
		{"events that do not reach back: the first change's from", events[6:7], model.Status{Revision: 2, Weight: 50}, sec(20), sec(60),
			[]model.WeightPoint{wp(20, 20, 0), wp(30, 50, 7)}},
		{"no events: the status weight", nil, model.Status{Revision: 2, Weight: 5}, sec(20), sec(60),
			[]model.WeightPoint{wp(20, 5, 0)}},
		{"the fake's keys (weight, previousWeight)", []model.Event{
			ev(9, 5, 3, "rollout-weight-changed", map[string]any{"weight": 1, "previousWeight": 0})},
			model.Status{Revision: 3, Weight: 1}, sec(0), sec(60),
			[]model.WeightPoint{wp(0, 0, 0), wp(5, 1, 9)}},
		{"events missing at the end: the status is the truth", events[:5], model.Status{Revision: 2, Weight: 75}, sec(10), sec(60),
			[]model.WeightPoint{wp(10, 0, 0), wp(11, 20, 5), wp(60, 75, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := web.WeightSteps(tt.events, tt.status, tt.from, tt.to)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

// commands is the part of model.Commands that SeriesSource uses.
type commands struct {
	model.Commands
	view   model.View
	events []model.Event
	after  uint64
}

func (c *commands) Get(_ context.Context, name string) (model.View, error) {
	if name != c.view.Metadata.Name {
		return model.View{}, model.ErrNotFound
	}
	return c.view, nil
}

func (c *commands) Events(_ context.Context, name string, after uint64, limit int) ([]model.Event, error) {
	c.after = after
	var out []model.Event
	for _, e := range c.events {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func TestSeriesSource(t *testing.T) {
	now := sec(0)
	reg := telemetry.NewRegistry(telemetry.Options{Now: func() time.Time { return now }})
	rs := reg.Rollout("shop")
	now = sec(0).Add(200 * time.Millisecond)
	rs.StartRevision(2)
	canary := rs.Version(spec.RoleCanary, "v2") // created first: sorted after stable
	stable := rs.Version(spec.RoleStable, "v1")
	for k := 1; k <= 4; k++ {
		stable.Observe(200, 5*time.Millisecond)
		stable.Observe(503, 5*time.Millisecond)
		if k == 2 {
			canary.Observe(200, 20*time.Millisecond)
		}
		now = sec(k).Add(200 * time.Millisecond)
		reg.Tick(now)
	}

	cmds := &commands{
		view: model.View{Metadata: spec.Metadata{Name: "shop"}, Status: model.Status{Revision: 2, Weight: 20, LastEventSeq: 900}},
		events: []model.Event{
			ev(850, 0, 2, "rollout-started", nil),
			ev(851, 0, 2, "rollout-weight-changed", map[string]any{"from": 0.0, "to": 20.0}),
		},
	}
	src := web.SeriesSource{Commands: cmds, Telemetry: reg}
	s, err := src.Series(context.Background(), "shop", time.Time{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if cmds.after != 400 {
		t.Errorf("read events after %d, want the newest 500 (after 400)", cmds.after)
	}
	if s.Rollout != "shop" || s.Revision != 2 || !s.From.Equal(sec(1)) || !s.To.Equal(sec(4)) || s.Step != spec.Duration(time.Second) ||
		s.Retention != spec.Duration(telemetry.DefaultWindowRetention) || s.Truncated {
		t.Errorf("series header %+v", s)
	}
	if !s.TelemetryStart.Equal(sec(0).Add(200 * time.Millisecond)) {
		t.Errorf("telemetry start %s", s.TelemetryStart)
	}
	if len(s.Versions) != 2 || s.Versions[0].Version != "v1" || s.Versions[1].Version != "v2" {
		t.Fatalf("versions %+v, want stable v1 then canary v2", s.Versions)
	}
	st := s.Versions[0].Points
	if len(st) != 3 {
		t.Fatalf("stable points %+v, want 3", st)
	}
	for _, p := range st {
		if p.Requests != 2 || p.Errors != 1 || p.RPS != 2 || p.ErrorRate == nil || *p.ErrorRate != 0.5 || p.P50 == nil || *p.P50 < 4.9 || *p.P50 > 5.1 {
			t.Errorf("stable point %s", fmtPoint(p))
		}
	}
	cn := s.Versions[1].Points
	// The canary's one request (before the tick at 2.2s) shows in the step
	// ending at 3s; the others have no data: nulls, not zeros.
	if cn[1].Requests != 1 || cn[1].P99 == nil || cn[0].ErrorRate != nil || cn[0].P50 != nil || cn[2].P99 != nil {
		t.Errorf("canary points %s, %s, %s", fmtPoint(cn[0]), fmtPoint(cn[1]), fmtPoint(cn[2]))
	}
	want := []model.WeightPoint{{T: sec(1), Weight: 20}}
	if !reflect.DeepEqual(s.Weight, want) {
		t.Errorf("weight %v, want %v", s.Weight, want)
	}

	// Since the previous "to": no new step yet.
	s, err = src.Series(context.Background(), "shop", sec(4), time.Second)
	if err != nil || len(s.Versions[0].Points) != 0 || !s.From.Equal(sec(4)) {
		t.Errorf("polling at the end: %v, from %s, %d points", err, s.From, len(s.Versions[0].Points))
	}

	if _, err := src.Series(context.Background(), "nope", time.Time{}, time.Second); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("unknown rollout: %v, want ErrNotFound", err)
	}
}

func TestSeriesSourceSaysWhenRetentionCutsTheStart(t *testing.T) {
	now := sec(0)
	reg := telemetry.NewRegistry(telemetry.Options{Now: func() time.Time { return now }, WindowRetention: 5 * time.Second})
	rs := reg.Rollout("shop")
	rs.StartRevision(1)
	rs.Version(spec.RoleStable, "v1")
	for k := 1; k <= 20; k++ {
		now = sec(k)
		reg.Tick(now)
	}
	cmds := &commands{view: model.View{Metadata: spec.Metadata{Name: "shop"}, Status: model.Status{Revision: 1}}}
	s, err := web.SeriesSource{Commands: cmds, Telemetry: reg}.Series(context.Background(), "shop", time.Time{}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Truncated || !s.From.Equal(sec(15)) || len(s.Versions[0].Points) != 5 {
		t.Errorf("truncated %v from %s with %d points; want true, 15s, 5", s.Truncated, s.From, len(s.Versions[0].Points))
	}
	s, _ = web.SeriesSource{Commands: cmds, Telemetry: reg}.Series(context.Background(), "shop", sec(18), time.Second)
	if s.Truncated {
		t.Errorf("a since inside the retention is not truncated")
	}
}

func fmtPoint(p model.SeriesPoint) string {
	f := func(x *float64) string {
		if x == nil {
			return "null"
		}
		return fmt.Sprint(*x)
	}
	return fmt.Sprintf("{t %s n %d err %d rps %g rate %s p50 %s p99 %s}", p.T.Format(time.TimeOnly), p.Requests, p.Errors, p.RPS, f(p.ErrorRate), f(p.P50), f(p.P99))
}
