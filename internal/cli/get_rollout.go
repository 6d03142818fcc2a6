package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/model"
)

func (g *getCmd) rolloutCmd() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "rollout NAME",
		Short: "Show one rollout: phase, steps with progress, weight, analysis and endpoints",
		Long: `Show one rollout in detail: its phase and why (the message), the revision,
the stable and canary versions, the canary weight the controller applied and
the weight the proxy observes, every step of spec.strategy.canary.steps with
the current one marked, the analysis runs, the health of every endpoint and,
when a notification channel falls behind, its delivery state.

Step marks: ✔ done, ▶ current, ✘ where the rollout stopped (Degraded),
· still to come. A timed pause in progress shows a bar with the time left.

With -w (--watch) the view follows the rollout live until Ctrl-C: on a
terminal it is redrawn in place, otherwise (a pipe, a file, a CI log) a new
view is printed after a blank line whenever something changed. When the
stream drops, the watch reconnects and catches up; it ends with an error
when the server stays away for a minute. Ctrl-C ends it with exit status 0.

-o json prints exactly the object GET /api/v1/rollouts/NAME returns
({"apiVersion", "kind", "metadata", "spec", "status"}), so scripts can rely on
it; -o yaml prints the same object as YAML. With -w, -o json prints that
object on one line per change, and -o yaml one document per change.`,
		Example: `  coalmine get rollout checkout
  coalmine get rollout checkout -w

  # scripts: the phase, or one JSON object per change
  coalmine get rollout checkout -o json | jq -r .status.phase
  coalmine get rollout checkout -w -o json | jq -r '.status.phase + " " + (.status.weight|tostring)'`,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: g.completeRolloutNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(g.output); err != nil {
				return err
			}
			if watch {
				return g.watchRollout(cmd, args[0])
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
			return writeRolloutView(cmd.OutOrStdout(), v, g.env.Now())
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the rollout live until Ctrl-C")
	return cmd
}

// watchRollout is `get rollout NAME -w`.
func (g *getCmd) watchRollout(cmd *cobra.Command, name string) error {
	retries := newReconnects()
	c, err := g.watchClient(cmd, retries.onRetry)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	// GET first: a wrong name fails at once, and the stream then starts
	// after the newest event instead of replaying the history.
	v, err := c.GetRollout(ctx, name)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return g.explain(err)
	}
	out := cmd.OutOrStdout()
	lv := &liveView{w: out, tty: g.output == outputText && g.env.IsTerminal(out)}
	if lv.tty {
		lv.width = g.env.TerminalWidth(out)
	}
	note := ""
	draw := func() error {
		switch g.output {
		case outputJSON:
			return printJSONLine(out, v)
		case outputYAML:
			return printYAMLDoc(out, v)
		}
		var b bytes.Buffer
		if err := writeRolloutView(&b, v, g.env.Now()); err != nil {
			return err
		}
		if lv.tty {
			fmt.Fprintln(&b)
			if note != "" {
				fmt.Fprintln(&b, note)
			} else {
				fmt.Fprintf(&b, "Watching rollout %q; Ctrl-C to stop.\n", name)
			}
		}
		return lv.draw(b.String())
	}
	if err := draw(); err != nil {
		return err
	}

	w := c.Watch(ctx, name, v.Status.LastEventSeq)
	var tick <-chan time.Time
	if lv.tty { // keep the pause bar and the ages moving
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	last := v
	for {
		select {
		case u, ok := <-w.Updates():
			if !ok {
				return g.explain(w.Err())
			}
			if u.View == nil {
				continue
			}
			v, note = *u.View, ""
			if g.output != outputText && sameStatus(last, v) {
				continue // the stream starts with the view just printed
			}
			last = v
		case <-tick:
		case msg := <-retries:
			if !lv.tty {
				fmt.Fprintln(cmd.ErrOrStderr(), "coalmine: rollout "+fmt.Sprintf("%q", name)+": "+msg)
				continue
			}
			note = msg
		}
		if err := draw(); err != nil {
			return err
		}
	}
}

// sameStatus reports whether two views are the same for printing.
func sameStatus(a, b model.View) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// printJSONLine prints v as JSON on one line (newline-delimited JSON).
func printJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("format as JSON: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// printYAMLDoc prints v as one YAML document starting with "---", keeping
// the JSON keys.
func printYAMLDoc(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("format as YAML: %w", err)
	}
	y, err := jsonToYAML(raw)
	if err != nil {
		return fmt.Errorf("format as YAML: %w", err)
	}
	_, err = w.Write(append([]byte("---\n"), y...))
	return err
}
