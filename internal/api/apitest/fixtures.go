package apitest

import (
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Epoch is the fixed "now" of the fixtures.
var Epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Fixtures returns three rollouts relative to Epoch: "checkout" paused on a
// timed pause step half way through, "payments" aborted by a failed
// analysis, and "search" healthy with nothing to roll out.
func Fixtures() []model.View {
	return []model.View{Checkout(), Payments(), Search()}
}

// Checkout is a rollout in progress: step 3 (pause 5m) of 8, 1 % of
// traffic on the canary, one canary endpoint ejected.
func Checkout() model.View {
	s := baseSpec("127.0.0.1:8080", "v1.4.2", []string{"http://127.0.0.1:9001"})
	s.Canary = &spec.VersionSpec{Version: "v1.5.0", Endpoints: []string{"http://127.0.0.1:9002", "http://127.0.0.1:9003"}}
	s.TrafficRouting.Assignment.UserHeader = "X-User-ID"
	s.Strategy.Canary = spec.CanaryStrategy{
		Analysis: &spec.BackgroundAnalysis{
			Templates:    []spec.TemplateRef{{TemplateName: "golden-signals"}},
			StartingStep: 2,
			Args:         []spec.Arg{{Name: "service", Value: "checkout"}},
		},
		Steps: []spec.Step{
			{SetHeaderRoute: &spec.HeaderRoute{Name: "qa", Match: []spec.HeaderMatch{{HeaderName: "X-QA", HeaderValue: spec.StringMatch{Prefix: ptr("team-")}}}}},
			{SetMirrorRoute: &spec.MirrorRoute{Name: "shadow", Percentage: ptr(100.0), Match: []spec.RequestMatch{{Method: &spec.StringMatch{Exact: ptr("GET")}}}}},
			{SetWeight: ptr(1.0)},
			{Pause: &spec.PauseStep{Duration: ptr(spec.Duration(5 * time.Minute))}},
			{Analysis: &spec.AnalysisStep{Templates: []spec.TemplateRef{{TemplateName: "canary-vs-stable"}}}},
			{SetWeight: ptr(25.0)},
			{Pause: &spec.PauseStep{}},
			{SetWeight: ptr(100.0)},
		},
	}
	return model.View{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindRollout,
		Metadata:   spec.Metadata{Name: "checkout"},
		Spec:       s,
		Status: model.Status{
			Phase:          model.PhasePaused,
			Revision:       3,
			StepIndex:      3,
			PauseReason:    model.PauseStep,
			Weight:         1,
			ObservedWeight: 1,
			StableVersion:  "v1.4.2",
			CanaryVersion:  "v1.5.0",
			Message:        "pausing for 5m (until 12:03:30 UTC)",
			AnalysisRuns: []model.AnalysisRunStatus{
				{ID: "checkout-3-background", Template: "golden-signals", Phase: "Running"},
			},
			Endpoints: []model.EndpointStatus{
				{Role: spec.RoleStable, Version: "v1.4.2", URL: "http://127.0.0.1:9001", Healthy: true, InFlight: 12},
				{Role: spec.RoleCanary, Version: "v1.5.0", URL: "http://127.0.0.1:9002", Healthy: true, InFlight: 1},
				{Role: spec.RoleCanary, Version: "v1.5.0", URL: "http://127.0.0.1:9003", Healthy: false, Ejected: true},
			},
			UpdatedAt: Epoch.Add(-90 * time.Second),
		},
	}
}

// Payments is a rollout aborted by a failed analysis.
func Payments() model.View {
	s := baseSpec("127.0.0.1:8081", "v2.0.1", []string{"http://127.0.0.1:9101"})
	s.Canary = &spec.VersionSpec{Version: "v2.1.0", Endpoints: []string{"http://127.0.0.1:9102"}}
	s.Strategy.Canary.Steps = []spec.Step{
		{SetWeight: ptr(5.0)},
		{Analysis: &spec.AnalysisStep{Templates: []spec.TemplateRef{{TemplateName: "canary-vs-stable"}}}},
		{SetWeight: ptr(50.0)},
		{Pause: &spec.PauseStep{Duration: ptr(spec.Duration(10 * time.Minute))}},
	}
	return model.View{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindRollout,
		Metadata:   spec.Metadata{Name: "payments"},
		Spec:       s,
		Status: model.Status{
			Phase:          model.PhaseDegraded,
			Revision:       7,
			StepIndex:      1,
			Weight:         0,
			ObservedWeight: 0,
			StableVersion:  "v2.0.1",
			CanaryVersion:  "v2.1.0",
			Message:        `metric "error-rate" assessed Failed: canary 3.1% vs stable 0.2% (n=812/15402), e-value 412 > 100`,
			AnalysisRuns: []model.AnalysisRunStatus{
				{ID: "payments-7-step-1", Template: "canary-vs-stable", Phase: "Failed"},
			},
			Endpoints: []model.EndpointStatus{
				{Role: spec.RoleStable, Version: "v2.0.1", URL: "http://127.0.0.1:9101", Healthy: true, InFlight: 3},
				{Role: spec.RoleCanary, Version: "v2.1.0", URL: "http://127.0.0.1:9102", Healthy: true},
			},
			UpdatedAt: Epoch.Add(-3*time.Hour - 12*time.Minute),
		},
	}
}

// Search is a healthy rollout whose last canary completed.
func Search() model.View {
	s := baseSpec("127.0.0.1:8082", "v0.9.0", []string{"http://127.0.0.1:9201"})
	s.Strategy.Canary.Steps = []spec.Step{
		{SetWeight: ptr(20.0)},
		{Pause: &spec.PauseStep{Duration: ptr(spec.Duration(10 * time.Minute))}},
		{SetWeight: ptr(100.0)},
	}
	return model.View{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindRollout,
		Metadata:   spec.Metadata{Name: "search"},
		Spec:       s,
		Status: model.Status{
			Phase:         model.PhaseHealthy,
			Revision:      2,
			StepIndex:     3,
			StableVersion: "v0.9.0",
			Message:       "rollout completed: v0.9.0 is stable",
			AnalysisRuns:  []model.AnalysisRunStatus{},
			Endpoints: []model.EndpointStatus{
				{Role: spec.RoleStable, Version: "v0.9.0", URL: "http://127.0.0.1:9201", Healthy: true},
			},
			UpdatedAt: Epoch.Add(-50 * time.Hour),
		},
	}
}

// baseSpec is a rollout spec with the documented defaults filled in, as the
// service returns it.
func baseSpec(listen, stable string, endpoints []string) spec.RolloutSpec {
	return spec.RolloutSpec{
		Listen: listen,
		Stable: spec.VersionSpec{Version: stable, Endpoints: endpoints},
		HealthCheck: spec.HealthCheck{
			Path:               "/health",
			Interval:           spec.Duration(10 * time.Second),
			Timeout:            spec.Duration(2 * time.Second),
			HealthyThreshold:   2,
			UnhealthyThreshold: 3,
		},
		OutlierDetection: spec.OutlierDetection{ConsecutiveErrors: 5, EjectionTime: spec.Duration(30 * time.Second)},
		ConnectionPool:   spec.ConnectionPool{MaxConnections: 1024, MaxPendingRequests: 1024},
		TrafficRouting: spec.TrafficRouting{
			Assignment: spec.Assignment{Cookie: spec.SubjectCookie{Name: "coalmine_subject", TTL: spec.Duration(24 * time.Hour)}},
			Timeouts: spec.Timeouts{
				Connect:  spec.Duration(2 * time.Second),
				Response: spec.Duration(30 * time.Second),
				Idle:     spec.Duration(90 * time.Second),
			},
			VersionHeader:      "X-Coalmine-Version",
			Balancer:           "least-requests",
			MirrorMaxBodyBytes: 1 << 20,
		},
		ProgressDeadline: spec.Duration(10 * time.Minute),
	}
}

func ptr[T any](v T) *T { return &v }
