package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
)

func newRetryCmd(env Env) *cobra.Command {
	return newActionCmd(env, action{
		use:   "retry NAME",
		short: "Start an aborted revision again from its first step",
		long: `Retry an aborted (Degraded) rollout: the same stable and canary versions run
through every step again from the first, with fresh analysis runs. Use it
after fixing what made the analysis fail outside the canary (a flaky
dependency, a wrong threshold applied since), or to try again after a manual
abort.`,
		example: `  coalmine retry payments
  coalmine retry payments && coalmine status payments`,
		send: func(ctx context.Context, c *client.Client, name string) (model.View, error) {
			return c.Retry(ctx, name)
		},
		summary: func(v model.View) string {
			return fmt.Sprintf("rollout %q retried: revision %d starts again; %s", v.Metadata.Name, v.Status.Revision, position(v))
		},
	})
}
