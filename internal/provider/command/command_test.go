package command_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/provider/command"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// script writes an executable shell script into dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func query(t *testing.T, p *command.Provider, c spec.CommandProvider) (provider.Result, error) {
	t.Helper()
	return p.Query(context.Background(), provider.Query{Rollout: "checkout", Metric: "smoke", Spec: spec.Provider{Command: &c}})
}

func newProvider(env ...string) *command.Provider {
	return command.New(command.Config{Environ: func() []string {
		return append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, env...)
	}})
}

func TestQueryResult(t *testing.T) {
	dir := t.TempDir()
	p := newProvider()
	for _, tt := range []struct {
		name, body string
		want       any
	}{
		{"json", `echo '{"passed": 12, "failed": 0}'`, map[string]any{"passed": 12.0, "failed": 0.0}},
		{"number", `printf '0.97'`, 0.97},
		{"text", `echo "I am OK"`, "I am OK"},
		{"nothing", `echo "logs go to stderr" >&2`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := query(t, p, spec.CommandProvider{Command: []string{script(t, dir, tt.name+".sh", tt.body)}})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Value, tt.want) {
				t.Errorf("result = %#v, want %#v", res.Value, tt.want)
			}
		})
	}
}

// TestQueryEnvironment: arguments reach the program as argv (no shell),
// env as given, the working directory is dir, and the server's COALMINE_
// variables (its admin token) are not passed on.
func TestQueryEnvironment(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "show.sh", `printf '{"args": "%s|%s", "target": "%s", "arg": "%s", "pwd": "%s", "token": "%s", "home": "%s"}' "$1" "$2" "$TARGET" "$COALMINE_ARG_URL" "$(pwd)" "$COALMINE_TOKEN" "$HOME"`)
	p := newProvider("COALMINE_TOKEN=s3cret", "HOME=/home/coalmine")
	res, err := query(t, p, spec.CommandProvider{
		Command: []string{"./show.sh", "a b; echo injected", "$(id)"},
		Dir:     dir,
		Env:     []spec.EnvVar{{Name: "COALMINE_ARG_URL", Value: "http://canary"}, {Name: "TARGET", Value: "t1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"args": "a b; echo injected|$(id)", "target": "t1", "arg": "http://canary", "pwd": dir, "token": "", "home": "/home/coalmine"}
	if !reflect.DeepEqual(res.Value, want) {
		t.Errorf("got %v\nwant %v", res.Value, want)
	}
}

func TestQueryNonZeroExitIsFailed(t *testing.T) {
	dir := t.TempDir()
	p := newProvider()
	_, err := query(t, p, spec.CommandProvider{Command: []string{
		script(t, dir, "fail.sh", `echo '{"ok": true}'; echo "checking /health" >&2; echo "GET /health: 503 Service Unavailable" >&2; exit 3`)}})
	if !errors.Is(err, provider.ErrFailed) {
		t.Fatalf("err = %v, want ErrFailed", err)
	}
	for _, want := range []string{"fail.sh exited with status 3 after ", "; stderr: checking /health\nGET /health: 503 Service Unavailable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	// Without stderr, the end of stdout explains it; a signal is a failure too.
	_, err = query(t, p, spec.CommandProvider{Command: []string{script(t, dir, "quiet.sh", `echo "2 of 12 checks failed"; kill -TERM $$`)}})
	if !errors.Is(err, provider.ErrFailed) || !strings.Contains(err.Error(), "was killed by signal 15 (terminated)") ||
		!strings.HasSuffix(err.Error(), "; stdout: 2 of 12 checks failed") {
		t.Errorf("err = %v", err)
	}
}

func TestQueryStderrTailIsBounded(t *testing.T) {
	dir := t.TempDir()
	p := command.New(command.Config{StderrTailBytes: 20})
	_, err := query(t, p, spec.CommandProvider{Command: []string{
		script(t, dir, "loud.sh", `i=0; while [ $i -lt 1000 ]; do echo "line $i" >&2; i=$((i+1)); done; echo "the real reason" >&2; exit 1`)}})
	if !errors.Is(err, provider.ErrFailed) || !strings.HasSuffix(err.Error(), "; stderr: …999\nthe real reason") {
		t.Errorf("err = %v", err)
	}
}

func TestQueryStdoutCap(t *testing.T) {
	dir := t.TempDir()
	p := command.New(command.Config{MaxStdoutBytes: 10})
	_, err := query(t, p, spec.CommandProvider{Command: []string{script(t, dir, "chatty.sh", `echo "starting the checks"; echo 1`)}})
	if err == nil || errors.Is(err, provider.ErrFailed) || !strings.Contains(err.Error(), "printed more than 10 bytes on stdout: print only the result there, and write logs to stderr") {
		t.Errorf("err = %v", err)
	}
}

// dies reports whether pid dies (or becomes a zombie waiting for its
// reaper). A SIGKILL is delivered asynchronously, so it gives the kernel
// time to finish the job; a process that was not killed never dies here.
func dies(pid int) bool {
	for range 1000 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		// pid (comm) STATE ...
		s := string(b)
		if strings.HasPrefix(strings.TrimSpace(s[strings.LastIndexByte(s, ')')+1:]), "Z") {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestQueryTimeoutKillsTheGroup: a command past its timeout is an Error
// (not a failure of the canary), and what it started dies with it.
func TestQueryTimeoutKillsTheGroup(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	p := newProvider()
	_, err := query(t, p, spec.CommandProvider{Timeout: ptr(spec.Duration(200 * time.Millisecond)), Command: []string{
		script(t, dir, "hang.sh", `echo "waiting for the canary" >&2; sleep 60 & echo $! > `+pidFile+`; wait`)}})
	if err == nil || errors.Is(err, provider.ErrFailed) {
		t.Fatalf("err = %v, want an Error", err)
	}
	if want := "did not finish within its timeout of 200ms, so it and its process group were killed: raise timeout, or make the check faster; stderr: waiting for the canary"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	if pid := readPid(t, pidFile); !dies(pid) {
		t.Errorf("the command's child %d outlived the timeout", pid)
	}
}

// TestQueryLeftoversAreKilled: a command that exits leaving a background
// process behind does not leak it.
func TestQueryLeftoversAreKilled(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	res, err := query(t, newProvider(), spec.CommandProvider{Command: []string{
		script(t, dir, "leave.sh", `sleep 60 >/dev/null 2>&1 & echo $! > `+pidFile+`; echo 1`)}})
	if err != nil || res.Value != 1.0 {
		t.Fatalf("result %v, err %v", res.Value, err)
	}
	if pid := readPid(t, pidFile); !dies(pid) {
		t.Errorf("the command's background process %d outlived it", pid)
	}
}

func TestQueryCannotRun(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "plain.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\necho 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noShebang := filepath.Join(dir, "noshebang")
	if err := os.WriteFile(noShebang, []byte("\x00\x01binary?"), 0o755); err != nil {
		t.Fatal(err)
	}
	badInterpreter := script(t, dir, "python9.sh", "")
	if err := os.WriteFile(badInterpreter, []byte("#!/usr/bin/python9\nprint(1)\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := newProvider()
	for _, tt := range []struct {
		name string
		c    spec.CommandProvider
		want string
	}{
		{"not in PATH", spec.CommandProvider{Command: []string{"no-such-check"}},
			"command no-such-check: not found in PATH (/usr/local/bin:/usr/bin:/bin): install it on the server, write its absolute path, or set PATH in env"},
		{"PATH from env", spec.CommandProvider{Command: []string{"plain.sh"}, Env: []spec.EnvVar{{Name: "PATH", Value: dir}}},
			"command plain.sh: " + notExec + " was found in PATH but is not executable: chmod +x it, or run it through its interpreter, such as [\"sh\", \"" + notExec + "\"]"},
		{"a bare name is not looked up in dir", spec.CommandProvider{Command: []string{"plain.sh"}, Dir: dir},
			"command plain.sh: not found in PATH; to run " + notExec + " from dir, write ./plain.sh"},
		{"missing file", spec.CommandProvider{Command: []string{"./smoke.sh"}, Dir: dir},
			"command ./smoke.sh: ./smoke.sh (" + filepath.Join(dir, "smoke.sh") + ") does not exist on this server: check command[0] and dir"},
		{"not executable", spec.CommandProvider{Command: []string{notExec}},
			"command " + notExec + ": " + notExec + " is not executable: chmod +x it"},
		{"a directory", spec.CommandProvider{Command: []string{dir}},
			"is a directory, not a program"},
		{"no #! line", spec.CommandProvider{Command: []string{noShebang}},
			"is not a program this system can run: a script needs a #! line (such as #!/bin/sh), or run it through its interpreter"},
		{"missing interpreter", spec.CommandProvider{Command: []string{badInterpreter}},
			"no such file; for a script, check the interpreter on its #! line"},
		{"missing dir", spec.CommandProvider{Command: []string{"true"}, Dir: filepath.Join(dir, "nope")},
			"command true: dir " + filepath.Join(dir, "nope") + " does not exist on this server: create it, or change dir"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := query(t, p, tt.c)
			if err == nil || errors.Is(err, provider.ErrFailed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant an Error containing %q", err, tt.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	got := command.Environment([]string{"PATH=/bin", "COALMINE_TOKEN=x", "coalmine_data_dir=y", "HOME=/root"},
		[]spec.EnvVar{{Name: "COALMINE_ARG_URL", Value: "http://c"}, {Name: "PATH", Value: "/opt/bin"}})
	want := []string{"PATH=/bin", "HOME=/root", "COALMINE_ARG_URL=http://c", "PATH=/opt/bin"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Environment = %q, want %q", got, want)
	}
}

func ptr[T any](v T) *T { return &v }
