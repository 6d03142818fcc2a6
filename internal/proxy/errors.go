package proxy

import (
	"errors"
	"io"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// serverError answers a request the server could not read: fasthttp calls
// it with the read or parse error, before any handler. The answer names the
// problem and the limit involved, never the request's bytes (they may hold
// cookies and tokens), and the rejection is counted for the rollout, never
// for a version.
func (rp *rolloutProxy) serverError(maxHeaderBytes int) func(*fasthttp.RequestCtx, error) {
	limit := strconv.Itoa(maxHeaderBytes)
	return func(ctx *fasthttp.RequestCtx, err error) {
		var small *fasthttp.ErrSmallBuffer
		switch {
		case errors.As(err, &small):
			if lc, ok := ctx.Conn().(lineCounter); ok && lc.requestLineTooLong(maxHeaderBytes) {
				rp.reject(ctx, fasthttp.StatusRequestURITooLong, telemetry.RejectURITooLong,
					"the request line is longer than "+limit+" bytes (trafficRouting.clientLimits.maxHeaderBytes)")
				return
			}
			rp.reject(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, telemetry.RejectHeaderTooLarge,
				"the request line and header fields are larger than "+limit+" bytes (trafficRouting.clientLimits.maxHeaderBytes)")
		case isTimeout(err):
			rp.reject(ctx, fasthttp.StatusRequestTimeout, telemetry.RejectHeaderTimeout,
				"the request headers did not arrive within trafficRouting.timeouts.requestHeaders")
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			// The body's first bytes are read with the headers; the client
			// closed before sending them.
			rp.reject(ctx, statusClientClosedRequest, telemetry.RejectBodyAborted,
				"the client closed the connection before sending the whole request")
		default:
			// fasthttp's parse errors quote the request (even with
			// SecureErrorLogMessage), so they are never passed on.
			rp.reject(ctx, fasthttp.StatusBadRequest, telemetry.RejectBadRequest,
				"malformed request: the request line or a header field is not valid HTTP/1.1")
		}
	}
}
