package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
)

func newAbortCmd(env Env) *cobra.Command {
	return newActionCmd(env, action{
		use:   "abort NAME",
		short: "Send all traffic back to stable at once and stop the rollout",
		long: `Abort the rollout's revision: the canary weight goes to 0 at once, the header
and mirror routes the steps added are removed, analysis runs are terminated
and the phase becomes Degraded. The canary's endpoints keep running; nothing
is routed to them.

Afterwards "coalmine retry NAME" starts the same revision again from its
first step, "coalmine set canary NAME VERSION --endpoint URL" starts a new
one, and "coalmine undo NAME" returns to an earlier version.`,
		example: `  coalmine abort checkout

  # in a deploy script: abort when the rollout does not finish in time
  coalmine status checkout --timeout 30m || coalmine abort checkout`,
		send: func(ctx context.Context, c *client.Client, name string) (model.View, error) {
			return c.Abort(ctx, name)
		},
		summary: abortSummary,
	})
}

// abortSummary says where the traffic went, e.g. `rollout "checkout"
// aborted: 100% of traffic back on stable v1.4.2`.
func abortSummary(v model.View) string {
	s := v.Status
	msg := fmt.Sprintf("rollout %q aborted: %s of traffic back on stable %s", v.Metadata.Name, percent(100-s.Weight), orDash(s.StableVersion))
	if s.ObservedWeight != s.Weight {
		msg += fmt.Sprintf("; the proxy still routes %s to the canary, it follows within moments", percent(s.ObservedWeight))
	}
	if s.Unsaved != "" {
		msg += "\nwarning: the abort is " + s.Unsaved
	}
	return msg
}
