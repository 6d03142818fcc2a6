package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
)

func (g *getCmd) eventsCmd() *cobra.Command {
	var (
		watch bool
		after uint64
	)
	cmd := &cobra.Command{
		Use:     "events NAME",
		Aliases: []string{"event", "ev"},
		Short:   "List a rollout's events, or follow them live with -w",
		Long: `List what happened to a rollout, oldest first: every step completed, pause,
promotion, abort, weight change, analysis verdict and endpoint health change
(SPEC §6.4), with its sequence number (SEQ), when it happened (UTC), its
type, the revision it belongs to and a message that says why.

--after SEQ lists only the events after SEQ, so a script can carry on where
it stopped. With -w (--watch) the listing continues live until Ctrl-C; a
dropped stream is resumed after the last event shown, so no event is shown
twice or missed.

-o json prints the API's object {"items": [...]}; with -w it prints one
event object per line instead (newline-delimited JSON), for jq or a log
shipper. -o yaml prints the same objects as YAML.`,
		Example: `  coalmine get events checkout
  coalmine get events checkout -w

  # what happened since the last time this script looked
  coalmine get events checkout --after 41 -o json | jq -r '.items[] | "\(.seq) \(.type)"'

  # one JSON object per event, as they happen
  coalmine get events checkout -w -o json`,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: g.completeRolloutNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(g.output); err != nil {
				return err
			}
			return g.events(cmd, args[0], after, watch)
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow new events live until Ctrl-C")
	cmd.Flags().Uint64Var(&after, "after", 0, "list only events with a sequence number above `SEQ`")
	return cmd
}

// events is `get events NAME [--after SEQ] [-w]`.
func (g *getCmd) events(cmd *cobra.Command, name string, after uint64, watch bool) error {
	retries := newReconnects()
	c, err := g.watchClient(cmd, retries.onRetry)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	out := cmd.OutOrStdout()

	// The history first, page by page.
	var history []model.Event
	for seq := after; ; {
		page, err := c.Events(ctx, name, seq, client.MaxEventsPerPage)
		if err != nil {
			if watch && ctx.Err() != nil {
				return nil
			}
			return g.explain(err)
		}
		history = append(history, page...)
		if len(page) < client.MaxEventsPerPage {
			break
		}
		seq = page[len(page)-1].Seq
	}

	if !watch {
		switch g.output {
		case outputJSON, outputYAML:
			if history == nil {
				history = []model.Event{}
			}
			raw, err := json.Marshal(struct {
				Items []model.Event `json:"items"`
			}{history})
			if err != nil {
				return err
			}
			return printRaw(out, g.output, raw)
		}
		if len(history) == 0 {
			if after > 0 {
				_, err := fmt.Fprintf(out, "No events of rollout %q after seq %d.\n", name, after)
				return err
			}
			_, err := fmt.Fprintf(out, "No events of rollout %q yet.\n", name)
			return err
		}
		writeEventHeader(out)
		for _, e := range history {
			writeEventRow(out, e)
		}
		return nil
	}

	show := func(e model.Event) error {
		switch g.output {
		case outputJSON:
			return printJSONLine(out, e)
		case outputYAML:
			return printYAMLDoc(out, e)
		}
		return writeEventRow(out, e)
	}
	if g.output == outputText {
		writeEventHeader(out)
	}
	for _, e := range history {
		if err := show(e); err != nil {
			return err
		}
		after = max(after, e.Seq)
	}
	w := c.Watch(ctx, name, after)
	for {
		select {
		case u, ok := <-w.Updates():
			if !ok {
				return g.explain(w.Err())
			}
			if u.Event == nil {
				continue
			}
			if err := show(*u.Event); err != nil {
				return err
			}
		case msg := <-retries:
			fmt.Fprintf(cmd.ErrOrStderr(), "coalmine: rollout %q: %s\n", name, msg)
		}
	}
}

// Event rows have fixed columns, so that rows printed one at a time while
// watching line up with the header.
const eventRowFormat = "%-5s   %-20s   %-22s   %-8s   %s\n"

func writeEventHeader(w io.Writer) {
	fmt.Fprintf(w, eventRowFormat, "SEQ", "TIME", "TYPE", "REVISION", "MESSAGE")
}

func writeEventRow(w io.Writer, e model.Event) error {
	t := "-"
	if !e.Time.IsZero() {
		t = e.Time.UTC().Format(time.RFC3339)
	}
	_, err := fmt.Fprintf(w, eventRowFormat, strconv.FormatUint(e.Seq, 10), t, e.Type,
		strconv.FormatInt(e.Revision, 10), oneLine(e.Message))
	return err
}
