package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stepsTemplate is the rollout of issue 3's acceptance story, with a
// webhook that receives every event.
const stepsTemplate = `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  healthCheck: {interval: 200ms}
  progressDeadline: 30s
  trafficRouting:
    assignment: {userHeader: X-User-ID}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: {duration: %s}
        - setWeight: 50
        - pause: {}
        - setWeight: 100
  notifications:
    - on: ["*"]
      webhook: {url: %s}
`

// status is the part of a rollout's status the scenarios check.
type status struct {
	Phase          string     `json:"phase"`
	Revision       int64      `json:"revision"`
	StepIndex      int        `json:"stepIndex"`
	PauseReason    string     `json:"pauseReason"`
	Weight         float64    `json:"weight"`
	ObservedWeight float64    `json:"observedWeight"`
	StableVersion  string     `json:"stableVersion"`
	CanaryVersion  string     `json:"canaryVersion"`
	PauseUntil     *time.Time `json:"pauseUntil"`
	LastEventSeq   uint64     `json:"lastEventSeq"`
	Message        string     `json:"message"`
}

type event struct {
	Seq      uint64 `json:"seq"`
	Type     string `json:"type"`
	Revision int64  `json:"revision"`
	Message  string `json:"message"`
}

func (s *server) status() status {
	s.t.Helper()
	var v struct {
		Status status `json:"status"`
	}
	s.getJSON("/api/v1/rollouts/shop", &v)
	return v.Status
}

func (s *server) events() []event {
	s.t.Helper()
	var v struct {
		Items []event `json:"items"`
	}
	s.getJSON("/api/v1/rollouts/shop/events?limit=1000", &v)
	return v.Items
}

func (s *server) getJSON(path string, v any) {
	s.t.Helper()
	resp, err := client.Get(s.Admin + path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		s.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		s.t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
}

// waitFor polls the status until cond holds.
func (s *server) waitFor(what string, timeout time.Duration, cond func(status) bool) status {
	s.t.Helper()
	var st status
	eventually(s.t, timeout, what, func() bool {
		st = s.status()
		return cond(st)
	})
	return st
}

func (s *server) mustCLI(args ...string) string {
	s.t.Helper()
	out, code := s.cli(args...)
	if code != 0 {
		s.t.Fatalf("coalmine %s: exit %d: %s", strings.Join(args, " "), code, out)
	}
	return out
}

// receiver is a webhook endpoint that records the events it gets.
type receiver struct {
	mu   sync.Mutex
	seqs []uint64
	srv  *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var ev event
		if err := json.NewDecoder(req.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		r.mu.Lock()
		r.seqs = append(r.seqs, ev.Seq)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seqs)
}

func newStepsServer(t *testing.T, pause string, rcv *receiver, stable, canary *backend) *server {
	t.Helper()
	s := newServer(t, stable, canary)
	s.writeConfig(fmt.Sprintf(stepsTemplate, s.Listen, stable.URL, canary.URL, pause, rcv.srv.URL))
	return s
}

// The acceptance story of issue 3, through the binary and the CLI.
func TestRolloutWalksStepsAndObeysCommands(t *testing.T) {
	stable, canary, next := startBackend(t, "v1"), startBackend(t, "v2"), startBackend(t, "v3")
	rcv := newReceiver(t)
	s := newStepsServer(t, "2s", rcv, stable, canary)
	s.start()

	st := s.waitFor("Paused at step 3 with 50%", 20*time.Second, func(st status) bool {
		return st.Phase == "Paused" && st.StepIndex == 3 && st.PauseReason == "PauseStep"
	})
	if st.Weight != 50 || st.ObservedWeight != 50 {
		t.Fatalf("at step 3: weight %v observed %v, want 50", st.Weight, st.ObservedWeight)
	}
	if sh := share(assign(t, s.Listen, 2000), "v2"); sh < 46 || sh > 54 {
		t.Fatalf("canary share %.1f%% at weight 50", sh)
	}

	s.mustCLI("promote", "shop")
	st = s.waitFor("Healthy after promote", 10*time.Second, func(st status) bool { return st.Phase == "Healthy" })
	if st.StableVersion != "v2" || st.CanaryVersion != "" {
		t.Fatalf("after completion: stable %q canary %q", st.StableVersion, st.CanaryVersion)
	}
	if sh := share(assign(t, s.Listen, 500), "v2"); sh != 100 {
		t.Fatalf("the new stable serves %.1f%%, want 100%%", sh)
	}
	if out, code := s.cli("status", "shop", "--timeout", "5s"); code != 0 {
		t.Fatalf("status of a completed rollout: exit %d: %s", code, out)
	}

	s.mustCLI("set", "canary", "shop", "v3", "--endpoint", next.URL)
	st = s.waitFor("revision 2 at step 1", 10*time.Second, func(st status) bool {
		return st.Revision == 2 && st.CanaryVersion == "v3" && st.StepIndex >= 1
	})
	s.mustCLI("abort", "shop")
	st = s.status()
	if st.Phase != "Degraded" || st.Weight != 0 || st.ObservedWeight != 0 {
		t.Fatalf("after abort: %+v", st)
	}
	if sh := share(assign(t, s.Listen, 500), "v2"); sh != 100 {
		t.Fatalf("after abort stable v2 serves %.1f%%, want 100%%", sh)
	}
	if out, code := s.cli("status", "shop", "--timeout", "5s"); code != 1 {
		t.Fatalf("status of an aborted rollout: exit %d, want 1: %s", code, out)
	}
	if out, code := s.cli("promote", "shop"); code == 0 || !strings.Contains(out, "retry") {
		t.Fatalf("promote on an aborted rollout: exit %d: %s", code, out)
	}

	s.mustCLI("retry", "shop")
	s.waitFor("retried revision progressing", 10*time.Second, func(st status) bool {
		return st.Revision == 2 && (st.Phase == "Progressing" || st.Phase == "Paused") && st.Weight > 0
	})
	s.mustCLI("promote", "shop", "--full")
	st = s.status()
	if st.Phase != "Healthy" || st.StableVersion != "v3" {
		t.Fatalf("after promote --full: %+v", st)
	}
	if sh := share(assign(t, s.Listen, 500), "v3"); sh != 100 {
		t.Fatalf("after promote --full v3 serves %.1f%%, want 100%%", sh)
	}

	// Every event reached the webhook exactly once, in order.
	evs := s.events()
	eventually(t, 10*time.Second, "every event delivered", func() bool { return len(rcv.received()) >= len(evs) })
	checkSequence(t, evs, rcv.received())
}

// checkSequence checks events numbered 1..n without gaps, and deliveries
// in order without duplicates.
func checkSequence(t *testing.T, evs []event, delivered []uint64) {
	t.Helper()
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: %+v", i, e.Seq, evs)
		}
	}
	for i := 1; i < len(delivered); i++ {
		if delivered[i] <= delivered[i-1] {
			t.Fatalf("webhook deliveries out of order or duplicated: %v", delivered)
		}
	}
}

// kill -9 at many points of a rollout: after each restart the rollout is at
// the same step with the same weight and pause deadline, its events are
// intact, and no notification is delivered twice.
func TestKill9AtManyPointsResumesWhereItWas(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	rcv := newReceiver(t)
	s := newStepsServer(t, "1h", rcv, stable, canary)

	restart := func(point string, settled func(status) bool) {
		t.Helper()
		before := s.waitFor(point, 20*time.Second, settled)
		evsBefore := s.events()
		// Let the webhook catch up, and its cursor reach the disk (the
		// status shows a delivery only after the cursor is saved), so that
		// "no duplicates" is meaningful: a kill between a receiver's 2xx and
		// that fsync is the one window where an event is sent again.
		s.waitDelivered(10 * time.Second)
		s.signal(syscall.SIGKILL)
		s.waitExit(10 * time.Second)
		s.start()
		after := s.waitFor(point+" after restart", 10*time.Second, func(st status) bool { return st.ObservedWeight == st.Weight || st.CanaryVersion == "" })
		if before.StepIndex != after.StepIndex || before.Weight != after.Weight || before.Revision != after.Revision ||
			before.Phase != after.Phase || before.StableVersion != after.StableVersion {
			t.Fatalf("%s: before kill %+v, after restart %+v", point, before, after)
		}
		if (before.PauseUntil == nil) != (after.PauseUntil == nil) || (before.PauseUntil != nil && !before.PauseUntil.Equal(*after.PauseUntil)) {
			t.Fatalf("%s: pause deadline %v became %v", point, before.PauseUntil, after.PauseUntil)
		}
		evsAfter := s.events()
		if len(evsAfter) < len(evsBefore) {
			t.Fatalf("%s: %d events before, %d after", point, len(evsBefore), len(evsAfter))
		}
		for i := range evsBefore {
			if evsBefore[i] != evsAfter[i] {
				t.Fatalf("%s: event %d changed: %+v → %+v", point, i, evsBefore[i], evsAfter[i])
			}
		}
		checkSequence(t, evsAfter, rcv.received())
	}

	s.start()
	restart("timed pause at step 1", func(st status) bool { return st.StepIndex == 1 && st.PauseUntil != nil })
	restart("timed pause again", func(st status) bool { return st.StepIndex == 1 })
	s.mustCLI("promote", "shop")
	restart("indefinite pause at step 3", func(st status) bool { return st.StepIndex == 3 && st.Weight == 50 })
	s.mustCLI("pause", "shop")
	restart("manual pause", func(st status) bool { return st.PauseReason == "Manual" })
	s.mustCLI("set", "weight", "shop", "7.5")
	restart("manual weight", func(st status) bool { return st.Weight == 7.5 && st.ObservedWeight == 7.5 })
	s.mustCLI("abort", "shop")
	restart("aborted", func(st status) bool { return st.Phase == "Degraded" })
	s.mustCLI("retry", "shop")
	restart("retried, timed pause", func(st status) bool { return st.StepIndex == 1 && st.Phase == "Paused" })
	s.mustCLI("promote", "shop", "--full")
	restart("completed", func(st status) bool { return st.Phase == "Healthy" })

	// Kill while commands are in flight: whatever happened is either
	// wholly recorded or not at all, and the data plane routes with what
	// the store holds.
	s.mustCLI("set", "canary", "shop", "v1-again", "--endpoint", stable.URL)
	for i := range 5 {
		cmd := exec.Command(binary, "set", "weight", "shop", fmt.Sprint(10+i), "--server", s.Admin)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i*7) * time.Millisecond)
		s.signal(syscall.SIGKILL)
		s.waitExit(10 * time.Second)
		_ = cmd.Wait() // it may have failed: the server died under it
		s.start()
		st := s.waitFor("data plane in line with the store", 10*time.Second, func(st status) bool { return st.ObservedWeight == st.Weight })
		// A kill in the middle of a delivery may send that one event again
		// (the receiver's 2xx came before the cursor's fsync); that is
		// checked below, after the loop.
		checkSequence(t, s.events(), nil)
		if st.Revision != 2 {
			t.Fatalf("revision %d after kill during commands, want 2", st.Revision)
		}
	}
	s.waitDelivered(10 * time.Second)
	got, seen, dups := rcv.received(), map[uint64]bool{}, 0
	for _, seq := range got {
		if seen[seq] {
			dups++
		}
		seen[seq] = true
	}
	for _, e := range s.events() {
		if !seen[e.Seq] {
			t.Errorf("event %d (%s) was never delivered", e.Seq, e.Type)
		}
	}
	if dups > 5 {
		t.Errorf("%d events delivered twice over 5 kills during commands; at most one per kill is possible", dups)
	}
}

// `coalmine apply` changes a running rollout with the same validation as
// lint; a restart with the unchanged -f file keeps the applied change; undo
// goes back fast; delivery state shows in the status.
func TestApplyUndoAndDeliveryState(t *testing.T) {
	stable, canary, next := startBackend(t, "v1"), startBackend(t, "v2"), startBackend(t, "v3")
	rcv := newReceiver(t)
	s := newStepsServer(t, "1h", rcv, stable, canary)
	s.start()
	s.waitFor("timed pause", 20*time.Second, func(st status) bool { return st.StepIndex == 1 })
	s.mustCLI("promote", "shop", "--full")

	// A document with a typo is refused before anything is sent.
	orig, err := os.ReadFile(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	applied := filepath.Join(t.TempDir(), "shop.yaml")
	bad := strings.Replace(string(orig), "progressDeadline: 30s", "progresDeadline: 30s", 1)
	if err := os.WriteFile(applied, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := s.cli("apply", "-f", applied); code != 2 || !strings.Contains(out, "shop.yaml:9:3") || !strings.Contains(out, "progressDeadline") {
		t.Fatalf("apply of a typo: exit %d: %s", code, out)
	}
	// A new canary version starts revision 2.
	good := strings.Replace(strings.Replace(string(orig), "version: v2, endpoints: ["+canary.URL, "version: v3, endpoints: ["+next.URL, 1),
		"version: v1, endpoints: ["+stable.URL, "version: v2, endpoints: ["+canary.URL, 1)
	if err := os.WriteFile(applied, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustCLI("apply", "-f", applied)
	s.waitFor("revision 2 rolling out v3", 10*time.Second, func(st status) bool {
		return st.Revision == 2 && st.CanaryVersion == "v3" && st.StableVersion == "v2" && st.StepIndex == 1
	})

	// The -f file still names v2 as canary; it did not change, so a restart
	// keeps what apply did. The kill waits for the webhook's saved cursor:
	// a kill between a receiver's 2xx and that save may resend one event
	// (documented), and this test checks deliveries without duplicates.
	s.waitDelivered(10 * time.Second)
	s.signal(syscall.SIGKILL)
	s.waitExit(10 * time.Second)
	s.start()
	if st := s.status(); st.Revision != 2 || st.CanaryVersion != "v3" {
		t.Fatalf("after restart with the unchanged file: %+v", st)
	}

	// undo: as in Argo it goes to the previous revision, v2, the stable
	// v3 runs against, so v3 ends at once.
	s.mustCLI("undo", "shop")
	st := s.status()
	if st.Phase != "Healthy" || st.StableVersion != "v2" || st.Revision != 3 {
		t.Fatalf("after undo: %+v", st)
	}
	if sh := share(assign(t, s.Listen, 300), "v2"); sh != 100 {
		t.Fatalf("after undo v2 serves %.1f%%", sh)
	}

	// Every event is delivered, and the status says so.
	var v struct {
		Status struct {
			LastEventSeq  uint64 `json:"lastEventSeq"`
			Notifications []struct {
				Kind         string `json:"kind"`
				DeliveredSeq uint64 `json:"deliveredSeq"`
				Pending      int    `json:"pending"`
			} `json:"notifications"`
		} `json:"status"`
	}
	eventually(t, 10*time.Second, "the webhook to catch up in the status", func() bool {
		s.getJSON("/api/v1/rollouts/shop", &v)
		n := v.Status.Notifications
		return len(n) == 1 && n[0].Kind == "webhook" && n[0].DeliveredSeq == v.Status.LastEventSeq && n[0].Pending == 0
	})
	checkSequence(t, s.events(), rcv.received())
}

// waitDelivered waits until the webhook channel's saved cursor reaches the
// newest event.
func (s *server) waitDelivered(timeout time.Duration) {
	s.t.Helper()
	eventually(s.t, timeout, "every event delivered and its cursor saved", func() bool {
		var v struct {
			Status struct {
				LastEventSeq  uint64 `json:"lastEventSeq"`
				Notifications []struct {
					DeliveredSeq uint64 `json:"deliveredSeq"`
				} `json:"notifications"`
			} `json:"status"`
		}
		s.getJSON("/api/v1/rollouts/shop", &v)
		n := v.Status.Notifications
		return len(n) == 1 && n[0].DeliveredSeq == v.Status.LastEventSeq
	})
}
