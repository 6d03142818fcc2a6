package teleshare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// MaxReportAge is how old a report may be, by the merger's clock, and
// still be merged: an older one is from a replica that stopped (or cannot
// reach the store), and what it says was merged when it was fresh.
const MaxReportAge = 30 * time.Second

// DefaultInterval is how often a Publisher writes and a Merger reads when
// their Interval is 0. A publisher and a merger with the same interval put
// a request into the leader's registry at most two intervals after it
// ended.
const DefaultInterval = time.Second

// Merger adds the traffic the other replicas publish to this replica's
// registry. It runs only while this replica leads (the caller starts Run
// when it becomes leader and cancels it when it stops). Keep one Merger
// for the life of the process and call Run again on the next term: it
// remembers what it imported, so a leader that regains the lease adds only
// what happened meanwhile instead of importing everything a second time.
type Merger struct {
	Store store.Store
	// ID is this replica's id; its own record is skipped, its own traffic
	// is in the registry already.
	ID       string
	Registry *telemetry.Registry
	// Interval is how often Run merges; DefaultInterval when 0.
	Interval time.Duration
	// Logger receives store and decoding errors, at most once per minute;
	// slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock that decides whether a report is stale; time.Now
	// when nil.
	Now func() time.Time

	mu      sync.Mutex // serialises merges; guards the fields below
	sources map[string]*source
	errs    rateLimit
}

// source is what the merger imported from one replica: per incarnation,
// the counters of every (rollout, revision, role, version) as last seen.
type source struct {
	incarnation string
	seen        map[countersKey]telemetry.Counters
}

type countersKey struct {
	rollout  string
	revision int64
	started  int64 // Unix ns: which window of the revision
	role     spec.Role
	version  string
}

// StepResult says what one merge did, for tests and logs.
type StepResult struct {
	// Imported is the number of version deltas added to the registry and
	// Requests the live requests they held.
	Imported int
	Requests int64
	// Refused counts deltas not imported because the report's revision is
	// not the rollout's current revision here, or the version is not
	// routed here (see telemetry.RolloutStats.Import).
	Refused int
	// Reset counts versions whose counters went backwards within one
	// incarnation; their new counters became the baseline.
	Reset int
	// Stale lists the replicas whose report was older than MaxReportAge.
	Stale []string
}

// Run merges every Interval until ctx ends. Errors are logged (at most
// once per minute) and never stop it: the next round tries again.
func (m *Merger) Run(ctx context.Context) {
	interval := m.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A round never outlasts its interval, so a hanging store delays
		// the picture by one round, not indefinitely.
		rctx, cancel := context.WithTimeout(ctx, interval)
		_, err := m.Merge(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			m.logError("merging the other replicas' telemetry failed; the leader's analysis sees only its own traffic until it works again", err)
		}
	}
}

// Merge reads every replica's report from the store and merges them (see
// Step). A report that cannot be decoded is logged and skipped, keeping
// what was imported from that replica so far.
func (m *Merger) Merge(ctx context.Context) (StepResult, error) {
	recs, err := m.Store.List(ctx, Collection)
	if err != nil {
		return StepResult{}, fmt.Errorf("list %s: %w", Collection, err)
	}
	reports := make([]Report, 0, len(recs))
	var bad []error
	for _, rec := range recs {
		if rec.Key == m.ID {
			continue
		}
		r, err := Decode(rec.Key, rec.Data)
		if err != nil {
			bad = append(bad, err)
			r = Report{Replica: rec.Key, unreadable: true}
		}
		reports = append(reports, r)
	}
	res := m.Step(reports)
	if len(bad) > 0 {
		return res, fmt.Errorf("%w (is every replica running the same coalmine version?)", errors.Join(bad...))
	}
	return res, nil
}

// Step merges reports, the current record of every other replica, into
// the registry. For each (replica incarnation, rollout, revision, role,
// version) it adds the difference between the counters reported and those
// it saw last time; the first time, everything (so a new leader sees the
// whole revision of every replica). It imports only into a rollout whose
// current revision here is the report's, and only into versions this
// replica routes; otherwise the counters only become the baseline, so that
// nothing is counted twice later. Counters
// that went backwards become the baseline too. Reports older than
// MaxReportAge are skipped but their baselines kept; replicas absent from
// reports (their record was removed) are forgotten. Rollouts this
// registry does not know are left for later, untouched.
func (m *Merger) Step(reports []Report) StepResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sources == nil {
		m.sources = map[string]*source{}
	}
	now := m.now()
	var res StepResult
	present := make(map[string]bool, len(reports))
	for _, r := range reports {
		if r.Replica == m.ID {
			continue
		}
		present[r.Replica] = true
		if r.unreadable {
			continue
		}
		if now.Sub(r.Time) > MaxReportAge {
			res.Stale = append(res.Stale, r.Replica)
			continue
		}
		src := m.sources[r.Replica]
		if src == nil || src.incarnation != r.Incarnation {
			// A new process: its counters started from zero.
			src = &source{incarnation: r.Incarnation}
			m.sources[r.Replica] = src
		}
		src.seen = m.mergeReport(r, src.seen, &res)
	}
	for id := range m.sources {
		if !present[id] {
			delete(m.sources, id)
		}
	}
	return res
}

// mergeReport imports one report against the baselines seen and returns
// the new baselines: exactly the versions in the report, so that versions
// gone from it (a revision over) are forgotten.
func (m *Merger) mergeReport(r Report, seen map[countersKey]telemetry.Counters, res *StepResult) map[countersKey]telemetry.Counters {
	next := make(map[countersKey]telemetry.Counters, len(seen))
	for _, rr := range r.Rollouts {
		rs, known := m.Registry.Lookup(rr.Name)
		for _, v := range rr.Versions {
			k := countersKey{rollout: rr.Name, revision: rr.Revision, started: rr.Started.UnixNano(), role: v.Role, version: v.Version}
			prev, seenBefore := seen[k]
			if !known {
				// Not served here yet (a leader still loading): leave it,
				// so that the first import once it is known brings the
				// whole revision.
				if seenBefore {
					next[k] = prev
				}
				continue
			}
			next[k] = v.Counters
			delta := v.Counters
			if seenBefore {
				var ok bool
				if delta, ok = v.Counters.Since(prev); !ok {
					res.Reset++
					continue
				}
			}
			if delta.IsZero() {
				continue
			}
			if !rs.Import(rr.Revision, v.Role, v.Version, delta) {
				res.Refused++
				continue
			}
			res.Imported++
			res.Requests += delta.Requests()
		}
	}
	return next
}

func (m *Merger) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Merger) logError(msg string, err error) {
	m.mu.Lock()
	suppressed, ok := m.errs.allow(m.now())
	m.mu.Unlock()
	if ok {
		logger(m.Logger).Error(msg, "err", err, "suppressedSinceLastLog", suppressed)
	}
}

func logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.Default()
}

// rateLimit lets one message through per minute and counts the others.
type rateLimit struct {
	last       time.Time
	suppressed int
}

func (r *rateLimit) allow(now time.Time) (suppressed int, ok bool) {
	if !r.last.IsZero() && now.Sub(r.last) < time.Minute {
		r.suppressed++
		return 0, false
	}
	suppressed, r.last, r.suppressed = r.suppressed, now, 0
	return suppressed, true
}
