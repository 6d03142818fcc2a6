package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/store"
)

// The benchmarks below are shared so that every store is measured on the
// same work. Sizes of a typical rollout status record and one announced
// event:
var (
	benchStatus = []byte(`{"rollout":"r-0001","channel":"stable","phase":"progressing","step":3,"weight":25,"canary":"v1.4.2","baseline":"v1.4.1","checks":[` +
		strings.Repeat(`{"name":"error-rate","verdict":"pass","value":0.001},`, 8) + `{}]}`)
	benchEvent = []byte(`{"type":"step","rollout":"r-0001","step":3,"weight":25,"at":"2025-01-01T00:00:00Z","reason":"checks passed"}`)
)

// BenchCommit is the controller's typical write: a compare-and-swap of a
// rollout's status together with the one event announcing it. Each commit
// is durable, so this measures the disk (and for a server, the round trips)
// as much as the code.
func BenchCommit(b *testing.B, s store.Store) {
	ctx := context.Background()
	var version uint64
	b.SetBytes(int64(len(benchStatus) + len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := s.Commit(ctx, store.Batch{
			Puts:    []store.Put{{Collection: "rollouts", Record: store.Record{Key: "r-0001", Version: version, Data: benchStatus}}},
			Appends: []store.Append{{Stream: "rollout/r-0001", Data: [][]byte{benchEvent}}},
		})
		if err != nil {
			b.Fatal(err)
		}
		version = c.Records[0].Version
	}
}

// BenchEvents reads a page of 100 events after a sequence number from a
// stream of 10,000, as a watcher catching up does.
func BenchEvents(b *testing.B, s store.Store) {
	const total, page = 10_000, 100
	ctx := context.Background()
	for n := 0; n < total; n += 1000 {
		a := store.Append{Stream: "rollout/r-0001"}
		for i := 0; i < 1000; i++ {
			a.Data = append(a.Data, benchEvent)
		}
		if _, err := s.Commit(ctx, store.Batch{Appends: []store.Append{a}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var after uint64
	for b.Loop() {
		evs, err := s.Events(ctx, "rollout/r-0001", after, page)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) != page || evs[0].Seq != after+1 || evs[page-1].Seq != after+page {
			b.Fatalf("read %d events after %d, want seqs %d..%d", len(evs), after, after+1, after+page)
		}
		after = (after + 997) % (total - page)
	}
}
