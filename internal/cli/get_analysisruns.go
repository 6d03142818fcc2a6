package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (g *getCmd) analysisRunsCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "analysisruns NAME",
		Aliases: []string{"analysisrun", "ar"},
		Short:   "List a rollout's analysis runs with their phase",
		Long: `List the analysis runs of a rollout, newest first: the background analysis
of spec.strategy.canary.analysis and the runs of analysis steps, with the
template they execute and their phase (Running, Successful, Failed, Error,
Inconclusive, or NoData when the rollout moved on while a metric was still
waiting for data), then each metric with its counters and the explanation
of its latest measurement.

-o json prints the API's object {"items": [...]} unchanged, -o yaml the same
as YAML.`,
		Example: `  coalmine get analysisruns checkout
  coalmine get analysisruns checkout -o json | jq -r '.items[] | select(.phase == "Failed") | .id'`,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: g.completeRolloutNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(g.output); err != nil {
				return err
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.output != outputText {
				raw, err := c.AnalysisRunsRaw(cmd.Context(), args[0])
				if err != nil {
					return g.explain(err)
				}
				return printRaw(out, g.output, raw)
			}
			runs, err := c.AnalysisRuns(cmd.Context(), args[0])
			if err != nil {
				return g.explain(err)
			}
			if len(runs) == 0 {
				_, err := fmt.Fprintf(out, "No analysis runs of rollout %q yet.\n", args[0])
				return err
			}
			writeRunTable(out, "", runs)
			return nil
		},
	}
}
