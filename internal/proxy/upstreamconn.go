package proxy

import (
	"net"
	"time"
)

// upstreamConn is a connection to an upstream endpoint that gives the
// response timeout the meaning the docs promise: the time to the response's
// first byte, not to its last. fasthttp's client sets one read deadline,
// now + ReadTimeout, before reading each response and leaves it for the
// whole body, which cut any stream longer than the response timeout (SSE,
// long polls, downloads to slow clients). Here that deadline stands only
// until the first byte arrives; after it, every read may wait the idle time
// and no longer, so a body that keeps flowing flows for as long as it
// lasts, and one that stalls is cut after the idle time.
//
// Writes get the same progress-based deadline, so a request body streamed
// to an upstream that stopped reading cannot hang forever.
//
// A connection is used by one request at a time, and by one goroutine at a
// time for reads and for writes, so the fields need no synchronisation
// beyond what the connection pool already gives.
type upstreamConn struct {
	net.Conn
	idle int64 // ns

	// awaitingResponse is set when the client arms the response deadline
	// and cleared by the first byte read after it.
	awaitingResponse bool
	readDeadline     int64 // unix ns, the idle deadline last set
	writeDeadline    int64
}

func newUpstreamConn(c net.Conn, idle time.Duration) *upstreamConn {
	return &upstreamConn{Conn: c, idle: int64(idle)}
}

// SetReadDeadline is called by the client with now + response timeout just
// before it reads a response (and with the zero time to clear it).
func (c *upstreamConn) SetReadDeadline(t time.Time) error {
	c.awaitingResponse = !t.IsZero()
	c.readDeadline = 0
	return c.Conn.SetReadDeadline(t)
}

func (c *upstreamConn) SetDeadline(t time.Time) error {
	c.awaitingResponse = !t.IsZero()
	c.readDeadline, c.writeDeadline = 0, 0
	return c.Conn.SetDeadline(t)
}

func (c *upstreamConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline = 0
	return c.Conn.SetWriteDeadline(t)
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	if !c.awaitingResponse && c.idle > 0 {
		now := time.Now().UnixNano()
		if c.readDeadline-now < c.idle/2 {
			c.readDeadline = now + c.idle
			_ = c.Conn.SetReadDeadline(time.Unix(0, c.readDeadline))
		}
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.awaitingResponse {
		// The response has begun: from here on only the idle time applies,
		// set before the next read.
		c.awaitingResponse = false
		c.readDeadline = 0
	}
	return n, err
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	if c.idle > 0 {
		now := time.Now().UnixNano()
		if c.writeDeadline-now < c.idle/2 {
			c.writeDeadline = now + c.idle
			_ = c.Conn.SetWriteDeadline(time.Unix(0, c.writeDeadline))
		}
	}
	return c.Conn.Write(p)
}
