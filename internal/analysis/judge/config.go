package judge

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// common is the part of a judge spec both methods read the same way,
// checked. Optional settings stay pointers so that each method applies its
// own defaults.
type common struct {
	compare     string
	alpha       float64
	tol         float64   // δ, maxRelativeIncrease
	absTol      float64   // Δ, maxAbsoluteIncrease as a proportion (0.001 for 0.1 points)
	up, down    bool      // which directions count as worse
	quantiles   []float64 // quantile or quantiles, sorted; nil: none set
	minSamples  *int64
	maxSamples  int64 // 0: none
	maxDuration time.Duration
	onLimitPass bool
}

// parseCommon checks the settings every judge shares; defaultAlpha applies
// when the spec sets none.
func parseCommon(j spec.Judge, defaultAlpha float64) (common, error) {
	c := common{compare: j.Compare, alpha: defaultAlpha, onLimitPass: true}
	switch j.Compare {
	case spec.JudgeCompareErrorRate, spec.JudgeCompareLatency:
	default:
		return c, fmt.Errorf("unknown judge comparison %q: use %s or %s", j.Compare, spec.JudgeCompareErrorRate, spec.JudgeCompareLatency)
	}
	switch j.Direction {
	case "", spec.DirectionIncrease:
		c.up = true
	case spec.DirectionDecrease:
		c.down = true
	case spec.DirectionEither:
		c.up, c.down = true, true
	default:
		return c, fmt.Errorf("unknown direction %q: use %s, %s or %s", j.Direction, spec.DirectionIncrease, spec.DirectionDecrease, spec.DirectionEither)
	}
	switch j.OnLimit {
	case "", spec.OnLimitPass:
	case spec.OnLimitInconclusive:
		c.onLimitPass = false
	default:
		return c, fmt.Errorf("unknown onLimit policy %q", j.OnLimit)
	}
	if j.Alpha != nil {
		if a := *j.Alpha; !(a > 0 && a < 1) {
			return c, fmt.Errorf("alpha must be between 0 and 1 (exclusive), not %v", a)
		}
		c.alpha = *j.Alpha
	}
	if j.MaxRelativeIncrease != nil {
		if d := *j.MaxRelativeIncrease; !(d >= 0) || math.IsInf(d, 0) {
			return c, fmt.Errorf("maxRelativeIncrease must be finite and at least 0, not %v", d)
		}
		c.tol = *j.MaxRelativeIncrease
	}
	if j.MaxAbsoluteIncrease != nil {
		d := *j.MaxAbsoluteIncrease
		switch {
		case j.Compare != spec.JudgeCompareErrorRate:
			return c, fmt.Errorf("maxAbsoluteIncrease applies only to compare: error-rate")
		case !(d >= 0 && d < 100):
			return c, fmt.Errorf("maxAbsoluteIncrease must be at least 0 and below 100 percentage points, not %v", d)
		}
		c.absTol = d / 100
	}
	qs, err := parseQuantiles(j)
	if err != nil {
		return c, err
	}
	c.quantiles = qs
	if j.MaxSamples != nil {
		if *j.MaxSamples < 1 {
			return c, fmt.Errorf("maxSamples must be at least 1, not %d", *j.MaxSamples)
		}
		c.maxSamples = *j.MaxSamples
	}
	if j.MinSamples != nil {
		if *j.MinSamples < 0 {
			return c, fmt.Errorf("minSamples must be at least 0, not %d", *j.MinSamples)
		}
		n := *j.MinSamples
		c.minSamples = &n
	}
	if j.MaxDuration != nil {
		if *j.MaxDuration <= 0 {
			return c, fmt.Errorf("maxDuration must be positive, not %v", *j.MaxDuration)
		}
		c.maxDuration = j.MaxDuration.D()
	}
	return c, nil
}

// parseQuantiles checks quantile and quantiles (at most one of them) and
// returns the judged quantiles in increasing order, nil when neither is set.
func parseQuantiles(j spec.Judge) ([]float64, error) {
	if j.Quantile == nil && j.Quantiles == nil {
		return nil, nil
	}
	if j.Compare != spec.JudgeCompareLatency {
		if j.Quantiles != nil {
			return nil, fmt.Errorf("quantiles applies only to compare: latency")
		}
		return nil, fmt.Errorf("quantile applies only to compare: latency")
	}
	if j.Quantile != nil {
		if j.Quantiles != nil {
			return nil, fmt.Errorf("set quantile or quantiles, not both")
		}
		if q := *j.Quantile; !(q > 0 && q < 1) {
			return nil, fmt.Errorf("quantile must be between 0 and 1 (exclusive), not %v", q)
		}
		return []float64{*j.Quantile}, nil
	}
	if j.Method == spec.JudgeMethodFixed {
		return nil, fmt.Errorf("quantiles applies only to method sequential: the fixed judge tests one quantile (quantile) or the whole distribution")
	}
	if j.Method == spec.JudgeMethodKayenta {
		return nil, fmt.Errorf("quantiles applies only to method sequential: the kayenta judge classifies one quantile (quantile) per interval")
	}
	switch n := len(j.Quantiles); {
	case n == 0:
		return nil, fmt.Errorf("quantiles must list at least one quantile (or be left out for the default set)")
	case n > spec.MaxJudgeQuantiles:
		return nil, fmt.Errorf("quantiles lists %d quantiles, at most %d", n, spec.MaxJudgeQuantiles)
	}
	qs := slices.Clone(j.Quantiles)
	slices.Sort(qs)
	for i, q := range qs {
		if !(q > 0 && q < 1) {
			return nil, fmt.Errorf("quantiles: each must be between 0 and 1 (exclusive), not %v", q)
		}
		if i > 0 && q == qs[i-1] {
			return nil, fmt.Errorf("quantiles lists %v twice", q)
		}
	}
	return qs, nil
}
