package stats

import "math"

// This file holds the quantile confidence sequences of statistics.md §4.5.1
// (Howard & Ramdas 2022, Thm 2) and the quantile reads of a histogram on a
// fixed grid. For i.i.d. observations the empirical CDF stays within ε_t of
// the true one for all t and all x at once, with probability ≥ 1 − α; every
// quantile's band follows from the same event, so bands for P50, P90 and
// P99 need no further correction.

// TimeUniformDKWRadius returns ε_t = 0.85·sqrt((ln ln(e·t) + 0.8·ln(1612/α))/t),
// the time-uniform radius of the empirical CDF after t observations (about
// twice the fixed-t DKW radius). It is +Inf for t < 1.
func TimeUniformDKWRadius(t, alpha float64) float64 {
	if t < 1 {
		return math.Inf(1)
	}
	return 0.85 * math.Sqrt((math.Log(math.Log(math.E*t))+0.8*math.Log(1612/alpha))/t)
}

// DKWRadius returns the fixed-t Dvoretzky–Kiefer–Wolfowitz radius
// sqrt(ln(2/α)/(2t)), for comparison only: it holds at one t, not for all.
func DKWRadius(t, alpha float64) float64 {
	return math.Sqrt(math.Log(2/alpha) / (2 * t))
}

// QuantileCSRanks returns the 1-based order statistics whose values bound
// quantile q after t observations at level alpha: lower = ⌈t(q − ε_t)⌉ and
// upper = ⌈t(q + ε_t)⌉. A rank is 0 when its end is unbounded (q − ε ≤ 0:
// the lower end is −∞, or 0 for latencies; q + ε > 1: the upper end is +∞).
func QuantileCSRanks(t int, q, alpha float64) (lower, upper int) {
	eps := TimeUniformDKWRadius(float64(t), alpha)
	if lo := q - eps; lo > 0 {
		lower = int(math.Ceil(float64(t) * lo))
	}
	if hi := q + eps; hi <= 1 {
		upper = int(math.Ceil(float64(t) * hi))
	}
	return lower, upper
}

// HistBucket is one bucket of a histogram on a fixed grid: Count
// observations in (Lower, Upper], represented by Value. Buckets of a
// histogram are sorted by value and do not overlap.
type HistBucket struct {
	Lower, Upper, Value float64
	Count               uint64
}

// HistTotal returns the number of observations in h.
func HistTotal(h []HistBucket) uint64 {
	var n uint64
	for _, b := range h {
		n += b.Count
	}
	return n
}

// histRank returns the index of the bucket holding the r-th (1-based)
// smallest observation, or −1 when r is outside 1 … total.
func histRank(h []HistBucket, r uint64) int {
	if r < 1 {
		return -1
	}
	var cum uint64
	for i, b := range h {
		cum += b.Count
		if cum >= r {
			return i
		}
	}
	return -1
}

// HistQuantile returns the representative value of quantile q by the rank
// rule of DataDog/sketches-go (walk the cumulative counts until they
// exceed q·(n−1)), and false for an empty histogram. On a log grid with
// relative accuracy a it is within a of the exact sample quantile.
func HistQuantile(h []HistBucket, q float64) (float64, bool) {
	n := HistTotal(h)
	if n == 0 {
		return math.NaN(), false
	}
	rank := q * float64(n-1)
	var cum float64
	for _, b := range h {
		cum += float64(b.Count)
		if cum > rank {
			return b.Value, true
		}
	}
	return h[len(h)-1].Value, true
}

// HistQuantileCS returns the (1−alpha) time-uniform confidence sequence of
// quantile q from a histogram: the lower end is the lower bound of the
// bucket holding rank ⌈t(q − ε_t)⌉ (0 when unbounded, latencies being
// non-negative) and the upper end the upper bound of the bucket holding
// rank ⌈t(q + ε_t)⌉ (+Inf when unbounded). Reading bucket bounds instead of
// values keeps the band valid, at the cost of one bucket's width.
func HistQuantileCS(h []HistBucket, q, alpha float64) SeqInterval {
	t := HistTotal(h)
	out := SeqInterval{Lower: 0, Upper: math.Inf(1)}
	if t == 0 {
		return out
	}
	lo, hi := QuantileCSRanks(int(t), q, alpha)
	if i := histRank(h, uint64(lo)); lo > 0 && i >= 0 {
		out.Lower = h[i].Lower
	}
	if i := histRank(h, uint64(hi)); hi > 0 && i >= 0 {
		out.Upper = h[i].Upper
	}
	return out
}
