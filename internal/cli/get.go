package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/model"
)

// getCmd is `coalmine get`, the read commands.
type getCmd struct {
	clientOptions
	output string
}

func newGetCmd(env Env) *cobra.Command {
	g := &getCmd{clientOptions: clientOptions{env: env}}
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Show rollouts, their status, analysis runs and events, and the replicas",
		Long: `Show rollouts as a table, one rollout in detail (live with -w), its
analysis runs or its events, or the coalmine processes sharing the store
(replicas), from a running coalmine server. Every get command prints text
for people by default, and with -o json or -o yaml the API's object
unchanged, for scripts.`,
		Example: `  coalmine get rollouts
  coalmine get rollout checkout -w
  coalmine get analysisruns checkout
  coalmine get events checkout -w
  coalmine get replicas
  coalmine get rollout checkout -o json | jq .status.phase`,
		Args: subcommandArgs,
		RunE: helpOrUnknown,
	}
	addClientFlags(cmd, &g.clientOptions)
	addOutputFlag(cmd, &g.output)
	cmd.AddCommand(g.rolloutsCmd(), g.rolloutCmd(), g.analysisRunsCmd(), g.eventsCmd(), g.replicasCmd())
	return cmd
}

func (g *getCmd) rolloutsCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rollouts",
		Aliases: []string{"ro"},
		Short:   "List every rollout with its phase, step and weight",
		Long: `List every rollout the server manages, one line each:

  NAME       the rollout (metadata.name)
  PHASE      Healthy, Progressing, Paused (with the reason) or Degraded
  STEP       steps completed / steps in spec.strategy.canary.steps
  WEIGHT     canary share of traffic the controller applied
  OBSERVED   canary share the proxy routes with right now; it lags WEIGHT
             briefly after a change and is 0 while the canary has no
             healthy endpoint
  STABLE     the stable version
  CANARY     the canary version, "-" when there is none
  UPDATED    when the status last changed`,
		Example: `  coalmine get rollouts
  coalmine get rollouts -o yaml
  COALMINE_SERVER=http://10.0.0.5:7070 COALMINE_TOKEN=... coalmine get rollouts`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(g.output); err != nil {
				return err
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if g.output != outputText {
				raw, err := c.ListRolloutsRaw(cmd.Context())
				if err != nil {
					return g.explain(err)
				}
				return printRaw(cmd.OutOrStdout(), g.output, raw)
			}
			views, err := c.ListRollouts(cmd.Context())
			if err != nil {
				return g.explain(err)
			}
			return writeRolloutTable(cmd.OutOrStdout(), views, g.env.Now())
		},
	}
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%q takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " "))
	}
	return nil
}

// exactArgs requires one positional argument per name, as a usage error
// that names what is missing.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			missing := strings.Join(names[len(args):], " ")
			return usageErrorf("missing %s: %s", missing, cmd.UseLine())
		case len(args) > len(names):
			return usageErrorf("too many arguments: %q takes %s, got %q", cmd.CommandPath(), strings.Join(names, " "), strings.Join(args, " "))
		}
		return nil
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeRolloutTable(w io.Writer, views []model.View, now time.Time) error {
	if len(views) == 0 {
		_, err := fmt.Fprintln(w, "No rollouts. Add one to the files given to `coalmine serve -f`, or run `coalmine apply -f FILE`.")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tPHASE\tSTEP\tWEIGHT\tOBSERVED\tSTABLE\tCANARY\tUPDATED")
	for _, v := range views {
		s := v.Status
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			v.Metadata.Name, phaseText(s), stepText(v), percent(s.Weight), percent(s.ObservedWeight),
			orDash(s.StableVersion), orDash(s.CanaryVersion), ago(now, s.UpdatedAt))
	}
	return tw.Flush()
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return age(now, t) + " ago"
}
