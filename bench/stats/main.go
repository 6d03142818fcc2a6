// Command stats is the statistical quality benchmark of the canary judges:
// simulated rollouts at realistic traffic, judged second by second by the
// project's sequential judge, an Argo-style threshold rule, a
// fixed-horizon test re-run at every interval and Kayenta's classifier on
// one point a minute. It measures the false
// rollback rate of A/A canaries and the time and canary requests needed to
// detect error-rate and latency regressions, and checks two acceptance
// targets. Deterministic for a given command line (math/rand/v2 PCG, one
// stream per rollout, whatever the number of workers).
//
//	go run ./bench/stats            # full run, a few minutes on 2 CPUs
//	go run ./bench/stats -quick     # about a minute
//	go run ./bench/stats -o json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Baseline traffic: both versions unless a scenario changes the canary.
const (
	baseErrRate    = 0.005
	baseMedian     = 0.020 // seconds
	baseSigma      = 0.5   // of ln latency: p90/p50 ≈ 1.9, p99/p50 ≈ 3.2
	headlineRate   = 1000
	headlineWeight = 0.05
)

// traffic is a total request rate and the canary's share of it.
type traffic struct {
	Rate   float64 `json:"rate"`
	Weight float64 `json:"weight"`
}

func (t traffic) String() string {
	return fmt.Sprintf("%g req/s @ %g%%", t.Rate, t.Weight*100)
}

func (t traffic) canaryRate() float64 { return t.Rate * t.Weight }

func parseTraffic(s string) ([]traffic, error) {
	var out []traffic
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		rs, ws, ok := strings.Cut(f, "@")
		if !ok {
			return nil, fmt.Errorf("traffic %q: want RATE@WEIGHT%%, e.g. 1000@5", f)
		}
		r, err1 := strconv.ParseFloat(rs, 64)
		w, err2 := strconv.ParseFloat(strings.TrimSuffix(ws, "%"), 64)
		if err1 != nil || err2 != nil || !(r > 0) || !(w > 0 && w < 100) {
			return nil, fmt.Errorf("traffic %q: want RATE@WEIGHT%% with rate > 0 and 0 < weight < 100", f)
		}
		out = append(out, traffic{Rate: r, Weight: w / 100})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no traffic configuration")
	}
	return out, nil
}

// scenario is what the canary does differently from the stable.
type scenario struct {
	Name      string  `json:"name"`
	Null      bool    `json:"null"` // no regression beyond the tolerance: any rollback is false
	CanaryErr float64 `json:"canaryErrorRate"`
	StableErr float64 `json:"stableErrorRate"`
	LatFactor float64 `json:"canaryLatencyFactor"`
	// HeadlineOnly: simulated at the headline traffic alone (unless
	// -null-all-traffic).
	HeadlineOnly bool `json:"-"`
	// Which metrics are simulated and judged.
	Errors, Latency bool `json:"-"`
}

func scenarios(edge bool) []scenario {
	out := []scenario{
		{Name: "A/A", Null: true, CanaryErr: baseErrRate, LatFactor: 1, Errors: true, Latency: true},
		{Name: "A/A without errors", Null: true, CanaryErr: 0, StableErr: 0, LatFactor: 1, Errors: true, Latency: true},
	}
	if edge {
		out = append(out, scenario{Name: "at the tolerance (errors ×1.5, latency ×1.05)", Null: true, HeadlineOnly: true,
			CanaryErr: baseErrRate * (1 + errTolerance), LatFactor: 1 + latTolerance, Errors: true, Latency: true})
	}
	for i := range out {
		if out[i].Name != "A/A without errors" {
			out[i].StableErr = baseErrRate
		}
	}
	for _, e := range []float64{0.01, 0.02, 0.05} {
		out = append(out, scenario{Name: fmt.Sprintf("errors 0.5%% → %g%%", e*100), CanaryErr: e, StableErr: baseErrRate, LatFactor: 1, Errors: true})
	}
	for _, f := range []float64{1.10, 1.25, 1.50} {
		out = append(out, scenario{Name: fmt.Sprintf("latency +%.0f%%", (f-1)*100), CanaryErr: baseErrRate, StableErr: baseErrRate, LatFactor: f, Latency: true})
	}
	return out
}

// cell is one scenario at one traffic configuration, ready to simulate.
type cell struct {
	si, ti         int
	sc             scenario
	tr             traffic
	runs           int
	grid           bucketGrid
	canary, stable arm
	deciders       []deciderSpec
	results        [][]decision // [run][decider]
	done           atomic.Int64
	busy           atomic.Int64 // nanoseconds spent simulating, over all workers
}

type options struct {
	seed           uint64
	runs, detRuns  int
	runsOther      int
	dur            time.Duration
	traffic        []traffic
	workers        int
	fixedEverySec  bool
	seqP99         bool
	edge           bool
	progress       io.Writer
	command        string
	quick          bool
	nullAllTraffic bool
}

func buildCells(o options) []*cell {
	var cells []*cell
	for si, sc := range scenarios(o.edge) {
		for ti, tr := range o.traffic {
			runs := o.detRuns
			if sc.Null {
				runs = o.runs
				if !isHeadline(tr) {
					if !o.nullAllTraffic && sc.HeadlineOnly {
						continue // the edge scenario only at the headline traffic
					}
					runs = o.runsOther
				}
			}
			c := &cell{si: si, ti: ti, sc: sc, tr: tr, runs: runs}
			stableLat := latencyModel{median: baseMedian, sigma: baseSigma}
			canaryLat := latencyModel{median: baseMedian * sc.LatFactor, sigma: baseSigma}
			var pc, ps []float64
			if sc.Latency {
				c.grid = newBucketGrid(stableLat, canaryLat)
				pc, ps = c.grid.probs(canaryLat), c.grid.probs(stableLat)
			}
			c.canary = newArm(tr.canaryRate(), sc.CanaryErr, pc)
			c.stable = newArm(tr.Rate-tr.canaryRate(), sc.StableErr, ps)
			if sc.Errors {
				c.deciders = append(c.deciders, deciders(errorRate, o.dur, o.fixedEverySec, o.seqP99)...)
			}
			if sc.Latency {
				c.deciders = append(c.deciders, deciders(latency, o.dur, o.fixedEverySec, o.seqP99)...)
			}
			c.results = make([][]decision, runs)
			cells = append(cells, c)
		}
	}
	return cells
}

func isHeadline(t traffic) bool { return t.Rate == headlineRate && t.Weight == headlineWeight }

// simulate runs one rollout of c: its own PCG stream, one evaluation per
// simulated second until every decider has decided or the time is up.
func (c *cell) simulate(seed uint64, run int, seconds int) []decision {
	r := rand.New(rand.NewPCG(seed, uint64(c.si)<<48|uint64(c.ti)<<32|uint64(run)))
	w := world{grid: c.grid}
	if c.sc.Latency {
		w.canary.hist = make([]uint64, len(c.grid.buckets))
		w.stable.hist = make([]uint64, len(c.grid.buckets))
	}
	ds := make([]decider, len(c.deciders))
	for i, d := range c.deciders {
		ds[i] = d.build()
	}
	done := make([]bool, len(ds))
	left := len(ds)
	for t := 1; t <= seconds && left > 0; t++ {
		c.canary.second(r, &w.canary)
		c.stable.second(r, &w.stable)
		w.t, w.built = t, false
		for i, d := range ds {
			if !done[i] && d.step(t, &w) {
				done[i] = true
				left--
			}
		}
	}
	out := make([]decision, len(ds))
	for i, d := range ds {
		out[i] = d.result()
	}
	return out
}

func run(o options) *report {
	start := time.Now()
	cells := buildCells(o)
	seconds := int(o.dur / time.Second)
	type job struct {
		c   *cell
		run int
	}
	jobs := make(chan job, 256)
	var wg sync.WaitGroup
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				t0 := time.Now()
				j.c.results[j.run] = j.c.simulate(o.seed, j.run, seconds)
				j.c.busy.Add(int64(time.Since(t0)))
				if n := j.c.done.Add(1); int(n) == j.c.runs && o.progress != nil {
					fmt.Fprintf(o.progress, "%6.1fs  done: %s, %s (%d runs, %.1f s of simulation)\n", time.Since(start).Seconds(),
						j.c.sc.Name, j.c.tr, j.c.runs, time.Duration(j.c.busy.Load()).Seconds())
				}
			}
		}()
	}
	// Interleave the cells' runs so that slow cells do not end up last.
	maxRuns := 0
	for _, c := range cells {
		maxRuns = max(maxRuns, c.runs)
	}
	for r := range maxRuns {
		for _, c := range cells {
			if r < c.runs {
				jobs <- job{c, r}
			}
		}
	}
	close(jobs)
	wg.Wait()
	rep := summarise(o, cells)
	rep.Elapsed = time.Since(start).Round(100 * time.Millisecond).String()
	return rep
}

// exitCode is set by realMain; 1 when a target fails.
var exitCode int

func main() {
	realMain()
	os.Exit(exitCode)
}

func realMain() {
	// The judges allocate a little per call and keep nothing: a larger
	// heap target trades memory (tens of MB) for less GC work.
	debug.SetGCPercent(400)
	var (
		seed      = flag.Uint64("seed", 1, "seed of the PCG streams (one stream per simulated rollout)")
		runs      = flag.Int("runs", 1000, "simulated rollouts of the A/A and at-tolerance scenarios at the headline traffic (1000 req/s @ 5%)")
		runsOther = flag.Int("runs-other", 500, "simulated A/A rollouts at each other traffic configuration")
		detRuns   = flag.Int("det-runs", 200, "simulated rollouts per regression and traffic configuration")
		dur       = flag.Duration("duration", 10*time.Minute, "maximum duration of a rollout (the judges' maxDuration)")
		trafficF  = flag.String("traffic", "1000@5,400@5,50@50,2000@1", "traffic configurations, RATE@WEIGHT% (total req/s @ canary weight), comma-separated")
		workers   = flag.Int("workers", runtime.GOMAXPROCS(0), "parallel simulations")
		quick     = flag.Bool("quick", false, "about a minute: 150 rollouts per null scenario at the headline traffic, 50 A/A elsewhere, 30 per regression, no 1-s fixed-horizon and p99-only variants")
		fixed1s   = flag.Bool("fixed-every-second", true, "also re-run the fixed-horizon judges every second")
		seqP99    = flag.Bool("seq-p99", true, "also run the sequential latency judge on p99 alone")
		edge      = flag.Bool("edge", true, "also simulate a canary exactly at the tolerance (headline traffic only unless -null-all-traffic)")
		nullAll   = flag.Bool("null-all-traffic", false, "run the at-tolerance scenario at every traffic configuration")
		format    = flag.String("o", "markdown", "output format: markdown or json")
		quietProg = flag.Bool("q", false, "no progress lines on stderr")
		cpuProf   = flag.String("cpuprofile", "", "write a CPU profile to this file")
	)
	flag.Parse()
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		if !set["runs"] {
			*runs = 150
		}
		if !set["runs-other"] {
			*runsOther = 50
		}
		if !set["det-runs"] {
			*detRuns = 30
		}
		if !set["fixed-every-second"] {
			*fixed1s = false
		}
		if !set["seq-p99"] {
			*seqP99 = false
		}
	}
	tr, err := parseTraffic(*trafficF)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *runs < 1 || *runsOther < 1 || *detRuns < 1 || *workers < 1 || *dur < time.Second {
		fmt.Fprintln(os.Stderr, "runs, det-runs and workers must be ≥ 1 and duration ≥ 1s")
		os.Exit(2)
	}
	if *format != "markdown" && *format != "json" {
		fmt.Fprintln(os.Stderr, "-o: markdown or json")
		os.Exit(2)
	}
	o := options{seed: *seed, runs: *runs, runsOther: *runsOther, detRuns: *detRuns, dur: *dur, traffic: tr, workers: *workers,
		fixedEverySec: *fixed1s, seqP99: *seqP99, edge: *edge, nullAllTraffic: *nullAll, quick: *quick,
		command: strings.Join(append([]string{"go run ./bench/stats"}, os.Args[1:]...), " ")}
	if !*quietProg {
		o.progress = os.Stderr
	}
	rep := run(o)
	if *format == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	} else {
		rep.markdown(os.Stdout)
	}
	for _, t := range rep.Targets {
		if t.Status == "FAIL" {
			exitCode = 1
		}
	}
}

// quantile of sorted xs (+Inf for runs without a decision) by the
// nearest-rank rule; NaN when it falls on an undecided run.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return sorted[i]
}
