package main

import (
	"math"
	"math/rand/v2"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// Traffic model. Requests arrive as a Poisson process of the total rate and
// the router sends each to the canary with probability weight, so each
// version's requests per second are independent Poisson counts. Every
// request independently is an error with the version's error rate and has
// a log-normal latency. Thinning a Poisson process keeps it Poisson, so the
// per-second count of a version in latency bucket k is Poisson(rate ·
// P(bucket k)), independent across buckets: a second of traffic costs one
// Poisson draw per bucket instead of one draw per request.

// latencyModel is a log-normal latency distribution discretised onto the
// proxy's telemetry grid (DDSketch 1 % keys, internal/telemetry).
type latencyModel struct {
	median, sigma float64
}

// bucketGrid is the set of telemetry buckets a run can fill: every key
// within ±tailSigmas of every version's log-median.
type bucketGrid struct {
	first   int // key of index 0
	buckets []provider.Bucket
}

const tailSigmas = 6.5

func newBucketGrid(models ...latencyModel) bucketGrid {
	lo, hi := math.MaxInt, math.MinInt
	for _, m := range models {
		mu := math.Log(m.median)
		lo = min(lo, telemetry.BucketKey(math.Exp(mu-tailSigmas*m.sigma)))
		hi = max(hi, telemetry.BucketKey(math.Exp(mu+tailSigmas*m.sigma)))
	}
	g := bucketGrid{first: lo}
	for k := lo; k <= hi; k++ {
		l, u := telemetry.BucketBounds(k)
		g.buckets = append(g.buckets, provider.Bucket{Key: int32(k), Lower: l, Upper: u, Value: telemetry.BucketValue(k)})
	}
	return g
}

// probs returns the probability of each bucket of g under m; the mass of
// the tails beyond the grid (< 1e-10) is folded into the end buckets.
func (g bucketGrid) probs(m latencyModel) []float64 {
	mu := math.Log(m.median)
	cdf := func(x float64) float64 { return 0.5 * math.Erfc(-(math.Log(x)-mu)/(m.sigma*math.Sqrt2)) }
	p := make([]float64, len(g.buckets))
	prev := 0.0
	for i, b := range g.buckets {
		c := 1.0
		if i < len(g.buckets)-1 {
			c = cdf(b.Upper)
		}
		p[i] = max(c-prev, 0)
		prev = c
	}
	return p
}

// arm is one version's traffic per second: its request rate, error rate and
// (if latency is simulated) the expected count per bucket.
type arm struct {
	rate, errRate float64
	lam, expNeg   []float64 // per bucket: rate·p_k and e^(−rate·p_k)
}

func newArm(rate, errRate float64, probs []float64) arm {
	a := arm{rate: rate, errRate: errRate}
	if probs != nil {
		a.lam = make([]float64, len(probs))
		a.expNeg = make([]float64, len(probs))
		for i, p := range probs {
			a.lam[i] = rate * p
			a.expNeg[i] = math.Exp(-a.lam[i])
		}
	}
	return a
}

// cumulative is one version's counters since the rollout started, as the
// builtin provider reports them.
type cumulative struct {
	requests, errors int64
	hist             []uint64 // per bucket of the grid; nil without latency
}

// second adds one second of traffic to c.
func (a arm) second(r *rand.Rand, c *cumulative) {
	var n int64
	if a.lam != nil {
		for i, l := range a.lam {
			k := poisson(r, l, a.expNeg[i])
			c.hist[i] += uint64(k)
			n += k
		}
	} else {
		n = poisson(r, a.rate, math.Exp(-a.rate))
	}
	c.requests += n
	c.errors += binomial(r, n, a.errRate)
}

// buckets returns c's histogram in the provider's form: non-empty buckets
// in key order, cumulative since the start.
func (g bucketGrid) sample(c *cumulative, dst []provider.Bucket) provider.Sample {
	return provider.Sample{Requests: c.requests, Errors: c.errors, Latency: g.fill(c.hist, nil, dst)}
}

// fill returns the buckets of hist − base (base may be nil), non-empty only.
func (g bucketGrid) fill(hist, base []uint64, dst []provider.Bucket) []provider.Bucket {
	dst = dst[:0]
	for i, n := range hist {
		if base != nil {
			n -= base[i]
		}
		if n > 0 {
			b := g.buckets[i]
			b.Count = n
			dst = append(dst, b)
		}
	}
	return dst
}

// poisson draws Poisson(lam); expNeg is e^−lam. Small means use inversion
// by sequential search (O(lam), exact), larger ones Hörmann's PTRS
// transformed rejection (O(1), exact).
func poisson(r *rand.Rand, lam, expNeg float64) int64 {
	switch {
	case lam <= 0:
		return 0
	case lam < 12:
		u := r.Float64()
		p := expNeg
		f := p
		var k int64
		for u > f {
			k++
			p *= lam / float64(k)
			f += p
			if p < 1e-300 && k > int64(lam) { // u within rounding of 1
				break
			}
		}
		return k
	}
	return poissonPTRS(r, lam)
}

// poissonPTRS is W. Hörmann, "The transformed rejection method for
// generating Poisson random variables" (1993), as in NumPy.
func poissonPTRS(r *rand.Rand, lam float64) int64 {
	slam := math.Sqrt(lam)
	loglam := math.Log(lam)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invalpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := r.Float64() - 0.5
		v := r.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lam + 0.43)
		if us >= 0.07 && v <= vr {
			return int64(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invalpha)-math.Log(a/(us*us)+b) <= -lam+k*loglam-lg {
			return int64(k)
		}
	}
}

// binomial draws Binomial(n, p) for small p by geometric skips between
// successes: expected cost n·p + 1 logarithms, exact.
func binomial(r *rand.Rand, n int64, p float64) int64 {
	if n <= 0 || p <= 0 {
		return 0
	}
	if p >= 1 {
		return n
	}
	if p > 0.5 {
		return n - binomial(r, n, 1-p)
	}
	l1p := math.Log1p(-p)
	var x, pos int64
	for {
		// Trials up to and including the next success: Geometric(p) ≥ 1.
		skip := math.Floor(math.Log(1-r.Float64())/l1p) + 1
		if skip > float64(n-pos) {
			return x
		}
		pos += int64(skip)
		x++
	}
}
