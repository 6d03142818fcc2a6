package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// Accept back-off bounds: net/http's, which has served the Go world well.
// A failed accept (EMFILE when descriptors run out, ENOBUFS, ECONNABORTED)
// is retried after 5 ms, doubling up to 1 s, for as long as it fails.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// guardedListener is a rollout's TCP listener as the server sees it. It
// never gives up on accept errors (the descriptors a burst of connections
// took come back when they close), reports whether it is accepting for
// /readyz, counts client connections, and wraps each one in a clientConn.
// It sits under the TLS layer, so it sees encrypted bytes and the raw
// connection.
type guardedListener struct {
	net.Listener
	stats *telemetry.RolloutStats
	idle  time.Duration
	log   *slog.Logger
	// maxConns caps open connections; tls says whether a TLS layer sits
	// above, where a plain-text 503 would be garbage to the client.
	maxConns int64
	tls      bool
	open     atomic.Int64

	// failing holds the last accept error while accepts fail; nil while the
	// listener accepts.
	failing atomic.Pointer[error]
	closed  chan struct{}
	once    sync.Once
}

func newGuardedListener(ln net.Listener, stats *telemetry.RolloutStats, idle time.Duration, maxConns int, tls bool, log *slog.Logger) *guardedListener {
	return &guardedListener{Listener: ln, stats: stats, idle: idle, maxConns: int64(maxConns), tls: tls, log: log, closed: make(chan struct{})}
}

// overflowResponse is the whole answer to a connection over the cap.
var overflowResponse = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"X-Coalmine-Error: too-many-connections\r\nConnection: close\r\nContent-Length: 79\r\n\r\n" +
	"coalmine: too many client connections (trafficRouting.clientLimits.maxConnections)\n")

// Accept returns the next client connection. Errors other than the
// listener being closed are retried with back-off; the first one of a run
// and the recovery are logged, not every retry.
func (l *guardedListener) Accept() (net.Conn, error) {
	delay := time.Duration(0)
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if prev := l.failing.Swap(nil); prev != nil {
				l.log.Info("listener accepts connections again", "after", *prev)
			}
			if l.open.Add(1) > l.maxConns {
				l.open.Add(-1)
				l.overflow(c)
				continue
			}
			l.stats.ConnectionOpened()
			return &clientConn{Conn: c, l: l, countLines: !l.tls,
				rd: idleTimer{idle: int64(l.idle)}, wr: idleTimer{idle: int64(l.idle)}}, nil
		}
		select {
		case <-l.closed:
			return nil, net.ErrClosed
		default:
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		l.stats.AcceptError()
		if l.failing.Swap(&err) == nil {
			l.log.Error("listener cannot accept connections; retrying with back-off (raise the file-descriptor limit, ulimit -n, or lower clientLimits.maxConnections)", "err", err)
		}
		delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// overflow answers a connection over the cap with 503 and closes it, at
// once: the descriptor it took comes back immediately. The write goes to an
// empty socket buffer, so it does not block the accept loop; a deadline
// makes sure of it.
func (l *guardedListener) overflow(c net.Conn) {
	l.stats.ClientRejected(telemetry.RejectTooManyConnections)
	if !l.tls {
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write(overflowResponse)
	}
	_ = c.Close()
}

// Close stops accepting.
func (l *guardedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// acceptError returns the error accepts are failing with, or nil.
func (l *guardedListener) acceptError() error {
	if p := l.failing.Load(); p != nil {
		return *p
	}
	return nil
}

// clientConn is one client connection, under the TLS layer when there is
// one. It keeps what the server cannot: writes that fail only after the
// idle time without progress (so a client that stops reading its response
// is dropped, while a slow but moving download is not), reads of a request
// body under the same rule once the handler asks for it (enterBodyIdle),
// and, on a plain-text listener, how many bytes have arrived since the
// last line feed, which tells an over-long request line (414) from
// over-long header fields (431) when the header buffer overflows.
//
// Reads happen on one goroutine and writes on one (the same one, except for
// a hijacked upgrade, where each direction has its own), so the read-side
// and write-side fields need no synchronisation.
type clientConn struct {
	net.Conn
	l *guardedListener

	// Read side. lineRun is the number of bytes read since the last '\n'
	// (counted only when countLines: plain text). bodyIdle is set while
	// the handler reads a request body.
	countLines bool
	lineRun    int
	bodyIdle   bool
	rd         idleTimer
	// Write side.
	wr     idleTimer
	closed atomic.Bool
	// http2 is set, before the connection is handed over, for an HTTP/2
	// connection: net/http's server keeps its own deadlines there, and
	// sets them from several goroutines, so the idle machinery above
	// stands aside.
	http2 bool
}

func (c *clientConn) Read(p []byte) (int, error) {
	var n int
	var err error
	if c.bodyIdle {
		n, err = idleRead(c.Conn, &c.rd, p)
	} else {
		n, err = c.Conn.Read(p)
	}
	// Only header bytes need counting; a body is read in body-idle mode.
	if c.countLines && !c.bodyIdle && n > 0 {
		if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
			c.lineRun = n - 1 - i
		} else {
			c.lineRun += n
		}
	}
	return n, err
}

// enterBodyIdle puts reads under the idle rule until the server sets a
// read deadline of its own (the next request's).
func (c *clientConn) enterBodyIdle() {
	if c.rd.idle <= 0 {
		return
	}
	c.bodyIdle = true
	c.rd.set = 0
	c.rd.start(nowNano())
}

func (c *clientConn) Write(p []byte) (int, error) {
	if c.wr.idle <= 0 || c.http2 {
		return c.Conn.Write(p)
	}
	return idleWrite(c.Conn, &c.wr, p)
}

// SetReadDeadline, SetDeadline and SetWriteDeadline pass through; the
// server's own deadlines end body-idle reads, and the cached write
// deadline is forgotten so the next Write sets it again.
func (c *clientConn) SetReadDeadline(t time.Time) error {
	if !c.http2 {
		c.bodyIdle = false
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *clientConn) SetDeadline(t time.Time) error {
	if !c.http2 {
		c.bodyIdle = false
		c.wr.set = 0
	}
	return c.Conn.SetDeadline(t)
}

func (c *clientConn) SetWriteDeadline(t time.Time) error {
	if !c.http2 {
		c.wr.set = 0
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *clientConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
		c.l.stats.ConnectionClosed()
	}
	return c.Conn.Close()
}

// lineCounter is a connection that knows whether the request line alone
// overflowed a header buffer of n bytes.
type lineCounter interface{ requestLineTooLong(n int) bool }

// requestLineTooLong reports whether the bytes read since the last line
// feed fill a header buffer of size n: the request line alone did not fit.
func (c *clientConn) requestLineTooLong(n int) bool { return c.lineRun >= n }

// tlsLineListener wraps each TLS connection to count request bytes above
// the TLS layer (below it, the bytes are ciphertext, where any byte may
// be a line feed).
type tlsLineListener struct{ net.Listener }

func (l tlsLineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*tls.Conn); ok {
		return &tlsLineConn{Conn: tc}, nil
	}
	return c, nil
}

// tlsLineConn is a server TLS connection that counts bytes since the last
// line feed of the plaintext. It keeps every method of *tls.Conn, so the
// server still sees a TLS connection.
type tlsLineConn struct {
	*tls.Conn
	lineRun int
}

func (c *tlsLineConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
			c.lineRun = n - 1 - i
		} else {
			c.lineRun += n
		}
	}
	return n, err
}

func (c *tlsLineConn) requestLineTooLong(n int) bool { return c.lineRun >= n }

// asClientConn finds the clientConn under a server connection, which is
// the clientConn itself or a *tls.Conn around it.
func asClientConn(c net.Conn) *clientConn {
	for range 3 {
		switch v := c.(type) {
		case *clientConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}
