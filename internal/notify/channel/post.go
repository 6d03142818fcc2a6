package channel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// UserAgent identifies coalmine to receivers.
const UserAgent = "coalmine-notify/1"

// maxErrorBody is how much of a failed response's body an error quotes.
const maxErrorBody = 256

// Request is one JSON POST to a receiver.
type Request struct {
	// URL is where to post; it may itself be a secret (Slack webhooks).
	URL string
	// Target names the receiver in errors and logs without revealing
	// secrets, e.g. "slack webhook from env SLACK_URL".
	Target string
	// Body is the JSON document to send.
	Body []byte
	// Header holds extra headers; Content-Type and User-Agent are set by Post.
	Header http.Header
	// Secrets are values that must never appear in an error (the URL of a
	// secret webhook, a routing key); Post replaces them in error texts.
	// A secret URL must be listed here too.
	Secrets []string
	// Now reads the clock to interpret an HTTP-date Retry-After; nil = time.Now.
	Now func() time.Time
}

// Post sends r with client and classifies the outcome: nil for 2xx, a
// *StatusError for any other status (permanent for 4xx except 408/429), a
// plain (retryable) error for network failures. Errors never contain the
// URL or the listed secrets: net/http quotes the full URL in its errors,
// so the *url.Error layer is replaced by r.Target.
func Post(ctx context.Context, client *http.Client, r Request) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		// The parse error quotes the URL; say only that it is invalid.
		return fmt.Errorf("post to %s: the URL is not valid", r.Target)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		// Only the receiver-side text is redacted: the target is ours.
		return fmt.Errorf("post to %s: %w", r.Target, Redact(err, r.Secrets...))
	}
	defer resp.Body.Close()
	// Read a little of the body for the error message, and drain the
	// rest (bounded) so the connection can be reused.
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	return &StatusError{
		Target:     r.Target,
		Code:       resp.StatusCode,
		RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), now()),
		Body:       redactString(oneLine(strings.ToValidUTF8(string(head), "")), r.Secrets...),
	}
}

// ParseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3). It returns 0 when the value is absent, invalid or in
// the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64(365 * 24 * time.Hour / time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// oneLine collapses whitespace so a response body fits one log line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
