package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/cli"
	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
)

// streamBuffer is a writer a running command writes to while the test
// reads it; waitFor blocks until the output satisfies a condition, woken by
// every write instead of polling.
type streamBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes chan struct{}
}

func newStreamBuffer() *streamBuffer { return &streamBuffer{writes: make(chan struct{}, 1)} }

func (s *streamBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.buf.Write(p)
	s.mu.Unlock()
	select {
	case s.writes <- struct{}{}:
	default: // a wake-up is pending already
	}
	return n, err
}

func (s *streamBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *streamBuffer) waitFor(t *testing.T, what string, cond func(string) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond(s.String()) {
		select {
		case <-s.writes:
		case <-deadline:
			t.Fatalf("waiting for %s; the output is:\n%s", what, s.String())
		}
	}
}

func (s *streamBuffer) waitForCount(t *testing.T, substr string, n int) {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("%d × %q", n, substr), func(out string) bool { return strings.Count(out, substr) >= n })
}

// running is a command started in the background.
type running struct {
	stdout, stderr *streamBuffer
	cancel         context.CancelFunc
	done           chan int
}

// start runs a command line against server in the background, until it
// ends or the test cancels it (as Ctrl-C does).
func start(t *testing.T, env cli.Env, server string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: newStreamBuffer(), stderr: newStreamBuffer(), cancel: cancel, done: make(chan int, 1)}
	env.Stdout, env.Stderr = r.stdout, r.stderr
	go func() { r.done <- runEnv(ctx, env, map[string]string{"COALMINE_SERVER": server}, args...) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait returns the exit code once the command ended by itself.
func (r *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("the command did not end; stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		return -1
	}
}

// stop cancels the command, as Ctrl-C does, and returns its exit code.
func (r *running) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

func (r *running) result(code int) result {
	return result{stdout: r.stdout.String(), stderr: r.stderr.String(), code: code}
}

var bg = context.Background()

// TestGetRolloutWatch follows checkout on a pipe while it is promoted
// through the API: a second full view follows the first after a blank
// line, and Ctrl-C ends the watch with exit status 0.
func TestGetRolloutWatch(t *testing.T) {
	srv, fake := newFakeServer(t, "")
	args := []string{"get", "rollout", "checkout", "-w"}
	r := start(t, cli.Env{}, srv.URL, args...)
	r.stdout.waitForCount(t, "Name:", 1)
	if _, err := fake.Promote(bg, "checkout", false); err != nil {
		t.Fatal(err)
	}
	r.stdout.waitForCount(t, "Name:", 2)
	res := r.result(r.stop(t))
	checkGolden(t, "get-rollout-watch", args, res, 0)
	if strings.Contains(res.stdout, "\x1b[") {
		t.Error("escape sequences on a pipe")
	}
}

// TestGetRolloutWatchTerminal checks the in-place redraw on a terminal:
// the second view moves the cursor up over the first, clears every line it
// writes and what is left below.
func TestGetRolloutWatchTerminal(t *testing.T) {
	srv, fake := newFakeServer(t, "")
	args := []string{"get", "rollout", "checkout", "-w"}
	r := start(t, cli.Env{IsTerminal: func(io.Writer) bool { return true }}, srv.URL, args...)
	r.stdout.waitForCount(t, "Name:", 1)
	first := r.stdout.String()
	if _, err := fake.Promote(bg, "checkout", false); err != nil {
		t.Fatal(err)
	}
	r.stdout.waitForCount(t, "Name:", 2)
	res := r.result(r.stop(t))

	if strings.Contains(first, "\x1b[1") || strings.HasPrefix(first, "\x1b[") && !strings.HasPrefix(first, "\x1b[2K") {
		t.Errorf("the first view moves the cursor: %q", first[:20])
	}
	lines := strings.Count(strings.TrimSuffix(first, "\x1b[J"), "\n")
	second := strings.TrimPrefix(res.stdout, first)
	if up := fmt.Sprintf("\x1b[%dA\r", lines); !strings.HasPrefix(second, up) {
		t.Errorf("the redraw does not start by moving up %d lines: %q", lines, second[:min(len(second), 20)])
	}
	for _, line := range strings.SplitAfter(strings.TrimSuffix(second, "\x1b[J"), "\n") {
		if line != "" && !strings.Contains(line, "\x1b[2K") {
			t.Errorf("a redrawn line is not cleared first: %q", line)
		}
	}
	if !strings.HasSuffix(second, "\x1b[J") {
		t.Errorf("the redraw does not clear below itself: %q", second[max(0, len(second)-20):])
	}
	if !strings.Contains(second, `Watching rollout "checkout"; Ctrl-C to stop.`) {
		t.Error("no footer on the terminal")
	}
	res.stdout = strings.NewReplacer("\x1b", "␛").Replace(res.stdout)
	checkGolden(t, "get-rollout-watch-tty", args, res, 0)
}

func TestGetRolloutWatchJSON(t *testing.T) {
	srv, fake := newFakeServer(t, "")
	r := start(t, cli.Env{}, srv.URL, "get", "rollout", "checkout", "-w", "-o", "json")
	r.stdout.waitForCount(t, "\n", 1)
	if _, err := fake.Pause(bg, "checkout"); err != nil {
		t.Fatal(err)
	}
	r.stdout.waitForCount(t, "\n", 2)
	if code := r.stop(t); code != 0 {
		t.Fatalf("exit code %d; stderr %s", code, r.stderr)
	}
	var phases []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout.String()), "\n") {
		var v model.View
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not one View per line: %v\n%s", err, line)
		}
		phases = append(phases, phaseOf(v))
	}
	if got := strings.Join(phases, ", "); got != "Paused (PauseStep), Paused (Manual)" {
		t.Errorf("phases = %s", got)
	}
}

func phaseOf(v model.View) string {
	return string(v.Status.Phase) + " (" + string(v.Status.PauseReason) + ")"
}

// TestStatusFollowsUntilCompleted: status prints a line per step change
// and exits 0 when the rollout completes.
func TestStatusFollowsUntilCompleted(t *testing.T) {
	srv, fake := newFakeServer(t, "")
	args := []string{"status", "checkout"}
	r := start(t, cli.Env{}, srv.URL, args...)
	r.stdout.waitForCount(t, "\n", 1)
	if _, err := fake.Promote(bg, "checkout", false); err != nil { // → the analysis step
		t.Fatal(err)
	}
	r.stdout.waitForCount(t, "\n", 2)
	if _, err := fake.Promote(bg, "checkout", false); err != nil { // → pause until promoted
		t.Fatal(err)
	}
	r.stdout.waitForCount(t, "\n", 3)
	if _, err := fake.Promote(bg, "checkout", false); err != nil { // → setWeight 100, completed
		t.Fatal(err)
	}
	checkGolden(t, "status-watch-completed", args, r.result(r.wait(t)), 0)
}

// TestStatusExitsOneWhenAborted: an abort while status waits ends it with
// exit status 1 and the reason.
func TestStatusExitsOneWhenAborted(t *testing.T) {
	srv, fake := newFakeServer(t, "")
	args := []string{"status", "checkout", "--timeout", "1m"}
	r := start(t, cli.Env{}, srv.URL, args...)
	r.stdout.waitForCount(t, "\n", 1)
	if _, err := fake.Pause(bg, "checkout"); err != nil {
		t.Fatal(err)
	}
	r.stdout.waitForCount(t, "\n", 2)
	if _, err := fake.Abort(bg, "checkout"); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "status-watch-aborted", args, r.result(r.wait(t)), 1)
}

// TestGetEventsWatch lists the history, then follows new events live.
func TestGetEventsWatch(t *testing.T) {
	srv, fake := newFakeServer(t, "")
	args := []string{"get", "events", "checkout", "--after", "6", "-w"}
	r := start(t, cli.Env{}, srv.URL, args...)
	r.stdout.waitForCount(t, "rollout-paused", 1)
	if _, err := fake.Promote(bg, "checkout", false); err != nil {
		t.Fatal(err)
	}
	r.stdout.waitForCount(t, "rollout-promoted", 1)
	if _, err := fake.Pause(bg, "checkout"); err != nil {
		t.Fatal(err)
	}
	r.stdout.waitForCount(t, "rollout-paused", 2)
	checkGolden(t, "get-events-watch", args, r.result(r.stop(t)), 0)
}

func TestGetEventsWatchJSON(t *testing.T) {
	srv, fake := newFakeServer(t, "")
	r := start(t, cli.Env{}, srv.URL, "get", "events", "payments", "--after", "5", "-w", "-o", "json")
	r.stdout.waitForCount(t, "\n", 1)
	if _, err := fake.Retry(bg, "payments"); err != nil {
		t.Fatal(err)
	}
	r.stdout.waitFor(t, "the retry's events", func(out string) bool { return strings.Contains(out, `"analysis-started"`) })
	if code := r.stop(t); code != 0 {
		t.Fatalf("exit code %d; stderr %s", code, r.stderr)
	}
	var seqs []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout.String()), "\n") {
		var e model.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not one Event per line: %v\n%s", err, line)
		}
		seqs = append(seqs, fmt.Sprintf("%d %s", e.Seq, e.Type))
	}
	want := "6 rollout-aborted, 7 rollout-started, 8 rollout-weight-changed, 9 rollout-step-completed, 10 analysis-started"
	if got := strings.Join(seqs, ", "); got != want {
		t.Errorf("events = %s\nwant     %s", got, want)
	}
}

// TestWatchGivesUpWhenTheServerGoesAway: a watch reconnects, says so on
// stderr, and exits 3 when the server stays away.
func TestWatchGivesUpWhenTheServerGoesAway(t *testing.T) {
	srv, fake := newFakeServer(t, "")
	env := cli.Env{Watch: client.WatchOptions{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, GiveUpAfter: 100 * time.Millisecond}}
	r := start(t, env, srv.URL, "get", "rollout", "checkout", "-w")
	r.stdout.waitForCount(t, "Name:", 1)
	if _, err := fake.Pause(bg, "checkout"); err != nil {
		t.Fatal(err)
	}
	r.stdout.waitForCount(t, "Name:", 2) // the stream is live
	// Refuse new connections before dropping the stream: a reconnect in
	// between would get a stream that srv.Close waits for forever.
	srv.Listener.Close()
	srv.CloseClientConnections()
	code := r.wait(t)
	if code != 3 {
		t.Errorf("exit code = %d, want 3; stderr:\n%s", code, r.stderr)
	}
	stderr := r.stderr.String()
	if !strings.Contains(stderr, `coalmine: rollout "checkout": lost the stream (`) || !strings.Contains(stderr, "reconnecting in 1ms") {
		t.Errorf("no reconnect note on stderr:\n%s", stderr)
	}
	last := stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:]
	if !strings.HasPrefix(last, "Error: cannot reach coalmine at ") || !strings.Contains(last, "gave up reconnecting after") {
		t.Errorf("last line = %q", last)
	}
}

// TestCompletionOfCommands completes rollout names for every verb.
func TestCompletionOfCommands(t *testing.T) {
	srv := newServer(t, "")
	for _, verb := range [][]string{{"promote"}, {"abort"}, {"status"}, {"undo"}, {"get", "events"}, {"get", "analysisruns"}, {"set", "canary"}} {
		args := append(append([]string{"__complete"}, verb...), "")
		res := run(t, map[string]string{"COALMINE_SERVER": srv.URL}, args...)
		if !strings.HasPrefix(res.stdout, "checkout\tPaused\npayments\tDegraded\nsearch\tHealthy\n") {
			t.Errorf("%v: completion = %q", verb, res.stdout)
		}
	}
}

// TestStatusInterrupted: Ctrl-C while status waits is exit 5, saying where
// the rollout stood.
func TestStatusInterrupted(t *testing.T) {
	srv, fake := newFakeServer(t, "")
	r := start(t, cli.Env{}, srv.URL, "status", "checkout")
	r.stdout.waitForCount(t, "\n", 1)
	if _, err := fake.Pause(bg, "checkout"); err != nil {
		t.Fatal(err)
	}
	r.stdout.waitForCount(t, "\n", 2) // the stream is live
	if code := r.stop(t); code != 5 {
		t.Errorf("exit code = %d, want 5", code)
	}
	want := "Error: interrupted while waiting for rollout \"checkout\": Paused (Manual) at step 4/8 (pause 5m), canary weight 1%\n"
	if got := r.stderr.String(); got != want {
		t.Errorf("stderr = %q\nwant     %q", got, want)
	}
}
