package slack_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify/slack"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

func TestColor(t *testing.T) {
	want := map[string]string{
		"rollout-aborted": slack.ColorDanger, "analysis-failed": slack.ColorDanger,
		"analysis-error": slack.ColorDanger, "endpoint-unhealthy": slack.ColorDanger,
		"rollout-paused": slack.ColorWarning, "analysis-inconclusive": slack.ColorWarning, "analysis-nodata": slack.ColorWarning,
		"rollout-completed": slack.ColorGood, "analysis-successful": slack.ColorGood, "endpoint-healthy": slack.ColorGood,
	}
	for _, typ := range spec.EventTypes {
		w, ok := want[typ]
		if !ok {
			w = slack.ColorNeutral
		}
		if got := slack.Color(typ); got != w {
			t.Errorf("Color(%s) = %s, want %s", typ, got, w)
		}
	}
}

// TestBuildLimits: text is escaped for mrkdwn, long texts are cut to Slack's
// limits and more than ten details end in a summary field.
func TestBuildLimits(t *testing.T) {
	details := map[string]any{}
	for i := range 12 {
		details[fmt.Sprintf("k%02d", i)] = float64(1000000 * i)
	}
	m := slack.Build(model.Event{
		Seq: 9, Time: time.Unix(0, 0), Rollout: "web", Type: "rollout-paused",
		Message: "<!channel> & " + strings.Repeat("x", 4000), Details: details,
	})
	blocks := m.Attachments[0].Blocks
	msg := blocks[1].Text.Text
	if !strings.HasPrefix(msg, "&lt;!channel&gt; &amp; ") || utf8.RuneCountInString(msg) != 3000 || !strings.HasSuffix(msg, "…") {
		t.Errorf("section text %.40q… (%d characters)", msg, utf8.RuneCountInString(msg))
	}
	fields := blocks[2].Fields
	if len(fields) != 10 || fields[0].Text != "*k00*\n0" || fields[1].Text != "*k01*\n1000000" || fields[9].Text != "_…and 3 more_" {
		t.Errorf("detail fields %+v", fields)
	}
	if !strings.HasPrefix(m.Text, "coalmine: web rollout-paused (revision 0): &lt;!channel&gt; &amp; ") || utf8.RuneCountInString(m.Text) > 3000 {
		t.Errorf("fallback %.60q", m.Text)
	}
}
