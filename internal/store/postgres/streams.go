package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/coalmine-dev/coalmine/internal/store"
)

// Commit applies a batch in one transaction: checks, then puts, then
// deletes, then appends, in the batch's order. A check or put that fails
// its version check rolls the whole transaction back, sequence numbers
// included.
func (s *Store) Commit(ctx context.Context, b store.Batch) (store.Committed, error) {
	var out store.Committed
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = store.Committed{Records: make([]store.Record, 0, len(b.Puts)), Events: make([][]store.Event, 0, len(b.Appends))}
		for _, c := range b.Checks {
			if err := check(ctx, tx, c); err != nil {
				return err
			}
		}
		for _, p := range b.Puts {
			rec, err := put(ctx, tx, p.Collection, p.Record)
			if err != nil {
				return err
			}
			out.Records = append(out.Records, rec)
		}
		for _, d := range b.Deletes {
			if _, err := tx.Exec(ctx, "DELETE FROM coalmine_records WHERE collection = $1 AND key = $2", d.Collection, d.Key); err != nil {
				return fmt.Errorf("delete %s/%s: %w", d.Collection, d.Key, err)
			}
		}
		for _, a := range b.Appends {
			evs, err := appendEvents(ctx, tx, a)
			if err != nil {
				return err
			}
			out.Events = append(out.Events, evs)
		}
		return nil
	})
	if err != nil {
		return store.Committed{}, fmt.Errorf("commit batch: %w", err)
	}
	return out, nil
}

// check asserts a record's version for the rest of the transaction, not
// only at the moment it is read: FOR SHARE keeps the row from being
// updated until this transaction ends, so a leader's batch fenced by the
// epoch record either commits before a takeover changes that record, or
// waits for the takeover and then sees the new version and fails. (FOR KEY
// SHARE would not do: an update of the version alone does not conflict
// with it.) A record that must not exist has no row to lock; the key's
// creation lock (createLock) stands in for it.
func check(ctx context.Context, tx pgx.Tx, c store.Check) error {
	if c.Version == 0 {
		if err := createLock(ctx, tx, c.Collection, c.Key); err != nil {
			return fmt.Errorf("check %s/%s: %w", c.Collection, c.Key, err)
		}
	}
	var current int64
	err := tx.QueryRow(ctx, "SELECT version FROM coalmine_records WHERE collection = $1 AND key = $2 FOR SHARE", c.Collection, c.Key).Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("check %s/%s: %w", c.Collection, c.Key, err)
	}
	if uint64(current) != c.Version {
		return fmt.Errorf("check %s/%s: %w: stored version %d, expected %d", c.Collection, c.Key, store.ErrConflict, current, c.Version)
	}
	return nil
}

// createLock takes a transaction lock on a key's name, held by whoever
// creates the key and whoever asserts that it does not exist, so that an
// absence checked stays true until the checking transaction ends. Two keys
// whose names hash alike only wait for each other.
func createLock(ctx context.Context, tx pgx.Tx, collection, key string) error {
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))", collection, key)
	return err
}

// appendSQL advances the stream's counter by the number of events and
// inserts them numbered up to the new value, in one statement. The
// counter's row stays locked until the transaction ends, so concurrent
// appenders of one stream get consecutive, distinct ranges.
const appendSQL = `WITH counter AS (
	INSERT INTO coalmine_streams AS s (stream, last_seq) VALUES ($1, cardinality($2::bytea[]))
	ON CONFLICT (stream) DO UPDATE SET last_seq = s.last_seq + EXCLUDED.last_seq
	RETURNING last_seq
), inserted AS (
	INSERT INTO coalmine_events (stream, seq, data)
	SELECT $1, counter.last_seq - cardinality($2::bytea[]) + e.n, e.data
	FROM counter, unnest($2::bytea[]) WITH ORDINALITY AS e(data, n)
)
SELECT last_seq FROM counter`

func appendEvents(ctx context.Context, tx pgx.Tx, a store.Append) ([]store.Event, error) {
	if a.Stream == "" {
		return nil, errors.New("append to a stream with an empty name")
	}
	data := make([][]byte, len(a.Data))
	for i, d := range a.Data {
		data[i] = nonNil(d)
	}
	var last int64
	if err := tx.QueryRow(ctx, appendSQL, a.Stream, data).Scan(&last); err != nil {
		return nil, fmt.Errorf("append to stream %s: %w", a.Stream, err)
	}
	first := uint64(last) - uint64(len(a.Data)) + 1
	evs := make([]store.Event, len(a.Data))
	for i, d := range a.Data {
		evs[i] = store.Event{Seq: first + uint64(i), Data: d}
	}
	return evs, nil
}

// Events reads events after a sequence number.
func (s *Store) Events(ctx context.Context, stream string, after uint64, limit int) ([]store.Event, error) {
	if after >= math.MaxInt64 { // no stored seq is larger
		return nil, nil
	}
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	// LIMIT NULL is no limit.
	rows, err := s.pool.Query(ctx, "SELECT seq, data FROM coalmine_events WHERE stream = $1 AND seq > $2 ORDER BY seq LIMIT $3", stream, int64(after), lim)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Event, error) {
		var e store.Event
		var seq int64
		err := row.Scan(&seq, &e.Data)
		e.Seq = uint64(seq)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// LastSeq reports the stream's counter.
func (s *Store) LastSeq(ctx context.Context, stream string) (uint64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, "SELECT last_seq FROM coalmine_streams WHERE stream = $1", stream).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read stream %s: %w", stream, err)
	}
	return uint64(seq), nil
}

// Trim deletes old events of a stream; its counter stays.
func (s *Store) Trim(ctx context.Context, stream string, upTo uint64) error {
	if upTo > math.MaxInt64 {
		upTo = math.MaxInt64
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM coalmine_events WHERE stream = $1 AND seq <= $2", stream, int64(upTo)); err != nil {
		return fmt.Errorf("trim stream %s: %w", stream, err)
	}
	return nil
}

// DeleteStream removes a stream's events and its counter together.
func (s *Store) DeleteStream(ctx context.Context, stream string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Lock the counter row first, creating it if need be: under READ
		// COMMITTED a DELETE alone does not see (and so does not wait for)
		// the counter of a stream whose first append is in flight, which
		// could then commit between the two deletes and lose its events.
		if _, err := tx.Exec(ctx, `INSERT INTO coalmine_streams AS s (stream, last_seq) VALUES ($1, 0)
			ON CONFLICT (stream) DO UPDATE SET last_seq = s.last_seq`, stream); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM coalmine_streams WHERE stream = $1", stream); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM coalmine_events WHERE stream = $1", stream)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete stream %s: %w", stream, err)
	}
	return nil
}
