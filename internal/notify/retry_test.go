package notify_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRetryAfterServerErrors: two 500s, then success; the event is sent
// three times with the same idempotency key, then the next one once, and
// nothing is delivered twice once it succeeded.
func TestRetryAfterServerErrors(t *testing.T) {
	st := newStore(t)
	rcv := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n <= 2 {
			http.Error(w, "upstream down", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	cfg := testConfig(st, nil)
	sw := watch(&cfg)
	d := notify.New(cfg)
	d.SetRollout("web", []spec.Notification{webhookTo(rcv.URL, "*")})
	stop := run(t, d)
	commit(t, st, "web", "rollout-started", "rollout-paused")
	d.Wake("web")

	for i, want := range []uint64{1, 1, 1, 2} {
		r := rcv.next(t)
		if got := seqOf(t, r); got != want {
			t.Fatalf("request %d carries seq %d, want %d", i+1, got, want)
		}
		if id := r.Header.Get("X-Coalmine-Event-Id"); id != "web/"+string(rune('0'+want)) {
			t.Errorf("request %d: event id %q", i+1, id)
		}
	}
	sw.until(t, d, "web", "seq 2 delivered", delivered(2))
	stop()
	rcv.none(t)
	if s := d.Status("web")[0]; s.Failures != 0 || s.LastError != "" || s.NextRetry != nil || s.Pending != 0 {
		t.Errorf("status after recovery: %+v", s)
	}
	const metrics = `
# HELP coalmine_notification_errors_total Failed delivery attempts that will be retried (network errors, timeouts, 408, 429, 5xx, unresolvable secrets).
# TYPE coalmine_notification_errors_total counter
coalmine_notification_errors_total{channel="0",kind="webhook",rollout="web"} 2
# HELP coalmine_notifications_total Events handled per notification channel; result is delivered (2xx), skipped (not for this channel) or failed (rejected with a 4xx and given up).
# TYPE coalmine_notifications_total counter
coalmine_notifications_total{channel="0",kind="webhook",result="delivered",rollout="web"} 2
`
	if err := testutil.CollectAndCompare(d.Collector(), strings.NewReader(metrics),
		"coalmine_notifications_total", "coalmine_notification_errors_total"); err != nil {
		t.Error(err)
	}
}

// TestFailingChannelIsVisible: a channel that keeps failing shows its
// failures, error, next retry and backlog in Status and the metrics.
func TestFailingChannelIsVisible(t *testing.T) {
	st := newStore(t)
	rcv := newReceiver(t, func(n int, w http.ResponseWriter) {
		http.Error(w, "try later", http.StatusServiceUnavailable)
	})
	cfg := testConfig(st, nil)
	sw := watch(&cfg)
	d := notify.New(cfg)
	d.SetRollout("web", []spec.Notification{webhookTo(rcv.URL, "*")})
	run(t, d)
	commit(t, st, "web", "rollout-started", "rollout-paused")
	d.Wake("web")
	s := sw.until(t, d, "web", "3 failures", func(s []model.ChannelStatus) bool { return len(s) == 1 && s[0].Failures >= 3 })[0]
	if s.DeliveredSeq != 0 || s.Pending != 2 || !strings.Contains(s.LastError, "status 503: try later") ||
		s.NextRetry == nil || s.NextRetry.Before(t0) {
		t.Errorf("status of a failing channel: %+v", s)
	}
	const pending = `
# HELP coalmine_notifications_pending Events after the channel's cursor, not yet delivered.
# TYPE coalmine_notifications_pending gauge
coalmine_notifications_pending{channel="0",kind="webhook",rollout="web"} 2
`
	if err := testutil.CollectAndCompare(d.Collector(), strings.NewReader(pending), "coalmine_notifications_pending"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(d.Collector(), "coalmine_notification_consecutive_failures"); n != 1 {
		t.Errorf("%d consecutive-failures series, want 1", n)
	}

	// Events that arrive while the first one is retried count as pending
	// too: the channel is seen falling behind.
	commit(t, st, "web", "rollout-resumed", "rollout-weight-changed", "rollout-paused")
	sw.until(t, d, "web", "5 pending", func(s []model.ChannelStatus) bool { return len(s) == 1 && s[0].Pending == 5 })
}

// TestRetryAfterHeader: a 429 with Retry-After waits exactly that long
// (the injected After records the waits and fires at once).
func TestRetryAfterHeader(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         time.Duration
	}{
		{"seconds", "7", 7 * time.Second},
		{"http-date", t0.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"absent uses backoff", "", time.Millisecond},
		{"capped at an hour", "86400", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			rcv := newReceiver(t, func(n int, w http.ResponseWriter) {
				if n == 1 {
					if tc.header != "" {
						w.Header().Set("Retry-After", tc.header)
					}
					w.WriteHeader(http.StatusTooManyRequests)
				}
			})
			cfg := testConfig(st, nil)
			var mu sync.Mutex
			var waits []time.Duration
			cfg.After = func(d time.Duration) <-chan time.Time {
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
				c := make(chan time.Time, 1)
				c <- t0
				return c
			}
			sw := watch(&cfg)
			d := notify.New(cfg)
			d.SetRollout("web", []spec.Notification{webhookTo(rcv.URL, "*")})
			stop := run(t, d)
			commit(t, st, "web", "rollout-started")
			d.Wake("web")
			for range 2 {
				if seq := seqOf(t, rcv.next(t)); seq != 1 {
					t.Fatalf("seq %d", seq)
				}
			}
			sw.until(t, d, "web", "seq 1 delivered", delivered(1))
			stop()
			rcv.none(t)
			mu.Lock()
			defer mu.Unlock()
			if len(waits) != 1 || waits[0] != tc.want {
				t.Errorf("waits %v, want [%v]", waits, tc.want)
			}
		})
	}
}

// TestPermanentFailureSkipsEvent: a 400 gives up on the event (logged,
// counted failed) and the channel moves on.
func TestPermanentFailureSkipsEvent(t *testing.T) {
	st := newStore(t)
	rcv := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			http.Error(w, "bad payload", http.StatusBadRequest)
		}
	})
	var logs syncBuffer
	cfg := testConfig(st, &logs)
	sw := watch(&cfg)
	d := notify.New(cfg)
	d.SetRollout("web", []spec.Notification{webhookTo(rcv.URL, "*")})
	stop := run(t, d)
	commit(t, st, "web", "rollout-started", "rollout-paused")
	d.Wake("web")
	if a, b := seqOf(t, rcv.next(t)), seqOf(t, rcv.next(t)); a != 1 || b != 2 {
		t.Fatalf("seqs %d, %d; want 1, 2", a, b)
	}
	sw.until(t, d, "web", "seq 2 delivered", delivered(2))
	stop()
	rcv.none(t)
	if !strings.Contains(logs.String(), "giving up on this event") || !strings.Contains(logs.String(), "status 400: bad payload") {
		t.Errorf("logs do not report the rejected event:\n%s", logs.String())
	}
	const metrics = `
# HELP coalmine_notifications_total Events handled per notification channel; result is delivered (2xx), skipped (not for this channel) or failed (rejected with a 4xx and given up).
# TYPE coalmine_notifications_total counter
coalmine_notifications_total{channel="0",kind="webhook",result="delivered",rollout="web"} 1
coalmine_notifications_total{channel="0",kind="webhook",result="failed",rollout="web"} 1
`
	if err := testutil.CollectAndCompare(d.Collector(), strings.NewReader(metrics), "coalmine_notifications_total"); err != nil {
		t.Error(err)
	}
}

// TestSlowChannelDoesNotDelayOthers: channel 0 hangs on every request;
// channel 1 of the same rollout and a channel of another rollout still get
// every event at once.
func TestSlowChannelDoesNotDelayOthers(t *testing.T) {
	st := newStore(t)
	release := make(chan struct{})
	slow := newReceiver(t, func(n int, w http.ResponseWriter) {
		<-release
		w.WriteHeader(http.StatusBadGateway)
	})
	t.Cleanup(func() { close(release) }) // runs before slow.Close
	fast := newReceiver(t, nil)
	other := newReceiver(t, nil)
	d := notify.New(testConfig(st, nil))
	d.SetRollout("web", []spec.Notification{webhookTo(slow.URL, "*"), webhookTo(fast.URL, "*")})
	d.SetRollout("api", []spec.Notification{webhookTo(other.URL, "*")})
	run(t, d)
	commit(t, st, "web", "rollout-started", "rollout-paused", "rollout-resumed")
	commit(t, st, "api", "rollout-started", "rollout-completed")
	d.Wake("web")
	d.Wake("api")
	for want := uint64(1); want <= 3; want++ {
		if got := seqOf(t, fast.next(t)); got != want {
			t.Fatalf("fast channel got seq %d, want %d", got, want)
		}
	}
	for want := uint64(1); want <= 2; want++ {
		if got := seqOf(t, other.next(t)); got != want {
			t.Fatalf("other rollout got seq %d, want %d", got, want)
		}
	}
	if got := seqOf(t, slow.next(t)); got != 1 {
		t.Fatalf("slow channel got seq %d", got)
	}
}
