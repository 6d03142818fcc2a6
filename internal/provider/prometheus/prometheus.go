// Package prometheus answers analysis queries with a PromQL instant query
// against a Prometheus server (SPEC §5.3 `prometheus: {address, query,
// timeout, headers}`), or a range query with Argo Rollouts' rangeQuery,
// through the official client's HTTP client (client_golang/api) and the
// official value types (common/model). Argo's insecure and authentication
// fields are handled by package httpauth, shared with the web provider.
//
// The response envelope is decoded here rather than by
// client_golang/api/prometheus/v1: below Go 1.27 that package decodes with
// json-iterator, a module this repository does not otherwise need. Since
// Go 1.27 v1 decodes exactly like this, with encoding/json and the model
// types; the request follows v1 too (a POSTed form, GET when refused).
//
// The result is the vector's sample values as []any of float64, in the
// order the server returned them (use sort() in PromQL when the order
// matters); a scalar is a float64, as in Argo Rollouts (SPEC §5.3 said a
// one-element list, which broke `result >= 0.95`). NaN and ±Inf are kept, for
// conditions to test with isNaN and isInf. An empty vector is no data
// (provider.ErrNoData). A string is an error: conditions expect numbers.
//
// A range query's result is, as in Argo, every value of every series in one
// list ([]any of float64, series after series in the server's order, each
// in time order), for conditions such as `all(result, {# < 1000})`; an
// empty matrix is no data. Start and end are computed from one reading of
// coalmine's clock, so they cannot drift apart.
//
// The query is evaluated at the server's current time (no time parameter),
// so clock skew between coalmine and Prometheus cannot shift the window.
// Errors name the address (with any password redacted), the metric and the
// query, and carry the server's warnings; header values never appear in
// them, as they are often tokens.
package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	"github.com/prometheus/common/model"

	"github.com/coalmine-dev/coalmine/internal/config"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/provider/httpauth"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// DefaultTimeout bounds a query whose metric sets no timeout.
// It is Argo Rollouts' default, so templates brought over behave alike.
const DefaultTimeout = 30 * time.Second

// Config configures a Provider. The zero value is usable.
type Config struct {
	// Transport carries the queries; a clone of http.DefaultTransport when
	// nil. It is shared by all queries, so connections are reused.
	Transport http.RoundTripper
	// Resolve reads the secret references of authentication at each query;
	// nil = config.ResolveSecret (environment or file).
	Resolve httpauth.Resolver
	// Now reads the clock for range queries' now(); nil = time.Now.
	Now func() time.Time
}

// Provider runs instant and range queries. It is safe for concurrent use.
type Provider struct {
	transports *httpauth.Transports
	auth       *httpauth.Auth
	now        func() time.Time
}

var _ provider.Provider = (*Provider)(nil)

// New returns a Prometheus provider.
func New(cfg Config) *Provider {
	if cfg.Resolve == nil {
		cfg.Resolve = config.ResolveSecret
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Provider{transports: httpauth.NewTransports(cfg.Transport), auth: httpauth.New(cfg.Resolve), now: cfg.Now}
}

// Query runs q.Spec.Prometheus.Query as an instant query (or a range query
// with rangeQuery) within the metric's timeout (DefaultTimeout when unset),
// sending its headers and credentials.
func (p *Provider) Query(ctx context.Context, q provider.Query) (provider.Result, error) {
	s := q.Spec.Prometheus
	if s == nil {
		return provider.Result{}, fmt.Errorf("query prometheus for metric %q: the metric has no prometheus provider", q.Metric)
	}
	addr, err := parseAddress(s.Address)
	if err != nil {
		return provider.Result{}, fmt.Errorf("query prometheus for metric %q: %w", q.Metric, err)
	}
	fail := func(err error) (provider.Result, error) {
		return provider.Result{}, fmt.Errorf("query prometheus %s for metric %q (query %q): %w", addr.Redacted(), q.Metric, s.Query, err)
	}
	timeout := DefaultTimeout
	if s.Timeout != nil && s.Timeout.D() > 0 {
		timeout = s.Timeout.D()
	}
	var rng *timeRange
	if s.RangeQuery != nil {
		if rng, err = evalRange(s.RangeQuery, p.now()); err != nil {
			return fail(err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	val, err := func() (any, error) {
		base := p.transports.For(s.Insecure)
		rt, err := p.auth.Transport(ctx, base, s.Authentication, addr.Host, s.Insecure)
		if err != nil {
			return nil, err
		}
		client, err := api.NewClient(api.Config{
			Address:      addr.String(),
			RoundTripper: &headerTransport{base: rt, host: addr.Host, headers: s.Headers},
		})
		if err != nil {
			return nil, err
		}
		if rng != nil {
			return rangeQuery(ctx, client, s.Query, *rng, timeout)
		}
		return instantQuery(ctx, client, s.Query, timeout)
	}()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within the timeout of %s: %w", timeout, err)
		}
		return fail(err)
	}
	return provider.Result{Value: val}, nil
}

// envelope is the Prometheus HTTP API's response wrapper.
type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// instantQuery calls /api/v1/query the way the official v1 client does: a
// POSTed form (no URL length limit), falling back to GET where a proxy in
// front of Prometheus refuses POST; the evaluation time is left to the
// server, and the timeout is passed on so Prometheus stops evaluating when
// we stop waiting.
func instantQuery(ctx context.Context, client api.Client, query string, timeout time.Duration) (any, error) {
	form := url.Values{"query": {query}, "timeout": {strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64)}}
	return post(ctx, client, "/api/v1/query", form)
}

// timeRange is a range query's evaluated start, end and step.
type timeRange struct {
	start, end time.Time
	step       time.Duration
}

// evalRange computes a rangeQuery's start and end from one reading of the
// clock.
func evalRange(rq *spec.PrometheusRangeQuery, now time.Time) (*timeRange, error) {
	var r timeRange
	for _, f := range []struct {
		name, src string
		into      *time.Time
	}{{"start", rq.Start, &r.start}, {"end", rq.End, &r.end}} {
		e, err := spec.CompileTimeExpr(f.src)
		if err == nil {
			*f.into, err = e.Eval(now)
		}
		if err != nil {
			return nil, fmt.Errorf("rangeQuery.%s %q: %w", f.name, f.src, err)
		}
	}
	if rq.Step == nil || rq.Step.D() <= 0 {
		return nil, errors.New("rangeQuery.step must be a positive duration, such as 1m")
	}
	r.step = rq.Step.D()
	if r.end.Before(r.start) {
		return nil, fmt.Errorf("rangeQuery: end %s is before start %s", r.end.Format(time.RFC3339), r.start.Format(time.RFC3339))
	}
	return &r, nil
}

// rangeQuery calls /api/v1/query_range like instantQuery calls
// /api/v1/query.
func rangeQuery(ctx context.Context, client api.Client, query string, r timeRange, timeout time.Duration) (any, error) {
	form := url.Values{
		"query":   {query},
		"start":   {formatTime(r.start)},
		"end":     {formatTime(r.end)},
		"step":    {strconv.FormatFloat(r.step.Seconds(), 'f', -1, 64)},
		"timeout": {strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64)},
	}
	return post(ctx, client, "/api/v1/query_range", form)
}

// formatTime writes a time as the API's Unix seconds with a fraction.
func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', -1, 64)
}

// post sends a query form to an API endpoint, as a POST that falls back to
// GET, and decodes the answer.
func post(ctx context.Context, client api.Client, endpoint string, form url.Values) (any, error) {
	u := client.URL(endpoint, nil)
	req, err := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, body, err := client.Do(ctx, req)
	if err == nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented) {
		u.RawQuery = form.Encode()
		if req, err = http.NewRequest(http.MethodGet, u.String(), nil); err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, body, err = client.Do(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	return decode(resp.StatusCode, body)
}

// decode reads an instant query's response. Prometheus answers API errors
// (a bad query, an evaluation timeout) with 400, 422 or 503 and an error
// envelope; anything else outside 2xx comes from something in front of it.
func decode(code int, body []byte) (any, error) {
	var env envelope
	jsonErr := json.Unmarshal(body, &env)
	if code/100 != 2 {
		if jsonErr == nil && env.Status == "error" {
			return nil, withWarnings(fmt.Errorf("status %d, %s: %s", code, env.ErrorType, env.Error), env.Warnings)
		}
		return nil, fmt.Errorf("status %d %s: %s", code, http.StatusText(code), excerpt(string(body)))
	}
	if jsonErr != nil {
		return nil, fmt.Errorf("the response is not the Prometheus API's JSON (%v): %s", jsonErr, excerpt(string(body)))
	}
	if env.Status != "success" {
		return nil, withWarnings(fmt.Errorf("status %q, %s: %s", env.Status, env.ErrorType, env.Error), env.Warnings)
	}
	var data struct {
		Type   model.ValueType `json:"resultType"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(env.Data, &data); err != nil {
		return nil, withWarnings(fmt.Errorf("the response's data is malformed: %w", err), env.Warnings)
	}
	vals, err := values(data.Type, data.Result)
	return vals, withWarnings(err, env.Warnings)
}

// values converts an instant query's result to what conditions see.
func values(typ model.ValueType, raw json.RawMessage) (any, error) {
	switch typ {
	case model.ValVector:
		var v model.Vector
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("the response's vector is malformed: %w", err)
		}
		if len(v) == 0 {
			return nil, fmt.Errorf("the query returned an empty vector: %w", provider.ErrNoData)
		}
		out := make([]any, len(v))
		for i, s := range v {
			if s.Histogram != nil {
				return nil, fmt.Errorf("the query returned a native histogram for %s; conditions need numbers (use histogram_quantile() or histogram_count())", s.Metric)
			}
			out[i] = float64(s.Value)
		}
		return out, nil
	case model.ValScalar:
		var s model.Scalar
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("the response's scalar is malformed: %w", err)
		}
		// A number, as Argo gives it: `result >= 0.95` works on scalar().
		return float64(s.Value), nil
	case model.ValMatrix:
		var m model.Matrix
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("the response's matrix is malformed: %w", err)
		}
		return matrixValues(m)
	case model.ValString:
		return nil, errors.New("the query returned a string; conditions need numbers")
	default:
		return nil, errors.New("the response has no result type")
	}
}

// matrixValues flattens a matrix as Argo does: every value of every series,
// in one list. It is what a range query returns, and what an instant query
// of a range selector (`x[5m]`) returns.
func matrixValues(m model.Matrix) (any, error) {
	var out []any
	for _, series := range m {
		if len(series.Histograms) > 0 {
			return nil, fmt.Errorf("the query returned native histograms for %s; conditions need numbers (use histogram_quantile() or histogram_count())", series.Metric)
		}
		for _, v := range series.Values {
			out = append(out, float64(v.Value))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the range query returned no samples: %w", provider.ErrNoData)
	}
	return out, nil
}

// withWarnings adds the server's warnings to a failure; a success drops
// them, as the contract has no place for them.
func withWarnings(err error, warnings []string) error {
	if err == nil || len(warnings) == 0 {
		return err
	}
	return fmt.Errorf("%w (server warnings: %s)", err, strings.Join(warnings, "; "))
}

// excerpt shortens a response body for an error message: one line, at most
// 200 bytes.
func excerpt(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// parseAddress checks that an address (substituted at run time, so not
// always checked at load time) is an absolute http(s) URL.
func parseAddress(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("invalid prometheus address: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid prometheus address %q: want http://host:port or https://host:port", u.Redacted())
	}
	return u, nil
}

// headerTransport adds the metric's headers to requests for the Prometheus
// host only, so a redirect to another host never receives them (they are
// often bearer tokens). The incoming request is never modified.
type headerTransport struct {
	base    http.RoundTripper
	host    string
	headers map[string]string
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(t.headers) == 0 || req.URL.Host != t.host {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	for k, v := range t.headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	return t.base.RoundTrip(r)
}
