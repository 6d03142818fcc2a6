package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
)

// Exit codes (SPEC §6.1).
const (
	ExitOK           = 0
	ExitFailure      = 1 // any other failure, or a failed/aborted outcome
	ExitUsage        = 2 // usage or validation error
	ExitUnreachable  = 3 // cannot reach the server
	ExitUnauthorized = 4
	// ExitNotDone: `status` gave up (--timeout, Ctrl-C) or, with
	// --watch=false, found the rollout still in progress. SPEC §6.1 gives
	// it 2, which is also every usage mistake; a script must tell "wait
	// longer" from "you called me wrong", so it has its own code.
	ExitNotDone = 5
)

// UsageError is a mistake in how a command was called: an unknown command
// or flag, a missing argument. Execute prints the command's usage after it
// and exits with ExitUsage.
type UsageError struct {
	Err error
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitError carries an explicit exit code, e.g. ExitUsage for an argument
// that parsed but is invalid, or ExitFailure for `status` on a Degraded
// rollout. Execute prints it as one line without the usage.
type ExitError struct {
	Code int
	Err  error
	// quiet: the command already said everything on stdout, so Execute
	// prints no error line (`status --watch=false`).
	quiet bool
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit wraps err with an exit code.
func Exit(code int, err error) error { return &ExitError{Code: code, Err: err} }

// quietExit ends a command with an exit code and no error line.
func quietExit(code int, err error) error { return &ExitError{Code: code, Err: err, quiet: true} }

// ExitCode maps an error returned by a command to the process exit code:
// 0 success, 2 usage or validation error (including a 400 from the server),
// 3 cannot reach the server, 4 unauthorized, 1 anything else.
func ExitCode(err error) int {
	var (
		ee *ExitError
		ue *UsageError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue), isCobraUsageError(err):
		return ExitUsage
	case errors.Is(err, client.ErrUnreachable):
		return ExitUnreachable
	case errors.Is(err, client.ErrUnauthorized):
		return ExitUnauthorized
	case errors.Is(err, client.ErrInvalid):
		return ExitUsage
	default:
		return ExitFailure
	}
}

// isCobraUsageError recognises the usage errors cobra returns as plain
// errors, after the flag parser (SetFlagErrorFunc) and argument validators
// (which this package wraps) had their chance: required flags and flag
// groups, mostly used by commands added from cmd/.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{
		"required flag(s) ",
		"if any flags in the group ",
		"at least one of the flags in the group ",
		"unknown command ",
		"unknown flag: ",
		"unknown shorthand flag: ",
		"flag needs an argument: ",
		"invalid argument ",
		"accepts ",
		"requires at least ",
		"requires at most ",
	} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return strings.Contains(msg, "were all set") // mutually exclusive flag groups
}

// Execute runs root and returns the exit code. Errors are printed to root's
// error writer as one line, "Error: ...", that says what to do; usage
// errors are followed by the command's usage.
//
// The first interrupt (Ctrl-C) cancels the context the commands run with,
// so that watching commands end cleanly (a live view exits 0); a second
// one ends the process as usual.
func Execute(ctx context.Context, root *cobra.Command) int {
	ctx, stop := cancelOnInterrupt(ctx)
	defer stop()
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	if cmd == nil {
		cmd = root
	}
	if ee := (*ExitError)(nil); errors.As(err, &ee) && ee.quiet {
		return ee.Code
	}
	w := root.ErrOrStderr()
	fmt.Fprintln(w, "Error: "+oneLine(err.Error()))
	var ue *UsageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		fmt.Fprintln(w)
		fmt.Fprint(w, cmd.UsageString())
	}
	return ExitCode(err)
}

// oneLine joins a multi-line message (e.g. several field errors) so that
// each error is one line on stderr.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "; ")
}

// hinted appends what to do next to an error, keeping it matchable with
// errors.Is and errors.As.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() + "; " + h.hint }
func (h *hinted) Unwrap() error { return h.err }

// explain adds the next step to errors a user can act on.
func (o *clientOptions) explain(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, client.ErrUnreachable):
		return &hinted{err, "is `coalmine serve` running? set --server or COALMINE_SERVER"}
	case errors.Is(err, client.ErrUnauthorized) && o.token == "":
		return &hinted{err, "pass --token or set COALMINE_TOKEN"}
	case errors.Is(err, client.ErrUnauthorized):
		return &hinted{err, "check the token given with --token or COALMINE_TOKEN"}
	case errors.Is(err, client.ErrNotFound):
		return &hinted{err, "run `coalmine get rollouts` to list the rollouts"}
	}
	return err
}

// cancelOnInterrupt returns a context canceled by the first os.Interrupt,
// after which the signal's default behaviour is restored.
func cancelOnInterrupt(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			signal.Stop(sigs)
			cancel()
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
