package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestWeightPropagation measures how long a weight change takes to reach
// the routing tables of three replicas: from sending `set weight` to the
// leader until every replica's data plane routes with the new weight (each
// replica's admin API reports the weight its own proxy routes with, polled
// in a tight loop). It logs the median, p99 and maximum; the figures in
// docs/benchmarks.md come from
//
//	COALMINE_HA_PROPAGATION_CHANGES=1000 go test ./test/e2e -run TestWeightPropagation -v
//
// The only bound it checks is far above the figures (1 s): a change must
// travel by notification, not wait for the 2 s re-read.
func TestWeightPropagation(t *testing.T) {
	changes := 100
	if n, err := strconv.Atoi(os.Getenv("COALMINE_HA_PROPAGATION_CHANGES")); err == nil && n > 0 {
		changes = n
	}
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	c := newHACluster(t, 3, false, func(listen string) string {
		return fmt.Sprintf(haRollout, listen, stable.URL, canary.URL, "1h")
	})
	c.start()
	leader, _ := c.waitLeader(-1, 10*time.Second)
	c.nodes[leader].waitFor("the timed pause", 20*time.Second, func(st status) bool { return st.StepIndex == 1 })
	observed := func(i int) float64 {
		resp, err := client.Get(c.nodes[i].Admin + "/api/v1/rollouts/shop")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var v struct {
			Status struct {
				Replicas []struct {
					Replica        string  `json:"replica"`
					ObservedWeight float64 `json:"observedWeight"`
				} `json:"replicas"`
			} `json:"status"`
		}
		if json.NewDecoder(resp.Body).Decode(&v) != nil || len(v.Status.Replicas) == 0 {
			return -1
		}
		return v.Status.Replicas[0].ObservedWeight // this replica's own data plane
	}
	var took []time.Duration
	for n := range changes {
		w := float64(10 + n%2*10) // 10, 20, 10, ... (never the 20 set now)
		body, _ := json.Marshal(map[string]float64{"percent": w})
		began := time.Now()
		req, _ := http.NewRequest(http.MethodPut, c.nodes[leader].Admin+"/api/v1/rollouts/shop/weight", bytes.NewReader(body))
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("set weight: %v %v", err, resp)
		}
		resp.Body.Close()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var last time.Time
		for i := range c.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for observed(i) != w {
					if time.Since(began) > 10*time.Second {
						return
					}
				}
				mu.Lock()
				if now := time.Now(); now.After(last) {
					last = now
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		took = append(took, last.Sub(began))
	}
	slices.Sort(took)
	q := func(p float64) time.Duration { return took[int(p*float64(len(took)-1))] }
	t.Logf("a weight change reached all 3 replicas' routing tables: p50 %v, p99 %v, max %v over %d changes",
		q(0.5).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), took[len(took)-1].Round(10*time.Microsecond), len(took))
	if took[len(took)-1] > time.Second {
		t.Fatalf("a weight change took %v to reach every replica: it waited for the periodic re-read", took[len(took)-1])
	}
}
