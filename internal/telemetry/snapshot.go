package telemetry

import (
	"iter"
	"math"
	"time"
)

// Snapshot is an immutable, sparse latency histogram on the global grid: the
// non-zero buckets in key order, plus the exact sum of the latencies. It is a
// value: methods never modify their receiver or arguments, and a Snapshot may
// be shared between goroutines. The zero Snapshot is empty.
type Snapshot struct {
	idx []uint16 // dense bucket indices, strictly increasing
	n   []uint64 // counts, non-zero, parallel to idx
	// sumMicros is the sum of the latencies in microseconds, each rounded to
	// the nearest microsecond: exact arithmetic that wraps only after
	// 2^64 µs ≈ 584 000 years of summed latency.
	sumMicros uint64
	count     uint64
}

// Bucket is one non-empty bucket of a Snapshot. Values v in the bucket have
// Lower < v ≤ Upper (seconds); Value is the representative that quantiles
// return. Buckets from Snapshot.Buckets come in increasing Key order, so
// they can be ranked directly (Mann-Whitney on buckets, statistics.md §5.4).
type Bucket struct {
	Key          int
	Lower, Upper float64
	Value        float64
	Count        uint64
}

// Count returns the number of observations in s.
func (s Snapshot) Count() uint64 { return s.count }

// Sum returns the sum of the observed latencies in seconds (each observation
// rounded to the microsecond).
func (s Snapshot) Sum() float64 { return float64(s.sumMicros) / 1e6 }

// Mean returns the mean latency in seconds, or 0 when s is empty.
func (s Snapshot) Mean() float64 {
	if s.count == 0 {
		return 0
	}
	return float64(s.sumMicros) / 1e6 / float64(s.count)
}

// Len returns the number of non-empty buckets.
func (s Snapshot) Len() int { return len(s.idx) }

// Buckets yields the non-empty buckets in increasing key order.
func (s Snapshot) Buckets() iter.Seq[Bucket] {
	return func(yield func(Bucket) bool) {
		for i, idx := range s.idx {
			k := indexKey(int(idx))
			lo, hi := BucketBounds(k)
			if !yield(Bucket{Key: k, Lower: lo, Upper: hi, Value: bucketValues[idx], Count: s.n[i]}) {
				return
			}
		}
	}
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1, clamped) in seconds, within
// RelativeAccuracy of the true sample quantile of rank ⌊q·(n−1)⌋ (0-based)
// for values inside the grid. It follows the sketches-go rank rule: walk the
// cumulative counts until they exceed q·(n−1) and return that bucket's
// representative. It returns 0 for an empty snapshot (check Count).
func (s Snapshot) Quantile(q float64) float64 {
	if s.count == 0 {
		return 0
	}
	switch {
	case q < 0 || math.IsNaN(q):
		q = 0
	case q > 1:
		q = 1
	}
	rank := q * float64(s.count-1)
	var cum uint64
	for i, n := range s.n {
		cum += n
		if float64(cum) > rank {
			return bucketValues[s.idx[i]]
		}
	}
	return bucketValues[s.idx[len(s.idx)-1]]
}

// Merge returns the bucket-wise sum of s and o: the histogram of both sets
// of observations. It is exact, commutative and associative.
func (s Snapshot) Merge(o Snapshot) Snapshot {
	return combine(s, o, false)
}

// Sub returns the bucket-wise difference s − o, saturating at zero. It is
// exact when o was taken earlier than s from the same cumulative counters
// (then every bucket of o is at most the one of s): that is how window
// deltas are computed.
func (s Snapshot) Sub(o Snapshot) Snapshot {
	return combine(s, o, true)
}

func combine(a, b Snapshot, sub bool) Snapshot {
	out := Snapshot{
		idx: make([]uint16, 0, len(a.idx)+len(b.idx)*btoi(!sub)),
		n:   make([]uint64, 0, len(a.idx)+len(b.idx)*btoi(!sub)),
	}
	i, j := 0, 0
	for i < len(a.idx) || j < len(b.idx) {
		var idx uint16
		var x, y uint64
		switch {
		case j == len(b.idx) || (i < len(a.idx) && a.idx[i] < b.idx[j]):
			idx, x = a.idx[i], a.n[i]
			i++
		case i == len(a.idx) || b.idx[j] < a.idx[i]:
			idx, y = b.idx[j], b.n[j]
			j++
		default:
			idx, x, y = a.idx[i], a.n[i], b.n[j]
			i++
			j++
		}
		var n uint64
		if sub {
			n = satSub(x, y)
		} else {
			n = x + y
		}
		if n != 0 {
			out.idx = append(out.idx, idx)
			out.n = append(out.n, n)
			out.count += n
		}
	}
	if sub {
		out.sumMicros = satSub(a.sumMicros, b.sumMicros)
	} else {
		out.sumMicros = a.sumMicros + b.sumMicros
	}
	return out
}

func satSub(x, y uint64) uint64 {
	if y > x {
		return 0
	}
	return x - y
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// micros converts a latency to whole microseconds, rounding to nearest;
// negative latencies count as 0.
func micros(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return (uint64(d) + 500) / 1000
}
