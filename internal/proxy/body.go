package proxy

import (
	"sync"

	"github.com/valyala/fasthttp"
)

// upstreamBody relays a streamed upstream response body to the client and,
// when the server closes it after the last byte (or on a client error),
// returns the upstream connection to its pool and frees the version's
// connection slot. Holding the slot until then is what makes
// connectionPool.maxConnections count connections busy streaming a body,
// not only requests waiting for headers.
type upstreamBody struct {
	resp *fasthttp.Response
	pool *pool
	ep   *endpoint
}

var upstreamBodies = sync.Pool{New: func() any { return new(upstreamBody) }}

func (b *upstreamBody) Read(p []byte) (int, error) { return b.resp.BodyStream().Read(p) }

// Close is called exactly once by fasthttp, when the response is written
// or abandoned.
func (b *upstreamBody) Close() error {
	err := b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	b.pool.release(b.ep)
	*b = upstreamBody{}
	upstreamBodies.Put(b)
	return err
}

// relay moves an upstream response into the client response. A streamed
// body keeps the slot until it is fully relayed; anything else releases it
// now.
func relay(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, pl *pool, ep *endpoint) {
	resp.Header.CopyTo(&ctx.Response.Header)
	if resp.IsBodyStream() {
		b := upstreamBodies.Get().(*upstreamBody)
		b.resp, b.pool, b.ep = resp, pl, ep
		ctx.Response.SetBodyStream(b, resp.Header.ContentLength())
		return
	}
	ctx.Response.SetBody(resp.Body())
	fasthttp.ReleaseResponse(resp)
	pl.release(ep)
}
