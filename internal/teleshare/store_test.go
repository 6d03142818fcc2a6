package teleshare

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/provider/builtin"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
	"github.com/coalmine-dev/coalmine/internal/store/postgres"
	"github.com/coalmine-dev/coalmine/internal/store/postgres/pgtest"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// sharedStores returns, per store kind, a function giving each replica its
// handle on one shared store: the same bolt store (one process may open a
// bolt file), or a connection pool of its own to one PostgreSQL database.
func sharedStores() map[string]func(t *testing.T) func() store.Store {
	return map[string]func(t *testing.T) func() store.Store{
		"bolt": func(t *testing.T) func() store.Store {
			st, err := bolt.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return func() store.Store { return st }
		},
		"postgres": func(t *testing.T) func() store.Store {
			dsn := pgtest.DSN(t)
			return func() store.Store {
				st, err := postgres.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
		},
	}
}

// world is two replicas and a reference registry that observes every
// request of both: what one process serving all traffic would know.
type world struct {
	clk      *clock
	a, b     *replica
	ref      *telemetry.Registry
	pa, pb   *Publisher
	stA, stB store.Store
}

func newWorld(t *testing.T, open func() store.Store) *world {
	clk := newClock()
	w := &world{clk: clk, a: newReplica("a", clk), b: newReplica("b", clk), ref: telemetry.NewRegistry(telemetry.Options{Now: clk.Now})}
	for _, reg := range []*telemetry.Registry{w.a.reg, w.b.reg, w.ref} {
		reg.Rollout("shop").StartRevision(1)
	}
	routes(w.a, "shop")
	routes(w.b, "shop")
	w.stA, w.stB = open(), open()
	w.pa = &Publisher{Store: w.stA, ID: "a", Registry: w.a.reg, Now: clk.Now}
	w.pb = &Publisher{Store: w.stB, ID: "b", Registry: w.b.reg, Now: clk.Now}
	return w
}

// serve sends n requests with varied codes and latencies to one replica
// and to the reference.
func (w *world) serve(r *replica, role spec.Role, version string, n int, seed int) {
	for _, reg := range []*telemetry.Registry{r.reg, w.ref} {
		v := reg.Rollout("shop").Version(role, version)
		for i := range n {
			code := 200
			switch (i + seed) % 13 {
			case 3:
				code = 503
			case 7:
				code = 404
			}
			v.Observe(code, time.Duration(500+((i*7919+seed)%20000))*time.Microsecond)
		}
		if seed%2 == 1 {
			v.FailedAttempt(telemetry.ErrorConnect)
		}
	}
}

func (w *world) publish(t *testing.T) {
	t.Helper()
	for _, p := range []*Publisher{w.pa, w.pb} {
		if err := p.Publish(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// sameSummaries checks that reg's since-revision summaries equal the
// reference's, version by version.
func sameSummaries(t *testing.T, who string, reg, ref *telemetry.Registry) {
	t.Helper()
	for _, want := range ref.Rollout("shop").Versions() {
		ws := want.Summary(0)
		gs := reg.Rollout("shop").Version(want.Role(), want.Version()).Summary(0)
		if gs.Requests != ws.Requests || gs.Errors != ws.Errors || gs.FailedAttempts != ws.FailedAttempts ||
			!reflect.DeepEqual(gs.Codes, ws.Codes) || gs.P50 != ws.P50 || gs.P99 != ws.P99 || gs.Mean != ws.Mean ||
			gs.Histogram.Count() != ws.Histogram.Count() || gs.Histogram.Len() != ws.Histogram.Len() {
			t.Errorf("%s's %s %s summary:\n got %+v\nwant %+v", who, want.Role(), want.Version(), strip(gs), strip(ws))
		}
	}
}

func strip(s telemetry.Summary) telemetry.Summary { s.Histogram = telemetry.Snapshot{}; return s }

func TestLeaderSeesAllReplicasThroughTheStore(t *testing.T) {
	for kind, shared := range sharedStores() {
		t.Run(kind, func(t *testing.T) {
			w := newWorld(t, shared(t))
			ctx := context.Background()
			ma := &Merger{Store: w.stA, ID: "a", Registry: w.a.reg, Now: w.clk.Now}

			w.serve(w.a, canary, "v2", 40, 1)
			w.serve(w.a, stable, "v1", 100, 2)
			w.serve(w.b, canary, "v2", 60, 3)
			w.serve(w.b, stable, "v1", 150, 4)
			w.publish(t)
			res, err := ma.Merge(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Imported != 2 || res.Requests != 210 {
				t.Errorf("first merge: %+v; want b's two versions, 210 requests", res)
			}
			sameSummaries(t, "leader a", w.a.reg, w.ref)

			// More traffic, another round: still the sum, nothing twice.
			w.clk.Advance(time.Second)
			w.serve(w.a, canary, "v2", 7, 5)
			w.serve(w.b, canary, "v2", 11, 6)
			w.publish(t)
			if _, err := ma.Merge(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := ma.Merge(ctx); err != nil {
				t.Fatal(err)
			}
			sameSummaries(t, "leader a", w.a.reg, w.ref)

			// The builtin provider over the leader's registry answers what
			// it would over one registry that saw every request.
			sameBuiltinResult(t, w.a.reg, w.ref, w.clk)

			// The lease moves to b: a's record holds only its own traffic,
			// so b's first merge makes b's registry the sum as well.
			w.clk.Advance(time.Second)
			w.publish(t)
			mb := &Merger{Store: w.stB, ID: "b", Registry: w.b.reg, Now: w.clk.Now}
			res, err = mb.Merge(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 40+100+7 {
				t.Errorf("new leader's first merge imported %d requests, want a's own 147", res.Requests)
			}
			sameSummaries(t, "leader b", w.b.reg, w.ref)

			// A clean shutdown removes b's record; a forgets it.
			if err := Remove(ctx, w.stB, "b"); err != nil {
				t.Fatal(err)
			}
			if _, err := ma.Merge(ctx); err != nil {
				t.Fatal(err)
			}
			if len(ma.sources) != 0 {
				t.Errorf("a still remembers %d sources after b's record was removed", len(ma.sources))
			}
			if err := Remove(ctx, w.stB, "b"); err != nil {
				t.Errorf("removing a missing record: %v", err)
			}
		})
	}
}

func sameBuiltinResult(t *testing.T, reg, ref *telemetry.Registry, clk *clock) {
	t.Helper()
	q := provider.Query{Rollout: "shop", Metric: "errors", Spec: spec.Provider{Builtin: &spec.BuiltinProvider{}}}
	results := make([]provider.Result, 2)
	for i, r := range []*telemetry.Registry{reg, ref} {
		p, err := builtin.New(builtin.Config{Telemetry: r, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		if results[i], err = p.Query(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	got, want := results[0], results[1]
	// 118 answers and 3 refused connections, which builtin counts by default.
	if got.Versions.Canary.Requests != 121 || got.Versions.Stable.Requests != 250 {
		t.Errorf("builtin over the leader: canary %d, stable %d requests; want 121, 250",
			got.Versions.Canary.Requests, got.Versions.Stable.Requests)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("builtin over the leader:\n got %+v %+v\nwant %+v %+v", got.Value, *got.Versions, want.Value, *want.Versions)
	}
}

func TestPublisherRecord(t *testing.T) {
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	clk := newClock()
	r := newReplica("b", clk)
	r.reg.Rollout("idle") // no traffic: not in the report
	r.serve("shop", canary, "v2", 5)
	p := &Publisher{Store: st, ID: "b", Registry: r.reg, Now: clk.Now}
	if err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Get(ctx, Collection, "b")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Decode(rec.Key, rec.Data)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replica != "b" || rep.Incarnation != p.Incarnation() || !rep.Time.Equal(t0) ||
		len(rep.Rollouts) != 1 || rep.Rollouts[0].Name != "shop" || len(rep.Rollouts[0].Versions) != 1 ||
		rep.Rollouts[0].Versions[0].Counters.Requests() != 5 {
		t.Errorf("record = %+v", rep)
	}

	// A restarted process (a new Publisher) overwrites its predecessor's
	// record without a conflict, under a new incarnation.
	p2 := &Publisher{Store: st, ID: "b", Registry: r.reg, Now: clk.Now}
	if err := p2.Publish(ctx); err != nil {
		t.Fatalf("first publish after a restart: %v", err)
	}
	if p2.Incarnation() == p.Incarnation() {
		t.Errorf("two processes share incarnation %s", p.Incarnation())
	}
	// Two live processes with one id: the loser of each race is told why,
	// and its next write goes through.
	err = p.Publish(ctx)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "same id") {
		t.Errorf("publish over another process's record: %v; want a conflict naming the duplicate id", err)
	}
	if err := p.Publish(ctx); err != nil {
		t.Errorf("publish after learning the version: %v", err)
	}
}

func TestMergeReportsUnreadableRecords(t *testing.T) {
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Put(ctx, Collection, store.Record{Key: "c", Data: []byte(`{"incarnation":"x","time":"2026-12-02T10:00:00Z","rollouts":[{"name":"shop","versions":[{"role":"canary","version":"v2","counters":"AA=="}]}]}`)}); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	m := &Merger{Store: st, ID: "a", Registry: newReplica("a", clk).reg, Now: clk.Now}
	_, err = m.Merge(ctx)
	if err == nil || !strings.Contains(err.Error(), `replica "c"`) || !strings.Contains(err.Error(), "same coalmine version") {
		t.Errorf("Merge with an unreadable record: %v", err)
	}
}

// TestRun runs a publisher and a merger with their own tickers, as serve
// will, and waits (bounded) until the leader has the follower's traffic.
func TestRun(t *testing.T) {
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	leader, follower := newReplica("a", &clock{t: time.Now()}), newReplica("b", &clock{t: time.Now()})
	leader.reg = telemetry.NewRegistry(telemetry.Options{})
	follower.reg = telemetry.NewRegistry(telemetry.Options{})
	routes(leader, "shop")
	follower.serve("shop", canary, "v2", 9)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	p := &Publisher{Store: st, ID: "b", Registry: follower.reg, Interval: 5 * time.Millisecond}
	m := &Merger{Store: st, ID: "a", Registry: leader.reg, Interval: 5 * time.Millisecond}
	go func() { p.Run(ctx); done <- struct{}{} }()
	go func() { m.Run(ctx); done <- struct{}{} }()
	deadline := time.Now().Add(10 * time.Second)
	for requests(leader.reg, "shop", canary, "v2") != 9 {
		if time.Now().After(deadline) {
			t.Fatalf("the leader never saw the follower's 9 requests (has %d)", requests(leader.reg, "shop", canary, "v2"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	<-done
}

func TestStoreErrorsAreLoggedOncePerMinute(t *testing.T) {
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st.Close() // every call fails from now on
	var logs bytes.Buffer
	clk := newClock()
	p := &Publisher{Store: st, ID: "b", Registry: telemetry.NewRegistry(telemetry.Options{}), Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	for range 30 {
		if err := p.Publish(context.Background()); err == nil {
			t.Fatal("publish to a closed store succeeded")
		} else {
			p.logError(err)
		}
		clk.Advance(time.Second)
	}
	if n := strings.Count(logs.String(), "publishing this replica's telemetry failed"); n != 1 {
		t.Errorf("%d log lines in 30 s of errors, want 1:\n%s", n, logs.String())
	}
	clk.Advance(time.Minute)
	p.logError(errors.New("still broken"))
	if !strings.Contains(logs.String(), "suppressedSinceLastLog=29") {
		t.Errorf("the next line does not say 29 were suppressed:\n%s", logs.String())
	}
}
