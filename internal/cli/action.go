package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
)

// actionExitStatus ends the help of every command that changes a rollout.
const actionExitStatus = `

Exit status: 0 when the server did it; 1 when the command does not apply to
the rollout as it is now (the server answers 409 and says why on stderr,
e.g. promote on a Healthy rollout); 2 for a usage mistake; 3 when the server
cannot be reached; 4 when the token is missing or wrong.`

// action describes a command that changes one rollout through the API
// (promote, abort, retry, pause, resume, undo): one file per verb fills it
// in, newActionCmd builds the cobra command they all share.
type action struct {
	use, short, long, example string
	// flags registers the verb's own flags.
	flags func(cmd *cobra.Command)
	// send sends the command.
	send func(ctx context.Context, c *client.Client, name string) (model.View, error)
	// summary is the one line printed on success.
	summary func(v model.View) string
}

func newActionCmd(env Env, a action) *cobra.Command {
	o := &clientOptions{env: env}
	cmd := &cobra.Command{
		Use:               a.use,
		Short:             a.short,
		Long:              a.long + actionExitStatus,
		Example:           a.example,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: o.completeRolloutNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			v, err := a.send(cmd.Context(), c, args[0])
			if err != nil {
				return o.explain(err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), a.summary(v))
			return err
		},
	}
	addClientFlags(cmd, o)
	if a.flags != nil {
		a.flags(cmd)
	}
	return cmd
}

// targetVersion is the version a new revision moves to: the canary, or the
// stable version once a fast rollback completed.
func targetVersion(v model.View) string {
	if v.Status.CanaryVersion != "" {
		return v.Status.CanaryVersion
	}
	return v.Status.StableVersion
}
