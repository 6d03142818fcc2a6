package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// upgrade passes a protocol upgrade (WebSocket) through: it sends the
// request to an endpoint on a dedicated connection, relays the upstream's
// answer, and on 101 splices the two connections until either side closes.
func (rp *rolloutProxy) upgrade(ctx *fasthttp.RequestCtx, pl *pool, ups *upstreamSet, start time.Time) {
	now := start.UnixNano()
	pl, ep := choose(pl, ups, now, nil)
	if ep == nil {
		rp.proxyError(ctx, pl, fasthttp.StatusServiceUnavailable, errKindNoEndpoint, "no healthy endpoint for version "+pl.version)
		pl.stats.Observe(fasthttp.StatusServiceUnavailable, time.Since(start))
		return
	}
	upstream, err := dialUpgrade(ep, ups)
	if err != nil {
		rp.noteFailure(pl, ep, now)
		rp.proxyError(ctx, pl, fasthttp.StatusBadGateway, errKindConnect, "cannot connect to version "+pl.version+" at "+ep.url)
		pl.stats.Observe(fasthttp.StatusBadGateway, time.Since(start))
		return
	}
	var xff [96]byte
	h := &ctx.Request.Header
	b := xff[:0]
	if prior := h.Peek(hdrXFF); len(prior) > 0 {
		b = append(append(b, prior...), ", "...)
	}
	h.SetBytesV(hdrXFF, appendIP(b, ctx.RemoteIP()))
	deadline := time.Now().Add(ups.timeouts.Response.D())
	_ = upstream.SetDeadline(deadline)
	bw := bufio.NewWriter(upstream)
	if err := ctx.Request.Write(bw); err != nil || bw.Flush() != nil {
		upstream.Close()
		rp.proxyError(ctx, pl, fasthttp.StatusBadGateway, errKindProtocol, "cannot send upgrade request to "+ep.url)
		pl.stats.Observe(fasthttp.StatusBadGateway, time.Since(start))
		return
	}
	br := bufio.NewReader(upstream)
	var resp fasthttp.ResponseHeader
	if err := resp.Read(br); err != nil {
		upstream.Close()
		rp.proxyError(ctx, pl, fasthttp.StatusBadGateway, errKindProtocol, "bad upgrade response from "+ep.url)
		pl.stats.Observe(fasthttp.StatusBadGateway, time.Since(start))
		return
	}
	pl.stats.Observe(resp.StatusCode(), time.Since(start))
	if ep.wantsNotice() {
		rp.answered(pl, ep, resp.StatusCode() < 500)
	}
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		// The upstream refused the upgrade: relay its answer as a normal
		// response and drop the dedicated connection.
		var full fasthttp.Response
		resp.CopyTo(&full.Header)
		err := full.ReadBody(br, 1<<20)
		upstream.Close()
		if err != nil {
			rp.proxyError(ctx, pl, fasthttp.StatusBadGateway, errKindProtocol, "bad response to an upgrade request from "+ep.url)
			return
		}
		full.Header.CopyTo(&ctx.Response.Header)
		ctx.Response.SetBody(full.Body())
		if pl.headerName != nil {
			ctx.Response.Header.SetBytesKV(pl.headerName, pl.versionHeader)
		}
		return
	}
	_ = upstream.SetDeadline(time.Time{})
	if pl.headerName != nil {
		resp.SetBytesKV(pl.headerName, pl.versionHeader)
	}
	header := resp.Header()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(client net.Conn) {
		defer upstream.Close()
		if _, err := client.Write(header); err != nil {
			return
		}
		// Bytes the upstream sent right after its 101 are already buffered.
		if n := br.Buffered(); n > 0 {
			buffered, _ := br.Peek(n)
			if _, err := client.Write(buffered); err != nil {
				return
			}
		}
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(upstream, client); closeWrite(upstream); done <- struct{}{} }()
		go func() { _, _ = io.Copy(client, upstream); closeWrite(client); done <- struct{}{} }()
		<-done
		<-done
	})
}

func dialUpgrade(ep *endpoint, ups *upstreamSet) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", ep.addr, ups.timeouts.Connect.D())
	if err != nil || !ep.tls {
		return c, err
	}
	cfg := ups.tlsConfig
	if cfg == nil {
		host, _, _ := net.SplitHostPort(ep.addr)
		cfg = &tls.Config{ServerName: host}
	}
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// closeWrite half-closes a connection so the other side sees EOF while its
// own direction keeps flowing.
func closeWrite(c net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := c.(closeWriter); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
