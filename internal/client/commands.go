package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// MaxEventsPerPage is the most events the server returns for one request
// (GET .../events?limit=N); Events asks for at most this many.
const MaxEventsPerPage = 1000

// Apply creates or updates a rollout from its document (PUT
// /api/v1/rollouts/{name}, `coalmine apply`) and returns it as the server
// holds it afterwards. A document the server rejects is an *APIError
// matching ErrInvalid, with the offending field in Field and every problem
// in Details.
func (c *Client) Apply(ctx context.Context, r spec.Rollout) (model.View, error) {
	var v model.View
	if err := c.do(ctx, http.MethodPut, rolloutPath(r.Metadata.Name), r, &v); err != nil {
		return model.View{}, err
	}
	return v, nil
}

// Promote leaves the rollout's current pause or analysis step; with full it
// skips every remaining step and completes at once. A rollout with nothing
// to promote (e.g. Healthy) is an *APIError matching ErrConflict whose
// message says why.
func (c *Client) Promote(ctx context.Context, name string, full bool) (model.View, error) {
	var body any
	if full {
		body = struct {
			Full bool `json:"full"`
		}{true}
	}
	return c.command(ctx, name, "promote", body)
}

// Abort sends all traffic back to stable at once and marks the rollout
// Degraded.
func (c *Client) Abort(ctx context.Context, name string) (model.View, error) {
	return c.command(ctx, name, "abort", nil)
}

// Retry starts an aborted revision again from its first step.
func (c *Client) Retry(ctx context.Context, name string) (model.View, error) {
	return c.command(ctx, name, "retry", nil)
}

// Pause holds the rollout at its current step (pause reason Manual).
func (c *Client) Pause(ctx context.Context, name string) (model.View, error) {
	return c.command(ctx, name, "pause", nil)
}

// Resume releases a rollout paused by hand.
func (c *Client) Resume(ctx context.Context, name string) (model.View, error) {
	return c.command(ctx, name, "resume", nil)
}

// Undo goes back to the previous revision's version (Argo's revision N-1),
// or to revision toRevision's when toRevision > 0.
func (c *Client) Undo(ctx context.Context, name string, toRevision int64) (model.View, error) {
	var body any
	if toRevision > 0 {
		body = struct {
			ToRevision int64 `json:"toRevision"`
		}{toRevision}
	}
	return c.command(ctx, name, "undo", body)
}

// SetCanary starts a new revision with canary as the canary version (`set
// canary`, like `kubectl set image`).
func (c *Client) SetCanary(ctx context.Context, name string, canary spec.VersionSpec) (model.View, error) {
	var v model.View
	if err := c.do(ctx, http.MethodPut, rolloutPath(name)+"/canary", canary, &v); err != nil {
		return model.View{}, err
	}
	return v, nil
}

// command POSTs one of the rollout commands of SPEC §4 with an optional
// body and returns the rollout afterwards.
func (c *Client) command(ctx context.Context, name, verb string, body any) (model.View, error) {
	var v model.View
	if err := c.do(ctx, http.MethodPost, rolloutPath(name)+"/"+verb, body, &v); err != nil {
		return model.View{}, err
	}
	return v, nil
}

// AnalysisRuns lists a rollout's analysis runs, newest first.
func (c *Client) AnalysisRuns(ctx context.Context, name string) ([]model.AnalysisRunStatus, error) {
	var list struct {
		Items []model.AnalysisRunStatus `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, rolloutPath(name)+"/analysisruns", nil, &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// AnalysisRunsRaw returns the API's answer to GET .../analysisruns as it
// came, {"items": [...]}, for printing it unchanged.
func (c *Client) AnalysisRunsRaw(ctx context.Context, name string) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, rolloutPath(name)+"/analysisruns", nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Events returns up to limit events of a rollout with Seq > after, oldest
// first. A limit of 0 or above MaxEventsPerPage asks for MaxEventsPerPage.
// Fewer events than asked for means there are no more for now.
func (c *Client) Events(ctx context.Context, name string, after uint64, limit int) ([]model.Event, error) {
	if limit <= 0 || limit > MaxEventsPerPage {
		limit = MaxEventsPerPage
	}
	q := url.Values{}
	q.Set("after", strconv.FormatUint(after, 10))
	q.Set("limit", strconv.Itoa(limit))
	var list struct {
		Items []model.Event `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, rolloutPath(name)+"/events?"+q.Encode(), nil, &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// ListTemplates returns every AnalysisTemplate.
func (c *Client) ListTemplates(ctx context.Context) ([]spec.AnalysisTemplate, error) {
	var list struct {
		Items []spec.AnalysisTemplate `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/analysistemplates", nil, &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// GetTemplate returns one AnalysisTemplate.
func (c *Client) GetTemplate(ctx context.Context, name string) (spec.AnalysisTemplate, error) {
	var t spec.AnalysisTemplate
	if err := c.do(ctx, http.MethodGet, templatePath(name), nil, &t); err != nil {
		return spec.AnalysisTemplate{}, err
	}
	return t, nil
}

// ApplyTemplate creates or updates an AnalysisTemplate and returns it as
// the server holds it (with defaults filled in).
func (c *Client) ApplyTemplate(ctx context.Context, t spec.AnalysisTemplate) (spec.AnalysisTemplate, error) {
	var out spec.AnalysisTemplate
	if err := c.do(ctx, http.MethodPut, templatePath(t.Metadata.Name), t, &out); err != nil {
		return spec.AnalysisTemplate{}, err
	}
	return out, nil
}

// DeleteTemplate removes an AnalysisTemplate; one a rollout still uses is
// an *APIError matching ErrConflict.
func (c *Client) DeleteTemplate(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, templatePath(name), nil, nil)
}

func templatePath(name string) string { return "/api/v1/analysistemplates/" + url.PathEscape(name) }
