package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// loadBalancer is HAProxy or NGINX as the router tests run them.
type loadBalancer struct {
	name string
	addr string
	// weight is the canary weight in basis points the load balancer
	// routes with, read from the load balancer itself.
	weight func() int
}

// routerUnderTest starts coalmine driving HAProxy or NGINX for a rollout
// that pauses at 10%.
func routerUnderTest(t *testing.T, kind string) (*server, loadBalancer) {
	t.Helper()
	syslog := freeUDP(t)
	steps := `        - setWeight: 10
        - pause: {}
`
	stable, canary := startBackend(t, "v1").URL, startBackend(t, "v2").URL
	switch kind {
	case "haproxy":
		h := startRoutedHAProxy(t, syslog)
		s := newHAProxyServer(t, h, syslog, stable, canary, steps, errorRateJudge)
		s.start()
		return s, loadBalancer{kind, h.Addr, func() int {
			var w int
			fmt.Sscan(h.mapWeight(), &w)
			return w
		}}
	default:
		n := newRoutedNGINX(t, syslog)
		s := startNGINXRollout(t, n, syslog, stable, canary, steps, errorRateJudge)
		return s, loadBalancer{kind, n.Addr, n.weight}
	}
}

// Changing the weight of HAProxy or NGINX through coalmine while wrk runs
// at full load fails no request (neither reloads for it), and an abort
// sends everyone to stable by the time the command returns.
func TestRouterWeightChangesUnderWrkFailNothingAndAbortIsImmediate(t *testing.T) {
	for _, kind := range []string{"haproxy", "nginx"} {
		t.Run(kind, func(t *testing.T) {
			wrk := requireTool(t, "wrk")
			s, lb := routerUnderTest(t, kind)
			s.waitFor("the pause at 10%", 20*time.Second, func(st status) bool { return st.StepIndex == 1 && st.ObservedWeight == 10 })

			cmd := exec.Command(wrk, "-t2", "-c64", "-d8s", "-H", "X-User-ID: u1", "http://"+lb.addr+"/")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			changes := 0
			weights := []string{"0", "5", "50", "100", "0.01", "25"}
		loop:
			for i := 0; ; i++ {
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("wrk: %v\n%s", err, out.String())
					}
					break loop
				default:
				}
				body := fmt.Sprintf(`{"percent": %s}`, weights[i%len(weights)])
				req, _ := http.NewRequest(http.MethodPut, s.Admin+"/api/v1/rollouts/shop/weight", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("PUT weight: %d", resp.StatusCode)
				}
				changes++
				time.Sleep(20 * time.Millisecond)
			}
			report := out.String()
			t.Logf("%s: %d weight changes during:\n%s", kind, changes, report)
			if changes < 5 {
				t.Fatalf("only %d weight changes happened during the load", changes)
			}
			if m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(report); m == nil || m[1] == "0" {
				t.Fatalf("wrk sent no requests:\n%s", report)
			}
			if strings.Contains(report, "Non-2xx") {
				t.Fatalf("requests failed while the weight changed:\n%s", report)
			}
			// wrk does not retry a request on a keep-alive connection
			// that closes under it, as an NGINX reload would close the
			// old workers' idle ones: neither HAProxy nor NGINX reloads
			// for a weight change, so wrk must count no socket error.
			if strings.Contains(report, "Socket errors") {
				t.Fatalf("requests failed while the weight changed:\n%s", report)
			}

			// Abort at 50%: the command returns once the load balancer
			// routes with weight 0, read back from it.
			s.mustCLI("set", "weight", "shop", "50")
			began := time.Now()
			resp, err := client.Post(s.Admin+"/api/v1/rollouts/shop/abort", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			took := time.Since(began)
			if resp.StatusCode != 200 {
				t.Fatalf("abort: %d", resp.StatusCode)
			}
			if w := lb.weight(); w != 0 {
				t.Fatalf("%s routes with weight %d after abort returned", kind, w)
			}
			for range 100 {
				if v := lbVersionFor(t, lb.addr); v != "v1" {
					t.Fatalf("after the abort returned %s served %s", kind, v)
				}
			}
			t.Logf("%s: abort applied in %v (the API call returns once the weight is read back from the load balancer)", kind, took)
		})
	}
}
