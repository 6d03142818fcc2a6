package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// RolloutList is the body of GET /api/v1/rollouts.
type RolloutList struct {
	Items []model.View `json:"items"`
}

// WeightRequest is the body of PUT /api/v1/rollouts/{name}/weight.
type WeightRequest struct {
	// Percent is the canary weight, 0..100 with at most two decimals.
	Percent *float64 `json:"percent"`
}

func (s *server) listRollouts(w http.ResponseWriter, r *http.Request) {
	views, err := s.cmds.List(r.Context())
	if err != nil {
		s.writeError(w, r, fmt.Errorf("list rollouts: %w", err))
		return
	}
	if views == nil {
		views = []model.View{} // "items": [] rather than null
	}
	writeJSON(w, http.StatusOK, RolloutList{Items: views})
}

func (s *server) getRollout(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, err := s.cmds.Get(r.Context(), name)
	if err != nil {
		s.writeError(w, r, describe(name, err))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *server) setWeight(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req WeightRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Percent == nil {
		s.writeError(w, r, &httpError{status: http.StatusBadRequest, field: "percent",
			msg: `field "percent" is required: send {"percent": 2.5}`})
		return
	}
	weight, err := spec.WeightFromPercent(*req.Percent)
	if err != nil {
		s.writeError(w, r, &httpError{status: http.StatusBadRequest, field: "percent", msg: err.Error()})
		return
	}
	v, err := s.cmds.SetWeight(r.Context(), name, weight)
	if err != nil {
		s.writeError(w, r, describe(name, err))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// describe gives a bare sentinel error from the service layer a subject, so
// that the client reads `rollout "x" not found` rather than `not found`.
// Errors the service already described are returned unchanged.
func describe(name string, err error) error {
	if err == model.ErrNotFound { //nolint:errorlint // only the bare sentinel needs a subject
		return fmt.Errorf("rollout %q %w", name, err)
	}
	for _, sentinel := range []error{model.ErrNotFound, model.ErrConflict, model.ErrInvalid} {
		if errors.Is(err, sentinel) && err != sentinel { //nolint:errorlint
			return err
		}
	}
	return fmt.Errorf("rollout %q: %w", name, err)
}
