package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// ErrorBody is the JSON body of every error response:
// {"error": "...", "field": "..."}. Field names the offending request field
// (a JSON key or a spec path) when there is one. Details lists every field
// problem when a document has several.
type ErrorBody struct {
	Error   string        `json:"error"`
	Field   string        `json:"field,omitempty"`
	Details []FieldDetail `json:"details,omitempty"`
}

// FieldDetail is one field problem of a rejected document.
type FieldDetail struct {
	Field string `json:"field"`
	Error string `json:"error"`
}

// httpError is an error the API itself raises with a known status, such as
// a malformed body or a missing token.
type httpError struct {
	status int
	msg    string
	field  string
}

func (e *httpError) Error() string { return e.msg }

// errPanic stands for a recovered panic; it maps to a generic 500.
var errPanic = errors.New("handler panicked")

// errorResponse is the one place that maps an error to a status code and a
// body. Internal errors get a generic message so that nothing about the
// process leaks; the caller logs the real error.
func errorResponse(err error) (int, ErrorBody) {
	var (
		he  *httpError
		mbe *http.MaxBytesError
		fes spec.FieldErrors
		fe  spec.FieldError
	)
	switch {
	case errors.As(err, &he):
		return he.status, ErrorBody{Error: he.msg, Field: he.field}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, ErrorBody{Error: "request body is larger than the limit of " + formatBytes(mbe.Limit)}
	case errors.As(err, &fes):
		return http.StatusBadRequest, fieldErrorsBody(fes)
	case errors.As(err, &fe):
		return http.StatusBadRequest, ErrorBody{Error: fe.Error(), Field: fe.Path}
	case errors.Is(err, model.ErrNotFound):
		return http.StatusNotFound, ErrorBody{Error: err.Error()}
	case errors.Is(err, model.ErrConflict):
		return http.StatusConflict, ErrorBody{Error: err.Error()}
	case errors.Is(err, model.ErrInvalid):
		return http.StatusBadRequest, ErrorBody{Error: err.Error()}
	case errors.Is(err, model.ErrUnavailable):
		return http.StatusServiceUnavailable, ErrorBody{Error: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, ErrorBody{Error: "the server timed out handling the request; try again"}
	default:
		return http.StatusInternalServerError, ErrorBody{Error: "internal server error; the server log has the details"}
	}
}

func fieldErrorsBody(fes spec.FieldErrors) ErrorBody {
	if len(fes) == 1 {
		return ErrorBody{Error: fes[0].Error(), Field: fes[0].Path}
	}
	b := ErrorBody{Error: strings.ReplaceAll(fes.Error(), "\n", "; ")}
	if len(fes) > 0 {
		b.Field = fes[0].Path
	}
	for _, fe := range fes {
		b.Details = append(b.Details, FieldDetail{Field: fe.Path, Error: fe.Msg})
	}
	return b
}

// writeError writes err as a JSON error and logs server-side failures.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorResponse(err)
	switch {
	case status >= 500 && errors.Is(err, context.Canceled):
		// The client went away; nobody will read the answer.
		s.log.Debug("admin API request canceled", "method", r.Method, "path", r.URL.Path)
	case status >= 500 && status != http.StatusServiceUnavailable:
		s.log.Error("admin API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="coalmine"`)
	}
	writeJSON(w, status, body)
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal server error: cannot encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
}
