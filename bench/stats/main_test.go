package main

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole benchmark with tiny parameters and checks that
// every table and target is produced, and that the result does not depend
// on the number of workers.
func TestSmoke(t *testing.T) {
	o := options{seed: 7, runs: 3, runsOther: 2, detRuns: 2, dur: 40 * time.Second,
		traffic: []traffic{{1000, 0.05}, {50, 0.5}}, workers: 2, fixedEverySec: true, seqP99: true, edge: true,
		command: "go run ./bench/stats -test"}
	rep := run(o)
	o.workers = 1
	rep1 := run(o)
	rep.Elapsed, rep1.Elapsed = "", ""
	rep1.Workers = rep.Workers
	a, _ := json.Marshal(rep)
	b, _ := json.Marshal(rep1)
	if !bytes.Equal(a, b) {
		t.Errorf("results depend on the number of workers:\n%s\n%s", a, b)
	}
	// 3 null scenarios at the headline traffic, the two A/A ones at the
	// other: each has 6+7 deciders + 6 families with both metrics.
	if got, want := len(rep.Null), 5*(6+7+6); got != want {
		t.Errorf("%d null rows, want %d", got, want)
	}
	// 3 error regressions × 6 deciders + 3 latency regressions × 7, per traffic.
	if got, want := len(rep.Detection), 2*(3*6+3*7); got != want {
		t.Errorf("%d detection rows, want %d", got, want)
	}
	for _, r := range rep.Null {
		if r.Runs == 0 || r.CILow > r.Rate || r.CIHigh < r.Rate {
			t.Errorf("null row %+v: bad rate or interval", r)
		}
	}
	// False rollbacks per null scenario (3), early passes of the two A/A
	// scenarios at the one 50-canary-req/s traffic (2), power of 0.5% → 1%
	// there (1), the 0.5% → 5% median (1).
	if len(rep.Targets) != 7 {
		t.Errorf("%d targets: %+v", len(rep.Targets), rep.Targets)
	}
	for _, want := range []string{"false rollbacks of the sequential judges", "passed early on both metrics within 120 s", "of its power", "median detection"} {
		n := 0
		for _, tg := range rep.Targets {
			if strings.Contains(tg.Text, want) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no target says %q", want)
		}
	}
	var md bytes.Buffer
	rep.markdown(&md)
	for _, want := range []string{"go run ./bench/stats -test", "## False rollbacks: A/A", "at the tolerance",
		"### 1000 req/s @ 5% (50 canary req/s)", "### 50 req/s @ 50% (25 canary req/s)", "errors 0.5% → 5%", "latency +50%",
		"sequential p99 only", "Argo-style threshold", "re-run every 1 s", "kayenta, every 60 s", "## Targets"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	// A latency ×1.5 or errors ×10 canary at 50 canary req/s is caught
	// within seconds by the sequential judge.
	for _, r := range rep.Detection {
		if isHeadline(r.Traffic) && (r.Scenario == "errors 0.5% → 5%" || r.Scenario == "latency +50%") &&
			r.Decider == "sequential, every 1 s" && r.Detected != r.Runs {
			t.Errorf("%s: detected %d of %d", r.Scenario, r.Detected, r.Runs)
		}
	}
}

// TestScreensAgree checks that the 1-s fixed-horizon deciders decide
// exactly as the unscreened judge asked every second.
func TestScreensAgree(t *testing.T) {
	o := options{seed: 3, runs: 1, runsOther: 1, detRuns: 1, dur: time.Minute, traffic: []traffic{{1000, 0.05}},
		fixedEverySec: true, edge: true}
	checked := 0
	for _, c := range buildCells(o) {
		var screened []deciderSpec
		for _, d := range c.deciders {
			if d.Family == "fixed 1 s" {
				screened = append(screened, d)
			}
		}
		var plain []deciderSpec
		for _, d := range screened {
			plain = append(plain, deciderSpec{Name: d.Name, Metric: d.Metric, build: func() decider {
				x := d.build().(*judgeDecider)
				x.screen = nil
				return x
			}})
		}
		for run := range 2 {
			c.deciders = screened
			a := c.simulate(o.seed, run, 60)
			c.deciders = plain
			b := c.simulate(o.seed, run, 60)
			for i := range a {
				if a[i] != b[i] {
					t.Errorf("%s run %d %s: screened %+v, judge %+v", c.sc.Name, run, screened[i].Name, a[i], b[i])
				}
				if a[i].failed {
					checked++
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no run failed: the screens' positive path was not exercised")
	}
}

func TestSamplers(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 40000
	check := func(name string, draw func() int64, mean, variance float64) {
		t.Helper()
		var s, s2 float64
		for range n {
			x := float64(draw())
			s += x
			s2 += x * x
		}
		m := s / n
		v := s2/n - m*m
		if se := math.Sqrt(variance / n); math.Abs(m-mean) > 5*se {
			t.Errorf("%s: mean %v, want %v ± %v", name, m, mean, 5*se)
		}
		if math.Abs(v-variance) > 0.06*variance {
			t.Errorf("%s: variance %v, want %v", name, v, variance)
		}
	}
	for _, lam := range []float64{0.3, 5, 11.9, 12, 47.5, 950} {
		check("poisson", func() int64 { return poisson(r, lam, math.Exp(-lam)) }, lam, lam)
	}
	for _, c := range []struct {
		n int64
		p float64
	}{{50, 0.005}, {1000, 0.05}, {30, 0.7}} {
		check("binomial", func() int64 { return binomial(r, c.n, c.p) }, float64(c.n)*c.p, float64(c.n)*c.p*(1-c.p))
	}
}

func TestGrid(t *testing.T) {
	m := latencyModel{median: baseMedian, sigma: baseSigma}
	g := newBucketGrid(m)
	p := g.probs(m)
	sum, below := 0.0, 0.0
	for i, x := range p {
		sum += x
		if g.buckets[i].Upper <= baseMedian {
			below += x
		}
	}
	if math.Abs(sum-1) > 1e-12 || math.Abs(below-0.5) > 0.011 {
		t.Errorf("probabilities sum to %v, %v below the median", sum, below)
	}
	for i := 1; i < len(g.buckets); i++ {
		if g.buckets[i].Key != g.buckets[i-1].Key+1 || g.buckets[i].Lower != g.buckets[i-1].Upper {
			t.Fatalf("buckets %d and %d are not adjacent", i-1, i)
		}
	}
}

func TestClopperPearson(t *testing.T) {
	for _, c := range []struct {
		k, n   int
		lo, hi float64
	}{{0, 1000, 0, 0.003682}, {10, 1000, 0.0048055, 0.0183132}, {1000, 1000, 0.996318, 1}} {
		lo, hi := clopperPearson(c.k, c.n, 0.95)
		if math.Abs(lo-c.lo) > 2e-6 || math.Abs(hi-c.hi) > 2e-6 {
			t.Errorf("%d/%d: [%v, %v], want [%v, %v]", c.k, c.n, lo, hi, c.lo, c.hi)
		}
	}
}
