package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// realPrometheus starts the prometheus binary with basic authentication
// (its --web.config.file), scraping itself every second, and returns its
// URL once it has a few samples of `up`.
func realPrometheus(t *testing.T, user, password string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("COALMINE_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("prometheus is required (COALMINE_REQUIRE_INTEGRATION=1) but not installed: apt-get install -y prometheus")
		}
		t.Skip("prometheus is not installed (apt-get install -y prometheus); skipping the test against a real server")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	web := write("web.yml", fmt.Sprintf("basic_auth_users:\n  %s: %q\n", user, hash))
	cfg := write("prometheus.yml", fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: self
    basic_auth: {username: %q, password: %q}
    static_configs: [{targets: [%q]}]
`, user, password, addr))
	var logs strings.Builder
	cmd := exec.Command(bin, "--config.file="+cfg, "--web.config.file="+web, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })

	url := "http://" + addr
	// Waiting for the server to start and scrape is not a timed assertion:
	// the deadline only bounds a broken setup.
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/query?query=count_over_time(up[1m])", nil)
		req.SetBasicAuth(user, password)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				res, err := New(Config{}).Query(context.Background(), provider.Query{Metric: "ready", Spec: spec.Provider{Prometheus: &spec.PrometheusProvider{
					Address: url, Query: "count_over_time(up[1m])",
					Authentication: &spec.Authentication{BasicAuth: &spec.BasicAuth{Username: user, Password: password}}}}})
				if err == nil && res.Value.([]any)[0].(float64) >= 3 {
					return url
				}
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited:\n%s", logs.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not collect 3 samples of up in 30s:\n%s", logs.String())
		}
	}
}

// TestRealPrometheus runs Argo's rangeQuery and basic authentication
// against the real server.
func TestRealPrometheus(t *testing.T) {
	url := realPrometheus(t, "coalmine", "s3cret-pw")
	resolve := func(ref *spec.SecretRef) (string, error) {
		if ref.Env == "PROM_PASSWORD" {
			return "s3cret-pw", nil
		}
		return "", errors.New("environment variable " + ref.Env + " is not set")
	}
	p := New(Config{Resolve: resolve})
	step := spec.Duration(time.Second)
	q := func(auth *spec.Authentication, rq *spec.PrometheusRangeQuery) provider.Query {
		return provider.Query{Rollout: "shop", Metric: "up", Spec: spec.Provider{Prometheus: &spec.PrometheusProvider{
			Address: url, Query: `up{job="self"}`, RangeQuery: rq, Authentication: auth}}}
	}
	fromEnv := &spec.Authentication{BasicAuth: &spec.BasicAuth{Username: "coalmine", PasswordFrom: &spec.SecretRef{Env: "PROM_PASSWORD"}}}

	t.Run("range query: every value in one list", func(t *testing.T) {
		res, err := p.Query(context.Background(), q(fromEnv, &spec.PrometheusRangeQuery{Start: `now() - duration("2s")`, End: "now()", Step: &step}))
		if err != nil {
			t.Fatal(err)
		}
		vals, ok := res.Value.([]any)
		// now-2s to now at 1s steps: 3 points (2 when a step lands between
		// the first scrape and the lookback).
		if !ok || len(vals) < 2 || len(vals) > 3 {
			t.Fatalf("result %#v, want 2 or 3 values of up", res.Value)
		}
		for _, v := range vals {
			if v != 1.0 {
				t.Errorf("up = %v", v)
			}
		}
	})
	t.Run("range query in the future: no data", func(t *testing.T) {
		_, err := p.Query(context.Background(), q(fromEnv, &spec.PrometheusRangeQuery{Start: `now() + duration("1h")`, End: `now() + duration("2h")`, Step: &step}))
		if !errors.Is(err, provider.ErrNoData) {
			t.Errorf("got %v, want no data", err)
		}
	})
	t.Run("instant query with the password in the file", func(t *testing.T) {
		res, err := p.Query(context.Background(), q(&spec.Authentication{BasicAuth: &spec.BasicAuth{Username: "coalmine", Password: "s3cret-pw"}}, nil))
		if err != nil || len(res.Value.([]any)) != 1 {
			t.Fatalf("got %v, %v", res.Value, err)
		}
	})
	t.Run("a wrong password or none is refused", func(t *testing.T) {
		for _, auth := range []*spec.Authentication{nil, {BasicAuth: &spec.BasicAuth{Username: "coalmine", Password: "wrong"}}} {
			_, err := p.Query(context.Background(), q(auth, nil))
			if err == nil || !strings.Contains(err.Error(), "status 401") {
				t.Errorf("got %v, want status 401", err)
			}
			if err != nil && strings.Contains(err.Error(), "wrong") {
				t.Errorf("the error shows the password: %v", err)
			}
		}
	})
}
