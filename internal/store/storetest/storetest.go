// Package storetest is the conformance suite every store.Store
// implementation must pass.
package storetest

import (
	"context"
	"errors"
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
