// Package integration runs coalmine's components against real external
// servers on loopback. A test whose server binary is missing skips on a
// developer's machine and fails in CI (COALMINE_REQUIRE_INTEGRATION=1).
package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/coalmine-dev/coalmine/internal/provider"
	promprovider "github.com/coalmine-dev/coalmine/internal/provider/prometheus"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// TestPrometheusProvider scrapes coalmine's own telemetry exposition with a
// real Prometheus server and queries it through the prometheus provider
// (SPEC §5.3: "must work against a real Prometheus server, including one
// scraping coalmine's own /metrics").
func TestPrometheusProvider(t *testing.T) {
	bin := requireTool(t, "prometheus")

	// The target: the telemetry collector, exactly as the admin server
	// exposes it, fed through the proxy's recording API.
	reg := telemetry.NewRegistry(telemetry.Options{})
	rs := reg.Rollout("shop")
	canary, stable := rs.Version(spec.RoleCanary, "v2"), rs.Version(spec.RoleStable, "v1")
	for range 40 {
		canary.Observe(200, 10*time.Millisecond)
	}
	canary.Observe(500, 30*time.Millisecond)
	canary.Observe(503, 30*time.Millisecond)
	for range 100 {
		stable.Observe(200, 20*time.Millisecond)
	}
	preg := prometheus.NewRegistry()
	preg.MustRegister(reg.Collector())
	target := httptest.NewServer(promhttp.HandlerFor(preg, promhttp.HandlerOpts{}))
	t.Cleanup(target.Close)

	prom := startPrometheus(t, bin, strings.TrimPrefix(target.URL, "http://"))
	p := promprovider.New(promprovider.Config{})
	ctx := context.Background()
	q := func(promql string) provider.Query {
		timeout := spec.Duration(5 * time.Second)
		return provider.Query{Rollout: "shop", Metric: "m", Spec: spec.Provider{Prometheus: &spec.PrometheusProvider{
			Address: prom.url, Query: promql, Timeout: &timeout,
			Headers: map[string]string{"X-Scope-OrgID": "coalmine-test"},
		}}}
	}

	// Until the first scrape lands the query is an empty vector: no data.
	total := q(`sum(coalmine_requests_total{rollout="shop",source="live"})`)
	var res provider.Result
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		res, err = p.Query(ctx, total)
		if err == nil {
			break
		}
		if !errors.Is(err, provider.ErrNoData) || time.Now().After(deadline) {
			t.Fatalf("waiting for the first scrape: %v\nprometheus output:\n%s", err, prom.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := res.Value.([]any); len(got) != 1 || got[0] != 142.0 {
		t.Fatalf("%s = %v, want [142]", total.Spec.Prometheus.Query, got)
	}

	tests := []struct {
		query string
		check func([]any) bool
		want  string
	}{
		{`sort_desc(sum by (role) (coalmine_requests_total{rollout="shop"}))`,
			func(v []any) bool { return len(v) == 2 && v[0] == 100.0 && v[1] == 42.0 }, "[100 42]"},
		{`sum(coalmine_requests_total{rollout="shop",role="canary",code=~"5.."}) / sum(coalmine_requests_total{rollout="shop",role="canary"})`,
			func(v []any) bool { return len(v) == 1 && math.Abs(v[0].(float64)-2.0/42) < 1e-12 }, "[0.0476…]"},
		{`scalar(sum(coalmine_requests_total{rollout="shop",code=~"5.."}))`,
			func(v []any) bool { return len(v) == 1 && v[0] == 2.0 }, "2 (a scalar: a number, as in Argo)"},
		{`histogram_quantile(0.5, sum by (le) (coalmine_request_duration_seconds_bucket{rollout="shop",role="canary"}))`,
			func(v []any) bool { f := v[0].(float64); return len(v) == 1 && f > 0.005 && f <= 0.025 }, "a median in (5ms, 25ms]"},
		{`sum(coalmine_requests_total{rollout="shop"}) / 0 - sum(coalmine_requests_total{rollout="shop"}) / 0`,
			func(v []any) bool { return len(v) == 1 && math.IsNaN(v[0].(float64)) }, "[NaN]"},
	}
	for _, tt := range tests {
		res, err := p.Query(ctx, q(tt.query))
		if err != nil {
			t.Errorf("%s: %v", tt.query, err)
			continue
		}
		v, ok := res.Value.([]any)
		if f, scalar := res.Value.(float64); scalar {
			v, ok = []any{f}, strings.HasPrefix(tt.query, "scalar(")
		}
		if !ok || !tt.check(v) {
			t.Errorf("%s = %v, want %s", tt.query, res.Value, tt.want)
		}
	}

	_, err := p.Query(ctx, q(`coalmine_requests_total{rollout="no-such-rollout"}`))
	if !errors.Is(err, provider.ErrNoData) {
		t.Errorf("a query matching nothing: err = %v, want ErrNoData", err)
	}
	_, err = p.Query(ctx, q(`sum(`))
	if err == nil || errors.Is(err, provider.ErrNoData) || !strings.Contains(err.Error(), "bad_data") {
		t.Errorf("a malformed query: err = %v, want Prometheus's bad_data error", err)
	}

	// A Prometheus that is gone is an error naming where it was, never no data.
	prom.stop(t)
	_, err = p.Query(ctx, total)
	if err == nil || errors.Is(err, provider.ErrNoData) || !strings.Contains(err.Error(), prom.url) {
		t.Errorf("Prometheus stopped: err = %v, want an error naming %s", err, prom.url)
	}
}

// requireTool skips when an external tool is missing on a developer's
// machine, and fails in CI (COALMINE_REQUIRE_INTEGRATION=1).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("COALMINE_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s is required (COALMINE_REQUIRE_INTEGRATION=1) but not installed: apt-get install -y %s", name, name)
		}
		t.Skipf("%s is not installed (apt-get install -y %s, or set COALMINE_REQUIRE_INTEGRATION=1 to fail instead); skipping", name, name)
	}
	return p
}

// promServer is a Prometheus process owned by one test.
type promServer struct {
	url  string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
	once sync.Once
}

// startPrometheus runs Prometheus on a free loopback port with its own
// config and storage, scraping target every second, and waits until it is
// ready. t.Cleanup kills it.
func startPrometheus(t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: coalmine
    static_configs:
      - targets: [%q]
`, target)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var last error
	// The free port can be taken between choosing and binding it; try a
	// few.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := launch(t, bin, cfg, filepath.Join(dir, fmt.Sprintf("data%d", attempt)))
		if err == nil {
			return s
		}
		last = err
	}
	t.Fatalf("start prometheus: %v", last)
	return nil
}

func launch(t *testing.T, bin, cfg, data string) (*promServer, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &promServer{url: "http://" + addr, out: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+data,
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.done) }() //nolint:errcheck // the exit status of a killed server says nothing
	t.Cleanup(func() { s.stop(t) })

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("prometheus exited before it was ready:\n%s", s.out)
		default:
		}
		if resp, err := client.Get(s.url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop(t)
			return nil, fmt.Errorf("prometheus at %s not ready after 15s:\n%s", s.url, s.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop kills the process and waits for it; it is idempotent.
func (s *promServer) stop(t *testing.T) {
	s.once.Do(func() {
		if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("kill prometheus: %v", err)
		}
		<-s.done
	})
}

// syncBuffer collects a process's output; exec writes it from its own
// goroutines while a failing test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
