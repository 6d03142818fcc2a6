// Package webhook delivers events to a generic HTTP receiver: each event is
// POSTed as the JSON of model.Event, with the channel's configured headers
// and an idempotency key so receivers can drop the rare duplicate.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify/channel"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// EventIDHeader carries "<rollout>/<seq>", unique per event and identical
// on every retry of it.
const EventIDHeader = "X-Coalmine-Event-Id"

var _ channel.Notifier = (*Webhook)(nil)

// Webhook is a channel.Notifier for `webhook:` notifications.
type Webhook struct {
	spec   spec.WebhookChannel
	header http.Header // built once, never mutated after New
	deps   channel.Deps
}

// New returns a webhook channel. The URL is spec.URL, or the secret that
// spec.URLFrom names, resolved on every delivery so that a rotated secret
// file is picked up without a restart.
func New(s spec.WebhookChannel, deps channel.Deps) *Webhook {
	h := http.Header{}
	for k, v := range s.Headers {
		h.Set(k, v)
	}
	return &Webhook{spec: s, header: h, deps: deps}
}

// Kind implements channel.Notifier.
func (w *Webhook) Kind() string { return channel.KindWebhook }

// Notify POSTs e when the channel subscribes to its type and skips it
// otherwise. Content-Type and the event id header override configured
// headers of the same name.
func (w *Webhook) Notify(ctx context.Context, e model.Event, subscribed bool, st channel.State) (channel.Result, error) {
	if !subscribed {
		return channel.Result{State: st}, nil
	}
	body, err := json.Marshal(e)
	if err != nil {
		return channel.Result{}, fmt.Errorf("encode event %d of rollout %s: %w", e.Seq, e.Rollout, err)
	}
	req := channel.Request{Body: body, Header: w.header.Clone(), Now: w.deps.Now}
	req.Header.Set(EventIDHeader, e.Rollout+"/"+strconv.FormatUint(e.Seq, 10))
	if w.spec.URLFrom != nil {
		u, err := w.deps.Resolve(w.spec.URLFrom)
		if err != nil {
			return channel.Result{}, fmt.Errorf("resolve webhook URL: %w", err)
		}
		req.URL, req.Target, req.Secrets = u, "webhook from "+channel.DescribeRef(w.spec.URLFrom), channel.SecretURLParts(u)
	} else {
		req.URL, req.Target = w.spec.URL, redactedURL(w.spec.URL)
	}
	if err := channel.Post(ctx, w.deps.Client, req); err != nil {
		return channel.Result{}, err
	}
	return channel.Result{Sent: true, State: st}, nil
}

// redactedURL hides a password in the URL's user info.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "webhook (invalid URL)"
	}
	return u.Redacted()
}
