package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/cli"
	"github.com/coalmine-dev/coalmine/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var scenario string
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo [--scenario healthy|errors|latency] [--keep-running]",
		Short: "Watch a canary release happen on this machine, nothing to install",
		Long: `Demo starts two versions of a small service inside this process, the
coalmine proxy in front of them, and a load generator, then walks the canary
through 1% → 5% → 25% → 50% → 100% with an analysis step after each weight:
sequential judges compare the canary's error rate and latency with the
stable's on the proxy's own measurements, and the controller rolls back on
their verdict. It prints both versions' request counts, error rates and
latency, and the judges' evidence, as it goes. A canary that misbehaves is
rolled back: every user returns to the stable version.

Scenarios: healthy (the canary completes), errors (the canary fails 8% of
requests and is rolled back), latency (the canary is 50% slower and is
rolled back). Exit status 0 when the outcome is the one the scenario
expects.`,
		Example: `  coalmine demo
  coalmine demo --scenario errors
  go run ./cmd/coalmine demo --scenario latency --keep-running`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sc := demo.Scenario(scenario)
			if !sc.Valid() {
				return usageErr(fmt.Errorf("--scenario %q: use healthy, errors or latency", scenario))
			}
			out, err := demo.Run(cmd.Context(), demo.Options{Scenario: sc, KeepRunning: keep, Out: cmd.OutOrStdout(), Live: isTerminal(os.Stdout)})
			if err != nil {
				return err
			}
			if !out.Expected(sc) {
				return cli.Exit(cli.ExitFailure, errors.New("the demo did not end as the scenario expects: "+out.Reason))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&scenario, "scenario", "healthy", "healthy, errors or latency")
	cmd.Flags().BoolVar(&keep, "keep-running", false, "keep the services and the proxy running after the release ends")
	return cmd
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
