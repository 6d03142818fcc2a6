package telemetry

import (
	"bytes"
	"encoding/binary"
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

// packed is a sample compressed for the window ring: the totals in clear
// (they decide whether anything changed) and the non-zero counters as
// uvarint pairs (gap from the previous index, count), code slots first, each
// list preceded by its length. A busy version's snapshot takes about 4 bytes
// per non-zero bucket instead of 10.
type packed struct {
	requests, count, sumMicros uint64
	data                       []byte
}

// zeroPacked is the state of a version before its first request.
var zeroPacked = &packed{}

// appendPairs encodes the non-zero entries of counts, a dense array.
func appendPairs(buf []byte, counts []uint64, nonZero int) []byte {
	buf = binary.AppendUvarint(buf, uint64(nonZero))
	prev := 0
	for i, n := range counts {
		if n != 0 {
			buf = binary.AppendUvarint(buf, uint64(i-prev))
			buf = binary.AppendUvarint(buf, n)
			prev = i
		}
	}
	return buf
}

// appendSparsePairs encodes parallel index/count lists.
func appendSparsePairs(buf []byte, idx []uint16, counts []uint64) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(idx)))
	prev := 0
	for i, x := range idx {
		buf = binary.AppendUvarint(buf, uint64(int(x)-prev))
		buf = binary.AppendUvarint(buf, counts[i])
		prev = int(x)
	}
	return buf
}

// pack compresses a decoded sample.
func pack(s *sample) *packed {
	var buf []byte
	buf = appendSparsePairs(buf, s.codes, s.codeN)
	buf = appendSparsePairs(buf, s.hist.idx, s.hist.n)
	return &packed{requests: s.requests, count: s.hist.count, sumMicros: s.hist.sumMicros, data: bytes.Clone(buf)}
}

// unpack decodes p; it panics on corrupt data, which only this file writes.
func (p *packed) unpack() *sample {
	s := &sample{requests: p.requests, hist: Snapshot{count: p.count, sumMicros: p.sumMicros}}
	data := p.data
	next := func() uint64 {
		x, n := binary.Uvarint(data)
		if n <= 0 {
			panic("telemetry: corrupt window snapshot")
		}
		data = data[n:]
		return x
	}
	if len(data) == 0 {
		return s
	}
	decode := func() ([]uint16, []uint64) {
		n := next()
		idx, counts := make([]uint16, n), make([]uint64, n)
		prev := 0
		for i := range idx {
			prev += int(next())
			idx[i], counts[i] = uint16(prev), next()
		}
		return idx, counts
	}
	s.codes, s.codeN = decode()
	s.hist.idx, s.hist.n = decode()
	return s
}

// entry is one window snapshot: the counters were p at every tick from
// `from` through `until` (Unix ns). Between until and the next entry's
// from they changed at some unknown moment.
type entry struct {
	from, until int64
	p           *packed
}

// scratch is the sampler's reusable buffers, so that a tick of an idle
// version allocates nothing and a busy one only its packed snapshot.
type scratch struct {
	codes [numCodeSlots]uint64
	hist  [numBuckets]uint64
	buf   []byte
}

// tick records the version's counters at time now (Unix ns): it extends the
// last entry when nothing changed, appends a new entry otherwise, and drops
// entries no window of length retention can need.
func (v *VersionStats) tick(now int64, retention time.Duration, sc *scratch) {
	var requests, count uint64
	var nzCodes, nzHist int
	for i := range v.codes {
		n := v.codes[i].Load()
		sc.codes[i] = n
		requests += n
		nzCodes += btoi(n != 0)
	}
	for i := range v.hist {
		n := v.hist[i].Load()
		sc.hist[i] = n
		count += n
		nzHist += btoi(n != 0)
	}
	sum := v.sumMicros.Load()

	v.mu.Lock()
	defer v.mu.Unlock()
	last := v.entries.back()
	if now < last.until {
		return // a tick older than the state we hold: ignore
	}
	if last.p.requests == requests && last.p.count == count && last.p.sumMicros == sum {
		// Counters are monotonic: equal totals mean every counter is equal.
		last.until = now
		return
	}
	sc.buf = appendPairs(sc.buf[:0], sc.codes[:], nzCodes)
	sc.buf = appendPairs(sc.buf, sc.hist[:], nzHist)
	p := &packed{requests: requests, count: count, sumMicros: sum, data: bytes.Clone(sc.buf)}
	v.entries.push(entry{from: now, until: now, p: p})
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
	p := pack(v.read())
	v.base, v.baseTime = p, now
	for i := range v.proxyErrors {
		v.baseErrors[i] = v.proxyErrors[i].Load()
	}
	v.imported = nil
	v.entries.reset()
	v.entries.push(entry{from: now, until: now, p: p})
}

// lookup returns the snapshot a window of the given length subtracts, and
// the time from which the difference counts. v.mu must be held.
func (v *VersionStats) lookup(window time.Duration, now int64) (*packed, int64) {
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
	return e.p, min(target, e.until)
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
