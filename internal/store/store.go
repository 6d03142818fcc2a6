// Package store defines coalmine's persistence contract: versioned records
// with compare-and-swap, grouped in collections. Implementations live in
// sub-packages (bolt today; a shared PostgreSQL store later) and must pass
// the storetest conformance suite.
package store

import (
	"context"
	"errors"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no record under that key.
	ErrNotFound = errors.New("record not found")
	// ErrConflict: the record changed since it was read (compare-and-swap failed).
	ErrConflict = errors.New("record changed concurrently")
)

// Record is one stored value. Version is 0 for a record that does not exist
// yet; every successful Put returns the record with Version incremented.
type Record struct {
	Key     string
	Version uint64
	Data    []byte
}

// Store persists records durably: Put returns only after the write is on disk.
type Store interface {
	Get(ctx context.Context, collection, key string) (Record, error)
	List(ctx context.Context, collection string) ([]Record, error)
	// Put writes r if the stored version equals r.Version (0 = must not exist)
	// and returns the stored record with its new version.
	Put(ctx context.Context, collection string, r Record) (Record, error)
	Delete(ctx context.Context, collection, key string) error
	Close() error
}
