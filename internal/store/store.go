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
	// ErrFenced: a write refused because the writer no longer leads (its
	// lease passed and another replica took over, or it stepped down). It
	// is not a conflict: reading again and retrying cannot succeed.
	ErrFenced = errors.New("write refused: this replica no longer leads")
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
	Streams
	Close() error
}

// Event is one entry of an append-only, sequenced stream (a rollout's event
// log). Seq starts at 1 and increases by one per stream; it is never reused,
// even after Trim.
type Event struct {
	Seq  uint64
	Data []byte
}

// Put is one compare-and-swap write of a Batch.
type Put struct {
	Collection string
	Record     Record
}

// Append adds events to the end of a stream as part of a Batch.
type Append struct {
	Stream string
	Data   [][]byte
}

// Batch is an atomic, durable unit of writes: every Put (each checked
// against its Record.Version) and every Append happen together or not at
// all. The rollout controller saves a status together with the events it
// announces, so a crash can neither lose an event nor announce a change
// that was not saved.
type Batch struct {
	Puts    []Put
	Appends []Append
	// Deletes removes records (missing ones are not an error).
	Deletes []Delete
	// Checks are versions the batch asserts without writing: it commits
	// only if each record is still at its Version. A leader fences its
	// writes this way with the version of its epoch record, so a leader
	// that lost its lease can no longer change anything.
	Checks []Check
}

// Check asserts that a record is at Version (0: the record does not
// exist) when a Batch commits.
type Check struct {
	Collection string
	Key        string
	Version    uint64
}

// Delete is one record removal of a Batch.
type Delete struct {
	Collection string
	Key        string
}

// Committed is what a Batch wrote: the records of Puts in order, with their
// new versions, and the events of Appends in order, with their sequence
// numbers.
type Committed struct {
	Records []Record
	Events  [][]Event
}

// Streams is the event-log half of a store.
type Streams interface {
	// Commit applies a batch atomically and durably. When any Put or Check
	// fails its version check, nothing is written and the error wraps
	// ErrConflict.
	Commit(ctx context.Context, b Batch) (Committed, error)
	// Events returns up to limit events of stream with Seq > after, oldest
	// first (limit <= 0 means no limit). A missing stream has no events.
	Events(ctx context.Context, stream string, after uint64, limit int) ([]Event, error)
	// LastSeq is the Seq of the newest event ever appended to stream (0 when none).
	LastSeq(ctx context.Context, stream string) (uint64, error)
	// Trim deletes the events of stream with Seq <= upTo (retention).
	// LastSeq and later sequence numbers are unaffected.
	Trim(ctx context.Context, stream string, upTo uint64) error
	// DeleteStream removes a stream and its sequence counter.
	DeleteStream(ctx context.Context, stream string) error
}

// Change says that a record may have changed. Resync means changes may
// have been missed (a lost connection, a full buffer): re-read everything.
type Change struct {
	Collection string
	Key        string
	Resync     bool
}

// ChangeFeed is implemented by stores that several processes share: it
// tells one process what the others wrote, so it can re-read at once
// instead of polling. A feed is a hint, never the only path: notifications
// can be lost, so readers still re-read periodically.
type ChangeFeed interface {
	// Changes sends the changes committed by anyone (this process
	// included) until ctx ends, then closes the channel. The first value
	// is a Resync once the feed is listening.
	Changes(ctx context.Context) <-chan Change
}
