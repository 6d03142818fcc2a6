package teleshare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// Publisher writes this replica's own traffic to its record in Collection
// every Interval. Every replica runs one, the leader included: when the
// lease moves, the new leader finds the old leader's traffic there.
type Publisher struct {
	Store store.Store
	// ID names this replica (its record's key); unique among replicas.
	ID       string
	Registry *telemetry.Registry
	// Interval is how often Run publishes; DefaultInterval when 0.
	Interval time.Duration
	// Logger receives store errors, at most once per minute;
	// slog.Default() when nil.
	Logger *slog.Logger
	// Now stamps the reports; time.Now when nil.
	Now func() time.Time

	mu          sync.Mutex // serialises publishing; guards the fields below
	incarnation string
	// version is the record's version as last written or read, valid
	// when known: every write is a compare-and-swap on it, so two
	// processes that were given the same ID notice each other.
	version uint64
	known   bool
	errs    rateLimit
}

// Run publishes every Interval until ctx ends. Errors are logged (at most
// once per minute) and never stop it: a replica keeps proxying whether or
// not the leader hears about its traffic. It does not remove the record
// when it returns; call Remove on a clean shutdown.
func (p *Publisher) Run(ctx context.Context) {
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, interval)
		err := p.Publish(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			p.logError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Incarnation returns the random id of this process's reports (made on
// first use).
func (p *Publisher) Incarnation() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.incarnationLocked()
}

func (p *Publisher) incarnationLocked() string {
	if p.incarnation == "" {
		p.incarnation = newIncarnation()
	}
	return p.incarnation
}

// Publish writes one report now. On a conflict (another process wrote the
// record since) it learns the record's version, so that the next call
// succeeds, and returns an error: two processes with one replica id
// overwrite each other's traffic and must be told.
func (p *Publisher) Publish(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.known {
		// The record of a previous incarnation (a restart) is ours to
		// overwrite; read its version rather than fail the first write.
		if err := p.readVersion(ctx); err != nil {
			return err
		}
	}
	data, err := Encode(Snapshot(p.Registry, p.ID, p.incarnationLocked(), p.now()))
	if err != nil {
		return err
	}
	rec, err := p.Store.Put(ctx, Collection, store.Record{Key: p.ID, Version: p.version, Data: data})
	switch {
	case err == nil:
		p.version = rec.Version
		return nil
	case errors.Is(err, store.ErrConflict):
		if rerr := p.readVersion(ctx); rerr != nil {
			p.known = false
		}
		return fmt.Errorf("publish the telemetry of replica %q: its record was written by another process; "+
			"is another replica running with the same id? Give every replica its own id: %w", p.ID, err)
	default:
		p.known = false // the write may or may not have happened
		return fmt.Errorf("publish the telemetry of replica %q: %w", p.ID, err)
	}
}

// readVersion learns the record's current version (0: none).
func (p *Publisher) readVersion(ctx context.Context) error {
	rec, err := p.Store.Get(ctx, Collection, p.ID)
	switch {
	case err == nil:
		p.version, p.known = rec.Version, true
	case errors.Is(err, store.ErrNotFound):
		p.version, p.known = 0, true
	default:
		return fmt.Errorf("read the telemetry record of replica %q: %w", p.ID, err)
	}
	return nil
}

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Publisher) logError(err error) {
	p.mu.Lock()
	suppressed, ok := p.errs.allow(p.now())
	p.mu.Unlock()
	if ok {
		logger(p.Logger).Error("publishing this replica's telemetry failed; the leader's analysis misses its traffic until it works again",
			"err", err, "suppressedSinceLastLog", suppressed)
	}
}

// Remove deletes the record of replica id, on a clean shutdown, so that
// the leader stops looking for it at once rather than after MaxReportAge.
// A missing record is not an error.
func Remove(ctx context.Context, st store.Store, id string) error {
	if err := st.Delete(ctx, Collection, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("remove the telemetry record of replica %q: %w", id, err)
	}
	return nil
}
