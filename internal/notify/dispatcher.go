package notify

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/prometheus/client_golang/prometheus"
)

// Dispatcher delivers the events of every rollout to its channels (see the
// package doc). It is safe for concurrent use: SetRollout, RemoveRollout,
// Wake, Status and scrapes of Collector may be called from any goroutine,
// before, during or after Run.
type Dispatcher struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	// mu guards the fields below. It is never held during I/O, so Wake
	// and Status wait at most for a map update.
	mu       sync.RWMutex
	rollouts map[string][]*worker // current workers, by index
	latest   map[string]*worker   // newest worker by cursor key, until it stops
	queued   []*worker            // created before Run; Run starts them
	runCtx   context.Context      // Run's context while it runs
	running  bool
	stopped  bool
	wg       sync.WaitGroup // the workers Run started
}

// New returns a Dispatcher; call Run to start delivering. It panics when
// cfg.Store is nil (a wiring error).
func New(cfg Config) *Dispatcher {
	cfg = cfg.withDefaults()
	return &Dispatcher{
		cfg:      cfg,
		log:      cfg.Logger,
		metrics:  newMetrics(),
		rollouts: map[string][]*worker{},
		latest:   map[string]*worker{},
	}
}

// errRunTwice is returned by a second call of Run.
var errRunTwice = errors.New("notify: Dispatcher.Run called twice")

// Run starts the workers of every rollout set so far, and of rollouts set
// later, and delivers until ctx ends. It returns after every worker has
// stopped, and returns nil then. Run may be called once.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running || d.stopped {
		d.mu.Unlock()
		return errRunTwice
	}
	d.running, d.runCtx = true, ctx
	for _, w := range d.queued {
		d.startLocked(w)
	}
	d.queued = nil
	d.mu.Unlock()

	<-ctx.Done()

	d.mu.Lock()
	d.running, d.stopped = false, true // no Add after this: Wait is safe
	d.mu.Unlock()
	d.wg.Wait()
	return nil
}

// SetRollout sets the notification channels of a rollout; call it on
// start, apply and reload, before the rollout's first events are committed
// if those should be delivered. Channels whose configuration is unchanged
// keep their worker and position; changed or new ones start after the
// newest event that exists now; channels past the end of the list are
// removed with their cursors. It reads the stream's last Seq (one store
// read) and does not wait for workers to stop.
func (d *Dispatcher) SetRollout(name string, notifications []spec.Notification) {
	baseline, err := d.cfg.Store.LastSeq(context.Background(), model.EventStream(name)) // no ctx in the signature; one read
	if err != nil {
		d.log.Warn("notification channels of a rollout will start after the event that is newest when they start", "rollout", name, "error", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.rollouts[name]
	next := make([]*worker, len(notifications))
	for i, n := range notifications {
		dg, target := digests(n)
		if i < len(old) && old[i].digest == dg {
			next[i] = old[i]
			continue
		}
		w := newWorker(d, name, i, n, dg, target)
		w.baseline, w.hasBaseline = baseline, err == nil
		// One worker per cursor key at a time, even across RemoveRollout:
		// the new one starts when its predecessor has stopped.
		if p := d.latest[w.cursorKey]; p != nil {
			w.prev = p.done
		}
		d.latest[w.cursorKey] = w
		if i < len(old) {
			d.retireLocked(old[i], false)
			if old[i].kind != w.kind {
				d.metrics.forget(prometheus.Labels{"rollout": name, "channel": w.label, "kind": old[i].kind})
			}
		}
		next[i] = w
		d.startLocked(w)
	}
	for _, w := range old[min(len(old), len(notifications)):] {
		d.retireLocked(w, true)
		d.metrics.forget(prometheus.Labels{"rollout": name, "channel": w.label})
	}
	if len(next) == 0 {
		delete(d.rollouts, name)
		return
	}
	d.rollouts[name] = next
}

// RemoveRollout stops the rollout's channels and deletes their cursors (and
// metrics), for a rollout that was deleted or is no longer configured. To
// stop the process, cancel Run's context instead: that keeps the cursors.
func (d *Dispatcher) RemoveRollout(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.rollouts[name] {
		d.retireLocked(w, true)
	}
	delete(d.rollouts, name)
	d.metrics.forget(prometheus.Labels{"rollout": name})
}

// Wake tells the rollout's channels that new events were committed. It
// never blocks: each channel holds at most one pending wake-up, and a
// channel that is busy reads the new events when it is done.
func (d *Dispatcher) Wake(name string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, w := range d.rollouts[name] {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Status returns the delivery state of the rollout's channels in index
// order, nil for a rollout without channels.
func (d *Dispatcher) Status(name string) []model.ChannelStatus {
	d.mu.RLock()
	ws := slices.Clone(d.rollouts[name])
	d.mu.RUnlock()
	if len(ws) == 0 {
		return nil
	}
	out := make([]model.ChannelStatus, len(ws))
	for i, w := range ws {
		out[i] = w.status()
	}
	return out
}

// startLocked starts w under Run's context, or queues it until Run.
func (d *Dispatcher) startLocked(w *worker) {
	switch {
	case d.stopped:
		return
	case !d.running:
		d.queued = append(d.queued, w)
		return
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	w.cancel = cancel
	if w.retired.Load() {
		cancel()
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		w.run(ctx, d.runCtx)
	}()
}

// retireLocked stops w; forget also deletes its cursor once it stopped.
func (d *Dispatcher) retireLocked(w *worker, forget bool) {
	w.forget.Store(forget)
	w.retired.Store(true)
	if w.cancel != nil {
		w.cancel()
	}
}

// stoppedWorker forgets w as the newest worker of its key once it has stopped,
// unless a successor took its place.
func (d *Dispatcher) stoppedWorker(w *worker) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.latest[w.cursorKey] == w {
		delete(d.latest, w.cursorKey)
	}
}

// current is a snapshot of the current workers by rollout, for scrapes.
func (d *Dispatcher) current() map[string][]*worker {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make(map[string][]*worker, len(d.rollouts))
	for k, v := range d.rollouts {
		out[k] = slices.Clone(v)
	}
	return out
}
