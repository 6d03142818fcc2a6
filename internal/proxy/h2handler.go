package proxy

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// The HTTP/2 request path (and that of HTTP/1.1 requests to h2c
// endpoints). It makes the same decisions as the fasthttp path, with
// net/http's types: the same route.Table, endpoint choice, health,
// ejection and version limits; and it adds what HTTP/2 and gRPC need:
// full-duplex streaming with a flush after every write, trailers, the
// call's grpc-timeout as the upstream deadline, cancellation by the
// client's context, and coalmine's own errors as gRPC statuses.

// h2Request adapts *http.Request to route.Request. gRPC metadata are
// HTTP/2 headers, so a user key or header route on metadata just works.
type h2Request struct{ r *http.Request }

func (v h2Request) Header(name string) ([]byte, bool) {
	key := http.CanonicalHeaderKey(name)
	if key == "Host" {
		// Go keeps :authority (and HTTP/1.1's Host) in r.Host only; a
		// header route on Host must match as it does over HTTP/1.1.
		if v.r.Host == "" {
			return nil, false
		}
		return []byte(v.r.Host), true
	}
	vv := v.r.Header[key]
	if len(vv) == 0 {
		return nil, false
	}
	return []byte(vv[0]), true
}

func (v h2Request) Cookie(name string) ([]byte, bool) {
	c, err := v.r.Cookie(name)
	if err != nil {
		return nil, false
	}
	return []byte(c.Value), true
}

func (v h2Request) Method() []byte { return []byte(v.r.Method) }
func (v h2Request) Path() []byte   { return []byte(v.r.URL.EscapedPath()) }

// errResponseTimeout ends an upstream request whose response headers did
// not come within trafficRouting.timeouts.response.
var errResponseTimeout = errors.New("no response headers within trafficRouting.timeouts.response")

// h2Call is one request on the HTTP/2 path.
type h2Call struct {
	rp    *rolloutProxy
	w     http.ResponseWriter
	r     *http.Request
	start time.Time
	tbl   *route.Table
	d     route.Decision
	grpc  bool
	// deadline is set when the call carries grpc-timeout, timeout.
	deadline bool
	timeout  time.Duration
	// observed: the answer's status is recorded (HTTP), so a client that
	// goes away afterwards is not counted a second time.
	observed bool
	body     *h2Body
	respMsgs grpcFrames
}

// serveHTTP2 serves one request that came over HTTP/2 (or an HTTP/1.1
// request bridged to an h2c endpoint).
func (rp *rolloutProxy) serveHTTP2(w http.ResponseWriter, r *http.Request) {
	c := &h2Call{rp: rp, w: w, r: r, start: time.Now(), grpc: isGRPC(r.Header.Get("Content-Type"))}
	now := c.start.UnixNano()
	c.tbl = rp.table.Load()
	ups := rp.upstreams.Load()
	c.d = c.tbl.Decide(h2Request{r}, route.Entropy{A: rand.Uint64(), B: rand.Uint64()})
	pl := ups.stable
	if c.d.Target == route.Canary && ups.canary != nil && ups.canary.available(now) {
		pl = ups.canary
	}
	if r.Body != nil && r.Body != http.NoBody {
		c.body = &h2Body{rc: r.Body, grpc: c.grpc}
	}
	// A bridged HTTP/1.1 request's headers alias fasthttp's buffers, which
	// the connection reuses for its next request: it is not mirrored.
	mirror := c.d.Mirror && pl == ups.stable && ups.canary != nil && !isBridged(r)
	if mirror && c.body != nil {
		c.body.keepCopy(ups.mirrorMaxBody)
	}
	c.forward(pl, ups, now)
	if mirror {
		c.mirror(ups)
	}
}

// mirror sends a copy of the call to the canary once the call is over, as
// the HTTP/1.1 path does once the response is produced. The body was
// copied as it streamed to the upstream, never held back from it, so only
// a body that ended within mirrorMaxBodyBytes can be mirrored; a gRPC call
// that streamed more than one message is not (a mirror is a unary replay).
func (c *h2Call) mirror(ups *upstreamSet) {
	var body []byte
	if c.body != nil {
		var ok bool
		if body, ok = c.body.copyIfComplete(); !ok {
			c.rp.stats.MirrorDropped(dropBodyTooLarge)
			return
		}
	}
	if c.grpc && c.streaming() {
		return
	}
	h := c.r.Header.Clone()
	for k := range h {
		if h2HopByHop(k) {
			delete(h, k)
		}
	}
	if te := c.r.Header.Get("Te"); strings.EqualFold(strings.TrimSpace(te), "trailers") {
		h["Te"] = []string{"trailers"}
	}
	h.Set(hdrMirror, "true")
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = nil
	}
	req := &http.Request{
		Method: c.r.Method, URL: &url.URL{Path: c.r.URL.Path, RawPath: c.r.URL.RawPath, RawQuery: c.r.URL.RawQuery},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Host: c.r.Host, ContentLength: int64(len(body)),
	}
	c.rp.mirror.submit(mirrorJob{h2: req, h2Body: body, grpc: c.grpc, pool: ups.canary, rollout: c.rp})
}

// forward sends the call to an endpoint of pl, retrying a refused
// connection once elsewhere (nothing was sent), and relays the answer.
func (c *h2Call) forward(pl *pool, ups *upstreamSet, now int64) {
	pl, ep := choose(pl, ups, now, nil)
	if ep == nil {
		c.fail(pl, http.StatusServiceUnavailable, errKindNoEndpoint, telemetry.GRPCUnavailable,
			"no healthy endpoint for version "+pl.version, true)
		return
	}
	ctx, cancel := c.upstreamContext(ups)
	defer cancel()
	dialRetried := false
	for {
		if !pl.limit.acquire() {
			c.fail(pl, http.StatusServiceUnavailable, errKindOverflow, telemetry.GRPCUnavailable,
				"too many concurrent requests for version "+pl.version+" (connectionPool limit)", true)
			return
		}
		ep.inflight.Add(1)
		resp, err := c.roundTrip(ctx, ups, ep)
		if err == nil {
			good := resp.StatusCode < 500 && !(c.grpc && headerGRPCError(resp, pl.grpcErrors))
			if good {
				pl.outlier.ok(ep)
			} else {
				c.rp.noteFailure(pl, ep, now)
			}
			if ep.wantsNotice() {
				c.rp.answered(pl, ep, good)
			}
			c.relay(pl, ep, resp)
			return
		}
		pl.release(ep)
		switch {
		case c.r.Context().Err() != nil:
			// The client went away (or cancelled the call): not the
			// version's failure, and there is no one to answer.
			c.observeCancelled(pl)
			return
		case c.deadline && errors.Is(ctx.Err(), context.DeadlineExceeded):
			c.fail(pl, http.StatusGatewayTimeout, errKindTimeout, telemetry.GRPCDeadlineExceeded,
				"version "+pl.version+" at "+ep.url+" did not answer within the call's grpc-timeout", true)
			return
		case isLocalResourceError(err):
			c.fail(pl, http.StatusServiceUnavailable, errKindLocal, telemetry.GRPCUnavailable,
				"coalmine has no resources left to connect (file descriptors or buffers); try again", false)
			return
		}
		c.rp.noteFailure(pl, ep, now)
		switch {
		case isDialError(err):
			if !dialRetried && c.body.untouched() {
				dialRetried = true
				if npl, nep := choose(pl, ups, now, ep); nep != nil {
					pl.stats.FailedAttempt(errKindConnect)
					pl, ep = npl, nep
					continue
				}
			}
			c.fail(pl, http.StatusBadGateway, errKindConnect, telemetry.GRPCUnavailable,
				"cannot connect to version "+pl.version+" at "+ep.url, true)
		case errors.Is(err, errResponseTimeout):
			c.fail(pl, http.StatusGatewayTimeout, errKindTimeout, telemetry.GRPCUnavailable,
				"version "+pl.version+" at "+ep.url+" did not answer in time", true)
		default:
			c.fail(pl, http.StatusBadGateway, errKindProtocol, telemetry.GRPCUnavailable,
				"bad response from version "+pl.version+" at "+ep.url, true)
		}
		return
	}
}

// upstreamContext is the upstream request's context: the client's (so a
// client that goes away cancels the upstream request), with the call's
// grpc-timeout as its deadline.
func (c *h2Call) upstreamContext(ups *upstreamSet) (context.Context, context.CancelFunc) {
	ctx := c.r.Context()
	if c.grpc {
		if d, ok := parseGRPCTimeout(c.r.Header.Get("Grpc-Timeout")); ok {
			c.deadline, c.timeout = true, d
			return context.WithTimeout(ctx, d)
		}
	}
	return context.WithCancel(ctx)
}

// roundTrip sends the request to ep and returns its response headers.
// Outside gRPC, the headers must come within the response timeout (a
// gRPC stream may rightly stay silent; its deadline is the caller's).
func (c *h2Call) roundTrip(ctx context.Context, ups *upstreamSet, ep *endpoint) (*http.Response, error) {
	out := c.outbound(ctx, ep)
	if c.grpc {
		return ep.rt.RoundTrip(out)
	}
	tctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(ups.timeouts.Response.D(), func() { cancel(errResponseTimeout) })
	resp, err := ep.rt.RoundTrip(out.WithContext(tctx))
	timer.Stop()
	if err != nil {
		timedOut := errors.Is(context.Cause(tctx), errResponseTimeout)
		cancel(nil)
		if timedOut {
			return nil, errors.Join(err, errResponseTimeout)
		}
		return nil, err
	}
	// The body still needs the context: it ends with the body.
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// outbound builds the upstream request: the client's method, path,
// query and authority, its headers without hop-by-hop ones, and the
// forwarding headers (RFC 9110 §7.6).
func (c *h2Call) outbound(ctx context.Context, ep *endpoint) *http.Request {
	r := c.r
	h := make(http.Header, len(r.Header)+3)
	for k, vv := range r.Header {
		if h2HopByHop(k) {
			continue
		}
		h[k] = vv
	}
	for _, tok := range r.Header.Values("Connection") {
		for name := range strings.SplitSeq(tok, ",") {
			delete(h, http.CanonicalHeaderKey(strings.TrimSpace(name)))
		}
	}
	// TE: trailers is the one TE an HTTP/2 request may carry, and gRPC
	// servers expect it.
	if te := r.Header.Get("Te"); strings.EqualFold(strings.TrimSpace(te), "trailers") {
		h["Te"] = []string{"trailers"}
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = nil // no Go default User-Agent
	}
	ip := "unknown"
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			ip = a.Unmap().String()
		}
	}
	if prior := h.Get(hdrXFF); prior != "" {
		ip = prior + ", " + ip
	}
	h.Set(hdrXFF, ip)
	if r.TLS != nil {
		h.Set(hdrXFProto, "https")
	} else {
		h.Set(hdrXFProto, "http")
	}
	if r.Host != "" && h.Get(hdrXFHost) == "" {
		h.Set(hdrXFHost, r.Host)
	}
	out := &http.Request{
		Method:        r.Method,
		URL:           &url.URL{Scheme: ep.transportScheme(), Host: ep.addr, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Host:          r.Host,
		ContentLength: r.ContentLength,
		Trailer:       r.Trailer,
	}
	if out.Host == "" {
		out.Host = ep.addr
	}
	if c.body != nil {
		out.Body = c.body
	} else {
		out.ContentLength = 0
	}
	return out.WithContext(ctx)
}

// h2HopByHop reports the connection-specific headers (RFC 9110 §7.6.1)
// a proxy never forwards; TE is handled apart.
func h2HopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization":
		return true
	}
	return false
}

// relay writes the upstream response to the client as it arrives,
// flushing every read, then its trailers, and records the outcome: the
// status at the headers for HTTP, the gRPC status at the end for gRPC.
func (c *h2Call) relay(pl *pool, ep *endpoint, resp *http.Response) {
	defer pl.release(ep)
	defer resp.Body.Close()
	h := c.w.Header()
	for k, vv := range resp.Header {
		if !h2HopByHop(k) {
			h[k] = vv
		}
	}
	// Headers an HTTP/1.1 upstream names in Connection are hop-by-hop too
	// (RFC 9110 §7.6.1), as the HTTP/1.1 path treats them.
	for _, v := range resp.Header["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
	if pl.headerName != nil {
		h.Set(string(pl.headerName), string(pl.versionHeader))
	}
	if c.d.NewSubject && !c.grpc {
		var buf [192]byte
		h.Add("Set-Cookie", string(c.tbl.AppendSetCookie(buf[:0], &c.d, c.r.TLS != nil)))
	}
	if !c.grpc {
		pl.stats.Observe(resp.StatusCode, time.Since(c.start))
		c.observed = true
	}
	flusher, _ := c.w.(http.Flusher)
	// A trailers-only gRPC answer (the status in the headers, no body)
	// must stay one HEADERS frame ending the stream: flushing the headers
	// first would leave grpc-go's client without trailers.
	trailersOnly := c.grpc && resp.Header.Get("Grpc-Status") != ""
	if !trailersOnly {
		c.w.WriteHeader(resp.StatusCode)
		if flusher != nil {
			flusher.Flush()
		}
	}
	buf := relayBuffers.Get().(*[]byte)
	defer relayBuffers.Put(buf)
	var readErr error
	wroteHeader := !trailersOnly
	for {
		n, err := resp.Body.Read(*buf)
		if n > 0 {
			if !wroteHeader {
				c.w.WriteHeader(resp.StatusCode)
				wroteHeader = true
			}
			if c.grpc {
				c.respMsgs.feed((*buf)[:n])
			}
			if _, werr := c.w.Write((*buf)[:n]); werr != nil {
				// The client is gone; its context cancels the upstream.
				c.observeCancelled(pl)
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
	}
	if !wroteHeader {
		c.w.WriteHeader(resp.StatusCode)
	}
	if readErr != nil {
		if c.r.Context().Err() != nil {
			c.observeCancelled(pl)
			return
		}
		if !c.grpc {
			// Reset the stream: a clean end would tell the client it has
			// the whole body.
			panic(http.ErrAbortHandler)
		}
		// The upstream broke off mid-call: the client gets UNAVAILABLE,
		// as from a gRPC server that went away; or, when the call's own
		// deadline cut it, DEADLINE_EXCEEDED (which clients do not retry
		// as they would UNAVAILABLE).
		code, kind, msg := telemetry.GRPCUnavailable, errKindProtocol, "broke off the call"
		if c.pastDeadline() {
			code, kind, msg = telemetry.GRPCDeadlineExceeded, errKindTimeout, "did not finish the call within its grpc-timeout"
		}
		pl.stats.ProxyError(kind)
		h.Set(http.TrailerPrefix+"X-Coalmine-Error", string(kind))
		h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(int(code)))
		h.Set(http.TrailerPrefix+"Grpc-Message", grpcMessage("coalmine: version "+pl.version+" at "+ep.url+" "+msg))
		pl.stats.ObserveGRPC(code, pl.grpcErrors, time.Since(c.start), c.streaming())
		return
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	if c.grpc {
		pl.stats.ObserveGRPC(grpcStatusOf(resp), pl.grpcErrors, time.Since(c.start), c.streaming())
	}
}

// streaming reports a call that carried more than one message either way;
// an exchange of one message each way is unary, whatever the method's
// declaration (which the proxy cannot see).
func (c *h2Call) streaming() bool {
	return c.respMsgs.messages > 1 || (c.body != nil && c.body.messages.Load() > 1)
}

// observeCancelled records a call the client abandoned: a CANCELLED gRPC
// call, or a 499 for HTTP; neither is the version's error.
func (c *h2Call) observeCancelled(pl *pool) {
	if c.grpc {
		code := telemetry.GRPCCanceled
		if c.pastDeadline() {
			// The caller gave up at its deadline (its copy of it started
			// a moment before ours, so it usually acts first): the
			// version was too slow, which is its error.
			code = telemetry.GRPCDeadlineExceeded
		}
		pl.stats.ObserveGRPC(code, pl.grpcErrors, time.Since(c.start), c.streaming())
		return
	}
	if !c.observed {
		pl.stats.Observe(statusClientClosedRequest, time.Since(c.start))
	}
}

// deadlineSlack is how early before its grpc-timeout a cancelled call
// still counts as having reached its deadline: the caller's clock started
// first, by the network's one-way time and both sides' scheduling, which
// on a busy machine reached tens of milliseconds (a 300 ms call cancelled
// by its caller's deadline arrived 30 ms "early" in CI). A quarter of the
// timeout, at most 100 ms.
const deadlineSlack = 100 * time.Millisecond

// pastDeadline reports whether the call has run (almost) as long as its
// grpc-timeout allowed.
func (c *h2Call) pastDeadline() bool {
	return c.deadline && time.Since(c.start) >= c.timeout-min(deadlineSlack, c.timeout/4)
}

// fail answers with coalmine's own error, marked X-Coalmine-Error: for
// gRPC a trailers-only answer with the gRPC status (a gRPC client reads
// no HTTP status), else the HTTP status and a text body. observe says
// whether the failure is the version's, recorded in its telemetry.
func (c *h2Call) fail(pl *pool, status int, kind telemetry.ErrorKind, code telemetry.GRPCCode, msg string, observe bool) {
	pl.stats.ProxyError(kind)
	h := c.w.Header()
	h.Set(string(hdrCoalmineError), string(kind))
	if c.grpc {
		if observe {
			pl.stats.ObserveGRPC(code, pl.grpcErrors, time.Since(c.start), false)
		}
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(int(code)))
		h.Set("Grpc-Message", grpcMessage("coalmine: "+msg))
		c.w.WriteHeader(http.StatusOK)
		return
	}
	if observe {
		pl.stats.Observe(status, time.Since(c.start))
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	c.w.WriteHeader(status)
	_, _ = io.WriteString(c.w, "coalmine: "+msg+"\n")
}

// headerGRPCError reports a trailers-only answer with an error status,
// which counts against the endpoint like a 5xx.
func headerGRPCError(resp *http.Response, errs telemetry.GRPCErrors) bool {
	v := resp.Header.Get("Grpc-Status")
	if v == "" {
		return false
	}
	n, err := strconv.ParseUint(v, 10, 32)
	return err != nil || errs.Has(telemetry.GRPCCode(n))
}

var relayBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// h2Body is the client's request body as the upstream request reads it.
// It counts gRPC messages, and notes whether it was read: a refused
// connection may be retried only when it was not, and until then Close is
// ignored, so that the retry finds it open. Once read, Close closes it:
// the transport closes the body of a stream that failed, to stop the
// goroutine blocked reading it, and waits for that before it reports the
// failure.
//
// The transport reads it on a goroutine of its own, so what the handler
// reads of it is atomic.
type h2Body struct {
	rc       io.ReadCloser
	grpc     bool
	read     atomic.Bool
	frames   grpcFrames // the reading goroutine's alone
	messages atomic.Int32

	// A copy of the body for a mirror, up to copyLimit bytes (copyOn);
	// the reading goroutine's alone until complete is set at EOF.
	copyOn    bool
	copyLimit int64
	copied    []byte
	overflow  bool
	complete  atomic.Bool
}

// keepCopy makes the body keep a copy of what it reads, up to limit.
func (b *h2Body) keepCopy(limit int64) {
	b.copyOn, b.copyLimit = true, limit
}

// copyIfComplete returns the copy when the whole body was read within
// the limit.
func (b *h2Body) copyIfComplete() ([]byte, bool) {
	if !b.complete.Load() {
		return nil, false
	}
	return b.copied, true
}

func (b *h2Body) Read(p []byte) (int, error) {
	b.read.Store(true)
	n, err := b.rc.Read(p)
	if b.copyOn && !b.overflow {
		if int64(len(b.copied)+n) > b.copyLimit {
			b.overflow, b.copied = true, nil
		} else {
			b.copied = append(b.copied, p[:n]...)
			if err == io.EOF {
				b.complete.Store(true)
			}
		}
	}
	if n > 0 {
		if b.grpc {
			b.frames.feed(p[:n])
			b.messages.Store(int32(min(b.frames.messages, 1<<30)))
		}
	}
	return n, err
}

func (b *h2Body) Close() error {
	if !b.read.Load() {
		return nil
	}
	return b.rc.Close()
}

// untouched reports whether nothing of the body has been sent.
func (b *h2Body) untouched() bool { return b == nil || !b.read.Load() }
