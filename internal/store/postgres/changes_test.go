package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/postgres/pgtest"
)

// next waits for the feed's next value; the generous bound only keeps a
// broken feed from hanging the test.
func next(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("change feed closed")
		}
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("no change notification within 20 s")
	}
	return store.Change{}
}

func TestChangesAnnounceOtherWriters(t *testing.T) {
	dsn := pgtest.DSN(t)
	reader, writer := mustOpen(t, dsn), mustOpen(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	feed := reader.Changes(ctx)
	if c := next(t, feed); !c.Resync {
		t.Fatalf("first value %+v, want a Resync", c)
	}
	rec, err := writer.Put(ctx, "rollout-state", store.Record{Key: "checkout", Data: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	if c := next(t, feed); c != (store.Change{Collection: "rollout-state", Key: "checkout"}) {
		t.Fatalf("after a put: %+v", c)
	}
	rec.Data = []byte("b")
	if _, err := writer.Commit(ctx, store.Batch{Puts: []store.Put{{Collection: "rollout-state", Record: rec}}, Deletes: []store.Delete{{Collection: "rollouts", Key: "old/one"}}}); err != nil {
		t.Fatal(err)
	}
	if c := next(t, feed); c.Key != "checkout" {
		t.Fatalf("after a commit: %+v", c)
	}
	// A failed compare-and-swap rolls back: nothing is announced, so the
	// next value is the following successful write.
	if _, err := writer.Put(ctx, "rollout-state", store.Record{Key: "checkout", Version: 1}); err == nil {
		t.Fatal("stale put succeeded")
	}
	if _, err := writer.Put(ctx, "rollouts", store.Record{Key: "a/b", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if c := next(t, feed); c != (store.Change{Collection: "rollouts", Key: "a/b"}) {
		t.Fatalf("after a failed then a good put: %+v", c)
	}
	cancel()
	for range feed {
	}
}

func TestChangesResyncAfterLosingTheConnection(t *testing.T) {
	dsn := pgtest.DSN(t)
	reader, writer := mustOpen(t, dsn), mustOpen(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reader.SetLogger(nil)
	feed := reader.Changes(ctx)
	next(t, feed)
	var killed int
	if err := query(t, dsn, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()").Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d listeners (%v), want 1", killed, err)
	}
	if c := next(t, feed); !c.Resync {
		t.Fatalf("after a lost connection: %+v, want a Resync", c)
	}
	if _, err := writer.Put(ctx, "rollouts", store.Record{Key: "k", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if c := next(t, feed); c.Key != "k" {
		t.Fatalf("after reconnecting: %+v", c)
	}
}
