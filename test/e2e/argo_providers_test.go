package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Issue 11, provider fields: an AnalysisTemplate in the shapes of Argo
// Rollouts' docs/analysis/prometheus.md and web.md runs through the binary
// against a real Prometheus behind basic authentication (a range query),
// and a web gate behind OAuth2 client credentials (jsonBody, timeoutSeconds,
// a JSONPath filter, and Argo's http://{{args.host}}:{{args.port}} URL).
func TestArgoProviderFields(t *testing.T) {
	prom := startPrometheusWithBasicAuth(t, "coalmine", "prom-pw")

	tokenURL := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if err := r.ParseForm(); err != nil || id != "coalmine" || secret != "gate-secret" || r.Form.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"gate-token","token_type":"Bearer","expires_in":600}`) //nolint:errcheck
	})
	gotBody := make(chan string, 100)
	gateURL := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer gate-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		select {
		case gotBody <- r.Header.Get("Content-Type") + " " + string(b):
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"results":[{"name":"db","ok":false},{"name":"shop","ok":true}]}`) //nolint:errcheck
	})
	host, port, err := net.SplitHostPort(strings.TrimPrefix(gateURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}

	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	stub := &backend{URL: stable.URL}
	s := newServer(t, stub, stub)
	s.env = append(s.env, "PROM_PASSWORD=prom-pw", "GATE_CLIENT_SECRET=gate-secret")
	s.writeConfig(analysisRollout("shop", s.Listen, stable.URL, canary.URL, fmt.Sprintf(
		`{templates: [{templateName: argo-providers}], args: [{name: host, value: %q}, {name: port, value: %q}, {name: service-name, value: shop}]}`,
		host, port)) + "---\n" + fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: argo-providers}
spec:
  args:
  - name: host
  - name: port
  - name: service-name
  - name: lookback-duration
    value: 30s
  metrics:
  - name: up-range
    successCondition: "len(result) >= 2 && all(result, # == 1)"
    provider:
      prometheus:
        address: %s
        rangeQuery:
          start: 'now() - duration("{{args.lookback-duration}}")'
          end: 'now()'
          step: 1s
        authentication:
          basicAuth:
            username: coalmine
            passwordFrom: {env: PROM_PASSWORD}
        query: up{job="self"}
  - name: gate
    successCondition: result == true
    provider:
      web:
        method: POST
        url: "http://{{args.host}}:{{args.port}}/api/v1/check"
        timeoutSeconds: 5
        jsonBody:
          service: "{{args.service-name}}"
          checks: [latency, errors]
        jsonPath: '{$.results[?(@.name == "{{args.service-name}}")].ok}'
        authentication:
          oauth2:
            tokenUrl: %s/token
            clientId: coalmine
            clientSecretFrom: {env: GATE_CLIENT_SECRET}
            scopes: [gate]
`, prom.URL, tokenURL))
	// lint resolves secret references too: the same environment as serve.
	t.Setenv("PROM_PASSWORD", "prom-pw")
	t.Setenv("GATE_CLIENT_SECRET", "gate-secret")
	if out, code := run(t, "lint", "-f", s.Config); code != 0 {
		t.Fatalf("lint of the Argo-shaped template: exit %d\n%s", code, out)
	}
	s.start()
	st := s.waitFor("the analysis step to pass", 60*time.Second, func(st status) bool {
		return st.StepIndex == 2 || st.Phase == "Degraded"
	})
	if st.Phase == "Degraded" {
		out, _ := s.cli("get", "analysisruns", "shop")
		t.Fatalf("the Argo-shaped analysis failed: %s\n%s\nprometheus:\n%s", st.Message, out, prom.logs.String())
	}
	select {
	case got := <-gotBody:
		var body map[string]any
		ct, raw, _ := strings.Cut(got, " ")
		if err := json.Unmarshal([]byte(raw), &body); err != nil || ct != "application/json" || body["service"] != "shop" {
			t.Errorf("the gate received %q", got)
		}
	default:
		t.Error("the gate received no request")
	}
}

// TestArgoProviderLint: lint catches an unclosed JSONPath (which used to
// lint clean and then abort the rollout), and says what to do about SigV4.
func TestArgoProviderLint(t *testing.T) {
	f := filepath.Join(t.TempDir(), "t.yaml")
	writeFile(t, f, `apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  metrics:
    - name: web
      successCondition: result == true
      provider:
        web: {url: "http://127.0.0.1:1/", jsonPath: "{$.data.ok"}
    - name: amp
      provider:
        prometheus:
          address: https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1
          query: up
          authentication:
            sigv4: {region: eu-west-1}
`)
	out, code := run(t, "lint", "-f", f)
	for _, want := range []string{
		`t.yaml:9:53: spec.metrics[0].provider.web.jsonPath: invalid JSONPath "{$.data.ok": unclosed action`,
		"spec.metrics[1].provider.prometheus.authentication.sigv4: AWS SigV4 signing of Prometheus and web queries is not supported",
		"aws-sigv4-proxy",
	} {
		if code != 2 || !strings.Contains(out, want) {
			t.Errorf("lint: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
}

// startPrometheusWithBasicAuth starts a real Prometheus that requires
// basic authentication (--web.config.file with a bcrypt hash) and scrapes
// itself every second (job "self").
func startPrometheusWithBasicAuth(t *testing.T, user, password string) *prometheusProcess {
	t.Helper()
	bin := requireTool(t, "prometheus")
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	web := filepath.Join(dir, "web.yml")
	writeFile(t, web, fmt.Sprintf("basic_auth_users:\n  %s: %q\n", user, hash))
	cfg := filepath.Join(dir, "prometheus.yml")
	writeFile(t, cfg, fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: self\n    basic_auth: {username: %q, password: %q}\n    static_configs: [{targets: [%q]}]\n",
		user, password, addr))
	p := &prometheusProcess{URL: "http://" + addr, done: make(chan struct{}), logs: &syncBuffer{}}
	p.cmd = exec.Command(bin, "--config.file="+cfg, "--web.config.file="+web, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	eventually(t, 30*time.Second, "prometheus to have scraped itself", func() bool {
		req, _ := http.NewRequest(http.MethodGet, p.URL+"/api/v1/query?query=count_over_time(up[1m])", nil)
		req.SetBasicAuth(user, password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Result) == 0 || len(r.Data.Result[0].Value) < 2 {
			return false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		n, err := strconv.Atoi(s)
		return err == nil && n >= 3
	})
	return p
}
