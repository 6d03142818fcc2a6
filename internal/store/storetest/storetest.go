// Package storetest is the conformance suite every store.Store
// implementation must pass.
package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/store"
)

// Run exercises the whole store.Store contract, records and streams. open
// returns a fresh, empty store and is called once per subtest; reopen, when
// non-nil, closes s and reopens the same store to check durability. Subtests
// run one after another, so open and reopen need not be safe for concurrent
// use, but the store itself must be: some subtests call it from several
// goroutines (run the suite under -race).
func Run(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, s store.Store) store.Store) {
	ctx := context.Background()
	t.Run("get missing", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(ctx, "rollouts", "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})
	t.Run("put get list delete", func(t *testing.T) {
		s := open(t)
		r, err := s.Put(ctx, "rollouts", store.Record{Key: "b", Data: []byte("1")})
		if err != nil || r.Version != 1 {
			t.Fatalf("put: %v %+v", err, r)
		}
		if _, err := s.Put(ctx, "rollouts", store.Record{Key: "a", Data: []byte("2")}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "rollouts", "b")
		if err != nil || string(got.Data) != "1" || got.Version != 1 {
			t.Fatalf("get: %v %+v", err, got)
		}
		all, err := s.List(ctx, "rollouts")
		if err != nil || len(all) != 2 || all[0].Key != "a" || all[1].Key != "b" {
			t.Fatalf("list: %v %+v", err, all)
		}
		if err := s.Delete(ctx, "rollouts", "b"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "rollouts", "b"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})
	t.Run("compare and swap", func(t *testing.T) {
		s := open(t)
		r1, err := s.Put(ctx, "c", store.Record{Key: "k", Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "c", store.Record{Key: "k", Data: []byte("y")}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("create over existing: %v, want ErrConflict", err)
		}
		r2, err := s.Put(ctx, "c", store.Record{Key: "k", Version: r1.Version, Data: []byte("y")})
		if err != nil || r2.Version != 2 {
			t.Fatalf("update: %v %+v", err, r2)
		}
		if _, err := s.Put(ctx, "c", store.Record{Key: "k", Version: r1.Version, Data: []byte("z")}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale update: %v, want ErrConflict", err)
		}
	})
	t.Run("list orders keys byte by byte", func(t *testing.T) {
		// Not by a locale: upper case before lower case, ASCII before
		// multi-byte UTF-8, a prefix before its extensions.
		s := open(t)
		for _, k := range []string{"é", "b", "a-1", "B", "a", "_", "10", "9"} {
			if _, err := s.Put(ctx, "c", store.Record{Key: k, Data: []byte(k)}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.List(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, r := range all {
			keys = append(keys, r.Key)
		}
		if want := []string{"10", "9", "B", "_", "a", "a-1", "b", "é"}; !slices.Equal(keys, want) {
			t.Fatalf("List keys = %q, want %q", keys, want)
		}
	})
	t.Run("empty values", func(t *testing.T) {
		s := open(t)
		if _, err := s.Put(ctx, "c", store.Record{Key: "k"}); err != nil {
			t.Fatal(err)
		}
		c, err := s.Commit(ctx, store.Batch{Appends: []store.Append{{Stream: "s", Data: [][]byte{nil, {}}}}})
		if err != nil || len(c.Events) != 1 || len(c.Events[0]) != 2 {
			t.Fatalf("append empty events: %+v %v", c, err)
		}
		if got, err := s.Get(ctx, "c", "k"); err != nil || got.Version != 1 || len(got.Data) != 0 {
			t.Errorf("Get of an empty record = %+v, %v", got, err)
		}
		evs, err := s.Events(ctx, "s", 0, 0)
		if err != nil || len(evs) != 2 || evs[0].Seq != 1 || len(evs[0].Data) != 0 || evs[1].Seq != 2 || len(evs[1].Data) != 0 {
			t.Errorf("Events of empty events = %+v, %v", evs, err)
		}
	})
	if reopen != nil {
		t.Run("durable across reopen", func(t *testing.T) {
			s := open(t)
			if _, err := s.Put(ctx, "c", store.Record{Key: "k", Data: []byte("kept")}); err != nil {
				t.Fatal(err)
			}
			s = reopen(t, s)
			got, err := s.Get(ctx, "c", "k")
			if err != nil || string(got.Data) != "kept" || got.Version != 1 {
				t.Fatalf("after reopen: %v %+v", err, got)
			}
		})
	}
	runStreams(t, open, reopen)
}
