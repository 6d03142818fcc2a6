package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
)

func newResumeCmd(env Env) *cobra.Command {
	return newActionCmd(env, action{
		use:   "resume NAME",
		short: "Release a rollout paused by hand",
		long: `Release a rollout paused by hand (pause reason Manual, from "coalmine pause" or
"coalmine set weight"): its steps continue from where it stood. A pause step
or a pause for an Inconclusive or NoData verdict is left with
"coalmine promote NAME" instead.`,
		example: `  coalmine resume checkout`,
		send: func(ctx context.Context, c *client.Client, name string) (model.View, error) {
			return c.Resume(ctx, name)
		},
		summary: func(v model.View) string {
			return fmt.Sprintf("rollout %q resumed: %s", v.Metadata.Name, position(v))
		},
	})
}
