// Package hascale measures coalmine's high availability at scale: 1,000
// rollouts on three replicas sharing one PostgreSQL database (issue 12's
// acceptance). The measurement is TestHAScale, which runs only when
// COALMINE_HA_SCALE=1; this file holds the pure pieces it uses (the
// configuration it generates, reading /proc, summarising samples) so that
// they are tested on their own in the ordinary `go test ./...`.
package hascale

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rollouts is the generated configuration: count rollouts that step
// through setWeight 10, a timed pause, setWeight 50, a timed pause and
// setWeight 100 (so each completes on its own), and one more, the probe,
// held at a long pause so that weight changes can be sent to it once the
// others are done.
type Rollouts struct {
	Count    int
	Pause    time.Duration
	BasePort int    // rollout i listens on BasePort+i; the probe on BasePort+Count
	Stable   string // endpoint URLs, shared by every rollout
	Canary   string
}

// ProbeName is the rollout that weight changes are sent to.
const ProbeName = "probe"

// Name is rollout i's name.
func (r Rollouts) Name(i int) string { return fmt.Sprintf("ro-%04d", i) }

// Names lists every rollout, the probe last.
func (r Rollouts) Names() []string {
	out := make([]string, 0, r.Count+1)
	for i := range r.Count {
		out = append(out, r.Name(i))
	}
	return append(out, ProbeName)
}

// StepsPerRollout is the number of steps of a progressing rollout.
const StepsPerRollout = 5

// YAML is the configuration file: the rollouts and nothing else. Health
// checks are left out (none run), so the figures are the controller's and
// the replicas' own cost, not that of probing 2,000 endpoints.
func (r Rollouts) YAML() string {
	var b strings.Builder
	for i, name := range r.Names() {
		steps := fmt.Sprintf("[{setWeight: 10}, {pause: {duration: %s}}, {setWeight: 50}, {pause: {duration: %s}}, {setWeight: 100}]", r.Pause, r.Pause)
		if name == ProbeName {
			// Starts at 20 so that the first change, to 10, is a change.
			steps = "[{setWeight: 20}, {pause: {duration: 1000h}}]"
		}
		fmt.Fprintf(&b, `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: %s}
spec:
  listen: 127.0.0.1:%d
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  strategy: {canary: {steps: %s}}
---
`, name, r.BasePort+i, r.Stable, r.Canary, steps)
	}
	return b.String()
}

// ListenOverrides are the --listen-override flags of replica k (0-based):
// it serves every rollout on loopback address 127.0.0.(k+1), so three
// replicas on one machine use the same ports on different addresses.
func (r Rollouts) ListenOverrides(k int) []string {
	var out []string
	for i, name := range r.Names() {
		out = append(out, "--listen-override", fmt.Sprintf("%s=127.0.0.%d:%d", name, k+1, r.BasePort+i))
	}
	return out
}

// EmptyYAML is a configuration without rollouts (serve refuses a directory
// with no objects at all), for the replicas' memory and CPU at 0 rollouts.
const EmptyYAML = `apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: unused}
spec:
  metrics:
    - name: error-rate
      successCondition: result.canary.errorRate <= 0.05
      provider: {builtin: {}}
`

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// ParseCPU returns utime+stime from the contents of /proc/PID/stat. The
// command name (field 2) is in parentheses and may hold spaces, so fields
// are counted after its closing parenthesis.
func ParseCPU(stat string) (time.Duration, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("no command name in /proc/PID/stat")
	}
	fields := strings.Fields(stat[end+1:])
	// After the name: state is field 3, utime field 14, stime field 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat has %d fields after the name, want at least 13", len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// Memory is what /proc/PID/status says of a process's resident memory.
type Memory struct {
	RSS  int64 // VmRSS, bytes
	Peak int64 // VmHWM, bytes: the highest RSS so far
}

// ParseMemory reads VmRSS and VmHWM from the contents of /proc/PID/status.
func ParseMemory(status string) (Memory, error) {
	var m Memory
	for line := range strings.Lines(status) {
		key, value, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("/proc/PID/status: %s is %q, want a number of kB", key, strings.TrimSpace(value))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc/PID/status %s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.Peak = kb << 10
		}
	}
	if m.RSS == 0 {
		return m, errors.New("/proc/PID/status has no VmRSS: is the process a zombie?")
	}
	return m, nil
}

// ReadCPU is process pid's CPU time so far.
func ReadCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return ParseCPU(string(b))
}

// ReadMemory is process pid's resident memory.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	return ParseMemory(string(b))
}

// Quantiles summarises durations: the median, the 99th percentile (the
// nearest rank below) and the maximum.
type Quantiles struct {
	P50, P99, Max time.Duration
	N             int
}

// Summarise sorts a copy of ds and reads its quantiles.
func Summarise(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))] }
	return Quantiles{P50: at(0.5), P99: at(0.99), Max: s[len(s)-1], N: len(s)}
}

// PerItem divides a total by a count, 0 when there is nothing to divide by.
func PerItem(total time.Duration, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return total / time.Duration(n)
}

// RolloutTiming is how long one rollout took: from its start to its
// completion, and each step (from the previous step's completion, or the
// start, to its own).
type RolloutTiming struct {
	Total time.Duration
	Steps []time.Duration
}

// EventTiming is the part of an event TimeSteps reads.
type EventTiming struct {
	Type string
	Time time.Time
}

// TimeSteps reads a rollout's timing from its events, oldest first: the
// rollout-started event, a rollout-step-completed event per step and the
// rollout-completed event.
func TimeSteps(events []EventTiming) (RolloutTiming, error) {
	var started, completed time.Time
	var steps []time.Time
	for _, t := range events {
		switch t.Type {
		case "rollout-started":
			started = t.Time
		case "rollout-step-completed":
			steps = append(steps, t.Time)
		case "rollout-completed":
			completed = t.Time
		}
	}
	if started.IsZero() || completed.IsZero() {
		return RolloutTiming{}, errors.New("no rollout-started or no rollout-completed event")
	}
	out := RolloutTiming{Total: completed.Sub(started)}
	prev := started
	for _, at := range steps {
		out.Steps = append(out.Steps, at.Sub(prev))
		prev = at
	}
	return out, nil
}

func (q Quantiles) String() string {
	r := func(d time.Duration) time.Duration {
		if d >= 10*time.Millisecond {
			return d.Round(time.Millisecond)
		}
		return d.Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v, p99 %v, max %v (%d)", r(q.P50), r(q.P99), r(q.Max), q.N)
}
