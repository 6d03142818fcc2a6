// Package model holds the objects the admin API exchanges: a rollout's
// view (its spec and status), the status record, and the errors commands
// return. It depends on spec only, so the API client and the CLI stay free
// of the server's packages.
package model

import (
	"context"
	"errors"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Phase is where a rollout stands.
type Phase string

// Phases (SPEC §4).
const (
	PhaseHealthy     Phase = "Healthy"
	PhaseProgressing Phase = "Progressing"
	PhasePaused      Phase = "Paused"
	PhaseDegraded    Phase = "Degraded"
)

// PauseReason says why a rollout is paused.
type PauseReason string

// Pause reasons (SPEC §4).
const (
	PauseNone         PauseReason = ""
	PauseStep         PauseReason = "PauseStep"
	PauseInconclusive PauseReason = "Inconclusive"
	PauseManual       PauseReason = "Manual"
	PauseNoData       PauseReason = "NoData"
)

// Status is the observed state of a rollout, as returned by the API
// (`status` of SPEC §6.2).
type Status struct {
	Phase       Phase       `json:"phase"`
	Revision    int64       `json:"revision"`
	StepIndex   int         `json:"stepIndex"`
	PauseReason PauseReason `json:"pauseReason,omitempty"`
	// Weight is the canary percentage the controller applied.
	Weight float64 `json:"weight"`
	// ObservedWeight is the canary percentage the data plane routes with;
	// it is 0 while the canary has no healthy endpoint.
	ObservedWeight float64 `json:"observedWeight"`
	StableVersion  string  `json:"stableVersion"`
	CanaryVersion  string  `json:"canaryVersion,omitempty"`
	Message        string  `json:"message,omitempty"`
	// AnalysisRuns is filled in by the analysis issue; always present.
	AnalysisRuns []AnalysisRunStatus `json:"analysisRuns"`
	// Endpoints reports the health of every upstream endpoint.
	Endpoints []EndpointStatus `json:"endpoints,omitempty"`
	UpdatedAt time.Time        `json:"updatedAt"`
}

// AnalysisRunStatus summarises one analysis run.
type AnalysisRunStatus struct {
	ID       string `json:"id"`
	Template string `json:"template"`
	Phase    string `json:"phase"`
}

// EndpointStatus is one upstream endpoint's health.
type EndpointStatus struct {
	Role     spec.Role `json:"role"`
	Version  string    `json:"version"`
	URL      string    `json:"url"`
	Healthy  bool      `json:"healthy"`
	Ejected  bool      `json:"ejected,omitempty"`
	InFlight int64     `json:"inFlight"`
}

// View is a rollout as the API returns it: the document as written in YAML
// (apiVersion, kind, metadata, spec) plus its status.
type View struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Metadata   spec.Metadata    `json:"metadata"`
	Spec       spec.RolloutSpec `json:"spec"`
	Status     Status           `json:"status"`
}

// Sentinel errors the API maps to status codes in one place.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
)

// Commands is what the API, the CLI and the dashboard may ask of rollouts.
// Every implementation serializes commands per rollout.
type Commands interface {
	List(ctx context.Context) ([]View, error)
	Get(ctx context.Context, name string) (View, error)
	// SetWeight overrides the canary weight by hand.
	SetWeight(ctx context.Context, name string, w spec.Weight) (View, error)
}
