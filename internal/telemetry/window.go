package telemetry

import (
	"sort"
	"time"
)

// sample is an immutable sparse copy of a version's cumulative live
// counters (status codes and latency histogram) at one moment.
type sample struct {
	codes    []uint16 // code slots, increasing
	codeN    []uint64 // non-zero counts, parallel to codes
	requests uint64   // Σ codeN
	hist     Snapshot
}

// sub returns s − o counter by counter (saturating at zero).
func (s *sample) sub(o *sample) *sample {
	d := &sample{hist: s.hist.Sub(o.hist)}
	j := 0
	for i, slot := range s.codes {
		n := s.codeN[i]
		for j < len(o.codes) && o.codes[j] < slot {
			j++
		}
		if j < len(o.codes) && o.codes[j] == slot {
			n = satSub(n, o.codeN[j])
		}
		if n != 0 {
			d.codes = append(d.codes, slot)
			d.codeN = append(d.codeN, n)
			d.requests += n
		}
	}
	return d
}

// entry is one window snapshot: the counters were s at every tick from
// `from` through `until` (Unix ns). Between until and the next entry's
// from they changed at some unknown moment.
type entry struct {
	from, until int64
	s           *sample
}

// scratch is the sampler's reusable dense buffer, so that a tick of an idle
// version allocates nothing.
type scratch struct {
	codes [numCodeSlots]uint64
	hist  [numBuckets]uint64
}

// tick records the version's counters at time now (Unix ns): it extends the
// last entry when nothing changed, appends a new entry otherwise, and drops
// entries no window of length retention can need.
func (v *VersionStats) tick(now int64, retention time.Duration, sc *scratch) {
	var requests, count, nzCodes, nzHist uint64
	for i := range v.codes {
		n := v.codes[i].Load()
		sc.codes[i] = n
		requests += n
		nzCodes += uint64(btoi(n != 0))
	}
	for i := range v.hist {
		n := v.hist[i].Load()
		sc.hist[i] = n
		count += n
		nzHist += uint64(btoi(n != 0))
	}
	sum := v.sumMicros.Load()

	v.mu.Lock()
	defer v.mu.Unlock()
	last := v.entries.back()
	if now < last.until {
		return // a tick older than the state we hold: ignore
	}
	if last.s.requests == requests && last.s.hist.count == count && last.s.hist.sumMicros == sum {
		// Counters are monotonic: equal totals mean every counter is equal.
		last.until = now
		return
	}
	s := &sample{
		codes:    make([]uint16, 0, nzCodes),
		codeN:    make([]uint64, 0, nzCodes),
		requests: requests,
		hist: Snapshot{
			idx:       make([]uint16, 0, nzHist),
			n:         make([]uint64, 0, nzHist),
			sumMicros: sum,
			count:     count,
		},
	}
	for i, n := range sc.codes {
		if n != 0 {
			s.codes = append(s.codes, uint16(i))
			s.codeN = append(s.codeN, n)
		}
	}
	for i, n := range sc.hist {
		if n != 0 {
			s.hist.idx = append(s.hist.idx, uint16(i))
			s.hist.n = append(s.hist.n, n)
		}
	}
	v.entries.push(entry{from: now, until: now, s: s})
	// Keep exactly one entry at or before now − retention.
	cutoff := now - int64(retention)
	for v.entries.len() >= 2 && v.entries.at(1).from <= cutoff {
		v.entries.popFront()
	}
}

// startRevision makes the current counters the base of the since-revision
// window and drops the older window snapshots.
func (v *VersionStats) startRevision(now int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.read()
	v.base, v.baseTime = s, now
	v.entries.reset()
	v.entries.push(entry{from: now, until: now, s: s})
}

// lookup returns the snapshot a window of the given length subtracts, and
// the time from which the difference counts. v.mu must be held.
func (v *VersionStats) lookup(window time.Duration, now int64) (*sample, int64) {
	target := now - int64(window)
	if window <= 0 || target <= v.baseTime {
		return v.base, v.baseTime
	}
	n := v.entries.len()
	i := sort.Search(n, func(i int) bool { return v.entries.at(i).from > target }) - 1
	if i < 0 {
		// Snapshots do not reach back that far: the revision base is the
		// latest state known at or before the window's start.
		return v.base, v.baseTime
	}
	e := v.entries.at(i)
	return e.s, min(target, e.until)
}

// ring is a growable FIFO queue.
type ring[T any] struct {
	buf  []T
	head int
	n    int
}

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) at(i int) *T { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *ring[T]) back() *T { return r.at(r.n - 1) }

func (r *ring[T]) push(x T) {
	if r.n == len(r.buf) {
		grown := make([]T, max(4, 2*len(r.buf)))
		for i := 0; i < r.n; i++ {
			grown[i] = *r.at(i)
		}
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = x
	r.n++
}

func (r *ring[T]) popFront() {
	var zero T
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.n--
}

func (r *ring[T]) reset() {
	clear(r.buf)
	r.head, r.n = 0, 0
}
