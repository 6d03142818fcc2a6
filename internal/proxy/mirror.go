package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// Reasons a mirror was not sent, for coalmine_mirror_dropped_total.
const (
	dropBodyTooLarge = telemetry.DropReason("body-too-large")
	dropPoolFull     = telemetry.DropReason("pool-full")
	dropError        = telemetry.DropReason("error")
)

// captureMirror copies req for mirroring, buffering its body once up to the
// rollout's cap. It returns nil, and counts the skip, when the body is
// larger. Called before the primary request is sent, because sending
// consumes a streamed body.
func (rp *rolloutProxy) captureMirror(req *fasthttp.Request, ups *upstreamSet) *fasthttp.Request {
	limit := ups.mirrorMaxBody
	cl := req.Header.ContentLength()
	if int64(cl) > limit {
		rp.stats.MirrorDropped(dropBodyTooLarge)
		return nil
	}
	if cl == -1 && req.IsBodyStream() {
		// Chunked: read up to limit+1 bytes; if the body is larger, give the
		// primary request back everything we read followed by the rest.
		stream := req.BodyStream()
		buf, err := io.ReadAll(io.LimitReader(stream, limit+1))
		if err != nil || int64(len(buf)) > limit {
			req.SetBodyStream(io.MultiReader(bytes.NewReader(buf), stream), -1)
			rp.stats.MirrorDropped(dropBodyTooLarge)
			return nil
		}
		req.SetBody(buf)
	}
	m := fasthttp.AcquireRequest()
	// Body() buffers a streamed body whose Content-Length is within the cap;
	// both the primary and the mirror then send the same bytes.
	body := req.Body()
	req.Header.CopyTo(&m.Header)
	m.SetBody(body)
	return m
}

// mirrorJob is one mirror: an HTTP/1.1 request (req), or one from the
// HTTP/2 path (h2, with its whole body), sent through the endpoint's
// net/http transport.
type mirrorJob struct {
	req     *fasthttp.Request
	h2      *http.Request
	h2Body  []byte
	grpc    bool
	pool    *pool
	rollout *rolloutProxy
}

func (j mirrorJob) release() {
	if j.req != nil {
		fasthttp.ReleaseRequest(j.req)
	}
}

// mirrorPool sends mirrored requests on a fixed set of workers. Submitting
// never blocks: a full queue drops the mirror, so mirroring can never delay
// or fail a primary request.
type mirrorPool struct {
	jobs    chan mirrorJob
	log     *slog.Logger
	timeout time.Duration
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

func newMirrorPool(workers, queue int, timeout time.Duration, log *slog.Logger) *mirrorPool {
	ctx, cancel := context.WithCancel(context.Background())
	mp := &mirrorPool{jobs: make(chan mirrorJob, queue), log: log, timeout: timeout, cancel: cancel}
	for i := 0; i < workers; i++ {
		mp.wg.Add(1)
		go mp.work(ctx)
	}
	return mp
}

func (mp *mirrorPool) submit(j mirrorJob) {
	select {
	case mp.jobs <- j:
	default:
		j.rollout.stats.MirrorDropped(dropPoolFull)
		j.release()
	}
}

func (mp *mirrorPool) work(ctx context.Context) {
	defer mp.wg.Done()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-mp.jobs:
			mp.send(j, resp)
		}
	}
}

// send delivers one mirror. A panic here must not take the proxy down.
func (mp *mirrorPool) send(j mirrorJob, resp *fasthttp.Response) {
	defer j.release()
	defer func() {
		if r := recover(); r != nil {
			mp.log.Error("mirror panicked", "rollout", j.rollout.name, "panic", r)
		}
	}()
	if j.h2 != nil {
		mp.sendHTTP2(j)
		return
	}
	start := time.Now()
	ep := j.pool.pick(start.UnixNano(), nil)
	if ep == nil || !j.pool.limit.tryAcquire() {
		j.rollout.stats.MirrorDropped(dropPoolFull)
		return
	}
	defer j.pool.limit.release()
	j.req.Header.Set(hdrMirror, "true")
	resp.Reset()
	// The mirror response is read whole, within the mirror client's own
	// timeouts and size cap, and discarded: only its status is kept.
	ep.inflight.Add(1)
	ep.setScheme(j.req)
	err := ep.mirror.DoTimeout(j.req, resp, mp.timeout)
	ep.inflight.Add(-1)
	if err != nil && !(errors.Is(err, fasthttp.ErrBodyTooLarge) && resp.StatusCode() != 0) {
		j.rollout.stats.MirrorDropped(dropError)
		return
	}
	j.pool.stats.ObserveMirror(resp.StatusCode(), time.Since(start))
}

// sendHTTP2 delivers a mirror from the HTTP/2 path through the endpoint's
// net/http transport (so an h2c canary gets it over HTTP/2), within the
// mirror timeout, reading at most mirrorMaxResponse bytes of the answer.
// A gRPC answer is recorded by its gRPC status.
func (mp *mirrorPool) sendHTTP2(j mirrorJob) {
	start := time.Now()
	ep := j.pool.pick(start.UnixNano(), nil)
	if ep == nil || !j.pool.limit.tryAcquire() {
		j.rollout.stats.MirrorDropped(dropPoolFull)
		return
	}
	defer j.pool.limit.release()
	ctx, cancel := context.WithTimeout(context.Background(), mp.timeout)
	defer cancel()
	req := j.h2.WithContext(ctx)
	req.URL.Scheme, req.URL.Host = ep.transportScheme(), ep.addr
	if req.Host == "" {
		req.Host = ep.addr
	}
	if len(j.h2Body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(j.h2Body))
	}
	ep.inflight.Add(1)
	defer ep.inflight.Add(-1)
	resp, err := ep.rt.RoundTrip(req)
	if err != nil {
		j.rollout.stats.MirrorDropped(dropError)
		return
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, mirrorMaxResponse))
	resp.Body.Close()
	code := resp.StatusCode
	if j.grpc {
		if err != nil {
			j.rollout.stats.MirrorDropped(dropError)
			return
		}
		code = grpcStatusOf(resp).HTTPEquivalent(j.pool.grpcErrors)
	}
	j.pool.stats.ObserveMirror(code, time.Since(start))
}

// close stops the workers after the queue is drained or ctx ends.
func (mp *mirrorPool) close() {
	mp.cancel()
	mp.wg.Wait()
}
