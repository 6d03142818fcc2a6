package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// healthChecker actively probes every endpoint of an upstream set. It owns
// one goroutine per endpoint, stopped by stop().
type healthChecker struct {
	cfg    spec.HealthCheck
	client *http.Client
	notify func(pl *pool, ep *endpoint, healthy bool)
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startHealthChecks(cfg spec.HealthCheck, tlsCfg *tls.Config, ups *upstreamSet, notify func(*pool, *endpoint, bool)) *healthChecker {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: 1, IdleConnTimeout: 2 * cfg.Interval.D()}
	hc := &healthChecker{
		cfg:    cfg,
		client: &http.Client{Transport: tr, Timeout: cfg.Timeout.D(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		notify: notify,
		cancel: cancel,
	}
	if cfg.Disabled {
		return hc
	}
	for _, pl := range ups.pools() {
		for _, ep := range pl.endpoints {
			hc.wg.Add(1)
			go hc.run(ctx, pl, ep)
		}
	}
	return hc
}

// run checks one endpoint at every interval, starting at once, and flips its
// health after the configured number of consecutive results.
func (hc *healthChecker) run(ctx context.Context, pl *pool, ep *endpoint) {
	defer hc.wg.Done()
	url := strings.TrimSuffix(ep.url, "/") + hc.cfg.Path
	okStreak, failStreak := 0, 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if hc.probe(ctx, url) {
			okStreak, failStreak = okStreak+1, 0
			if !ep.healthy.Load() && okStreak >= hc.cfg.HealthyThreshold {
				ep.healthy.Store(true)
				hc.notify(pl, ep, true)
			}
		} else if ctx.Err() == nil {
			okStreak, failStreak = 0, failStreak+1
			if ep.healthy.Load() && failStreak >= hc.cfg.UnhealthyThreshold {
				ep.healthy.Store(false)
				hc.notify(pl, ep, false)
			}
		}
		t.Reset(hc.cfg.Interval.D())
	}
}

// probe reports a 2xx or 3xx answer within the timeout.
func (hc *healthChecker) probe(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "coalmine-health-check")
	resp, err := hc.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

func (hc *healthChecker) stop() {
	hc.cancel()
	hc.wg.Wait()
	hc.client.CloseIdleConnections()
}
