// Package command answers analysis queries by running a program on the
// server (SPEC §5.3 `command: {command, env, dir, timeout}`), coalmine's
// counterpart of Argo's Job provider: smoke tests and synthetic checks.
//
// The program is run directly, without a shell, with the metric's
// arguments (already substituted), in its dir, with the server's
// environment minus its COALMINE_ variables, plus the metric's env (which
// the resolver leads with COALMINE_ARG_<NAME> for every analysis argument
// and COALMINE_ROLLOUT, COALMINE_CANARY_VERSION, COALMINE_STABLE_VERSION,
// COALMINE_METRIC). Stdin is empty.
//
// The outcome:
//   - exit 0: the result is stdout, parsed (see ParseResult), for the
//     metric's conditions; without conditions the measurement is
//     Successful;
//   - a non-zero exit or death by a signal: provider.ErrFailed, so the
//     measurement is Failed whatever the conditions say, as a failed Job
//     is in Argo; the message keeps the end of stderr;
//   - the timeout (spec.DefaultCommandTimeout when unset): the command's
//     whole process group is killed and the measurement is an Error
//     (retried, counted by consecutiveErrorLimit);
//   - a program that cannot be found or run: an Error saying what to fix.
//
// When the command ends, whatever it left running in its process group is
// killed (on Linux, before the command is reaped, so the group id cannot
// have been reused), so measurements never pile up background processes.
package command

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Defaults for what a metric or the Config leaves unset.
const (
	DefaultMaxStdoutBytes  = 1 << 20
	DefaultStderrTailBytes = 4 << 10
	// pipeWait bounds how long the output of a finished command is waited
	// for when something outside its process group (a daemon it started)
	// still holds stdout or stderr open.
	pipeWait = 2 * time.Second
)

// Config configures a Provider. The zero value is usable.
type Config struct {
	// Environ is the environment commands start from, os.Environ when
	// nil. Its COALMINE_ variables are dropped: they configure the server
	// (COALMINE_TOKEN is the admin API's key) and are not the command's.
	Environ func() []string
	// MaxStdoutBytes caps the result a command may print; more is an
	// Error. DefaultMaxStdoutBytes when 0.
	MaxStdoutBytes int
	// StderrTailBytes is how much of the end of stderr a failure's message
	// keeps. DefaultStderrTailBytes when 0.
	StderrTailBytes int
}

// Provider runs commands. It is safe for concurrent use.
type Provider struct {
	environ    func() []string
	maxStdout  int
	stderrTail int
}

var _ provider.Provider = (*Provider)(nil)

// New returns a command provider.
func New(cfg Config) *Provider {
	p := &Provider{environ: cfg.Environ, maxStdout: cfg.MaxStdoutBytes, stderrTail: cfg.StderrTailBytes}
	if p.environ == nil {
		p.environ = os.Environ
	}
	if p.maxStdout <= 0 {
		p.maxStdout = DefaultMaxStdoutBytes
	}
	if p.stderrTail <= 0 {
		p.stderrTail = DefaultStderrTailBytes
	}
	return p
}

// Query runs the metric's command once.
func (p *Provider) Query(ctx context.Context, q provider.Query) (provider.Result, error) {
	c := q.Spec.Command
	if c == nil || len(c.Command) == 0 {
		return provider.Result{}, fmt.Errorf("command query for metric %q: the metric has no command", q.Metric)
	}
	name := c.Command[0]
	fail := func(err error) (provider.Result, error) {
		return provider.Result{}, fmt.Errorf("command %s: %w", name, err)
	}
	env := Environment(p.environ(), c.Env)
	if c.Dir != "" {
		if err := checkDir(c.Dir); err != nil {
			return fail(err)
		}
	}
	path, err := findProgram(name, c.Dir, lastValue(env, "PATH"))
	if err != nil {
		return fail(err)
	}

	stdout := &capped{max: p.maxStdout}
	stderr := &tail{max: p.stderrTail}
	cmd := &exec.Cmd{Path: path, Args: c.Command, Env: env, Dir: c.Dir, Stdout: stdout, Stderr: stderr, WaitDelay: pipeWait}
	setProcessGroup(cmd)
	timeout := c.RunTimeout()
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return fail(startError(path, err))
	}
	stopped, waitErr := run(runCtx, cmd)
	took := time.Since(started).Round(time.Millisecond)

	if stopped {
		if ctx.Err() != nil {
			return fail(fmt.Errorf("stopped after %s because the measurement was cancelled (%v); its process group was killed%s", took, ctx.Err(), output(stderr, stdout)))
		}
		return fail(fmt.Errorf("did not finish within its timeout of %s, so it and its process group were killed: raise timeout, or make the check faster%s", timeout, output(stderr, stdout)))
	}
	var exit *exec.ExitError
	if errors.As(waitErr, &exit) {
		return provider.Result{}, provider.Failed("command %s %s after %s%s", name, exitDescription(exit), took, output(stderr, stdout))
	}
	if waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay) {
		return fail(waitErr)
	}
	if stdout.overflow {
		return fail(fmt.Errorf("printed more than %d bytes on stdout: print only the result there, and write logs to stderr", p.maxStdout))
	}
	return provider.Result{Value: ParseResult(stdout.buf)}, nil
}

// Environment is the environment of a command: base without its
// COALMINE_ variables, then env in order (a later name replaces an earlier
// one, as os/exec does).
func Environment(base []string, env []spec.EnvVar) []string {
	out := make([]string, 0, len(base)+len(env))
	for _, kv := range base {
		if !strings.HasPrefix(strings.ToUpper(kv), spec.EnvPrefix) {
			out = append(out, kv)
		}
	}
	for _, e := range env {
		out = append(out, e.Name+"="+e.Value)
	}
	return out
}

// lastValue is the value of name in env, the last one when it is set
// several times (the one the command sees).
func lastValue(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("dir %s does not exist on this server: create it, or change dir", dir)
	case err != nil:
		return fmt.Errorf("dir %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("dir %s is not a directory", dir)
	}
	return nil
}

// findProgram resolves command[0] as lint documents it: a name without a
// slash is looked up in the command's PATH (absolute entries only, so a
// PATH with "." never runs a file from whatever the working directory
// is), an absolute path is used as it is, and a relative path is joined
// to dir.
func findProgram(name, dir, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		full := name
		if !filepath.IsAbs(name) {
			if dir == "" {
				return "", fmt.Errorf("the program is a relative path and the metric has no dir: write its absolute path, or set dir")
			}
			full = filepath.Join(dir, name)
		}
		return full, checkProgram(name, full)
	}
	var notExecutable string
	for _, d := range filepath.SplitList(pathList) {
		if !filepath.IsAbs(d) {
			continue
		}
		full := filepath.Join(d, name)
		fi, err := os.Stat(full)
		if err != nil || fi.IsDir() {
			continue
		}
		if fi.Mode()&0o111 == 0 {
			if notExecutable == "" {
				notExecutable = full
			}
			continue
		}
		return full, nil
	}
	if notExecutable != "" {
		return "", fmt.Errorf("%s was found in PATH but is not executable: chmod +x it, or run it through its interpreter, such as [\"sh\", %q]", notExecutable, notExecutable)
	}
	if dir != "" {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && !fi.IsDir() {
			// As in a shell, a bare name is never looked up in the working
			// directory.
			return "", fmt.Errorf("not found in PATH; to run %s from dir, write ./%s", filepath.Join(dir, name), name)
		}
	}
	if pathList == "" {
		return "", fmt.Errorf("not found: PATH is empty, so only an absolute path can name the program; write one, or set PATH in env")
	}
	return "", fmt.Errorf("not found in PATH (%s): install it on the server, write its absolute path, or set PATH in env", pathList)
}

func checkProgram(name, full string) error {
	where := full
	if where != name {
		where = fmt.Sprintf("%s (%s)", name, full)
	}
	fi, err := os.Stat(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist on this server: check command[0] and dir", where)
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory, not a program", where)
	case fi.Mode()&0o111 == 0:
		return fmt.Errorf("%s is not executable: chmod +x it, or run it through its interpreter, such as [\"sh\", %q]", where, full)
	}
	return nil
}

// startError explains why a program that exists did not start.
func startError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOEXEC):
		return fmt.Errorf("%s is not a program this system can run: a script needs a #! line (such as #!/bin/sh), or run it through its interpreter", path)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot start %s: no such file; for a script, check the interpreter on its #! line", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot start %s: permission denied; the server's user must be allowed to execute it (and its #! interpreter)", path)
	}
	return fmt.Errorf("cannot start %s: %w", path, err)
}

// output is the part of a failed command's output a message keeps: the
// end of stderr, or of stdout when stderr is empty (many scripts explain
// themselves on stdout).
func output(stderr *tail, stdout *capped) string {
	if s := stderr.String(); s != "" {
		return "; stderr: " + s
	}
	if s := tailString(stdout.buf, stderr.max); s != "" {
		return "; stdout: " + s
	}
	return ""
}
