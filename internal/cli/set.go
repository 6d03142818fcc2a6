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
		Long: `Change a rollout on a running coalmine server by hand. Manual changes pause
the rollout (reason Manual) so the controller does not undo them; continue
with "coalmine promote NAME" or "coalmine resume NAME".`,
		Example: `  coalmine set weight checkout 10`,
		Args:    subcommandArgs,
		RunE:    helpOrUnknown,
	}
	addClientFlags(cmd, &s.clientOptions)
	cmd.AddCommand(s.weightCmd())
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
