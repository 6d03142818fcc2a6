// Package web answers analysis queries from any HTTP endpoint that returns
// JSON (SPEC §5.3 `web: {url, method, headers, body, jsonPath, timeout}`,
// and Argo Rollouts' timeoutSeconds, jsonBody, insecure and
// authentication); it is also how external gates are written.
//
// The request is sent with the metric's method (GET by default), headers
// and body (or jsonBody, as JSON), within its timeout (DefaultTimeout when
// unset). A non-2xx answer is an error naming the status and an excerpt of
// the body. The value at jsonPath (Kubernetes' JSONPath, as in Argo; see
// spec.ParseJSONPath) is the result, unchanged: numbers are float64,
// strings stay strings (conditions convert with asFloat), objects and
// arrays are map[string]any and []any. When the path matches several
// values the result is the first, as in Argo. A path that matches nothing,
// or only null, is no data (provider.ErrNoData), where Argo reports an
// error. A body that is not JSON is the result as a string, as in Argo.
//
// Headers are often credentials: they are never printed, and a redirect to
// another host does not receive them. For the same reason errors show the
// URL without its query string and password.
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/client-go/util/jsonpath"

	"github.com/coalmine-dev/coalmine/internal/config"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/provider/httpauth"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Defaults for what a metric or the Config leaves unset.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxBodyBytes = 4 << 20
	maxRedirects        = 10
)

// Config configures a Provider. The zero value is usable.
type Config struct {
	// Transport carries the requests; a clone of http.DefaultTransport when
	// nil. It is shared by all queries, so connections are reused.
	Transport http.RoundTripper
	// MaxBodyBytes caps the response body read; a larger answer is an
	// error. DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
	// Resolve reads the secret references of authentication at each query;
	// nil = config.ResolveSecret (environment or file).
	Resolve httpauth.Resolver
}

// Provider queries JSON endpoints. It is safe for concurrent use.
type Provider struct {
	transports *httpauth.Transports
	auth       *httpauth.Auth
	maxBody    int64
}

var _ provider.Provider = (*Provider)(nil)

// New returns a web provider.
func New(cfg Config) *Provider {
	if cfg.Resolve == nil {
		cfg.Resolve = config.ResolveSecret
	}
	p := &Provider{transports: httpauth.NewTransports(cfg.Transport), auth: httpauth.New(cfg.Resolve), maxBody: cfg.MaxBodyBytes}
	if p.maxBody <= 0 {
		p.maxBody = DefaultMaxBodyBytes
	}
	return p
}

// Query sends the metric's request and returns the value at its jsonPath.
func (p *Provider) Query(ctx context.Context, q provider.Query) (provider.Result, error) {
	w := q.Spec.Web
	if w == nil {
		return provider.Result{}, fmt.Errorf("web query for metric %q: the metric has no web provider", q.Metric)
	}
	method := strings.ToUpper(strings.TrimSpace(w.Method))
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(strings.TrimSpace(w.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return provider.Result{}, fmt.Errorf("web query for metric %q: invalid url %q: want http://host/path or https://host/path", q.Metric, safeURL(u, w.URL))
	}
	fail := func(err error) (provider.Result, error) {
		return provider.Result{}, fmt.Errorf("web %s %s for metric %q: %w", method, safeURL(u, ""), q.Metric, err)
	}
	path, err := spec.ParseJSONPath(w.JSONPath)
	if err != nil {
		return fail(err)
	}
	timeout := DefaultTimeout
	switch {
	case w.Timeout != nil && w.Timeout.D() > 0:
		timeout = w.Timeout.D()
	case w.TimeoutSeconds != nil && *w.TimeoutSeconds > 0:
		timeout = time.Duration(*w.TimeoutSeconds) * time.Second
	}
	body, contentType := w.Body, ""
	if w.JSONBody != nil {
		body, contentType = string(w.JSONBody.Raw()), "application/json"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	respBody, err := func() ([]byte, error) {
		rt, err := p.auth.Transport(ctx, p.transports.For(w.Insecure), w.Authentication, u.Host, w.Insecure)
		if err != nil {
			return nil, err
		}
		return p.fetch(ctx, rt, request{method: method, url: u, headers: w.Headers, body: body, contentType: contentType})
	}()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within the timeout of %s: %w", timeout, err)
		}
		return fail(err)
	}
	var doc any
	if err := json.Unmarshal(respBody, &doc); err != nil {
		// Not JSON: the body is the result, as a string, whatever the
		// path, as in Argo (its web.md: result == "I am OK"). Surrounding
		// white space (a trailing newline) is trimmed.
		return provider.Result{Value: strings.TrimSpace(string(respBody))}, nil
	}
	v, err := evalPath(path, doc)
	if err != nil {
		return fail(fmt.Errorf("jsonPath %s: %w", spec.NormalizeJSONPath(w.JSONPath), err))
	}
	return provider.Result{Value: v}, nil
}

// evalPath returns the first value the path selects, as Argo does. Nothing
// selected, an index past the end of an array, or a null is no data.
func evalPath(path *jsonpath.JSONPath, doc any) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("cannot evaluate: %v", r)
		}
	}()
	results, err := path.FindResults(doc)
	if err != nil {
		// AllowMissingKeys covers missing fields but not indexes: Kubernetes
		// reports those with this message only.
		if strings.Contains(err.Error(), "array index out of bounds") {
			return nil, fmt.Errorf("%s: %w", err, provider.ErrNoData)
		}
		return nil, err
	}
	for _, rs := range results {
		for _, r := range rs {
			if !r.IsValid() || !r.CanInterface() {
				continue
			}
			if x := r.Interface(); x != nil {
				return x, nil
			}
			return nil, fmt.Errorf("the value is null: %w", provider.ErrNoData)
		}
	}
	return nil, fmt.Errorf("nothing matches: %w", provider.ErrNoData)
}

// request is what fetch sends.
type request struct {
	method      string
	url         *url.URL
	headers     map[string]string
	body        string
	contentType string // set before the headers, which may replace it
}

// fetch sends the request through rt and returns the body of a 2xx answer.
func (p *Provider) fetch(ctx context.Context, rt http.RoundTripper, r request) ([]byte, error) {
	method, u, headers, body := r.method, r.url, r.headers, r.body
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: rt, CheckRedirect: func(next *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		// net/http copies the previous request's headers and drops only
		// Authorization and cookies on a cross-host redirect; the metric's
		// other headers (X-Api-Key …) must not travel either.
		if next.URL.Host != u.Host {
			for k := range headers {
				next.Header.Del(k)
			}
		}
		return nil
	}}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error repeats the URL with its query string, which may hold
		// a token; the caller names the URL safely.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, p.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read the response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("status %s: %s", resp.Status, excerpt(data))
	}
	if int64(len(data)) > p.maxBody {
		return nil, fmt.Errorf("the response is larger than %d bytes", p.maxBody)
	}
	return data, nil
}

// safeURL prints u without its password and query string; raw is printed
// when u did not parse.
func safeURL(u *url.URL, raw string) string {
	if u == nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			raw = raw[:i]
		}
		if i := strings.Index(raw, "@"); i >= 0 {
			raw = "…" + raw[i:]
		}
		return raw
	}
	c := *u
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = "", false, "", ""
	s := c.Redacted()
	if u.RawQuery != "" {
		s += "?…"
	}
	return s
}

// excerpt shortens a response body for an error message: one line, at most
// 200 bytes.
func excerpt(b []byte) string {
	if len(bytes.TrimSpace(b)) == 0 {
		return "(empty body)"
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b[:min(len(b), 1024)]), "?")), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	} else if len(b) > 1024 {
		s += "…"
	}
	return s
}
