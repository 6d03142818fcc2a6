package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// Errors callers branch on, with errors.Is. An *APIError matches the one
// for its status code; an *UnreachableError matches ErrUnreachable.
var (
	// ErrUnreachable: no answer from the server (connection refused, DNS,
	// TLS, timeout).
	ErrUnreachable = errors.New("cannot reach the server")
	// ErrUnauthorized: 401 or 403, a missing, wrong or insufficient token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound: 404.
	ErrNotFound = errors.New("not found")
	// ErrConflict: 409, the command does not apply to the rollout's state.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: 400, 413 or 422, the request was rejected as invalid.
	ErrInvalid = errors.New("invalid request")
)

// APIError is a non-2xx answer from the server.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the server's "error" text, or a summary of a non-JSON body.
	Message string
	// Field names the offending request field, when the server said.
	Field string
	// Details lists every field problem of a rejected document (400), when
	// the server found more than one.
	Details []FieldDetail
}

// FieldDetail is one field problem of a document the server rejected.
type FieldDetail struct {
	Field string `json:"field"`
	Error string `json:"error"`
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Field != "" && !strings.Contains(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	return msg
}

// Is makes errors.Is(err, ErrNotFound) and friends work on an *APIError.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrInvalid:
		return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge ||
			e.Status == http.StatusUnprocessableEntity
	}
	return false
}

func newAPIError(res *http.Response, data []byte) *APIError {
	var body struct {
		Error   string        `json:"error"`
		Field   string        `json:"field"`
		Details []FieldDetail `json:"details"`
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") &&
		json.Unmarshal(data, &body) == nil && body.Error != "" {
		return &APIError{Status: res.StatusCode, Message: body.Error, Field: body.Field, Details: body.Details}
	}
	// Not coalmine's error shape: a proxy in between, or another server.
	msg := fmt.Sprintf("the server answered %d %s", res.StatusCode, http.StatusText(res.StatusCode))
	if line := firstLine(string(data)); line != "" {
		msg += ": " + line
	}
	return &APIError{Status: res.StatusCode, Message: msg}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// UnreachableError says that no answer came from the server. It matches
// ErrUnreachable and unwraps to the transport error.
type UnreachableError struct {
	// Server is the base URL that was tried.
	Server string
	// Err is the transport error.
	Err     error
	timeout time.Duration
}

func (e *UnreachableError) Error() string {
	return "cannot reach coalmine at " + e.Server + ": " + e.Reason()
}

// Reason is a short description of why, such as "connection refused".
func (e *UnreachableError) Reason() string {
	var dns *net.DNSError
	switch {
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(e.Err, &dns) && dns.IsNotFound:
		return fmt.Sprintf("no such host %q", dns.Name)
	case errors.Is(e.Err, os.ErrDeadlineExceeded) || isTimeout(e.Err):
		if e.timeout > 0 {
			return "no answer within " + e.timeout.String()
		}
		return "timed out"
	}
	// Drop url.Error's `Get "http://...":` prefix; Server already says where.
	var ue interface{ Unwrap() error }
	err := e.Err
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	return err.Error()
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnreachable) true.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
