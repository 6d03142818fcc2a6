package hascale

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestHAScale is issue 12's acceptance measurement: 1,000 rollouts on
// three replicas of the real binary sharing one PostgreSQL database. It
// prints a table of memory per rollout, CPU per state change, the
// followers' cost of re-reading 1,000 rollouts, the propagation of a
// weight change to all three data planes, and start-up and completion
// times. It is a measurement, not a test: it runs only with
// COALMINE_HA_SCALE=1 and fails only when the replicas do not work.
//
//	COALMINE_HA_SCALE=1 go test ./bench/hascale -run TestHAScale -v -timeout 30m
//
// COALMINE_HA_SCALE_ROLLOUTS (default 1000), COALMINE_HA_SCALE_CHANGES
// (weight changes sent to the probe rollout, default 100),
// COALMINE_HA_SCALE_PAUSE (the rollouts' pause steps, default 5s) and
// COALMINE_HA_SCALE_PROFILES (a directory: CPU profiles of a follower's
// start-up, of the leader and a follower while the rollouts progress and
// while idle, their heap
// profiles, MemStats and goroutines are written there; the progressing
// CPU figures then include the profiler) tune it;
// COALMINE_TEST_POSTGRES uses an existing server instead of a throwaway
// cluster.
func TestHAScale(t *testing.T) {
	if os.Getenv("COALMINE_HA_SCALE") != "1" {
		t.Skip("a measurement of several minutes; run it with COALMINE_HA_SCALE=1 (see the comment of TestHAScale)")
	}
	count := envInt(t, "COALMINE_HA_SCALE_ROLLOUTS", 1000)
	changes := envInt(t, "COALMINE_HA_SCALE_CHANGES", 100)
	pause := 5 * time.Second
	if s := os.Getenv("COALMINE_HA_SCALE_PAUSE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("COALMINE_HA_SCALE_PAUSE=%q: %v", s, err)
		}
		pause = d
	}
	profiles := os.Getenv("COALMINE_HA_SCALE_PROFILES")
	bin := buildBinary(t)
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	var table report

	// Zero rollouts: what a replica costs before it routes anything.
	zero := newCluster(t, bin, pgtest.DSN(t), EmptyYAML, func(int) []string { return nil })
	zero.startLeaderThenFollowers()
	time.Sleep(settle)
	idle0 := zero.cpuOver(idleWindow)
	mem0 := zero.memory()
	zero.stop()

	// 1,000 rollouts (and the probe).
	ro := Rollouts{Count: count, Pause: pause, BasePort: basePort, Stable: stable, Canary: canary}
	c := newCluster(t, bin, pgtest.DSN(t), ro.YAML(), ro.ListenOverrides)
	c.startupProfiles = profiles
	began := time.Now()
	c.startLeaderThenFollowers()
	db := openDB(t, c.dsn)
	startCPU := c.cpu()
	startRev := c.routeRevision(leader)
	startWrites, startWAL := db.writes(), db.walBytes()
	progressCommits := sampleCommits(t, c.dsn)
	var profiling sync.WaitGroup
	if profiles != "" {
		profiling.Go(func() { c.writeCPUProfiles(profiles, "progress", progressProfile) })
		profiling.Go(func() { c.writeGoroutineSnapshots(profiles, "progress", 3, 2*time.Second) })
	}
	t.Logf("started in %v (leader) and %v, %v (followers); leader route revision %d", c.readyAfter[0], c.readyAfter[1], c.readyAfter[2], startRev)
	completed, polls := c.waitComplete(ro, 10*time.Minute)
	completeCPU := c.cpu()
	completeRev := c.routeRevision(leader)
	completeWrites, completeWAL := db.writes(), db.walBytes()
	commitsWhileProgressing := progressCommits()
	profiling.Wait()
	c.profiling.Wait()
	events, steps := c.readEvents(ro)
	t.Logf("all %d complete %v after the leader was started; events %v", count, completed.Sub(began), events)

	time.Sleep(settle)
	commits0, backends0, idleWrites0, idleWAL0 := db.commits(), db.backendCPU(), db.writes(), db.walBytes()
	idleCommits := sampleCommits(t, c.dsn)
	idle := c.cpuOver(idleWindow)
	commitsWhileIdle := idleCommits()
	commits1, backends1, idleWrites1, idleWAL1 := db.commits(), db.backendCPU(), db.writes(), db.walBytes()
	mem := c.memory()
	records := db.recordSizes()
	listCost := c.listCost(20)

	prop := c.propagation(changes)

	// Traffic through every rollout on every replica, so that each
	// replica's telemetry record holds 1,000 rollouts' counters.
	c.touchEveryRollout(ro)
	time.Sleep(settle)
	busyRecords := db.recordSizes()
	idleTele := c.cpuOver(idleWindow)

	if profiles != "" {
		c.writeCPUProfiles(profiles, "idle", idleWindow)
		c.writeHeapProfiles(profiles)
	}

	table.add("rollouts (progressing + probe)", fmt.Sprintf("%d + 1", count))
	table.add("start: leader /readyz 200 after", c.readyAfter[0].Round(time.Millisecond).String())
	table.add("start: followers /readyz 200 after", fmt.Sprintf("%v, %v", c.readyAfter[1].Round(time.Millisecond), c.readyAfter[2].Round(time.Millisecond)))
	table.add("start: CPU until ready (leader; followers)", fmt.Sprintf("%v; %v, %v", startCPU[0], startCPU[1], startCPU[2]))
	table.add("all complete after (from the leader's start)", completed.Sub(began).Round(time.Millisecond).String())
	stateChanges := int(completeRev - startRev)
	table.add("state changes while progressing (leader's route revision)", strconv.Itoa(stateChanges))
	table.add("events (all rollouts, by type)", events.String())
	table.add("rollout duration, started → completed (ideal: the two pauses)", steps.total.String())
	for i, what := range []string{"setWeight 10", "pause", "setWeight 50", "pause", "setWeight 100"} {
		table.add(fmt.Sprintf("step %d (%s): began → completed", i+1, what), steps.byStep[i].String())
	}
	for i, name := range roles {
		cpu := completeCPU[i] - startCPU[i]
		if i == leader {
			// waitComplete's polls are the harness's, not the replicas'.
			cpu -= time.Duration(polls) * listCost
		}
		table.add("CPU while progressing, "+name, fmt.Sprintf("%v (%v per state change)", cpu, PerItem(cpu, stateChanges).Round(time.Microsecond)))
	}
	for i, name := range roles {
		table.add(fmt.Sprintf("RSS %s: 0 rollouts → %d (peak)", name, count), fmt.Sprintf("%s → %s (%s)", mib(mem0[i].RSS), mib(mem[i].RSS), mib(mem[i].Peak)))
		table.add("memory per rollout, "+name, fmt.Sprintf("%.1f KiB", float64(mem[i].RSS-mem0[i].RSS)/float64(count+1)/1024))
	}
	rereads := int(idleWindow / (2 * time.Second))
	for i, name := range roles {
		table.add(fmt.Sprintf("idle CPU over %v, %s: 0 → %d rollouts", idleWindow, name, count),
			fmt.Sprintf("%v → %v (%.1f%% of a core; %v per 2 s)", idle0[i], idle[i], 100*idle[i].Seconds()/idleWindow.Seconds(), PerItem(idle[i], rereads).Round(100*time.Microsecond)))
	}
	progressWindow := completed.Sub(began) - c.readyAfter[leader]
	for _, coll := range []string{"replicas", "replica-telemetry"} {
		table.add("writes of "+coll+" records per second, progressing → idle", fmt.Sprintf("%.1f → %.1f",
			float64(completeWrites[coll]-startWrites[coll])/progressWindow.Seconds(), float64(idleWrites1[coll]-idleWrites0[coll])/idleWindow.Seconds()))
	}
	table.add("WAL written per second, progressing → idle", fmt.Sprintf("%s → %s",
		kib(int64(float64(completeWAL-startWAL)/progressWindow.Seconds())), kib(int64(float64(idleWAL1-idleWAL0)/idleWindow.Seconds()))))
	table.add("a durable commit on the database (SELECT txid_current() every 50 ms), progressing", commitsWhileProgressing.String())
	table.add("a durable commit on the database, idle", commitsWhileIdle.String())
	table.add(fmt.Sprintf("idle, PostgreSQL: commits / backend CPU over %v", idleWindow), fmt.Sprintf("%d / %v", commits1-commits0, backends1-backends0))
	for i, name := range roles {
		table.add(fmt.Sprintf("idle CPU over %v after traffic on every rollout, %s", idleWindow, name), idleTele[i].String())
	}
	table.add(fmt.Sprintf("GET /api/v1/rollouts (%d rollouts) on the leader, CPU per call", count+1), listCost.String())
	table.add("weight change: PUT answered by the leader", prop.answered.String())
	for i, name := range roles {
		table.add("weight change → data plane of "+name, prop.replica[i].String())
	}
	table.add("weight change → all 3 data planes", prop.all.String())
	for _, coll := range slices.Sorted(maps.Keys(busyRecords)) {
		idleSize := records[coll]
		busy := busyRecords[coll]
		table.add("store records "+coll+": count, total, largest (idle → after traffic)",
			fmt.Sprintf("%d, %s, %s → %d, %s, %s", idleSize.count, kib(idleSize.total), kib(idleSize.largest), busy.count, kib(busy.total), kib(busy.largest)))
	}
	fmt.Println(table.String())
}

const (
	basePort   = 21000 // below the ephemeral range (32768–60999)
	settle     = 5 * time.Second
	idleWindow = 30 * time.Second
	leader     = 0 // replica r1, started first, leads
	// progressProfile is shorter than the progress (two 5 s pauses and
	// the setWeight steps), so the profile ends before the rollouts do.
	progressProfile = 10 * time.Second
	startupProfile  = 10 * time.Second
)

var roles = []string{"leader r1", "follower r2", "follower r3"}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: give a positive number", name, s)
	}
	return n
}

// buildBinary builds coalmine as it ships (no race detector, which would
// multiply memory and CPU).
func buildBinary(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "coalmine")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/coalmine")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build coalmine: %v", err)
	}
	return bin
}

// startBackend is one tiny upstream that every rollout shares.
func startBackend(t *testing.T, version string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, version) })}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxIdleConns: 192}}

func getJSON(url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// cluster is three replicas of `coalmine serve` on one database and one
// configuration file.
type cluster struct {
	t         *testing.T
	bin, dsn  string
	config    string
	overrides func(k int) []string
	// startupProfiles, when set, is where a CPU profile of follower r2's
	// first startupProfile is saved.
	startupProfiles string
	profiling       sync.WaitGroup
	nodes           [3]*replica
	readyAfter      [3]time.Duration
}

type replica struct {
	cmd       *exec.Cmd
	admin     string // http://host:port
	pprof     string // host:port
	logs      string // file
	exited    chan struct{}
	startedAt time.Time
}

func newCluster(t *testing.T, bin, dsn, yaml string, overrides func(k int) []string) *cluster {
	dir := t.TempDir()
	c := &cluster{t: t, bin: bin, dsn: dsn, config: filepath.Join(dir, "rollouts.yaml"), overrides: overrides}
	if err := os.WriteFile(c.config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// startLeaderThenFollowers starts r1 and waits until it is ready (so it
// leads), then r2 and r3 together.
func (c *cluster) startLeaderThenFollowers() {
	c.start(0)
	c.waitReady(0)
	c.start(1)
	c.start(2)
	if c.startupProfiles != "" {
		// Not waited for here: the profile runs on into the progress,
		// whose window starts when the followers are ready.
		c.profiling.Go(func() { c.profileStartup(1) })
	}
	c.waitReady(1)
	c.waitReady(2)
	var list []model.Replica
	if err := getJSON(c.nodes[leader].admin+"/api/v1/replicas", &list); err != nil {
		c.t.Fatal(err)
	}
	for _, r := range list {
		if r.Leader && r.ID != "r1" {
			c.t.Fatalf("%s leads, not r1: the table would name the roles wrongly", r.ID)
		}
	}
}

func (c *cluster) start(k int) {
	t := c.t
	dir := t.TempDir()
	n := &replica{admin: "http://" + freeAddr(t), pprof: freeAddr(t), logs: filepath.Join(dir, "serve.log"), exited: make(chan struct{})}
	args := append([]string{"serve", "-f", c.config, "--admin", strings.TrimPrefix(n.admin, "http://"), "--data-dir", filepath.Join(dir, "data"),
		"--store", c.dsn, "--replica-id", fmt.Sprintf("r%d", k+1), "--pprof-addr", n.pprof, "--log-format", "text"}, c.overrides(k)...)
	logs, err := os.Create(n.logs)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(c.bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = logs, logs
	n.startedAt = time.Now()
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); logs.Close(); close(n.exited) }()
	t.Cleanup(func() { c.kill(n) })
	c.nodes[k] = n
}

func (c *cluster) kill(n *replica) {
	if n == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
	if c.t.Failed() {
		b, _ := os.ReadFile(n.logs)
		if len(b) > 8000 {
			b = b[len(b)-8000:]
		}
		c.t.Logf("the end of %s's log:\n%s", n.admin, b)
	}
}

func (c *cluster) stop() {
	for _, n := range c.nodes {
		c.kill(n)
	}
}

func (c *cluster) waitReady(k int) {
	n := c.nodes[k]
	deadline := n.startedAt.Add(5 * time.Minute)
	for {
		select {
		case <-n.exited:
			b, _ := os.ReadFile(n.logs)
			c.t.Fatalf("replica r%d exited while starting:\n%s", k+1, b)
		default:
		}
		if resp, err := client.Get(n.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				c.readyAfter[k] = time.Since(n.startedAt)
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("replica r%d not ready after 5 minutes", k+1)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) cpu() [3]time.Duration {
	var out [3]time.Duration
	for k, n := range c.nodes {
		d, err := ReadCPU(n.cmd.Process.Pid)
		if err != nil {
			c.t.Fatalf("replica r%d: %v", k+1, err)
		}
		out[k] = d
	}
	return out
}

func (c *cluster) cpuOver(window time.Duration) [3]time.Duration {
	before := c.cpu()
	time.Sleep(window)
	after := c.cpu()
	for k := range after {
		after[k] -= before[k]
	}
	return after
}

func (c *cluster) memory() [3]Memory {
	var out [3]Memory
	for k, n := range c.nodes {
		m, err := ReadMemory(n.cmd.Process.Pid)
		if err != nil {
			c.t.Fatalf("replica r%d: %v", k+1, err)
		}
		out[k] = m
	}
	return out
}

// routeRevision is the sum of the rollout-state versions replica k routes
// with: it grows by one with every state the leader saves.
func (c *cluster) routeRevision(k int) uint64 {
	var list []model.Replica
	if err := getJSON(c.nodes[k].admin+"/api/v1/replicas", &list); err != nil {
		c.t.Fatal(err)
	}
	for _, r := range list {
		if r.ID == fmt.Sprintf("r%d", k+1) {
			return r.RouteRevision
		}
	}
	c.t.Fatalf("replica r%d is not in its own replica list", k+1)
	return 0
}

// waitComplete polls the leader's rollout list once a second (its cost is
// measured by listCost) until every progressing rollout has done its last
// step, and returns when it saw that.
func (c *cluster) waitComplete(ro Rollouts, timeout time.Duration) (at time.Time, polls int) {
	deadline := time.Now().Add(timeout)
	for {
		polls++
		var list api.RolloutList
		if err := getJSON(c.nodes[leader].admin+"/api/v1/rollouts", &list); err != nil {
			c.t.Fatal(err)
		}
		done := 0
		for _, v := range list.Items {
			if v.Metadata.Name != ProbeName && v.Status.StepIndex == v.Status.StepCount && v.Status.Phase == model.PhaseHealthy {
				done++
			}
		}
		if done == ro.Count {
			return time.Now(), polls
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d of %d rollouts complete after %v", done, ro.Count, timeout)
		}
		time.Sleep(time.Second)
	}
}

// eventCounts counts events by type.
type eventCounts map[string]int

func (e eventCounts) String() string {
	var parts []string
	total := 0
	for _, typ := range slices.Sorted(maps.Keys(e)) {
		parts = append(parts, fmt.Sprintf("%s %d", typ, e[typ]))
		total += e[typ]
	}
	return fmt.Sprintf("%d: %s", total, strings.Join(parts, ", "))
}

// stepTimes summarises how long the progressing rollouts took, from
// their events' times.
type stepTimes struct {
	total  Quantiles
	byStep [StepsPerRollout]Quantiles
}

// readEvents reads every rollout's events through the leader's API, and
// counts them by type and times the progressing rollouts' steps.
func (c *cluster) readEvents(ro Rollouts) (eventCounts, stepTimes) {
	out := eventCounts{}
	var timings []RolloutTiming
	for _, name := range ro.Names() {
		var after uint64
		var all []EventTiming
		for {
			var list api.EventList
			if err := getJSON(fmt.Sprintf("%s/api/v1/rollouts/%s/events?after=%d&limit=%d", c.nodes[leader].admin, name, after, api.MaxEventLimit), &list); err != nil {
				c.t.Fatal(err)
			}
			for _, e := range list.Items {
				out[e.Type]++
				after = e.Seq
				all = append(all, EventTiming{Type: e.Type, Time: e.Time})
			}
			if len(list.Items) < api.MaxEventLimit {
				break
			}
		}
		if name == ProbeName {
			continue
		}
		// Events are kept oldest first per rollout, in seq order.
		tm, err := TimeSteps(all)
		if err != nil {
			c.t.Fatalf("rollout %s: %v", name, err)
		}
		timings = append(timings, tm)
	}
	var total []time.Duration
	var byStep [StepsPerRollout][]time.Duration
	for _, tm := range timings {
		total = append(total, tm.Total)
		for i, d := range tm.Steps {
			if i < StepsPerRollout {
				byStep[i] = append(byStep[i], d)
			}
		}
	}
	st := stepTimes{total: Summarise(total)}
	for i := range byStep {
		st.byStep[i] = Summarise(byStep[i])
	}
	return out, st
}

// listCost is the leader's CPU per GET /api/v1/rollouts, which
// waitComplete sends once a second.
func (c *cluster) listCost(calls int) time.Duration {
	before := c.cpu()[leader]
	for range calls {
		var list api.RolloutList
		if err := getJSON(c.nodes[leader].admin+"/api/v1/rollouts", &list); err != nil {
			c.t.Fatal(err)
		}
	}
	return PerItem(c.cpu()[leader]-before, calls)
}

// propagated is how long weight changes took: the leader's answer to
// the PUT, each replica's data plane, and the last of the three.
type propagated struct {
	answered Quantiles
	replica  [3]Quantiles
	all      Quantiles
}

// propagation sends weight changes to the probe rollout through the
// leader and measures, for each, the time until all three replicas' data
// planes route with it (each replica's admin API reports the weight its
// own proxy routes with, polled in a tight loop), as test/e2e's
// TestWeightPropagation does with one rollout.
func (c *cluster) propagation(changes int) propagated {
	observed := func(k int) float64 {
		var v model.View
		if err := getJSON(c.nodes[k].admin+"/api/v1/rollouts/"+ProbeName, &v); err != nil || len(v.Status.Replicas) == 0 {
			return -1
		}
		return v.Status.Replicas[0].ObservedWeight // this replica's own data plane
	}
	var answered, all []time.Duration
	var each [3][]time.Duration
	for n := range changes {
		w := float64(10 + n%2*10) // 10, 20, 10, ...: never the weight set now
		body, _ := json.Marshal(api.WeightRequest{Percent: &w})
		began := time.Now()
		req, _ := http.NewRequest(http.MethodPut, c.nodes[leader].admin+"/api/v1/rollouts/"+ProbeName+"/weight", bytes.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			c.t.Fatalf("set weight: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			c.t.Fatalf("set weight: %s", resp.Status)
		}
		answered = append(answered, time.Since(began))
		var arrived [3]time.Duration
		var wg sync.WaitGroup
		for k := range c.nodes {
			wg.Go(func() {
				for observed(k) != w {
					if time.Since(began) > 10*time.Second {
						c.t.Errorf("replica r%d does not route with weight %v after 10 s", k+1, w)
						return
					}
				}
				arrived[k] = time.Since(began)
			})
		}
		wg.Wait()
		for k, d := range arrived {
			each[k] = append(each[k], d)
		}
		all = append(all, slices.Max(arrived[:]))
	}
	out := propagated{answered: Summarise(answered), all: Summarise(all)}
	for k := range each {
		out.replica[k] = Summarise(each[k])
	}
	return out
}

// touchEveryRollout sends one request through every rollout on every
// replica.
func (c *cluster) touchEveryRollout(ro Rollouts) {
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for k := range c.nodes {
		for i := range ro.Count + 1 {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				resp, err := client.Get(fmt.Sprintf("http://127.0.0.%d:%d/", k+1, ro.BasePort+i))
				if err != nil {
					c.t.Errorf("through %s on r%d: %v", ro.Names()[i], k+1, err)
					return
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
			})
		}
	}
	wg.Wait()
}

// writeCPUProfiles saves CPU profiles of the leader and follower r2
// over the same window into dir, named r1.<phase>.cpu.pprof and so on.
func (c *cluster) writeCPUProfiles(dir, phase string, window time.Duration) {
	var wg sync.WaitGroup
	for _, k := range []int{0, 1} {
		wg.Go(func() {
			c.saveProfile(dir, k, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(window.Seconds())), fmt.Sprintf("r%d.%s.cpu.pprof", k+1, phase), window)
		})
	}
	wg.Wait()
	c.t.Logf("CPU profiles of r1 (leader) and r2 (follower) over %v (%s) in %s", window, phase, dir)
}

// profileStartup saves a CPU profile of replica k from as soon as its
// pprof listener answers until startupProfile later.
func (c *cluster) profileStartup(k int) {
	for range 100 {
		if conn, err := net.Dial("tcp", c.nodes[k].pprof); err == nil {
			conn.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.saveProfile(c.startupProfiles, k, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(startupProfile.Seconds())), fmt.Sprintf("r%d.startup.cpu.pprof", k+1), startupProfile)
}

// writeGoroutineSnapshots saves the leader's goroutines n times, every
// gap: where its reconcile workers wait.
func (c *cluster) writeGoroutineSnapshots(dir, phase string, n int, gap time.Duration) {
	for i := range n {
		time.Sleep(gap)
		c.saveProfile(dir, leader, "/debug/pprof/goroutine?debug=1", fmt.Sprintf("r1.%s.goroutine-%d.txt", phase, i+1), 0)
	}
}

func (c *cluster) writeHeapProfiles(dir string) {
	for _, k := range []int{0, 1} {
		c.saveProfile(dir, k, "/debug/pprof/heap", fmt.Sprintf("r%d.heap.pprof", k+1), 0)
		// The text form ends with runtime.MemStats: heap, stacks, what
		// the runtime holds from the OS.
		c.saveProfile(dir, k, "/debug/pprof/heap?debug=1", fmt.Sprintf("r%d.heap.txt", k+1), 0)
		c.saveProfile(dir, k, "/debug/pprof/goroutine?debug=1", fmt.Sprintf("r%d.goroutine.txt", k+1), 0)
	}
}

func (c *cluster) saveProfile(dir string, k int, path, file string, window time.Duration) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Error(err)
		return
	}
	resp, err := (&http.Client{Timeout: window + time.Minute}).Get("http://" + c.nodes[k].pprof + path)
	if err != nil {
		c.t.Errorf("profile %s of r%d: %v", path, k+1, err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
		c.t.Error(err)
	}
}

// database reads PostgreSQL's own figures about the replicas' database.
type database struct {
	t    *testing.T
	conn *pgx.Conn
}

func openDB(t *testing.T, dsn string) *database {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &database{t: t, conn: conn}
}

// commits is the database's committed transactions so far (PostgreSQL
// publishes its statistics about once a second, so a difference over a
// window of many seconds is close).
func (d *database) commits() int64 {
	var n int64
	if err := d.conn.QueryRow(context.Background(), "SELECT pg_stat_force_next_flush(); SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&n); err != nil {
		// pg_stat_force_next_flush is PostgreSQL 15+; without it, read as is.
		if err := d.conn.QueryRow(context.Background(), "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&n); err != nil {
			d.t.Fatal(err)
		}
	}
	return n
}

// backendCPU is the CPU time so far of the PostgreSQL backends connected
// to the database (the server must run on this machine, as pgtest's
// does); a backend that ends within a window takes its time with it.
func (d *database) backendCPU() time.Duration {
	rows, err := d.conn.Query(context.Background(), "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	if err != nil {
		d.t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		d.t.Fatal(err)
	}
	var total time.Duration
	for _, pid := range pids {
		if cpu, err := ReadCPU(int(pid)); err == nil {
			total += cpu
		}
	}
	return total
}

// writes is, per collection, the sum of its records' versions: every
// write of a record adds one.
func (d *database) writes() map[string]int64 {
	rows, err := d.conn.Query(context.Background(), "SELECT collection, sum(version)::bigint FROM coalmine_records GROUP BY collection")
	if err != nil {
		d.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var coll string
		var n int64
		if err := rows.Scan(&coll, &n); err != nil {
			d.t.Fatal(err)
		}
		out[coll] = n
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}
	return out
}

// walBytes is the WAL the server has written so far (PostgreSQL 14+;
// the whole server, which pgtest's cluster gives to this test alone).
func (d *database) walBytes() int64 {
	var n int64
	if err := d.conn.QueryRow(context.Background(), "SELECT wal_bytes::bigint FROM pg_stat_wal").Scan(&n); err != nil {
		d.t.Fatal(err)
	}
	return n
}

// sampleCommits times, every 50 ms on a connection of its own, a
// transaction that must wait for the WAL to be flushed (txid_current
// assigns a transaction id, so its commit is durable): what any commit of
// the leader waits at that moment. Call the function it returns to stop
// and summarise.
func sampleCommits(t *testing.T, dsn string) func() Quantiles {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	var took []time.Duration
	go func() {
		defer close(done)
		defer conn.Close(context.Background())
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			began := time.Now()
			if _, err := conn.Exec(context.Background(), "SELECT txid_current()"); err != nil {
				t.Errorf("sample a commit: %v", err)
				return
			}
			took = append(took, time.Since(began))
		}
	}()
	return func() Quantiles {
		close(stop)
		<-done
		return Summarise(took)
	}
}

type recordSize struct{ count, total, largest int64 }

func (d *database) recordSizes() map[string]recordSize {
	rows, err := d.conn.Query(context.Background(), "SELECT collection, count(*), sum(length(data)), max(length(data)) FROM coalmine_records GROUP BY collection")
	if err != nil {
		d.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]recordSize{}
	for rows.Next() {
		var coll string
		var s recordSize
		if err := rows.Scan(&coll, &s.count, &s.total, &s.largest); err != nil {
			d.t.Fatal(err)
		}
		out[coll] = s
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}
	return out
}

// report is the printed table.
type report struct{ rows [][2]string }

func (r *report) add(what, figure string) { r.rows = append(r.rows, [2]string{what, figure}) }

func (r *report) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, row := range r.rows {
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
	w.Flush()
	return b.String()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
func kib(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }
