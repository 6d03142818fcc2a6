package proxy

import (
	"crypto/tls"
	"net"
	"time"
)

// upstreamConn is a connection to an upstream endpoint that gives the
// response timeout the meaning the docs promise: the time to the response's
// first byte, not to its last. fasthttp's client sets one read deadline,
// now + ReadTimeout, before reading each response and leaves it for the
// whole body, which cut any stream longer than the response timeout (SSE,
// long polls, downloads to slow clients). Here that deadline stands only
// until the first byte arrives; after it, reads fail only after the idle
// time without progress (idleTimer), so a body that keeps flowing flows
// for as long as it lasts, and one that stalls is cut after the idle time.
// Writes get the same idle rule, so a request body streamed to an upstream
// that stopped reading cannot hang forever.
//
// For https endpoints it wraps the *tls.Conn (the handshake is done in
// Dial, under the connect timeout), so it sees the plaintext: a TLS record
// arriving after the request (a session ticket) is not mistaken for the
// response's first byte.
//
// A connection is used by one request at a time, and by one goroutine at a
// time for reads and for writes, so the fields need no synchronisation
// beyond what the connection pool already gives.
type upstreamConn struct {
	net.Conn
	// awaitingResponse is set when the client arms the response deadline
	// and cleared by the first byte read after it.
	awaitingResponse bool
	rd, wr           idleTimer
}

func newUpstreamConn(c net.Conn, idle time.Duration) *upstreamConn {
	_, isTLS := c.(*tls.Conn)
	return &upstreamConn{Conn: c, rd: idleTimer{idle: int64(idle)}, wr: idleTimer{idle: int64(idle), strict: isTLS}}
}

// Handshake makes fasthttp take the connection as TLS already (it would
// wrap a conn without it in another tls.Client); a plain one has nothing
// to do.
func (c *upstreamConn) Handshake() error {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.Handshake()
	}
	return nil
}

// SetReadDeadline is called by the client with now + response timeout just
// before it reads a response (and with the zero time to clear it).
func (c *upstreamConn) SetReadDeadline(t time.Time) error {
	c.awaitingResponse = !t.IsZero()
	c.rd.set = 0
	return c.Conn.SetReadDeadline(t)
}

func (c *upstreamConn) SetDeadline(t time.Time) error {
	c.awaitingResponse = !t.IsZero()
	c.rd.set, c.wr.set = 0, 0
	return c.Conn.SetDeadline(t)
}

func (c *upstreamConn) SetWriteDeadline(t time.Time) error {
	c.wr.set = 0
	return c.Conn.SetWriteDeadline(t)
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	if c.awaitingResponse {
		n, err := c.Conn.Read(p)
		if n > 0 {
			// The response has begun: from here on only the idle time
			// applies.
			c.awaitingResponse = false
			c.rd.set = 0
			c.rd.start(nowNano())
		}
		return n, err
	}
	if c.rd.idle <= 0 {
		return c.Conn.Read(p)
	}
	return idleRead(c.Conn, &c.rd, p)
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	if c.wr.idle <= 0 {
		return c.Conn.Write(p)
	}
	return idleWrite(c.Conn, &c.wr, p)
}
