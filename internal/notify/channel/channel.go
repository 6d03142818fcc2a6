// Package channel is the contract between the notification dispatcher
// (package notify) and the channel kinds (webhook, slack, pagerduty): the
// Notifier interface, the per-channel State persisted with each cursor, the
// classification of delivery errors into "retry" and "give up", and one
// HTTP helper that keeps secret URLs out of error messages.
//
// It is a separate package so that the channel kinds can name the interface
// in their compile-time guards while notify imports them to build channels.
package channel

import (
	"context"
	"net/http"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Kinds of channel, as reported in model.ChannelStatus.Kind and in the
// kind label of the notification metrics.
const (
	KindWebhook   = "webhook"
	KindSlack     = "slack"
	KindPagerDuty = "pagerduty"
)

// State is what a channel remembers from one event to the next. The
// dispatcher persists it together with the channel's cursor, in the same
// write, so a restart (even kill -9) remembers it exactly as far as the
// cursor goes.
type State struct {
	// OpenIncident is true while this channel has triggered a PagerDuty
	// incident for the rollout that it has not resolved yet.
	OpenIncident bool `json:"openIncident,omitempty"`
}

// Result is the outcome of a successful Notify.
type Result struct {
	// Sent is false when the event did not concern the channel and nothing
	// was sent (counted as skipped).
	Sent bool
	// State is the state to persist with the cursor after this event.
	State State
}

// Notifier delivers the events of one rollout to one channel.
//
// The dispatcher calls Notify from a single goroutine per channel, one
// event at a time and in Seq order, so implementations need no locking of
// their own. Notify must honour ctx (it is cancelled when the channel is
// removed or the process stops).
type Notifier interface {
	// Kind is KindWebhook, KindSlack or KindPagerDuty.
	Kind() string
	// Notify handles e. subscribed reports whether e's type is in the
	// channel's `on` list; st is the state persisted after the previous
	// event. An error that wraps ErrPermanent makes the dispatcher give up
	// on e (logged, counted as failed, the cursor moves past it); any other
	// error is retried with backoff. On error the state is left unchanged.
	Notify(ctx context.Context, e model.Event, subscribed bool, st State) (Result, error)
}

// Resolver reads a secret reference (config.ResolveSecret in production).
// Its errors name the reference, never the value.
type Resolver func(ref *spec.SecretRef) (string, error)

// DescribeRef names a secret reference without its value, for errors and
// logs: "env NAME" or "file PATH".
func DescribeRef(ref *spec.SecretRef) string {
	switch {
	case ref == nil:
		return "a missing secret reference"
	case ref.Env != "":
		return "env " + ref.Env
	default:
		return "file " + ref.File
	}
}

// Deps is what every channel kind needs from the dispatcher.
type Deps struct {
	// Client sends the requests; it should have a timeout.
	Client *http.Client
	// Resolve reads secret references at each delivery, so a rotated
	// secret file is picked up without a restart.
	Resolve Resolver
	// Now reads the clock (HTTP-date Retry-After); nil = time.Now.
	Now func() time.Time
}
