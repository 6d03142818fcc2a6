package telemetry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Counters is one version's live traffic as plain counts: the status-code
// slots (failed attempts included), the latency histogram with its exact
// sum, and the proxy errors by kind. It is what replicas exchange so that
// the leader sees everybody's traffic (RolloutStats.ExportOwn on each
// replica, RolloutStats.Import on the leader); because the grid is fixed,
// counts of different processes add up exactly. Mirrored requests and the
// rollout-wide counters (mirror drops, client rejections, connections) are
// not part of it: nothing judges them. A Counters is a value; the zero
// Counters is empty.
type Counters struct {
	s      sample
	errors [numErrorKinds]uint64
}

// IsZero reports whether c counts nothing.
func (c Counters) IsZero() bool {
	if c.s.requests != 0 || c.s.hist.count != 0 || c.s.hist.sumMicros != 0 {
		return false
	}
	return c.errors == [numErrorKinds]uint64{}
}

// Requests returns the number of live requests answered (failed attempts
// are not requests, as in Summary).
func (c Counters) Requests() int64 {
	n := int64(c.s.requests)
	if k := len(c.s.codes); k > 0 && c.s.codes[k-1] == slotFailedAttempt {
		n -= int64(c.s.codeN[k-1])
	}
	return n
}

// Since returns c − earlier, counter by counter. ok is false when some
// counter of earlier exceeds c's: then earlier was not an earlier state of
// the same counters (the process restarted, or the version was removed and
// created again), and the difference means nothing.
func (c Counters) Since(earlier Counters) (delta Counters, ok bool) {
	if !covers(c.s.codes, c.s.codeN, earlier.s.codes, earlier.s.codeN) ||
		!covers(c.s.hist.idx, c.s.hist.n, earlier.s.hist.idx, earlier.s.hist.n) ||
		c.s.hist.sumMicros < earlier.s.hist.sumMicros {
		return Counters{}, false
	}
	for i := range c.errors {
		if c.errors[i] < earlier.errors[i] {
			return Counters{}, false
		}
	}
	return c.sub(earlier), true
}

// sub returns c − o, saturating at zero.
func (c Counters) sub(o Counters) Counters {
	d := Counters{s: *c.s.sub(&o.s)}
	for i := range d.errors {
		d.errors[i] = satSub(c.errors[i], o.errors[i])
	}
	return d
}

// add returns c + o.
func (c Counters) add(o Counters) Counters {
	d := Counters{s: *c.s.add(&o.s)}
	for i := range d.errors {
		d.errors[i] = c.errors[i] + o.errors[i]
	}
	return d
}

// covers reports whether every count of the sparse list (bi, bn) is at most
// the count of the same index in (ai, an).
func covers(ai []uint16, an []uint64, bi []uint16, bn []uint64) bool {
	i := 0
	for j, idx := range bi {
		for i < len(ai) && ai[i] < idx {
			i++
		}
		if i == len(ai) || ai[i] != idx || an[i] < bn[j] {
			return false
		}
	}
	return true
}

// add returns s + o counter by counter.
func (s *sample) add(o *sample) *sample {
	d := &sample{hist: s.hist.Merge(o.hist), requests: s.requests + o.requests}
	i, j := 0, 0
	for i < len(s.codes) || j < len(o.codes) {
		switch {
		case j == len(o.codes) || (i < len(s.codes) && s.codes[i] < o.codes[j]):
			d.codes, d.codeN = append(d.codes, s.codes[i]), append(d.codeN, s.codeN[i])
			i++
		case i == len(s.codes) || o.codes[j] < s.codes[i]:
			d.codes, d.codeN = append(d.codes, o.codes[j]), append(d.codeN, o.codeN[j])
			j++
		default:
			d.codes, d.codeN = append(d.codes, s.codes[i]), append(d.codeN, s.codeN[i]+o.codeN[j])
			i++
			j++
		}
	}
	return d
}

// countersFormat is the first byte of the binary form; a decoder refuses
// any other, so a format change is seen rather than misread.
const countersFormat = 1

// AppendBinary appends the compact binary form of c to buf: a format byte,
// the latency sum, then the non-zero status-code slots, histogram buckets
// and error kinds, each as uvarint pairs (gap from the previous index,
// count) preceded by their number. A busy version takes about 3 to 5 bytes
// per non-zero bucket.
func (c Counters) AppendBinary(buf []byte) ([]byte, error) {
	buf = append(buf, countersFormat)
	buf = binary.AppendUvarint(buf, c.s.hist.sumMicros)
	buf = appendSparsePairs(buf, c.s.codes, c.s.codeN)
	buf = appendSparsePairs(buf, c.s.hist.idx, c.s.hist.n)
	nz := 0
	for _, n := range c.errors {
		nz += btoi(n != 0)
	}
	return appendPairs(buf, c.errors[:], nz), nil
}

// MarshalBinary returns the binary form of c (see AppendBinary).
func (c Counters) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil) }

// errCorruptCounters is wrapped by every decoding error.
var errCorruptCounters = errors.New("corrupt telemetry counters")

// UnmarshalBinary decodes the form AppendBinary writes. It checks
// everything (indices in range and increasing, counts non-zero, nothing
// left over), because the data comes from another process through the
// store.
func (c *Counters) UnmarshalBinary(data []byte) error {
	if len(data) == 0 || data[0] != countersFormat {
		return fmt.Errorf("%w: unknown format (a replica running another coalmine version?)", errCorruptCounters)
	}
	data = data[1:]
	next := func() (uint64, error) {
		x, n := binary.Uvarint(data)
		if n <= 0 {
			return 0, fmt.Errorf("%w: truncated", errCorruptCounters)
		}
		data = data[n:]
		return x, nil
	}
	// pairs decodes one list of (gap, count) pairs with indices < limit.
	pairs := func(limit int) ([]uint16, []uint64, uint64, error) {
		n, err := next()
		if err != nil {
			return nil, nil, 0, err
		}
		if n > uint64(limit) {
			return nil, nil, 0, fmt.Errorf("%w: %d entries, at most %d possible", errCorruptCounters, n, limit)
		}
		idx, counts := make([]uint16, 0, n), make([]uint64, 0, n)
		var total uint64
		prev := -1
		for range n {
			gap, err := next()
			if err != nil {
				return nil, nil, 0, err
			}
			count, err := next()
			if err != nil {
				return nil, nil, 0, err
			}
			if gap >= uint64(limit) {
				return nil, nil, 0, fmt.Errorf("%w: index out of range", errCorruptCounters)
			}
			i := uint64(max(prev, 0)) + gap
			if (prev >= 0 && gap == 0) || i >= uint64(limit) || count == 0 {
				return nil, nil, 0, fmt.Errorf("%w: bad entry (index %d, count %d)", errCorruptCounters, i, count)
			}
			prev = int(i)
			idx, counts = append(idx, uint16(i)), append(counts, count)
			total += count
		}
		return idx, counts, total, nil
	}
	var out Counters
	var err error
	if out.s.hist.sumMicros, err = next(); err != nil {
		return err
	}
	if out.s.codes, out.s.codeN, out.s.requests, err = pairs(numCodeSlots); err != nil {
		return err
	}
	if out.s.hist.idx, out.s.hist.n, out.s.hist.count, err = pairs(numBuckets); err != nil {
		return err
	}
	kinds, counts, _, err := pairs(numErrorKinds)
	if err != nil {
		return err
	}
	for i, k := range kinds {
		out.errors[k] = counts[i]
	}
	if len(data) != 0 {
		return fmt.Errorf("%w: %d bytes left over", errCorruptCounters, len(data))
	}
	*c = out
	return nil
}

// VersionCounters is one version's counters in an export.
type VersionCounters struct {
	Role     spec.Role
	Version  string
	Counters Counters
}

// OwnTraffic is a rollout's traffic as one process saw it itself, since
// its current revision started.
type OwnTraffic struct {
	// Revision and Started are those of the last StartRevision (see
	// Revision). Started tells apart two windows of one revision: a
	// completion restarts the window and keeps the revision.
	Revision int64
	Started  time.Time
	// Versions lists the versions with traffic in the window.
	Versions []VersionCounters
}

// ExportOwn returns, for every version with traffic since the current
// revision started, the traffic this process saw itself: counts added by
// Import are left out, so that a replica that led and then follows never
// passes the others' traffic on again. The revision and the counts are
// read together (StartRevision waits), so the counts always belong to the
// window returned.
func (rs *RolloutStats) ExportOwn() OwnTraffic {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := OwnTraffic{Revision: rs.revision, Started: rs.revStart}
	for _, v := range rs.versions.Load().list {
		if c := v.ownSinceRevision(); !c.IsZero() {
			out.Versions = append(out.Versions, VersionCounters{Role: v.role, Version: v.version, Counters: c})
		}
	}
	return out
}

// Import adds delta, traffic another replica saw during revision, to the
// cumulative counters of one version, as if this process had observed it
// now: summaries, sliding windows, series and /metrics all include it from
// here on. It adds nothing and returns false when revision is not the
// rollout's current revision, or the version is not known here: the
// traffic then belongs to routing that is over here or not applied yet. In
// particular, a version removed when a revision started (the old stable
// after a completion, which keeps the revision number) is never brought
// back by a replica that has not caught up. It takes the rollout's lock,
// never touched by the hot path.
func (rs *RolloutStats) Import(revision int64, role spec.Role, version string, delta Counters) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	v, ok := rs.versions.Load().byKey[versionKey{role, version}]
	if revision != rs.revision || !ok {
		return false
	}
	if !delta.IsZero() {
		v.importDelta(delta)
	}
	return true
}

// ownSinceRevision is the version's traffic since its revision started,
// minus what was imported since.
func (v *VersionStats) ownSinceRevision() Counters {
	v.mu.Lock()
	defer v.mu.Unlock()
	// Read under the lock: importDelta adds to the counters and to
	// v.imported together under it, so the subtraction is exact.
	c := Counters{s: *v.read().sub(v.base.unpack())}
	for i := range v.proxyErrors {
		c.errors[i] = satSub(v.proxyErrors[i].Load(), v.baseErrors[i])
	}
	if v.imported != nil {
		c = c.sub(*v.imported)
	}
	return c
}

// importDelta adds d to the cumulative counters and remembers it as
// imported.
func (v *VersionStats) importDelta(d Counters) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, slot := range d.s.codes {
		v.codes[slot].Add(d.s.codeN[i])
	}
	for i, idx := range d.s.hist.idx {
		v.hist[idx].Add(d.s.hist.n[i])
	}
	v.sumMicros.Add(d.s.hist.sumMicros)
	for i, n := range d.errors {
		if n != 0 {
			v.proxyErrors[i].Add(n)
		}
	}
	if v.imported == nil {
		v.imported = &Counters{}
	}
	*v.imported = v.imported.add(d)
}
