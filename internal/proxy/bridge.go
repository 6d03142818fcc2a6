package proxy

import (
	"context"
	"io"
	"net/http"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// maxBridgedBody bounds the body of an HTTP/1.1 request carried to an h2c
// endpoint: the bridge reads it whole before it sends anything.
const maxBridgedBody = 16 << 20

// bridgedKey marks a request's context as bridged from HTTP/1.1.
type bridgedKey struct{}

func isBridged(r *http.Request) bool { return r.Context().Value(bridgedKey{}) != nil }

// newBridge serves HTTP/1.1 requests of a rollout whose endpoints speak
// only HTTP/2 (h2c://) with the HTTP/2 handler.
//
// Two things fasthttpadaptor does not do right for a proxy are done here
// first. A streamed body (chunked, or larger than the server buffers) is
// read whole, bounded, and a read that fails is refused: the adaptor would
// otherwise send the upstream a request whose body is the read error's
// text. And the request's context is detached from fasthttp's, which ends
// with the server (a drain or a listener change would cancel every bridged
// request in flight, not let it finish).
func (rp *rolloutProxy) newBridge() fasthttp.RequestHandler {
	adapt := fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(context.WithoutCancel(r.Context()), bridgedKey{}, true)
		rp.serveHTTP2(w, r.WithContext(ctx))
	}))
	return func(ctx *fasthttp.RequestCtx) {
		if ctx.Request.IsBodyStream() {
			body, err := io.ReadAll(io.LimitReader(ctx.RequestBodyStream(), maxBridgedBody+1))
			if err != nil {
				rp.rejectBody(ctx, err)
				return
			}
			if cl := ctx.Request.Header.ContentLength(); cl > 0 && len(body) < cl {
				// The stream ends at the connection's end, short of the
				// length announced: the client stopped sending.
				rp.reject(ctx, statusClientClosedRequest, telemetry.RejectBodyAborted,
					"the client closed the connection before sending the whole request body")
				return
			}
			if len(body) > maxBridgedBody {
				rp.reject(ctx, fasthttp.StatusRequestEntityTooLarge, telemetry.RejectBadRequest,
					"the request body is larger than 16 MiB, the most an HTTP/1.1 request to an h2c:// endpoint may carry (it is read whole first); send it over HTTP/2")
				return
			}
			ctx.Request.SetBodyStream(nil, 0)
			ctx.Request.SetBody(body)
			ctx.Request.Header.SetContentLength(len(body))
		}
		adapt(ctx)
	}
}
