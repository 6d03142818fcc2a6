// Package slack delivers events to a Slack incoming webhook as a message
// with Block Kit blocks inside an attachment coloured by severity.
//
// The webhook URL is itself the credential, so it only ever comes from a
// secret reference and never appears in errors or logs.
package slack

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify/channel"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

var _ channel.Notifier = (*Slack)(nil)

// Slack is a channel.Notifier for `slack:` notifications.
type Slack struct {
	ref  *spec.SecretRef
	deps channel.Deps
}

// New returns a Slack channel; the webhook URL is resolved on every
// delivery so a rotated secret file is picked up without a restart.
func New(s spec.SlackChannel, deps channel.Deps) *Slack {
	return &Slack{ref: s.WebhookURLFrom, deps: deps}
}

// Kind implements channel.Notifier.
func (s *Slack) Kind() string { return channel.KindSlack }

// Notify posts the message of e when the channel subscribes to its type.
func (s *Slack) Notify(ctx context.Context, e model.Event, subscribed bool, st channel.State) (channel.Result, error) {
	if !subscribed {
		return channel.Result{State: st}, nil
	}
	body, err := json.Marshal(Build(e))
	if err != nil {
		return channel.Result{}, fmt.Errorf("encode slack message for event %d of rollout %s: %w", e.Seq, e.Rollout, err)
	}
	target := "slack webhook from " + channel.DescribeRef(s.ref)
	u, err := s.deps.Resolve(s.ref)
	if err != nil {
		return channel.Result{}, fmt.Errorf("resolve %s: %w", target, err)
	}
	err = channel.Post(ctx, s.deps.Client, channel.Request{URL: u, Target: target, Body: body, Secrets: channel.SecretURLParts(u), Now: s.deps.Now})
	if err != nil {
		return channel.Result{}, err
	}
	return channel.Result{Sent: true, State: st}, nil
}
