package slack

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coalmine-dev/coalmine/internal/model"
)

// Colours of the attachment bar, by severity.
const (
	ColorDanger  = "#d93f0b"
	ColorWarning = "#dbab09"
	ColorGood    = "#2eb886"
	ColorNeutral = "#8b949e"
)

// Slack's Block Kit limits (characters / items).
const (
	maxHeader   = 150
	maxSection  = 3000
	maxField    = 2000
	maxFields   = 10
	maxFallback = 3000
)

// Message is the incoming-webhook payload: a plain-text fallback (shown in
// notifications and by clients without Block Kit) and one attachment whose
// colour shows the severity.
type Message struct {
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment is a coloured bar around blocks.
type Attachment struct {
	Color  string  `json:"color"`
	Blocks []Block `json:"blocks"`
}

// Block is a Block Kit layout block (header, section or context).
type Block struct {
	Type     string `json:"type"`
	Text     *Text  `json:"text,omitempty"`
	Fields   []Text `json:"fields,omitempty"`
	Elements []Text `json:"elements,omitempty"`
}

// Text is a Block Kit text object.
type Text struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
}

// Color maps an event type to the attachment colour: red for failures,
// amber for states that wait for a human, green for good outcomes, grey
// for progress.
func Color(eventType string) string {
	switch eventType {
	case "rollout-aborted", "analysis-failed", "analysis-error", "endpoint-unhealthy":
		return ColorDanger
	case "rollout-paused", "analysis-inconclusive", "analysis-nodata":
		return ColorWarning
	case "rollout-completed", "analysis-successful", "endpoint-healthy":
		return ColorGood
	default:
		return ColorNeutral
	}
}

// Build renders e as a Slack message. It is pure: the same event always
// gives the same message, and details appear sorted by key.
func Build(e model.Event) Message {
	// The fallback text is mrkdwn too: escaped like the blocks.
	fallback := fmt.Sprintf("coalmine: %s %s (revision %d)", e.Rollout, e.Type, e.Revision)
	if e.Message != "" {
		fallback += ": " + escape(e.Message)
	}
	blocks := []Block{
		{Type: "header", Text: &Text{Type: "plain_text", Text: truncate(e.Type+" · "+e.Rollout, maxHeader)}},
		{Type: "section", Text: mrkdwnOrNil(e.Message), Fields: []Text{
			field("Rollout", e.Rollout),
			field("Revision", fmt.Sprint(e.Revision)),
			field("Event", e.Type),
			field("Seq", fmt.Sprint(e.Seq)),
		}},
	}
	if len(e.Details) > 0 {
		blocks = append(blocks, Block{Type: "section", Fields: detailFields(e.Details)})
	}
	blocks = append(blocks, Block{Type: "context", Elements: []Text{
		{Type: "mrkdwn", Text: "coalmine · " + e.Time.UTC().Format(time.RFC3339)},
	}})
	return Message{
		Text:        truncate(fallback, maxFallback),
		Attachments: []Attachment{{Color: Color(e.Type), Blocks: blocks}},
	}
}

// detailFields lists details as "*key*\nvalue" fields sorted by key; past
// Slack's ten fields the last one says how many were left out.
func detailFields(details map[string]any) []Text {
	keys := make([]string, 0, len(details))
	for k := range details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Text
	for i, k := range keys {
		if i == maxFields-1 && len(keys) > maxFields {
			out = append(out, Text{Type: "mrkdwn", Text: fmt.Sprintf("_…and %d more_", len(keys)-i)})
			break
		}
		out = append(out, field(k, formatValue(details[k])))
	}
	return out
}

// formatValue prints a detail value; numbers decoded from JSON are float64
// and print without an exponent (1000000, not 1e+06).
func formatValue(v any) string {
	switch v := v.(type) {
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		return v
	case nil:
		return "null"
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}

func field(name, value string) Text {
	return Text{Type: "mrkdwn", Text: truncate("*"+escape(name)+"*\n"+escape(value), maxField)}
}

func mrkdwnOrNil(s string) *Text {
	if s == "" {
		return nil
	}
	return &Text{Type: "mrkdwn", Text: truncate(escape(s), maxSection)}
}

// escape applies Slack's mrkdwn escaping of &, < and >, so event text can
// neither inject links nor mention @channel.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to at most n characters, ending in "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
