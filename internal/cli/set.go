package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// setCmd is `coalmine set`, commands that change a rollout by hand.
type setCmd struct {
	clientOptions
}

func newSetCmd(env Env) *cobra.Command {
	s := &setCmd{clientOptions: clientOptions{env: env}}
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Change a rollout by hand",
		Long: `Change a rollout on a running coalmine server by hand. "set weight" pauses
the rollout (reason Manual) so the controller does not undo it; continue
with "coalmine promote NAME" or "coalmine resume NAME". "set canary" starts
a new revision with another canary version.`,
		Example: `  coalmine set weight checkout 10
  coalmine set canary checkout v1.5.0 --endpoint http://10.0.0.7:8080`,
		Args: subcommandArgs,
		RunE: helpOrUnknown,
	}
	addClientFlags(cmd, &s.clientOptions)
	cmd.AddCommand(s.weightCmd(), s.canaryCmd())
	return cmd
}

func (s *setCmd) weightCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "weight NAME PERCENT",
		Short: "Send PERCENT of a rollout's traffic to the canary, and pause it",
		Long: `Override the canary weight of a rollout: PERCENT of its traffic goes to the
canary, the rest to stable. PERCENT is between 0 and 100 with at most two
decimals (0.01% resolution); a trailing % is accepted.

Users already on the canary stay there when the weight goes up; at 0 nobody
reaches the canary. The rollout is paused (reason Manual) so that the next
step does not overwrite the weight; "coalmine promote NAME" continues with
the steps, "coalmine abort NAME" sends everyone back to stable.`,
		Example: `  # route 10% of checkout's traffic to the canary
  coalmine set weight checkout 10

  # a quarter of a percent
  coalmine set weight checkout 0.25

  # everyone back to stable, without aborting the rollout
  coalmine set weight checkout 0`,
		Args:              exactArgs("NAME", "PERCENT"),
		ValidArgsFunction: s.completeRolloutNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			p, err := parsePercent(args[1])
			if err != nil {
				return Exit(ExitUsage, err)
			}
			c, err := s.client(cmd)
			if err != nil {
				return err
			}
			v, err := c.SetWeight(cmd.Context(), name, p)
			if err != nil {
				return s.explain(err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), weightSummary(v))
			return err
		},
	}
}

// parsePercent parses and validates PERCENT locally, with the same rules
// as the server (spec.WeightFromPercent), so a typo fails before any
// request is sent.
func parsePercent(arg string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(arg), "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("invalid PERCENT %q: use a number between 0 and 100 with at most two decimals, such as 2.5", arg)
	}
	if _, err := spec.WeightFromPercent(p); err != nil {
		return 0, fmt.Errorf("invalid PERCENT %q: %w", arg, err)
	}
	return p, nil
}

// weightSummary says what the server reports after a weight change, e.g.
// `rollout "checkout": canary weight set to 10% (paused: Manual)`.
func weightSummary(v model.View) string {
	st := v.Status
	var state string
	switch {
	case st.Phase == model.PhasePaused && st.PauseReason != model.PauseNone:
		state = "paused: " + string(st.PauseReason)
	case st.Phase == "":
		state = "phase unknown"
	default:
		state = "phase: " + string(st.Phase)
	}
	msg := fmt.Sprintf("rollout %q: canary weight set to %s (%s)", v.Metadata.Name, percent(st.Weight), state)
	if st.ObservedWeight != st.Weight {
		msg += fmt.Sprintf("; the proxy still routes %s, it follows within moments unless the canary has no healthy endpoint", percent(st.ObservedWeight))
	}
	return msg
}

func (s *setCmd) canaryCmd() *cobra.Command {
	var endpoints []string
	cmd := &cobra.Command{
		Use:   "canary NAME VERSION --endpoint URL...",
		Short: "Start a new revision that rolls out VERSION at the given endpoints",
		Long: `Start a new revision of a rollout with VERSION as its canary, served by the
given endpoints, like "kubectl set image": the steps run from the first, with
fresh analysis. A canary in progress is replaced. The applied document's
spec.canary changes too, so "coalmine get rollout NAME -o yaml" shows it.

--endpoint is required and repeatable: one http://, https:// or h2c://
URL per upstream instance of VERSION.` + actionExitStatus,
		Example: `  coalmine set canary checkout v1.5.0 --endpoint http://10.0.0.7:8080

  # two instances, then follow the rollout until it is done
  coalmine set canary checkout v1.5.0 \
      --endpoint http://10.0.0.7:8080 --endpoint http://10.0.0.8:8080
  coalmine status checkout`,
		Args:              exactArgs("NAME", "VERSION"),
		ValidArgsFunction: s.completeRolloutNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version := args[0], strings.TrimSpace(args[1])
			if version == "" {
				return Exit(ExitUsage, fmt.Errorf("VERSION is empty: name the canary version, such as v1.5.0"))
			}
			if len(endpoints) == 0 {
				return usageErrorf("set canary needs at least one --endpoint URL of an instance serving %s, such as --endpoint http://10.0.0.7:8080", version)
			}
			c, err := s.client(cmd)
			if err != nil {
				return err
			}
			v, err := c.SetCanary(cmd.Context(), name, spec.VersionSpec{Version: version, Endpoints: endpoints})
			if err != nil {
				return s.explain(err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "rollout %q revision %d started: canary %s over stable %s; %s\n",
				v.Metadata.Name, v.Status.Revision, orDash(targetVersion(v)), orDash(v.Status.StableVersion), position(v))
			return err
		},
	}
	cmd.Flags().StringArrayVar(&endpoints, "endpoint", nil, "URL of an instance serving VERSION (required, repeatable)")
	return cmd
}
