package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// With no events at all, the p₁ = 0 component alone (weight 1/2) shows
// p < u once (1−u)^−n ≥ 2/α: the bound is below u by then (the other
// components add a little, so it may be a bit earlier, but not by half).
func TestBernoulliUpperBoundWithoutEvents(t *testing.T) {
	const alpha, u = 0.01, 0.002
	need := int64(math.Ceil(math.Log(2/alpha) / -math.Log1p(-u)))
	if b := BernoulliUpperBound(0, need/2, alpha); b <= u {
		t.Errorf("after %d error-free requests the bound is %v, already below %v", need/2, b, u)
	}
	if b := BernoulliUpperBound(0, need, alpha); b > u {
		t.Errorf("after %d error-free requests the bound is %v, want ≤ %v", need, b, u)
	}
	if BernoulliLowerBound(0, 1_000_000, alpha) != 0 {
		t.Error("a lower bound above 0 without events")
	}
}

func TestBernoulliBoundsBracketTheRate(t *testing.T) {
	for _, c := range []struct{ x, n int64 }{{1, 10}, {5, 1000}, {50, 10000}, {500, 1000}, {999, 1000}, {1000, 1000}} {
		p := float64(c.x) / float64(c.n)
		lo, hi := BernoulliLowerBound(c.x, c.n, 0.05), BernoulliUpperBound(c.x, c.n, 0.05)
		if !(lo <= p && p <= hi) || lo < 0 || hi > 1 {
			t.Errorf("x=%d n=%d: bounds [%v, %v] do not hold the rate %v", c.x, c.n, lo, hi, p)
		}
		// At the bounds the e-values sit at the threshold (bisection).
		if hi < 1 {
			if le := BernoulliUpperLogE(c.x, c.n, hi*(1+1e-9)); le < math.Log(20)-1e-6 {
				t.Errorf("x=%d n=%d: just above the upper bound ln e = %v < ln 20", c.x, c.n, le)
			}
		}
		// More data, tighter bounds.
		lo2, hi2 := BernoulliLowerBound(10*c.x, 10*c.n, 0.05), BernoulliUpperBound(10*c.x, 10*c.n, 0.05)
		if c.x > 0 && c.x < c.n && !(lo2 > lo && hi2 < hi) {
			t.Errorf("x=%d n=%d: ten times the data gives [%v, %v], not inside [%v, %v]", c.x, c.n, lo2, hi2, lo, hi)
		}
	}
}

// The bounds are confidence sequences: over whole paths, the chance that
// one of them ever excludes the true rate stays below α (here about α/4:
// Ville's bound is loose for mixtures).
func TestBernoulliBoundsAreTimeUniform(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	const alpha, p, paths, steps, per = 0.05, 0.01, 300, 40, 500
	r := rand.New(rand.NewPCG(3, 4))
	missUp, missLo := 0, 0
	for range paths {
		var x, n int64
		up, lo := false, false
		for range steps {
			for range per {
				n++
				if r.Float64() < p {
					x++
				}
			}
			up = up || BernoulliUpperBound(x, n, alpha) < p
			lo = lo || BernoulliLowerBound(x, n, alpha) > p
		}
		if up {
			missUp++
		}
		if lo {
			missLo++
		}
	}
	// 300 paths: α = 5% would be 15 misses; allow sampling error above it.
	for name, m := range map[string]int{"upper": missUp, "lower": missLo} {
		if m > 24 {
			t.Errorf("%s bound excluded the true rate on %d of %d paths (α = %v)", name, m, paths, alpha)
		}
		t.Logf("%s bound: %d of %d paths ever excluded the rate", name, m, paths)
	}
}

func TestBernoulliLogEEdges(t *testing.T) {
	for _, c := range []struct {
		x, n int64
		u    float64
	}{{0, 0, 0.1}, {-1, 10, 0.1}, {11, 10, 0.1}, {1, 10, 0}, {1, 10, 1}, {1, 10, math.NaN()}} {
		if le := BernoulliUpperLogE(c.x, c.n, c.u); le != 0 {
			t.Errorf("upper(%d, %d, %v) = %v, want 0", c.x, c.n, c.u, le)
		}
		if le := BernoulliLowerLogE(c.x, c.n, c.u); le != 0 {
			t.Errorf("lower(%d, %d, %v) = %v, want 0", c.x, c.n, c.u, le)
		}
	}
}
