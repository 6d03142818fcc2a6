// Package pagerduty opens and closes PagerDuty incidents through the Events
// API v2 (https://developer.pagerduty.com/docs/events-API-v2/overview/).
//
// A channel triggers an alert with dedup_key "coalmine/<rollout>" on
// rollout-aborted, analysis-failed and analysis-error, when the type is in
// its `on` list; repeated triggers join the same alert. It resolves that
// alert on the next rollout-completed, whether or not rollout-completed is
// listed, but only while it has an incident open (channel.State, persisted
// with the cursor, so a restart remembers). Every other event is skipped:
// PagerDuty pages people, it is not an event log.
package pagerduty

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify/channel"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// DefaultURL is the Events API v2 endpoint.
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// Event actions.
const (
	ActionTrigger = "trigger"
	ActionResolve = "resolve"
)

// maxSummary is the Events API limit on payload.summary.
const maxSummary = 1024

// severities lists the event types that trigger, with their severity.
var severities = map[string]string{
	"rollout-aborted": "critical",
	"analysis-failed": "error",
	"analysis-error":  "error",
}

// Action decides what event type t means for a channel: ActionTrigger,
// ActionResolve, or "" (skip). subscribed reports whether t is in the
// channel's `on` list; open whether the channel has an incident open.
func Action(t string, subscribed, open bool) string {
	switch {
	case severities[t] != "" && subscribed:
		return ActionTrigger
	case t == "rollout-completed" && open:
		return ActionResolve
	default:
		return ""
	}
}

// Event is the Events API v2 request body.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key"`
	Payload     *Payload `json:"payload,omitempty"`
}

// Payload describes a triggered alert.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// DedupKey is the alert key of a rollout: one open alert per rollout.
func DedupKey(rollout string) string { return "coalmine/" + rollout }

// Build renders the request for e and action (routing key left empty; the
// caller fills it in so that Build stays free of secrets).
func Build(e model.Event, action string) Event {
	out := Event{EventAction: action, DedupKey: DedupKey(e.Rollout)}
	if action != ActionTrigger {
		return out
	}
	summary := fmt.Sprintf("coalmine: %s %s (revision %d)", e.Rollout, e.Type, e.Revision)
	if e.Message != "" {
		summary += ": " + e.Message
	}
	details := map[string]any{"event": e.Type, "seq": e.Seq, "revision": e.Revision, "message": e.Message}
	if len(e.Details) > 0 {
		details["details"] = e.Details
	}
	out.Payload = &Payload{
		Summary:       truncate(summary, maxSummary),
		Source:        "coalmine",
		Severity:      severities[e.Type],
		Timestamp:     e.Time.UTC().Format(time.RFC3339Nano),
		Component:     e.Rollout,
		Class:         e.Type,
		CustomDetails: details,
	}
	return out
}

var _ channel.Notifier = (*PagerDuty)(nil)

// PagerDuty is a channel.Notifier for `pagerduty:` notifications.
type PagerDuty struct {
	ref  *spec.SecretRef
	url  string
	deps channel.Deps
}

// New returns a PagerDuty channel posting to endpoint (DefaultURL when
// empty). The routing key is resolved on every delivery.
func New(s spec.PagerDutyChannel, endpoint string, deps channel.Deps) *PagerDuty {
	if endpoint == "" {
		endpoint = DefaultURL
	}
	return &PagerDuty{ref: s.RoutingKeyFrom, url: endpoint, deps: deps}
}

// Kind implements channel.Notifier.
func (p *PagerDuty) Kind() string { return channel.KindPagerDuty }

// Notify triggers or resolves the rollout's alert as Action decides and
// returns the new incident state; other events are skipped.
func (p *PagerDuty) Notify(ctx context.Context, e model.Event, subscribed bool, st channel.State) (channel.Result, error) {
	action := Action(e.Type, subscribed, st.OpenIncident)
	if action == "" {
		return channel.Result{State: st}, nil
	}
	key, err := p.deps.Resolve(p.ref)
	if err != nil {
		return channel.Result{}, fmt.Errorf("resolve pagerduty routing key from %s: %w", channel.DescribeRef(p.ref), err)
	}
	ev := Build(e, action)
	ev.RoutingKey = key
	body, err := json.Marshal(ev)
	if err != nil {
		return channel.Result{}, fmt.Errorf("encode pagerduty %s for event %d of rollout %s: %w", action, e.Seq, e.Rollout, err)
	}
	err = channel.Post(ctx, p.deps.Client, channel.Request{
		URL:     p.url,
		Target:  "pagerduty " + p.url,
		Body:    body,
		Secrets: []string{key},
		Now:     p.deps.Now,
	})
	if err != nil {
		return channel.Result{}, fmt.Errorf("%s pagerduty alert %s: %w", action, ev.DedupKey, err)
	}
	st.OpenIncident = action == ActionTrigger
	return channel.Result{Sent: true, State: st}, nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
