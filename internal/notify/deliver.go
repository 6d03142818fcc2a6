package notify

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify/channel"
)

// Results of handling one event (the result label of
// coalmine_notifications_total).
const (
	// resultDelivered: the receiver answered 2xx.
	resultDelivered = "delivered"
	// resultSkipped: the event does not concern the channel (not in its
	// `on` list, or a type PagerDuty does not page for); nothing was sent.
	resultSkipped = "skipped"
	// resultFailed: the channel gave up on the event (a 4xx other than
	// 408/429, or an event that cannot be decoded); the cursor moved past it.
	resultFailed = "failed"
)

// handle delivers the event (seq, data) after cur, retrying until it is
// delivered, skipped or given up on, and returns the new cursor. saved
// reports whether the cursor was persisted; ok is false when ctx ended
// first (the cursor then stays at the previous event).
func (w *worker) handle(ctx context.Context, seq uint64, data []byte, cur cursor) (next cursor, saved, ok bool) {
	var e model.Event
	if err := json.Unmarshal(data, &e); err != nil {
		w.log.Error("event cannot be decoded; skipping it", "seq", seq, "error", err)
		w.d.metrics.result(w, resultFailed)
		cur.Seq = seq
		return cur, false, true
	}
	e.Seq = seq // the store's number is the truth, and the idempotency key
	if e.Rollout == "" {
		e.Rollout = w.rollout
	}
	subscribed := w.on.subscribes(e.Type)
	for failures := 1; ; failures++ {
		res, err := w.notifier.Notify(ctx, e, subscribed, cur.State)
		switch {
		case err == nil && !res.Sent:
			w.d.metrics.result(w, resultSkipped)
			cur.Seq, cur.State = seq, res.State
			return cur, false, true
		case err == nil:
			w.d.metrics.result(w, resultDelivered)
			w.log.Debug("notification delivered", "seq", seq, "type", e.Type)
			w.update(func(s *model.ChannelStatus) { s.Failures, s.LastError, s.NextRetry = 0, "", nil })
			cur.Seq, cur.State = seq, res.State
			cur, ok = w.save(ctx, cur)
			return cur, true, ok
		case ctx.Err() != nil:
			return cur, false, false
		case channel.IsPermanent(err):
			w.d.metrics.result(w, resultFailed)
			w.log.Error("notification rejected; giving up on this event", "seq", seq, "type", e.Type, "error", err)
			msg := fmt.Sprintf("gave up on event %d: %v", seq, err)
			w.update(func(s *model.ChannelStatus) { s.Failures, s.LastError, s.NextRetry = 0, msg, nil })
			cur.Seq = seq
			cur, ok = w.save(ctx, cur)
			return cur, true, ok
		}
		if !w.retryLater(ctx, e, err, failures) {
			return cur, false, false
		}
	}
}

// retryLater records the failures-th failed attempt at e, then waits the
// backoff, or the receiver's Retry-After. It reports false when ctx ended.
func (w *worker) retryLater(ctx context.Context, e model.Event, err error, failures int) bool {
	cfg := w.d.cfg
	wait := backoff(cfg.MinBackoff, cfg.MaxBackoff, failures, cfg.Rand())
	if ra, ok := channel.RetryAfter(err); ok {
		wait = min(ra, maxRetryAfter)
	}
	next := cfg.Now().Add(wait)
	w.update(func(s *model.ChannelStatus) { s.Failures, s.LastError, s.NextRetry = failures, err.Error(), &next })
	// Events keep coming while this one is retried: count them, so the
	// pending figure (status and metric) shows the channel falling behind.
	if last, lerr := cfg.Store.LastSeq(ctx, w.stream); lerr == nil && last >= e.Seq {
		pending := int(last - e.Seq + 1)
		w.update(func(s *model.ChannelStatus) { s.Pending = pending })
	}
	w.d.metrics.attemptFailed(w)
	w.log.Warn("notification failed; retrying", "seq", e.Seq, "type", e.Type, "attempt", failures, "retry_in", wait, "error", err)
	return w.sleep(ctx, wait)
}
