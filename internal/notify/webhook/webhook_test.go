package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify/channel"
	"github.com/coalmine-dev/coalmine/internal/notify/webhook"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// TestNotify covers what the dispatcher tests do not: skipping, a fresh
// event id per event (the shared header map is never mutated), password
// redaction and secret resolution errors.
func TestNotify(t *testing.T) {
	ids := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids <- r.Header.Get(webhook.EventIDHeader) + " " + strings.Join(r.Header.Values("X-Team"), ",")
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	deps := channel.Deps{Client: srv.Client(), Resolve: func(*spec.SecretRef) (string, error) { return "", errors.New("env H is not set") }}
	w := webhook.New(spec.WebhookChannel{URL: strings.Replace(srv.URL, "http://", "http://user:pa55word@", 1), Headers: map[string]string{"X-Team": "a"}}, deps)
	ctx := context.Background()

	res, err := w.Notify(ctx, model.Event{Seq: 1, Rollout: "web"}, false, channel.State{OpenIncident: true})
	if err != nil || res.Sent || !res.State.OpenIncident {
		t.Errorf("unsubscribed: %+v %v", res, err)
	}
	for seq := uint64(1); seq <= 2; seq++ {
		_, err := w.Notify(ctx, model.Event{Seq: seq, Rollout: "web"}, true, channel.State{})
		if !channel.IsPermanent(err) || strings.Contains(err.Error(), "pa55word") || !strings.Contains(err.Error(), "status 418") {
			t.Errorf("seq %d: %v", seq, err)
		}
	}
	if a, b := <-ids, <-ids; a != "web/1 a" || b != "web/2 a" {
		t.Errorf("headers %q, %q", a, b)
	}

	secret := webhook.New(spec.WebhookChannel{URLFrom: &spec.SecretRef{Env: "H"}}, deps)
	if _, err := secret.Notify(ctx, model.Event{Seq: 1, Rollout: "web"}, true, channel.State{}); err == nil || channel.IsPermanent(err) {
		t.Errorf("unresolvable URL: %v, want a retryable error", err)
	}
}
