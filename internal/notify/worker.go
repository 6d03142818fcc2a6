package notify

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify/channel"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// worker delivers one rollout's events to one channel. Its goroutine (run)
// is owned by the Dispatcher's Run; it is the only writer of its cursor.
type worker struct {
	d         *Dispatcher
	rollout   string
	label     string // index as the metrics' channel label
	kind      string
	digest    string
	target    string
	on        subscriber
	notifier  channel.Notifier
	buildErr  error
	log       *slog.Logger
	stream    string
	cursorKey string

	// baseline is the stream's LastSeq when SetRollout created the
	// worker: where a channel without a valid cursor starts.
	baseline    uint64
	hasBaseline bool
	// prev closes when the previous worker of the same key stopped.
	prev <-chan struct{}
	done chan struct{}
	// wake holds at most one pending wake-up (Wake never blocks).
	wake chan struct{}
	// cancel stops run; set under Dispatcher.mu when started.
	cancel  context.CancelFunc
	retired atomic.Bool
	forget  atomic.Bool

	// version is the cursor record's store version and storeErrs counts
	// consecutive store failures; only run touches them.
	version   uint64
	storeErrs int

	mu sync.Mutex // guards st
	st model.ChannelStatus
}

func newWorker(d *Dispatcher, rollout string, index int, n spec.Notification, digest, target string) *worker {
	w := &worker{
		d:         d,
		rollout:   rollout,
		label:     strconv.Itoa(index),
		kind:      kindOf(n),
		digest:    digest,
		target:    target,
		on:        newSubscriber(n.On),
		stream:    model.EventStream(rollout),
		cursorKey: cursorKey(rollout, index),
		done:      make(chan struct{}),
		wake:      make(chan struct{}, 1),
	}
	w.log = d.log.With("rollout", rollout, "channel", index, "kind", w.kind)
	w.notifier, w.buildErr = newNotifier(n, d.cfg)
	w.st = model.ChannelStatus{Index: index, Kind: w.kind}
	if w.buildErr != nil {
		w.st.LastError = w.buildErr.Error()
	}
	return w
}

// run is the worker's goroutine: it waits for its predecessor, delivers
// until ctx ends, then deletes its cursor if the channel was removed.
// parent is Run's context, which outlives ctx except at shutdown.
func (w *worker) run(ctx, parent context.Context) {
	defer close(w.done)
	defer w.d.stoppedWorker(w)
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("notification channel stopped by a panic", "panic", p)
			w.update(func(s *model.ChannelStatus) { s.LastError = fmt.Sprintf("internal error: %v", p) })
		}
	}()
	if w.prev != nil {
		select {
		case <-w.prev:
		case <-parent.Done():
			return
		}
	}
	if ctx.Err() == nil && w.buildErr == nil {
		w.log.Debug("notification channel started")
		w.deliver(ctx)
	}
	if w.forget.Load() {
		// The removal must happen even during shutdown, or a channel
		// added back later would resume from a stale cursor.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 5*time.Second)
		defer cancel()
		if err := w.d.cfg.Store.Delete(dctx, CursorCollection, w.cursorKey); err != nil {
			w.log.Error("delete the cursor of a removed notification channel", "error", err)
		}
	}
}

// deliver is the main loop: read events after the cursor, handle each,
// go idle when caught up. It returns when ctx ends.
func (w *worker) deliver(ctx context.Context) {
	cur, ok := w.initCursor(ctx)
	if !ok {
		return
	}
	for ctx.Err() == nil {
		last, err := w.d.cfg.Store.LastSeq(ctx, w.stream)
		if err != nil {
			w.storeFailed(ctx, err)
			continue
		}
		w.storeErrs = 0
		if cur.Seq > last {
			// The stream was deleted and started again: its numbers restarted.
			w.log.Warn("notification cursor is past the end of the event stream; starting at its end", "cursor", cur.Seq, "last", last)
			cur.Seq = last
			if cur, ok = w.save(ctx, cur); !ok {
				return
			}
		}
		w.update(func(s *model.ChannelStatus) { s.DeliveredSeq, s.Pending = cur.Seq, int(last-cur.Seq) })
		if cur.Seq == last {
			w.idle(ctx)
			continue
		}
		evs, err := w.d.cfg.Store.Events(ctx, w.stream, cur.Seq, defaultBatchSize)
		if err != nil {
			w.storeFailed(ctx, err)
			continue
		}
		w.storeErrs = 0
		if len(evs) == 0 {
			w.log.Warn("events were trimmed before they were delivered", "from", cur.Seq+1, "to", last)
			cur.Seq = last
			if cur, ok = w.save(ctx, cur); !ok {
				return
			}
			continue
		}
		dirty := false
		for _, ev := range evs {
			if ev.Seq != cur.Seq+1 {
				w.log.Warn("events were trimmed before they were delivered", "from", cur.Seq+1, "to", ev.Seq-1)
			}
			var saved bool
			if cur, saved, ok = w.handle(ctx, ev.Seq, ev.Data, cur); !ok {
				return
			}
			dirty = !saved
			w.update(func(s *model.ChannelStatus) { s.DeliveredSeq, s.Pending = cur.Seq, int(last-cur.Seq) })
		}
		if dirty {
			if cur, ok = w.save(ctx, cur); !ok {
				return
			}
		}
	}
}

// initCursor loads the channel's cursor, or creates one at the baseline
// when there is none or it belongs to another configuration.
func (w *worker) initCursor(ctx context.Context) (cursor, bool) {
	for ctx.Err() == nil {
		c, version, found, err := loadCursor(ctx, w.d.cfg.Store, w.cursorKey)
		if err != nil && version == 0 {
			w.storeFailed(ctx, err)
			continue
		}
		if err != nil {
			w.log.Error("notification cursor is corrupt; starting a new one", "error", err)
		}
		w.version = version
		if found && c.Digest == w.digest {
			return c, true
		}
		next := cursor{Digest: w.digest, Target: w.target}
		if found && c.Target == w.target {
			next.State = c.State // same destination: keep an open incident
		}
		next.Seq = w.baseline
		if !w.hasBaseline {
			if next.Seq, err = w.d.cfg.Store.LastSeq(ctx, w.stream); err != nil {
				w.storeFailed(ctx, err)
				continue
			}
		}
		if found {
			w.log.Info("notification channel changed; it starts after the newest event", "seq", next.Seq)
		}
		return w.save(ctx, next)
	}
	return cursor{}, false
}

// save persists cur, retrying store errors until ctx ends. The first
// attempt is made even when ctx has just ended, so that an event delivered
// right before a shutdown or a configuration change is not sent again.
func (w *worker) save(ctx context.Context, cur cursor) (cursor, bool) {
	for first := true; first || ctx.Err() == nil; first = false {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
		v, err := saveCursor(sctx, w.d.cfg.Store, w.cursorKey, w.version, cur)
		cancel()
		if err == nil {
			w.version, w.storeErrs = v, 0
			return cur, ctx.Err() == nil
		}
		w.storeFailed(ctx, err)
	}
	return cur, false
}

// saveTimeout bounds a cursor write made after ctx ended.
const saveTimeout = 5 * time.Second

// storeFailed logs a store error, shows it in Status and waits a growing
// backoff before the caller retries.
func (w *worker) storeFailed(ctx context.Context, err error) {
	w.storeErrs++
	wait := backoff(w.d.cfg.MinBackoff, w.d.cfg.MaxBackoff, w.storeErrs, w.d.cfg.Rand())
	next := w.d.cfg.Now().Add(wait)
	w.update(func(s *model.ChannelStatus) { s.LastError, s.NextRetry = err.Error(), &next })
	w.log.Error("notification store access failed; retrying", "error", err, "retry_in", wait)
	w.sleep(ctx, wait)
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func (w *worker) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-w.d.cfg.After(d):
		return true
	}
}

// idle waits for a Wake, the poll interval, or the end of ctx.
func (w *worker) idle(ctx context.Context) {
	var poll <-chan time.Time
	if w.d.cfg.PollInterval > 0 {
		poll = w.d.cfg.After(w.d.cfg.PollInterval)
	}
	select {
	case <-ctx.Done():
	case <-w.wake:
	case <-poll:
	}
}

// status returns a copy of the channel's delivery state.
func (w *worker) status() model.ChannelStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.st
	if s.NextRetry != nil {
		t := *s.NextRetry
		s.NextRetry = &t
	}
	return s
}

// update changes the status and tells Config.OnStatus when it changed.
func (w *worker) update(f func(*model.ChannelStatus)) {
	w.mu.Lock()
	before := w.st
	f(&w.st)
	changed := before.DeliveredSeq != w.st.DeliveredSeq || before.Pending != w.st.Pending ||
		before.Failures != w.st.Failures || before.LastError != w.st.LastError || before.NextRetry != w.st.NextRetry
	w.mu.Unlock()
	if changed && w.d.cfg.OnStatus != nil {
		w.d.cfg.OnStatus(w.rollout)
	}
}
