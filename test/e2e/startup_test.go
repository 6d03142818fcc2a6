package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 10, item 2: a second `coalmine serve` whose admin address is taken
// exits at once with the reason, and changes no rollout's state.
func TestServeWithBusyAdminExitsAtOnce(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.start()
	before := s.events()

	for i := range 5 {
		// The same files and data directory, the default mistake.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, binary, "serve", "-f", s.Config, "--admin", strings.TrimPrefix(s.Admin, "http://"), "--data-dir", s.DataDir)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		hung := ctx.Err() != nil
		cancel()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if hung || took > 5*time.Second {
			t.Fatalf("run %d: the second serve hung for %v:\n%s", i, took, out)
		}
		if code == 0 || !strings.Contains(string(out), "address already in use") || !strings.Contains(string(out), "admin") {
			t.Fatalf("run %d: exit %d, want a failure naming the busy admin address:\n%s", i, code, out)
		}
	}
	if after := s.events(); len(after) != len(before) {
		t.Fatalf("the failed starts changed the rollout: %d events before, %d after", len(before), len(after))
	}
	if st := s.status(); st.Phase != "Paused" || st.StepIndex != 0 {
		t.Fatalf("the first server's rollout moved: %+v", st)
	}
}

// Issue 10, item 3: an API apply with a listen address this machine cannot
// bind is refused with 400 and saves nothing.
func TestApplyRefusesAnUnbindableListen(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.start()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for name, listen := range map[string]string{
		"busy port":           busy.Addr().String(),
		"the admin port":      strings.TrimPrefix(s.Admin, "http://"),
		"not on this machine": "192.0.2.1:8080",
	} {
		doc := fmt.Sprintf(`{"spec": {"listen": %q, "stable": {"version": "v1", "endpoints": [%q]}}}`, listen, stable.URL)
		req, _ := http.NewRequest(http.MethodPut, s.Admin+"/api/v1/rollouts/other", strings.NewReader(doc))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var eb struct{ Error, Field string }
		_ = json.Unmarshal(body, &eb)
		if resp.StatusCode != 400 || eb.Field != "spec.listen" || !strings.Contains(eb.Error, "cannot listen on "+listen) {
			t.Errorf("%s: %d %s, want 400 on spec.listen saying it cannot listen", name, resp.StatusCode, body)
		}
		resp, err = client.Get(s.Admin + "/api/v1/rollouts/other")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("%s: the refused rollout was saved (GET %d)", name, resp.StatusCode)
		}
	}
	// The next start still works.
	s.signal(syscall.SIGTERM)
	s.waitExit(10 * time.Second)
	s.start()
}

// Issue 10, item 3: at start, a rollout that cannot bind does not keep the
// others from serving; it is reported in its status and in /readyz, and
// it serves as soon as its address is free.
func TestOneUnbindableRolloutDoesNotStopTheOthers(t *testing.T) {
	stable := startBackend(t, "v1")
	stub := &backend{URL: stable.URL}
	s := newServer(t, stub, stub)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	heldAddr := held.Addr().String()
	s.writeConfig(fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
---
apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: blocked}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
`, s.Listen, stable.URL, heldAddr, stable.URL))
	s.startWith(false)
	if v, err := tryVersion(s.Listen); err != nil || v != "v1" {
		t.Fatalf("the rollout that could bind does not serve: %q %v", v, err)
	}
	if code, body := s.readyz(); code != 503 || !strings.Contains(body, `rollout \"blocked\"`) || !strings.Contains(body, "address already in use") {
		t.Fatalf("/readyz = %d %s, want 503 naming the blocked rollout", code, body)
	}
	out := s.mustCLI("get", "rollout", "blocked")
	if !strings.Contains(out, "NOT LISTENING") || !strings.Contains(out, "address already in use") {
		t.Fatalf("get rollout does not say the listener is down:\n%s", out)
	}
	held.Close()
	eventually(t, 10*time.Second, "the blocked rollout to listen once its address is free", func() bool {
		v, err := tryVersion(heldAddr)
		return err == nil && v == "v1"
	})
	eventually(t, 5*time.Second, "/readyz ok", func() bool {
		code, _ := s.readyz()
		return code == 200
	})
}

// Issue 10, item 5: listen addresses that differ only in spelling clash.
func TestLintCatchesListenClashes(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "r.yaml")
	writeFile(t, f, `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: a}
spec:
  listen: 127.0.0.1:18080
  stable: {version: v1, endpoints: [http://127.0.0.1:9001]}
---
apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: b}
spec:
  listen: 0.0.0.0:18080
  stable: {version: v1, endpoints: [http://127.0.0.1:9001]}
---
apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: c}
spec:
  listen: localhost:18081
  stable: {version: v1, endpoints: [http://127.0.0.1:9001]}
---
apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: d}
spec:
  listen: 127.0.0.1:18081
  stable: {version: v1, endpoints: [http://127.0.0.1:9001]}
`)
	for _, args := range [][]string{{"lint", "-f", f}, {"serve", "-f", f, "--data-dir", filepath.Join(dir, "data"), "--admin", freeAddr(t)}} {
		out, code := run(t, args...)
		if code != 2 || !strings.Contains(out, `0.0.0.0:18080 takes the same socket as 127.0.0.1:18080 of Rollout "a"`) ||
			!strings.Contains(out, `127.0.0.1:18081 takes the same socket as localhost:18081 of Rollout "c"`) {
			t.Fatalf("%s: exit %d:\n%s", args[0], code, out)
		}
	}
}

// Issue 10, item 4: with the data directory's file system full, abort
// still sends everyone to stable at once, says that it is not saved and
// why, /readyz reports the store, and the abort is saved when space comes
// back.
func TestAbortWorksOnAFullDisk(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Getenv("COALMINE_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("mount a small tmpfs (needs root; COALMINE_REQUIRE_INTEGRATION=1): %v: %s", err, out)
		}
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })

	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.DataDir = filepath.Join(mnt, "data")
	s.start()
	s.mustCLI("set", "weight", "shop", "100")
	eventually(t, 5*time.Second, "the canary serving everyone", func() bool { return versionFor(t, s.Listen, "u1") == "v2" })

	// Fill the file system.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()

	out, code := s.cli("abort", "shop")
	if code != 0 || !strings.Contains(out, "aborted") || !strings.Contains(out, "not saved") || !strings.Contains(out, "no space left on device") {
		t.Fatalf("abort on a full disk: exit %d:\n%s", code, out)
	}
	for i := range 20 {
		if v := versionFor(t, s.Listen, fmt.Sprintf("u%d", i)); v != "v1" {
			t.Fatalf("after abort user u%d is still on %s", i, v)
		}
	}
	if code, body := s.readyz(); code != 503 || !strings.Contains(body, "store cannot write") {
		t.Fatalf("/readyz = %d %s, want 503 reporting the store", code, body)
	}
	// Another command fails with the real reason.
	out, code = s.cli("retry", "shop")
	if code == 0 || !strings.Contains(out, "no space left on device") {
		t.Fatalf("a command on a full disk: exit %d: %s", code, out)
	}

	os.Remove(filler)
	eventually(t, 15*time.Second, "the abort saved once space is back", func() bool {
		var v struct {
			Status struct {
				Unsaved string `json:"unsaved"`
				Phase   string `json:"phase"`
			} `json:"status"`
		}
		s.getJSON("/api/v1/rollouts/shop", &v)
		return v.Status.Unsaved == "" && v.Status.Phase == "Degraded"
	})
	if evs := eventsOf(s, "rollout-aborted"); len(evs) != 1 {
		t.Fatalf("rollout-aborted events %+v, want the one saved late", evs)
	}
	// It survives a restart: it really is on disk.
	s.signal(syscall.SIGKILL)
	s.waitExit(10 * time.Second)
	s.start()
	if st := s.status(); st.Phase != "Degraded" || st.Weight != 0 {
		t.Fatalf("after a restart the abort is gone: %+v", st)
	}
}
