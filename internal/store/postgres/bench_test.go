package postgres

import (
	"context"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/store/postgres/pgtest"
	"github.com/coalmine-dev/coalmine/internal/store/storetest"
)

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(context.Background(), pgtest.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkCommit: a status put and one event append in one transaction,
// committed with synchronous_commit on (fsynced by the server), over
// loopback TCP. Compare with the bolt package's BenchmarkCommit.
func BenchmarkCommit(b *testing.B) { storetest.BenchCommit(b, openBench(b)) }

// BenchmarkEvents: a page of 100 events from a stream of 10,000.
func BenchmarkEvents(b *testing.B) { storetest.BenchEvents(b, openBench(b)) }
