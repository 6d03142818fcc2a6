package notify

import (
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

func TestBackoff(t *testing.T) {
	const lo, hi = time.Second, 5 * time.Minute
	for _, tc := range []struct {
		failures int
		r        float64
		want     time.Duration
	}{
		{1, 0, time.Second},     // half of 1s is below the minimum
		{1, 0.999, time.Second}, // 999.5ms: clamped too
		{2, 0, time.Second},
		{2, 0.5, 1500 * time.Millisecond},
		{3, 0, 2 * time.Second},
		{4, 0.5, 6 * time.Second},
		{9, 0, 128 * time.Second},
		{10, 0, 150 * time.Second}, // 256s capped at 300s, halved
		{10, 0.999, 299850 * time.Millisecond},
		{1000, 0.5, 225 * time.Second}, // no overflow
	} {
		got := backoff(lo, hi, tc.failures, tc.r)
		if got != tc.want {
			t.Errorf("backoff(failures=%d, r=%v) = %v, want %v", tc.failures, tc.r, got, tc.want)
		}
	}
}

func TestDigests(t *testing.T) {
	base := spec.Notification{On: []string{"rollout-aborted", "analysis-failed"},
		Webhook: &spec.WebhookChannel{URL: "http://h/x", Headers: map[string]string{"A": "1"}}}
	d0, t0 := digests(base)
	for _, tc := range []struct {
		name               string
		n                  spec.Notification
		sameDigest, sameTo bool
	}{
		{"identical", base, true, true},
		{"on reordered and repeated", spec.Notification{On: []string{"analysis-failed", "rollout-aborted", "analysis-failed"}, Webhook: base.Webhook}, true, true},
		{"on changed", spec.Notification{On: []string{"*"}, Webhook: base.Webhook}, false, true},
		{"header changed", spec.Notification{On: base.On, Webhook: &spec.WebhookChannel{URL: "http://h/x", Headers: map[string]string{"A": "2"}}}, false, true},
		{"url changed", spec.Notification{On: base.On, Webhook: &spec.WebhookChannel{URL: "http://h/y", Headers: map[string]string{"A": "1"}}}, false, false},
		{"url from secret", spec.Notification{On: base.On, Webhook: &spec.WebhookChannel{URLFrom: &spec.SecretRef{Env: "U"}, Headers: map[string]string{"A": "1"}}}, false, false},
		{"other kind", spec.Notification{On: base.On, Slack: &spec.SlackChannel{WebhookURLFrom: &spec.SecretRef{Env: "U"}}}, false, false},
	} {
		d, to := digests(tc.n)
		if (d == d0) != tc.sameDigest || (to == t0) != tc.sameTo {
			t.Errorf("%s: same digest %v, same target %v; want %v, %v", tc.name, d == d0, to == t0, tc.sameDigest, tc.sameTo)
		}
	}
	if base.On[0] != "rollout-aborted" || base.Webhook.Headers == nil {
		t.Error("digests modified its argument")
	}
}

func TestSubscriber(t *testing.T) {
	for _, tc := range []struct {
		on   []string
		typ  string
		want bool
	}{
		{[]string{"*"}, "endpoint-healthy", true},
		{[]string{"rollout-aborted", "*"}, "rollout-started", true},
		{[]string{"rollout-aborted"}, "rollout-aborted", true},
		{[]string{"rollout-aborted"}, "rollout-completed", false},
		{nil, "rollout-aborted", false},
	} {
		if got := newSubscriber(tc.on).subscribes(tc.typ); got != tc.want {
			t.Errorf("on %v, type %s: %v, want %v", tc.on, tc.typ, got, tc.want)
		}
	}
}

// TestNoChannelKind: a notification without a kind is an error in Status,
// never a silently chosen default.
func TestNoChannelKind(t *testing.T) {
	if _, err := newNotifier(spec.Notification{On: []string{"*"}}, Config{}); err == nil {
		t.Fatal("newNotifier accepted a notification without a channel")
	}
}
