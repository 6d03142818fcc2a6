package pagerduty_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify/channel"
	"github.com/coalmine-dev/coalmine/internal/notify/pagerduty"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

func TestAction(t *testing.T) {
	for _, tc := range []struct {
		typ              string
		subscribed, open bool
		want             string
	}{
		{"rollout-aborted", true, false, pagerduty.ActionTrigger},
		{"rollout-aborted", true, true, pagerduty.ActionTrigger},
		{"analysis-failed", true, false, pagerduty.ActionTrigger},
		{"analysis-error", true, false, pagerduty.ActionTrigger},
		{"rollout-aborted", false, false, ""},
		{"rollout-completed", false, true, pagerduty.ActionResolve},
		{"rollout-completed", true, true, pagerduty.ActionResolve},
		{"rollout-completed", true, false, ""},
		{"rollout-paused", true, true, ""},
		{"analysis-inconclusive", true, false, ""},
		{"endpoint-unhealthy", true, false, ""},
	} {
		if got := pagerduty.Action(tc.typ, tc.subscribed, tc.open); got != tc.want {
			t.Errorf("Action(%s, subscribed=%v, open=%v) = %q, want %q", tc.typ, tc.subscribed, tc.open, got, tc.want)
		}
	}
}

// TestNotifyState: the incident flag follows trigger and resolve, and is
// unchanged by a skip or a failure.
func TestNotifyState(t *testing.T) {
	status := http.StatusAccepted
	var bodies []pagerduty.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var e pagerduty.Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Errorf("body %s: %v", b, err)
		}
		bodies = append(bodies, e)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	p := pagerduty.New(spec.PagerDutyChannel{RoutingKeyFrom: &spec.SecretRef{Env: "PD"}}, srv.URL, channel.Deps{
		Client:  srv.Client(),
		Resolve: func(*spec.SecretRef) (string, error) { return "key", nil },
	})
	ctx := context.Background()
	ev := func(typ string) model.Event {
		return model.Event{Seq: 1, Time: time.Unix(0, 0), Rollout: "web", Revision: 1, Type: typ}
	}

	r, err := p.Notify(ctx, ev("rollout-aborted"), true, channel.State{})
	if err != nil || !r.Sent || !r.State.OpenIncident {
		t.Fatalf("trigger: %+v %v", r, err)
	}
	r, err = p.Notify(ctx, ev("rollout-paused"), true, r.State)
	if err != nil || r.Sent || !r.State.OpenIncident {
		t.Fatalf("skip: %+v %v", r, err)
	}
	status = http.StatusServiceUnavailable
	if _, err = p.Notify(ctx, ev("rollout-completed"), false, r.State); err == nil || channel.IsPermanent(err) {
		t.Fatalf("resolve against a 503: %v, want a retryable error", err)
	}
	status = http.StatusAccepted
	r, err = p.Notify(ctx, ev("rollout-completed"), false, r.State)
	if err != nil || !r.Sent || r.State.OpenIncident {
		t.Fatalf("resolve: %+v %v", r, err)
	}
	if len(bodies) != 3 || bodies[0].EventAction != "trigger" || bodies[2].EventAction != "resolve" ||
		bodies[0].DedupKey != bodies[2].DedupKey || bodies[2].Payload != nil {
		t.Errorf("requests %+v", bodies)
	}

	_, err = pagerduty.New(spec.PagerDutyChannel{RoutingKeyFrom: &spec.SecretRef{Env: "PD"}}, srv.URL, channel.Deps{
		Client:  srv.Client(),
		Resolve: func(*spec.SecretRef) (string, error) { return "", errors.New("environment variable PD is not set") },
	}).Notify(ctx, ev("rollout-aborted"), true, channel.State{})
	if err == nil || channel.IsPermanent(err) {
		t.Errorf("unresolvable key: %v, want a retryable error", err)
	}
}

func TestBuildTruncatesSummary(t *testing.T) {
	long := make([]rune, 2000)
	for i := range long {
		long[i] = 'é'
	}
	e := pagerduty.Build(model.Event{Rollout: "web", Type: "rollout-aborted", Message: string(long)}, pagerduty.ActionTrigger)
	if n := len([]rune(e.Payload.Summary)); n != 1024 {
		t.Errorf("summary has %d characters, want 1024", n)
	}
	want := pagerduty.Event{EventAction: "resolve", DedupKey: "coalmine/web"}
	if got := pagerduty.Build(model.Event{Rollout: "web", Type: "rollout-completed"}, pagerduty.ActionResolve); !reflect.DeepEqual(got, want) {
		t.Errorf("resolve = %+v, want %+v", got, want)
	}
}
