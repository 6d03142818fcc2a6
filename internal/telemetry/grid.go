package telemetry

import (
	"math"
	"math/big"
	"math/bits"
	"sort"
	"time"
)

// The latency grid is a DDSketch logarithmic mapping with relative accuracy
// 1 % in the ceil convention of statistics.md §5.1: a value x > 0 (seconds)
// has key i = ⌈ln x / ln γ⌉ with γ = (1+α)/(1−α), bucket i is (γ^(i−1), γ^i],
// and its representative value 2γ^i/(γ+1) is within α of every value in the
// bucket. The grid is global and fixed, so histograms of every version and of
// every point in time merge and subtract exactly.
//
// Keys MinKey..MaxKey cover about 1 µs .. 1 h (the usual ~1 µs .. 100 s
// plus long polls and downloads, for 180 more buckets); smaller values,
// zero and negative latencies go to the underflow bucket (value 0), larger
// ones to the overflow bucket (value γ^MaxKey, a lower bound).
const (
	// RelativeAccuracy is α, the worst relative error of a quantile read
	// from the grid (for values inside MinKey..MaxKey).
	RelativeAccuracy = 0.01
	// MinKey is the key of the smallest regular bucket, (≈0.995 µs, ≈1.015 µs].
	MinKey = -690
	// MaxKey is the key of the largest regular bucket, (≈3570 s, ≈3642 s].
	MaxKey = 410
	// UnderflowKey labels the bucket [0, γ^(MinKey−1)] in Bucket.Key.
	UnderflowKey = MinKey - 1
	// OverflowKey labels the bucket (γ^MaxKey, +Inf) in Bucket.Key.
	OverflowKey = MaxKey + 1

	// numBuckets is the length of a dense histogram: underflow, the
	// regular keys, overflow. Dense index = key − MinKey + 1.
	numBuckets   = MaxKey - MinKey + 3
	overflowIdx  = numBuckets - 1
	underflowIdx = 0
)

var (
	// relAcc is a variable so that γ is computed in float64 arithmetic,
	// exactly as the reference generator does, not as an exact constant.
	relAcc = RelativeAccuracy
	// gamma is γ = (1+α)/(1−α) ≈ 1.0202.
	gamma = (1 + relAcc) / (1 - relAcc)
	// lnGamma is ln γ.
	lnGamma = math.Log(gamma)

	// upperNanos[idx] is the largest duration in nanoseconds that falls in
	// dense bucket idx (⌊1e9·γ^key⌋); upperNanos[underflowIdx] bounds the
	// underflow bucket. The overflow entry is MaxUint64.
	upperNanos [numBuckets]uint64

	// subIndex maps a duration v (in nanoseconds, inside the regular range)
	// to the dense index of the smallest value of its sub-range: the
	// sub-range is given by bits.Len64(v) and the 7 bits after the leading
	// one. A sub-range is at most 1/128 ≈ 0.8 % wide relative to its values,
	// less than a bucket (≈ 2 %), so it holds at most one bucket boundary and
	// one comparison with upperNanos finishes the lookup.
	subIndex [65][128]uint16
)

func init() {
	// Index 0 (underflow) ends at γ^(MinKey−1), index i at γ^(MinKey−1+i).
	copy(upperNanos[:overflowIdx], exactUpperNanos(MinKey-1, MaxKey))
	upperNanos[overflowIdx] = math.MaxUint64
	maxRegular := upperNanos[overflowIdx-1]
	for l := 8; l <= bits.Len64(maxRegular); l++ {
		for m := uint64(128); m < 256; m++ {
			lo := m << (l - 8)
			if lo > maxRegular {
				lo = maxRegular
			}
			subIndex[l][m-128] = uint16(searchIndex(lo))
		}
	}
}

// exactUpperNanos returns ⌊1e9·γ^key⌋ for key = from, from+1, …, to: the
// largest number of nanoseconds in each bucket. float64 is not enough (its
// error of ~1e-2 ns at an hour misplaces two bounds), so the powers are a
// running product in 128-bit arithmetic; tests check every bound against
// 1024-bit exponentiation. It takes about 0.1 ms, once, at start-up.
func exactUpperNanos(from, to int) []uint64 {
	const prec = 128
	p := bigPow(gamma, from, prec)
	p.Mul(p, new(big.Float).SetPrec(prec).SetInt64(1e9))
	g := new(big.Float).SetPrec(prec).SetFloat64(gamma)
	out := make([]uint64, 0, to-from+1)
	for k := from; k <= to; k++ {
		n, _ := p.Uint64() // truncates: the floor of a positive value
		out = append(out, n)
		p.Mul(p, g)
	}
	return out
}

// bigPow returns x^k with prec bits of mantissa.
func bigPow(x float64, k int, prec uint) *big.Float {
	one := new(big.Float).SetPrec(prec).SetInt64(1)
	p := new(big.Float).SetPrec(prec).Set(one)
	b := new(big.Float).SetPrec(prec).SetFloat64(x)
	for e := max(k, -k); e > 0; e >>= 1 {
		if e&1 == 1 {
			p.Mul(p, b)
		}
		b.Mul(b, b)
	}
	if k < 0 {
		p.Quo(one, p)
	}
	return p
}

// searchIndex returns the dense bucket index of v nanoseconds by binary
// search over the bucket bounds. It is the reference for durationIndex.
func searchIndex(v uint64) int {
	return sort.Search(numBuckets, func(i int) bool { return upperNanos[i] >= v })
}

// durationIndex returns the dense bucket index of a latency. It is the hot
// path's key computation: two comparisons, a table load and at most one more
// comparison, no floating point. Its bucket bounds are exact integers, so it
// equals the ceil formula on the value in seconds except where float64
// rounding makes the formula itself ambiguous, exactly on a bucket boundary
// (tests compare both).
func durationIndex(d time.Duration) int {
	if d <= 0 {
		return underflowIdx
	}
	v := uint64(d)
	if v <= upperNanos[underflowIdx] {
		return underflowIdx
	}
	if v > upperNanos[overflowIdx-1] {
		return overflowIdx
	}
	l := bits.Len64(v) // ≥ 10: v exceeds the underflow bound of 995 ns
	idx := int(subIndex[l&63][(v>>(l-8))&127])
	if v > upperNanos[idx] {
		idx++
	}
	return idx
}

// BucketKey returns the grid key of a value in seconds by the ceil formula
// ⌈ln x / ln γ⌉, clamped to UnderflowKey for x ≤ γ^(MinKey−1) (including 0,
// negative values and NaN) and to OverflowKey above γ^MaxKey.
func BucketKey(seconds float64) int {
	if !(seconds > 0) {
		return UnderflowKey
	}
	k := math.Ceil(math.Log(seconds) / lnGamma)
	switch {
	case k < MinKey:
		return UnderflowKey
	case k > MaxKey:
		return OverflowKey
	}
	return int(k)
}

// BucketValue returns the representative value, in seconds, of the bucket
// with key k: 2γ^k/(γ+1) for regular keys, 0 for the underflow bucket and
// γ^MaxKey (a lower bound of what it holds) for the overflow bucket.
func BucketValue(k int) float64 {
	switch {
	case k <= UnderflowKey:
		return 0
	case k >= OverflowKey:
		return math.Pow(gamma, MaxKey)
	}
	return 2 * math.Pow(gamma, float64(k)) / (gamma + 1)
}

// BucketBounds returns the bounds, in seconds, of the bucket with key k:
// values v with lower < v ≤ upper. The underflow bucket is [0, γ^(MinKey−1)]
// and the overflow bucket (γ^MaxKey, +Inf).
func BucketBounds(k int) (lower, upper float64) {
	switch {
	case k <= UnderflowKey:
		return 0, math.Pow(gamma, MinKey-1)
	case k >= OverflowKey:
		return math.Pow(gamma, MaxKey), math.Inf(1)
	}
	return math.Pow(gamma, float64(k-1)), math.Pow(gamma, float64(k))
}

// indexKey converts a dense index to its grid key.
func indexKey(idx int) int { return idx + MinKey - 1 }

// keyIndex converts a grid key (clamped like BucketKey) to its dense index.
func keyIndex(k int) int {
	switch {
	case k <= UnderflowKey:
		return underflowIdx
	case k >= OverflowKey:
		return overflowIdx
	}
	return k - MinKey + 1
}

// bucketValues caches BucketValue per dense index for quantile queries.
var bucketValues = func() (v [numBuckets]float64) {
	for i := range v {
		v[i] = BucketValue(indexKey(i))
	}
	return v
}()
