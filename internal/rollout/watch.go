package rollout

import (
	"context"
	"sync"

	"github.com/coalmine-dev/coalmine/internal/model"
)

// hub fans status changes and events out to watchers. Publishing never
// blocks: a watcher whose buffer is full is dropped (its channel closed) and
// reconnects with the last sequence number it saw.
type hub struct {
	mu     sync.Mutex
	subs   map[string]map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch     chan model.WatchUpdate
	closed bool
}

const subscriberBuffer = 256

func newHub() *hub { return &hub{subs: map[string]map[*subscriber]struct{}{}} }

func (h *hub) subscribe(name string) *subscriber {
	s := &subscriber{ch: make(chan model.WatchUpdate, subscriberBuffer)}
	h.mu.Lock()
	if h.closed {
		s.closed = true
		close(s.ch)
		h.mu.Unlock()
		return s
	}
	if h.subs[name] == nil {
		h.subs[name] = map[*subscriber]struct{}{}
	}
	h.subs[name][s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(name string, s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[name], s)
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

func (h *hub) publish(name string, u model.WatchUpdate) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[name] {
		select {
		case s.ch <- u:
		default:
			delete(h.subs[name], s)
			s.closed = true
			close(s.ch)
		}
	}
}

// shutdown ends every watch, now and later: the server is stopping and
// its open streams must not hold the drain.
func (h *hub) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for name, subs := range h.subs {
		for s := range subs {
			s.closed = true
			close(s.ch)
		}
		delete(h.subs, name)
	}
}

// CloseWatches ends every watch stream and refuses new ones (they end at
// once); the admin server calls it when it shuts down, so open SSE streams
// do not hold the drain until its timeout.
func (c *Controller) CloseWatches() { c.hub.shutdown() }

func (h *hub) closeAll(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[name] {
		s.closed = true
		close(s.ch)
	}
	delete(h.subs, name)
}

// Watch implements model.Commands. It subscribes before reading the
// backlog, so nothing falls between the two; events seen twice are
// skipped by sequence number.
func (c *Controller) Watch(ctx context.Context, name string, after uint64) (<-chan model.WatchUpdate, error) {
	sub := c.hub.subscribe(name)
	view, err := c.Get(ctx, name)
	if err != nil {
		c.hub.unsubscribe(name, sub)
		return nil, err
	}
	backlog, err := c.Events(ctx, name, after, 0)
	if err != nil {
		c.hub.unsubscribe(name, sub)
		return nil, err
	}
	out := make(chan model.WatchUpdate, 16)
	go func() {
		defer close(out)
		defer c.hub.unsubscribe(name, sub)
		send := func(u model.WatchUpdate) bool {
			select {
			case out <- u:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !send(model.WatchUpdate{View: &view}) {
			return
		}
		last := after
		for i := range backlog {
			if !send(model.WatchUpdate{Event: &backlog[i]}) {
				return
			}
			last = backlog[i].Seq
		}
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-sub.ch:
				if !ok {
					return
				}
				if u.Event != nil {
					if u.Event.Seq <= last {
						continue
					}
					last = u.Event.Seq
				}
				if !send(u) {
					return
				}
			}
		}
	}()
	return out, nil
}
