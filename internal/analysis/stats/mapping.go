package stats

import (
	"math"
	"sort"
)

// This file holds the bucket-key mappings of statistics.md §5: the
// DDSketch logarithmic mapping (both conventions) and Prometheus native
// histogram schemas. A fixed, global log grid is what makes histograms of
// different versions and times merge and subtract exactly, and what the
// bucket-wise tests assume.

// DDSketchGamma returns γ = (1+a)/(1−a) for relative accuracy a.
func DDSketchGamma(relAcc float64) float64 { return (1 + relAcc) / (1 - relAcc) }

// DDSketchKeyCeil returns the key ⌈ln x / ln γ⌉ of x > 0 in the paper's
// (and Prometheus-like) convention: bucket (γ^(i−1), γ^i].
func DDSketchKeyCeil(x, gamma float64) int {
	return int(math.Ceil(math.Log(x) / math.Log(gamma)))
}

// DDSketchValueCeil returns the representative 2γ^i/(γ+1) of key i in the
// ceil convention; it is within the relative accuracy of every value in
// the bucket.
func DDSketchValueCeil(i int, gamma float64) float64 {
	return 2 * math.Pow(gamma, float64(i)) / (gamma + 1)
}

// DDSketchKeyFloor returns the key ⌊ln x / ln γ⌋ of DataDog/sketches-go's
// LogarithmicMapping: bucket [γ^i, γ^(i+1)). It differs from the ceil key
// (by one) only on exact bucket boundaries.
func DDSketchKeyFloor(x, gamma float64) int {
	return int(math.Floor(math.Log(x) / math.Log(gamma)))
}

// DDSketchValueFloor returns sketches-go's representative γ^i·(1+a) of key i.
func DDSketchValueFloor(i int, gamma, relAcc float64) float64 {
	return math.Pow(gamma, float64(i)) * (1 + relAcc)
}

// prometheusBounds[s] are the fractions in [0.5, 1) that start the 2^s
// buckets of one power of two in schema s > 0, generated the way
// client_golang documents for its literal table (each finer schema reuses
// the coarser schema's values at even positions); a test checks them
// against that table.
var prometheusBounds = func() [][]float64 {
	out := make([][]float64, 9)
	n := 1
	for i := range out {
		bounds := []float64{0.5}
		factor := math.Exp2(math.Exp2(float64(-i)))
		for j := 0; j < n-1; j++ {
			if (j+1)%2 == 0 {
				bounds = append(bounds, out[i-1][j/2+1])
			} else {
				bounds = append(bounds, bounds[j]*factor)
			}
		}
		n *= 2
		out[i] = bounds
	}
	return out
}()

// PrometheusMinSchema and PrometheusMaxSchema bound the native histogram
// schemas client_golang supports.
const (
	PrometheusMinSchema = -4
	PrometheusMaxSchema = 8
)

// PrometheusBase returns the growth factor 2^(2^−schema) of a schema.
func PrometheusBase(schema int) float64 { return math.Exp2(math.Exp2(float64(-schema))) }

// PrometheusKey returns the native-histogram bucket key of v > 0 in schema
// (PrometheusMinSchema … PrometheusMaxSchema): bucket (base^(key−1), base^key].
// It follows client_golang's histogramCounts.observe, which works on the
// frexp decomposition and is exact on powers of two where the naive
// ⌈ln v / ln base⌉ is off by one.
func PrometheusKey(v float64, schema int) int {
	frac, exp := math.Frexp(math.Abs(v))
	if schema > 0 {
		bounds := prometheusBounds[schema]
		return sort.SearchFloat64s(bounds, frac) + (exp-1)*len(bounds)
	}
	key := exp
	if frac == 0.5 {
		key--
	}
	offset := (1 << -schema) - 1
	return (key + offset) >> -schema
}

// PrometheusUpperBound returns base^key, the upper bound of bucket key, as
// client_golang's getLe computes it (from the same fraction table, so it
// agrees with PrometheusKey on every boundary).
func PrometheusUpperBound(key, schema int) float64 {
	if schema < 0 {
		return math.Ldexp(1, key<<-schema)
	}
	frac := prometheusBounds[schema][key&((1<<schema)-1)]
	return math.Ldexp(frac, (key>>schema)+1)
}
