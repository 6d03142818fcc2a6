package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Issue 11, through the binary: an AnalysisTemplate as Argo users write it
// (Argo's apiVersion, Kubernetes metadata, a ClusterAnalysisTemplate
// composed into it, headers as {key, value}, durations in seconds, count
// from an argument, consecutiveSuccessLimit, a dryRun list,
// measurementRetention) and a rollout passing an argument no template
// declares and arguments from valueFrom. It shows Argo's behaviour:
//   - lint accepts it and warns about what it ignores (exit 0);
//   - the undeclared argument is ignored, not an error (Argo);
//   - valueFrom fills the rollout's name, its versions and a secret, and
//     the secret never shows in the stored run;
//   - consecutiveSuccessLimit ends the decisive metric after 2 of its 5;
//   - the run waits for its dry-run metric (3 measurements) before the
//     step completes, and the dry-run metric's failure does not fail it.
func TestArgoAnalysisSemantics(t *testing.T) {
	const token = "s3cret-token-value"
	t.Setenv("ARGO_E2E_TOKEN", token)
	var mu sync.Mutex
	calls := map[string]int{}
	var seenAuth, seenQuery string
	webURL := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		if r.URL.Path == "/gate" {
			seenAuth, seenQuery = r.Header.Get("Authorization"), r.URL.RawQuery
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/gate":
			io.WriteString(w, `{"ok": true}`) //nolint:errcheck
		default: // /shadow: a failing dry-run metric
			io.WriteString(w, `{"ok": false}`) //nolint:errcheck
		}
	})
	callsOf := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return calls[path]
	}

	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	stub := &backend{URL: stable.URL}
	s := newServer(t, stub, stub)
	s.writeConfig(fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %[1]s
  stable: {version: v1, endpoints: [%[2]s]}
  canary: {version: v2, endpoints: [%[3]s]}
  rollbackWindow: 1
  strategy:
    canary:
      steps:
        - setWeight: 10
        - analysis:
            templates: [{templateName: gate}]
            args:
              - {name: count, value: "5"}
              - {name: region, value: eu-west-1}
              - name: service
                valueFrom: {fieldRef: {fieldPath: metadata.name}}
              - name: canary-hash
                valueFrom: {podTemplateHashValue: Latest}
              - name: token
                valueFrom: {env: ARGO_E2E_TOKEN}
            dryRun: [{metricName: shadow}]
        - pause: {}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: gate
  namespace: payments
  labels: {team: payments}
spec:
  templates: [{templateName: shadow-checks, clusterScope: true}]
  args:
    - name: count
    - name: service
    - name: canary-hash
    - name: token
  measurementRetention: [{metricName: ".*", limit: 20}]
  metrics:
    - name: gate
      interval: 1
      count: "{{args.count}}"
      consecutiveSuccessLimit: 2
      successCondition: result == true
      provider:
        web:
          url: "%[4]s/gate?service={{args.service}}&version={{args.canary-hash}}"
          headers:
            - key: Authorization
              value: "Bearer {{args.token}}"
          jsonPath: "{$.ok}"
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: shadow-checks}
spec:
  metrics:
    - name: shadow
      interval: 1
      count: 3
      failureLimit: -1
      successCondition: result == true
      provider:
        web: {url: "%[4]s/shadow", jsonPath: "{$.ok}"}
`, s.Listen, stable.URL, canary.URL, webURL))

	out, code := run(t, "lint", "-f", s.Config)
	if code != 0 {
		t.Fatalf("lint of the Argo-shaped file: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"warning: metadata.namespace: Kubernetes metadata ignored (namespace, labels)",
		"warning: kind: ClusterAnalysisTemplate is read as an AnalysisTemplate",
		`warning: spec.strategy.canary.steps[1].analysis.args[1].name: argument "region" is not declared by AnalysisTemplate "gate" and is ignored`,
		"ok: 1 rollout(s), 2 analysis template(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lint output lacks %q:\n%s", want, out)
		}
	}

	s.start()
	st := s.waitFor("the analysis step to end", 40*time.Second, func(st status) bool {
		return st.StepIndex >= 2 || st.Phase == "Degraded"
	})
	if st.Phase == "Degraded" {
		out, _ := s.cli("get", "analysisruns", "shop")
		t.Fatalf("the Argo-shaped analysis failed: %s\n%s", st.Message, out)
	}
	if n := callsOf("/gate"); n != 2 {
		t.Errorf("gate measured %d times, want 2 (consecutiveSuccessLimit 2 of count 5)", n)
	}
	if n := callsOf("/shadow"); n != 3 {
		t.Errorf("the step ended after %d of the dry-run metric's 3 measurements; Argo waits for dry-run metrics", n)
	}
	mu.Lock()
	auth, query := seenAuth, seenQuery
	mu.Unlock()
	if auth != "Bearer "+token {
		t.Errorf("Authorization = %q, want the secret from valueFrom {env}", auth)
	}
	if query != "service=shop&version=v2" {
		t.Errorf("query = %q, want service=shop&version=v2 (fieldRef metadata.name, podTemplateHashValue Latest)", query)
	}
	runs := s.mustCLI("get", "analysisruns", "shop", "-o", "json")
	for _, want := range []string{`"shadow"`, `"dryRun": true`, `Failed`} {
		if !strings.Contains(runs, want) {
			t.Errorf("analysis runs lack %s:\n%s", want, runs)
		}
	}
	resp, err := http.Get(s.Admin + "/api/v1/rollouts/shop/analysisruns")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	api := string(body)
	for _, where := range []struct{ name, text string }{{"get analysisruns", runs}, {"the API", api}, {"the logs", s.logs.String()}} {
		if strings.Contains(where.text, token) {
			t.Errorf("the secret argument's value shows in %s", where.name)
		}
	}

}

// TestArgoCorpusLints runs `coalmine lint` on the Argo-shaped corpus
// (testdata/argo) as a user would: exit 0, the warnings on stderr.
func TestArgoCorpusLints(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COALMINE_SECRETS_DIR", dir)
	for _, f := range []string{"prometheus/password", "prometheus-oauth/client-secret", "status-api/token", "gate-oauth/client-secret"} {
		p := dir + "/" + f
		if err := os.MkdirAll(p[:strings.LastIndexByte(p, '/')], 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, "s3cret\n")
	}
	out, code := run(t, "lint", "-f", "../../testdata/argo")
	if code != 0 || !strings.Contains(out, "ok: 2 rollout(s), 10 analysis template(s)") {
		t.Fatalf("coalmine lint -f testdata/argo: exit %d\n%s", code, out)
	}
	if n := strings.Count(out, ": warning: "); n != 11 {
		t.Errorf("%d warnings, want the 11 of testdata/argo/warnings.txt:\n%s", n, out)
	}
}

// TestArgoConditionHelpersAndTimeout shows issue 11's item 10 through the
// binary: a condition written for a missing value (isNil, default) decides
// when the provider finds nothing, as in Argo, and a Prometheus query
// without a timeout may take longer than 10 s (Argo's default is 30 s).
// The slow Prometheus is an HTTP server speaking its query API, since a
// real one cannot be made to take 11 s on demand.
func TestArgoConditionHelpersAndTimeout(t *testing.T) {
	webURL := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok": null}`) //nolint:errcheck
	})
	slowProm := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(11 * time.Second):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"scalar","result":[%d,"1"]}}`, time.Now().Unix()) //nolint:errcheck
	})
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	stub := &backend{URL: stable.URL}
	s := newServer(t, stub, stub)
	s.writeConfig(analysisRollout("shop", s.Listen, stable.URL, canary.URL, "{templates: [{templateName: argo}]}") + "---\n" + fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: argo}
spec:
  metrics:
    - name: flag-or-missing
      successCondition: isNil(result) || result == true
      provider:
        web: {url: "%s/flag", jsonPath: "{$.ok}"}
    - name: missing-is-zero
      successCondition: default(result, 0) < 1
      provider:
        web: {url: "%s/errors", jsonPath: "{$.errors}"}
    - name: slow-prometheus
      successCondition: result >= 1
      provider:
        prometheus: {address: "%s", query: "scalar(vector(1))"}
`, webURL, webURL, slowProm))
	s.start()
	st := s.waitFor("the analysis step to end", 45*time.Second, func(st status) bool {
		return st.StepIndex >= 2 || st.Phase == "Degraded" || st.Phase == "Paused"
	})
	if st.StepIndex < 2 {
		out, _ := s.cli("get", "analysisruns", "shop")
		t.Fatalf("phase %s at step %d: %s\n%s", st.Phase, st.StepIndex, st.Message, out)
	}
}
