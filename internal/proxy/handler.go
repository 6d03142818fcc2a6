package proxy

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// Kinds of errors coalmine generates itself, reported in X-Coalmine-Error
// and coalmine_proxy_errors_total, never confused with upstream 5xx.
const (
	errKindConnect    = telemetry.ErrorKind("connect")
	errKindTimeout    = telemetry.ErrorKind("timeout")
	errKindOverflow   = telemetry.ErrorKind("overflow")
	errKindNoEndpoint = telemetry.ErrorKind("no-healthy-endpoint")
	errKindProtocol   = telemetry.ErrorKind("upstream-protocol")
	errKindBodyCut    = telemetry.ErrorKind("body-interrupted")
	errKindLocal      = telemetry.ErrorKind("local-resources")
)

// statusClientClosedRequest records a request whose client went away
// mid-body (nginx's 499); it is a 4xx, so it never counts as the version's error.
const statusClientClosedRequest = 499

var (
	hdrCoalmineError = []byte("X-Coalmine-Error")
	hdrXFF           = "X-Forwarded-For"
	hdrXFProto       = "X-Forwarded-Proto"
	hdrXFHost        = "X-Forwarded-Host"
	hdrSetCookie     = []byte("Set-Cookie")
	hdrMirror        = "X-Coalmine-Mirror"
	protoHTTP11      = []byte("HTTP/1.1")
	protoHTTP10      = []byte("HTTP/1.0")
)

// reqView adapts a fasthttp request to route.Request. It is a single
// pointer, so converting it to the interface does not allocate.
type reqView struct{ r *fasthttp.Request }

func (v reqView) Header(name string) ([]byte, bool) {
	b := v.r.Header.Peek(name)
	return b, b != nil
}

func (v reqView) Cookie(name string) ([]byte, bool) {
	b := v.r.Header.Cookie(name)
	return b, b != nil
}

func (v reqView) Method() []byte { return v.r.Header.Method() }
func (v reqView) Path() []byte   { return v.r.URI().PathOriginal() }

// handle serves one request of a rollout. It reads the routing table and the
// upstream set from atomics: no locks and no logging on this path.
func (rp *rolloutProxy) handle(ctx *fasthttp.RequestCtx) {
	// fasthttp already read the clock when the request arrived; reading it
	// again would cost a second clock call per request.
	start := ctx.Time()
	now := start.UnixNano()
	req := &ctx.Request
	if ambiguousFraming(req) {
		rp.reject(ctx, fasthttp.StatusBadRequest, telemetry.RejectBadRequest,
			"ambiguous message framing: both Content-Length and Transfer-Encoding are present")
		return
	}
	if p := req.Header.Protocol(); !bytes.Equal(p, protoHTTP11) && !bytes.Equal(p, protoHTTP10) {
		// An upstream would answer it 505 and the version would be blamed.
		rp.reject(ctx, fasthttp.StatusHTTPVersionNotSupported, telemetry.RejectBadRequest,
			"this listener speaks HTTP/1.0 and HTTP/1.1 only")
		return
	}
	ups := rp.upstreams.Load()
	if ups.viaHTTP2 {
		// An h2c endpoint speaks no HTTP/1.1: the HTTP/2 path carries the
		// request, with the same routing.
		rp.bridge(ctx)
		return
	}
	tbl := rp.table.Load()
	d := tbl.Decide(reqView{req}, route.Entropy{A: rand.Uint64(), B: rand.Uint64()})

	pl := ups.stable
	if d.Target == route.Canary && ups.canary != nil && ups.canary.available(now) {
		pl = ups.canary
	}
	if req.Header.ConnectionUpgrade() && len(req.Header.Peek("Upgrade")) > 0 {
		rp.upgrade(ctx, pl, ups, start)
		return
	}

	body := wrapClientBody(ctx)
	if body == nil && req.IsBodyStream() {
		// fasthttp attaches an empty stream to body-less requests; dropping
		// it lets the client retry a request on a stale upstream connection
		// (the server still owns and drains the stream).
		_ = req.CloseBodyStream()
	}
	var mirror *fasthttp.Request
	if d.Mirror && pl == ups.stable && ups.canary != nil {
		mirror = rp.captureMirror(req, ups)
	}
	if body != nil && body.err != nil {
		// Buffering the body for the mirror met the client's fault first.
		rp.rejectBody(ctx, body.err)
		body.release(req)
		if mirror != nil {
			fasthttp.ReleaseRequest(mirror)
		}
		return
	}
	rp.prepareRequest(ctx)
	pl, observe := rp.forward(ctx, pl, ups, now, body)
	if body != nil {
		body.release(req)
	}
	if !observe {
		// The failure was not the version's (the client's, or coalmine's
		// own): rp.forward answered and counted it apart, and the version's
		// telemetry does not see it.
		if mirror != nil {
			fasthttp.ReleaseRequest(mirror)
		}
		return
	}
	pl.stats.Observe(ctx.Response.StatusCode(), time.Since(start))
	rp.finishResponse(ctx, req, tbl, &d, pl)
	if mirror != nil {
		rp.mirror.submit(mirrorJob{req: mirror, pool: ups.canary, rollout: rp})
	}
}

// forward sends the request to an endpoint of pl and returns the pool that
// answered, and whether the answer is the version's to observe: false when
// the failure was not the version's (the client's body failed, the
// upstream cut an upload short, coalmine ran out of descriptors), the
// answer already written and counted apart. A failed connection is retried
// once on another endpoint, or on stable when no canary endpoint is left:
// nothing was sent, so the retry is safe for any method, and users see
// stable instead of an error, while the version that refused keeps the
// failure in its telemetry.
func (rp *rolloutProxy) forward(ctx *fasthttp.RequestCtx, pl *pool, ups *upstreamSet, now int64, body *clientBody) (*pool, bool) {
	pl, ep := choose(pl, ups, now, nil)
	if ep == nil {
		rp.proxyError(ctx, pl, fasthttp.StatusServiceUnavailable, errKindNoEndpoint,
			"no healthy endpoint for version "+pl.version)
		return pl, true
	}
	staleRetried, dialRetried := false, false
	// An HTTP/1.0 request may come without Host; an upstream (and the
	// client library) needs one, so it gets the endpoint's, as nginx does.
	hostless := len(ctx.Request.Header.Host()) == 0
	for {
		if !pl.limit.acquire() {
			rp.proxyError(ctx, pl, fasthttp.StatusServiceUnavailable, errKindOverflow,
				"too many concurrent requests for version "+pl.version+" (connectionPool limit)")
			return pl, true
		}
		ep.inflight.Add(1)
		resp := fasthttp.AcquireResponse()
		// The request's scheme is the listener's (https behind TLS); the
		// client refuses a scheme other than its endpoint's.
		ep.setScheme(&ctx.Request)
		if hostless {
			// The URI's host, not the header's: Write sets the Host
			// header from the URI, which was parsed without one.
			ctx.Request.URI().SetHost(ep.addr)
		}
		err := ep.hc.Do(&ctx.Request, resp)
		if err == nil {
			good := resp.StatusCode() < 500
			if good {
				pl.outlier.ok(ep)
			} else {
				rp.noteFailure(pl, ep, now)
			}
			if ep.wantsNotice() {
				rp.answered(pl, ep, good)
			}
			relay(ctx, resp, pl, ep)
			return pl, true
		}
		fasthttp.ReleaseResponse(resp)
		pl.release(ep)
		if body != nil && body.err != nil {
			// The client's body failed while it was being sent: not the
			// upstream's fault, so no ejection and nothing charged to the
			// version.
			rp.rejectBody(ctx, body.err)
			return pl, false
		}
		if body != nil && !body.done && isConnReset(err) {
			// The upstream closed while the body was still being sent: it
			// may have answered early (a 401 to an upload) or given up on a
			// slow client. Ambiguous, so counted apart, not the version's
			// error and no ejection.
			rp.proxyError(ctx, pl, fasthttp.StatusBadGateway, errKindBodyCut,
				"version "+pl.version+" at "+ep.url+" closed the connection before the whole request body was sent")
			return pl, false
		}
		if !staleRetried && staleConnection(err) && replayable(&ctx.Request) {
			// fasthttp's retries met only pooled connections the upstream
			// had closed, and there can be more of them than its retries.
			// Drop the rest and try once more on a fresh connection; a dead
			// endpoint then fails to dial and the request moves on.
			staleRetried = true
			ep.hc.CloseIdleConnections()
			continue
		}
		if isLocalResourceError(err) {
			// Coalmine's own shortage, not the version's failure.
			rp.proxyError(ctx, pl, fasthttp.StatusServiceUnavailable, errKindLocal,
				"coalmine has no resources left to connect (file descriptors or buffers); try again")
			return pl, false
		}
		rp.noteFailure(pl, ep, now)
		switch {
		case isDialError(err):
			if !dialRetried {
				dialRetried = true
				if npl, nep := choose(pl, ups, now, ep); nep != nil {
					// The version that refused keeps the failure; the
					// client gets the retry's answer.
					pl.stats.FailedAttempt(errKindConnect)
					pl, ep = npl, nep
					continue
				}
			}
			rp.proxyError(ctx, pl, fasthttp.StatusBadGateway, errKindConnect,
				"cannot connect to version "+pl.version+" at "+ep.url)
		case isTimeout(err):
			rp.proxyError(ctx, pl, fasthttp.StatusGatewayTimeout, errKindTimeout,
				"version "+pl.version+" at "+ep.url+" did not answer in time")
		default:
			// A static message: the error could quote the upstream's bytes,
			// another user's data on a desynchronised connection.
			rp.proxyError(ctx, pl, fasthttp.StatusBadGateway, errKindProtocol,
				"bad response from version "+pl.version+" at "+ep.url+": not a valid HTTP/1.1 response")
		}
		return pl, true
	}
}

// choose picks the endpoint a request goes to, other than skip: an
// available one of pl; else, for a canary, one of stable (SPEC §3: a
// canary with no endpoint up takes no traffic); else any endpoint of
// stable, available or not. That last is the panic threshold, as in Envoy:
// a health verdict alone never refuses all traffic, only requests that
// really fail get coalmine's errors. It returns nil only when skip was the
// only endpoint left.
func choose(pl *pool, ups *upstreamSet, now int64, skip *endpoint) (*pool, *endpoint) {
	if ep := pl.pick(now, skip); ep != nil {
		return pl, ep
	}
	if pl != ups.stable {
		pl = ups.stable
		if ep := pl.pick(now, skip); ep != nil {
			return pl, ep
		}
	}
	return pl, pl.pickAny(skip)
}

// answered notes that an endpoint without active checks answered a request
// (good: below 500): any answer proves it reachable, and a good one after
// it was announced unhealthy is its recovery, announced once. With an
// active health check the check decides instead, and an answer in panic
// mode does not overrule it. The caller filters on two atomic loads, so the
// steady state never gets here.
func (rp *rolloutProxy) answered(pl *pool, ep *endpoint, good bool) {
	ep.up.CompareAndSwap(false, true)
	if good {
		go rp.announce(pl, ep, true, "answers requests again")
	}
}

func (rp *rolloutProxy) noteFailure(pl *pool, ep *endpoint, now int64) {
	if pl.outlier.fail(ep, now) {
		rp.onEjected(pl, ep, pl.outlier.ejection)
	}
}

// prepareRequest applies gateway rules (RFC 9110 §7.6): drop hop-by-hop
// headers and add forwarding headers.
func (rp *rolloutProxy) prepareRequest(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	stripRequestHopByHop(h)
	h.ResetConnectionClose()

	var buf [96]byte
	b := buf[:0]
	if prior := h.Peek(hdrXFF); len(prior) > 0 {
		b = append(b, prior...)
		b = append(b, ", "...)
	}
	b = appendIP(b, ctx.RemoteIP())
	h.SetBytesV(hdrXFF, b)
	if ctx.IsTLS() {
		h.Set(hdrXFProto, "https")
	} else {
		h.Set(hdrXFProto, "http")
	}
	if host := h.Host(); len(host) > 0 && len(h.Peek(hdrXFHost)) == 0 {
		h.SetBytesV(hdrXFHost, host)
	}
}

// finishResponse removes hop-by-hop headers from the upstream response and
// adds coalmine's own. The status line speaks HTTP/1.1 whatever the
// upstream spoke: a client is answered in its own protocol (fasthttp keeps
// an HTTP/1.0 client's framing itself), and an HTTP/1.0 upstream's status
// line would cost an HTTP/1.1 client its keep-alive connection.
func (rp *rolloutProxy) finishResponse(ctx *fasthttp.RequestCtx, req *fasthttp.Request, tbl *route.Table, d *route.Decision, pl *pool) {
	h := &ctx.Response.Header
	stripResponseHopByHop(h)
	if !bytes.Equal(h.Protocol(), protoHTTP11) {
		h.SetProtocol(protoHTTP11)
	}
	if pl.headerName != nil {
		h.SetBytesKV(pl.headerName, pl.versionHeader)
	}
	if d.NewSubject {
		var buf [192]byte
		h.AddBytesKV(hdrSetCookie, tbl.AppendSetCookie(buf[:0], d, ctx.IsTLS()))
	}
}

// proxyError replaces the response with one generated by coalmine.
func (rp *rolloutProxy) proxyError(ctx *fasthttp.RequestCtx, pl *pool, code int, kind telemetry.ErrorKind, msg string) {
	pl.stats.ProxyError(kind)
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(code)
	ctx.Response.Header.SetBytesKV(hdrCoalmineError, []byte(kind))
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.SetBodyString("coalmine: " + msg + "\n")
}

// reject answers a request coalmine refuses because of the client, and
// closes the connection (after a framing error, where the next request
// would start is unknown). It never counts against a version. The message
// never echoes the request: it may carry cookies and tokens.
func (rp *rolloutProxy) reject(ctx *fasthttp.RequestCtx, code int, reason telemetry.RejectReason, msg string) {
	rp.stats.ClientRejected(reason)
	ctx.Response.Reset()
	ctx.SetStatusCode(code)
	ctx.Response.Header.SetBytesKV(hdrCoalmineError, []byte(reason))
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.SetBodyString("coalmine: " + msg + "\n")
	ctx.SetConnectionClose()
}

// rejectBody answers a request whose body the client failed to deliver.
func (rp *rolloutProxy) rejectBody(ctx *fasthttp.RequestCtx, err error) {
	code, reason := clientFault(err)
	msg := "the request body is malformed"
	switch code {
	case fasthttp.StatusRequestTimeout:
		msg = "the request body stopped arriving for longer than the idle timeout"
	case statusClientClosedRequest:
		msg = "the client closed the connection before sending the whole request body"
	}
	rp.reject(ctx, code, reason, msg)
}

// ambiguousFraming reports a request carrying both Content-Length and
// Transfer-Encoding (RFC 9112 §6.3), the classic smuggling vector. fasthttp
// only closes the connection after such a request; we refuse it. The parser
// marks such requests connection-close, so the scan runs only then.
func ambiguousFraming(req *fasthttp.Request) bool {
	if !req.Header.ConnectionClose() {
		return false
	}
	raw := req.Header.RawHeaders()
	return containsHeaderName(raw, "content-length") && containsHeaderName(raw, "transfer-encoding")
}

// containsHeaderName reports whether a raw header block has a line starting
// with name followed by a colon, case-insensitively.
func containsHeaderName(raw []byte, name string) bool {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) > len(name) && line[len(name)] == ':' && bytes.EqualFold(line[:len(name)], []byte(name)) {
			return true
		}
	}
	return false
}

// hopByHop lists the RFC 9110 §7.6.1 connection-specific headers besides
// Connection itself, which fasthttp manages.
var hopByHop = [...]string{"Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Proxy-Authenticate"}

// stripRequestHopByHop deletes hop-by-hop headers and those named in
// Connection. It first scans without writing, because most requests carry
// none. (Two concrete copies instead of one generic function: the generic
// one could not inline the header iterator and allocated per request.)
func stripRequestHopByHop(h *fasthttp.RequestHeader) {
	found := false
	for k := range h.All() {
		if isHopByHop(k) {
			found = true
			break
		}
	}
	if found {
		for _, name := range hopByHop {
			h.Del(name)
		}
	}
	if c := h.Peek("Connection"); len(c) > 0 {
		stripConnectionTokens(c, h.Del)
		h.Del("Connection")
	}
}

// stripResponseHopByHop is stripRequestHopByHop for responses.
func stripResponseHopByHop(h *fasthttp.ResponseHeader) {
	found := false
	for k := range h.All() {
		if isHopByHop(k) {
			found = true
			break
		}
	}
	if found {
		for _, name := range hopByHop {
			h.Del(name)
		}
	}
	if c := h.Peek("Connection"); len(c) > 0 {
		stripConnectionTokens(c, h.Del)
		h.Del("Connection")
	}
}

// stripConnectionTokens deletes the headers a Connection header names.
func stripConnectionTokens(connection []byte, del func(string)) {
	if len(connection) == 0 {
		return
	}
	for _, tok := range bytes.Split(connection, []byte(",")) {
		tok = bytes.TrimSpace(tok)
		if len(tok) == 0 || protectedFromConnection(tok) {
			continue
		}
		del(string(tok))
	}
}

// protectedFromConnection lists headers a Connection header may not remove:
// the connection options themselves, and the headers that frame or route
// the message. Deleting Content-Length because a client named it would
// desynchronise the upstream connection.
func protectedFromConnection(tok []byte) bool {
	for _, name := range [...]string{"close", "keep-alive", "upgrade", "content-length", "transfer-encoding", "host"} {
		if bytes.EqualFold(tok, []byte(name)) {
			return true
		}
	}
	return false
}

func isHopByHop(k []byte) bool {
	for _, name := range hopByHop {
		if len(k) == len(name) && bytes.EqualFold(k, []byte(name)) {
			return true
		}
	}
	return false
}

func appendIP(b []byte, ip net.IP) []byte {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return append(b, "unknown"...)
	}
	return a.Unmap().AppendTo(b)
}

func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, syscall.ECONNREFUSED)
}

// replayable reports a request that may be sent again after its connection
// failed: an idempotent method (RFC 9110 §9.2.2) without a streamed body.
func replayable(req *fasthttp.Request) bool {
	switch string(req.Header.Method()) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return !req.IsBodyStream()
	}
	return false
}

// isLocalResourceError reports a connection attempt that failed for lack of
// resources on coalmine's side, whatever the upstream is doing.
func isLocalResourceError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// isTimeout reports a deadline that fired, however it is wrapped
// (including fasthttp's own ErrTimeout).
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, fasthttp.ErrTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
