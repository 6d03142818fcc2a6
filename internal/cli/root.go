// Package cli holds coalmine's cobra commands. Every command writes only to
// the writers in Env and reads time and the environment only through it,
// so tests run the real command tree against a real API handler and compare
// the output with golden files.
//
// The client commands (get, set, ...) talk to a running server through
// internal/client; commands that run the server itself (serve, lint, demo)
// are added by cmd/coalmine with AddCommand on the root NewRoot returns.
package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
)

// Version is coalmine's version, set at build time with
// -ldflags "-X github.com/coalmine-dev/coalmine/internal/cli.Version=v1.2.3".
var Version = "dev"

// Env is everything the commands take from the outside world. Nil fields
// default to the process's own (os.Stdout, os.Getenv, time.Now, ...).
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads COALMINE_SERVER and COALMINE_TOKEN.
	Getenv func(string) string
	// Now is the clock behind relative times such as "90s ago".
	Now func() time.Time
	// HTTPClient sends API requests; nil means a client with a 30s timeout.
	HTTPClient *http.Client
	// IsTerminal reports whether w is a terminal, where `get rollout -w`
	// redraws its view in place. Nil means: w is an *os.File on a
	// character device.
	IsTerminal func(w io.Writer) bool
	// TerminalWidth reports the columns of the terminal behind w (0 when
	// unknown); the live view cuts longer lines, which would otherwise wrap
	// and break the in-place redraw.
	TerminalWidth func(w io.Writer) int
	// Watch tunes how watching commands reconnect; the zero value means
	// the client's defaults.
	Watch client.WatchOptions
}

func (e Env) withDefaults() Env {
	if e.Stdout == nil {
		e.Stdout = os.Stdout
	}
	if e.Stderr == nil {
		e.Stderr = os.Stderr
	}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.IsTerminal == nil {
		e.IsTerminal = isCharDevice
	}
	if e.TerminalWidth == nil {
		e.TerminalWidth = terminalWidth
	}
	return e
}

// isCharDevice is the default Env.IsTerminal: golang.org/x/term is not a
// dependency, and a character device is what a terminal is to the kernel.
func isCharDevice(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// NewRoot returns the `coalmine` command with the client commands attached.
// Run it with Execute, which prints errors as one line and maps them to
// exit codes; add more commands with AddCommand.
func NewRoot(env Env) *cobra.Command {
	env = env.withDefaults()
	root := &cobra.Command{
		Use:   "coalmine",
		Short: "Progressive delivery (canary releases) in one binary",
		Long: `coalmine sits in front of a service as a reverse proxy, splits live traffic
between the stable version and a canary, walks the canary through its steps
(1% → 5% → 25% → 100%), compares both versions side by side and promotes or
rolls back on its own.

"coalmine serve" runs the proxy, the controller and the admin API; the other
commands talk to a running server through its admin API (--server, default
http://127.0.0.1:7070, or COALMINE_SERVER).`,
		Example: `  # run coalmine with the rollouts in ./rollouts
  coalmine serve -f ./rollouts

  # see what is rolling out, then look at one rollout
  coalmine get rollouts
  coalmine get rollout checkout

  # roll out a new version and follow it until it is done
  coalmine set canary checkout v1.5.0 --endpoint http://10.0.0.7:8080
  coalmine status checkout --timeout 30m

  # watch it live, move it on by hand, or send everyone back to stable
  coalmine get rollout checkout -w
  coalmine promote checkout
  coalmine abort checkout`,
		Args:          subcommandArgs,
		RunE:          helpOrUnknown,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	root.CompletionOptions.HiddenDefaultCmd = false

	root.AddCommand(
		newApplyCmd(env),
		newGetCmd(env),
		newStatusCmd(env),
		newPromoteCmd(env),
		newAbortCmd(env),
		newRetryCmd(env),
		newPauseCmd(env),
		newResumeCmd(env),
		newUndoCmd(env),
		newSetCmd(env),
		newVersionCmd(),
	)
	return root
}

// helpOrUnknown is the RunE of commands that only group subcommands: with
// no arguments they print their help; arguments were rejected by
// subcommandArgs already.
func helpOrUnknown(cmd *cobra.Command, _ []string) error {
	return cmd.Help()
}

// subcommandArgs rejects an argument that names no subcommand, as a usage
// error with suggestions.
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		quoted := make([]string, len(s))
		for i, name := range s {
			quoted[i] = strconv.Quote(name)
		}
		msg += "; did you mean " + strings.Join(quoted, " or ") + "?"
	}
	return usageErrorf("%s", msg)
}
