// Package provider answers one measurement query of an analysis metric
// (SPEC §5.3): builtin (the proxy's own per-version telemetry), prometheus
// (an instant query), web (JSON over HTTP) and command (a program run on
// the server). Each kind lives in its own
// sub-package and implements Provider; the analysis engine calls them
// through this interface only.
package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// ErrNoData is returned (wrapped) when the query ran fine but found no
// samples: an empty Prometheus vector, a missing or null JSON value, no
// requests in a builtin window. It is an outcome of its own (SPEC §5.2),
// never a failure and never an error.
var ErrNoData = errors.New("no data")

// ErrFailed is returned (wrapped) when the source itself says the canary
// is bad: a command that exited non-zero, as a failed Job is in Argo. The
// measurement is Failed whatever the metric's conditions say, and the
// error's text (what failed, and the command's own explanation) is its
// message. It is never an Error, which would only be retried.
var ErrFailed = errors.New("failed")

// Failed returns an error wrapping ErrFailed whose text is the formatted
// message alone, for the measurement's message.
func Failed(format string, args ...any) error {
	return failure(fmt.Sprintf(format, args...))
}

type failure string

func (f failure) Error() string { return string(f) }
func (f failure) Unwrap() error { return ErrFailed }

// Query is one measurement request. Spec has its {{args.*}} and
// {{rollout.*}} placeholders already substituted.
type Query struct {
	Rollout string
	Metric  string
	Spec    spec.Provider
	// Since is when the analysis run started; a builtin query without a
	// window covers [Since, now].
	Since time.Time
	// Secrets are the run's secret arguments, still {{secret.NAME}} in
	// Spec; the controller reveals them just before calling the provider.
	Secrets map[string]spec.ArgValueFrom
}

// Result is a provider's answer.
type Result struct {
	// Value is what conditions see as `result`: for builtin
	// map[string]any{"canary": S, "stable": S} with S a map of the fields of
	// SPEC §5.3; for prometheus []any of float64; for web the JSON value.
	Value any
	// Versions is set by builtin only: the raw per-version data judges need.
	Versions *Versions
}

// Versions is the builtin provider's per-version data over the query's
// window.
type Versions struct {
	Canary, Stable Sample
}

// Sample is one version's measurements over a window.
type Sample struct {
	Requests int64
	// Errors counts 5xx answers (upstream and coalmine's own).
	Errors int64
	// Span is the time the window covers.
	Span time.Duration
	// Latency is the latency histogram over the window, on a fixed global
	// log-bucket grid (the same for every version and every window), so two
	// samples can be compared bucket by bucket. Buckets are in increasing
	// Key order and only non-empty ones are listed.
	Latency []Bucket
}

// Bucket is one histogram bucket: latencies in (Lower, Upper] seconds,
// represented by Value (the grid's representative point).
type Bucket struct {
	Key          int32
	Lower, Upper float64
	Value        float64
	Count        uint64
}

// Provider runs one query. Implementations are safe for concurrent use and
// honour ctx's deadline.
type Provider interface {
	Query(ctx context.Context, q Query) (Result, error)
}
