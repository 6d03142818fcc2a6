// Package postgres is the shared store: coalmine's records and event streams
// in a PostgreSQL database, for replicas that must see one state. It keeps
// every promise of the embedded store (compare-and-swap versions, atomic
// and durable batches, sequence numbers never reused) with PostgreSQL
// transactions, and creates or upgrades its schema itself at Open.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coalmine-dev/coalmine/internal/store"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store in a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	// shared holds the single-server lock in shared mode (HoldShared).
	shared *pgxpool.Conn
	// log receives the change feed's connection errors (SetLogger).
	log          *slog.Logger
	lastListenMu sync.Mutex
	lastListen   time.Time
}

// SetLogger makes the store log what it cannot report through a return
// value: a change feed that lost its connection and reconnects.
func (s *Store) SetLogger(l *slog.Logger) { s.log = l }

// logListen logs a lost change-feed connection, at most every 30 s.
func (s *Store) logListen(err error) {
	if s.log == nil {
		return
	}
	s.lastListenMu.Lock()
	defer s.lastListenMu.Unlock()
	if now := time.Now(); now.Sub(s.lastListen) >= 30*time.Second {
		s.lastListen = now
		s.log.Warn("the PostgreSQL change feed lost its connection; reconnecting (changes are re-read every 2 s meanwhile)", "err", err)
	}
}

// IsURL reports whether s names a PostgreSQL database (postgres:// or
// postgresql://), the form --store accepts.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// defaultMaxConns is the pool size when the URL does not set
// pool_max_conns.
const defaultMaxConns = 24

// connectTimeout bounds each connection attempt when the URL does not set
// connect_timeout: an unreachable server fails start-up instead of hanging.
const connectTimeout = 10 * time.Second

// Open connects to the database at rawURL (postgres://user:password@host:port/db?...),
// and creates or upgrades the schema. A database whose schema is newer
// than this binary's is refused with a *NewerSchemaError. Errors never
// contain the URL's password.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	return open(ctx, rawURL, embeddedMigrations())
}

func open(ctx context.Context, rawURL string, migrations []migration) (*Store, error) {
	where := Redact(rawURL)
	if !IsURL(rawURL) {
		return nil, fmt.Errorf("open PostgreSQL store %s: not a postgres:// or postgresql:// URL", where)
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store %s: %s; the form is postgres://user:password@host:5432/database?sslmode=disable", where, parseCause(err, rawURL))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	if !strings.Contains(rawURL, "pool_max_conns") {
		// pgxpool's default is the number of CPUs (at least 4), but a
		// replica keeps two connections for itself (the change feed's
		// LISTEN and the single-server lock) and the controller commits
		// from up to 16 reconciles at once.
		cfg.MaxConns = defaultMaxConns
	}
	params := cfg.ConnConfig.RuntimeParams
	// A Commit must be durable when it returns, whatever the server's
	// default; a URL that says otherwise is the operator's choice.
	if _, set := params["synchronous_commit"]; !set {
		params["synchronous_commit"] = "on"
	}
	if _, set := params["application_name"]; !set {
		params["application_name"] = "coalmine"
	}
	// A replica paused or cut off in the middle of a transaction must not
	// hold its locks (a fenced batch holds the epoch record FOR SHARE)
	// longer than a lease lasts, or no other replica could take over: the
	// server ends such a session after 2 s idle in a transaction, and TCP
	// keepalives notice a vanished client within about 10 s.
	for k, v := range map[string]string{
		"idle_in_transaction_session_timeout": "2000",
		"tcp_keepalives_idle":                 "5",
		"tcp_keepalives_interval":             "2",
		"tcp_keepalives_count":                "3",
	} {
		if _, set := params[k]; !set {
			params[k] = v
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL %s: %w; check that the server runs and accepts connections there, and the user, password and database in --store (or COALMINE_STORE)", where, err)
	}
	if err := migrate(ctx, pool, migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("prepare the schema of PostgreSQL %s: %w", where, err)
	}
	return &Store{pool: pool}, nil
}

// parseCause is why pgx could not parse rawURL, without quoting it: pgx's
// own message and net/url's both quote the whole URL, password included.
func parseCause(err error, rawURL string) string {
	cause := "the URL cannot be parsed"
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) && errors.Unwrap(pce) != nil {
		cause = errors.Unwrap(pce).Error()
		var ue *url.Error
		if errors.As(pce, &ue) {
			cause = ue.Err.Error()
		}
	}
	// Whatever else quotes a part of the URL must not show its user info.
	if at := strings.LastIndex(rawURL, "@"); at > 0 {
		if start := strings.Index(rawURL, "://"); start >= 0 && start+3 < at {
			if userinfo := rawURL[start+3 : at]; strings.Contains(cause, userinfo) {
				cause = strings.ReplaceAll(cause, userinfo, "xxxxx")
			}
		}
	}
	return cause
}

// Redact returns a URL for messages: its password replaced by "xxxxx".
// Something that is not a URL is shown as it is (a path, say) unless it
// may hold a password (a key=value connection string).
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		return "(the given URL)"
	case u.Scheme == "" && u.Host == "":
		if strings.Contains(strings.ToLower(rawURL), "password") {
			return "(the given URL)"
		}
		return rawURL
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	// Every parameter that names a password (password, sslpassword...).
	q := u.Query()
	masked := false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
			masked = true
		}
	}
	if masked {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Close releases the connections.
func (s *Store) Close() error {
	if s.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = s.shared.Exec(ctx, "SELECT pg_advisory_unlock_shared($1)", singleServerLock)
		cancel()
		s.shared.Release()
		s.shared = nil
	}
	s.pool.Close()
	return nil
}

// singleServerLock is the session advisory lock that coalmine releases
// from before replicas ("coalmine-serve" in ASCII, truncated to 8 bytes)
// held exclusively while they served a database, refusing a second server.
// Replicas hold it shared: they run together, an older server running is
// detected, and an older server started later is refused by its own check.
const singleServerLock int64 = 0x636f616c6d2d7376

// ErrOlderServer is returned by HoldShared while a coalmine from before
// replicas serves the database.
var ErrOlderServer = errors.New("a coalmine from before replicas is serving this database")

// HoldShared takes the single-server lock in shared mode until Close (see
// singleServerLock). It waits up to 2 s for a holder that was just
// killed to lose it.
func (s *Store) HoldShared(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("check for an older coalmine on the database: %w", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock_shared($1)", singleServerLock).Scan(&got); err != nil {
			conn.Release()
			return fmt.Errorf("check for an older coalmine on the database: %w", err)
		}
		if got {
			s.shared = conn
			return nil
		}
		if time.Now().After(deadline) {
			conn.Release()
			return fmt.Errorf("%w: it does not take part in leader election, so both would drive the rollouts; stop it (or upgrade it) first", ErrOlderServer)
		}
		select {
		case <-ctx.Done():
			conn.Release()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Get reads one record.
func (s *Store) Get(ctx context.Context, collection, key string) (store.Record, error) {
	rec := store.Record{Key: key}
	var version int64
	err := s.pool.QueryRow(ctx, "SELECT version, data FROM coalmine_records WHERE collection = $1 AND key = $2", collection, key).Scan(&version, &rec.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Record{}, fmt.Errorf("get %s/%s: %w", collection, key, err)
	}
	rec.Version = uint64(version)
	return rec, nil
}

// List reads every record of a collection in key order.
func (s *Store) List(ctx context.Context, collection string) ([]store.Record, error) {
	rows, err := s.pool.Query(ctx, "SELECT key, version, data FROM coalmine_records WHERE collection = $1 ORDER BY key", collection)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", collection, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Record, error) {
		var r store.Record
		var version int64
		err := row.Scan(&r.Key, &version, &r.Data)
		r.Version = uint64(version)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", collection, err)
	}
	return out, nil
}

// Put writes a record with compare-and-swap on its version.
func (s *Store) Put(ctx context.Context, collection string, r store.Record) (store.Record, error) {
	var out store.Record
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = put(ctx, tx, collection, r)
		return err
	})
	if err != nil {
		return store.Record{}, err
	}
	return out, nil
}

// put writes one record inside tx. The version check is part of the write
// itself: an UPDATE that matches no row at the expected version, or an
// INSERT that finds the key taken, changed nothing.
func put(ctx context.Context, tx pgx.Tx, collection string, r store.Record) (store.Record, error) {
	if r.Key == "" {
		return store.Record{}, fmt.Errorf("put into %s: empty key", collection)
	}
	data := nonNil(r.Data)
	var tag pgconn.CommandTag
	var err error
	switch {
	case r.Version == 0:
		if err = createLock(ctx, tx, collection, r.Key); err != nil {
			break
		}
		tag, err = tx.Exec(ctx, `INSERT INTO coalmine_records (collection, key, version, data) VALUES ($1, $2, 1, $3)
			ON CONFLICT (collection, key) DO NOTHING`, collection, r.Key, data)
	case r.Version < math.MaxInt64:
		tag, err = tx.Exec(ctx, `UPDATE coalmine_records SET version = version + 1, data = $4
			WHERE collection = $1 AND key = $2 AND version = $3`, collection, r.Key, int64(r.Version), data)
	default:
		// No stored version can be this large (they are bigint), so the
		// check fails like any other stale version.
	}
	if err != nil {
		return store.Record{}, fmt.Errorf("put %s/%s: %w", collection, r.Key, err)
	}
	if tag.RowsAffected() == 1 {
		return store.Record{Key: r.Key, Version: r.Version + 1, Data: r.Data}, nil
	}
	var current int64
	err = tx.QueryRow(ctx, "SELECT version FROM coalmine_records WHERE collection = $1 AND key = $2", collection, r.Key).Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return store.Record{}, fmt.Errorf("put %s/%s: %w", collection, r.Key, err)
	}
	return store.Record{}, fmt.Errorf("put %s/%s: %w: stored version %d, expected %d", collection, r.Key, store.ErrConflict, current, r.Version)
}

// Delete removes a record; deleting a missing record is not an error.
func (s *Store) Delete(ctx context.Context, collection, key string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM coalmine_records WHERE collection = $1 AND key = $2", collection, key); err != nil {
		return fmt.Errorf("delete %s/%s: %w", collection, key, err)
	}
	return nil
}

// nonNil keeps an empty value from being stored as NULL (pgx sends a nil
// slice as NULL).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Transient failures a whole transaction is tried again for. They roll the
// transaction back, so nothing of it was written, and every compare-and-swap
// is checked again in the next attempt: a retry can fail with ErrConflict,
// but never writes over a change it did not see.
const (
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
	txAttempts           = 5
)

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == serializationFailure || pgErr.Code == deadlockDetected)
}

// inTx runs fn in a READ COMMITTED transaction and commits it, trying
// again a few times after a deadlock. READ COMMITTED is enough: every write
// carries its own condition (the expected version, the absent key), which
// PostgreSQL checks against the newest committed row after waiting for any
// concurrent writer of that row.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		wrote := false
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			wrote = true
			return nil
		})
		var pgErr *pgconn.PgError
		if err != nil && wrote && !errors.As(err, &pgErr) && !pgconn.SafeToRetry(err) {
			// The connection failed around COMMIT: the server may have
			// committed without being able to say so.
			return fmt.Errorf("the connection failed while committing, so the writes may or may not be saved: %w", err)
		}
		if err == nil || !retryable(err) || attempt == txAttempts {
			if err != nil && retryable(err) {
				err = fmt.Errorf("gave up after %d attempts: %w", attempt, err)
			}
			return err
		}
		// Deadlocked transactions retrying in step would meet again.
		backoff := time.Duration(attempt) * time.Duration(1+time.Now().UnixNano()%5) * time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
}
