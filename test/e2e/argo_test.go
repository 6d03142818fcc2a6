package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 11 (in part): AnalysisTemplates written for Argo Rollouts behave as
// they do there, through the binary, against a real Prometheus and real
// web endpoints:
//   - a Prometheus scalar() reaches conditions as a number (result >= 0.5);
//   - a web endpoint answering plain text is a string (Argo's own web.md:
//     result == "I am OK");
//   - a metric without a condition is Successful unless it errors;
//   - count above 1 without an interval is refused by lint.
func TestArgoShapedAnalysis(t *testing.T) {
	prom := startPrometheusScraping(t, "127.0.0.1:1") // nothing to scrape: scalar() needs no data
	webURL := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/status":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "I am OK\n") //nolint:errcheck
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"data": {"ok": true}}`) //nolint:errcheck
		}
	})

	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	stub := &backend{URL: stable.URL}
	s := newServer(t, stub, stub)
	s.writeConfig(analysisRollout("shop", s.Listen, stable.URL, canary.URL, "{templates: [{templateName: argo}]}") + "---\n" + fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: argo}
spec:
  metrics:
    - name: scalar
      successCondition: result >= 0.5
      provider:
        prometheus:
          address: %s
          query: scalar(vector(1))
    - name: plain-text
      successCondition: result == "I am OK"
      provider:
        web: {url: %s/status}
    - name: no-condition
      provider:
        web: {url: %s/data, jsonPath: "{$.data.ok}"}
`, prom.URL, webURL, webURL))
	s.start()
	st := s.waitFor("the analysis step to pass", 30*time.Second, func(st status) bool {
		return st.StepIndex == 2 || st.Phase == "Degraded"
	})
	if st.Phase == "Degraded" {
		out, _ := s.cli("get", "analysisruns", "shop")
		t.Fatalf("the Argo-shaped analysis failed: %s\n%s", st.Message, out)
	}
	out := s.mustCLI("get", "analysisruns", "shop")
	for _, want := range []string{"scalar", "plain-text", "no-condition", "Successful"} {
		if !strings.Contains(out, want) {
			t.Errorf("analysis runs lack %q:\n%s", want, out)
		}
	}

	f := filepath.Join(t.TempDir(), "count.yaml")
	writeFile(t, f, `apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  metrics:
    - name: m
      count: 3
      successCondition: result == "ok"
      provider: {web: {url: http://127.0.0.1:1/}}
`)
	if out, code := run(t, "lint", "-f", f); code != 2 || !strings.Contains(out, "count 3 needs an interval between the measurements") {
		t.Errorf("lint of count 3 without interval: exit %d:\n%s", code, out)
	}
}

// analysisRollout is the rollout the Argo tests share: 10% to the canary,
// then an analysis step (analysis is its YAML flow mapping, such as
// {templates: [{templateName: argo}]}), then a pause.
func analysisRollout(name, listen, stableURL, canaryURL, analysis string) string {
	return fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: %s}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  strategy:
    canary:
      steps:
        - setWeight: 10
        - analysis: %s
        - pause: {}
`, name, listen, stableURL, canaryURL, analysis)
}
