package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
)

func newPauseCmd(env Env) *cobra.Command {
	return newActionCmd(env, action{
		use:   "pause NAME",
		short: "Hold a rollout at its current step",
		long: `Hold a rollout where it is (pause reason Manual): the weight stays, no further
step starts, and a timed pause does not run out. Analysis keeps measuring,
and a failed analysis still aborts. "coalmine resume NAME" releases it.`,
		example: `  coalmine pause checkout
  coalmine resume checkout`,
		send: func(ctx context.Context, c *client.Client, name string) (model.View, error) {
			return c.Pause(ctx, name)
		},
		summary: func(v model.View) string {
			at := where(v)
			if at != "" {
				at = " " + at
			}
			return fmt.Sprintf("rollout %q paused%s; continue with \"coalmine resume %s\"", v.Metadata.Name, at, v.Metadata.Name)
		},
	})
}
