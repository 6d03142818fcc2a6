package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
)

// flakyStore fails every Put while down is set.
type flakyStore struct {
	store.Store
	down atomic.Bool
}

func (f *flakyStore) Put(ctx context.Context, c string, r store.Record) (store.Record, error) {
	if f.down.Load() {
		return store.Record{}, errors.New("connection refused")
	}
	return f.Store.Put(ctx, c, r)
}

// syncBuffer is a log sink safe for the Run goroutine and the test.
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

// TestRunBeatsOnPokeAndLogsFailuresOncePerMinute drives Run with pokes
// only (its interval is an hour) and a fake clock: each heartbeat is seen
// through the onBeat hook, never by waiting for time to pass.
func TestRunBeatsOnPokeAndLogsFailuresOncePerMinute(t *testing.T) {
	base, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	s := &flakyStore{Store: base}
	var mu sync.Mutex
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	var logs syncBuffer
	beats := make(chan error)
	m := &Membership{
		Store:    s,
		Self:     func() model.Replica { return model.Replica{ID: "a"} },
		Interval: time.Hour,
		Now:      clock,
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
		onBeat:   func(err error) { beats <- err },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	next := func() error {
		t.Helper()
		select {
		case err := <-beats:
			return err
		case <-time.After(30 * time.Second): // a hang, not a timing assertion
			t.Fatal("no heartbeat")
			return nil
		}
	}
	lastBeat := func() time.Time {
		list, err := m.List(context.Background())
		if err != nil || len(list) != 1 {
			t.Fatalf("List = %+v, %v", list, err)
		}
		return list[0].LastHeartbeat
	}

	if err := next(); err != nil { // the first beat is immediate
		t.Fatal(err)
	}
	advance(time.Second)
	m.Poke()
	if err := next(); err != nil {
		t.Fatal(err)
	}
	if got := lastBeat(); !got.Equal(clock()) {
		t.Errorf("after a poke the heartbeat is %v, want %v", got, clock())
	}

	s.down.Store(true)
	for range 3 {
		m.Poke()
		if err := next(); err == nil {
			t.Fatal("a beat succeeded on a store that is down")
		}
		advance(10 * time.Second)
	}
	if n := strings.Count(logs.String(), "heartbeat not saved"); n != 1 {
		t.Errorf("three failures within a minute logged %d lines, want 1:\n%s", n, logs.String())
	}
	advance(time.Minute)
	m.Poke()
	_ = next()
	if got := logs.String(); strings.Count(got, "heartbeat not saved") != 2 || !strings.Contains(got, "suppressedSinceLast=2") {
		t.Errorf("a minute later, want a second line counting 2 held back:\n%s", got)
	}

	s.down.Store(false)
	m.Poke()
	if err := next(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "heartbeat saved again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

// TestPokesCoalesce: Poke never blocks, however often it is called while
// no heartbeat takes it.
func TestPokesCoalesce(t *testing.T) {
	m := &Membership{}
	for range 100 {
		m.Poke()
	}
	if n := len(m.pokes()); n != 1 {
		t.Errorf("%d pending pokes, want 1", n)
	}
}
