package e2e

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/store/postgres/pgtest"
)

// Issue 12: several `coalmine serve` replicas on one PostgreSQL database.
// The tests start real replicas (the binary), a real PostgreSQL (pgtest),
// and, for the failover tests, a real HAProxy in front of the replicas'
// proxy ports with wrk load through it.

// haRollout is the rollout the replica tests share: a weight, a timed
// pause, an analysis of the merged traffic (six measurements a second
// apart), a larger weight, a pause for promote, then completion.
const haRollout = `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  healthCheck: {interval: 200ms}
  trafficRouting:
    assignment: {userHeader: X-User-ID}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: {duration: %s}
        - analysis: {templates: [{templateName: healthy}]}
        - setWeight: 50
        - pause: {}
        - setWeight: 100
---
apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: healthy}
spec:
  metrics:
    - name: error-rate
      interval: 1s
      count: 6
      successCondition: result.canary.errorRate <= 0.05
      provider: {builtin: {}}
`

// haCluster is n replicas of `coalmine serve` sharing one database and
// one configuration file; replica i serves rollout shop on its own
// address (--listen-override) and is named r<i+1>.
type haCluster struct {
	t      *testing.T
	dsn    string
	config string
	nodes  []*server
	relays []*relay
	// paused replicas (SIGSTOP) cannot answer; leader and waitReplicas
	// do not ask them.
	paused map[int]bool
}

// newHACluster prepares n replicas; yaml gets the rollout's nominal listen
// address (no replica binds it). With relayed, each replica reaches the
// database through a relay the test can cut (a partition).
func newHACluster(t *testing.T, n int, relayed bool, yaml func(listen string) string) *haCluster {
	t.Helper()
	c := &haCluster{t: t, dsn: pgtest.DSN(t), config: filepath.Join(t.TempDir(), "shop.yaml"), paused: map[int]bool{}}
	writeFile(t, c.config, yaml(freeAddr(t)))
	for i := range n {
		dsn := c.dsn
		if relayed {
			r := newRelay(t, c.dsn)
			c.relays = append(c.relays, r)
			dsn = r.dsn
		}
		s := &server{t: t, Listen: freeAddr(t), Admin: "http://" + freeAddr(t), DataDir: filepath.Join(t.TempDir(), "data"), Config: c.config}
		s.extra = []string{"--store", dsn, "--listen-override", "shop=" + s.Listen, "--replica-id", fmt.Sprintf("r%d", i+1)}
		c.nodes = append(c.nodes, s)
	}
	return c
}

// start starts every replica, one after the other (the first leads).
func (c *haCluster) start() {
	c.t.Helper()
	for _, s := range c.nodes {
		s.start()
	}
	c.waitReplicas(len(c.nodes), 10*time.Second)
}

// startShopCluster starts n replicas serving haRollout (its timed pause
// lasting pause) over two fresh backends, and returns them with the index
// of the replica they agree leads.
func startShopCluster(t *testing.T, n int, pause string) (*haCluster, int) {
	t.Helper()
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	c := newHACluster(t, n, false, func(listen string) string {
		return fmt.Sprintf(haRollout, listen, stable.URL, canary.URL, pause)
	})
	c.start()
	leader, _ := c.waitLeader(-1, 10*time.Second)
	return c, leader
}

// replica is one entry of GET /api/v1/replicas.
type replica struct {
	ID            string                     `json:"id"`
	Leader        bool                       `json:"leader"`
	Admin         string                     `json:"admin"`
	Version       string                     `json:"version"`
	RouteRevision uint64                     `json:"routeRevision"`
	LastHeartbeat time.Time                  `json:"lastHeartbeat"`
	Gone          bool                       `json:"gone"`
	Routes        map[string]json.RawMessage `json:"routes"`
}

// replicas asks node i for the replica list; nil when it cannot answer.
func (c *haCluster) replicas(i int) []replica {
	resp, err := client.Get(c.nodes[i].Admin + "/api/v1/replicas")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out []replica
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return nil
	}
	return out
}

// alive reports whether node i's process runs.
func (c *haCluster) alive(i int) bool {
	s := c.nodes[i]
	if s.cmd == nil || s.exited == nil || c.paused[i] {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// leader is the index of the replica every live replica agrees leads, or
// -1.
func (c *haCluster) leader() int {
	agreed := ""
	for i := range c.nodes {
		if !c.alive(i) {
			continue
		}
		id := ""
		for _, r := range c.replicas(i) {
			if r.Leader && !r.Gone {
				id = r.ID
			}
		}
		if id == "" || (agreed != "" && id != agreed) {
			return -1
		}
		agreed = id
	}
	for i := range c.nodes {
		if fmt.Sprintf("r%d", i+1) == agreed && c.alive(i) {
			return i
		}
	}
	return -1
}

// waitLeader waits until the live replicas agree on a leader other than
// not (-1: any), and returns it with how long that took.
func (c *haCluster) waitLeader(not int, timeout time.Duration) (int, time.Duration) {
	c.t.Helper()
	began := time.Now()
	var l int
	eventually(c.t, timeout, "the replicas to agree on a leader", func() bool {
		l = c.leader()
		return l >= 0 && l != not
	})
	return l, time.Since(began)
}

// waitReplicas waits until every live replica lists n live replicas, one
// of them leading.
func (c *haCluster) waitReplicas(n int, timeout time.Duration) {
	c.t.Helper()
	eventually(c.t, timeout, fmt.Sprintf("%d live replicas with one leader", n), func() bool {
		for i := range c.nodes {
			if !c.alive(i) {
				continue
			}
			live, leaders := 0, 0
			for _, r := range c.replicas(i) {
				if !r.Gone {
					live++
					if r.Leader {
						leaders++
					}
				}
			}
			if live != n || leaders != 1 {
				return false
			}
		}
		return true
	})
}

// follower is the index of a live replica that does not lead.
func (c *haCluster) follower(leader int) int {
	for i := range c.nodes {
		if i != leader && c.alive(i) {
			return i
		}
	}
	c.t.Fatal("no live follower")
	return -1
}

// kill9 kills replica i as a crash does.
func (c *haCluster) kill9(i int) {
	c.t.Helper()
	c.nodes[i].signal(9)
	c.nodes[i].waitExit(10 * time.Second)
}

// TestReplicasShareOneRollout: three replicas on one database list each
// other with one leader; a command sent to a follower takes effect once,
// everywhere; every replica's proxy routes with the new weight before the
// step completes; every replica shows the same status and events.
func TestReplicasShareOneRollout(t *testing.T) {
	c, leader := startShopCluster(t, 3, "1h")
	f := c.follower(leader)

	out := c.nodes[f].mustCLI("get", "replicas", "-o", "json")
	var listed []replica
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 3 {
		t.Fatalf("get replicas -o json: %v\n%s", err, out)
	}
	for _, r := range listed {
		if r.ID == "" || r.Admin == "" || r.LastHeartbeat.IsZero() || r.Gone {
			t.Fatalf("replica entry lacks a field: %+v", r)
		}
	}
	if text := c.nodes[f].mustCLI("get", "replicas"); !strings.Contains(text, "leader") || !strings.Contains(text, "r1") {
		t.Fatalf("get replicas:\n%s", text)
	}

	st := c.nodes[f].waitFor("the timed pause at 20% on a follower", 20*time.Second, func(st status) bool {
		return st.StepIndex == 1 && st.ObservedWeight == 20
	})
	for i, s := range c.nodes {
		if sh := share(assign(t, s.Listen, 1000), "v2"); sh < 15 || sh > 25 {
			t.Fatalf("replica r%d routes %.1f%% to the canary at weight 20", i+1, sh)
		}
	}
	// A follower's dashboard charts come from the leader, which holds
	// every replica's traffic: the 3,000 requests just sent through the
	// three replicas are all in them, within the 2 s merge lag.
	eventually(t, 10*time.Second, "the follower's series to show every replica's traffic", func() bool {
		var series struct {
			Versions []struct {
				Points []struct {
					Requests float64 `json:"requests"`
				} `json:"points"`
			} `json:"versions"`
		}
		c.nodes[f].getJSON("/api/v1/rollouts/shop/series?step=1s", &series)
		total := 0.0
		for _, v := range series.Versions {
			for _, p := range v.Points {
				total += p.Requests
			}
		}
		return total >= 3000
	})

	// Promote through a follower: forwarded to the leader, done once. The
	// analysis after it judges traffic that reaches a follower only.
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	load(ctx, c.nodes[f].Listen, 100)
	c.nodes[f].mustCLI("promote", "shop")
	c.nodes[f].waitFor("the analysis step", 10*time.Second, func(st status) bool { return st.StepIndex >= 2 })
	final := c.nodes[c.follower(f)].waitFor("the pause for promote at 50%", 30*time.Second, func(st status) bool {
		return st.StepIndex == 4 && st.Weight == 50
	})
	for i, s := range c.nodes {
		eventually(t, 5*time.Second, fmt.Sprintf("replica r%d to route 50%%", i+1), func() bool {
			sh := share(assign(t, s.Listen, 1000), "v2")
			return sh > 43 && sh < 57
		})
		if got := s.status(); got.StepIndex != final.StepIndex || got.Weight != 50 || got.Revision != st.Revision {
			t.Fatalf("replica r%d shows %+v, replica r%d %+v", i+1, got, c.follower(f)+1, final)
		}
	}
	evs := c.nodes[leader].events()
	promoted := 0
	for _, e := range evs {
		if e.Type == "rollout-promoted" {
			promoted++
		}
	}
	if promoted != 1 {
		t.Fatalf("%d promotion events for one promote through a follower: %+v", promoted, evs)
	}
	for i, s := range c.nodes {
		eventually(t, 5*time.Second, fmt.Sprintf("replica r%d to have the leader's events", i+1), func() bool {
			return len(s.events()) == len(evs)
		})
	}
	eventually(t, 5*time.Second, "every replica to report the same route revision", func() bool {
		rs := c.replicas(leader)
		for _, r := range rs {
			if r.RouteRevision != rs[0].RouteRevision || r.RouteRevision == 0 {
				return false
			}
		}
		return len(rs) == 3
	})

	// A replica that stops is shown as gone by the others.
	c.kill9(f)
	eventually(t, 10*time.Second, "the killed replica to be shown as gone", func() bool {
		for _, r := range c.replicas(leader) {
			if r.ID == fmt.Sprintf("r%d", f+1) {
				return r.Gone
			}
		}
		return false
	})
}

// relay forwards TCP connections to the database; cut drops them and
// refuses new ones until heal (a partition between one replica and the
// database).
type relay struct {
	t      *testing.T
	dsn    string
	target string
	ln     net.Listener
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
}

func newRelay(t *testing.T, dsn string) *relay {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{t: t, target: u.Host, ln: ln, conns: map[net.Conn]bool{}}
	u.Host = ln.Addr().String()
	r.dsn = u.String()
	go r.serve()
	t.Cleanup(func() { ln.Close(); r.setCut(true) })
	return r
}

func (r *relay) serve() {
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.cut {
			r.mu.Unlock()
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", r.target)
		if err != nil {
			r.mu.Unlock()
			in.Close()
			continue
		}
		r.conns[in], r.conns[out] = true, true
		r.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(out, in)
		go pipe(in, out)
	}
}

// setCut cuts (true) or heals (false) the link.
func (r *relay) setCut(cut bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = cut
	if cut {
		for c := range r.conns {
			c.Close()
		}
		r.conns = map[net.Conn]bool{}
	}
}

// haproxy is a real HAProxy balancing round-robin over the replicas'
// proxy ports, with health checks and retries on a failed connection.
type haproxy struct {
	Addr      string
	statsSock string // the stats socket
	cmd       *exec.Cmd
}

func startHAProxy(t *testing.T, servers []string) *haproxy {
	t.Helper()
	bin := requireTool(t, "haproxy")
	dir := t.TempDir()
	h := &haproxy{Addr: freeAddr(t), statsSock: filepath.Join(dir, "stats.sock")}
	var b strings.Builder
	fmt.Fprintf(&b, `global
    stats socket %s mode 600 level admin
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
frontend fe
    bind %s
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /health
`, h.statsSock, h.Addr)
	for i, s := range servers {
		fmt.Fprintf(&b, "    server r%d %s check inter 200ms fall 1 rise 2\n", i+1, s)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	writeFile(t, cfg, b.String())
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	h.cmd = exec.Command(bin, "-db", "-f", cfg)
	logs := &syncBuffer{}
	h.cmd.Stdout, h.cmd.Stderr = logs, logs
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = h.cmd.Process.Kill()
		_ = h.cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy logs:\n%s", logs.String())
		}
	})
	eventually(t, 10*time.Second, "haproxy to listen", func() bool {
		c, err := net.Dial("tcp", h.Addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return h
}

// serverStats are HAProxy's counters for one server of the backend.
type serverStats struct {
	Requests, Errors5xx, ConnErrors, RespErrors int
}

// stats reads `show stat` from the stats socket.
func (h *haproxy) stats(t *testing.T) map[string]serverStats {
	t.Helper()
	conn, err := net.Dial("unix", h.statsSock)
	if err != nil {
		t.Fatalf("haproxy stats socket: %v", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "show stat\n"); err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(bufio.NewReader(conn))
	text := strings.TrimPrefix(string(raw), "# ")
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("haproxy show stat: %v\n%s", err, raw)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	num := func(row []string, name string) int {
		n, _ := strconv.Atoi(row[col[name]])
		return n
	}
	out := map[string]serverStats{}
	for _, row := range rows[1:] {
		if len(row) < len(rows[0])-1 || row[col["pxname"]] != "replicas" || !strings.HasPrefix(row[col["svname"]], "r") {
			continue
		}
		out[row[col["svname"]]] = serverStats{Requests: num(row, "stot"), Errors5xx: num(row, "hrsp_5xx"),
			ConnErrors: num(row, "econ"), RespErrors: num(row, "eresp")}
	}
	return out
}

// wrkLoad runs wrk through addr with a user id per request until the
// test ends or stop is called.
func wrkLoad(t *testing.T, addr string) (stop func() string) {
	t.Helper()
	bin := requireTool(t, "wrk")
	script := filepath.Join(t.TempDir(), "users.lua")
	writeFile(t, script, `request = function()
  return wrk.format(nil, "/", {["X-User-ID"] = "u" .. math.random(1, 100000)})
end
`)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-t1", "-c8", "-d600s", "-s", script, "http://"+addr+"/")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() string {
		once.Do(func() { cancel(); <-done })
		return out.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// haStatus is the part of a rollout's status the failover tests compare.
type haStatus struct {
	status
	AnalysisRuns []struct {
		ID      string `json:"id"`
		Phase   string `json:"phase"`
		Metrics []struct {
			Name       string `json:"name"`
			Count      int    `json:"count"`
			Successful int    `json:"successful"`
		} `json:"metrics"`
	} `json:"analysisRuns"`
}

func (c *haCluster) fullStatus(i int) haStatus {
	var v struct {
		Status haStatus `json:"status"`
	}
	c.nodes[i].getJSON("/api/v1/rollouts/shop", &v)
	return v.Status
}

// measurements is how many measurements the newest analysis run took.
func (s haStatus) measurements() int {
	if len(s.AnalysisRuns) == 0 || len(s.AnalysisRuns[0].Metrics) == 0 {
		return 0
	}
	return s.AnalysisRuns[len(s.AnalysisRuns)-1].Metrics[0].Count
}

// failoverRounds is how many times each kill -9 scenario runs (the issue
// asks for 5); COALMINE_HA_ROUNDS lowers it on a developer's machine.
func failoverRounds() int {
	if n, err := strconv.Atoi(os.Getenv("COALMINE_HA_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 5
}

// TestLeaderKilledDuringPauseAnalysisAndPromote: three replicas behind
// HAProxy with wrk load through it; the leader is killed with SIGKILL
// during a timed pause, during an analysis run and during a promote.
// Each time another replica leads within 5 s, the step, the pause
// deadline, the analysis counters and the event log are intact, the
// rollout finishes, and the replicas that stay up fail no request. The
// killed replica is restarted after each kill and rejoins as a follower.
func TestLeaderKilledDuringPauseAnalysisAndPromote(t *testing.T) {
	for round := 1; round <= failoverRounds(); round++ {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) { failoverRound(t) })
	}
}

func failoverRound(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	c := newHACluster(t, 3, false, func(listen string) string {
		return fmt.Sprintf(haRollout, listen, stable.URL, canary.URL, "6s")
	})
	c.start()
	listens := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		listens[i] = s.Listen
	}
	h := startHAProxy(t, listens)
	stopLoad := wrkLoad(t, h.Addr)

	killed := map[string]bool{}
	// killLeader kills the leader, checks that another leads within 5 s
	// and that nothing of the rollout was lost, and restarts the killed
	// replica, which follows.
	killLeader := func(point string, before haStatus, evsBefore []event) (haStatus, int) {
		t.Helper()
		l := c.leader()
		if l < 0 {
			t.Fatalf("%s: no agreed leader before the kill", point)
		}
		c.kill9(l)
		killed[fmt.Sprintf("r%d", l+1)] = true
		next, took := c.waitLeader(l, 10*time.Second)
		t.Logf("%s: r%d killed, r%d leads %.2fs later", point, l+1, next+1, took.Seconds())
		if took > 5*time.Second {
			t.Errorf("%s: a new leader took %v, more than 5 s", point, took)
		}
		after := c.fullStatus(next)
		if after.Revision != before.Revision || after.StepIndex < before.StepIndex {
			t.Fatalf("%s: before the kill %+v, after %+v", point, before.status, after.status)
		}
		if before.PauseUntil != nil && after.StepIndex == before.StepIndex && (after.PauseUntil == nil || !after.PauseUntil.Equal(*before.PauseUntil)) {
			t.Fatalf("%s: pause deadline %v became %v", point, before.PauseUntil, after.PauseUntil)
		}
		if after.StepIndex == before.StepIndex && after.measurements() < before.measurements() {
			t.Fatalf("%s: the analysis had %d measurements, now %d", point, before.measurements(), after.measurements())
		}
		evsAfter := c.nodes[next].events()
		for i := range evsBefore {
			if i >= len(evsAfter) || evsBefore[i] != evsAfter[i] {
				t.Fatalf("%s: event %d lost or changed: %+v", point, i, evsBefore[i])
			}
		}
		c.nodes[l].start()
		c.waitReplicas(3, 15*time.Second)
		return after, next
	}

	leader, _ := c.waitLeader(-1, 10*time.Second)
	st := c.fullStatus(leader)
	eventually(t, 20*time.Second, "the timed pause", func() bool {
		st = c.fullStatus(leader)
		return st.StepIndex == 1 && st.PauseUntil != nil
	})
	st, leader = killLeader("during the timed pause", st, c.nodes[leader].events())
	if time.Until(*st.PauseUntil) > 0 && st.StepIndex != 1 {
		t.Fatalf("the pause ended early: %+v", st.status)
	}

	eventually(t, 30*time.Second, "the analysis to have two measurements", func() bool {
		st = c.fullStatus(leader)
		return st.StepIndex == 2 && st.measurements() >= 2
	})
	st, leader = killLeader("during the analysis", st, c.nodes[leader].events())

	eventually(t, 40*time.Second, "the pause for promote", func() bool {
		st = c.fullStatus(leader)
		return st.StepIndex == 4 && st.Weight == 50
	})
	var runs struct {
		Items []struct {
			Phase   string `json:"phase"`
			Metrics []struct {
				Count int `json:"count"`
			} `json:"metrics"`
		} `json:"items"`
	}
	c.nodes[leader].getJSON("/api/v1/rollouts/shop/analysisruns", &runs)
	if len(runs.Items) != 1 || runs.Items[0].Phase != "Successful" || len(runs.Items[0].Metrics) != 1 || runs.Items[0].Metrics[0].Count != 6 {
		t.Fatalf("the analysis run across a failover: %+v", runs.Items)
	}
	// Promote and kill the leader at once: the promote either landed
	// before the kill (the new leader goes on from it) or failed (it is
	// sent again); it never takes effect twice.
	evsBefore := c.nodes[leader].events()
	promoted := make(chan int, 1)
	go func() {
		_, code := c.nodes[leader].cli("promote", "shop")
		promoted <- code
	}()
	time.Sleep(5 * time.Millisecond)
	st, leader = killLeader("during a promote", st, evsBefore)
	if code := <-promoted; code != 0 {
		if st.StepIndex == 4 {
			c.nodes[c.follower(-1)].mustCLI("promote", "shop")
		}
	}
	eventually(t, 30*time.Second, "the rollout to complete", func() bool {
		st = c.fullStatus(leader)
		return st.Phase == "Healthy" && st.StableVersion == "v2"
	})
	n := 0
	for _, e := range c.nodes[leader].events() {
		if e.Type == "rollout-promoted" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d Promoted events", n)
	}
	stopLoad()
	var total int
	for name, s := range h.stats(t) {
		total += s.Requests
		t.Logf("haproxy %s: %+v", name, s)
	}
	// The replicas that stayed up answered everything, and HAProxy
	// retried what a killed one dropped: no client saw a 5xx.
	for name, s := range h.stats(t) {
		if s.Errors5xx != 0 {
			t.Errorf("haproxy %s: %d responses 5xx", name, s.Errors5xx)
		}
		if !killed[name] && (s.ConnErrors != 0 || s.RespErrors != 0) {
			t.Errorf("haproxy %s, never killed: %d failed connections, %d broken responses", name, s.ConnErrors, s.RespErrors)
		}
	}
	if total < 1000 {
		t.Fatalf("only %d requests went through HAProxy", total)
	}
}

// TestBadCanaryThroughAFollowerIsRolledBack: the canary's traffic reaches
// only a replica that does not lead, at 400 req/s; the leader judges the
// merged telemetry and rolls the canary back within 5 s, as one replica
// would. How soon a judge can decide depends on the errors the canary
// happens to return (one process takes 2-4 s here too), so the test runs
// three rollouts and holds the median to 5 s, and every one to 10 s.
func TestBadCanaryThroughAFollowerIsRolledBack(t *testing.T) {
	var took []time.Duration
	for i := range 3 {
		t.Run(fmt.Sprintf("rollout%d", i+1), func(t *testing.T) { took = append(took, badCanaryThroughAFollower(t)) })
	}
	if len(took) < 3 {
		t.FailNow()
	}
	slices.Sort(took)
	t.Logf("rolled back %v after the canary's traffic started (median %v)", roundAll(took), took[1].Round(100*time.Millisecond))
	if took[1] > 5*time.Second || took[2] > 10*time.Second {
		t.Errorf("rollbacks through a follower took %v: median over 5 s or one over 10 s", took)
	}
}

func badCanaryThroughAFollower(t *testing.T) time.Duration {
	stableURL := startServiceBackend(t, "v1", 0.001, 2*time.Millisecond)
	canaryURL := startServiceBackend(t, "v2", 0.10, 2*time.Millisecond)
	c := newHACluster(t, 3, false, func(listen string) string {
		return fmt.Sprintf(analysisTemplate, listen, stableURL, canaryURL, "5m", errorRateJudge)
	})
	c.start()
	leader, _ := c.waitLeader(-1, 10*time.Second)
	f := c.follower(leader)
	c.nodes[leader].waitFor("the analysis step", 10*time.Second, func(st status) bool { return st.StepIndex == 1 })

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	began := time.Now()
	load(ctx, c.nodes[f].Listen, 400)
	st := c.nodes[leader].waitFor("rollback", 15*time.Second, func(st status) bool { return st.Phase == "Degraded" })
	took := time.Since(began)
	t.Logf("rolled back %.1fs after traffic started through follower r%d: %s", took.Seconds(), f+1, st.Message)
	if !strings.Contains(st.Message, "error-rate") {
		t.Errorf("message %q does not name the metric", st.Message)
	}
	// (The backends fail some requests on purpose, so the follower's
	// routing table is read from its admin API, not by sampling.)
	c.nodes[f].waitFor("the follower to route nothing to the canary", 5*time.Second, func(st status) bool {
		return st.Phase == "Degraded" && st.ObservedWeight == 0
	})
	return took
}

// TestPausedLeaderCannotWriteAfterItsLease: the leader is stopped
// (SIGSTOP) past its lease while a pause deadline falls due; another
// replica takes over and ends the pause; when the old leader resumes
// (SIGCONT) its due work is refused, it logs the refused write and
// follows; the event log holds each step once.
func TestPausedLeaderCannotWriteAfterItsLease(t *testing.T) {
	c, leader := startShopCluster(t, 3, "3s")
	st := c.nodes[leader].waitFor("the timed pause", 20*time.Second, func(st status) bool {
		return st.StepIndex == 1 && st.PauseUntil != nil
	})
	c.nodes[leader].signal(19) // SIGSTOP
	c.paused[leader] = true
	stopped := time.Now()
	next, took := c.waitLeader(leader, 10*time.Second)
	t.Logf("r%d stopped; r%d leads %.2fs later", leader+1, next+1, took.Seconds())
	c.nodes[next].waitFor("the new leader to end the pause", 15*time.Second, func(s status) bool { return s.StepIndex >= 2 })
	if time.Until(*st.PauseUntil) > 0 {
		t.Fatalf("the pause ended before its deadline %v", st.PauseUntil)
	}
	if time.Since(stopped) < 5*time.Second {
		time.Sleep(5*time.Second - time.Since(stopped))
	}
	// Besides the pause that fell due, a command waits for the stopped
	// process (its kernel holds the request): the old leader wakes with
	// work to write, as a process paused by GC does.
	late := make(chan string, 1)
	go func() {
		out, code := c.nodes[leader].cli("pause", "shop")
		late <- fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(out))
	}()
	time.Sleep(200 * time.Millisecond)
	c.nodes[leader].signal(18) // SIGCONT
	delete(c.paused, leader)
	eventually(t, 10*time.Second, "the resumed leader to log its refused write", func() bool {
		return strings.Contains(c.nodes[leader].logs.String(), "a late write was refused")
	})
	t.Logf("the command sent to the stopped leader: %s", <-late)
	c.waitReplicas(3, 10*time.Second)
	if l := c.leader(); l != next {
		t.Fatalf("r%d leads after the old leader resumed, want r%d", l+1, next+1)
	}
	seen := map[string]int{}
	evs := c.nodes[next].events()
	for i, e := range evs {
		if e.Seq != evs[0].Seq+uint64(i) {
			t.Fatalf("event sequence has a gap at %d: %+v", i, evs)
		}
		if e.Type == "rollout-step-completed" {
			seen[e.Message]++
		}
	}
	for msg, n := range seen {
		if n > 1 {
			t.Fatalf("step completed %d times: %s", n, msg)
		}
	}
}

// TestReplicaCutOffFromTheDatabaseKeepsServing: the leader loses its link
// to PostgreSQL. It keeps proxying with the routing table it had (no
// request fails), says why in /readyz and in the status, and answers
// commands with 503; another replica leads and the rollout goes on. When
// the link returns, the cut-off replica catches up and follows. Then the
// database is lost for every replica: all keep proxying, nothing
// advances, and everything resumes when it returns.
func TestReplicaCutOffFromTheDatabaseKeepsServing(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	c := newHACluster(t, 3, true, func(listen string) string {
		return fmt.Sprintf(haRollout, listen, stable.URL, canary.URL, "1h")
	})
	c.start()
	leader, _ := c.waitLeader(-1, 10*time.Second)
	c.nodes[leader].waitFor("the pause at 20%", 20*time.Second, func(st status) bool {
		return st.StepIndex == 1 && st.ObservedWeight == 20
	})

	c.relays[leader].setCut(true)
	cut := leader
	next, took := c.waitLeaderAmong(cut, 10*time.Second)
	t.Logf("r%d cut off from the database; r%d leads %.2fs later", cut+1, next+1, took.Seconds())

	// The cut-off replica serves on, with what it had.
	if sh := share(assign(t, c.nodes[cut].Listen, 500), "v2"); sh < 14 || sh > 26 {
		t.Fatalf("the cut-off replica routes %.1f%% to the canary, want about 20%%", sh)
	}
	code, body := c.nodes[cut].readyz()
	if code != 200 || !strings.Contains(body, "store") {
		t.Fatalf("/readyz of the cut-off replica: %d %s", code, body)
	}
	// Refused, saying what to do: depending on whether the cut-off
	// replica still counts itself leader when the command comes, the
	// store is unreachable or its own lease has run out (the fence).
	out, exit := c.nodes[cut].cli("promote", "shop")
	unreachable := strings.Contains(out, "cannot reach the store") && strings.Contains(out, "send it to another replica")
	fenced := strings.Contains(out, "no longer leads") && strings.Contains(out, "send the command again")
	if exit == 0 || !(unreachable || fenced) {
		t.Fatalf("a command to the cut-off replica: exit %d\n%s", exit, out)
	}

	// The others go on.
	c.nodes[next].mustCLI("promote", "shop")
	c.nodes[next].waitFor("the analysis step", 10*time.Second, func(st status) bool { return st.StepIndex >= 2 })

	c.relays[cut].setCut(false)
	eventually(t, 10*time.Second, "the cut-off replica to catch up", func() bool {
		return c.nodes[cut].status().StepIndex == c.nodes[next].status().StepIndex
	})
	c.waitReplicas(3, 10*time.Second)

	// Now the database is gone for everyone.
	for _, r := range c.relays {
		r.setCut(true)
	}
	time.Sleep(5 * time.Second) // past the lease: nobody leads
	for i, s := range c.nodes {
		if sh := share(assign(t, s.Listen, 200), "v1"); sh < 30 {
			t.Fatalf("replica r%d without the database: %.1f%% stable", i+1, sh)
		}
		if st := c.fullStatusRaw(i); !strings.Contains(st, "unreachable") {
			t.Fatalf("replica r%d does not say the store is unreachable: %s", i+1, st)
		}
	}
	for _, r := range c.relays {
		r.setCut(false)
	}
	c.waitReplicas(3, 15*time.Second)
	l, _ := c.waitLeader(-1, 10*time.Second)
	c.nodes[l].waitFor("the rollout to go on", 30*time.Second, func(st status) bool { return st.StepIndex >= 4 })
	for i, s := range c.nodes {
		eventually(t, 5*time.Second, fmt.Sprintf("replica r%d to route 50%%", i+1), func() bool {
			sh := share(assign(t, s.Listen, 300), "v2")
			return sh > 38 && sh < 62
		})
	}

	// The database is lost again, and the canary must go: abort, sent to
	// one replica while no replica can lead, reaches every data plane.
	for _, r := range c.relays {
		r.setCut(true)
	}
	time.Sleep(4 * time.Second) // past the lease: nobody leads
	began := time.Now()
	if out, code := c.nodes[1].cli("abort", "shop"); code != 0 {
		t.Fatalf("abort without the database: exit %d\n%s", code, out)
	}
	for i, s := range c.nodes {
		eventually(t, 3*time.Second, fmt.Sprintf("replica r%d to send nobody to the canary", i+1), func() bool {
			return share(assign(t, s.Listen, 100), "v2") == 0
		})
	}
	t.Logf("abort without the database reached all 3 data planes in %v", time.Since(began).Round(time.Millisecond))
	for _, r := range c.relays {
		r.setCut(false)
	}
	l, _ = c.waitLeader(-1, 15*time.Second)
	for i, s := range c.nodes {
		s.waitFor(fmt.Sprintf("replica r%d to show the saved abort", i+1), 10*time.Second, func(st status) bool {
			return st.Phase == "Degraded" && st.Weight == 0 && st.ObservedWeight == 0
		})
	}
	time.Sleep(3 * time.Second) // the replicas hand over their aborts; none is saved twice
	aborted := 0
	for _, e := range c.nodes[l].events() {
		if e.Type == "rollout-aborted" {
			aborted++
		}
	}
	if aborted != 1 {
		t.Fatalf("%d abort events after one abort", aborted)
	}
	if code, body := c.nodes[l].readyz(); code != 200 || strings.Contains(body, "degraded") {
		t.Fatalf("/readyz after the database returned: %d %s", code, body)
	}
}

// waitLeaderAmong waits until the replicas other than cut agree on a
// leader other than cut.
func (c *haCluster) waitLeaderAmong(cut int, timeout time.Duration) (int, time.Duration) {
	c.t.Helper()
	began := time.Now()
	found := -1
	eventually(c.t, timeout, "the other replicas to elect a leader", func() bool {
		for i := range c.nodes {
			if i == cut {
				continue
			}
			for _, r := range c.replicas(i) {
				if r.Leader && !r.Gone && r.ID != fmt.Sprintf("r%d", cut+1) {
					fmt.Sscanf(r.ID, "r%d", &found)
					found--
					return true
				}
			}
		}
		return false
	})
	return found, time.Since(began)
}

// fullStatusRaw is node i's rollout view as JSON text.
func (c *haCluster) fullStatusRaw(i int) string {
	resp, err := client.Get(c.nodes[i].Admin + "/api/v1/rollouts/shop")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(100 * time.Millisecond)
	}
	return out
}
