// Package bolt is the embedded store, a single bbolt file in the data
// directory. bbolt fsyncs every committed transaction, so a Put that
// returned survives a crash.
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/coalmine-dev/coalmine/internal/store"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store backed by bbolt.
type Store struct{ db *bbolt.DB }

// FileName is the database file inside the data directory.
const FileName = "coalmine.db"

// Open opens (creating if needed) the store in dir. A second process on the
// same directory gets a clear error instead of waiting forever.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: another coalmine process holds it; stop it or use another --data-dir", path)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Record layout: 8-byte big-endian version followed by the data.
func encode(version uint64, data []byte) []byte {
	b := make([]byte, 8+len(data))
	binary.BigEndian.PutUint64(b, version)
	copy(b[8:], data)
	return b
}

func decode(key string, v []byte) (store.Record, error) {
	if len(v) < 8 {
		return store.Record{}, fmt.Errorf("record %q is corrupt: %d bytes", key, len(v))
	}
	return store.Record{Key: key, Version: binary.BigEndian.Uint64(v), Data: append([]byte(nil), v[8:]...)}, nil
}

// Get reads one record.
func (s *Store) Get(_ context.Context, collection, key string) (store.Record, error) {
	var rec store.Record
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(collection))
		if b == nil {
			return store.ErrNotFound
		}
		v := b.Get([]byte(key))
		if v == nil {
			return store.ErrNotFound
		}
		var err error
		rec, err = decode(key, v)
		return err
	})
	if err != nil {
		return store.Record{}, fmt.Errorf("get %s/%s: %w", collection, key, err)
	}
	return rec, nil
}

// List reads every record of a collection in key order.
func (s *Store) List(_ context.Context, collection string) ([]store.Record, error) {
	var out []store.Record
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(collection))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			rec, err := decode(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", collection, err)
	}
	return out, nil
}

// Put writes a record with compare-and-swap on its version.
func (s *Store) Put(_ context.Context, collection string, r store.Record) (store.Record, error) {
	var out store.Record
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var err error
		out, err = put(tx, collection, r)
		return err
	})
	if err != nil {
		return store.Record{}, err
	}
	return out, nil
}

// put writes one record inside tx with compare-and-swap on its version.
// check compares a record's stored version with c.Version.
func check(tx *bbolt.Tx, c store.Check) error {
	var current uint64
	if b := tx.Bucket([]byte(c.Collection)); b != nil {
		if v := b.Get([]byte(c.Key)); v != nil {
			cur, err := decode(c.Key, v)
			if err != nil {
				return fmt.Errorf("check %s/%s: %w", c.Collection, c.Key, err)
			}
			current = cur.Version
		}
	}
	if current != c.Version {
		return fmt.Errorf("check %s/%s: %w: stored version %d, expected %d", c.Collection, c.Key, store.ErrConflict, current, c.Version)
	}
	return nil
}

func put(tx *bbolt.Tx, collection string, r store.Record) (store.Record, error) {
	if r.Key == "" {
		return store.Record{}, fmt.Errorf("put into %s: empty key", collection)
	}
	out := store.Record{Key: r.Key, Version: r.Version + 1, Data: r.Data}
	b, err := tx.CreateBucketIfNotExists([]byte(collection))
	if err != nil {
		return store.Record{}, fmt.Errorf("put %s/%s: %w", collection, r.Key, err)
	}
	var current uint64
	if v := b.Get([]byte(r.Key)); v != nil {
		cur, err := decode(r.Key, v)
		if err != nil {
			return store.Record{}, fmt.Errorf("put %s/%s: %w", collection, r.Key, err)
		}
		current = cur.Version
	}
	if current != r.Version {
		return store.Record{}, fmt.Errorf("put %s/%s: %w: stored version %d, expected %d", collection, r.Key, store.ErrConflict, current, r.Version)
	}
	if err := b.Put([]byte(r.Key), encode(out.Version, r.Data)); err != nil {
		return store.Record{}, fmt.Errorf("put %s/%s: %w", collection, r.Key, err)
	}
	return out, nil
}

// Delete removes a record; deleting a missing record is not an error.
func (s *Store) Delete(_ context.Context, collection, key string) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(collection))
		if b == nil {
			return nil
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", collection, key, err)
	}
	return nil
}

// Close closes the database file.
func (s *Store) Close() error { return s.db.Close() }
