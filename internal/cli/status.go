package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/model"
)

func newStatusCmd(env Env) *cobra.Command {
	o := &clientOptions{env: env}
	var (
		watch   bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Wait until a rollout is done and exit 0 when Healthy, 1 when Degraded",
		Long: `Follow a rollout until it is done, printing a line whenever its phase or
step changes, like "kubectl argo rollouts status". For deploy scripts and CI:

  exit 0   the rollout is Healthy: the canary completed and is stable now
           (or there was nothing to roll out)
  exit 1   the rollout is Degraded: aborted by hand or by a failed analysis;
           the reason is printed on stderr
  exit 5   --timeout elapsed first (or Ctrl-C); the rollout goes on, where
           it stood is printed on stderr
  exit 2   a usage mistake (a missing name, a bad flag), as for every command
  exit 3   the server cannot be reached (also when it stays away for a
           minute while waiting); exit 4 the token is missing or wrong

A paused rollout (a pause step, Manual, Inconclusive, NoData) is not done:
status keeps waiting for someone to promote or abort it; use --timeout to
bound the wait.

With --watch=false, status prints where the rollout stands once and exits
at once: 0 Healthy, 1 Degraded, 5 for anything else (Progressing, Paused).`,
		Example: `  coalmine status checkout

  # in a deploy script: roll out, wait at most 30 minutes, abort otherwise
  coalmine set canary checkout v1.5.0 --endpoint http://10.0.0.7:8080
  coalmine status checkout --timeout 30m || coalmine abort checkout

  # a one-off check, e.g. in a health probe
  coalmine status checkout --watch=false`,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: o.completeRolloutNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 0 {
				return Exit(ExitUsage, fmt.Errorf("invalid --timeout %s: use a positive duration such as 10m, or 0 to wait without limit", timeout))
			}
			return o.status(cmd, args[0], watch, timeout)
		},
	}
	addClientFlags(cmd, o)
	cmd.Flags().BoolVarP(&watch, "watch", "w", true, "wait until the rollout is Healthy or Degraded; false prints the phase once")
	cmd.Flags().DurationVarP(&timeout, "timeout", "t", 0, "give up waiting after this long, with exit status 5 (0: no limit)")
	return cmd
}

func (o *clientOptions) status(cmd *cobra.Command, name string, watch bool, timeout time.Duration) error {
	retries := newReconnects()
	c, err := o.watchClient(cmd, retries.onRetry)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	v, err := c.GetRollout(ctx, name)
	if err != nil {
		if ctx.Err() != nil {
			return Exit(ExitNotDone, fmt.Errorf("interrupted while asking for rollout %q", name))
		}
		return o.explain(err)
	}

	if !watch {
		fmt.Fprintln(out, statusLine(v))
		switch v.Status.Phase {
		case model.PhaseHealthy:
			return nil
		case model.PhaseDegraded:
			return quietExit(ExitFailure, errors.New("degraded"))
		}
		return quietExit(ExitNotDone, errors.New("not done"))
	}

	if done, err := statusOutcome(out, v, false); done {
		return err
	}
	fmt.Fprintln(out, statusLine(v))
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	w := c.Watch(ctx, name, v.Status.LastEventSeq)
	last := statusKeyOf(v)
	for {
		select {
		case u, ok := <-w.Updates():
			if !ok {
				if err := w.Err(); err != nil {
					return o.explain(err)
				}
				return Exit(ExitNotDone, fmt.Errorf("interrupted while waiting for rollout %q: %s", name, position(v)))
			}
			if u.View == nil {
				continue
			}
			v = *u.View
			if done, err := statusOutcome(out, v, true); done {
				return err
			}
			if k := statusKeyOf(v); k != last {
				last = k
				fmt.Fprintln(out, statusLine(v))
			}
		case <-expired:
			return Exit(ExitNotDone, fmt.Errorf("timed out after %s waiting for rollout %q: %s", shortDuration(timeout), name, position(v)))
		case msg := <-retries:
			fmt.Fprintf(cmd.ErrOrStderr(), "coalmine: rollout %q: %s\n", name, msg)
		}
	}
}

// statusOutcome ends `status` on Healthy (printing the result) and
// Degraded (an exit-1 error with the reason). progressed says whether the
// rollout was seen in progress, which makes Healthy a completion.
func statusOutcome(out io.Writer, v model.View, progressed bool) (bool, error) {
	name := v.Metadata.Name
	switch v.Status.Phase {
	case model.PhaseHealthy:
		if progressed {
			fmt.Fprintf(out, "rollout %q completed: %s is stable\n", name, orDash(v.Status.StableVersion))
		} else {
			fmt.Fprintf(out, "rollout %q is Healthy: %s is stable\n", name, orDash(v.Status.StableVersion))
		}
		return true, nil
	case model.PhaseDegraded:
		reason := v.Status.Message
		if reason == "" {
			reason = "aborted"
		}
		return true, Exit(ExitFailure, fmt.Errorf("rollout %q is Degraded: %s; see \"coalmine get rollout %s\", then retry or undo it", name, reason, name))
	}
	return false, nil
}

// statusKey is what makes `status` print a new line.
type statusKey struct {
	phase    model.Phase
	reason   model.PauseReason
	step     int
	revision int64
}

func statusKeyOf(v model.View) statusKey {
	return statusKey{v.Status.Phase, v.Status.PauseReason, v.Status.StepIndex, v.Status.Revision}
}

// statusLine is one line of `status`: where the rollout stands and why.
func statusLine(v model.View) string {
	line := position(v)
	if m := v.Status.Message; m != "" && v.Status.Phase != model.PhaseHealthy && v.Status.Phase != model.PhaseDegraded {
		line += ": " + withoutStep(v, m)
	}
	return line
}

// withoutStep drops a leading "step 3/5 (setWeight 50): " from a message,
// which the line says already.
func withoutStep(v model.View, msg string) string {
	rest, ok := strings.CutPrefix(msg, fmt.Sprintf("step %d/%d (", v.Status.StepIndex+1, stepCount(v)))
	if !ok {
		return msg
	}
	if _, after, found := strings.Cut(rest, "): "); found && after != "" {
		return after
	}
	return msg
}
