package channel

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ErrPermanent marks a delivery error that retrying cannot fix (the
// receiver rejected the request with a 4xx other than 408 and 429). The
// dispatcher gives up on the event instead of blocking the channel forever.
var ErrPermanent = errors.New("permanent delivery failure")

// StatusError is a non-2xx answer of a receiver.
type StatusError struct {
	// Target describes the receiver without revealing secrets.
	Target string
	Code   int
	// RetryAfter is the wait the receiver asked for (Retry-After), 0 if none.
	RetryAfter time.Duration
	// Body is the start of the response body, with secrets removed.
	Body string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("post to %s: status %d", e.Target, e.Code)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Retryable reports whether the status is worth retrying: 408, 429 and 5xx.
func (e *StatusError) Retryable() bool {
	return e.Code == 408 || e.Code == 429 || e.Code >= 500
}

// Unwrap makes errors.Is(err, ErrPermanent) true for non-retryable codes.
func (e *StatusError) Unwrap() error {
	if e.Retryable() {
		return nil
	}
	return ErrPermanent
}

// IsPermanent reports whether err wraps ErrPermanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// RetryAfter returns the wait a receiver asked for with Retry-After.
func RetryAfter(err error) (time.Duration, bool) {
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, true
	}
	return 0, false
}

// SecretURLParts lists what must be hidden of a URL that is a secret (a
// Slack incoming webhook, a webhook given by urlFrom): the URL itself and
// every part a receiver might quote on its own, its path, query, password,
// path segments and query values (those of 4 characters or more, so that
// ordinary words of an error message survive).
func SecretURLParts(raw string) []string {
	parts := []string{raw}
	u, err := url.Parse(raw)
	if err != nil {
		return parts
	}
	parts = append(parts, u.EscapedPath(), u.Path, u.RawQuery)
	if p, ok := u.User.Password(); ok {
		parts = append(parts, p)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= 4 {
			parts = append(parts, seg)
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			if len(v) >= 4 {
				parts = append(parts, v)
			}
		}
	}
	return slices.DeleteFunc(parts, func(s string) bool { return len(s) < 4 })
}

// redactedError carries the text of an error with secrets replaced while
// keeping the original chain for errors.Is/As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Redact returns err with every occurrence of the secrets in its text
// replaced by "[redacted]". Empty secrets are ignored.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := redactString(err.Error(), secrets...)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

func redactString(s string, secrets ...string) string {
	// Longest first, so a secret that contains another is replaced whole.
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}
