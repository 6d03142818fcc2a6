package model

import (
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Series is a rollout's live traffic over time, per version, with the
// canary weight over the same time (GET /api/v1/rollouts/{name}/series):
// what the dashboard charts.
//
// The numbers come from the proxy's own telemetry, which keeps one snapshot
// a second for a limited time (Retention, 10 minutes by default) and starts
// afresh when a revision starts or completes (TelemetryStart). From says
// where the series really begins: the later of the requested since, the
// telemetry start and the retention horizon.
type Series struct {
	Rollout  string `json:"rollout"`
	Revision int64  `json:"revision"`
	// TelemetryStart is when the proxy's counters for the routed versions
	// started: the revision start, or its completion.
	TelemetryStart time.Time `json:"telemetryStart"`
	// From is the start of the first point's step and To the end of the
	// last one (To == From: no complete step yet). A client polling for new
	// points asks again with since=To.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Step is the length of each point's interval (at least 1s).
	Step spec.Duration `json:"step"`
	// Retention is how far back the telemetry reaches.
	Retention spec.Duration `json:"retention"`
	// Truncated is true when the series starts later than the telemetry
	// start because older snapshots were not kept.
	Truncated bool `json:"truncated,omitempty"`
	// Versions are the routed versions, stable first.
	Versions []VersionSeries `json:"versions"`
	// Weight is the canary weight (applied percent) as a step function: each
	// point holds from its time until the next one. The first point is the
	// weight at From.
	Weight []WeightPoint `json:"weight"`
}

// VersionSeries is one version's points, oldest first.
type VersionSeries struct {
	Role    spec.Role     `json:"role"`
	Version string        `json:"version"`
	Points  []SeriesPoint `json:"points"`
}

// SeriesPoint is one version's live traffic during one step, (T−Step, T].
// ErrorRate and the latency quantiles are null in a step without requests:
// no data, which is not the same as zero.
type SeriesPoint struct {
	T        time.Time `json:"t"`
	Requests int64     `json:"requests"`
	Errors   int64     `json:"errors"`
	// RPS is Requests per second of the step.
	RPS       float64  `json:"rps"`
	ErrorRate *float64 `json:"errorRate"`
	// P50, P90 and P99 are latency quantiles in milliseconds (within 1 %).
	P50 *float64 `json:"p50"`
	P90 *float64 `json:"p90"`
	P99 *float64 `json:"p99"`
}

// WeightPoint is the canary weight from time T on.
type WeightPoint struct {
	T time.Time `json:"t"`
	// Weight is the applied canary percentage.
	Weight float64 `json:"weight"`
	// Seq is the event that set it; 0 for the weight at From or the
	// current status.
	Seq uint64 `json:"seq,omitempty"`
}
