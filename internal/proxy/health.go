package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// probeInterval is how often an endpoint that has not yet proven reachable
// is tried again when no active health check is configured.
const probeInterval = time.Second

// healthChecker proves endpoints reachable and, when the rollout asks for
// it, checks them actively. It owns one goroutine per endpoint (active
// checks) or one for the whole set (connection probes), stopped by stop().
type healthChecker struct {
	cfg     *spec.HealthCheck // nil: connection probes only
	connect time.Duration
	client  *http.Client
	// h2cClient checks h2c:// endpoints, over cleartext HTTP/2.
	h2cClient *http.Client
	// h2TLSClient makes gRPC health checks of https:// endpoints, which
	// need HTTP/2.
	h2TLSClient *http.Client
	announce    func(pl *pool, ep *endpoint, healthy bool, reason string)
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// startHealthChecks starts checking the endpoints of ups. With cfg nil (or
// disabled) there are no health checks: each endpoint is probed with a TCP
// connection until one succeeds, which proves it; from then on only
// outlier detection takes it out. With cfg, the active check proves it
// (its first pass) and marks it healthy or unhealthy by the thresholds.
func startHealthChecks(cfg *spec.HealthCheck, connect time.Duration, tlsCfg *tls.Config, ups *upstreamSet,
	announce func(pl *pool, ep *endpoint, healthy bool, reason string)) *healthChecker {
	ctx, cancel := context.WithCancel(context.Background())
	hc := &healthChecker{connect: connect, announce: announce, cancel: cancel}
	if cfg == nil || cfg.Disabled {
		hc.wg.Add(1)
		go hc.probeUntilUp(ctx, ups)
		return hc
	}
	hc.cfg = cfg
	tr := &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: 1, IdleConnTimeout: 2 * cfg.Interval.D(),
		DialContext: (&net.Dialer{Timeout: connect}).DialContext}
	hc.client = &http.Client{Transport: tr, Timeout: cfg.Timeout.D(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	h2cTr := &http.Transport{Protocols: &h2c, MaxIdleConnsPerHost: 1, IdleConnTimeout: 2 * cfg.Interval.D(),
		DialContext: (&net.Dialer{Timeout: connect}).DialContext}
	hc.h2cClient = &http.Client{Transport: h2cTr, Timeout: cfg.Timeout.D(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var h2 http.Protocols
	h2.SetHTTP2(true)
	h2Tr := &http.Transport{Protocols: &h2, TLSClientConfig: tlsCfg.Clone(), MaxIdleConnsPerHost: 1, IdleConnTimeout: 2 * cfg.Interval.D(),
		DialContext: (&net.Dialer{Timeout: connect}).DialContext}
	hc.h2TLSClient = &http.Client{Transport: h2Tr, Timeout: cfg.Timeout.D()}
	for _, pl := range ups.pools() {
		for _, ep := range pl.endpoints {
			hc.wg.Add(1)
			go hc.run(ctx, pl, ep)
		}
	}
	return hc
}

// probeUntilUp dials every endpoint not yet proven, at once and then every
// probeInterval, and marks each up on its first successful connection. A
// failure is announced (once: the announce state deduplicates), so a
// canary that nothing listens on shows why its step waits.
func (hc *healthChecker) probeUntilUp(ctx context.Context, ups *upstreamSet) {
	defer hc.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	d := net.Dialer{Timeout: hc.connect}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, pl := range ups.pools() {
			for _, ep := range pl.endpoints {
				if ep.up.Load() {
					continue
				}
				c, err := d.DialContext(ctx, "tcp", ep.addr)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					hc.announce(pl, ep, false, "cannot connect: "+opCause(err).Error())
					continue
				}
				c.Close()
				if ep.up.CompareAndSwap(false, true) {
					hc.announce(pl, ep, true, "accepts connections")
				}
			}
		}
		t.Reset(probeInterval)
	}
}

// run checks one endpoint at every interval, starting at once, and flips its
// health after the configured number of consecutive results. The first
// passing check proves the endpoint reachable.
func (hc *healthChecker) run(ctx context.Context, pl *pool, ep *endpoint) {
	defer hc.wg.Done()
	client, base := hc.client, ep.url
	if ep.h2c {
		client, base = hc.h2cClient, "http"+strings.TrimPrefix(ep.url, "h2c")
	}
	probe := func() (bool, string) {
		return hc.probe(ctx, client, strings.TrimSuffix(base, "/")+hc.cfg.Path)
	}
	if hc.cfg.GRPC != nil {
		if ep.tls {
			client = hc.h2TLSClient
		}
		probe = func() (bool, string) { return hc.probeGRPC(ctx, client, base) }
	}
	okStreak, failStreak := 0, 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, detail := probe()
		switch {
		case ok:
			okStreak, failStreak = okStreak+1, 0
			// The first pass proves the endpoint; after that, recovering
			// takes healthyThreshold passes in a row.
			if !ep.up.Load() || (!ep.healthy.Load() && okStreak >= hc.cfg.HealthyThreshold) {
				ep.up.Store(true)
				ep.healthy.Store(true)
				hc.announce(pl, ep, true, "active health check passed: "+detail)
			} else if ep.healthy.Load() && ep.announced.Load() == announcedUnhealthy && ep.ejectedUntil.Load() <= time.Now().UnixNano() {
				// Back from a passive ejection.
				hc.announce(pl, ep, true, "back in rotation after its ejection; active health check passed: "+detail)
			}
		case ctx.Err() == nil:
			okStreak, failStreak = 0, failStreak+1
			switch {
			case !ep.up.Load():
				// Never passed: not routed to already; say why, once.
				hc.announce(pl, ep, false, "active health check failed: "+detail)
			case ep.healthy.Load() && failStreak >= hc.cfg.UnhealthyThreshold:
				ep.healthy.Store(false)
				hc.announce(pl, ep, false, "active health check failed: "+detail)
			}
		}
		t.Reset(hc.cfg.Interval.D())
	}
}

// probe reports whether a GET of url answered 2xx or 3xx within the
// timeout, and what happened, naming the URL: "GET http://…/health
// answered 404 Not Found".
func (hc *healthChecker) probe(ctx context.Context, client *http.Client, url string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, fmt.Sprintf("GET %s: %v", url, err)
	}
	req.Header.Set("User-Agent", "coalmine-health-check")
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return false, fmt.Sprintf("GET %s did not answer within %s", url, hc.cfg.Timeout)
		}
		return false, fmt.Sprintf("GET %s: %s", url, opCause(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400, fmt.Sprintf("GET %s answered %s", url, resp.Status)
}

func (hc *healthChecker) stop() {
	hc.cancel()
	hc.wg.Wait()
	if hc.client != nil {
		hc.client.CloseIdleConnections()
		hc.h2cClient.CloseIdleConnections()
		hc.h2TLSClient.CloseIdleConnections()
	}
}
