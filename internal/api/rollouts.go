package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// RolloutList is the body of GET /api/v1/rollouts.
type RolloutList struct {
	Items []model.View `json:"items"`
}

// AnalysisRunList is the body of GET /api/v1/rollouts/{name}/analysisruns.
type AnalysisRunList struct {
	Items []model.AnalysisRunStatus `json:"items"`
}

// EventList is the body of GET /api/v1/rollouts/{name}/events.
type EventList struct {
	Items []model.Event `json:"items"`
}

// PromoteRequest is the optional body of POST
// /api/v1/rollouts/{name}/promote.
type PromoteRequest struct {
	// Full skips every remaining step and analysis and completes at once.
	Full bool `json:"full"`
}

// UndoRequest is the optional body of POST /api/v1/rollouts/{name}/undo.
type UndoRequest struct {
	// ToRevision returns to that revision's canary instead of the previous
	// stable version; 1 or more when given.
	ToRevision *int64 `json:"toRevision"`
}

// CanaryRequest is the body of PUT /api/v1/rollouts/{name}/canary.
type CanaryRequest struct {
	// Version labels the new canary. Required.
	Version string `json:"version"`
	// Endpoints are its base URLs. At least one.
	Endpoints []string `json:"endpoints"`
}

// emptyRequest is the optional body of commands without parameters: empty
// or {}.
type emptyRequest struct{}

// Paging of GET /api/v1/rollouts/{name}/events.
const (
	DefaultEventLimit = 100
	MaxEventLimit     = 1000
)

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

// applyRollout creates or updates a rollout from its document. The name in
// the path is the one that counts: a document without metadata.name takes
// it, one with another name is rejected.
func (s *server) applyRollout(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var doc spec.Rollout
	if err := decodeJSON(r, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := fillDocument(&doc.APIVersion, &doc.Kind, &doc.Metadata.Name, spec.KindRollout, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := s.cmds.Apply(r.Context(), doc)
	s.respond(w, r, name, v, err)
}

// fillDocument checks the apiVersion, kind and metadata.name of a document
// PUT at a path naming it, filling in those left out.
func fillDocument(apiVersion, kind, docName *string, wantKind, name string) error {
	switch *apiVersion {
	case "":
		*apiVersion = spec.APIVersion
	case spec.APIVersion:
	default:
		return &httpError{status: http.StatusBadRequest, field: "apiVersion",
			msg: fmt.Sprintf("unsupported apiVersion %q: use %s (or leave it out)", *apiVersion, spec.APIVersion)}
	}
	switch *kind {
	case "":
		*kind = wantKind
	case wantKind:
	default:
		return &httpError{status: http.StatusBadRequest, field: "kind",
			msg: fmt.Sprintf("kind must be %s at this path, not %q", wantKind, *kind)}
	}
	switch *docName {
	case "":
		*docName = name
	case name:
	default:
		return &httpError{status: http.StatusBadRequest, field: "metadata.name",
			msg: fmt.Sprintf("metadata.name %q does not match the name %q in the path: use the same name (or leave metadata.name out)", *docName, name)}
	}
	return nil
}

// command serves a POST of a rollout command whose body is empty or {}.
func (s *server) command(do func(ctx context.Context, name string) (model.View, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := decodeOptionalJSON(r, &emptyRequest{}); err != nil {
			s.writeError(w, r, err)
			return
		}
		name := r.PathValue("name")
		v, err := do(r.Context(), name)
		s.respond(w, r, name, v, err)
	}
}

// respond writes the View a command on rollout name returned, or its error.
func (s *server) respond(w http.ResponseWriter, r *http.Request, name string, v model.View, err error) {
	if err != nil {
		s.writeError(w, r, describe(name, err))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *server) promote(w http.ResponseWriter, r *http.Request) {
	var req PromoteRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	v, err := s.cmds.Promote(r.Context(), name, req.Full)
	s.respond(w, r, name, v, err)
}

func (s *server) undo(w http.ResponseWriter, r *http.Request) {
	var req UndoRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	var to int64
	if req.ToRevision != nil {
		if to = *req.ToRevision; to < 1 {
			s.writeError(w, r, &httpError{status: http.StatusBadRequest, field: "toRevision",
				msg: fmt.Sprintf("toRevision must be a revision number, 1 or more, not %d; leave it out to return to the previous stable version", to)})
			return
		}
	}
	name := r.PathValue("name")
	v, err := s.cmds.Undo(r.Context(), name, to)
	s.respond(w, r, name, v, err)
}

func (s *server) setCanary(w http.ResponseWriter, r *http.Request) {
	var req CanaryRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case strings.TrimSpace(req.Version) == "":
		s.writeError(w, r, &httpError{status: http.StatusBadRequest, field: "version",
			msg: `field "version" is required: send {"version": "v2", "endpoints": ["http://host:port"]}`})
		return
	case len(req.Endpoints) == 0:
		s.writeError(w, r, &httpError{status: http.StatusBadRequest, field: "endpoints",
			msg: `field "endpoints" needs at least one URL: send {"version": "v2", "endpoints": ["http://host:port"]}`})
		return
	}
	name := r.PathValue("name")
	v, err := s.cmds.SetCanary(r.Context(), name, spec.VersionSpec{Version: req.Version, Endpoints: req.Endpoints})
	s.respond(w, r, name, v, err)
}

func (s *server) analysisRuns(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	runs, err := s.cmds.AnalysisRuns(r.Context(), name)
	if err != nil {
		s.writeError(w, r, describe(name, err))
		return
	}
	if runs == nil {
		runs = []model.AnalysisRunStatus{}
	}
	writeJSON(w, http.StatusOK, AnalysisRunList{Items: runs})
}

func (s *server) events(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	after, err := uintParam(q, "after", 0)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := uintParam(q, "limit", DefaultEventLimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if limit < 1 || limit > MaxEventLimit {
		s.writeError(w, r, &httpError{status: http.StatusBadRequest, field: "limit",
			msg: fmt.Sprintf("limit must be between 1 and %d, not %d; page with after=<last seq>", MaxEventLimit, limit)})
		return
	}
	events, err := s.cmds.Events(r.Context(), name, after, int(limit))
	if err != nil {
		s.writeError(w, r, describe(name, err))
		return
	}
	if events == nil {
		events = []model.Event{}
	}
	writeJSON(w, http.StatusOK, EventList{Items: events})
}

// uintParam reads an optional non-negative integer query parameter.
func uintParam(q url.Values, key string, def uint64) (uint64, error) {
	vals, ok := q[key]
	switch {
	case !ok:
		return def, nil
	case len(vals) > 1:
		return 0, &httpError{status: http.StatusBadRequest, field: key, msg: fmt.Sprintf("query parameter %q is given %d times: give it once", key, len(vals))}
	}
	n, err := strconv.ParseUint(vals[0], 10, 64)
	if err != nil {
		return 0, &httpError{status: http.StatusBadRequest, field: key,
			msg: fmt.Sprintf("query parameter %q must be a whole number from 0, not %q", key, vals[0])}
	}
	return n, nil
}

// describe gives a bare sentinel error from the service layer a subject, so
// that the client reads `rollout "x" not found` rather than `not found`.
// Errors the service already described are returned unchanged.
func describe(name string, err error) error { return describeObject("rollout", name, err) }

// describeObject is describe for any kind of object ("analysis template").
func describeObject(kind, name string, err error) error {
	if err == model.ErrNotFound { //nolint:errorlint // only the bare sentinel needs a subject
		return fmt.Errorf("%s %q %w", kind, name, err)
	}
	for _, sentinel := range []error{model.ErrNotFound, model.ErrConflict, model.ErrInvalid} {
		if errors.Is(err, sentinel) && err != sentinel { //nolint:errorlint
			return err
		}
	}
	return fmt.Errorf("%s %q: %w", kind, name, err)
}
