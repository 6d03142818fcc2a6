package accesslog

import "time"

// verdict is what a parser made of one message.
type verdict uint8

const (
	// verdictRequest: an HTTP request line; the record is filled in.
	verdictRequest verdict = iota
	// verdictIgnored: a well-formed message that is not an HTTP request
	// (an HAProxy tcplog line, connection error or event).
	verdictIgnored
	// verdictMalformed: an access line that is broken or truncated, or
	// anything else the parsers cannot read.
	verdictMalformed
	// verdictForeign: text that does not even start like an access line;
	// the receiver decides from the syslog severity whether it is an
	// event of the load balancer (ignored) or garbage (malformed).
	verdictForeign
)

// record is one HTTP request as an access-log line describes it.
type record struct {
	// backend is the HAProxy backend or NGINX upstream; it aliases the
	// line (and may be empty: NGINX answered without an upstream).
	backend []byte
	// code is the status the client got, 100..599; 499 when the client
	// left before an answer.
	code    int
	latency time.Duration
	// failedConnects and failedTimeouts count attempts on the backend
	// that failed before the one whose answer the client got (HAProxy's
	// retries, NGINX's earlier upstream_status entries).
	failedConnects int
	failedTimeouts int
}

// maxFailedAttempts caps the attempts one line can report, so a forged
// "1/1/1/1/999999999" cannot make the receiver loop.
const maxFailedAttempts = 64

// statusClientClosed is what coalmine's own proxy records for a request
// whose client went away before the answer (NGINX's 499): a 4xx, never
// the version's error.
const statusClientClosed = 499
