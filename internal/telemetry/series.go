package telemetry

import (
	"sort"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Series is a rollout's live traffic step by step, per version: what the
// dashboard charts. It is read from the window snapshots that Run keeps, so
// it reaches back at most WindowRetention and never before the revision
// started (StartRevision: a new revision, or a completion that changes the
// routed versions).
type Series struct {
	// Revision and RevisionStart are those of the last StartRevision.
	Revision      int64
	RevisionStart time.Time
	// From is the start of the first step and To the end of the last one:
	// the requested since, rounded up to a whole step, but never before the
	// revision start or the oldest snapshot kept. To is the latest snapshot,
	// rounded down to a whole step; To ≤ From means no complete step yet.
	From, To time.Time
	// Step is the length of each point's interval; Retention is how far
	// back snapshots are kept.
	Step      time.Duration
	Retention time.Duration
	// Versions are the rollout's versions in creation order.
	Versions []VersionSeries
}

// VersionSeries is one version's points, oldest first.
type VersionSeries struct {
	Role    spec.Role
	Version string
	Points  []SeriesPoint
}

// SeriesPoint is the traffic of one step, (End−Step, End]. Summary.Span is
// the step and Summary.RPS the requests per second over it; Requests 0 means
// no traffic in the step, and then the other numbers are 0 too.
type SeriesPoint struct {
	End time.Time
	Summary
}

// Series returns the rollout's traffic in steps of step (at least
// WindowResolution) from since (zero: from as early as known) to the latest
// snapshot. The step grid is aligned to multiples of step since the Unix
// epoch, so that a caller polling with since = the last End it saw gets the
// next points and never a partial one twice. The state at a grid time is the
// latest snapshot at or before it, so a point lags its nominal interval by
// less than WindowResolution. Safe to call concurrently with everything;
// it never blocks the hot path.
func (rs *RolloutStats) Series(since time.Time, step time.Duration) Series {
	res, retention := rs.reg.res, rs.reg.retention
	if step < res {
		step = res
	}
	rs.mu.Lock()
	revision, revStart := rs.revision, rs.revStart
	set := rs.versions.Load()
	rs.mu.Unlock()

	out := Series{Revision: revision, RevisionStart: revStart, Step: step, Retention: retention}
	copies := make([][]entry, len(set.list))
	var last int64 // the latest snapshot of any version
	for i, v := range set.list {
		copies[i] = v.snapshotEntries()
		if n := len(copies[i]); n > 0 {
			last = max(last, copies[i][n-1].until)
		}
	}
	start := revStart.UnixNano()
	if !since.IsZero() {
		start = max(start, since.UnixNano())
	}
	start = max(start, last-int64(retention))
	st := int64(step)
	from := ceilDiv(start, st) * st
	to := max(from, floorDiv(last, st)*st)
	out.From, out.To = time.Unix(0, from).UTC(), time.Unix(0, to).UTC()
	n := int((to - from) / st)

	out.Versions = make([]VersionSeries, len(set.list))
	for i, v := range set.list {
		out.Versions[i] = VersionSeries{Role: v.role, Version: v.version, Points: stepPoints(copies[i], from, st, n)}
	}
	return out
}

// snapshotEntries copies the version's window snapshots, oldest first. The
// packed snapshots themselves are immutable and shared.
func (v *VersionStats) snapshotEntries() []entry {
	v.mu.Lock()
	defer v.mu.Unlock()
	es := make([]entry, v.entries.len())
	for i := range es {
		es[i] = *v.entries.at(i)
	}
	return es
}

// stepPoints differences the state at from+k·step and from+(k−1)·step for
// k = 1..n. Grid times before the oldest snapshot have no known state: their
// points are left out.
func stepPoints(es []entry, from, step int64, n int) []SeriesPoint {
	// stateAt is the index of the latest entry at or before t, or −1.
	stateAt := func(t int64) int {
		return sort.Search(len(es), func(i int) bool { return es[i].from > t }) - 1
	}
	pts := make([]SeriesPoint, 0, n)
	prevIdx := stateAt(from)
	var prev *sample // the unpacked state at prevIdx, once needed
	for k := 1; k <= n; k++ {
		end := from + int64(k)*step
		idx := stateAt(end)
		if idx < 0 {
			continue // nothing known yet
		}
		if prevIdx < 0 {
			prevIdx = idx // the interval's start is unknown: no point
			continue
		}
		p := SeriesPoint{End: time.Unix(0, end).UTC(), Summary: Summary{Span: time.Duration(step)}}
		a, b := es[prevIdx].p, es[idx].p
		// Counters are monotonic, so equal totals mean equal counters: no
		// traffic in the step, and prev stays a valid base.
		if a.requests != b.requests || a.count != b.count {
			if prev == nil {
				prev = a.unpack()
			}
			cur := b.unpack()
			p.Summary = summarize(cur.sub(prev), time.Duration(step))
			p.Summary.Histogram = Snapshot{} // charts need the quantiles only
			prev = cur
		}
		prevIdx = idx
		pts = append(pts, p)
	}
	return pts
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }
