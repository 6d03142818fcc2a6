package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	bbolt "go.etcd.io/bbolt"

	"github.com/coalmine-dev/coalmine/internal/store"
)

// Streams live in one top-level bucket with a nested bucket per stream whose
// keys are 8-byte big-endian sequence numbers, so a cursor walks them in
// order. The nested bucket's own sequence counter (bbolt's NextSequence)
// numbers the events; it survives Trim because deleting keys does not touch it.
var streamsBucket = []byte("\x00streams")

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// Commit applies a batch in one bbolt transaction, which bbolt fsyncs.
func (s *Store) Commit(_ context.Context, b store.Batch) (store.Committed, error) {
	var out store.Committed
	err := s.db.Update(func(tx *bbolt.Tx) error {
		out = store.Committed{Records: make([]store.Record, 0, len(b.Puts)), Events: make([][]store.Event, 0, len(b.Appends))}
		for _, c := range b.Checks {
			if err := check(tx, c); err != nil {
				return err
			}
		}
		for _, p := range b.Puts {
			rec, err := put(tx, p.Collection, p.Record)
			if err != nil {
				return err
			}
			out.Records = append(out.Records, rec)
		}
		for _, d := range b.Deletes {
			if bk := tx.Bucket([]byte(d.Collection)); bk != nil {
				if err := bk.Delete([]byte(d.Key)); err != nil {
					return fmt.Errorf("delete %s/%s: %w", d.Collection, d.Key, err)
				}
			}
		}
		for _, a := range b.Appends {
			evs, err := appendEvents(tx, a)
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

func appendEvents(tx *bbolt.Tx, a store.Append) ([]store.Event, error) {
	if a.Stream == "" {
		return nil, errors.New("append to a stream with an empty name")
	}
	root, err := tx.CreateBucketIfNotExists(streamsBucket)
	if err != nil {
		return nil, err
	}
	bk, err := root.CreateBucketIfNotExists([]byte(a.Stream))
	if err != nil {
		return nil, err
	}
	evs := make([]store.Event, 0, len(a.Data))
	for _, d := range a.Data {
		seq, err := bk.NextSequence()
		if err != nil {
			return nil, err
		}
		if err := bk.Put(seqKey(seq), d); err != nil {
			return nil, fmt.Errorf("append to stream %s: %w", a.Stream, err)
		}
		evs = append(evs, store.Event{Seq: seq, Data: d})
	}
	return evs, nil
}

func streamBucket(tx *bbolt.Tx, stream string) *bbolt.Bucket {
	root := tx.Bucket(streamsBucket)
	if root == nil {
		return nil
	}
	return root.Bucket([]byte(stream))
}

// Events reads events after a sequence number.
func (s *Store) Events(_ context.Context, stream string, after uint64, limit int) ([]store.Event, error) {
	var out []store.Event
	err := s.db.View(func(tx *bbolt.Tx) error {
		bk := streamBucket(tx, stream)
		if bk == nil || after == math.MaxUint64 { // after+1 would wrap to 0
			return nil
		}
		c := bk.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("stream %s holds a corrupt key %x", stream, k)
			}
			out = append(out, store.Event{Seq: binary.BigEndian.Uint64(k), Data: append([]byte(nil), v...)})
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	return out, nil
}

// LastSeq reports the stream's sequence counter.
func (s *Store) LastSeq(_ context.Context, stream string) (uint64, error) {
	var seq uint64
	err := s.db.View(func(tx *bbolt.Tx) error {
		if bk := streamBucket(tx, stream); bk != nil {
			seq = bk.Sequence()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read stream %s: %w", stream, err)
	}
	return seq, nil
}

// Trim deletes old events of a stream.
func (s *Store) Trim(_ context.Context, stream string, upTo uint64) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		bk := streamBucket(tx, stream)
		if bk == nil {
			return nil
		}
		c := bk.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= upTo; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("trim stream %s: %w", stream, err)
	}
	return nil
}

// DeleteStream removes a stream with its counter.
func (s *Store) DeleteStream(_ context.Context, stream string) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(streamsBucket)
		if root == nil || root.Bucket([]byte(stream)) == nil {
			return nil
		}
		return root.DeleteBucket([]byte(stream))
	})
	if err != nil {
		return fmt.Errorf("delete stream %s: %w", stream, err)
	}
	return nil
}
