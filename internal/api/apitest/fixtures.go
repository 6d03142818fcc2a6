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
			StepCount:      8,
			StepStartedAt:  ptr(Epoch.Add(-90 * time.Second)),
			PauseUntil:     ptr(Epoch.Add(210 * time.Second)),
			LastEventSeq:   8,
			AnalysisRuns: []model.AnalysisRunStatus{
				{ID: "checkout-3-background", Template: "golden-signals", Phase: "Running", Kind: "background", Step: 2, Revision: 3,
					Metrics: []model.MetricStatus{{
						Name: "error-rate", Phase: "Running", NoData: 1,
						Measurements: []model.MeasurementStatus{{
							Phase: "Running", StartedAt: Epoch, FinishedAt: Epoch,
							Message: "canary error rate 0.4% vs stable 0.3% (n=812/15402): e-value 1.3 < 100 = 1/α; continuing",
						}},
					}}},
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
			StepCount:      4,
			StepStartedAt:  ptr(Epoch.Add(-3*time.Hour - 30*time.Minute + 2*time.Second)),
			Aborted:        true,
			LastEventSeq:   6,
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
			StepCount:     3,
			StepStartedAt: ptr(Epoch.Add(-50 * time.Hour)),
			LastEventSeq:  8,
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
		Listen:           listen,
		Stable:           spec.VersionSpec{Version: stable, Endpoints: endpoints},
		OutlierDetection: spec.OutlierDetection{ConsecutiveErrors: 5, EjectionTime: spec.Duration(30 * time.Second)},
		ConnectionPool:   spec.ConnectionPool{MaxConnections: 1024, MaxPendingRequests: 1024},
		TrafficRouting: spec.TrafficRouting{
			Assignment: spec.Assignment{Cookie: spec.SubjectCookie{Name: "coalmine_subject", TTL: spec.Duration(24 * time.Hour)}},
			Timeouts: spec.Timeouts{
				Connect:        spec.Duration(2 * time.Second),
				Response:       spec.Duration(30 * time.Second),
				Idle:           spec.Duration(90 * time.Second),
				RequestHeaders: spec.Duration(10 * time.Second),
			},
			ClientLimits:       spec.ClientLimits{MaxConnections: 10000, MaxHeaderBytes: 8192},
			VersionHeader:      "X-Coalmine-Version",
			Balancer:           "least-requests",
			MirrorMaxBodyBytes: 1 << 20,
		},
		ProgressDeadline: spec.Duration(10 * time.Minute),
	}
}

func ptr[T any](v T) *T { return &v }

// FixtureEvents returns the events that led the fixtures to their state,
// oldest first per rollout; their last Seq is each fixture's
// status.lastEventSeq.
func FixtureEvents() []model.Event {
	var out []model.Event
	add := func(rollout string, rev int64, at time.Time, typ, msg string, details map[string]any) {
		var seq uint64 = 1
		for _, e := range out {
			if e.Rollout == rollout {
				seq = e.Seq + 1
			}
		}
		out = append(out, model.Event{Seq: seq, Time: at, Rollout: rollout, Revision: rev, Type: typ, Message: msg, Details: details})
	}

	t := Epoch.Add(-5 * time.Minute)
	add("checkout", 3, t, "rollout-started", "revision 3 (applied): rolling out v1.5.0 over stable v1.4.2", map[string]any{"stable": "v1.4.2", "canary": "v1.5.0"})
	add("checkout", 3, t, "rollout-step-completed", "step 1 (setHeaderRoute qa) completed", map[string]any{"step": 0})
	add("checkout", 3, t, "rollout-step-completed", "step 2 (setMirrorRoute shadow) completed", map[string]any{"step": 1})
	add("checkout", 3, t.Add(time.Second), "analysis-started", "background analysis golden-signals started", map[string]any{"run": "checkout-3-background", "step": 2})
	add("checkout", 3, t.Add(time.Second), "rollout-weight-changed", "canary weight 0% → 1%", map[string]any{"weight": 1, "previousWeight": 0})
	add("checkout", 3, Epoch.Add(-2*time.Minute), "endpoint-unhealthy", "canary endpoint http://127.0.0.1:9003 ejected after 5 consecutive errors",
		map[string]any{"role": "canary", "endpoint": "http://127.0.0.1:9003"})
	add("checkout", 3, Epoch.Add(-90*time.Second), "rollout-step-completed", "step 3 (setWeight 1%) completed", map[string]any{"step": 2})
	add("checkout", 3, Epoch.Add(-90*time.Second), "rollout-paused", "pausing for 5m (until 12:03:30 UTC)", map[string]any{"reason": "PauseStep", "step": 3})

	t = Epoch.Add(-3*time.Hour - 30*time.Minute)
	add("payments", 7, t, "rollout-started", "revision 7 (set canary): rolling out v2.1.0 over stable v2.0.1", map[string]any{"stable": "v2.0.1", "canary": "v2.1.0"})
	add("payments", 7, t.Add(2*time.Second), "rollout-weight-changed", "canary weight 0% → 5%", map[string]any{"weight": 5, "previousWeight": 0})
	add("payments", 7, t.Add(2*time.Second), "rollout-step-completed", "step 1 (setWeight 5%) completed", map[string]any{"step": 0})
	add("payments", 7, t.Add(2*time.Second), "analysis-started", "running analysis canary-vs-stable at step 2", map[string]any{"run": "payments-7-step-1", "step": 1})
	add("payments", 7, Epoch.Add(-3*time.Hour-12*time.Minute), "analysis-failed",
		`metric "error-rate" assessed Failed: canary 3.1% vs stable 0.2% (n=812/15402), e-value 412 > 100`,
		map[string]any{"run": "payments-7-step-1", "metric": "error-rate", "canaryRate": 0.031, "stableRate": 0.002, "canaryRequests": 812, "stableRequests": 15402, "eValue": 412, "threshold": 100})
	add("payments", 7, Epoch.Add(-3*time.Hour-12*time.Minute), "rollout-aborted", "analysis canary-vs-stable failed: all traffic is back on stable v2.0.1",
		map[string]any{"previousWeight": 5, "canary": "v2.1.0"})

	t = Epoch.Add(-50*time.Hour - 12*time.Minute)
	add("search", 2, t, "rollout-started", "revision 2 (applied): rolling out v0.9.0 over stable v0.8.3", map[string]any{"stable": "v0.8.3", "canary": "v0.9.0"})
	add("search", 2, t, "rollout-weight-changed", "canary weight 0% → 20%", map[string]any{"weight": 20, "previousWeight": 0})
	add("search", 2, t, "rollout-step-completed", "step 1 (setWeight 20%) completed", map[string]any{"step": 0})
	add("search", 2, t, "rollout-paused", "pausing for 10m (until 09:58:00 UTC)", map[string]any{"reason": "PauseStep", "step": 1})
	add("search", 2, t.Add(10*time.Minute), "rollout-step-completed", "step 2 (pause 10m) completed", map[string]any{"step": 1})
	add("search", 2, t.Add(10*time.Minute), "rollout-weight-changed", "canary weight 20% → 100%", map[string]any{"weight": 100, "previousWeight": 20})
	add("search", 2, Epoch.Add(-50*time.Hour), "rollout-step-completed", "step 3 (setWeight 100%) completed", map[string]any{"step": 2})
	add("search", 2, Epoch.Add(-50*time.Hour), "rollout-completed", "rollout completed: v0.9.0 is stable", map[string]any{"stable": "v0.9.0"})
	return out
}

// FixtureHistory returns the ended revisions of the fixtures, for undo.
func FixtureHistory() map[string][]Revision {
	return map[string][]Revision{
		"checkout": {
			{Number: 1, Stable: vs("v1.4.1", "http://127.0.0.1:9000"), Canary: ptr(vs("v1.4.2", "http://127.0.0.1:9001")), Completed: true},
			{Number: 2, Stable: vs("v1.4.2", "http://127.0.0.1:9001"), Canary: ptr(vs("v1.5.0-rc.1", "http://127.0.0.1:9002"))},
		},
		"payments": {
			{Number: 6, Stable: vs("v2.0.0", "http://127.0.0.1:9100"), Canary: ptr(vs("v2.0.1", "http://127.0.0.1:9101")), Completed: true},
		},
		"search": {
			{Number: 1, Stable: vs("v0.8.3", "http://127.0.0.1:9200")},
			{Number: 2, Stable: vs("v0.8.3", "http://127.0.0.1:9200"), Canary: ptr(vs("v0.9.0", "http://127.0.0.1:9201")), Completed: true},
		},
	}
}

// Templates returns the analysis templates the fixtures use, with their
// defaults filled in as the service returns them.
func Templates() []spec.AnalysisTemplate {
	ts := []spec.AnalysisTemplate{
		{
			APIVersion: spec.APIVersion,
			Kind:       spec.KindAnalysisTemplate,
			Metadata:   spec.Metadata{Name: "canary-vs-stable"},
			Spec: spec.AnalysisTemplateSpec{Metrics: []spec.Metric{{
				Name:     "error-rate",
				Provider: spec.Provider{Builtin: &spec.BuiltinProvider{}},
				Judge:    &spec.Judge{Compare: "error-rate", MaxRelativeIncrease: ptr(0.5), Alpha: ptr(0.01)},
			}}},
		},
		{
			APIVersion: spec.APIVersion,
			Kind:       spec.KindAnalysisTemplate,
			Metadata:   spec.Metadata{Name: "golden-signals"},
			Spec: spec.AnalysisTemplateSpec{
				Args: []spec.TemplateArg{{Name: "service"}},
				Metrics: []spec.Metric{
					{
						Name:     "errors",
						Provider: spec.Provider{Builtin: &spec.BuiltinProvider{Window: ptr(spec.Duration(5 * time.Minute))}},
						Judge:    &spec.Judge{Compare: "error-rate", MaxRelativeIncrease: ptr(0.25), Alpha: ptr(0.05)},
					},
					{
						Name:             "traffic",
						Interval:         ptr(spec.Duration(time.Minute)),
						Provider:         spec.Provider{Builtin: &spec.BuiltinProvider{Window: ptr(spec.Duration(time.Minute))}},
						FailureCondition: "result.canary.rps == 0 && result.stable.rps > 10",
					},
				},
			},
		},
	}
	for i := range ts {
		ts[i].SetDefaults()
	}
	return ts
}

func vs(version string, endpoints ...string) spec.VersionSpec {
	return spec.VersionSpec{Version: version, Endpoints: endpoints}
}
