package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
)

// WatchOptions tunes how Watch keeps a stream alive. The zero value means
// the defaults.
type WatchOptions struct {
	// MinBackoff is the first wait before reconnecting after a stream
	// dropped; it doubles after every failed attempt up to MaxBackoff.
	// Defaults 250ms and 5s. A "retry" field from the server replaces
	// MinBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// GiveUpAfter is how long reconnecting may keep failing before the
	// watch ends with the last error. Default 1m.
	GiveUpAfter time.Duration
	// IdleTimeout is how long a stream may stay silent (not even a
	// keep-alive comment) before it counts as dropped. Default 1m.
	IdleTimeout time.Duration
	// OnRetry, when set, is called from the watch's goroutine before each
	// reconnect with the reason the stream dropped and the wait.
	OnRetry func(err error, wait time.Duration)
}

func (o WatchOptions) withDefaults() WatchOptions {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = time.Minute
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Minute
	}
	return o
}

// Watch is a live stream of one rollout, from (*Client).Watch.
type Watch struct {
	updates chan model.WatchUpdate
	err     error // written before updates is closed
}

// Updates delivers the stream: the rollout's view first, then every event
// and status change as it happens. The channel is closed when the watch
// ends; Err then says why.
func (w *Watch) Updates() <-chan model.WatchUpdate { return w.updates }

// Err is nil when the watch ended because its context did, and otherwise
// the error that ended it. Call it only after Updates is closed.
func (w *Watch) Err() error { return w.err }

// errStreamEnded is why a stream that the server closed cleanly dropped.
var errStreamEnded = errors.New("the server closed the stream")

// fatalError ends a watch without reconnecting: a reconnect would get the
// same answer (401, 404, a server that is not coalmine).
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// Watch follows a rollout through GET /api/v1/rollouts/{name}/watch
// (Server-Sent Events): first its current view, then every event with Seq >
// after, then status changes and events as they happen, until ctx ends.
//
// When the stream drops (the server restarts, or drops a subscriber that
// fell behind), Watch reconnects with backoff, asking for the events after
// the last Seq it delivered, so no event is lost or delivered twice. It
// gives up when reconnecting fails for Options.Watch.GiveUpAfter, or at
// once when the server answers 401, 403 or 404 or is not coalmine. The
// first connection is not retried: a wrong address or token fails fast,
// with the same *UnreachableError or *APIError as the other methods.
//
// The watch runs in a goroutine owned by the returned Watch; it stops when
// ctx ends (then Err is nil) or the watch fails, and closes Updates.
func (c *Client) Watch(ctx context.Context, name string, after uint64) *Watch {
	w := &Watch{updates: make(chan model.WatchUpdate, 16)}
	wr := &watchRun{c: c, name: name, after: after, opts: c.watchOpts.withDefaults(), out: w.updates}
	// A stream has no overall deadline: only the wait for the response
	// headers is bounded (by the client's timeout) and silence is bounded
	// by IdleTimeout.
	hc := *c.http
	hc.Timeout = 0
	wr.http = &hc
	go func() {
		defer close(w.updates)
		w.err = wr.run(ctx)
	}()
	return w
}

// watchRun is the state of one Watch's goroutine.
type watchRun struct {
	c     *Client
	http  *http.Client
	name  string
	opts  WatchOptions
	out   chan<- model.WatchUpdate
	after uint64 // the last event Seq delivered
	retry time.Duration
}

func (r *watchRun) run(ctx context.Context) error {
	var (
		connected    bool // a connection was established at least once
		backoff      = r.opts.MinBackoff
		failingSince time.Time
	)
	for {
		ok, delivered, err := r.stream(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			return fe.err
		}
		if !connected && !ok {
			return err // the first connection is not retried
		}
		connected = connected || ok
		if delivered {
			backoff, failingSince = r.opts.MinBackoff, time.Time{}
			if r.retry > 0 {
				backoff = min(r.retry, r.opts.MaxBackoff)
			}
		}
		now := time.Now()
		if failingSince.IsZero() {
			failingSince = now
		} else if now.Sub(failingSince) >= r.opts.GiveUpAfter {
			return fmt.Errorf("%w (gave up reconnecting after %s)", err, shortDur(now.Sub(failingSince)))
		}
		if r.opts.OnRetry != nil {
			r.opts.OnRetry(err, backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, r.opts.MaxBackoff)
	}
}

// stream makes one connection and delivers what it receives until it
// drops. ok says whether the server accepted the stream, delivered whether
// anything was delivered; err is why the stream ended.
func (r *watchRun) stream(ctx context.Context) (ok, delivered bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	path := rolloutPath(r.name) + "/watch?after=" + strconv.FormatUint(r.after, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.c.base.String()+path, nil)
	if err != nil {
		return false, false, &fatalError{fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	r.c.setHeaders(req)

	// Bound the wait for the response headers like any other request.
	var headerTimer *time.Timer
	fired := make(chan struct{})
	if d := r.c.http.Timeout; d > 0 {
		headerTimer = time.AfterFunc(d, func() { cancel(); close(fired) })
	}
	res, err := r.http.Do(req)
	if headerTimer != nil && !headerTimer.Stop() {
		<-fired // the timer canceled the request, whatever Do returned
		if err == nil {
			res.Body.Close()
		}
		err = context.DeadlineExceeded
	}
	if err != nil {
		if !errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return false, false, ctx.Err()
		}
		return false, false, &UnreachableError{Server: r.c.Server(), Err: err, timeout: r.c.http.Timeout}
	}
	defer res.Body.Close()

	if res.StatusCode < 200 || res.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		apiErr := newAPIError(res, data)
		switch {
		case res.StatusCode >= 500, res.StatusCode == http.StatusTooManyRequests, res.StatusCode == http.StatusRequestTimeout:
			return false, false, apiErr
		}
		return false, false, &fatalError{apiErr}
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, false, &fatalError{fmt.Errorf("the answer from %s to GET %s is %q, not an event stream; is that coalmine's admin address?",
			r.c.Server(), path, res.Header.Get("Content-Type"))}
	}

	// Silence longer than IdleTimeout drops the stream.
	var idle atomic.Bool
	idleTimer := time.AfterFunc(r.opts.IdleTimeout, func() { idle.Store(true); cancel() })
	defer idleTimer.Stop()
	sr := newSSEReader(res.Body, maxResponseBytes, func() { idleTimer.Reset(r.opts.IdleTimeout) })

	for {
		ev, err := sr.Next()
		if sr.retry > 0 {
			r.retry = sr.retry
		}
		if err != nil {
			switch {
			case idle.Load():
				err = fmt.Errorf("the stream from %s was silent for %s", r.c.Server(), shortDur(r.opts.IdleTimeout))
			case ctx.Err() != nil:
				return true, delivered, ctx.Err()
			case errors.Is(err, io.EOF):
				err = errStreamEnded
			case errors.Is(err, errEventTooLarge):
				return true, delivered, &fatalError{err}
			default:
				err = &UnreachableError{Server: r.c.Server(), Err: err}
			}
			return true, delivered, err
		}
		u, err := r.decode(ev)
		if err != nil {
			return true, delivered, &fatalError{err}
		}
		if u == nil {
			continue
		}
		select {
		case r.out <- *u:
			delivered = true
		case <-ctx.Done():
			return true, delivered, ctx.Err()
		}
	}
}

// decode turns an SSE event into a WatchUpdate; nil for event types this
// client does not know (a newer server may send more) and for events
// already delivered.
func (r *watchRun) decode(ev sseEvent) (*model.WatchUpdate, error) {
	switch ev.Type {
	case "status":
		var v model.View
		if err := json.Unmarshal([]byte(ev.Data), &v); err != nil {
			return nil, fmt.Errorf("watch rollout %q: the server sent a status that is not coalmine's JSON: %v", r.name, err)
		}
		return &model.WatchUpdate{View: &v}, nil
	case "event":
		var e model.Event
		if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
			return nil, fmt.Errorf("watch rollout %q: the server sent an event that is not coalmine's JSON: %v", r.name, err)
		}
		seq := e.Seq
		if id, err := strconv.ParseUint(ev.ID, 10, 64); err == nil && seq == 0 {
			seq = id
		}
		if seq != 0 && seq <= r.after {
			return nil, nil // already delivered before a reconnect
		}
		r.after = max(r.after, seq)
		return &model.WatchUpdate{Event: &e}, nil
	}
	return nil, nil
}

// shortDur formats a duration for messages: 1m, 30s, 250ms.
func shortDur(d time.Duration) string {
	if d >= time.Second {
		d = d.Round(time.Second)
	}
	s := d.String()
	if len(s) > 4 && s[len(s)-4:] == "m0s" {
		s = s[:len(s)-2]
	}
	return s
}
