package spec

import (
	"fmt"
	"math"
	"strconv"
)

// Weight is a canary traffic share in basis points (0..10000), so 1 means
// 0.01 %. Integers keep routing exact: a request goes to the canary iff its
// bucket in [0, 10000) is below the weight.
type Weight uint16

// MaxWeight is 100 %.
const MaxWeight Weight = 10000

// WeightFromPercent converts a percentage with at most two decimals to a
// Weight. It rejects values outside [0, 100], NaN, and finer resolutions,
// because silently rounding 0.005 % to 0 would hide a user's intent.
func WeightFromPercent(p float64) (Weight, error) {
	if math.IsNaN(p) || math.IsInf(p, 0) {
		return 0, fmt.Errorf("weight %v is not a number", p)
	}
	if p < 0 || p > 100 {
		return 0, fmt.Errorf("weight %v%% is out of range: it must be between 0 and 100", p)
	}
	bp := math.Round(p * 100)
	if math.Abs(bp-p*100) > 1e-6 {
		return 0, fmt.Errorf("weight %v%% has more than two decimals: the resolution is 0.01%%", p)
	}
	return Weight(bp), nil
}

// Percent returns the weight as a percentage.
func (w Weight) Percent() float64 { return float64(w) / 100 }

// String formats the weight as a percentage without trailing zeros, e.g. "2.5".
func (w Weight) String() string { return strconv.FormatFloat(w.Percent(), 'f', -1, 64) }
