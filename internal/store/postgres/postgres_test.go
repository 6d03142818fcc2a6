package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/postgres/pgtest"
	"github.com/coalmine-dev/coalmine/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func mustOpen(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	dsns := map[store.Store]string{}
	open := func(t *testing.T) store.Store {
		dsn := pgtest.DSN(t)
		s := mustOpen(t, dsn)
		dsns[s] = dsn
		return s
	}
	reopen := func(t *testing.T, s store.Store) store.Store {
		dsn := dsns[s]
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := mustOpen(t, dsn)
		dsns[s2] = dsn
		return s2
	}
	storetest.Run(t, open, reopen)
}

// query runs one statement on its own connection, beside the store.
func query(t *testing.T, dsn, sql string, args ...any) pgx.Row {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn.QueryRow(context.Background(), sql, args...)
}

func schemaVersion(t *testing.T, dsn string) (version, rows int) {
	t.Helper()
	if err := query(t, dsn, "SELECT coalesce(max(version), 0), count(*) FROM coalmine_schema_migrations").Scan(&version, &rows); err != nil {
		t.Fatal(err)
	}
	return version, rows
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	dsn := pgtest.DSN(t)
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if v, _ := schemaVersion(t, dsn); v != SchemaVersion() {
		t.Fatalf("schema version %d after Open, want %d", v, SchemaVersion())
	}
	// A newer coalmine migrated the database further.
	newer := SchemaVersion() + 1
	var ignored int
	if err := query(t, dsn, "INSERT INTO coalmine_schema_migrations (version, name) VALUES ($1, 'from_the_future') RETURNING version", newer).Scan(&ignored); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), dsn)
	want := fmt.Sprintf("database schema version %d is newer than this coalmine (%d): upgrade coalmine", newer, SchemaVersion())
	var nse *NewerSchemaError
	if !errors.As(err, &nse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open of a newer schema: %v; want an error saying %q", err, want)
	}
}

// Replicas starting together on an empty database: each migration runs
// once (a second CREATE TABLE would fail), and all of them start.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	migrations := append(embeddedMigrations(),
		// Slow, so the others arrive while it runs.
		migration{Version: SchemaVersion() + 1, Name: "slow", SQL: "SELECT pg_sleep(0.2); CREATE TABLE test_slow (x int)"},
		migration{Version: SchemaVersion() + 2, Name: "after_slow", SQL: "CREATE TABLE test_after_slow (x int)"},
	)
	const replicas = 4
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := open(context.Background(), dsn, migrations)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	if v, rows := schemaVersion(t, dsn); v != len(migrations) || rows != len(migrations) {
		t.Fatalf("schema at version %d with %d rows, want %d and %d", v, rows, len(migrations), len(migrations))
	}
}

// Each migration is one transaction: a failing one leaves the database at
// the one before, with nothing of itself, and a fixed binary goes on.
func TestFailedMigrationChangesNothing(t *testing.T) {
	dsn := pgtest.DSN(t)
	base := embeddedMigrations()
	broken := append(base[:len(base):len(base)], migration{Version: len(base) + 1, Name: "broken", SQL: "CREATE TABLE test_half (x int); SELECT no_such_column FROM test_half"})
	_, err := open(context.Background(), dsn, broken)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("apply schema migration %d (broken)", len(base)+1)) {
		t.Fatalf("Open with a broken migration: %v", err)
	}
	if v, _ := schemaVersion(t, dsn); v != len(base) {
		t.Fatalf("schema version %d after a failed migration, want %d", v, len(base))
	}
	var exists bool
	if err := query(t, dsn, "SELECT to_regclass('test_half') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Fatalf("the failed migration's table exists: %v %v", exists, err)
	}
	fixed := append(base[:len(base):len(base)], migration{Version: len(base) + 1, Name: "fixed", SQL: "CREATE TABLE test_half (x int)"})
	s, err := open(context.Background(), dsn, fixed)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if v, _ := schemaVersion(t, dsn); v != len(base)+1 {
		t.Fatalf("schema version %d after the fixed migration, want %d", v, len(base)+1)
	}
}

// A deadlock between a batch and another writer is resolved by
// PostgreSQL aborting one of them; when that is the batch, it is tried
// again instead of failing the command.
func TestDeadlockedCommitIsRetried(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := mustOpen(t, dsn)
	ctx := context.Background()
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	// PostgreSQL aborts the transaction whose deadlock check runs first:
	// the one that began waiting first (the batch's), one deadlock_timeout
	// after. Only a stall of this test longer than that lets the other
	// writer be the victim; the round is then repeated.
	for round := 1; round <= 3; round++ {
		if deadlockRound(t, s, other, round) {
			return
		}
		t.Logf("round %d: the other writer was the deadlock victim; again", round)
	}
	t.Fatal("the batch was never the deadlock victim in 3 rounds")
}

// deadlockRound makes a batch deadlock with another transaction and
// reports whether the batch was the one PostgreSQL aborted.
func deadlockRound(t *testing.T, s *Store, other *pgx.Conn, round int) bool {
	ctx := context.Background()
	keys := []string{fmt.Sprintf("k1-%d", round), fmt.Sprintf("k2-%d", round)}
	for _, k := range keys {
		if _, err := s.Put(ctx, "c", store.Record{Key: k, Data: []byte("v1")}); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, "UPDATE coalmine_records SET data = 'x' WHERE key = $1", keys[1]); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Commit(ctx, store.Batch{Puts: []store.Put{
			{Collection: "c", Record: store.Record{Key: keys[0], Version: 1, Data: []byte("v2")}},
			{Collection: "c", Record: store.Record{Key: keys[1], Version: 1, Data: []byte("v2")}},
		}})
		done <- err
	}()
	// Wait until the batch holds k1 and waits for k2, then close the cycle.
	for {
		var waiting int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err = tx.Exec(ctx, "UPDATE coalmine_records SET data = 'x' WHERE key = $1", keys[0])
	batchWasVictim := err == nil
	if !batchWasVictim && !retryable(err) {
		t.Fatalf("the other writer: %v", err)
	}
	// Give both rows back: the batch (retried, or never aborted) goes on.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("deadlocked commit: %v; want it retried", err)
	}
	for _, k := range keys {
		if r, err := s.Get(ctx, "c", k); err != nil || r.Version != 2 || string(r.Data) != "v2" {
			t.Errorf("%s after the batch: %+v %v", k, r, err)
		}
	}
	return batchWasVictim
}

func TestCommitHonoursACancelledContext(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Commit(ctx, store.Batch{
		Puts:    []store.Put{{Collection: "c", Record: store.Record{Key: "k", Data: []byte("x")}}},
		Appends: []store.Append{{Stream: "s", Data: [][]byte{[]byte("e")}}},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with a cancelled context: %v", err)
	}
	if _, err := s.Get(context.Background(), "c", "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a cancelled commit wrote: %v", err)
	}
	if seq, err := s.LastSeq(context.Background(), "s"); err != nil || seq != 0 {
		t.Fatalf("a cancelled commit appended: %d %v", seq, err)
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// Start-up errors say what to check and never show the password. These
// need no server.
func TestOpenErrorsSayWhatToCheck(t *testing.T) {
	const secret = "s3cr3t-pw"
	cases := []struct {
		name, url string
		want      []string
	}{
		{"unreachable", fmt.Sprintf("postgres://coalmine:%s@127.0.0.1:%d/coalmine?sslmode=disable", secret, closedPort(t)),
			[]string{"connect to PostgreSQL postgres://coalmine:xxxxx@127.0.0.1:", "check that the server runs"}},
		{"bad port", "postgres://coalmine:" + secret + "@localhost:notaport/coalmine",
			[]string{"open PostgreSQL store", "the form is postgres://"}},
		{"password in the query", fmt.Sprintf("postgresql://coalmine@127.0.0.1:%d/coalmine?sslmode=disable&password=%s", closedPort(t), secret),
			[]string{"password=xxxxx", "check that the server runs"}},
		{"bad escape in the password", "postgres://coalmine:" + secret + "%zz@localhost/coalmine",
			[]string{"open PostgreSQL store (the given URL)", "invalid percent-encoded token in password"}},
		{"broken host", "postgres://coalmine:" + secret + "@[::1/coalmine",
			[]string{"open PostgreSQL store (the given URL)", "IPv6 host address"}},
		{"not a URL", "host=localhost password=" + secret,
			[]string{"not a postgres:// or postgresql:// URL"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := Open(ctx, c.url)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@h:5432/db?sslmode=disable":          "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db":                                  "postgres://u@h/db",
		"postgresql://h/db?password=pw&x=1":                  "postgresql://h/db?password=xxxxx&x=1",
		"postgres://u@h/db?sslkey=/k.pem&sslpassword=s3cret": "postgres://u@h/db?sslkey=%2Fk.pem&sslpassword=xxxxx",
		"host=h password=pw":                                 "(the given URL)",
		"/var/lib/coalmine":                                  "/var/lib/coalmine",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// A leader's batch fenced by the epoch record must not commit after a
// takeover changed that record, even when the takeover commits while the
// batch is under way: the check holds the row until the batch ends.
func TestCheckHoldsUntilTheBatchCommits(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := mustOpen(t, dsn)
	ctx := context.Background()
	epoch, err := s.Put(ctx, "leases", store.Record{Key: "epoch", Data: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	takeover, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer takeover.Close(ctx)
	tx, err := takeover.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	// Another replica takes the lease: the epoch record's next version,
	// not committed yet.
	if _, err := tx.Exec(ctx, "UPDATE coalmine_records SET version = version + 1, data = '2' WHERE collection = 'leases' AND key = 'epoch'"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Commit(ctx, store.Batch{
			Checks:  []store.Check{{Collection: "leases", Key: "epoch", Version: epoch.Version}},
			Puts:    []store.Put{{Collection: "status", Record: store.Record{Key: "shop", Data: []byte("late")}}},
			Appends: []store.Append{{Stream: "shop", Data: [][]byte{[]byte("late")}}},
		})
		done <- err
	}()
	for waiting := 0; waiting == 0; {
		select {
		case err := <-done:
			t.Fatalf("the fenced batch ended (%v) without waiting for the takeover in progress", err)
		default:
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, store.ErrConflict) {
		t.Fatalf("batch fenced by a superseded epoch: %v; want ErrConflict", err)
	}
	if _, err := s.Get(ctx, "status", "shop"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the fenced batch wrote its put: %v", err)
	}
	if seq, err := s.LastSeq(ctx, "shop"); err != nil || seq != 0 {
		t.Errorf("the fenced batch appended: %d %v", seq, err)
	}
}

// TestStalledTransactionDoesNotBlockATakeover: a leader stalled inside a
// fenced batch (paused, or cut off) holds the epoch record FOR SHARE; the
// server ends its transaction after idle_in_transaction_session_timeout,
// so another replica can take over within a lease time.
func TestStalledTransactionDoesNotBlockATakeover(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t))
	ctx := context.Background()
	epoch, err := s.Put(ctx, "leases", store.Record{Key: "epoch", Data: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, "SELECT 1 FROM coalmine_records WHERE collection = 'leases' AND key = 'epoch' FOR SHARE"); err != nil {
		t.Fatal(err)
	}
	// The stalled transaction now sits idle holding the lock.
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.Put(tctx, "leases", store.Record{Key: "epoch", Version: epoch.Version, Data: []byte("2")}); err != nil {
		t.Fatalf("a takeover behind a stalled transaction: %v", err)
	}
}

// TestDeleteStreamRacingAFirstAppend: a stream deleted while its first
// append commits ends either with the append (counter and events) or with
// nothing, never with a counter whose events are gone.
func TestDeleteStreamRacingAFirstAppend(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t))
	ctx := context.Background()
	for i := range 200 {
		stream := fmt.Sprintf("race-%d", i)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, _ = s.Commit(ctx, store.Batch{Appends: []store.Append{{Stream: stream, Data: [][]byte{[]byte("x")}}}})
		}()
		go func() {
			defer wg.Done()
			_ = s.DeleteStream(ctx, stream)
		}()
		wg.Wait()
		last, err := s.LastSeq(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := s.Events(ctx, stream, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if last != uint64(len(evs)) {
			t.Fatalf("round %d: last seq %d but %d events", i, last, len(evs))
		}
	}
}

// TestHoldSharedRefusesAnOlderServer: replicas hold the single-server
// lock together; while a coalmine from before replicas holds it
// exclusively, a replica refuses to start, saying why.
func TestHoldSharedRefusesAnOlderServer(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a, b := mustOpen(t, dsn), mustOpen(t, dsn)
	if err := a.HoldShared(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.HoldShared(ctx); err != nil {
		t.Fatalf("a second replica: %v", err)
	}
	a.Close()
	b.Close()
	older, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer older.Close(ctx)
	if _, err := older.Exec(ctx, "SELECT pg_advisory_lock($1)", singleServerLock); err != nil {
		t.Fatal(err)
	}
	c := mustOpen(t, dsn)
	if err := c.HoldShared(ctx); !errors.Is(err, ErrOlderServer) || !strings.Contains(err.Error(), "stop it (or upgrade it) first") {
		t.Fatalf("with an older server running: %v", err)
	}
}
