package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/store"
)

// FencedStore is the store as the leader's controller writes it: every
// write carries the leader's fence, so that a replica that lost the lease
// (paused past it, or cut off from the database) cannot change anything,
// even before it learns that it lost. While this replica does not lead,
// every write is refused here, without reaching the database.
//
// Reads pass through unchanged. Trim and DeleteStream cannot carry a check
// (they are not part of a batch); they are refused while not leading and
// otherwise pass through: what a late one can do is drop events older than
// the retention, or the events of a rollout already removed.
type FencedStore struct {
	store.Store
	// Logger receives the refused late writes.
	Logger *slog.Logger
	// OnFenced is called (without blocking for long) when the database
	// refused a write because the epoch moved on: this replica must stop
	// leading at once.
	OnFenced func()

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	fence atomic.Pointer[store.Check]
	until atomic.Int64 // Unix ns: the lease's expiry by this clock
}

// Lead makes writes go through, each fenced by check (Status.Fence),
// until the lease's expiry (Extend moves it at each renewal).
func (f *FencedStore) Lead(check store.Check, expiresAt time.Time) {
	// A renewal may have extended the lease already (Extend) by the
	// time the takeover gets here: keep the later expiry.
	if until := expiresAt.UnixNano(); until > f.until.Load() {
		f.until.Store(until)
	}
	f.fence.Store(&check)
}

// Extend moves the expiry after a renewal.
func (f *FencedStore) Extend(expiresAt time.Time) { f.until.Store(expiresAt.UnixNano()) }

// Follow refuses every write from now on.
func (f *FencedStore) Follow() { f.fence.Store(nil) }

// Leading reports whether writes go through.
func (f *FencedStore) Leading() bool { return f.fence.Load() != nil }

func (f *FencedStore) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// current returns the fence to write with. Past the lease's expiry by its
// own clock a leader refuses its own writes before the database has to: a
// process paused (GC, SIGSTOP, a frozen VM) past its lease wakes up with
// work that was due meanwhile, and another replica may lead by now.
func (f *FencedStore) current(what func() []string) (store.Check, error) {
	c := f.fence.Load()
	if c == nil {
		return store.Check{}, fmt.Errorf("%w: another replica leads, or none does yet", store.ErrFenced)
	}
	if until := time.Unix(0, f.until.Load()); !f.now().Before(until) {
		f.Follow()
		if f.Logger != nil {
			f.Logger.Error("a late write was refused: this replica's lease ran out (was the process paused or cut off from the database?); it stops leading",
				"leaseExpiredAt", until.UTC().Format(time.RFC3339Nano), "writes", what())
		}
		if f.OnFenced != nil {
			f.OnFenced()
		}
		return store.Check{}, fmt.Errorf("%w: its lease ran out at %s", store.ErrFenced, until.UTC().Format(time.RFC3339Nano))
	}
	return *c, nil
}

// Commit commits b with the fence added. A conflict caused by the fence
// (the epoch record moved on) is reported as store.ErrFenced, logged, and
// ends this replica's leadership through OnFenced; any other conflict is
// returned as it is.
func (f *FencedStore) Commit(ctx context.Context, b store.Batch) (store.Committed, error) {
	fence, err := f.current(func() []string { return describe(b) })
	if err != nil {
		return store.Committed{}, err
	}
	b.Checks = append(slices.Clone(b.Checks), fence)
	out, err := f.Store.Commit(ctx, b)
	if err == nil || !errors.Is(err, store.ErrConflict) {
		return out, err
	}
	epoch, gerr := f.Store.Get(ctx, fence.Collection, fence.Key)
	if gerr != nil && !errors.Is(gerr, store.ErrNotFound) {
		return out, err // cannot tell; a plain conflict is the safe answer
	}
	if epoch.Version == fence.Version {
		return out, err
	}
	f.Follow()
	if f.Logger != nil {
		f.Logger.Error("a late write was refused: this replica lost the lease and another one leads now; it stops leading",
			"fence", fmt.Sprintf("%s/%s@%d", fence.Collection, fence.Key, fence.Version), "epochVersionNow", epoch.Version,
			"writes", describe(b))
	}
	if f.OnFenced != nil {
		f.OnFenced()
	}
	return out, fmt.Errorf("%w (epoch record at version %d, this replica's lease was at %d)", store.ErrFenced, epoch.Version, fence.Version)
}

// describe names what a batch would have written, for the log.
func describe(b store.Batch) []string {
	var out []string
	for _, p := range b.Puts {
		out = append(out, "put "+p.Collection+"/"+p.Record.Key)
	}
	for _, d := range b.Deletes {
		out = append(out, "delete "+d.Collection+"/"+d.Key)
	}
	for _, a := range b.Appends {
		out = append(out, fmt.Sprintf("append %d to %s", len(a.Data), a.Stream))
	}
	return out
}

// Put is a fenced one-record batch.
func (f *FencedStore) Put(ctx context.Context, collection string, r store.Record) (store.Record, error) {
	out, err := f.Commit(ctx, store.Batch{Puts: []store.Put{{Collection: collection, Record: r}}})
	if err != nil {
		return store.Record{}, err
	}
	return out.Records[0], nil
}

// Delete is a fenced one-delete batch.
func (f *FencedStore) Delete(ctx context.Context, collection, key string) error {
	_, err := f.Commit(ctx, store.Batch{Deletes: []store.Delete{{Collection: collection, Key: key}}})
	return err
}

// Trim passes through while leading (see the type's comment).
func (f *FencedStore) Trim(ctx context.Context, stream string, upTo uint64) error {
	if _, err := f.current(func() []string { return []string{"trim " + stream} }); err != nil {
		return err
	}
	return f.Store.Trim(ctx, stream, upTo)
}

// DeleteStream passes through while leading (see the type's comment).
func (f *FencedStore) DeleteStream(ctx context.Context, stream string) error {
	if _, err := f.current(func() []string { return []string{"delete " + stream} }); err != nil {
		return err
	}
	return f.Store.DeleteStream(ctx, stream)
}

// Close does not close the underlying store, which the replica shares
// with its other parts.
func (f *FencedStore) Close() error { return nil }
