package notify

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/coalmine-dev/coalmine/internal/config"
	"github.com/coalmine-dev/coalmine/internal/notify/pagerduty"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
)

// Defaults of Config.
const (
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 5 * time.Minute
	DefaultPollInterval = time.Minute
	DefaultHTTPTimeout  = 10 * time.Second
	defaultBatchSize    = 100
	// maxRetryAfter caps a receiver's Retry-After so a typo on its side
	// cannot park a channel for days.
	maxRetryAfter = time.Hour
)

// Config is what a Dispatcher needs. Only Store is required.
type Config struct {
	// Store holds the event streams (read) and the cursors (read/write).
	Store store.Store
	// Resolve reads the secret references of channels at each delivery;
	// nil = config.ResolveSecret (environment or file).
	Resolve func(*spec.SecretRef) (string, error)
	// HTTPClient sends every notification; nil = a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives delivery failures and cursor resets; nil discards.
	Logger *slog.Logger
	// Now reads the clock (Status.NextRetry, HTTP-date Retry-After); nil = time.Now.
	Now func() time.Time
	// After returns a channel that fires after d; it times retries and the
	// idle poll. nil = time.After. Tests pass a fake to run without waiting.
	After func(d time.Duration) <-chan time.Time
	// Rand returns jitter in [0, 1); nil = math/rand/v2.Float64. It is
	// called from several goroutines and must be safe for that.
	Rand func() float64
	// MinBackoff is the first wait after a failed attempt (default 1s);
	// each further failure doubles it up to MaxBackoff (default 5m). The
	// actual wait is drawn between half the doubled value and the value
	// itself, never below MinBackoff.
	MinBackoff, MaxBackoff time.Duration
	// PollInterval is how often an idle channel looks for events without
	// being woken, a safety net for a missed Wake (default 1m; negative
	// disables it).
	PollInterval time.Duration
	// PagerDutyURL is the Events API v2 endpoint; "" = pagerduty.DefaultURL.
	PagerDutyURL string
	// OnStatus, when set, is called with the rollout's name after the
	// delivery state of one of its channels changed (an event handled, a
	// failed attempt), so the caller can publish the new Status (the watch
	// stream). It runs on the channel's goroutine and must not block.
	OnStatus func(rollout string)
}

// withDefaults fills in every nil or zero field.
func (c Config) withDefaults() Config {
	if c.Store == nil {
		panic("notify.New: Config.Store is required")
	}
	if c.Resolve == nil {
		c.Resolve = config.ResolveSecret
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.PagerDutyURL == "" {
		c.PagerDutyURL = pagerduty.DefaultURL
	}
	return c
}

// backoff is the wait after the failures-th consecutive failed attempt
// (failures >= 1): lo doubled failures-1 times, capped at hi, with "equal
// jitter" (a uniform draw in the upper half, r in [0, 1)) so that channels
// failing together do not retry in lockstep, and never below lo.
func backoff(lo, hi time.Duration, failures int, r float64) time.Duration {
	d := lo
	for i := 1; i < failures && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	j := d/2 + time.Duration(r*float64(d/2))
	return max(j, lo)
}
