package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/cluster"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
	"github.com/coalmine-dev/coalmine/internal/store/postgres"
	"github.com/coalmine-dev/coalmine/internal/store/postgres/pgtest"
)

// The cost of the registry per replica: one heartbeat (a CAS Put a
// second) and one List (what GET /api/v1/replicas and the leader's gate
// read) over 10 replicas with 20 routed rollouts each.
//
//	go test ./internal/cluster -run '^$' -bench . -benchtime 2s

func benchStores(b *testing.B, run func(b *testing.B, s store.Store)) {
	b.Run("bolt", func(b *testing.B) {
		s, err := bolt.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		run(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		s, err := postgres.Open(context.Background(), pgtest.DSN(b))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		run(b, s)
	})
}

func benchRoutes() map[string]model.ReplicaRoute {
	routes := map[string]model.ReplicaRoute{}
	for i := range 20 {
		routes[fmt.Sprintf("rollout-%02d", i)] = model.ReplicaRoute{Revision: 4, StateVersion: uint64(100 + i), Weight: 2500}
	}
	return routes
}

func BenchmarkBeat(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		m := member(s, &clock{t: time.Now()}, "a", benchRoutes())
		ctx := context.Background()
		for b.Loop() {
			if err := m.Beat(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkList10(b *testing.B) {
	benchStores(b, func(b *testing.B, s store.Store) {
		c := &clock{t: time.Now()}
		ctx := context.Background()
		var m *cluster.Membership
		for i := range 10 {
			m = member(s, c, fmt.Sprintf("serve-%d", i), benchRoutes())
			if err := m.Beat(ctx); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			if list, err := m.List(ctx); err != nil || len(list) != 10 {
				b.Fatal(len(list), err)
			}
		}
	})
}
