package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Issue 10, items 6 and 8: `get rollout -w` shows a completion at once:
// no canary, the old endpoints gone, 0% observed; the progress reads n/n
// after promote --full; and -o yaml gives one answer to "what is stable".
func TestWatchShowsACompletionAtOnce(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.start()
	s.waitFor("the first pause", 10*time.Second, func(st status) bool { return st.Phase == "Paused" })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "get", "rollout", "shop", "-w", "--server", s.Admin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	// The frame being read: each view starts with its "Name:" line.
	var mu sync.Mutex
	var current string
	go func() {
		sc := bufio.NewScanner(stdout)
		var cur strings.Builder
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "Name:") {
				cur.Reset()
			}
			cur.WriteString(line + "\n")
			mu.Lock()
			current = cur.String()
			mu.Unlock()
		}
	}()
	latest := func() string {
		mu.Lock()
		defer mu.Unlock()
		return current
	}
	eventually(t, 10*time.Second, "the live view", func() bool { return strings.Contains(latest(), "Paused") })

	s.mustCLI("promote", "shop", "--full")
	start := time.Now()
	var frame string
	eventually(t, 3*time.Second, "the live view to show the completion as it is", func() bool {
		frame = latest()
		return strings.Contains(frame, "Healthy") && strings.Contains(frame, "Canary:") &&
			!strings.Contains(frame, stable.URL) && strings.Contains(frame, "0% applied, 0% observed") &&
			strings.Contains(frame, "3/3 steps done")
	})
	t.Logf("the live view caught up in %v:\n%s", time.Since(start), frame)

	out := s.mustCLI("get", "rollout", "shop", "-o", "yaml")
	for _, want := range []string{"stableVersion: v2", "version: v2"} {
		if !strings.Contains(out, want) {
			t.Errorf("-o yaml lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "version: v1") {
		t.Errorf("-o yaml still names v1 (two answers to what is stable):\n%s", out)
	}
}

// Issue 10, items 7 and 8: a metric without a verdict says so (Skipped,
// not Successful); analysis run names match their step; re-applying an
// unchanged file after undo says that it rolls the rolled-back version out
// again, and how to choose otherwise.
func TestAnalysisAndUndoSayWhatHappened(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	stub := &backend{URL: stable.URL}
	s := newServer(t, stub, stub)
	file := fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  trafficRouting:
    assignment: {userHeader: X-User-ID}
  strategy:
    canary:
      steps:
        - setWeight: 10
        - pause: {}
        - analysis: {templates: [{templateName: checks}]}
        - pause: {}
---
apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: checks}
spec:
  metrics:
    - name: fails-at-once
      provider: {builtin: {}}
      failureCondition: result.canary.requests >= 0
    - name: later
      initialDelay: 1h
      provider: {builtin: {}}
      successCondition: result.canary.errorRate < 0.05
`, s.Listen, stable.URL, canary.URL)
	s.writeConfig(file)
	s.start()
	s.waitFor("the pause after 10%", 10*time.Second, func(st status) bool { return st.StepIndex == 1 })
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	load(ctx, s.Listen, 50)
	s.mustCLI("promote", "shop")
	s.waitFor("the analysis to fail", 20*time.Second, func(st status) bool { return st.Phase == "Degraded" })

	out := s.mustCLI("get", "analysisruns", "shop")
	if !strings.Contains(out, "r1-step3-1") || !strings.Contains(out, "step 3") {
		t.Errorf("the run of step 3 is not named for it:\n%s", out)
	}
	var laterLine string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "later") && !strings.Contains(line, "checks") {
			laterLine = line
		}
	}
	if !strings.Contains(laterLine, "Skipped") || strings.Contains(laterLine, "Successful") || !strings.Contains(laterLine, "no verdict") {
		t.Errorf("a metric that never measured: %q, want Skipped with no verdict:\n%s", laterLine, out)
	}

	// Ship v2 anyway, undo it, then re-apply the unchanged file.
	s.mustCLI("promote", "shop", "--full")
	s.mustCLI("undo", "shop")
	s.waitFor("v1 stable again", 10*time.Second, func(st status) bool { return st.Phase == "Healthy" && st.StableVersion == "v1" })
	applied := filepath.Join(t.TempDir(), "shop.yaml")
	writeFile(t, applied, file)
	out = s.mustCLI("apply", "-f", applied)
	if !strings.Contains(out, "revision 3 started, v2 over stable v1") || !strings.Contains(out, "v2 was rolled back in revision 2") ||
		!strings.Contains(out, "To stay on v1, set spec.canary to v1 (or remove it)") {
		t.Errorf("re-applying after undo does not say what happens:\n%s", out)
	}
}

// Issue 10, item 9: the demo labels its traffic table as the judges' data
// and closes with a hint that works after it has exited.
func TestDemoHintsWork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "demo", "--scenario", "errors").CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"since the step began", "ROLLED BACK", "run it again with --keep-running", "demo --scenario errors --keep-running"} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "See every measurement with") {
		t.Errorf("the demo still points at a server that has exited:\n%s", text)
	}
}

// Issue 10, "what must be true": the README's walkthrough works when
// followed literally, with backends that have no /health. The test reads
// the YAML and the commands from README.md itself (so the two cannot drift
// apart), moves every fixed port to a free one, and runs the commands one
// by one as a user would, through sh, in an empty directory.
func TestREADMEWalkthrough(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := codeBlocks(string(readme))
	var yaml, backends, commands string
	for _, b := range blocks {
		switch {
		case strings.Contains(b, "# rollout.yaml"):
			yaml = b
		case strings.Contains(b, "./bench/backend"):
			backends = b
		case strings.Contains(b, "./coalmine serve"):
			commands = b
		}
	}
	if yaml == "" || backends == "" || commands == "" {
		t.Fatalf("README.md lacks the walkthrough's YAML, backends or commands")
	}
	// Build first, then pick the ports: a slow build between picking a
	// free port and using it would leave time for another test to take it.
	dir := t.TempDir()
	backendBin := filepath.Join(dir, "backend")
	if out, err := exec.Command("go", "build", "-o", backendBin, "../../bench/backend").CombinedOutput(); err != nil {
		t.Fatalf("build bench/backend: %v\n%s", err, out)
	}
	ports := map[string]string{}
	for _, p := range []string{"127.0.0.1:8080", "127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003", "127.0.0.1:7070"} {
		ports[p] = freeAddr(t)
	}
	subst := func(s string) string {
		for from, to := range ports {
			s = strings.ReplaceAll(s, from, to)
		}
		return s
	}
	writeFile(t, filepath.Join(dir, "rollout.yaml"), subst(yaml))
	if out, err := exec.Command("cp", binary, filepath.Join(dir, "coalmine")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	admin := ports["127.0.0.1:7070"]
	env := append(os.Environ(), "COALMINE_SERVER=http://"+admin)
	background := func(line string) {
		cmd := exec.Command("sh", "-c", "exec "+line)
		cmd.Dir, cmd.Env = dir, env
		var logs syncBuffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("%s:\n%s", line, logs.String())
			}
		})
	}
	runLine := func(line string, timeout time.Duration) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Dir, cmd.Env = dir, env
		// Ctrl-C reaches the whole process group, not only sh.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return string(out), -1
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	for _, line := range lines(backends) {
		background(strings.TrimSuffix(strings.Replace(subst(line), "go run ./bench/backend", backendBin, 1), "&"))
	}
	for _, raw := range lines(commands) {
		line := subst(raw)
		switch {
		case strings.HasPrefix(line, "go build"):
			continue // the binary is there already (built once for every test)
		case strings.HasSuffix(line, "&"):
			line = strings.TrimSuffix(line, "&")
			if strings.Contains(line, "serve") {
				line += " --admin " + admin // the default, 127.0.0.1:7070, moved to a free port
			}
			background(line)
			eventually(t, 20*time.Second, "coalmine serve to be ready", func() bool {
				_, code := runLine("./coalmine get rollouts", 10*time.Second)
				return code == 0
			})
			continue
		}
		timeout := 30 * time.Second
		if strings.Contains(line, " -w") {
			timeout = 3 * time.Second // a live view: the user leaves it with Ctrl-C
		}
		out, code := runLine(line, timeout)
		t.Logf("$ %s\n%s(exit %d)", raw, out, code)
		want := 0
		switch {
		case strings.Contains(line, " -w"):
			want = -1
			if !strings.Contains(out, "checkout") || !strings.Contains(out, "Paused") {
				t.Errorf("the live view shows %q", out)
			}
		case strings.Contains(line, "status"):
			want = 1 // it was aborted just before, as the comment says
		case strings.HasPrefix(line, "curl") && strings.Contains(line, "X-User-ID"):
			if !strings.Contains(out, "v1.4.2") && !strings.Contains(out, "v1.5.0") {
				t.Errorf("a request through the proxy got %q", out)
			}
		case strings.Contains(line, "grep"):
			if !strings.Contains(out, "coalmine_requests_total") {
				t.Errorf("no coalmine_requests_total in /metrics")
			}
		}
		if code != want {
			t.Fatalf("%s: exit %d, want %d:\n%s", raw, code, want, out)
		}
		if strings.Contains(line, "promote") {
			// A user reads the output before typing on: the promotion
			// walks the last step (setWeight 100) and completes.
			eventually(t, 10*time.Second, "v1.5.0 stable", func() bool {
				out, _ := runLine("./coalmine get rollout checkout", 10*time.Second)
				return strings.Contains(out, "Healthy") && strings.Contains(out, "v1.5.0")
			})
		}
	}
}

// codeBlocks returns the fenced code blocks of a Markdown text.
func codeBlocks(md string) []string {
	var out []string
	var cur []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			if in {
				out = append(out, strings.Join(cur, "\n"))
				cur = nil
			}
			in = !in
			continue
		}
		if in {
			cur = append(cur, line)
		}
	}
	return out
}

// lines returns the commands of a shell block, comments removed.
func lines(block string) []string {
	var out []string
	for _, l := range strings.Split(block, "\n") {
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// Issue 10, item 8: `status` tells a timeout (5) from a usage mistake (2).
func TestStatusExitCodes(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.start()
	if out, code := s.cli("status", "shop", "--timeout", "1s"); code != 5 || !strings.Contains(out, "timed out") {
		t.Errorf("status on a paused rollout with --timeout 1s: exit %d, want 5:\n%s", code, out)
	}
	if out, code := s.cli("status"); code != 2 {
		t.Errorf("status without a name: exit %d, want 2:\n%s", code, out)
	}
	if out, code := s.cli("status", "shop", "--watch=false"); code != 5 {
		t.Errorf("status --watch=false on a paused rollout: exit %d, want 5:\n%s", code, out)
	}
}
