package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// MannWhitney is the outcome of a Mann-Whitney U (Wilcoxon rank-sum) test of
// a canary sample against a baseline sample (statistics.md §3.1). It keeps
// the rank sums rather than one p-value so that a caller can ask for any
// alternative, with or without the continuity correction, after one pass
// over the data.
//
// Counts are float64 because the histogram form (§5.4) works with bucket
// counts far beyond what a caller would pass as raw observations.
type MannWhitney struct {
	N1, N2 float64 // canary and baseline sizes
	// R1 is the sum of the canary's mid-ranks in the pooled sample.
	R1 float64
	// U1 = R1 − n₁(n₁+1)/2 counts pairs where the canary is larger (ties ½);
	// U2 = n₁n₂ − U1.
	U1, U2 float64
	// MuU = n₁n₂/2 is the mean of U under H₀.
	MuU float64
	// TieTerm = Σ (t³ − t) over tie groups.
	TieTerm float64
	// SigmaU is the tie-corrected standard deviation of U under H₀; 0 when
	// every observation is tied.
	SigmaU float64
	// CLES = U1/(n₁n₂) = P(canary > baseline) + ½P(tie).
	CLES float64
	// HodgesLehmann is the median of all differences canary − baseline, the
	// shift estimate that goes with the test (NaN for histograms, where the
	// values inside a bucket are unknown).
	HodgesLehmann float64
	// ties records whether any value occurs twice; the exact test needs none.
	ties bool
}

// ErrEmptySample is returned when a test needs data from both versions and
// one of them has none; the judges map it to NoData (statistics.md §6).
var ErrEmptySample = errors.New("empty sample")

// MannWhitneyU ranks canary against baseline. NaN values are rejected: a
// NaN has no rank, and statistics.md §6 asks that none reach the ranks.
func MannWhitneyU(canary, baseline []float64) (MannWhitney, error) {
	if len(canary) == 0 || len(baseline) == 0 {
		return MannWhitney{}, fmt.Errorf("mann-whitney u with %d canary and %d baseline values: %w", len(canary), len(baseline), ErrEmptySample)
	}
	for _, v := range slices.Concat(canary, baseline) {
		if math.IsNaN(v) {
			return MannWhitney{}, errors.New("mann-whitney u: NaN value (remove or replace NaNs before ranking)")
		}
	}
	ranks, tieTerm, ties := midRanks(slices.Concat(canary, baseline))
	r1 := 0.0
	for i := range canary {
		r1 += ranks[i]
	}
	m := mannWhitneyFromRankSum(float64(len(canary)), float64(len(baseline)), r1, tieTerm)
	m.ties = ties
	m.HodgesLehmann = hodgesLehmann(canary, baseline)
	return m, nil
}

// MannWhitneyFromHistogram runs the test on two histograms over the same
// buckets, ordered by value, treating every observation in a bucket as tied
// (statistics.md §5.4). The result equals the test on the expanded data, so
// latency can be compared without keeping raw observations; bucketing only
// merges near-equal values, which makes the test slightly conservative.
func MannWhitneyFromHistogram(canary, baseline []float64) (MannWhitney, error) {
	if len(canary) != len(baseline) {
		return MannWhitney{}, fmt.Errorf("mann-whitney u from histograms: %d canary buckets but %d baseline buckets", len(canary), len(baseline))
	}
	var n1, n2 float64
	for j := range canary {
		c, b := canary[j], baseline[j]
		if c < 0 || b < 0 || math.IsNaN(c) || math.IsNaN(b) || math.IsInf(c, 0) || math.IsInf(b, 0) {
			return MannWhitney{}, fmt.Errorf("mann-whitney u from histograms: bucket %d has counts %v and %v (need finite and non-negative)", j, c, b)
		}
		n1 += c
		n2 += b
	}
	if n1 == 0 || n2 == 0 {
		return MannWhitney{}, fmt.Errorf("mann-whitney u from histograms with %v canary and %v baseline observations: %w", n1, n2, ErrEmptySample)
	}
	// U_canary = Σ_j c_j·(Σ_{i<j} b_i + b_j/2); T = Σ t(t−1)(t+1), which
	// stays exact in float64 for bucket totals up to ~10⁵.
	var u1, below, tieTerm float64
	for j := range canary {
		c, b := canary[j], baseline[j]
		u1 += c * (below + b/2)
		below += b
		t := c + b
		tieTerm += t * (t - 1) * (t + 1)
	}
	r1 := u1 + n1*(n1+1)/2
	m := mannWhitneyFromRankSum(n1, n2, r1, tieTerm)
	m.U1 = u1 // exact as accumulated, not via R1
	m.U2 = n1*n2 - u1
	m.CLES = u1 / (n1 * n2)
	m.ties = true
	m.HodgesLehmann = math.NaN()
	return m, nil
}

// mannWhitneyFromRankSum fills the statistics shared by both forms.
func mannWhitneyFromRankSum(n1, n2, r1, tieTerm float64) MannWhitney {
	n := n1 + n2
	u1 := r1 - n1*(n1+1)/2
	variance := n1 * n2 / 12 * ((n + 1) - tieTerm/(n*(n-1)))
	sigma := 0.0
	if variance > 0 && n > 1 {
		sigma = math.Sqrt(variance)
	}
	return MannWhitney{
		N1: n1, N2: n2, R1: r1,
		U1: u1, U2: n1*n2 - u1,
		MuU:     n1 * n2 / 2,
		TieTerm: tieTerm,
		SigmaU:  sigma,
		CLES:    u1 / (n1 * n2),
	}
}

// Z returns the normal-approximation statistic for the alternative, scipy's
// (and R's) convention: greater uses U1, less U2, two-sided max(U1, U2),
// each as (U − μ_U − c)/σ_U with c = ½ under the continuity correction. It
// is 0 when σ_U = 0 (all observations tied).
func (m MannWhitney) Z(alt Tail, continuity bool) float64 {
	if m.SigmaU == 0 {
		return 0
	}
	var u float64
	switch alt {
	case TailGreater:
		u = m.U1
	case TailLess:
		u = m.U2
	default:
		u = math.Max(m.U1, m.U2)
	}
	c := 0.0
	if continuity {
		c = 0.5
	}
	return (u - m.MuU - c) / m.SigmaU
}

// PValue returns the normal-approximation p-value (tie-corrected). With all
// observations tied it is 1 by definition (statistics.md §3.1), where scipy
// would give NaN without the continuity correction.
func (m MannWhitney) PValue(alt Tail, continuity bool) float64 {
	if m.SigmaU == 0 {
		return 1
	}
	p := NormSF(m.Z(alt, continuity))
	if alt == TailTwoSided {
		p = math.Min(1, 2*p)
	}
	return p
}

// maxExactPairs bounds n₁·n₂ for the exact distribution, whose cost grows
// as (n₁n₂)²/2; beyond it the normal approximation is excellent anyway.
const maxExactPairs = 10000

// ExactPValue returns the exact p-value from the null distribution of U
// (no ties). It is meant for small samples (scipy picks it when n₁ ≤ 8 or
// n₂ ≤ 8); it fails when there are ties, for histogram results, and when
// n₁·n₂ exceeds 10 000.
func (m MannWhitney) ExactPValue(alt Tail) (float64, error) {
	if m.ties {
		return math.NaN(), errors.New("exact mann-whitney p-value: the samples have ties (use the tie-corrected normal approximation)")
	}
	if m.N1*m.N2 > maxExactPairs {
		return math.NaN(), fmt.Errorf("exact mann-whitney p-value: %v×%v pairs exceed %d (use the normal approximation)", m.N1, m.N2, maxExactPairs)
	}
	pmf := mannWhitneyNullPMF(int(m.N1), int(m.N2))
	sf := func(u float64) float64 { // P(U ≥ u)
		s := 0.0
		for k := int(math.Ceil(u)); k < len(pmf); k++ {
			if k >= 0 {
				s += pmf[k]
			}
		}
		return math.Min(1, s)
	}
	switch alt {
	case TailGreater:
		return sf(m.U1), nil
	case TailLess:
		return sf(m.U2), nil
	default:
		return math.Min(1, 2*sf(math.Max(m.U1, m.U2))), nil
	}
}

// mannWhitneyNullPMF returns P(U = u), u = 0..n₁n₂, for sizes n₁, n₂ under
// H₀, from the recurrence of statistics.md §3.1 written in probabilities,
// p(u; m, n) = m/(m+n)·p(u−n; m−1, n) + n/(m+n)·p(u; m, n−1), which has only
// non-negative terms and cannot overflow.
func mannWhitneyNullPMF(n1, n2 int) []float64 {
	// cur[m] holds the distribution for sizes (m, n) as n grows.
	cur := make([][]float64, n1+1)
	for m := range cur {
		cur[m] = []float64{1} // n = 0: U = 0 surely
	}
	for n := 1; n <= n2; n++ {
		next := make([][]float64, n1+1)
		next[0] = []float64{1}
		for m := 1; m <= n1; m++ {
			d := make([]float64, m*n+1)
			wa := float64(m) / float64(m+n) // last element is a canary value
			wb := float64(n) / float64(m+n) // last element is a baseline value
			for u, p := range next[m-1] {   // sizes (m−1, n): shift by n
				d[u+n] += wa * p
			}
			for u, p := range cur[m] { // sizes (m, n−1)
				d[u] += wb * p
			}
			next[m] = d
		}
		cur = next
	}
	return cur[n1]
}

// midRanks returns the 1-based mid-ranks of xs (ties get the average of the
// positions they occupy), the tie term Σ(t³ − t), and whether any tie exists.
func midRanks(xs []float64) (ranks []float64, tieTerm float64, ties bool) {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	ranks = make([]float64, len(xs))
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && xs[idx[j]] == xs[idx[i]] {
			j++
		}
		r := float64(i+j+1) / 2 // average of positions i+1..j
		for k := i; k < j; k++ {
			ranks[idx[k]] = r
		}
		if t := float64(j - i); t > 1 {
			tieTerm += t*t*t - t
			ties = true
		}
		i = j
	}
	return ranks, tieTerm, ties
}

// hodgesLehmann returns the median of all pairwise differences x_i − y_j
// (the average of the two middle ones for an even count, like numpy).
func hodgesLehmann(x, y []float64) float64 {
	d := make([]float64, 0, len(x)*len(y))
	for _, a := range x {
		for _, b := range y {
			d = append(d, a-b)
		}
	}
	return median(d)
}

// median sorts xs in place and returns its median (NaN when empty).
func median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return math.NaN()
	}
	sort.Float64s(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
