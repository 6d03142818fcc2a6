package proxy

import (
	"errors"
	"io"
	"net"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// clientBody stands between a client's streamed request body and the
// upstream request that consumes it. It remembers the first error reading
// the body, so a failed upstream request can be blamed correctly: a
// malformed chunk, a client that went away or one that fell silent is the
// client's fault, never the version's or the endpoint's. It also moves the
// client connection's read deadline forward as the body arrives, so an
// upload may last as long as it keeps moving, and one that stalls for the
// idle time is cut (the header deadline would otherwise still be armed).
type clientBody struct {
	r io.Reader
	// remaining is what a Content-Length body still owes, -1 for chunked.
	remaining int64
	// done: the body was read to its end.
	done bool
	err  error
}

var clientBodies = sync.Pool{New: func() any { return new(clientBody) }}

// wrapClientBody puts a clientBody around req's streamed body, or returns
// nil when the request has no body to stream.
func wrapClientBody(ctx *fasthttp.RequestCtx) *clientBody {
	req := &ctx.Request
	if !req.IsBodyStream() || req.Header.ContentLength() == 0 {
		return nil
	}
	b := clientBodies.Get().(*clientBody)
	b.r = req.BodyStream()
	b.remaining = int64(req.Header.ContentLength())
	// The header deadline is still armed on the connection; the body is
	// read under the idle rule instead.
	if cc := asClientConn(ctx.Conn()); cc != nil {
		cc.enterBodyIdle()
	}
	// The server loop keeps its own reference to the original stream and
	// drains it after the handler; replacing the request's reader is safe.
	req.SetBodyStream(b, req.Header.ContentLength())
	return b
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.remaining > 0 {
		b.remaining -= int64(n)
	}
	if err == io.EOF && b.remaining > 0 {
		// The server's stream ends a Content-Length body at the client's
		// EOF without complaint; a body that ends early is truncated.
		err = io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		b.done = true
	}
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// release detaches b from the request and returns it to the pool; the
// request must not read it any more. Closing the request's stream only
// detaches whatever reads through b (it has no Close, nor has the
// mirror's MultiReader around it): the server drains the real stream.
func (b *clientBody) release(req *fasthttp.Request) {
	_ = req.CloseBodyStream()
	*b = clientBody{}
	clientBodies.Put(b)
}

// clientFault maps a client body error to the answer coalmine gives and the
// reason it is counted under: 408 for a client that fell silent, 499
// (nginx's "client closed request") for one that went away, 400 for a body
// that is not valid HTTP framing (a bad chunk size, say).
func clientFault(err error) (int, telemetry.RejectReason) {
	switch {
	case isTimeout(err):
		return fasthttp.StatusRequestTimeout, telemetry.RejectBodyAborted
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isConnReset(err):
		return statusClientClosedRequest, telemetry.RejectBodyAborted
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return statusClientClosedRequest, telemetry.RejectBodyAborted
	}
	return fasthttp.StatusBadRequest, telemetry.RejectBadRequest
}
