package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
)

func newUndoCmd(env Env) *cobra.Command {
	var toRevision int64
	return newActionCmd(env, action{
		use:   "undo NAME",
		short: "Roll back to the previous revision's version, or to revision N's",
		long: `Go back to the version the rollout ran before the current one, as Argo
Rollouts' undo does (a rollback to revision N-1), or with --to-revision N to
the version revision N ended with. During a canary that is usually the
stable version: the canary ends at once and the stable serves all traffic,
whatever spec.rollbackWindow says. Otherwise a new revision rolls that
version out; when it was stable within the last spec.rollbackWindow
completed revisions (default 1) the steps are skipped and all traffic moves
at once (fast rollback), otherwise the steps run as usual, with analysis.`,
		example: `  # the release that completed an hour ago is broken: go back
  coalmine undo checkout

  # go back to what revision 3 rolled out
  coalmine undo checkout --to-revision 3`,
		flags: func(cmd *cobra.Command) {
			cmd.Flags().Int64Var(&toRevision, "to-revision", 0, "roll back to the canary version of revision N (default: the previous revision's version)")
		},
		send: func(ctx context.Context, c *client.Client, name string) (model.View, error) {
			if toRevision < 0 {
				return model.View{}, Exit(ExitUsage, fmt.Errorf("invalid --to-revision %d: use a revision number from 1 up (see \"coalmine get events %s\")", toRevision, name))
			}
			return c.Undo(ctx, name, toRevision)
		},
		summary: func(v model.View) string {
			verb := "rolling back"
			if v.Status.Phase == model.PhaseHealthy {
				verb = "rolled back" // a fast rollback completes at once
			}
			return fmt.Sprintf("rollout %q %s to %s in revision %d: %s", v.Metadata.Name, verb, orDash(targetVersion(v)), v.Status.Revision, position(v))
		},
	})
}
