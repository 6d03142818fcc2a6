package cli_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/api/apitest"
	"github.com/coalmine-dev/coalmine/internal/cli"
	"github.com/coalmine-dev/coalmine/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// now is the injected clock: two minutes after the fixtures' epoch.
func now() time.Time { return apitest.Epoch.Add(2 * time.Minute) }

// newServer serves the real API handler over the fake fixtures, with
// their events, history and templates.
func newServer(t *testing.T, token string) *httptest.Server {
	t.Helper()
	srv, _ := newFakeServer(t, token)
	return srv
}

// newFakeServer is newServer that also returns the Fake, for tests that
// change the rollouts while a command watches.
func newFakeServer(t *testing.T, token string) (*httptest.Server, *apitest.Fake) {
	t.Helper()
	fake := apitest.NewFixtures(now)
	srv := httptest.NewServer(api.New(api.Config{Commands: fake, Token: token, Replicas: apitest.ReplicasAt(now)}))
	t.Cleanup(srv.Close)
	return srv, fake
}

type result struct {
	stdout, stderr string
	code           int
}

// run executes the command tree as main does, with env variables from vars.
func run(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runEnv(context.Background(), cli.Env{Stdout: &stdout, Stderr: &stderr}, vars, args...)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// runEnv is run with a context and an Env whose Stdout and Stderr the
// caller chose; Getenv and Now are filled in.
func runEnv(ctx context.Context, env cli.Env, vars map[string]string, args ...string) int {
	env.Getenv = func(k string) string { return vars[k] }
	env.Now = now
	root := cli.NewRoot(env)
	root.SetArgs(args)
	return cli.Execute(ctx, root)
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

// goldenCase is one command line run against a fresh server over the
// fixtures; its exit code, stdout and stderr are compared with
// testdata/NAME.golden.
type goldenCase struct {
	name string
	args []string
	code int
	// serverToken makes the server require a token; token is then
	// COALMINE_TOKEN.
	serverToken, token string
	// noServer runs without COALMINE_SERVER (help, local validation).
	noServer bool
	// setup are command lines run first, successfully, on the same server.
	setup [][]string
}

func TestGolden(t *testing.T) {
	tests := []goldenCase{
		// get
		{name: "get-rollouts", args: []string{"get", "rollouts"}},
		{name: "get-rollouts-json", args: []string{"get", "rollouts", "-o", "json"}},
		{name: "get-rollout-text", args: []string{"get", "rollout", "checkout"}},
		{name: "get-rollout-degraded", args: []string{"get", "rollout", "payments"}},
		{name: "get-rollout-healthy", args: []string{"get", "rollout", "search"}},
		{name: "get-rollout-json", args: []string{"get", "rollout", "checkout", "-o", "json"}},
		{name: "get-rollout-yaml", args: []string{"get", "rollout", "checkout", "-o", "yaml"}},
		{name: "get-rollout-not-found", args: []string{"get", "rollout", "nope"}, code: 1},
		{name: "get-rollout-missing-name", args: []string{"get", "rollout"}, code: 2},
		{name: "get-bad-output", args: []string{"get", "rollouts", "-o", "xml"}, code: 2},
		{name: "get-unknown-resource", args: []string{"get", "rollots"}, code: 2},
		{name: "unknown-flag", args: []string{"get", "rollouts", "--nope"}, code: 2},
		{name: "get-analysisruns", args: []string{"get", "analysisruns", "checkout"}},
		{name: "get-analysisruns-none", args: []string{"get", "analysisruns", "search"}},
		{name: "get-analysisruns-json", args: []string{"get", "analysisruns", "payments", "-o", "json"}},
		{name: "get-analysisruns-not-found", args: []string{"get", "analysisruns", "nope"}, code: 1},
		{name: "get-events", args: []string{"get", "events", "checkout"}},
		{name: "get-events-after", args: []string{"get", "events", "payments", "--after", "4"}},
		{name: "get-events-after-last", args: []string{"get", "events", "search", "--after", "8"}},
		{name: "get-events-json", args: []string{"get", "events", "payments", "--after", "5", "-o", "json"}},
		{name: "get-events-yaml", args: []string{"get", "events", "payments", "--after", "5", "-o", "yaml"}},
		{name: "get-events-bad-after", args: []string{"get", "events", "payments", "--after", "-1"}, code: 2},
		{name: "get-replicas", args: []string{"get", "replicas"}},
		{name: "get-replicas-json", args: []string{"get", "replicas", "-o", "json"}},
		{name: "get-replicas-yaml", args: []string{"get", "replica", "-o", "yaml"}},
		{name: "get-replicas-unauthorized", args: []string{"get", "replicas"}, serverToken: "t0ken", code: 4},

		// set
		{name: "set-weight", args: []string{"set", "weight", "checkout", "10"}},
		{name: "set-weight-percent-sign", args: []string{"set", "weight", "checkout", "2.5%"}},
		{name: "set-weight-out-of-range", args: []string{"set", "weight", "checkout", "150"}, code: 2},
		{name: "set-weight-too-precise", args: []string{"set", "weight", "checkout", "2.555"}, code: 2},
		{name: "set-weight-not-a-number", args: []string{"set", "weight", "checkout", "ten"}, code: 2},
		{name: "set-weight-no-canary", args: []string{"set", "weight", "search", "5"}, code: 1},
		{name: "set-canary", args: []string{"set", "canary", "checkout", "v1.6.0", "--endpoint", "http://127.0.0.1:9004", "--endpoint", "http://127.0.0.1:9005"}},
		{name: "set-canary-no-endpoint", args: []string{"set", "canary", "checkout", "v1.6.0"}, code: 2},
		{name: "set-canary-bad-endpoint", args: []string{"set", "canary", "checkout", "v1.6.0", "--endpoint", "ftp://x"}, code: 2},
		{name: "set-canary-same", args: []string{"set", "canary", "checkout", "v1.5.0", "--endpoint", "http://127.0.0.1:9002", "--endpoint", "http://127.0.0.1:9003"}, code: 1},

		// commands
		{name: "promote", args: []string{"promote", "checkout"}},
		{name: "promote-full", args: []string{"promote", "checkout", "--full"}},
		{name: "promote-healthy", args: []string{"promote", "search"}, code: 1},
		{name: "promote-degraded", args: []string{"promote", "payments"}, code: 1},
		{name: "promote-not-found", args: []string{"promote", "nope"}, code: 1},
		{name: "promote-missing-name", args: []string{"promote"}, code: 2},
		{name: "abort", args: []string{"abort", "checkout"}},
		{name: "abort-aborted", args: []string{"abort", "payments"}, code: 1},
		{name: "retry", args: []string{"retry", "payments"}},
		{name: "retry-not-aborted", args: []string{"retry", "checkout"}, code: 1},
		{name: "pause", args: []string{"pause", "checkout"}},
		{name: "resume-not-paused", args: []string{"resume", "checkout"}, code: 1},
		{name: "undo", args: []string{"undo", "checkout"}},
		{name: "undo-aborted-canary", args: []string{"undo", "payments"}},
		{name: "undo-to-revision", args: []string{"undo", "checkout", "--to-revision", "2"}},
		{name: "undo-unknown-revision", args: []string{"undo", "checkout", "--to-revision", "9"}, code: 2},
		{name: "undo-negative-revision", args: []string{"undo", "checkout", "--to-revision", "-1"}, code: 2},

		// status
		{name: "status-healthy", args: []string{"status", "search"}},
		{name: "status-degraded", args: []string{"status", "payments"}, code: 1},
		{name: "status-timeout", args: []string{"status", "checkout", "--timeout", "50ms"}, code: 5},
		{name: "status-no-watch-paused", args: []string{"status", "checkout", "--watch=false"}, code: 5},
		{name: "status-no-watch-healthy", args: []string{"status", "search", "--watch=false"}},
		{name: "status-no-watch-degraded", args: []string{"status", "payments", "--watch=false"}, code: 1},
		{name: "status-not-found", args: []string{"status", "nope"}, code: 1},

		// apply
		{name: "apply", args: []string{"apply", "-f", "testdata/apply/checkout.yaml", "-f", "testdata/apply/templates.yaml"}},
		{name: "apply-unchanged", args: []string{"apply", "-f", "testdata/apply/search.yaml"},
			setup: [][]string{{"apply", "-f", "testdata/apply/search.yaml"}}},
		{name: "apply-new-revision", args: []string{"apply", "-f", "testdata/apply/search-v1.yaml"}},
		{name: "apply-template-from-server", args: []string{"apply", "-f", "testdata/apply/checkout.yaml"}},
		{name: "apply-invalid", args: []string{"apply", "-f", "testdata/apply/invalid.yaml"}, code: 2},
		{name: "apply-missing-template", args: []string{"apply", "-f", "testdata/apply/missing-template.yaml"}, code: 2},
		{name: "apply-no-files", args: []string{"apply"}, code: 2},
		{name: "apply-positional", args: []string{"apply", "checkout.yaml"}, code: 2},

		// authentication and the environment
		{name: "unauthorized", args: []string{"get", "rollouts"}, serverToken: "t0ken", code: 4},
		{name: "wrong-token", args: []string{"get", "rollouts"}, serverToken: "t0ken", token: "nope", code: 4},
		{name: "token-from-env", args: []string{"set", "weight", "checkout", "1"}, serverToken: "t0ken", token: "t0ken"},
		{name: "promote-unauthorized", args: []string{"promote", "checkout"}, serverToken: "t0ken", code: 4},

		// help
		{name: "help-get-rollout", args: []string{"get", "rollout", "--help"}, noServer: true},
		{name: "help-set-weight", args: []string{"set", "weight", "--help"}, noServer: true},
		{name: "help-set-canary", args: []string{"set", "canary", "--help"}, noServer: true},
		{name: "help-promote", args: []string{"promote", "--help"}, noServer: true},
		{name: "help-status", args: []string{"status", "--help"}, noServer: true},
		{name: "help-apply", args: []string{"apply", "--help"}, noServer: true},
		{name: "help-get-events", args: []string{"get", "events", "--help"}, noServer: true},
		{name: "help-get-replicas", args: []string{"get", "replicas", "--help"}, noServer: true},
		{name: "help-root", args: []string{"--help"}, noServer: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			if !tt.noServer {
				vars["COALMINE_SERVER"] = newServer(t, tt.serverToken).URL
			}
			if tt.token != "" {
				vars["COALMINE_TOKEN"] = tt.token
			}
			for _, args := range tt.setup {
				if res := run(t, vars, args...); res.code != 0 {
					t.Fatalf("setup %q: %+v", args, res)
				}
			}
			res := run(t, vars, tt.args...)
			checkGolden(t, tt.name, tt.args, res, tt.code)
		})
	}
}

// checkGolden compares a run with its golden file and checks its exit
// code and the one-line error rule.
func checkGolden(t *testing.T, name string, args []string, res result, code int) {
	t.Helper()
	if res.code != code {
		t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", res.code, code, res.stdout, res.stderr)
	}
	out := "$ coalmine " + strings.Join(args, " ") + "\n" +
		"--- exit " + strconv.Itoa(res.code) + "\n" +
		"--- stdout\n" + res.stdout +
		"--- stderr\n" + res.stderr
	golden(t, name, out)
	if res.code != 0 && res.stderr != "" {
		first, _, _ := strings.Cut(res.stderr, "\n")
		if !strings.HasPrefix(first, "Error: ") && !strings.HasPrefix(first, "testdata/") {
			t.Errorf("stderr does not start with one Error: line: %q", res.stderr)
		}
	}
}

// TestApplyRejectedByTheServer: a document the files accept but the server
// rejects (here: its listen address is taken by a rollout the files do not
// know) exits 2 and names the file and the field; what came before it was
// applied.
func TestApplyRejectedByTheServer(t *testing.T) {
	fake := apitest.NewFixtures(now)
	handler := api.New(api.Config{Commands: fake})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/api/v1/rollouts/orders" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"spec.listen: 127.0.0.1:8090 is already the listener of rollout \"billing\"","field":"spec.listen",`+
				`"details":[{"field":"spec.listen","error":"127.0.0.1:8090 is already the listener of rollout \"billing\""}]}`)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	args := []string{"apply", "-f", "testdata/apply/checkout.yaml"}
	res := run(t, map[string]string{"COALMINE_SERVER": srv.URL}, args...)
	checkGolden(t, "apply-rejected", args, res, 2)
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

// TestGetReplicasOfAnOlderServer: a server without GET /api/v1/replicas
// is told apart from a missing rollout.
func TestGetReplicasOfAnOlderServer(t *testing.T) {
	srv := httptest.NewServer(api.New(api.Config{Commands: apitest.NewFixtures(now)}))
	t.Cleanup(srv.Close)
	args := []string{"get", "replicas"}
	res := run(t, map[string]string{"COALMINE_SERVER": srv.URL}, args...)
	res.stderr = strings.ReplaceAll(res.stderr, srv.URL, "http://127.0.0.1:PORT")
	checkGolden(t, "get-replicas-older-server", args, res, 1)
}

// TestGetReplicasEmpty: no record yet (a server that just started and
// could not save its first heartbeat).
func TestGetReplicasEmpty(t *testing.T) {
	srv := httptest.NewServer(api.New(api.Config{Commands: apitest.NewFixtures(now),
		Replicas: func(context.Context) ([]model.Replica, error) { return nil, nil }}))
	t.Cleanup(srv.Close)
	args := []string{"get", "replicas"}
	checkGolden(t, "get-replicas-none", args, run(t, map[string]string{"COALMINE_SERVER": srv.URL}, args...), 0)
}
