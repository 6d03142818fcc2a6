package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestWebhookDeliversExactPayloadInOrder checks the body and headers of
// webhook deliveries, `on` filtering, Status and the metrics.
func TestWebhookDeliversExactPayloadInOrder(t *testing.T) {
	st := newStore(t)
	rcv := newReceiver(t, nil)
	cfg := testConfig(st, nil)
	w := watch(&cfg)
	d := notify.New(cfg)
	n := spec.Notification{
		On:      []string{"rollout-started", "rollout-completed"},
		Webhook: &spec.WebhookChannel{URL: rcv.URL + "/events", Headers: map[string]string{"X-Source": "coalmine", "Content-Type": "text/plain"}},
	}
	d.SetRollout("web", []spec.Notification{n})
	stop := run(t, d)
	commit(t, st, "web", "rollout-started", "rollout-paused", "rollout-completed")
	d.Wake("web")

	want := []struct {
		body, id string
	}{
		{`{"seq":1,"time":"2025-03-01T12:00:01Z","rollout":"web","revision":2,"type":"rollout-started","message":"rollout-started of web","details":{"step":3,"weight":25.5}}`, "web/1"},
		{`{"seq":3,"time":"2025-03-01T12:00:03Z","rollout":"web","revision":2,"type":"rollout-completed","message":"rollout-completed of web","details":{"step":3,"weight":25.5}}`, "web/3"},
	}
	for _, w := range want {
		got := rcv.next(t)
		if string(got.Body) != w.body {
			t.Errorf("body\n got %s\nwant %s", got.Body, w.body)
		}
		headers := map[string]string{
			"Content-Type":        "application/json", // ours wins over the configured one
			"X-Coalmine-Event-Id": w.id,
			"X-Source":            "coalmine",
		}
		for k, v := range headers {
			if got.Header.Get(k) != v {
				t.Errorf("header %s = %q, want %q", k, got.Header.Get(k), v)
			}
		}
		if got.Path != "/events" {
			t.Errorf("path %q", got.Path)
		}
	}
	w.until(t, d, "web", "seq 3 delivered", delivered(3))
	stop()
	rcv.none(t)

	status := d.Status("web")
	wantStatus := []model.ChannelStatus{{Index: 0, Kind: "webhook", DeliveredSeq: 3}}
	if len(status) != 1 || status[0].Index != 0 || status[0].Kind != "webhook" || status[0].DeliveredSeq != 3 ||
		status[0].Pending != 0 || status[0].Failures != 0 || status[0].LastError != "" || status[0].NextRetry != nil {
		t.Errorf("Status = %+v, want %+v", status, wantStatus)
	}
	if d.Status("other") != nil {
		t.Errorf("Status of an unknown rollout = %v, want nil", d.Status("other"))
	}

	const metrics = `
# HELP coalmine_notifications_pending Events after the channel's cursor, not yet delivered.
# TYPE coalmine_notifications_pending gauge
coalmine_notifications_pending{channel="0",kind="webhook",rollout="web"} 0
# HELP coalmine_notifications_total Events handled per notification channel; result is delivered (2xx), skipped (not for this channel) or failed (rejected with a 4xx and given up).
# TYPE coalmine_notifications_total counter
coalmine_notifications_total{channel="0",kind="webhook",result="delivered",rollout="web"} 2
coalmine_notifications_total{channel="0",kind="webhook",result="skipped",rollout="web"} 1
`
	if err := testutil.CollectAndCompare(d.Collector(), strings.NewReader(metrics),
		"coalmine_notifications_total", "coalmine_notifications_pending"); err != nil {
		t.Error(err)
	}
}

// TestOnAllEvents subscribes with "*" and checks every type arrives.
func TestOnAllEvents(t *testing.T) {
	st := newStore(t)
	rcv := newReceiver(t, nil)
	d := notify.New(testConfig(st, nil))
	d.SetRollout("web", []spec.Notification{webhookTo(rcv.URL, spec.NotifyAllEvents)})
	run(t, d)
	commit(t, st, "web", spec.EventTypes...)
	d.Wake("web")
	for i, typ := range spec.EventTypes {
		e := decodeEvent(t, rcv.next(t).Body)
		if e.Seq != uint64(i+1) || e.Type != typ {
			t.Fatalf("request %d: seq %d type %s, want %d %s", i, e.Seq, e.Type, i+1, typ)
		}
	}
}

// TestWebhookURLFromSecret resolves the URL at delivery time.
func TestWebhookURLFromSecret(t *testing.T) {
	st := newStore(t)
	rcv := newReceiver(t, nil)
	cfg := testConfig(st, nil)
	cfg.Resolve = func(ref *spec.SecretRef) (string, error) {
		if ref.Env != "HOOK" {
			t.Errorf("resolved %+v", ref)
		}
		return rcv.URL + "/secret-path", nil
	}
	d := notify.New(cfg)
	d.SetRollout("web", []spec.Notification{{On: []string{"*"}, Webhook: &spec.WebhookChannel{URLFrom: &spec.SecretRef{Env: "HOOK"}}}})
	run(t, d)
	commit(t, st, "web", "rollout-started")
	d.Wake("web")
	if got := rcv.next(t); got.Path != "/secret-path" || seqOf(t, got) != 1 {
		t.Errorf("got %s %s", got.Path, got.Body)
	}
}

// TestWakeNeverBlocks calls Wake far more often than any buffer could hold,
// without Run, for known and unknown rollouts.
func TestWakeNeverBlocks(t *testing.T) {
	d := notify.New(testConfig(newStore(t), nil))
	d.SetRollout("web", []spec.Notification{webhookTo("http://127.0.0.1:1/", "*"), webhookTo("http://127.0.0.1:2/", "*")})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10_000 {
			d.Wake("web")
			d.Wake("unknown")
		}
	}()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Wake blocked")
	}
}

// TestRunTwice: a second Run is an error, not a second set of workers.
func TestRunTwice(t *testing.T) {
	d := notify.New(testConfig(newStore(t), nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Run(ctx); err != nil {
		t.Fatalf("first Run: %v", err)
	}
	if err := d.Run(ctx); err == nil {
		t.Fatal("second Run returned nil")
	}
}
