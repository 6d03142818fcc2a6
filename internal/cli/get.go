package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
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
		Short: "Show rollouts and their status",
		Long: `Show rollouts as a table, or one rollout in detail, from a running coalmine
server. Every get command prints text for people by default, and with
-o json or -o yaml the API's object unchanged, for scripts.`,
		Example: `  coalmine get rollouts
  coalmine get rollout checkout
  coalmine get rollout checkout -o json | jq .status.phase`,
		Args: subcommandArgs,
		RunE: helpOrUnknown,
	}
	addClientFlags(cmd, &g.clientOptions)
	addOutputFlag(cmd, &g.output)
	cmd.AddCommand(g.rolloutsCmd(), g.rolloutCmd())
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

func (g *getCmd) rolloutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rollout NAME",
		Short: "Show one rollout: phase, versions, weight, steps and endpoints",
		Long: `Show one rollout in detail: its phase and why (the message), the revision,
the stable and canary versions, the canary weight the controller applied and
the weight the proxy observes, every step of spec.strategy.canary.steps with
the current one marked, the analysis runs, and the health of every endpoint.

Step marks: [x] done, [>] current, [!] where the rollout stopped (Degraded),
[ ] still to come.

-o json prints exactly the object GET /api/v1/rollouts/NAME returns
({"apiVersion", "kind", "metadata", "spec", "status"}), so scripts can rely on
it; -o yaml prints the same object as YAML.`,
		Example: `  coalmine get rollout checkout
  coalmine get rollout checkout -o json | jq -r .status.phase
  coalmine get rollout checkout -o yaml > checkout.yaml`,
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
			if g.output != outputText {
				raw, err := c.GetRolloutRaw(cmd.Context(), args[0])
				if err != nil {
					return g.explain(err)
				}
				return printRaw(cmd.OutOrStdout(), g.output, raw)
			}
			v, err := c.GetRollout(cmd.Context(), args[0])
			if err != nil {
				return g.explain(err)
			}
			return writeRolloutText(cmd.OutOrStdout(), v, g.env.Now())
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

// phaseText is the phase with its pause reason, e.g. "Paused (Manual)".
func phaseText(s model.Status) string {
	if s.Phase == "" {
		return "-"
	}
	if s.PauseReason != model.PauseNone {
		return string(s.Phase) + " (" + string(s.PauseReason) + ")"
	}
	return string(s.Phase)
}

// stepText is "completed/total", Argo's STEP column; "-" without steps.
func stepText(v model.View) string {
	n := len(v.Spec.Strategy.Canary.Steps)
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", min(max(v.Status.StepIndex, 0), n), n)
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

// writeRolloutText is the human view of `get rollout NAME`.
func writeRolloutText(w io.Writer, v model.View, now time.Time) error {
	s := v.Status
	tw := newTable(w)
	field := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	field("Name", v.Metadata.Name)
	field("Phase", phaseText(s))
	if s.Message != "" {
		field("Message", s.Message)
	}
	field("Revision", fmt.Sprint(s.Revision))
	field("Listen", orDash(v.Spec.Listen))
	field("Stable", orDash(s.StableVersion))
	field("Canary", orDash(s.CanaryVersion))
	field("Weight", percent(s.Weight)+" applied, "+percent(s.ObservedWeight)+" observed by the proxy")
	field("Step", stepText(v))
	updated := "-"
	if !s.UpdatedAt.IsZero() {
		updated = s.UpdatedAt.UTC().Format(time.RFC3339) + " (" + ago(now, s.UpdatedAt) + ")"
	}
	field("Updated", updated)
	if err := tw.Flush(); err != nil {
		return err
	}

	writeSteps(w, v)

	if a := v.Spec.Strategy.Canary.Analysis; a != nil && len(a.Templates) > 0 {
		fmt.Fprintf(w, "\nBackground analysis: %s, from step %d\n", templateNames(a.Templates), a.StartingStep+1)
	}

	fmt.Fprintln(w)
	if len(s.AnalysisRuns) == 0 {
		fmt.Fprintln(w, "Analysis runs: none")
	} else {
		fmt.Fprintln(w, "Analysis runs:")
		tw = newTable(w)
		fmt.Fprintln(tw, "  ID\tTEMPLATE\tPHASE")
		for _, r := range s.AnalysisRuns {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.ID, r.Template, r.Phase)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w)
	if len(s.Endpoints) == 0 {
		_, err := fmt.Fprintln(w, "Endpoints: none reported")
		return err
	}
	fmt.Fprintln(w, "Endpoints:")
	tw = newTable(w)
	fmt.Fprintln(tw, "  ROLE\tVERSION\tURL\tHEALTH\tIN FLIGHT")
	for _, e := range s.Endpoints {
		health := "healthy"
		switch {
		case e.Ejected:
			health = "ejected"
		case !e.Healthy:
			health = "unhealthy"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\n", e.Role, e.Version, e.URL, health, e.InFlight)
	}
	return tw.Flush()
}

func writeSteps(w io.Writer, v model.View) {
	steps := v.Spec.Strategy.Canary.Steps
	fmt.Fprintln(w)
	if len(steps) == 0 {
		fmt.Fprintln(w, "Steps: none (the canary goes to 100% at once)")
		return
	}
	fmt.Fprintln(w, "Steps:")
	cur := v.Status.StepIndex
	for i, st := range steps {
		mark := "[ ]"
		switch {
		case i < cur:
			mark = "[x]"
		case i == cur && v.Status.Phase == model.PhaseDegraded:
			mark = "[!]"
		case i == cur && v.Status.Phase != model.PhaseHealthy:
			mark = "[>]"
		}
		fmt.Fprintf(w, "  %s %d. %s\n", mark, i+1, describeStep(st))
	}
}

// describeStep is one line for a step, e.g. "setWeight 25%", "pause 5m".
func describeStep(st spec.Step) string {
	switch {
	case st.SetWeight != nil:
		return "setWeight " + percent(*st.SetWeight)
	case st.Pause != nil:
		if st.Pause.Duration == nil {
			return "pause until promoted"
		}
		return "pause " + shortDuration(st.Pause.Duration.D())
	case st.Analysis != nil:
		return "analysis " + templateNames(st.Analysis.Templates)
	case st.SetHeaderRoute != nil:
		r := st.SetHeaderRoute
		if len(r.Match) == 0 {
			return "setHeaderRoute " + r.Name + " (remove)"
		}
		to := r.To
		if to == "" {
			to = spec.RoleCanary
		}
		return "setHeaderRoute " + r.Name + " -> " + string(to)
	case st.SetMirrorRoute != nil:
		r := st.SetMirrorRoute
		if len(r.Match) == 0 && r.Percentage == nil {
			return "setMirrorRoute " + r.Name + " (remove)"
		}
		pct := 100.0
		if r.Percentage != nil {
			pct = *r.Percentage
		}
		return "setMirrorRoute " + r.Name + " (" + percent(pct) + " mirrored to canary)"
	}
	return "(empty step)"
}

func templateNames(refs []spec.TemplateRef) string {
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.TemplateName
	}
	return strings.Join(names, ", ")
}
