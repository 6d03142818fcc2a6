package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// http2Preface is what every HTTP/2 connection with prior knowledge starts
// with (RFC 9113 §3.4). No HTTP/1.x request line can start with it.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// listenerProtocols is what one listener speaks, from spec.protocols and
// whether it terminates TLS.
type listenerProtocols struct {
	h1 bool
	// h2 over TLS, by ALPN; h2c with prior knowledge on plain text.
	h2TLS bool
	h2c   bool
}

func protocolsOf(s spec.RolloutSpec) listenerProtocols {
	if len(s.Protocols) == 0 {
		// A spec without defaults applied (tests, embedders) means the
		// defaults, never "no protocol".
		s.Protocols = spec.DefaultProtocols()
	}
	tlsOn := s.TLS != nil
	return listenerProtocols{
		h1:    s.HasProtocol(spec.ProtocolH1),
		h2TLS: tlsOn && s.HasProtocol(spec.ProtocolH2),
		h2c:   !tlsOn && s.HasProtocol(spec.ProtocolH2C),
	}
}

// http2 reports whether the listener takes any HTTP/2 connection.
func (p listenerProtocols) http2() bool { return p.h2TLS || p.h2c }

// alpn is what a TLS listener offers, in preference order.
func (p listenerProtocols) alpn() []string {
	var out []string
	if p.h2TLS {
		out = append(out, "h2")
	}
	if p.h1 {
		out = append(out, "http/1.1")
	}
	return out
}

// protocolSplitter sorts the connections of one listener by protocol: the
// HTTP/1.x ones to the fasthttp server (h1), the HTTP/2 ones to the
// net/http server (h2). Each connection is sorted on its own goroutine,
// because sorting waits for the client (a TLS handshake, the first bytes):
// a slow client must not hold up the accept loop.
type protocolSplitter struct {
	below net.Listener
	proto listenerProtocols
	tls   bool
	// sortTimeout bounds the TLS handshake or the wait for enough bytes
	// to tell HTTP/2 from HTTP/1.x (trafficRouting.timeouts.requestHeaders).
	sortTimeout time.Duration

	h1, h2 *chanListener
	done   chan struct{}
	once   sync.Once
}

// newProtocolSplitter starts accepting from below; close either of its
// listeners to stop it.
func newProtocolSplitter(below net.Listener, proto listenerProtocols, tlsOn bool, sortTimeout time.Duration) *protocolSplitter {
	s := &protocolSplitter{below: below, proto: proto, tls: tlsOn, sortTimeout: sortTimeout, done: make(chan struct{})}
	s.h1 = &chanListener{s: s, ch: make(chan net.Conn)}
	s.h2 = &chanListener{s: s, ch: make(chan net.Conn)}
	go s.acceptLoop()
	return s
}

func (s *protocolSplitter) acceptLoop() {
	for {
		c, err := s.below.Accept()
		if err != nil {
			// The guarded listener retries everything but its own close.
			s.close()
			return
		}
		go s.sort(c)
	}
}

func (s *protocolSplitter) close() {
	s.once.Do(func() { close(s.done) })
	_ = s.below.Close()
}

// sort finds out a connection's protocol and hands it to that server.
func (s *protocolSplitter) sort(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(s.sortTimeout))
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			return
		}
		_ = c.SetDeadline(time.Time{})
		// net/http serves HTTP/2 over TLS only on a *tls.Conn itself.
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			s.h2.deliver(tc)
			return
		}
		if !s.proto.h1 {
			_ = c.Close()
			return
		}
		s.h1.deliver(&tlsLineConn{Conn: tc})
		return
	}
	pre, isH2 := readPreface(c)
	_ = c.SetDeadline(time.Time{})
	rc := &replayConn{Conn: c, pre: pre}
	switch {
	case isH2:
		s.h2.deliver(rc)
	case s.proto.h1:
		// Including a client that sent nothing in time: the HTTP/1.1
		// server answers it 408 as it always has.
		s.h1.deliver(rc)
	default:
		_, _ = c.Write(h1RefusedResponse)
		_ = c.Close()
	}
}

// h1RefusedResponse answers an HTTP/1.x request on a listener that speaks
// only h2c.
var h1RefusedResponse = []byte("HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\nContent-Length: 67\r\n\r\n" +
	"coalmine: this listener speaks HTTP/2 only (spec.protocols is h2c)\n")

// readPreface reads until the bytes differ from the HTTP/2 preface or the
// whole preface has arrived, and returns what it read. An HTTP/1.x request
// differs at its first or second byte ("P" of POST is followed by "O"), so
// it is never held up; only a client that sends nothing waits, until the
// deadline.
func readPreface(c net.Conn) ([]byte, bool) {
	buf := make([]byte, 0, len(http2Preface))
	for len(buf) < len(http2Preface) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if !bytes.HasPrefix([]byte(http2Preface), buf) {
			return buf, false
		}
		if err != nil {
			return buf, false
		}
	}
	return buf, true
}

// replayConn is a connection whose first bytes were read to sort it; they
// are read again before the rest.
type replayConn struct {
	net.Conn
	pre []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// NetConn lets asClientConn find the clientConn below.
func (c *replayConn) NetConn() net.Conn { return c.Conn }

// requestLineTooLong passes the question to the clientConn, which counted
// the replayed bytes when they were first read.
func (c *replayConn) requestLineTooLong(n int) bool {
	if lc, ok := c.Conn.(lineCounter); ok {
		return lc.requestLineTooLong(n)
	}
	return false
}

// chanListener is one side of a protocolSplitter, as a server sees it.
type chanListener struct {
	s  *protocolSplitter
	ch chan net.Conn
}

// deliver hands c to the server, or closes it when the server is gone.
func (l *chanListener) deliver(c net.Conn) {
	if l == l.s.h2 {
		if cc := asClientConn(c); cc != nil {
			cc.http2 = true
		}
	}
	select {
	case l.ch <- c:
	case <-l.s.done:
		_ = c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.s.done:
		return nil, net.ErrClosed
	}
}

// Close stops the whole splitter: both servers stop together.
func (l *chanListener) Close() error {
	l.s.close()
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.s.below.Addr() }
