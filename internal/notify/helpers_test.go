package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
)

// waitFor bounds every wait for something asynchronous; generous because a
// loaded CI machine under -race can be slow, and it is never slept.
const waitFor = 15 * time.Second

// t0 is the fixed time of the fake clock and of the events.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func openStore(t *testing.T, dir string) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newStore(t *testing.T) *bolt.Store {
	t.Helper()
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	return st
}

// commit appends one event per type to the rollout's stream, the way the
// controller does, and returns them with their sequence numbers.
func commit(t *testing.T, st store.Store, rollout string, types ...string) []model.Event {
	t.Helper()
	ctx := context.Background()
	last, err := st.LastSeq(ctx, model.EventStream(rollout))
	if err != nil {
		t.Fatal(err)
	}
	var evs []model.Event
	var data [][]byte
	for i, typ := range types {
		seq := last + uint64(i) + 1
		e := model.Event{
			Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), Rollout: rollout, Revision: 2,
			Type: typ, Message: typ + " of " + rollout, Details: map[string]any{"weight": 25.5, "step": 3},
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		evs, data = append(evs, e), append(data, b)
	}
	c, err := st.Commit(ctx, store.Batch{Appends: []store.Append{{Stream: model.EventStream(rollout), Data: data}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range c.Events[0] {
		if e.Seq != evs[i].Seq {
			t.Fatalf("store assigned seq %d, want %d", e.Seq, evs[i].Seq)
		}
	}
	return evs
}

// request is one request a receiver got.
type request struct {
	Path   string
	Header http.Header
	Body   []byte
}

// receiver is a local HTTP endpoint that records every request and answers
// as respond says (n counts requests from 1).
type receiver struct {
	*httptest.Server
	reqs chan request
	mu   sync.Mutex
	n    int
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter)) *receiver {
	t.Helper()
	r := &receiver{reqs: make(chan request, 1000)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.n++
		n := r.n
		r.mu.Unlock()
		r.reqs <- request{Path: req.URL.Path, Header: req.Header.Clone(), Body: body}
		if respond == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		respond(n, w)
	}))
	t.Cleanup(r.Close)
	return r
}

// next waits for the receiver's next request.
func (r *receiver) next(t *testing.T) request {
	t.Helper()
	select {
	case req := <-r.reqs:
		return req
	case <-time.After(waitFor):
		t.Fatalf("receiver %s got no request within %s", r.URL, waitFor)
		return request{}
	}
}

// none checks that no request is waiting to be read. Call it after the
// dispatcher stopped, when nothing more can arrive.
func (r *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case req := <-r.reqs:
		t.Fatalf("unexpected request to %s: %s", r.URL, req.Body)
	default:
	}
}

// syncBuffer is a log sink that tests may read while workers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig is a fast, deterministic configuration: millisecond backoff,
// no jitter, a fixed clock, no idle poll, logs at debug level into logs.
func testConfig(st store.Store, logs io.Writer) notify.Config {
	if logs == nil {
		logs = io.Discard
	}
	return notify.Config{
		Store:        st,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:          func() time.Time { return t0 },
		Rand:         func() float64 { return 0 },
		MinBackoff:   time.Millisecond,
		MaxBackoff:   4 * time.Millisecond,
		PollInterval: -1,
		Resolve: func(ref *spec.SecretRef) (string, error) {
			return "", io.ErrUnexpectedEOF
		},
	}
}

// run starts d.Run and returns a stop function that cancels it and waits
// until it returned (also registered as cleanup).
func run(t *testing.T, d *notify.Dispatcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(waitFor):
				t.Errorf("Run did not return within %s of cancel", waitFor)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func webhookTo(url string, on ...string) spec.Notification {
	return spec.Notification{On: on, Webhook: &spec.WebhookChannel{URL: url}}
}

// decodeEvent reads a webhook body.
func decodeEvent(t *testing.T, b []byte) model.Event {
	t.Helper()
	var e model.Event
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return e
}

// seqs decodes the webhook requests' Seqs.
func seqOf(t *testing.T, r request) uint64 { return decodeEvent(t, r.Body).Seq }

// statusWaiter wakes tests up when the dispatcher reports a status change
// (Config.OnStatus), so they wait for a state instead of sleeping.
type statusWaiter struct{ changed chan struct{} }

// watch installs the waiter's hook in cfg.
func watch(cfg *notify.Config) *statusWaiter {
	s := &statusWaiter{changed: make(chan struct{}, 1)}
	cfg.OnStatus = func(string) {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
	return s
}

// until waits until ok holds for the rollout's Status.
func (s *statusWaiter) until(t *testing.T, d *notify.Dispatcher, rollout string, what string, ok func([]model.ChannelStatus) bool) []model.ChannelStatus {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		st := d.Status(rollout)
		if ok(st) {
			return st
		}
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("status of %s never reached %s; last %+v", rollout, what, st)
		}
	}
}

// delivered reports whether every channel handled events up to seq.
func delivered(seq uint64) func([]model.ChannelStatus) bool {
	return func(st []model.ChannelStatus) bool {
		for _, c := range st {
			if c.DeliveredSeq < seq {
				return false
			}
		}
		return len(st) > 0
	}
}
