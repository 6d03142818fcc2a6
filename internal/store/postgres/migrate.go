package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema is created and upgraded by numbered SQL files built into the
// binary. A database records the ones applied in coalmine_schema_migrations,
// so a binary knows whether the database is behind it (apply the rest),
// level with it, or ahead of it (refuse: an older binary does not know what
// a newer schema means).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema change: version n is applied after n-1.
type migration struct {
	Version int
	Name    string
	SQL     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// loadMigrations reads the migrations of dir in fsys, which must be numbered
// 1, 2, 3... without gaps.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(out)+1 {
			return nil, fmt.Errorf("migration %s: expected version %d next (migrations are numbered 1, 2, 3... without gaps)", e.Name(), len(out)+1)
		}
		sql, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{Version: v, Name: m[2], SQL: string(sql)})
	}
	return out, nil
}

// embeddedMigrations are the migrations this binary knows.
func embeddedMigrations() []migration {
	ms, err := loadMigrations(migrationFiles, "migrations")
	if err != nil {
		panic(err) // a build that embeds broken migrations; TestEmbeddedMigrations catches it
	}
	return ms
}

// SchemaVersion is the schema version this binary creates and expects.
func SchemaVersion() int { return len(embeddedMigrations()) }

// NewerSchemaError says the database was migrated by a newer coalmine.
type NewerSchemaError struct{ Database, Binary int }

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this coalmine (%d): upgrade coalmine", e.Database, e.Binary)
}

// nextMigration decides what to do with a database at schema version
// applied: the migration to apply next, or none when it is up to date.
func nextMigration(applied int, known []migration) (*migration, error) {
	switch {
	case applied > len(known):
		return nil, &NewerSchemaError{Database: applied, Binary: len(known)}
	case applied == len(known):
		return nil, nil
	}
	return &known[applied], nil
}

// migrationLock is the advisory lock key every migration transaction holds,
// so replicas starting together apply each migration once, in turn
// ("coalmine" in ASCII).
const migrationLock int64 = 0x636f616c6d696e65

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS coalmine_schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrate brings the database's schema up to the last of known, one
// migration per transaction. Each transaction first takes the advisory
// lock and reads the version again, so a replica that waited for another
// one sees its work and does not repeat it. The lock is a transaction lock:
// it goes with the transaction, even when the connection breaks.
func migrate(ctx context.Context, pool *pgxpool.Pool, known []migration) error {
	for {
		done := false
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
				return fmt.Errorf("wait for the schema migration lock: %w", err)
			}
			// Create the table only when it is missing, so a user allowed
			// only to read and write the tables can start on an
			// up-to-date schema.
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT to_regclass('coalmine_schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
				return fmt.Errorf("look for coalmine_schema_migrations: %w", err)
			}
			if !exists {
				if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
					return fmt.Errorf("create coalmine_schema_migrations: %w", err)
				}
			}
			var applied int
			if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM coalmine_schema_migrations").Scan(&applied); err != nil {
				return fmt.Errorf("read the schema version: %w", err)
			}
			next, err := nextMigration(applied, known)
			if err != nil || next == nil {
				done = true
				return err
			}
			if _, err := tx.Exec(ctx, next.SQL); err != nil {
				return fmt.Errorf("apply schema migration %d (%s): %w", next.Version, next.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO coalmine_schema_migrations (version, name) VALUES ($1, $2)", next.Version, next.Name); err != nil {
				return fmt.Errorf("record schema migration %d: %w", next.Version, err)
			}
			return nil
		})
		if err != nil {
			return withPrivilegeHint(err)
		}
		if done {
			return nil
		}
	}
}

// withPrivilegeHint adds what to do to a permission error.
func withPrivilegeHint(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
		return fmt.Errorf("%w: the store's user must be able to create tables; give coalmine a database it owns (CREATE DATABASE coalmine OWNER that_user)", err)
	}
	return err
}
