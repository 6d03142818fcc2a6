package notify_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// sameJSON compares two JSON documents by value (key order and spacing
// aside); every field and value must match.
func sameJSON(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: invalid JSON %s: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: invalid expected JSON: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s\n got %s\nwant %s", what, got, want)
	}
}

func TestSlackMessage(t *testing.T) {
	st := newStore(t)
	rcv := newReceiver(t, nil)
	cfg := testConfig(st, nil)
	cfg.Resolve = func(ref *spec.SecretRef) (string, error) { return rcv.URL + "/services/T0/B0/XYZ", nil }
	d := notify.New(cfg)
	d.SetRollout("web", []spec.Notification{{
		On:    []string{"rollout-aborted", "analysis-inconclusive"},
		Slack: &spec.SlackChannel{WebhookURLFrom: &spec.SecretRef{Env: "SLACK_URL"}},
	}})
	run(t, d)
	commit(t, st, "web", "rollout-started", "rollout-aborted", "analysis-inconclusive")
	d.Wake("web")

	r := rcv.next(t)
	if r.Path != "/services/T0/B0/XYZ" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("posted to %s with %q", r.Path, r.Header.Get("Content-Type"))
	}
	sameJSON(t, "slack message", r.Body, `{
	  "text": "coalmine: web rollout-aborted (revision 2): rollout-aborted of web",
	  "attachments": [{
	    "color": "#d93f0b",
	    "blocks": [
	      {"type": "header", "text": {"type": "plain_text", "text": "rollout-aborted · web"}},
	      {"type": "section", "text": {"type": "mrkdwn", "text": "rollout-aborted of web"}, "fields": [
	        {"type": "mrkdwn", "text": "*Rollout*\nweb"},
	        {"type": "mrkdwn", "text": "*Revision*\n2"},
	        {"type": "mrkdwn", "text": "*Event*\nrollout-aborted"},
	        {"type": "mrkdwn", "text": "*Seq*\n2"}
	      ]},
	      {"type": "section", "fields": [
	        {"type": "mrkdwn", "text": "*step*\n3"},
	        {"type": "mrkdwn", "text": "*weight*\n25.5"}
	      ]},
	      {"type": "context", "elements": [{"type": "mrkdwn", "text": "coalmine · 2025-03-01T12:00:02Z"}]}
	    ]
	  }]
	}`)
	var m struct {
		Attachments []struct{ Color string }
	}
	if err := json.Unmarshal(rcv.next(t).Body, &m); err != nil || len(m.Attachments) != 1 || m.Attachments[0].Color != "#dbab09" {
		t.Errorf("inconclusive message: %+v %v, want the warning colour", m, err)
	}
}

// TestPagerDutyTriggerThenResolve follows one incident through trigger,
// re-trigger and resolve, and a second one across a restart.
func TestPagerDutyTriggerThenResolve(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t, func(n int, w http.ResponseWriter) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status":"success","message":"Event processed","dedup_key":"coalmine/web"}`))
	})
	chans := []spec.Notification{{
		On:        []string{"analysis-failed", "rollout-aborted"},
		PagerDuty: &spec.PagerDutyChannel{RoutingKeyFrom: &spec.SecretRef{File: "/etc/pd"}},
	}}
	newDispatcher := func(st store.Store) (*notify.Dispatcher, *statusWaiter) {
		cfg := testConfig(st, nil)
		cfg.PagerDutyURL = rcv.URL + "/v2/enqueue"
		cfg.Resolve = func(ref *spec.SecretRef) (string, error) { return "R0UT1NGKEY", nil }
		sw := watch(&cfg)
		d := notify.New(cfg)
		d.SetRollout("web", chans)
		return d, sw
	}
	st := openStore(t, dir)
	d, sw := newDispatcher(st)
	stop := run(t, d)
	commit(t, st, "web",
		"rollout-started",   // 1 skipped: not an incident
		"analysis-error",    // 2 skipped: not in `on`
		"analysis-failed",   // 3 trigger, error
		"rollout-aborted",   // 4 trigger again, critical, same alert
		"rollout-completed", // 5 resolve, though not in `on`
		"rollout-completed", // 6 skipped: no incident open
		"rollout-aborted",   // 7 trigger
	)
	d.Wake("web")
	trigger := func(seq int, typ, severity, ts string) string {
		return `{"routing_key": "R0UT1NGKEY", "event_action": "trigger", "dedup_key": "coalmine/web",
		  "payload": {"summary": "coalmine: web ` + typ + ` (revision 2): ` + typ + ` of web", "source": "coalmine",
		    "severity": "` + severity + `", "timestamp": "` + ts + `", "component": "web", "class": "` + typ + `",
		    "custom_details": {"event": "` + typ + `", "seq": ` + string(rune('0'+seq)) + `, "revision": 2,
		      "message": "` + typ + ` of web", "details": {"step": 3, "weight": 25.5}}}}`
	}
	const resolve = `{"routing_key": "R0UT1NGKEY", "event_action": "resolve", "dedup_key": "coalmine/web"}`
	for i, want := range []string{
		trigger(3, "analysis-failed", "error", "2025-03-01T12:00:03Z"),
		trigger(4, "rollout-aborted", "critical", "2025-03-01T12:00:04Z"),
		resolve,
		trigger(7, "rollout-aborted", "critical", "2025-03-01T12:00:07Z"),
	} {
		r := rcv.next(t)
		if r.Path != "/v2/enqueue" {
			t.Errorf("request %d to %s", i, r.Path)
		}
		sameJSON(t, "pagerduty request", r.Body, want)
	}
	sw.until(t, d, "web", "seq 7 handled", delivered(7))
	stop()
	rcv.none(t)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The open incident of seq 7 survives a restart and is resolved.
	st = openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	d, _ = newDispatcher(st)
	run(t, d)
	commit(t, st, "web", "rollout-completed")
	d.Wake("web")
	sameJSON(t, "resolve after restart", rcv.next(t).Body, resolve)
}

// TestSecretsStayOutOfLogsAndStatus makes every channel kind fail with its
// secret in reach (echoed by the receiver, in the URL of a network error)
// and checks neither the logs nor Status contain it.
func TestSecretsStayOutOfLogsAndStatus(t *testing.T) {
	const slackSecret, pdSecret, hookSecret = "SLACKSECRET", "PDSECRETKEY", "HOOKSECRET"
	// Receivers that quote the secret they were sent: first a 500, then a 400.
	echo := func(secret string) *receiver {
		return newReceiver(t, func(n int, w http.ResponseWriter) {
			if n <= 2 {
				http.Error(w, "bad request for "+secret, []int{500, 400}[n-1])
			}
		})
	}
	slackRcv, pdRcv := echo(slackSecret), echo(pdSecret)
	var logs syncBuffer
	cfg := testConfig(newStore(t), &logs)
	st := cfg.Store
	cfg.PagerDutyURL = pdRcv.URL + "/v2/enqueue"
	cfg.Resolve = func(ref *spec.SecretRef) (string, error) {
		switch ref.Env {
		case "SLACK":
			return slackRcv.URL + "/services/" + slackSecret, nil
		case "PD":
			return pdSecret, nil
		default: // nothing listens on port 1: a network error quoting the URL
			return "http://127.0.0.1:1/hook?token=" + hookSecret, nil
		}
	}
	sw := watch(&cfg)
	d := notify.New(cfg)
	d.SetRollout("web", []spec.Notification{
		{On: []string{"*"}, Slack: &spec.SlackChannel{WebhookURLFrom: &spec.SecretRef{Env: "SLACK"}}},
		{On: []string{"*"}, PagerDuty: &spec.PagerDutyChannel{RoutingKeyFrom: &spec.SecretRef{Env: "PD"}}},
		{On: []string{"*"}, Webhook: &spec.WebhookChannel{URLFrom: &spec.SecretRef{Env: "HOOK"}}},
	})
	stop := run(t, d)
	commit(t, st, "web", "rollout-aborted")
	d.Wake("web")
	sw.until(t, d, "web", "slack and pagerduty delivered, webhook failing twice", func(s []model.ChannelStatus) bool {
		return len(s) == 3 && s[0].DeliveredSeq == 1 && s[1].DeliveredSeq == 1 && s[2].Failures >= 2
	})
	status := d.Status("web")
	stop()

	out := logs.String()
	for _, secret := range []string{slackSecret, pdSecret, hookSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %s:\n%s", secret, out)
		}
		for _, s := range status {
			if strings.Contains(s.LastError, secret) {
				t.Errorf("status of channel %d contains %s: %s", s.Index, secret, s.LastError)
			}
		}
	}
	for _, want := range []string{"[redacted]", "slack webhook from env SLACK", "webhook from env HOOK", "connection refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q (the failures were not logged as expected):\n%s", want, out)
		}
	}
}
