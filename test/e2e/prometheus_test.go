package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// prometheusProcess is a real Prometheus scraping coalmine's /metrics.
type prometheusProcess struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	logs *syncBuffer
}

func startPrometheusScraping(t *testing.T, target string) *prometheusProcess {
	t.Helper()
	bin := requireTool(t, "prometheus")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	conf := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: coalmine\n    static_configs: [{targets: [%q]}]\n", target)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &prometheusProcess{URL: "http://" + addr, done: make(chan struct{}), logs: &syncBuffer{}}
	p.cmd = exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	eventually(t, 20*time.Second, "prometheus to be ready", func() bool {
		resp, err := http.Get(p.URL + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func (p *prometheusProcess) stop() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

const promRollout = `apiVersion: coalmine.dev/v1alpha1
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
        - setWeight: 50
        - analysis: {templates: [{templateName: canary-success}], args: [{name: service, value: shop}]}
        - setWeight: 100
---
apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: canary-success}
spec:
  args: [{name: service}]
  metrics:
    - name: success-rate
      interval: 2s
      count: 2
      consecutiveErrorLimit: 1
      successCondition: len(result) > 0 && result[0] >= 0.99
      provider:
        prometheus:
          address: %s
          timeout: 2s
          query: |
            sum(coalmine_requests_total{rollout="{{args.service}}",role="canary",code!~"5.."})
            / sum(coalmine_requests_total{rollout="{{args.service}}",role="canary"})
`

// A rollout whose analysis asks a real Prometheus, which scrapes
// coalmine's own /metrics, completes.
func TestPrometheusAnalysisCompletes(t *testing.T) {
	stableURL, canaryURL := startServiceBackend(t, "v1", 0, time.Millisecond), startServiceBackend(t, "v2", 0, time.Millisecond)
	s := newAnalysisServer(t, stableURL, canaryURL, "5m", "")
	prom := startPrometheusScraping(t, strings.TrimPrefix(s.Admin, "http://"))
	s.writeConfig(fmt.Sprintf(promRollout, s.Listen, stableURL, canaryURL, prom.URL))
	s.start()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	load(ctx, s.Listen, 200)
	st := s.waitFor("completion through Prometheus", 60*time.Second, func(st status) bool { return st.Phase == "Healthy" || st.Phase == "Degraded" })
	if st.Phase != "Healthy" {
		t.Fatalf("analysis against Prometheus: %+v\nprometheus:\n%s", st, prom.logs.String())
	}
}

// The same with Prometheus stopped ends in Error after the consecutive
// error limit, with a message that says what failed.
func TestPrometheusDownEndsInError(t *testing.T) {
	stableURL, canaryURL := startServiceBackend(t, "v1", 0, time.Millisecond), startServiceBackend(t, "v2", 0, time.Millisecond)
	s := newAnalysisServer(t, stableURL, canaryURL, "5m", "")
	prom := startPrometheusScraping(t, strings.TrimPrefix(s.Admin, "http://"))
	prom.stop()
	s.writeConfig(fmt.Sprintf(promRollout, s.Listen, stableURL, canaryURL, prom.URL))
	s.start()
	st := s.waitFor("Error after the limit", 60*time.Second, func(st status) bool { return st.Phase == "Degraded" || st.Phase == "Healthy" })
	if st.Phase != "Degraded" || !strings.Contains(st.Message, "Error") || !strings.Contains(st.Message, strings.TrimPrefix(prom.URL, "http://")) {
		t.Fatalf("with Prometheus down: %+v", st)
	}
	t.Logf("message: %s", st.Message)
	var ev []event
	for _, e := range s.events() {
		if e.Type == "analysis-error" {
			ev = append(ev, e)
		}
	}
	if len(ev) != 1 {
		t.Errorf("want one analysis-error event, got %+v", ev)
	}
}
