package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smokeScript is what a team's smoke test does before a promotion: it
// checks its arguments and environment, then answers as the canary
// version dictates: v2 passes (JSON for the condition), v3 fails (exit 1,
// the reason on stderr), v4 exits 0 but reports failed checks in its JSON,
// v5 hangs with a child process.
const smokeScript = `#!/bin/sh
if [ "$1" != "--target" ] || [ "$2" != "$COALMINE_ARG_URL" ] || [ "$COALMINE_ROLLOUT" != shop ] || [ "$COALMINE_STABLE_VERSION" != v1 ]; then
	echo "unexpected arguments or environment: $* url=$COALMINE_ARG_URL rollout=$COALMINE_ROLLOUT" >&2
	exit 2
fi
echo "smoke test of $COALMINE_CANARY_VERSION at $2" >&2
case "$COALMINE_CANARY_VERSION" in
v3) echo "GET $2/checkout: 503 Service Unavailable" >&2; exit 1 ;;
v4) echo '{"passed": 10, "failed": 2}' ;;
v5) sleep 60 & echo $! > %s; wait ;;
*) echo "{\"passed\": 12, \"failed\": 0, \"version\": \"$COALMINE_CANARY_VERSION\"}" ;;
esac
`

// TestArgoCommandProvider: the command provider, coalmine's answer to
// Argo's Job provider, through the binary. A real script runs as an
// analysis step: exit 0 with JSON that the successCondition reads lets
// the step pass; exit 1 aborts the rollout with the script's stderr in the
// message; JSON that fails the condition aborts it; a script past its
// timeout is an Error (consecutiveErrorLimit 0: abort) and its child
// process is killed. A template with a command metric lints clean but is
// refused through the API without serve --allow-command-provider.
func TestArgoCommandProvider(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "smoke.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(smokeScript, pidFile)), 0o755); err != nil {
		t.Fatal(err)
	}
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	template := fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: smoke}
spec:
  args:
    - name: url
  metrics:
    - name: smoke
      successCondition: result.failed == 0
      consecutiveErrorLimit: 0
      provider:
        command:
          command: [./smoke.sh, --target, "{{args.url}}"]
          dir: %s
          timeout: 2s
    - name: score
      successCondition: result >= 0.95
      provider:
        command:
          command: [sh, -c, 'printf "%%s" "$SCORE"']
          env: [{name: SCORE, value: "0.99"}]
`, dir)
	s.writeConfig(analysisRollout("shop", s.Listen, stable.URL, canary.URL,
		fmt.Sprintf(`{templates: [{templateName: smoke}], args: [{name: url, value: "%s"}]}`, canary.URL)) + "---\n" + template)
	if out, code := run(t, "lint", "-f", s.Config); code != 0 {
		t.Fatalf("lint: exit %d:\n%s", code, out)
	}
	s.start()

	t.Run("exit 0 and JSON for the condition: the step passes", func(t *testing.T) {
		st := s.waitFor("the analysis step to pass", 30*time.Second, func(st status) bool {
			return st.StepIndex == 2 || st.Phase == "Degraded"
		})
		if st.Phase == "Degraded" {
			out, _ := s.cli("get", "analysisruns", "shop")
			t.Fatalf("the smoke test failed: %s\n%s", st.Message, out)
		}
		out := s.mustCLI("get", "analysisruns", "shop")
		for _, want := range []string{"smoke", "score", "Successful", `"version":"v2"`} {
			if !strings.Contains(out, want) {
				t.Errorf("analysis runs lack %q:\n%s", want, out)
			}
		}
	})

	abortsWith := func(t *testing.T, version string, wants ...string) {
		t.Helper()
		s.mustCLI("set", "canary", "shop", version, "--endpoint", canary.URL)
		st := s.waitFor("the rollout of "+version+" to abort", 30*time.Second, func(st status) bool {
			return st.CanaryVersion == version && (st.Phase == "Degraded" || st.StepIndex == 2)
		})
		out, _ := s.cli("get", "analysisruns", "shop")
		t.Logf("%s: %s\n%s", version, st.Message, out)
		if st.Phase != "Degraded" {
			t.Fatalf("%s was not aborted: %+v\n%s", version, st, out)
		}
		for _, want := range wants {
			if !strings.Contains(st.Message+"\n"+out, want) {
				t.Errorf("neither the status message nor the analysis runs say %q:\n%s\n%s", want, st.Message, out)
			}
		}
	}
	t.Run("exit 1 aborts, with stderr in the message", func(t *testing.T) {
		abortsWith(t, "v3", "exited with status 1", "503 Service Unavailable")
	})
	t.Run("JSON that fails the successCondition aborts", func(t *testing.T) {
		abortsWith(t, "v4", `did not satisfy result.failed == 0`)
	})
	t.Run("a timeout is an Error and kills the command's children", func(t *testing.T) {
		abortsWith(t, "v5", "did not finish within its timeout of 2s, so it and its process group were killed", "smoke test of v5")
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the script's child to be killed", func() bool {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			return err != nil || strings.HasPrefix(strings.TrimSpace(string(stat[strings.LastIndexByte(string(stat), ')')+1:])), "Z")
		})
	})

	t.Run("the API refuses command metrics without --allow-command-provider", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "template.yaml")
		writeFile(t, f, strings.Replace(template, "name: smoke}", "name: smoke-api}", 1))
		if out, code := run(t, "lint", "-f", f); code != 0 {
			t.Fatalf("lint: exit %d:\n%s", code, out)
		}
		out, code := s.cli("apply", "-f", f)
		t.Logf("apply: exit %d: %s", code, out)
		if code == 0 || !strings.Contains(out, "spec.metrics[0].provider.command") || !strings.Contains(out, "--allow-command-provider") {
			t.Errorf("apply of a command template: exit %d:\n%s", code, out)
		}
	})
}

// TestArgoCommandProviderThroughTheAPI: with serve --allow-command-provider
// a command template can be applied and runs; after a restart without the
// flag the stored template no longer runs, and the analysis that needs it
// aborts saying why and what to do.
func TestArgoCommandProviderThroughTheAPI(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "ok.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"smoke test of $COALMINE_CANARY_VERSION\" >&2\necho 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary, "--allow-command-provider")
	s.start()

	files := t.TempDir()
	template := filepath.Join(files, "template.yaml")
	writeFile(t, template, fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: api-smoke}
spec:
  metrics:
    - name: smoke
      successCondition: result == 1
      provider: {command: {command: [%s]}}
`, script))
	rollout := filepath.Join(files, "rollout.yaml")
	writeFile(t, rollout, analysisRollout("api", freeAddr(t), stable.URL, canary.URL, "{templates: [{templateName: api-smoke}]}"))
	s.mustCLI("apply", "-f", template)
	s.mustCLI("apply", "-f", rollout)
	apiStatus := func() status {
		var v struct {
			Status status `json:"status"`
		}
		s.getJSON("/api/v1/rollouts/api", &v)
		return v.Status
	}
	var st status
	eventually(t, 30*time.Second, "the applied analysis to pass", func() bool {
		st = apiStatus()
		return st.StepIndex == 2 || st.Phase == "Degraded"
	})
	if st.Phase == "Degraded" {
		t.Fatalf("the applied command analysis failed: %s", st.Message)
	}

	s.signal(syscall.SIGTERM)
	if code := s.waitExit(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	s.extra = nil
	s.start()
	s.mustCLI("set", "canary", "api", "v3", "--endpoint", canary.URL)
	eventually(t, 30*time.Second, "the analysis of v3 to be refused", func() bool {
		st = apiStatus()
		return st.CanaryVersion == "v3" && (st.Phase == "Degraded" || st.StepIndex == 2)
	})
	t.Logf("v3: %s: %s", st.Phase, st.Message)
	for _, want := range []string{`AnalysisTemplate "api-smoke" was applied through the API with a command metric`, "--allow-command-provider"} {
		if st.Phase != "Degraded" || !strings.Contains(st.Message, want) {
			t.Errorf("after a restart without --allow-command-provider: %s %q, want Degraded saying %q", st.Phase, st.Message, want)
		}
	}
	if !strings.Contains(s.logs.String(), "stored analysis template will not run") {
		t.Errorf("the start-up log does not name the refused template:\n%s", s.logs.String())
	}
}
