package notify

import (
	"errors"
	"slices"

	"github.com/coalmine-dev/coalmine/internal/notify/channel"
	"github.com/coalmine-dev/coalmine/internal/notify/pagerduty"
	"github.com/coalmine-dev/coalmine/internal/notify/slack"
	"github.com/coalmine-dev/coalmine/internal/notify/webhook"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// errNoChannel: spec validation guarantees exactly one channel kind, so
// this only happens with a hand-built spec.
var errNoChannel = errors.New("the notification sets none of webhook, slack, pagerduty")

// kindOf names the channel kind of n ("" when none is set).
func kindOf(n spec.Notification) string {
	switch {
	case n.Webhook != nil:
		return channel.KindWebhook
	case n.Slack != nil:
		return channel.KindSlack
	case n.PagerDuty != nil:
		return channel.KindPagerDuty
	}
	return ""
}

// newNotifier builds the channel of n. There is no fallback kind: an
// unknown kind is an error, shown in Status.
func newNotifier(n spec.Notification, cfg Config) (channel.Notifier, error) {
	deps := channel.Deps{Client: cfg.HTTPClient, Resolve: cfg.Resolve, Now: cfg.Now}
	switch {
	case n.Webhook != nil:
		return webhook.New(*n.Webhook, deps), nil
	case n.Slack != nil:
		return slack.New(*n.Slack, deps), nil
	case n.PagerDuty != nil:
		return pagerduty.New(*n.PagerDuty, cfg.PagerDutyURL, deps), nil
	}
	return nil, errNoChannel
}

// subscriber reports whether an event type is in an `on` list.
type subscriber struct {
	all   bool
	types []string
}

func newSubscriber(on []string) subscriber {
	return subscriber{all: slices.Contains(on, spec.NotifyAllEvents), types: slices.Clone(on)}
}

func (s subscriber) subscribes(eventType string) bool {
	return s.all || slices.Contains(s.types, eventType)
}
