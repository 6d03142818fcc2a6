package spec

import (
	"fmt"
	"strings"
)

// FieldError is one validation problem at a field path such as
// "spec.strategy.canary.steps[2].setWeight". internal/config turns the path
// into a file:line:column position.
type FieldError struct {
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// FieldErrors collects every problem of a document, so a user fixes them all
// in one pass instead of one per run.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Add appends a problem at path.
func (es *FieldErrors) Add(path, format string, args ...any) {
	*es = append(*es, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Err returns nil when there are no problems, so callers can return it directly.
func (es FieldErrors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
