package web

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// weightEventWindow is how many of a rollout's newest events Series reads
// to draw the weight over time. The telemetry reaches back ten minutes, in
// which a rollout emits a few dozen events at most; when the window does
// not reach back to the series start, the first weight change found says
// the weight before it ("from").
const weightEventWindow = 500

// SeriesSource builds the per-version time series of the dashboard's
// charts (model.Series) from the proxy's telemetry and the rollout's event
// log. It holds no state; it is safe for concurrent use.
type SeriesSource struct {
	Commands  model.Commands
	Telemetry *telemetry.Registry
}

// Series returns rollout name's traffic per version in steps of step from
// since (zero: as far back as the telemetry reaches) and the canary weight
// over the same time. An unknown rollout is the Commands' not-found error.
func (s SeriesSource) Series(ctx context.Context, name string, since time.Time, step time.Duration) (model.Series, error) {
	v, err := s.Commands.Get(ctx, name)
	if err != nil {
		return model.Series{}, err
	}
	ts := s.Telemetry.Rollout(name).Series(since, step)
	out := model.Series{
		Rollout:        name,
		Revision:       v.Status.Revision,
		TelemetryStart: ts.RevisionStart.UTC(),
		From:           ts.From,
		To:             ts.To,
		Step:           spec.Duration(ts.Step),
		Retention:      spec.Duration(ts.Retention),
		Versions:       make([]model.VersionSeries, 0, len(ts.Versions)),
	}
	// Truncated: the retention, not the caller's since, cut the start off.
	wantFrom := ts.RevisionStart
	if since.After(wantFrom) {
		wantFrom = since
	}
	out.Truncated = ts.From.Sub(wantFrom) >= ts.Step
	for _, vs := range ts.Versions {
		out.Versions = append(out.Versions, versionSeries(vs))
	}
	slices.SortStableFunc(out.Versions, func(a, b model.VersionSeries) int { return roleOrder(a.Role) - roleOrder(b.Role) })

	start := v.Status.LastEventSeq
	if start > weightEventWindow {
		start -= weightEventWindow
	} else {
		start = 0
	}
	events, err := s.Commands.Events(ctx, name, start, weightEventWindow)
	if err != nil {
		return model.Series{}, err
	}
	out.Weight = WeightSteps(events, v.Status, out.From, out.To)
	return out, nil
}

func roleOrder(r spec.Role) int {
	switch r {
	case spec.RoleStable:
		return 0
	case spec.RoleCanary:
		return 1
	}
	return 2
}

func versionSeries(vs telemetry.VersionSeries) model.VersionSeries {
	out := model.VersionSeries{Role: vs.Role, Version: vs.Version, Points: make([]model.SeriesPoint, len(vs.Points))}
	for i, p := range vs.Points {
		mp := model.SeriesPoint{T: p.End, Requests: p.Requests, Errors: p.Errors, RPS: round(p.RPS, 3)}
		if p.Requests > 0 {
			mp.ErrorRate = ptr(round(p.ErrorRate, 6))
			mp.P50, mp.P90, mp.P99 = ptr(round(p.P50, 3)), ptr(round(p.P90, 3)), ptr(round(p.P99, 3))
		}
		out.Points[i] = mp
	}
	return out
}

// WeightSteps is the canary weight of the status's revision as a step
// function over [from, to], read from events (oldest first): a revision
// starts at 0, rollout-weight-changed sets its details' "to" (or "weight"),
// an abort or a completion returns to 0 as the status does. The first point
// is the weight at from; when the events do not reach back that far, the
// "from" of the first weight change found, else the status weight. When the
// last event disagrees with the status (events missing), the status weight
// is added at to: the status is the truth.
func WeightSteps(events []model.Event, st model.Status, from, to time.Time) []model.WeightPoint {
	var steps []model.WeightPoint // every change of the revision, in order
	var before *float64           // the weight before the first change found
	for _, e := range events {
		if e.Revision != st.Revision {
			continue
		}
		switch e.Type {
		case "rollout-started", "rollout-aborted", "rollout-completed":
			steps = append(steps, model.WeightPoint{T: e.Time, Weight: 0, Seq: e.Seq})
		case "rollout-weight-changed":
			w, ok := number(e.Details, "to", "weight")
			if !ok {
				continue
			}
			if len(steps) == 0 {
				if f, ok := number(e.Details, "from", "previousWeight"); ok {
					before = &f
				}
			}
			steps = append(steps, model.WeightPoint{T: e.Time, Weight: w, Seq: e.Seq})
		}
	}
	initial := st.Weight
	switch {
	case len(steps) > 0 && !steps[0].T.After(from):
		initial = 0 // replaced below by the last step at or before from
	case before != nil:
		initial = *before
	}
	out := []model.WeightPoint{{T: from, Weight: initial}}
	for _, p := range steps {
		switch {
		case !p.T.After(from):
			out[0].Weight = p.Weight
		case p.T.After(to):
			// After the series ends: the next poll shows it.
		default:
			if out[len(out)-1].Weight != p.Weight {
				out = append(out, p)
			}
		}
	}
	if last := out[len(out)-1]; last.Weight != st.Weight && len(steps) > 0 && steps[len(steps)-1].Weight != st.Weight {
		out = append(out, model.WeightPoint{T: maxTime(to, last.T), Weight: st.Weight})
	}
	return out
}

// number reads the first of keys that holds a number.
func number(details map[string]any, keys ...string) (float64, bool) {
	for _, k := range keys {
		switch x := details[k].(type) {
		case float64:
			return x, true
		case int:
			return float64(x), true
		case int64:
			return float64(x), true
		}
	}
	return 0, false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func round(x float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(x*p) / p
}

func ptr[T any](v T) *T { return &v }
