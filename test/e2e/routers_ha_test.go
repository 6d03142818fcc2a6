package e2e

import (
	"fmt"
	"testing"
	"time"
)

// Two replicas on one database drive one HAProxy: the leader alone moves
// its weights and its read-back completes the steps (the follower routes
// nothing of it); when the leader is killed the new one takes HAProxy
// over where it was and finishes the rollout.
func TestReplicasDriveOneHAProxy(t *testing.T) {
	syslog := freeUDP(t)
	h := startRoutedHAProxy(t, syslog)
	stable, canary := startBackend(t, "v1").URL, startBackend(t, "v2").URL
	steps := `        - setWeight: 10
        - pause: {}
        - setWeight: 50
        - pause: {}
`
	c := newHACluster(t, 2, false, func(string) string {
		return fmt.Sprintf(haproxyRolloutTemplate, stable, canary, "5m", h.Sock, h.Map, steps, errorRateJudge)
	})
	c.start()
	leader, _ := c.waitLeader(-1, 10*time.Second)
	follower := c.follower(leader)

	c.nodes[leader].waitFor("the first pause at 10% read back from HAProxy", 15*time.Second, func(st status) bool {
		return st.StepIndex == 1 && st.ObservedWeight == 10
	})
	if w := h.mapWeight(); w != "1000" {
		t.Fatalf("HAProxy holds weight %q, want 1000", w)
	}
	// A command through the follower reaches the leader, which moves HAProxy.
	c.nodes[follower].mustCLI("promote", "shop")
	c.nodes[leader].waitFor("the second pause at 50%", 15*time.Second, func(st status) bool {
		return st.StepIndex == 3 && st.ObservedWeight == 50
	})
	if w := h.mapWeight(); w != "5000" {
		t.Fatalf("HAProxy holds weight %q, want 5000", w)
	}

	c.kill9(leader)
	next, took := c.waitLeader(leader, 15*time.Second)
	t.Logf("replica r%d leads %v after the leader was killed", next+1, took)
	c.nodes[next].mustCLI("promote", "shop")
	st := c.nodes[next].waitFor("completion under the new leader", 20*time.Second, func(st status) bool { return st.Phase == "Healthy" })
	if st.StableVersion != "v2" {
		t.Fatalf("completed with stable %q", st.StableVersion)
	}
	eventually(t, 5*time.Second, "HAProxy to send everyone to v2 from the stable backend", func() bool {
		return h.mapWeight() == "0" && lbVersionFor(t, h.Addr) == "v2"
	})
}
