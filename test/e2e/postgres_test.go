package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coalmine-dev/coalmine/internal/store/postgres/pgtest"
)

// Issue 12, item 1: `serve --store postgres://...` keeps a rollout's state
// in PostgreSQL. A rollout walks a step and is promoted; after kill -9 and
// a restart on the same database, its step, weight, pause deadline and
// events are intact, and nothing was written to --data-dir.
func TestPostgresStoreKeepsARolloutAcrossKill9(t *testing.T) {
	dsn := pgtest.DSN(t)
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	rcv := newReceiver(t)
	s := newStepsServer(t, "1h", rcv, stable, canary)
	s.extra = []string{"--store", dsn}

	restart := func(point string) {
		t.Helper()
		before, evsBefore := s.status(), s.events()
		s.waitDelivered(10 * time.Second)
		s.signal(syscall.SIGKILL)
		s.waitExit(10 * time.Second)
		s.start()
		after := s.waitFor(point+" after restart", 10*time.Second, func(st status) bool {
			return st.ObservedWeight == st.Weight || st.CanaryVersion == ""
		})
		if before.StepIndex != after.StepIndex || before.Weight != after.Weight || before.Revision != after.Revision ||
			before.Phase != after.Phase || before.StableVersion != after.StableVersion || before.CanaryVersion != after.CanaryVersion {
			t.Fatalf("%s: before kill %+v, after restart %+v", point, before, after)
		}
		if (before.PauseUntil == nil) != (after.PauseUntil == nil) || (before.PauseUntil != nil && !before.PauseUntil.Equal(*after.PauseUntil)) {
			t.Fatalf("%s: pause deadline %v became %v", point, before.PauseUntil, after.PauseUntil)
		}
		evsAfter := s.events()
		if len(evsAfter) < len(evsBefore) {
			t.Fatalf("%s: %d events before, %d after", point, len(evsBefore), len(evsAfter))
		}
		for i := range evsBefore {
			if evsBefore[i] != evsAfter[i] {
				t.Fatalf("%s: event %d changed: %+v → %+v", point, i, evsBefore[i], evsAfter[i])
			}
		}
		checkSequence(t, evsAfter, rcv.received())
	}

	s.start()
	st := s.waitFor("timed pause at step 1 with 20%", 20*time.Second, func(st status) bool {
		return st.StepIndex == 1 && st.PauseUntil != nil && st.ObservedWeight == 20
	})
	if st.Weight != 20 {
		t.Fatalf("at step 1: %+v", st)
	}
	restart("timed pause at step 1")

	s.mustCLI("promote", "shop")
	s.waitFor("indefinite pause at step 3 with 50%", 20*time.Second, func(st status) bool {
		return st.StepIndex == 3 && st.Weight == 50 && st.ObservedWeight == 50 && st.PauseReason == "PauseStep"
	})
	restart("indefinite pause at step 3")
	if sh := share(assign(t, s.Listen, 1000), "v2"); sh < 44 || sh > 56 {
		t.Fatalf("canary share %.1f%% at weight 50 after the restart", sh)
	}

	s.mustCLI("promote", "shop", "--full")
	s.waitFor("Healthy on v2", 10*time.Second, func(st status) bool { return st.Phase == "Healthy" && st.StableVersion == "v2" })
	restart("completed")

	// The state is in PostgreSQL, not in --data-dir.
	if !strings.Contains(s.logs.String(), "state in PostgreSQL") {
		t.Errorf("serve does not log where the state is:\n%s", s.logs.String())
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, "coalmine.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--data-dir holds an embedded store (%v); with --store nothing belongs there", err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM coalmine_events WHERE stream LIKE '%shop%'").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if evs := s.events(); stored != len(evs) {
		t.Errorf("PostgreSQL holds %d events of shop, the API shows %d", stored, len(evs))
	}
}

// A --store that is not a PostgreSQL URL is a usage error, and a database
// that cannot be reached stops start-up with what to check, without the
// password. Neither needs a PostgreSQL server.
func TestServeStoreErrorsSayWhatToCheck(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	const secret = "hunter2-secret"
	cases := []struct {
		name  string
		args  []string
		env   []string
		code  int
		wants []string
	}{
		{"not a URL", []string{"--store", "/var/lib/coalmine"}, nil, 2,
			[]string{"is not a PostgreSQL URL", "postgres://user:password@host:5432/database", "--data-dir"}},
		{"another database", []string{"--store", "mysql://root:" + secret + "@db/coalmine"}, nil, 2,
			[]string{"mysql://root:xxxxx@db/coalmine is not a PostgreSQL URL"}},
		{"unreachable", []string{"--store", fmt.Sprintf("postgres://coalmine:%s@%s/coalmine?sslmode=disable", secret, closed)}, nil, 1,
			[]string{"connect to PostgreSQL postgres://coalmine:xxxxx@" + closed, "check that the server runs"}},
		{"unreachable, from COALMINE_STORE", nil, []string{fmt.Sprintf("COALMINE_STORE=postgresql://coalmine:%s@%s/coalmine", secret, closed)}, 1,
			[]string{"connect to PostgreSQL postgresql://coalmine:xxxxx@" + closed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append([]string{"serve", "-f", s.Config, "--admin", strings.TrimPrefix(s.Admin, "http://"), "--data-dir", s.DataDir}, c.args...)
			cmd := exec.CommandContext(ctx, binary, args...)
			cmd.Env = append(os.Environ(), c.env...)
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != c.code {
				t.Fatalf("exit %d, want %d:\n%s", code, c.code, out)
			}
			for _, w := range c.wants {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), secret) {
				t.Errorf("output shows the password:\n%s", out)
			}
		})
	}
}

// A database migrated by a newer coalmine is refused at start, saying so.
func TestServeRefusesADatabaseFromANewerCoalmine(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE coalmine_schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO coalmine_schema_migrations (version, name) VALUES (99, 'from_the_future')`); err != nil {
		t.Fatal(err)
	}
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	out, code := run(t, "serve", "-f", s.Config, "--admin", strings.TrimPrefix(s.Admin, "http://"), "--store", dsn)
	if code != 1 || !regexp.MustCompile(`database schema version 99 is newer than this coalmine \(\d+\): upgrade coalmine`).MatchString(out) {
		t.Fatalf("serve on a newer schema: exit %d:\n%s", code, out)
	}
}
