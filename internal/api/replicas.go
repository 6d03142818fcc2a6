package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
)

// listReplicas serves GET /api/v1/replicas: a JSON array of model.Replica,
// [] when none is registered. The list comes from the store alone, so a
// failure is the store's and answers 503: asking again, or another
// replica, may work.
func (s *server) listReplicas(w http.ResponseWriter, r *http.Request) {
	list, err := s.replicas(r.Context())
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			s.writeError(w, r, err)
			return
		}
		if ok, suppressed := s.storeLog.allow(time.Now()); ok {
			s.log.Warn("cannot list the replicas", "err", err, "suppressedSinceLast", suppressed)
		}
		s.writeError(w, r, &httpError{status: http.StatusServiceUnavailable,
			msg: "cannot read the replica registry from the store; try again, and see the server log if it persists"})
		return
	}
	if list == nil {
		list = []model.Replica{}
	}
	writeJSON(w, http.StatusOK, list)
}
