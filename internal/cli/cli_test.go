package cli_test

import (
	"bytes"
	"context"
	"flag"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/api/apitest"
	"github.com/coalmine-dev/coalmine/internal/cli"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// now is the injected clock: two minutes after the fixtures' epoch.
func now() time.Time { return apitest.Epoch.Add(2 * time.Minute) }

// newServer serves the real API handler over the fake fixtures.
func newServer(t *testing.T, token string) *httptest.Server {
	t.Helper()
	fake := apitest.NewFake(now, apitest.Fixtures()...)
	srv := httptest.NewServer(api.New(api.Config{Commands: fake, Token: token}))
	t.Cleanup(srv.Close)
	return srv
}

type result struct {
	stdout, stderr string
	code           int
}

// run executes the command tree as main does, with env variables from vars.
func run(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := cli.NewRoot(cli.Env{
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string { return vars[k] },
		Now:    now,
	})
	root.SetArgs(args)
	code := cli.Execute(context.Background(), root)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// golden compares got with testdata/name.golden, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	srv := newServer(t, "")
	authed := newServer(t, "t0ken")
	env := map[string]string{"COALMINE_SERVER": srv.URL}
	tests := []struct {
		name string
		vars map[string]string
		args []string
		code int
	}{
		{"get-rollouts", env, []string{"get", "rollouts"}, 0},
		{"get-rollouts-json", env, []string{"get", "rollouts", "-o", "json"}, 0},
		{"get-rollout-text", env, []string{"get", "rollout", "checkout"}, 0},
		{"get-rollout-degraded", env, []string{"get", "rollout", "payments"}, 0},
		{"get-rollout-healthy", env, []string{"get", "rollout", "search"}, 0},
		{"get-rollout-json", env, []string{"get", "rollout", "checkout", "-o", "json"}, 0},
		{"get-rollout-yaml", env, []string{"get", "rollout", "checkout", "-o", "yaml"}, 0},
		{"get-rollout-not-found", env, []string{"get", "rollout", "nope"}, 1},
		{"get-rollout-missing-name", env, []string{"get", "rollout"}, 2},
		{"get-bad-output", env, []string{"get", "rollouts", "-o", "xml"}, 2},
		{"get-unknown-resource", env, []string{"get", "rollots"}, 2},
		{"unknown-flag", env, []string{"get", "rollouts", "--nope"}, 2},
		{"set-weight", env, []string{"set", "weight", "checkout", "10"}, 0},
		{"set-weight-percent-sign", env, []string{"set", "weight", "checkout", "2.5%"}, 0},
		{"set-weight-out-of-range", env, []string{"set", "weight", "checkout", "150"}, 2},
		{"set-weight-too-precise", env, []string{"set", "weight", "checkout", "2.555"}, 2},
		{"set-weight-not-a-number", env, []string{"set", "weight", "checkout", "ten"}, 2},
		{"set-weight-no-canary", env, []string{"set", "weight", "search", "5"}, 1},
		{"unauthorized", map[string]string{"COALMINE_SERVER": authed.URL}, []string{"get", "rollouts"}, 4},
		{"wrong-token", map[string]string{"COALMINE_SERVER": authed.URL, "COALMINE_TOKEN": "nope"}, []string{"get", "rollouts"}, 4},
		{"token-from-env", map[string]string{"COALMINE_SERVER": authed.URL, "COALMINE_TOKEN": "t0ken"}, []string{"set", "weight", "checkout", "1"}, 0},
		{"help-get-rollout", nil, []string{"get", "rollout", "--help"}, 0},
		{"help-set-weight", nil, []string{"set", "weight", "--help"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, tt.vars, tt.args...)
			if res.code != tt.code {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", res.code, tt.code, res.stdout, res.stderr)
			}
			out := "$ coalmine " + strings.Join(tt.args, " ") + "\n" +
				"--- exit " + string(rune('0'+res.code)) + "\n" +
				"--- stdout\n" + res.stdout +
				"--- stderr\n" + res.stderr
			golden(t, tt.name, out)
			if res.code != 0 {
				first, _, _ := strings.Cut(res.stderr, "\n")
				if !strings.HasPrefix(first, "Error: ") {
					t.Errorf("stderr does not start with one Error: line: %q", res.stderr)
				}
			}
		})
	}
}

func TestServerFlagWinsOverEnv(t *testing.T) {
	srv := newServer(t, "")
	res := run(t, map[string]string{"COALMINE_SERVER": "http://127.0.0.1:1"}, "get", "rollouts", "--server", srv.URL)
	if res.code != 0 || !strings.Contains(res.stdout, "checkout") {
		t.Errorf("--server did not win over COALMINE_SERVER: %+v", res)
	}
	authed := newServer(t, "right")
	res = run(t, map[string]string{"COALMINE_SERVER": authed.URL, "COALMINE_TOKEN": "wrong"}, "get", "rollouts", "--token", "right")
	if res.code != 0 {
		t.Errorf("--token did not win over COALMINE_TOKEN: %+v", res)
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	res := run(t, nil, "get", "rollouts", "--server", "http://"+addr)
	if res.code != 3 {
		t.Errorf("exit code = %d, want 3", res.code)
	}
	want := "Error: cannot reach coalmine at http://" + addr + ": connection refused; is `coalmine serve` running? set --server or COALMINE_SERVER\n"
	if res.stderr != want {
		t.Errorf("stderr = %q\nwant     %q", res.stderr, want)
	}
	if res.stdout != "" {
		t.Errorf("stdout = %q, want nothing", res.stdout)
	}
}

func TestInvalidServerIsUsageError(t *testing.T) {
	res := run(t, map[string]string{"COALMINE_SERVER": "ftp://x"}, "get", "rollouts")
	if res.code != 2 || !strings.Contains(res.stderr, `invalid server address "ftp://x"`) {
		t.Errorf("got %+v, want exit 2 and an invalid server address error", res)
	}
}

func TestSetWeightValidatesBeforeSending(t *testing.T) {
	// Nothing listens at port 1: a request would exit 3, local validation 2.
	res := run(t, nil, "set", "weight", "checkout", "NaN", "--server", "http://127.0.0.1:1")
	if res.code != 2 {
		t.Errorf("exit code = %d, want 2 (validated before any request); stderr %s", res.code, res.stderr)
	}
}

func TestVersion(t *testing.T) {
	res := run(t, nil, "version")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "coalmine dev (go") {
		t.Errorf("version = %+v", res)
	}
	res = run(t, nil, "version", "-o", "json")
	if res.code != 0 || !strings.Contains(res.stdout, `"version": "dev"`) {
		t.Errorf("version -o json = %+v", res)
	}
}

func TestRootWithoutArgsPrintsHelp(t *testing.T) {
	res := run(t, nil)
	if res.code != 0 || !strings.Contains(res.stdout, "Available Commands:") {
		t.Errorf("coalmine = %+v", res)
	}
	res = run(t, nil, "nonsense")
	if res.code != 2 || !strings.HasPrefix(res.stderr, `Error: unknown command "nonsense" for "coalmine"`) {
		t.Errorf("coalmine nonsense = %+v", res)
	}
}

func TestCompletion(t *testing.T) {
	res := run(t, nil, "completion", "bash")
	if res.code != 0 || !strings.Contains(res.stdout, "bash completion") {
		t.Errorf("completion bash: code %d, %.80q", res.code, res.stdout)
	}
	srv := newServer(t, "")
	res = run(t, map[string]string{"COALMINE_SERVER": srv.URL}, "__complete", "get", "rollout", "")
	if !strings.HasPrefix(res.stdout, "checkout\tPaused\npayments\tDegraded\nsearch\tHealthy\n") {
		t.Errorf("rollout name completion = %q", res.stdout)
	}
}

func TestExitCode(t *testing.T) {
	if got := cli.ExitCode(nil); got != 0 {
		t.Errorf("ExitCode(nil) = %d", got)
	}
	if got := cli.ExitCode(cli.Exit(1, context.Canceled)); got != 1 {
		t.Errorf("ExitCode(Exit(1)) = %d", got)
	}
	if got := cli.ExitCode(&cli.UsageError{Err: context.Canceled}); got != 2 {
		t.Errorf("ExitCode(UsageError) = %d", got)
	}
}
