package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Failure cases of several replicas, each one a way a cluster was seen to
// lose its leader, its notifications or an abort.

// TestNotificationsAfterLeadingTwice: a replica that leads, loses the
// lease (paused past it), follows and leads again still sends
// notifications: each leadership starts a notifier from the stored
// cursors, as a process start does.
func TestNotificationsAfterLeadingTwice(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	rcv := newReceiver(t)
	c := newHACluster(t, 2, false, func(listen string) string {
		return fmt.Sprintf(haRollout, listen, stable.URL, canary.URL, "1h") + fmt.Sprintf(`---
apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: other}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  strategy:
    canary:
      steps:
        - setWeight: 10
        - pause: {}
  notifications:
    - on: ["*"]
      webhook: {url: %s}
`, freeAddr(t), stable.URL, canary.URL, rcv.srv.URL)
	})
	for _, n := range c.nodes {
		n.extra = append(n.extra, "--listen-override", "other="+freeAddr(t))
	}
	c.start()
	first, _ := c.waitLeader(-1, 10*time.Second)
	second := 1 - first
	eventually(t, 10*time.Second, "the first notifications", func() bool { return len(rcv.received()) > 0 })
	// The first leader loses the lease (paused), the other leads, the
	// first resumes and follows.
	c.nodes[first].signal(19)
	c.paused[first] = true
	time.Sleep(5 * time.Second)
	c.nodes[first].signal(18)
	delete(c.paused, first)
	c.waitReplicas(2, 15*time.Second)
	if l := c.leader(); l != second {
		t.Fatalf("r%d leads after the pause, want r%d", l+1, second+1)
	}
	// The other dies: the first leads a second time.
	c.kill9(second)
	c.waitLeader(second, 15*time.Second)
	before := len(rcv.received())
	c.nodes[first].mustCLI("promote", "other")
	eventually(t, 10*time.Second, "a notification of the promotion from the replica leading again", func() bool {
		return len(rcv.received()) > before
	})
	checkSequence(t, c.nodes[first].eventsOf("other"), rcv.received())
}

// eventsOf lists a rollout's events on this server.
func (s *server) eventsOf(name string) []event {
	s.t.Helper()
	var v struct {
		Items []event `json:"items"`
	}
	s.getJSON("/api/v1/rollouts/"+name+"/events?limit=1000", &v)
	return v.Items
}

// TestReadyzStaysUpDuringAnElection: the leader stops (SIGTERM, as in a
// rolling upgrade); while the others elect a new one, every surviving
// replica keeps answering /readyz 200, saying what is degraded, so a load
// balancer never takes them all out at once.
func TestReadyzStaysUpDuringAnElection(t *testing.T) {
	c, leader := startShopCluster(t, 3, "1h")
	c.nodes[leader].signal(15)
	c.nodes[leader].waitExit(10 * time.Second)
	c.paused[leader] = true
	began := time.Now()
	sawDegraded := false
	for time.Since(began) < 6*time.Second {
		for i := range c.nodes {
			if i == leader {
				continue
			}
			code, body := c.nodes[i].readyz()
			if code != 200 {
				t.Fatalf("r%d: /readyz %d during the election: %s", i+1, code, body)
			}
			sawDegraded = sawDegraded || strings.Contains(body, "degraded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sawDegraded {
		t.Error("/readyz never said that no replica led during the election")
	}
	c.waitLeader(leader, 5*time.Second)
}

// TestAbortThroughAFollowerWhileTheLeaderIsFrozen: the leader is frozen
// (SIGSTOP; its kernel still accepts connections), and an abort reaches a
// follower: after a second without the leader's answer, the abort goes to
// every replica's data plane instead of hanging, and the new leader saves
// it.
func TestAbortThroughAFollowerWhileTheLeaderIsFrozen(t *testing.T) {
	c, leader := startShopCluster(t, 3, "1h")
	f := c.follower(leader)
	c.nodes[f].waitFor("the pause at 20%", 20*time.Second, func(st status) bool { return st.StepIndex == 1 && st.ObservedWeight == 20 })
	c.nodes[leader].signal(19)
	c.paused[leader] = true
	t.Cleanup(func() { c.nodes[leader].signal(18) })
	began := time.Now()
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Post(c.nodes[f].Admin+"/api/v1/rollouts/shop/abort", "application/json", strings.NewReader("{}"))
	took := time.Since(began)
	if err != nil {
		t.Fatalf("abort through r%d: %v after %v", f+1, err, took)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || took > 5*time.Second {
		t.Fatalf("abort through r%d: %d after %v", f+1, resp.StatusCode, took)
	}
	for i := range c.nodes {
		if i == leader {
			continue
		}
		if sh := share(assign(t, c.nodes[i].Listen, 200), "v2"); sh != 0 {
			t.Fatalf("r%d routes %.0f%% to the canary after the abort", i+1, sh)
		}
	}
	next, _ := c.waitLeaderAmong(leader, 10*time.Second)
	c.nodes[next].waitFor("the new leader to save the abort", 10*time.Second, func(st status) bool { return st.Phase == "Degraded" })
}

// TestOneDamagedRolloutDoesNotStopATakeover: a stored rollout that cannot
// be decoded is skipped (and logged) by the replica that takes over, which
// leads and carries out commands for the others.
func TestOneDamagedRolloutDoesNotStopATakeover(t *testing.T) {
	c, leader := startShopCluster(t, 2, "1h")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, coll := range []string{"rollouts", "rollout-state"} {
		if _, err := conn.Exec(ctx, "INSERT INTO coalmine_records (collection, key, version, data) VALUES ($1, 'damaged', 1, 'not json')", coll); err != nil {
			t.Fatal(err)
		}
	}
	c.kill9(leader)
	other, _ := c.waitLeader(leader, 10*time.Second)
	if out, code := c.nodes[other].cli("promote", "shop"); code != 0 {
		t.Fatalf("promote after the takeover: exit %d %s", code, out)
	}
	if code, body := c.nodes[other].readyz(); code != 200 {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if !strings.Contains(c.nodes[other].logs.String(), `rollout=damaged`) {
		t.Error("the damaged rollout is not named in the log")
	}
}
