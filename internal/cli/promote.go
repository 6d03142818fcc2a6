package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
)

func newPromoteCmd(env Env) *cobra.Command {
	var full bool
	return newActionCmd(env, action{
		use:   "promote NAME",
		short: "Leave the current pause or analysis step, or with --full skip to the end",
		long: `Move a rollout on by hand. Without flags, promote leaves the step the
rollout waits on: a pause (timed or "until promoted"), an analysis step, or a
pause for an Inconclusive or NoData verdict; it also releases a manual pause
(pause, set weight). The next steps then run as usual.

With --full every remaining step and analysis is skipped: the canary gets
100% of the traffic at once and becomes the new stable version.

A step that completes by itself (setWeight waiting for the proxy, a header
route) cannot be promoted; use --full to skip it.`,
		example: `  # the canary looks good: leave the pause step
  coalmine promote checkout

  # ship it now, skipping every remaining step and analysis
  coalmine promote checkout --full`,
		flags: func(cmd *cobra.Command) {
			cmd.Flags().BoolVar(&full, "full", false, "skip every remaining step and analysis: 100% to the canary, which becomes stable")
		},
		send: func(ctx context.Context, c *client.Client, name string) (model.View, error) {
			return c.Promote(ctx, name, full)
		},
		summary: func(v model.View) string {
			verb := "promoted"
			if full {
				verb = "promoted to the end"
			}
			return fmt.Sprintf("rollout %q %s: %s", v.Metadata.Name, verb, position(v))
		},
	})
}
