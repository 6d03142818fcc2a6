package alb

import (
	"fmt"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// maxTupleWeight is the largest weight an ALB target group tuple takes
// (0..999); only the ratio of the two weights matters.
const maxTupleWeight = 999

// pair is the stable and canary weights of the forward action.
type pair struct{ Stable, Canary int32 }

// weightsFor maps a canary share in basis points onto the ALB's 0..999
// tuple weights, whose resolution is 0.1%: the canary gets w/10 (rounded
// half up) and the stable 1000 minus that, so the ratio is the share to
// the nearest 0.1%. The ends are 999/0 (all stable) and 0/999 (all
// canary); a share above 0 never rounds down to no canary traffic, and one
// below 100% never rounds up to no stable traffic.
func weightsFor(w spec.Weight) pair {
	switch {
	case w == 0:
		return pair{Stable: maxTupleWeight}
	case w >= spec.MaxWeight:
		return pair{Canary: maxTupleWeight}
	}
	c := (int32(w) + 5) / 10
	c = max(c, 1)
	c = min(c, maxTupleWeight)
	return pair{Stable: 1000 - c, Canary: c}
}

// shareOf inverts weightsFor for any pair the ALB holds (set by coalmine or
// by hand): the canary's share of the sum, in basis points, rounded to the
// nearest.
func shareOf(p pair) (spec.Weight, error) {
	if p.Stable < 0 || p.Canary < 0 {
		return 0, fmt.Errorf("negative target group weight (stable %d, canary %d)", p.Stable, p.Canary)
	}
	sum := int64(p.Stable) + int64(p.Canary)
	if sum == 0 {
		return 0, fmt.Errorf("both target group weights are 0: the rule sends no traffic")
	}
	return spec.Weight((int64(p.Canary)*int64(spec.MaxWeight) + sum/2) / sum), nil
}
