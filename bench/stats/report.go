package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis/stats"
)

// report is the benchmark's output (also its JSON form).
type report struct {
	Command     string      `json:"command"`
	Seed        uint64      `json:"seed"`
	Runs        int         `json:"runs"`
	RunsOther   int         `json:"runsOther"`
	DetRuns     int         `json:"detectionRuns"`
	MaxDuration string      `json:"maxDuration"`
	Workers     int         `json:"workers"`
	GoVersion   string      `json:"goVersion"`
	Elapsed     string      `json:"elapsed"`
	Traffic     []traffic   `json:"traffic"`
	Null        []nullRow   `json:"null"`
	Detection   []detRow    `json:"detection"`
	Targets     []targetRow `json:"targets"`
}

// nullRow is the false-rollback rate of one decider (or one decider family
// over both metrics: Metric "rollout") in a scenario without a regression
// beyond the tolerance.
type nullRow struct {
	Scenario string  `json:"scenario"`
	Traffic  traffic `json:"traffic"`
	Decider  string  `json:"decider"`
	Metric   string  `json:"metric"`
	Runs     int     `json:"runs"`
	Failures int     `json:"failures"`
	Rate     float64 `json:"rate"`
	CILow    float64 `json:"ci95Low"`
	CIHigh   float64 `json:"ci95High"`
	// PassedEarly counts runs the decider passed before the end (the
	// sequential judge proving non-inferiority); MedianPassS is the
	// median second of those passes.
	PassedEarly int      `json:"passedEarly"`
	MedianPassS *float64 `json:"medianPassSeconds,omitempty"`
	// passTimes are the seconds of the early passes, sorted.
	passTimes []float64
}

// passedWithin returns the share of the row's runs passed early by second
// s.
func (r nullRow) passedWithin(s float64) float64 {
	n := 0
	for _, t := range r.passTimes {
		if t <= s {
			n++
		}
	}
	return float64(n) / float64(max(r.Runs, 1))
}

// detRow is one decider's detection of one regression.
type detRow struct {
	Scenario string  `json:"scenario"`
	Traffic  traffic `json:"traffic"`
	Decider  string  `json:"decider"`
	Metric   string  `json:"metric"`
	Runs     int     `json:"runs"`
	Detected int     `json:"detected"`
	Prob     float64 `json:"detectionProbability"`
	// Quantiles over all runs, undetected ones counting as never (nil
	// when the quantile falls on an undetected run).
	MedianS      *float64 `json:"medianSeconds"`
	P90S         *float64 `json:"p90Seconds"`
	MedianCanary *float64 `json:"medianCanaryRequests"`
	P90Canary    *float64 `json:"p90CanaryRequests"`
	PassedEarly  int      `json:"passedEarly"`
}

type targetRow struct {
	Status string `json:"status"` // PASS, FAIL or SKIP
	Text   string `json:"text"`
}

func ptr(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

func summarise(o options, cells []*cell) *report {
	rep := &report{Command: o.command, Seed: o.seed, Runs: o.runs, RunsOther: o.runsOther, DetRuns: o.detRuns, MaxDuration: o.dur.String(),
		Workers: o.workers, GoVersion: runtime.Version(), Traffic: o.traffic}
	for _, c := range cells {
		if c.sc.Null {
			rep.Null = append(rep.Null, nullRows(c, int(o.dur/time.Second))...)
		} else {
			rep.Detection = append(rep.Detection, detRows(c, int(o.dur/time.Second))...)
		}
	}
	rep.Targets = targets(o, rep)
	return rep
}

func nullRows(c *cell, seconds int) []nullRow {
	var out []nullRow
	row := func(name, metric string, failed func(run []decision) bool, pass func(run []decision) (int, bool)) nullRow {
		r := nullRow{Scenario: c.sc.Name, Traffic: c.tr, Decider: name, Metric: metric, Runs: c.runs}
		var passAt []float64
		for _, run := range c.results {
			if failed(run) {
				r.Failures++
			}
			if pass != nil {
				if at, ok := pass(run); ok {
					r.PassedEarly++
					passAt = append(passAt, float64(at))
				}
			}
		}
		r.Rate = float64(r.Failures) / float64(r.Runs)
		r.CILow, r.CIHigh = clopperPearson(r.Failures, r.Runs, 0.95)
		if len(passAt) > 0 {
			slices.Sort(passAt)
			r.MedianPassS = ptr(quantile(passAt, 0.5))
			r.passTimes = passAt
		}
		return r
	}
	earlyPass := func(i int) func(run []decision) (int, bool) {
		return func(run []decision) (int, bool) {
			d := run[i]
			return d.at, d.passed && d.at < seconds
		}
	}
	for i, d := range c.deciders {
		out = append(out, row(d.Name, d.Metric.String(), func(run []decision) bool { return run[i].failed }, earlyPass(i)))
	}
	// The rollout fails when either metric's decider of the same family
	// fails; it is promoted early when both passed early (the later one).
	families := map[string][]int{}
	var order []string
	for i, d := range c.deciders {
		if _, ok := families[d.Family]; !ok {
			order = append(order, d.Family)
		}
		families[d.Family] = append(families[d.Family], i)
	}
	for _, f := range order {
		idx := families[f]
		if len(idx) < 2 {
			continue
		}
		name := c.deciders[idx[0]].Name
		out = append(out, row(name, "rollout", func(run []decision) bool {
			for _, i := range idx {
				if run[i].failed {
					return true
				}
			}
			return false
		}, func(run []decision) (int, bool) {
			at := 0
			for _, i := range idx {
				d := run[i]
				if !(d.passed && d.at < seconds) {
					return 0, false
				}
				at = max(at, d.at)
			}
			return at, true
		}))
	}
	return out
}

func detRows(c *cell, seconds int) []detRow {
	var out []detRow
	for i, d := range c.deciders {
		r := detRow{Scenario: c.sc.Name, Traffic: c.tr, Decider: d.Name, Metric: d.Metric.String(), Runs: c.runs}
		ts := make([]float64, 0, c.runs)
		ns := make([]float64, 0, c.runs)
		for _, run := range c.results {
			x := run[i]
			switch {
			case x.failed:
				r.Detected++
				ts = append(ts, float64(x.at))
				ns = append(ns, float64(x.canary))
			default:
				if x.passed && x.at < seconds {
					r.PassedEarly++ // a wrong early pass; still counted below as never
				}
				ts = append(ts, math.Inf(1))
				ns = append(ns, math.Inf(1))
			}
		}
		slices.Sort(ts)
		slices.Sort(ns)
		r.Prob = float64(r.Detected) / float64(r.Runs)
		r.MedianS, r.P90S = ptr(quantile(ts, 0.5)), ptr(quantile(ts, 0.9))
		r.MedianCanary, r.P90Canary = ptr(quantile(ns, 0.5)), ptr(quantile(ns, 0.9))
		out = append(out, r)
	}
	return out
}

// clopperPearson returns the exact two-sided binomial confidence interval
// of a proportion k/n.
func clopperPearson(k, n int, conf float64) (lo, hi float64) {
	a := (1 - conf) / 2
	// P(X ≥ k | p) rises with p, P(X ≤ k | p) falls.
	solve := func(f func(p float64) float64, target float64, rising bool) float64 {
		l, h := 0.0, 1.0
		for range 100 {
			m := (l + h) / 2
			if (f(m) < target) == rising {
				l = m
			} else {
				h = m
			}
		}
		return (l + h) / 2
	}
	if k > 0 {
		lo = solve(func(p float64) float64 { return 1 - stats.BinomialCDF(int64(k-1), int64(n), p) }, a, true)
	}
	hi = 1
	if k < n {
		hi = solve(func(p float64) float64 { return stats.BinomialCDF(int64(k), int64(n), p) }, a, false)
	}
	return lo, hi
}

func targets(o options, rep *report) []targetRow {
	var out []targetRow
	out = append(out, falseRollbackTargets(rep)...)
	out = append(out, earlyPassTargets(rep)...)
	out = append(out, powerTargets(rep)...)
	found := false
	for _, r := range rep.Detection {
		if r.Scenario != "errors 0.5% → 5%" || !isHeadline(r.Traffic) || r.Decider != seqName {
			continue
		}
		found = true
		t := targetRow{Status: "FAIL"}
		if r.MedianS != nil && *r.MedianS < 10 {
			t.Status = "PASS"
		}
		t.Text = fmt.Sprintf("median detection of errors 0.5%% → 5%% at %s by the sequential judge: %s < 10 s (%d rollouts)",
			r.Traffic, secs(r.MedianS), r.Runs)
		out = append(out, t)
	}
	if !found {
		out = append(out, targetRow{Status: "SKIP", Text: "detection of 0.5% → 5% errors: the headline traffic 1000@5 is not in -traffic"})
	}
	return out
}

// seqName is the sequential judges' decider.
const seqName = "sequential, every 1 s"

// falseRollbackTargets: for every scenario without a regression beyond the
// tolerance, at every traffic, the sequential judges (each metric and the
// rollout) roll back at most α of the canaries; at the headline traffic
// over at least 1000 rollouts.
func falseRollbackTargets(rep *report) []targetRow {
	var out []targetRow
	scenarios := map[string]bool{}
	var order []string
	for _, r := range rep.Null {
		if !scenarios[r.Scenario] {
			scenarios[r.Scenario] = true
			order = append(order, r.Scenario)
		}
	}
	for _, sc := range order {
		t := targetRow{Status: "PASS"}
		worst, rows := nullRow{}, 0
		headlineRuns := 0
		for _, r := range rep.Null {
			if r.Scenario != sc || r.Decider != seqName {
				continue
			}
			rows++
			if rows == 1 || r.Rate > worst.Rate {
				worst = r
			}
			if r.Rate > alpha {
				t.Status = "FAIL"
			}
			if isHeadline(r.Traffic) {
				headlineRuns = r.Runs
			}
		}
		if rows == 0 {
			continue
		}
		t.Text = fmt.Sprintf("%s: false rollbacks of the sequential judges ≤ α = %g%% at every traffic and metric (%d rows); the highest: %s, %s at %s",
			sc, alpha*100, rows, rateCell(worst), worst.Metric, worst.Traffic)
		if headlineRuns < 1000 && t.Status == "PASS" {
			t.Status = "SKIP"
			t.Text += fmt.Sprintf("; only %d rollouts at the headline traffic (target: ≥ 1000)", headlineRuns)
		}
		out = append(out, t)
	}
	return out
}

// earlyPassTargets: a healthy canary (A/A, with and without errors) is
// passed early on both metrics in ≥ 95% of rollouts within 120 s at 50
// canary req/s and within 300 s at 20 canary req/s.
func earlyPassTargets(rep *report) []targetRow {
	var out []targetRow
	for _, r := range rep.Null {
		if r.Decider != seqName || r.Metric != "rollout" || !strings.HasPrefix(r.Scenario, "A/A") {
			continue
		}
		var within float64
		switch r.Traffic.canaryRate() {
		case 50:
			within = 120
		case 20:
			within = 300
		default:
			continue
		}
		share := r.passedWithin(within)
		t := targetRow{Status: "PASS"}
		if share < 0.95 {
			t.Status = "FAIL"
		}
		t.Text = fmt.Sprintf("%s at %s: passed early on both metrics within %.0f s in %s of %d rollouts (target ≥ 95%%)",
			r.Scenario, r.Traffic, within, pct(share), r.Runs)
		out = append(out, t)
	}
	return out
}

// powerTargets: errors 0.5% → 1% are detected within the horizon by the
// sequential judge with at least 90% of the power of one fixed-horizon test
// at the horizon, at 20 and 50 canary req/s.
func powerTargets(rep *report) []targetRow {
	var out []targetRow
	for _, seq := range rep.Detection {
		if seq.Scenario != "errors 0.5% → 1%" || seq.Decider != seqName {
			continue
		}
		if cr := seq.Traffic.canaryRate(); cr != 20 && cr != 50 {
			continue
		}
		for _, once := range rep.Detection {
			if once.Scenario != seq.Scenario || once.Traffic != seq.Traffic || once.Decider != onceName {
				continue
			}
			t := targetRow{Status: "PASS"}
			if seq.Prob < 0.9*once.Prob {
				t.Status = "FAIL"
			}
			ratio := math.NaN()
			if once.Prob > 0 {
				ratio = seq.Prob / once.Prob
			}
			t.Text = fmt.Sprintf("errors 0.5%% → 1%% at %s: the sequential judge detects %s within the horizon, one fixed test at the horizon %s: %.2f of its power (target ≥ 0.90; %d rollouts each)",
				seq.Traffic, pct(seq.Prob), pct(once.Prob), ratio, seq.Runs)
			out = append(out, t)
		}
	}
	return out
}

// Formatting.

func pct(x float64) string {
	switch {
	case x == 0:
		return "0%"
	case x*100 >= 10:
		return fmt.Sprintf("%.1f%%", x*100)
	case x*100 >= 1:
		return fmt.Sprintf("%.2f%%", x*100)
	}
	return fmt.Sprintf("%.2g%%", x*100)
}

func rateCell(r nullRow) string {
	return fmt.Sprintf("%s (%d/%d; CI %s–%s)", pct(r.Rate), r.Failures, r.Runs, pct(r.CILow), pct(r.CIHigh))
}

func secs(x *float64) string {
	if x == nil {
		return "never"
	}
	return fmt.Sprintf("%.0f s", *x)
}

func count(x *float64) string {
	if x == nil {
		return "never"
	}
	return thousands(int64(*x))
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func trafficCell(t traffic) string {
	return fmt.Sprintf("%g req/s @ %g%% (%g canary req/s)", t.Rate, t.Weight*100, t.canaryRate())
}

func (rep *report) markdown(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Statistical quality of the judges\n\n")
	p("```sh\n%s\n```\n\n", rep.Command)
	p("Seed %d; %d rollouts for each null scenario at the headline traffic (1000 req/s @ 5%%), %d for A/A elsewhere, %d per regression; "+
		"each rollout at most %s, evaluated once per simulated second; %s, %d workers, %s.\n\n",
		rep.Seed, rep.Runs, rep.RunsOther, rep.DetRuns, rep.MaxDuration, rep.GoVersion, rep.Workers, rep.Elapsed)
	p("Traffic: Poisson arrivals, each request routed to the canary with probability = weight; stable error rate %g%%, "+
		"latency log-normal with median %g ms and σ = %g (p90 ≈ %.0f ms, p99 ≈ %.0f ms), counted per second into the proxy's "+
		"1%% DDSketch buckets; the judges get the cumulative counts and histograms since the start, like the builtin provider's.\n\n",
		baseErrRate*100, baseMedian*1000, baseSigma, baseMedian*math.Exp(1.2816*baseSigma)*1000, baseMedian*math.Exp(2.3263*baseSigma)*1000)
	p("Deciders (α = %g, tolerated increase: error rate ×%g, latency ×%g):\n\n", alpha, 1+errTolerance, 1+latTolerance)
	p("- **sequential, every 1 s**: `judge.NewSequential` (error-rate, also tolerating +%g percentage points (maxAbsoluteIncrease), whichever is larger; "+
		"latency on its default quantiles, p50 and p90), maxDuration %s, asked every second (with the limit set, the error-rate judge takes one "+
		"fixed-horizon look at it with 4/5 of α); a Successful (non-inferiority shown) ends the watch early.\n", errAbsPoints, rep.MaxDuration)
	p("- **sequential p99 only**: the same latency judge with `quantile: 0.99`.\n")
	p("- **Argo-style threshold, every 60 s**: on the last minute's data, canary error rate > %g%% fails; canary p99 > %g × stable p99 fails "+
		"(interval 1m, failureLimit 0).\n", argoErrThreshold*100, argoP99Factor)
	p("- **fixed-horizon, re-run every 60 s / 1 s**: `judge.NewFixed` (error-rate: exact conditional binomial test with the tolerance in the null, " +
		"minSamples 1000 requests; latency: one-sided Mann-Whitney U of the canary against the stable moved up ×1.05 (3 buckets of the log grid), so the tolerance is in the null, and, as before, the Hodges-Lehmann ratio > 1.05; minSamples 200) " +
		"on all data since the start; a pass does not end the watch, the first Failed rolls back.\n")
	p("- **fixed-horizon, once at the horizon**: the same fixed judge asked once, at %s: the power one test at level α has on that sample, "+
		"the reference for the sequential judge's detection.\n", rep.MaxDuration)
	p("- **kayenta, every 60 s**: `judge.NewKayenta` (Kayenta's Mann-Whitney classifier, 98%% interval, effect size mean ratio ≥ the tolerance) " +
		"on one point per minute and version (the minute's error rate, or its p99 latency), classified at every minute from the 5th on; " +
		"the first High rolls back.\n\n")

	// Null scenarios.
	var scen []string
	for _, r := range rep.Null {
		if !slices.Contains(scen, r.Scenario) {
			scen = append(scen, r.Scenario)
		}
	}
	for _, s := range scen {
		switch s {
		case "A/A":
			p("## False rollbacks: A/A canary (identical versions), %s rollouts\n\n", rep.MaxDuration)
		case "A/A without errors":
			p("## False rollbacks: A/A canary, neither version with any error, %s rollouts\n\n", rep.MaxDuration)
		default:
			p("## False rollbacks: canary exactly at the tolerance (error rate 0.75%%, latency ×1.05), %s rollouts\n\n", rep.MaxDuration)
		}
		p("Rate of rollouts failed at any evaluation, with its exact 95%% CI. \"Rollout\" fails when either metric's decider fails. " +
			"\"Passed early\": rollouts the sequential judge ended as Successful before the limit, and the median second it did.\n\n")
		p("| traffic | decider | error-rate metric | latency metric | rollout (either metric) | passed early: errors / latency / both |\n")
		p("|---|---|---|---|---|---|\n")
		type key struct {
			t traffic
			d string
		}
		var keys []key
		cells := map[key]map[string]nullRow{}
		for _, r := range rep.Null {
			if r.Scenario != s {
				continue
			}
			k := key{r.Traffic, r.Decider}
			if cells[k] == nil {
				cells[k] = map[string]nullRow{}
				keys = append(keys, k)
			}
			cells[k][r.Metric] = r
		}
		for _, k := range keys {
			m := cells[k]
			cell := func(metric string) string {
				r, ok := m[metric]
				if !ok {
					return "—"
				}
				return rateCell(r)
			}
			early := func(metric string) string {
				r, ok := m[metric]
				if !ok {
					return "—"
				}
				if r.PassedEarly == 0 {
					return "0"
				}
				return fmt.Sprintf("%s at %s", pct(float64(r.PassedEarly)/float64(r.Runs)), secs(r.MedianPassS))
			}
			e := "—"
			if strings.HasPrefix(k.d, "sequential") {
				e = early("error rate") + " / " + early("latency") + " / " + early("rollout")
			}
			p("| %s | %s | %s | %s | %s | %s |\n", trafficCell(k.t), k.d, cell("error rate"), cell("latency"), cell("rollout"), e)
		}
		p("\n")
	}

	// Detection.
	var trs []traffic
	for _, r := range rep.Detection {
		if !slices.Contains(trs, r.Traffic) {
			trs = append(trs, r.Traffic)
		}
	}
	if len(trs) > 0 {
		p("## Detection of regressions\n\n")
		p("Per regression and decider, over %d rollouts: the share detected (rolled back) within %s, and the median and p90 time "+
			"and canary requests to detection, counting undetected rollouts as never (\"never\": the quantile falls on one). "+
			"The Argo rule and the 60-s fixed test can only decide on whole minutes.\n\n", rep.DetRuns, rep.MaxDuration)
	}
	for _, t := range trs {
		p("### %s\n\n", trafficCell(t))
		p("| regression | decider | detected | median time | p90 time | median canary req. | p90 canary req. |\n")
		p("|---|---|---|---|---|---|---|\n")
		for _, r := range rep.Detection {
			if r.Traffic != t {
				continue
			}
			det := pct(r.Prob)
			if r.PassedEarly > 0 {
				det += fmt.Sprintf(" (%d wrongly passed early)", r.PassedEarly)
			}
			p("| %s | %s | %s | %s | %s | %s | %s |\n", r.Scenario, r.Decider, det, secs(r.MedianS), secs(r.P90S), count(r.MedianCanary), count(r.P90Canary))
		}
		p("\n")
	}
	p("## Targets\n\n```\n")
	for _, t := range rep.Targets {
		p("%s: %s\n", t.Status, t.Text)
	}
	p("```\n")
}
