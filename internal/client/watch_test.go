package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
)

// fastWatch makes reconnects quick so tests do not wait.
var fastWatch = client.WatchOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, GiveUpAfter: 2 * time.Second}

// sseServer serves the watch endpoint with handle, which gets the number of
// the connection (1, 2, ...) and the after parameter it asked with.
type sseServer struct {
	*httptest.Server
	conns  atomic.Int32
	mu     sync.Mutex
	afters []string
}

func newSSEServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, conn int)) *sseServer {
	t.Helper()
	s := &sseServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/rollouts/checkout/watch" || r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusTeapot)
			return
		}
		s.mu.Lock()
		s.afters = append(s.afters, r.URL.Query().Get("after"))
		s.mu.Unlock()
		handle(w, r, int(s.conns.Add(1)))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sseServer) afterParams() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.afters...)
}

func startStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

func send(w http.ResponseWriter, raw string) {
	_, _ = fmt.Fprint(w, raw)
	w.(http.Flusher).Flush()
}

func statusEvent(phase string) string {
	return "event: status\ndata: {\"metadata\":{\"name\":\"checkout\"},\n" +
		"data: \"status\":{\"phase\":\"" + phase + "\"}}\n\n"
}

func eventEvent(seq int, typ string) string {
	return fmt.Sprintf("id: %d\nevent: event\ndata: {\"seq\":%d,\"rollout\":\"checkout\",\"type\":%q}\n\n", seq, seq, typ)
}

// collect reads n updates or fails after a generous deadline.
func collect(t *testing.T, w *client.Watch, n int) []model.WatchUpdate {
	t.Helper()
	var got []model.WatchUpdate
	deadline := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case u, ok := <-w.Updates():
			if !ok {
				t.Fatalf("watch ended after %d of %d updates: %v", len(got), n, w.Err())
			}
			got = append(got, u)
		case <-deadline:
			t.Fatalf("only %d of %d updates arrived", len(got), n)
		}
	}
	return got
}

// ended waits for the watch to end and returns its error.
func ended(t *testing.T, w *client.Watch) error {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return w.Err()
			}
		case <-deadline:
			t.Fatal("the watch did not end")
		}
	}
}

func describe(us []model.WatchUpdate) string {
	var parts []string
	for _, u := range us {
		switch {
		case u.View != nil:
			parts = append(parts, "status "+string(u.View.Status.Phase))
		case u.Event != nil:
			parts = append(parts, fmt.Sprintf("event %d %s", u.Event.Seq, u.Event.Type))
		default:
			parts = append(parts, "empty")
		}
	}
	return strings.Join(parts, ", ")
}

func TestWatchDeliversStatusAndEvents(t *testing.T) {
	srv := newSSEServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		startStream(w)
		send(w, ": keep-alive\n\n")
		send(w, statusEvent("Paused"))
		send(w, eventEvent(4, "rollout-promoted"))
		send(w, "event: future-kind\ndata: {}\n\n") // a newer server's event: skipped
		send(w, ": keep-alive\n\n")
		send(w, statusEvent("Progressing"))
		<-r.Context().Done()
	})
	c := clientFor(t, srv.URL, client.Options{Watch: fastWatch})
	ctx, cancel := context.WithCancel(context.Background())
	w := c.Watch(ctx, "checkout", 3)
	got := describe(collect(t, w, 3))
	if want := "status Paused, event 4 rollout-promoted, status Progressing"; got != want {
		t.Errorf("updates = %s\nwant      %s", got, want)
	}
	cancel()
	if err := ended(t, w); err != nil {
		t.Errorf("Err after cancel = %v, want nil", err)
	}
	if got := srv.afterParams(); len(got) != 1 || got[0] != "3" {
		t.Errorf("after params = %v, want [3]", got)
	}
}

func TestWatchReconnectsAfterTheLastSeq(t *testing.T) {
	srv := newSSEServer(t, func(w http.ResponseWriter, r *http.Request, conn int) {
		startStream(w)
		switch conn {
		case 1:
			send(w, statusEvent("Progressing"))
			send(w, eventEvent(1, "rollout-started"))
			send(w, eventEvent(2, "rollout-step-completed"))
			// returning drops the stream, as a server dropping a slow subscriber does
		case 2:
			send(w, statusEvent("Paused"))
			send(w, eventEvent(2, "rollout-step-completed")) // a replay: skipped
			send(w, eventEvent(3, "rollout-paused"))
			<-r.Context().Done()
		}
	})
	var retries atomic.Int32
	opts := fastWatch
	opts.OnRetry = func(err error, wait time.Duration) {
		retries.Add(1)
		if !strings.Contains(err.Error(), "the server closed the stream") {
			t.Errorf("OnRetry err = %v", err)
		}
	}
	c := clientFor(t, srv.URL, client.Options{Watch: opts})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := c.Watch(ctx, "checkout", 0)
	got := describe(collect(t, w, 5))
	want := "status Progressing, event 1 rollout-started, event 2 rollout-step-completed, status Paused, event 3 rollout-paused"
	if got != want {
		t.Errorf("updates = %s\nwant      %s", got, want)
	}
	if got := srv.afterParams(); strings.Join(got, ",") != "0,2" {
		t.Errorf("after params = %v, want [0 2]", got)
	}
	if retries.Load() != 1 {
		t.Errorf("OnRetry called %d times, want 1", retries.Load())
	}
}

func TestWatchRetriesServerErrorsThenRecovers(t *testing.T) {
	srv := newSSEServer(t, func(w http.ResponseWriter, r *http.Request, conn int) {
		switch conn {
		case 1:
			startStream(w)
			send(w, "retry: 3\n\n") // asks for 3ms between reconnects
			send(w, eventEvent(5, "rollout-resumed"))
		case 2, 3:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"not ready: store is opening"}`))
		default:
			startStream(w)
			send(w, eventEvent(6, "rollout-completed"))
			<-r.Context().Done()
		}
	})
	var mu sync.Mutex
	var waits []time.Duration
	opts := fastWatch
	opts.MaxBackoff = time.Second
	opts.OnRetry = func(_ error, wait time.Duration) {
		mu.Lock()
		waits = append(waits, wait)
		mu.Unlock()
	}
	c := clientFor(t, srv.URL, client.Options{Watch: opts})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := c.Watch(ctx, "checkout", 0)
	if got := describe(collect(t, w, 2)); got != "event 5 rollout-resumed, event 6 rollout-completed" {
		t.Errorf("updates = %s", got)
	}
	if got := strings.Join(srv.afterParams(), ","); got != "0,5,5,5" {
		t.Errorf("after params = %s, want 0,5,5,5", got)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{3 * time.Millisecond, 6 * time.Millisecond, 12 * time.Millisecond}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v (the server's retry, doubling)", waits, want)
	}
}

func TestWatchFailsFastOnTheFirstConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := clientFor(t, "http://"+addr, client.Options{Watch: fastWatch})
	err = ended(t, c.Watch(context.Background(), "checkout", 0))
	var ue *client.UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v, want an *UnreachableError: connection refused", err)
	}

	for _, tt := range []struct {
		status   int
		body     string
		sentinel error
	}{
		{401, `{"error":"missing bearer token"}`, client.ErrUnauthorized},
		{404, `{"error":"rollout \"checkout\" not found"}`, client.ErrNotFound},
		{503, `{"error":"not ready"}`, nil},
	} {
		srv := newSSEServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tt.status)
			_, _ = w.Write([]byte(tt.body))
		})
		c := clientFor(t, srv.URL, client.Options{Watch: fastWatch})
		err := ended(t, c.Watch(context.Background(), "checkout", 0))
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != tt.status || (tt.sentinel != nil && !errors.Is(err, tt.sentinel)) {
			t.Errorf("%d: err = %v, want an *APIError %d", tt.status, err, tt.status)
		}
		if n := srv.conns.Load(); n != 1 {
			t.Errorf("%d: %d connections, want 1 (no retry)", tt.status, n)
		}
	}
}

func TestWatchDoesNotRetryAnswersThatWouldRepeat(t *testing.T) {
	srv := newSSEServer(t, func(w http.ResponseWriter, r *http.Request, conn int) {
		if conn == 1 {
			startStream(w)
			send(w, statusEvent("Paused"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"rollout \"checkout\" not found"}`))
	})
	c := clientFor(t, srv.URL, client.Options{Watch: fastWatch})
	w := c.Watch(context.Background(), "checkout", 0)
	collect(t, w, 1)
	if err := ended(t, w); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound (the rollout was deleted)", err)
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestWatchGivesUpWhenTheServerStaysAway(t *testing.T) {
	var srv *sseServer
	srv = newSSEServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		startStream(w)
		send(w, statusEvent("Paused"))
		go srv.Close() // the server goes away for good
	})
	opts := fastWatch
	opts.GiveUpAfter = 50 * time.Millisecond
	c := clientFor(t, srv.URL, client.Options{Watch: opts})
	w := c.Watch(context.Background(), "checkout", 0)
	collect(t, w, 1)
	err := ended(t, w)
	if !errors.Is(err, client.ErrUnreachable) || !strings.Contains(err.Error(), "gave up reconnecting after") {
		t.Errorf("err = %v, want ErrUnreachable and gave up reconnecting", err)
	}
}

func TestWatchRejectsWhatIsNotAnEventStream(t *testing.T) {
	srv := newSSEServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>"))
	})
	c := clientFor(t, srv.URL, client.Options{Watch: fastWatch})
	err := ended(t, c.Watch(context.Background(), "checkout", 0))
	if err == nil || !strings.Contains(err.Error(), `is "text/html", not an event stream`) {
		t.Errorf("err = %v", err)
	}

	srv = newSSEServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		startStream(w)
		send(w, "event: status\ndata: {not json\n\n")
		<-r.Context().Done()
	})
	c = clientFor(t, srv.URL, client.Options{Watch: fastWatch})
	err = ended(t, c.Watch(context.Background(), "checkout", 0))
	if err == nil || !strings.Contains(err.Error(), "not coalmine's JSON") {
		t.Errorf("err = %v", err)
	}
}

// TestWatchOutlivesTheRequestTimeout: the client's timeout bounds the wait
// for an answer, not the life of a stream.
func TestWatchOutlivesTheRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newSSEServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		startStream(w)
		send(w, statusEvent("Paused"))
		<-release
		send(w, eventEvent(1, "rollout-resumed"))
		<-r.Context().Done()
	})
	c := clientFor(t, srv.URL, client.Options{Watch: fastWatch, HTTPClient: &http.Client{Timeout: 30 * time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := c.Watch(ctx, "checkout", 0)
	collect(t, w, 1)
	time.Sleep(100 * time.Millisecond) // longer than the timeout, on purpose
	close(release)
	if got := describe(collect(t, w, 1)); got != "event 1 rollout-resumed" {
		t.Errorf("update = %s", got)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestWatchHeaderTimeout(t *testing.T) {
	srv := newSSEServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		<-r.Context().Done() // never answers
	})
	c := clientFor(t, srv.URL, client.Options{Watch: fastWatch, HTTPClient: &http.Client{Timeout: 30 * time.Millisecond}})
	err := ended(t, c.Watch(context.Background(), "checkout", 0))
	if !errors.Is(err, client.ErrUnreachable) || !strings.Contains(err.Error(), "no answer within 30ms") {
		t.Errorf("err = %v, want ErrUnreachable: no answer within 30ms", err)
	}
}

func TestWatchReconnectsASilentStream(t *testing.T) {
	srv := newSSEServer(t, func(w http.ResponseWriter, r *http.Request, conn int) {
		startStream(w)
		send(w, statusEvent(map[int]string{1: "Paused", 2: "Progressing"}[conn]))
		<-r.Context().Done() // then silence, not even a keep-alive
	})
	opts := fastWatch
	opts.IdleTimeout = 30 * time.Millisecond
	var reason atomic.Value
	opts.OnRetry = func(err error, _ time.Duration) { reason.CompareAndSwap(nil, err.Error()) }
	c := clientFor(t, srv.URL, client.Options{Watch: opts})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := c.Watch(ctx, "checkout", 0)
	if got := describe(collect(t, w, 2)); got != "status Paused, status Progressing" {
		t.Errorf("updates = %s", got)
	}
	if r, _ := reason.Load().(string); !strings.Contains(r, "was silent for 30ms") {
		t.Errorf("retry reason = %q", r)
	}
}
