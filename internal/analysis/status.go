package analysis

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
)

// Status converts a run to its API shape (SPEC §6.2). Revision is left
// for the caller, which knows it.
func Status(r Run) model.AnalysisRunStatus {
	s := model.AnalysisRunStatus{
		ID:         r.ID,
		Template:   strings.Join(r.Templates, ","),
		Phase:      string(r.Phase),
		Kind:       r.Kind,
		Step:       r.Step,
		Message:    r.Message,
		StartedAt:  timePtr(r.StartedAt),
		FinishedAt: timePtr(r.FinishedAt),
		Score:      cloneScore(r.Score),
	}
	for _, mr := range r.Metrics {
		ms := model.MetricStatus{
			Name:              mr.Name,
			Phase:             string(mr.Phase),
			DryRun:            mr.DryRun,
			Count:             mr.Count,
			Successful:        mr.Successful,
			Failed:            mr.Failed,
			Inconclusive:      mr.Inconclusive,
			Error:             mr.Error,
			NoData:            mr.NoData,
			ConsecutiveErrors: mr.ConsecutiveErrors,
			Message:           mr.Message,
		}
		for _, m := range mr.Measurements {
			st := model.MeasurementStatus{
				Phase:      string(m.Phase),
				StartedAt:  m.StartedAt,
				FinishedAt: m.FinishedAt,
				Message:    m.Message,
			}
			if len(m.Value) > 0 {
				var v any
				if json.Unmarshal(m.Value, &v) == nil {
					st.Value = v
				}
			}
			if m.Evidence != nil {
				e := *m.Evidence
				st.Evidence = &e
			}
			ms.Measurements = append(ms.Measurements, st)
		}
		s.Metrics = append(s.Metrics, ms)
	}
	return s
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Event types of SPEC §6.4 that analysis runs announce.
const (
	EventStarted      = "analysis-started"
	EventSuccessful   = "analysis-successful"
	EventFailed       = "analysis-failed"
	EventInconclusive = "analysis-inconclusive"
	EventError        = "analysis-error"
	EventNoData       = "analysis-nodata"
)

// Event is the event type a run announces when its phase goes from prev
// to next, or "" when the change announces nothing (no change, or a run
// going back to Running, which never happens). A new run (prev "")
// announces analysis-started.
//
// A run only becomes NoData when it is terminated while waiting for data;
// the controller also announces analysis-nodata, with Event(PhaseRunning,
// PhaseNoData), when it pauses a rollout because NoDataSince is older than
// progressDeadline, which is the moment "no data" starts to matter.
func Event(prev, next Phase) string {
	if prev == next {
		return ""
	}
	switch next {
	case PhaseRunning:
		if prev == "" {
			return EventStarted
		}
	case PhaseSuccessful:
		return EventSuccessful
	case PhaseFailed:
		return EventFailed
	case PhaseInconclusive:
		return EventInconclusive
	case PhaseError:
		return EventError
	case PhaseNoData:
		return EventNoData
	}
	return ""
}
