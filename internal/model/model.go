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
	// StepCount is the number of steps of the strategy; StepIndex ==
	// StepCount once every step is done.
	StepCount int `json:"stepCount"`
	// StepStartedAt is when the current step began; PauseUntil is the
	// absolute end of a timed pause step (it survives restarts).
	StepStartedAt *time.Time `json:"stepStartedAt,omitempty"`
	PauseUntil    *time.Time `json:"pauseUntil,omitempty"`
	// Aborted is true while the revision is aborted (phase Degraded).
	Aborted bool `json:"aborted,omitempty"`
	// LastEventSeq is the Seq of the rollout's newest event.
	LastEventSeq uint64 `json:"lastEventSeq"`
	// Notifications is the delivery state of each notification channel.
	Notifications []ChannelStatus `json:"notifications,omitempty"`
	// ListenError says why the rollout's listener is not bound (busy
	// address, say); the data plane retries. Empty while it listens.
	ListenError string `json:"listenError,omitempty"`
	// RouterError says why the load balancer that carries the rollout
	// (spec.trafficRouting.router) does not route as its state says:
	// unreachable, refusing the change, or restarted without it. No step
	// completes meanwhile; coalmine retries every second.
	RouterError string `json:"routerError,omitempty"`
	// Unsaved says that the state shown is in effect in the data plane but
	// could not be saved (the store cannot write), and that saving is being
	// retried. A restart before it is saved would lose it.
	Unsaved string `json:"unsaved,omitempty"`
	// Replicas lists, when several replicas share the store, the weight
	// each one's data plane routes with; a setWeight step completes only
	// once every live replica routes with the new weight.
	Replicas []ReplicaWeight `json:"replicas,omitempty"`
	// Controller says why no controller advances the rollout right now
	// (the store is unreachable, no replica leads); empty while one does.
	Controller string    `json:"controller,omitempty"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// ReplicaWeight is what one replica's data plane routes a rollout with.
type ReplicaWeight struct {
	Replica string `json:"replica"`
	// ObservedWeight is the canary percentage it routes with.
	ObservedWeight float64 `json:"observedWeight"`
	// StateVersion is the version of the stored state it routes with;
	// Current is false while that is older than the state that set the
	// weight (the change has not reached it yet).
	StateVersion uint64 `json:"stateVersion"`
	Current      bool   `json:"current"`
}

// AnalysisRunStatus is one analysis run with every metric's measurements
// and the evidence behind each verdict (SPEC §5).
type AnalysisRunStatus struct {
	ID string `json:"id"`
	// Template names the run's templates, comma-separated.
	Template string `json:"template"`
	// Phase is Running, Successful, Failed, Inconclusive, Error or NoData.
	Phase string `json:"phase"`
	// Kind is step (an analysis step) or background.
	Kind       string         `json:"kind,omitempty"`
	Step       int            `json:"step,omitempty"`
	Revision   int64          `json:"revision,omitempty"`
	Message    string         `json:"message,omitempty"`
	StartedAt  *time.Time     `json:"startedAt,omitempty"`
	FinishedAt *time.Time     `json:"finishedAt,omitempty"`
	Metrics    []MetricStatus `json:"metrics,omitempty"`
	// Score is Kayenta's score of the run's judge.method kayenta metrics,
	// present once one of them has been evaluated. It decides the run:
	// Decided says when it did.
	Score *KayentaScore `json:"score,omitempty"`
}

// KayentaScore is Kayenta's weighted score over the latest labels of a
// run's kayenta metrics (each metric its own group, equal weights).
type KayentaScore struct {
	// Score is 0..100; Classification is Pass (≥ PassAt), Marginal
	// (≥ MarginalAt) or Fail.
	Score          float64 `json:"score"`
	Classification string  `json:"classification"`
	PassAt         float64 `json:"passAt"`
	MarginalAt     float64 `json:"marginalAt"`
	// Reason is set when a rule overrode the weighted sum: a critical
	// metric's High or Low, or half or more of the metrics without data.
	Reason string `json:"reason,omitempty"`
	// Labels are the metrics' latest labels by name (Nodata before the
	// first classification).
	Labels map[string]string `json:"labels"`
	// GroupScores are the groups' scores (100 × Pass / labelled metrics)
	// by group name.
	GroupScores map[string]float64 `json:"groupScores,omitempty"`
	// Decided is set when the score ended the run: Failed at or below
	// MarginalAt once every metric had a label, or at the end Failed below
	// PassAt or Successful at or above it.
	Decided bool `json:"decided,omitempty"`
}

// MetricStatus is one metric of an analysis run: its verdict so far, the
// counters of SPEC §5.1, and its latest measurements.
type MetricStatus struct {
	Name              string `json:"name"`
	Phase             string `json:"phase"`
	DryRun            bool   `json:"dryRun,omitempty"`
	Count             int    `json:"count"`
	Successful        int    `json:"successful"`
	Failed            int    `json:"failed"`
	Inconclusive      int    `json:"inconclusive"`
	Error             int    `json:"error"`
	NoData            int    `json:"noData"`
	ConsecutiveErrors int    `json:"consecutiveErrors"`
	Message           string `json:"message,omitempty"`
	// Measurements are the newest measurements, oldest first (bounded).
	Measurements []MeasurementStatus `json:"measurements,omitempty"`
}

// MeasurementStatus is one evaluation of a metric.
type MeasurementStatus struct {
	// Phase is Successful, Failed, Inconclusive, Error or NoData; Running
	// for a judge that has not decided yet.
	Phase      string    `json:"phase"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// Value is the provider's result as the conditions saw it.
	Value    any       `json:"value,omitempty"`
	Message  string    `json:"message,omitempty"`
	Evidence *Evidence `json:"evidence,omitempty"`
}

// Evidence is what a judge's verdict rests on: the inputs of both versions
// and the statistics, so that every decision can be explained and checked.
type Evidence struct {
	// Method names the test, e.g. "sequential rate-ratio (grid mixture)",
	// "fisher exact", "mann-whitney u".
	Method string `json:"method"`
	// Label is a classifier's per-metric label (method kayenta: Pass, High,
	// Low, Error), which the run's score is computed from.
	Label  string         `json:"label,omitempty"`
	Canary EvidenceSample `json:"canary"`
	Stable EvidenceSample `json:"stable"`
	// Statistic is the test statistic (z, U, ln BF ...) named by StatisticName.
	StatisticName string   `json:"statisticName,omitempty"`
	Statistic     *float64 `json:"statistic,omitempty"`
	PValue        *float64 `json:"pValue,omitempty"`
	EValue        *float64 `json:"eValue,omitempty"`
	// Interval is a confidence interval (or sequence) for IntervalOf, e.g.
	// the canary/stable error-rate ratio or the latency shift in ms.
	IntervalOf string    `json:"intervalOf,omitempty"`
	Interval   []float64 `json:"interval,omitempty"`
	// Threshold is the decision boundary (e.g. 1/alpha for an e-value, the
	// tolerated ratio 1+maxRelativeIncrease), named by ThresholdOf.
	ThresholdOf string  `json:"thresholdOf,omitempty"`
	Threshold   float64 `json:"threshold,omitempty"`
	Alpha       float64 `json:"alpha,omitempty"`
}

// EvidenceSample is one version's side of the evidence.
type EvidenceSample struct {
	Requests  int64              `json:"requests"`
	Errors    int64              `json:"errors"`
	ErrorRate float64            `json:"errorRate"`
	Quantiles map[string]float64 `json:"quantilesMs,omitempty"`
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
	// ErrUnavailable: a dependency the command needs is failing (the store
	// cannot write); the message says what, and trying later may work.
	ErrUnavailable = errors.New("unavailable")
)

// Commands is what the API, the CLI and the dashboard may ask of rollouts
// and analysis templates: the one service layer of SPEC §4. Every
// implementation serializes commands per rollout. Errors wrap ErrNotFound,
// ErrConflict (the command does not apply now; the message says why) or
// ErrInvalid; a rejected document is a spec.FieldErrors.
type Commands interface {
	List(ctx context.Context) ([]View, error)
	Get(ctx context.Context, name string) (View, error)
	// Apply creates or updates a rollout from a document (PUT
	// /api/v1/rollouts/{name}, `coalmine apply`). Defaults are filled in and
	// the result is validated exactly as `coalmine lint` does; the running
	// spec stays when it is rejected. A changed stable or canary version
	// starts a new revision.
	Apply(ctx context.Context, r spec.Rollout) (View, error)
	// Promote leaves the current pause or analysis step; full skips every
	// remaining step and completes at once.
	Promote(ctx context.Context, name string, full bool) (View, error)
	// Abort returns all traffic to stable at once and marks the rollout Degraded.
	Abort(ctx context.Context, name string) (View, error)
	// Retry starts an aborted revision again from step 0.
	Retry(ctx context.Context, name string) (View, error)
	// Pause holds the rollout at its current step (reason Manual); Resume
	// releases it.
	Pause(ctx context.Context, name string) (View, error)
	Resume(ctx context.Context, name string) (View, error)
	// Undo goes back to the previous revision's version (Argo's revision
	// N-1), or to revision toRevision's when toRevision > 0.
	Undo(ctx context.Context, name string, toRevision int64) (View, error)
	// SetWeight overrides the canary weight by hand and pauses (Manual).
	SetWeight(ctx context.Context, name string, w spec.Weight) (View, error)
	// SetCanary starts a new revision with this canary version.
	SetCanary(ctx context.Context, name string, canary spec.VersionSpec) (View, error)
	// AnalysisRuns lists the rollout's analysis runs, newest first.
	AnalysisRuns(ctx context.Context, name string) ([]AnalysisRunStatus, error)
	// Events returns up to limit events with Seq > after, oldest first.
	Events(ctx context.Context, name string, after uint64, limit int) ([]Event, error)
	// Watch streams the rollout: first its current view, then every event
	// with Seq > after, then every status change and event as it happens,
	// until ctx ends (the channel is then closed). A subscriber that falls
	// behind is dropped (the channel closes early) rather than slowing the
	// controller; it reconnects with the last Seq it saw.
	Watch(ctx context.Context, name string, after uint64) (<-chan WatchUpdate, error)

	ListTemplates(ctx context.Context) ([]spec.AnalysisTemplate, error)
	GetTemplate(ctx context.Context, name string) (spec.AnalysisTemplate, error)
	// ApplyTemplate creates or updates an AnalysisTemplate after validation.
	ApplyTemplate(ctx context.Context, t spec.AnalysisTemplate) (spec.AnalysisTemplate, error)
	// DeleteTemplate removes a template; one still referenced by a rollout
	// is a conflict.
	DeleteTemplate(ctx context.Context, name string) error
}

// Event is one persisted, sequenced thing that happened to a rollout (SPEC
// §6.4). Seq increases by one per rollout and is never reused.
type Event struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Rollout  string    `json:"rollout"`
	Revision int64     `json:"revision"`
	// Type is one of spec.EventTypes.
	Type    string `json:"type"`
	Message string `json:"message"`
	// Details carries the numbers behind the event (weights, step, versions,
	// a verdict's evidence). Values are strings, numbers or booleans.
	Details map[string]any `json:"details,omitempty"`
}

// WatchUpdate is one item of a watch stream: exactly one field is set.
type WatchUpdate struct {
	View  *View  `json:"view,omitempty"`
	Event *Event `json:"event,omitempty"`
}

// ChannelStatus is the delivery state of one notification channel of a
// rollout (spec.notifications[Index]).
type ChannelStatus struct {
	Index int `json:"index"`
	// Kind is webhook, slack or pagerduty.
	Kind string `json:"kind"`
	// DeliveredSeq is the last event Seq handled (delivered, or not
	// subscribed); events after it are pending.
	DeliveredSeq uint64 `json:"deliveredSeq"`
	Pending      int    `json:"pending"`
	// Failures counts consecutive failed attempts of the oldest pending event.
	Failures  int        `json:"failures,omitempty"`
	LastError string     `json:"lastError,omitempty"`
	NextRetry *time.Time `json:"nextRetry,omitempty"`
}

// EventStream is the name of a rollout's event log in the store; each entry
// is an Event encoded as JSON with its Seq equal to the store's.
func EventStream(rollout string) string { return "events/" + rollout }
