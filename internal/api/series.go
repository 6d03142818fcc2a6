package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
)

// Bounds of the step of GET /api/v1/rollouts/{name}/series. The telemetry
// keeps one snapshot a second, so a shorter step has nothing to show.
const (
	DefaultSeriesStep = time.Second
	MinSeriesStep     = time.Second
	MaxSeriesStep     = time.Hour
)

// seriesHandler serves GET /api/v1/rollouts/{name}/series?since=&step=:
// since is an RFC 3339 time (points after it; empty or absent: as far back
// as the telemetry reaches) and step a Go duration from 1s to 1h (default
// 1s). A client polling for new points passes the previous answer's "to"
// as since.
func (s *server) seriesHandler(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	for _, key := range []string{"since", "step"} {
		if len(q[key]) > 1 {
			s.writeError(w, r, &httpError{status: http.StatusBadRequest, field: key,
				msg: fmt.Sprintf("query parameter %q is given %d times: give it once", key, len(q[key]))})
			return
		}
	}
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			s.writeError(w, r, &httpError{status: http.StatusBadRequest, field: "since",
				msg: fmt.Sprintf("query parameter \"since\" must be an RFC 3339 time such as 2026-03-01T12:00:00Z, not %q", v)})
			return
		}
		since = t
	}
	step := DefaultSeriesStep
	if v := q.Get("step"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < MinSeriesStep || d > MaxSeriesStep {
			s.writeError(w, r, &httpError{status: http.StatusBadRequest, field: "step",
				msg: fmt.Sprintf("query parameter \"step\" must be a duration from %s to %s such as 5s, not %q", MinSeriesStep, MaxSeriesStep, v)})
			return
		}
		step = d
	}
	series, err := s.series(r.Context(), name, since, step)
	if err != nil {
		s.writeError(w, r, describe(name, err))
		return
	}
	if series.Versions == nil {
		series.Versions = []model.VersionSeries{}
	}
	if series.Weight == nil {
		series.Weight = []model.WeightPoint{}
	}
	for i := range series.Versions {
		if series.Versions[i].Points == nil {
			series.Versions[i].Points = []model.SeriesPoint{}
		}
	}
	writeJSON(w, http.StatusOK, series)
}
