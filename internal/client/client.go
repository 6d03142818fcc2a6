// Package client is the typed client of coalmine's admin API (SPEC §6.2).
// The CLI and the end-to-end tests use it; it knows the wire format and the
// error shapes so that its callers work with model.View values and typed
// errors.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
)

// DefaultServer is the admin API address `coalmine serve` listens on by
// default.
const DefaultServer = "http://127.0.0.1:7070"

// DefaultTimeout bounds one request when Options.HTTPClient is nil.
const DefaultTimeout = 30 * time.Second

// maxResponseBytes caps how much of a response the client reads.
const maxResponseBytes = 64 << 20

// Options configures a Client.
type Options struct {
	// Server is the base URL of the admin API. Empty means DefaultServer; a
	// bare host:port means http://host:port.
	Server string
	// Token is sent as "Authorization: Bearer <token>" when not empty.
	Token string
	// HTTPClient sends the requests. Nil means a client with DefaultTimeout.
	HTTPClient *http.Client
	// UserAgent is sent with every request when not empty.
	UserAgent string
	// Watch tunes how Watch reconnects; the zero value means the defaults.
	Watch WatchOptions
}

// Client talks to one coalmine server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
	watchOpts WatchOptions
}

// New validates opts and returns a Client. It fails only when Server is not
// an http:// or https:// URL with a host.
func New(opts Options) (*Client, error) {
	server := strings.TrimSpace(opts.Server)
	if server == "" {
		server = DefaultServer
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid server address %q: use a URL such as %s", opts.Server, DefaultServer)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{base: u, token: opts.Token, http: hc, userAgent: opts.UserAgent, watchOpts: opts.Watch}, nil
}

// Server returns the base URL requests go to.
func (c *Client) Server() string { return c.base.String() }

// ListRollouts returns every rollout.
func (c *Client) ListRollouts(ctx context.Context) ([]model.View, error) {
	var list struct {
		Items []model.View `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/rollouts", nil, &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// ListRolloutsRaw returns the API's answer to GET /api/v1/rollouts as it
// came, {"items": [...]}, for printing it unchanged.
func (c *Client) ListRolloutsRaw(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/rollouts", nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// ListReplicas returns every coalmine serve process registered in the
// server's store, sorted by id, with who leads and who is gone. A server
// without a replica registry (older than this client) answers ErrNotFound.
func (c *Client) ListReplicas(ctx context.Context) ([]model.Replica, error) {
	var list []model.Replica
	if err := c.do(ctx, http.MethodGet, "/api/v1/replicas", nil, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// ListReplicasRaw returns the API's answer to GET /api/v1/replicas as it
// came, a JSON array, for printing it unchanged.
func (c *Client) ListReplicasRaw(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/replicas", nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// GetRollout returns one rollout.
func (c *Client) GetRollout(ctx context.Context, name string) (model.View, error) {
	var v model.View
	if err := c.do(ctx, http.MethodGet, rolloutPath(name), nil, &v); err != nil {
		return model.View{}, err
	}
	return v, nil
}

// GetRolloutRaw returns the API's rollout object as it came, for printing it
// unchanged (`get rollout -o json` prints exactly this object, SPEC §6.2).
func (c *Client) GetRolloutRaw(ctx context.Context, name string) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, rolloutPath(name), nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// SetWeight overrides the canary weight of a rollout, which also pauses it
// (SPEC §4), and returns the rollout as it is afterwards. The server
// validates percent (0..100, at most two decimals).
func (c *Client) SetWeight(ctx context.Context, name string, percent float64) (model.View, error) {
	body := struct {
		Percent float64 `json:"percent"`
	}{percent}
	var v model.View
	if err := c.do(ctx, http.MethodPut, rolloutPath(name)+"/weight", body, &v); err != nil {
		return model.View{}, err
	}
	return v, nil
}

func rolloutPath(name string) string { return "/api/v1/rollouts/" + url.PathEscape(name) }

// do sends one request with an optional JSON body and decodes a 2xx JSON
// answer into out. Transport failures become *UnreachableError and non-2xx
// answers *APIError; both describe themselves fully (the server names the
// rollout in its messages), so the methods return them without wrapping.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	// path is already escaped (rolloutPath), so join strings, not url.URL.Path.
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.setHeaders(req)

	res, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &UnreachableError{Server: c.Server(), Err: err, timeout: c.http.Timeout}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &UnreachableError{Server: c.Server(), Err: err, timeout: c.http.Timeout}
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return newAPIError(res, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the answer from %s is not coalmine's JSON (%v); is that coalmine's admin address?", c.Server(), err)
	}
	return nil
}

// setHeaders adds the headers every request carries: the token and the
// user agent.
func (c *Client) setHeaders(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
}
