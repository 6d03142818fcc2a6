package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/cluster"
	"github.com/coalmine-dev/coalmine/internal/lease"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
	"github.com/coalmine-dev/coalmine/internal/store/postgres"
	"github.com/coalmine-dev/coalmine/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// clock is a fake clock shared by every replica of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// shared opens n handles on one new store: n replicas sharing a bbolt file
// through one handle (bbolt allows one process), or n connections pools on
// one PostgreSQL database, as n serve processes would.
type shared func(t *testing.T, n int) []store.Store

func eachStore(t *testing.T, test func(t *testing.T, open shared)) {
	t.Run("bolt", func(t *testing.T) {
		test(t, func(t *testing.T, n int) []store.Store {
			s, err := bolt.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			out := make([]store.Store, n)
			for i := range out {
				out[i] = s
			}
			return out
		})
	})
	t.Run("postgres", func(t *testing.T) {
		test(t, func(t *testing.T, n int) []store.Store {
			dsn := pgtest.DSN(t)
			out := make([]store.Store, n)
			for i := range out {
				s, err := postgres.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				out[i] = s
			}
			return out
		})
	})
}

func member(s store.Store, c *clock, id string, routes map[string]model.ReplicaRoute) *cluster.Membership {
	return &cluster.Membership{
		Store: s,
		Self: func() model.Replica {
			return model.Replica{ID: id, Admin: "http://" + id + ":7070", Version: "v0.9.0",
				RouteRevision: cluster.RouteRevision(routes), Routes: routes}
		},
		Now: c.now,
	}
}

func mustBeat(t *testing.T, m *cluster.Membership) {
	t.Helper()
	if err := m.Beat(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func mustList(t *testing.T, m *cluster.Membership) []model.Replica {
	t.Helper()
	list, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// summary is "id:leader|follower:live|gone" per replica.
func summary(list []model.Replica) string {
	var parts []string
	for _, r := range list {
		role, state := "follower", "live"
		if r.Leader {
			role = "leader"
		}
		if r.Gone {
			state = "gone"
		}
		parts = append(parts, r.ID+":"+role+":"+state)
	}
	return strings.Join(parts, " ")
}

// TestRegistryOfTwoReplicas: two replicas beat into one store; the lease
// holder is the leader; one that stops beating is gone after 3 s (three
// missed beats) and is no longer called leader even before its lease ends.
func TestRegistryOfTwoReplicas(t *testing.T) {
	eachStore(t, func(t *testing.T, open shared) {
		ctx := context.Background()
		stores := open(t, 2)
		c := &clock{t: t0}
		routes := map[string]model.ReplicaRoute{"checkout": {Revision: 2, StateVersion: 7, Weight: 500}}
		a, b := member(stores[0], c, "a", routes), member(stores[1], c, "b", nil)

		if list := mustList(t, a); len(list) != 0 {
			t.Fatalf("empty registry lists %+v", list)
		}
		elector := &lease.Elector{Store: stores[0], ID: "a", TTL: 5 * time.Second, Now: c.now}
		if st, err := elector.Step(ctx); err != nil || !st.Leader {
			t.Fatalf("a did not take the lease: %+v %v", st, err)
		}
		mustBeat(t, b)
		mustBeat(t, a)

		list := mustList(t, b)
		if got := summary(list); got != "a:leader:live b:follower:live" {
			t.Errorf("after both beat: %s", got)
		}
		want := model.Replica{ID: "a", Leader: true, Admin: "http://a:7070", Version: "v0.9.0", RouteRevision: 7,
			Routes: routes, StartedAt: t0, LastHeartbeat: t0}
		if got, _ := json.Marshal(list[0]); string(got) != string(mustJSON(t, want)) {
			t.Errorf("a is listed as\n%s\nwant\n%s", got, mustJSON(t, want))
		}

		// b keeps beating, a stops: a is live at 3 s, gone after.
		c.add(3 * time.Second)
		mustBeat(t, b)
		if got := summary(mustList(t, b)); got != "a:leader:live b:follower:live" {
			t.Errorf("3 s after a's last beat: %s", got)
		}
		c.add(time.Millisecond)
		if got := summary(mustList(t, b)); got != "a:follower:gone b:follower:live" {
			t.Errorf("just over 3 s after a's last beat: %s", got)
		}
		live, err := b.Live(ctx)
		if err != nil || summary(live) != "b:follower:live" {
			t.Errorf("Live = %s, %v; want b only", summary(live), err)
		}

		// a comes back: live again, and leader while its lease lasts.
		mustBeat(t, a)
		if got := summary(mustList(t, b)); got != "a:leader:live b:follower:live" {
			t.Errorf("after a beat again: %s", got)
		}
		if got := mustList(t, b)[0]; !got.StartedAt.Equal(t0) || !got.LastHeartbeat.Equal(c.now()) {
			t.Errorf("a started %v, last beat %v; want %v and %v", got.StartedAt, got.LastHeartbeat, t0, c.now())
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRestartUnderTheSameID: a new process with the id of a previous one
// finds its record at the first beat and takes it over, without a warning.
func TestRestartUnderTheSameID(t *testing.T) {
	eachStore(t, func(t *testing.T, open shared) {
		s := open(t, 1)[0]
		c := &clock{t: t0}
		mustBeat(t, member(s, c, "a", nil))
		c.add(10 * time.Second)

		var logs bytes.Buffer
		again := member(s, c, "a", nil)
		again.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		mustBeat(t, again)
		mustBeat(t, again)
		list := mustList(t, again)
		if len(list) != 1 || !list[0].StartedAt.Equal(c.now()) || list[0].Gone {
			t.Errorf("after the restart: %+v", list)
		}
		if logs.Len() != 0 {
			t.Errorf("a restart logged:\n%s", logs.String())
		}
	})
}

// TestTwoProcessesShareAnID: each beat of one overwrites the other's; both
// keep beating, and the conflict is logged as a misconfiguration, once a
// minute.
func TestTwoProcessesShareAnID(t *testing.T) {
	eachStore(t, func(t *testing.T, open shared) {
		stores := open(t, 2)
		c := &clock{t: t0}
		var logs bytes.Buffer
		first := member(stores[0], c, "a", nil)
		first.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		mustBeat(t, first)
		c.add(time.Second)
		second := member(stores[1], c, "a", nil)
		for range 3 {
			mustBeat(t, second)
			mustBeat(t, first)
		}
		if n := strings.Count(logs.String(), "two replicas share an id"); n != 1 {
			t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "otherStartedAt=2026-12-02T09:00:01.000Z") {
			t.Errorf("the warning does not name the other process's start:\n%s", logs.String())
		}
	})
}

func TestRemove(t *testing.T) {
	eachStore(t, func(t *testing.T, open shared) {
		stores := open(t, 2)
		c := &clock{t: t0}
		a, b := member(stores[0], c, "a", nil), member(stores[1], c, "b", nil)
		mustBeat(t, a)
		mustBeat(t, b)
		if err := a.Remove(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := a.Remove(context.Background()); err != nil {
			t.Errorf("removing twice: %v", err)
		}
		if got := summary(mustList(t, b)); got != "b:follower:live" {
			t.Errorf("after a left: %s", got)
		}
	})
}

// TestPrune: only records gone for longer than the limit go; a pruned
// replica that comes back registers again.
func TestPrune(t *testing.T) {
	eachStore(t, func(t *testing.T, open shared) {
		ctx := context.Background()
		stores := open(t, 3)
		c := &clock{t: t0}
		old, recent, live := member(stores[0], c, "old", nil), member(stores[1], c, "recent", nil), member(stores[2], c, "live", nil)
		mustBeat(t, old)
		c.add(30 * time.Minute)
		mustBeat(t, recent)
		c.add(30*time.Minute + 3*time.Second + time.Millisecond) // old: gone for just over 1 h
		mustBeat(t, live)

		if err := live.Prune(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got := summary(mustList(t, live)); got != "live:follower:live recent:follower:gone" {
			t.Errorf("after Prune: %s", got)
		}
		mustBeat(t, old)
		if got := summary(mustList(t, live)); got != "live:follower:live old:follower:live recent:follower:gone" {
			t.Errorf("after the pruned replica came back: %s", got)
		}
	})
}

func TestBeatNeedsAnID(t *testing.T) {
	s, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := member(s, &clock{t: t0}, "", nil)
	if err := m.Beat(context.Background()); err == nil || !strings.Contains(err.Error(), "unique id") {
		t.Errorf("Beat without an id: %v", err)
	}
}

func TestCorruptRecordIsNamed(t *testing.T) {
	s, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Put(context.Background(), cluster.Collection, store.Record{Key: "x", Data: []byte("{")}); err != nil {
		t.Fatal(err)
	}
	_, err = member(s, &clock{t: t0}, "a", nil).List(context.Background())
	if err == nil || !strings.Contains(err.Error(), "replicas/x") {
		t.Errorf("List over a corrupt record: %v", err)
	}
}
