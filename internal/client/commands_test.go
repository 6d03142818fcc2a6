package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// request is what a recording handler saw.
type request struct {
	Method, Path, Query, Body, ContentType string
}

// recorder is an httptest server that records every request and answers
// with a fixed status and body.
type recorder struct {
	mu     sync.Mutex
	reqs   []request
	status int
	body   string
}

func newRecorder(t *testing.T, status int, body string) (*recorder, *client.Client) {
	t.Helper()
	rec := &recorder{status: status, body: body}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, request{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(b), r.Header.Get("Content-Type")})
		status, body := rec.status, rec.body
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return rec, clientFor(t, srv.URL, client.Options{})
}

func (r *recorder) last() request {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		return request{}
	}
	return r.reqs[len(r.reqs)-1]
}

func clientFor(t *testing.T, server string, opts client.Options) *client.Client {
	t.Helper()
	opts.Server = server
	c, err := client.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const viewJSON = `{"apiVersion":"coalmine.dev/v1alpha1","kind":"Rollout","metadata":{"name":"checkout"},"spec":{"listen":"127.0.0.1:8080"},"status":{"phase":"Paused","revision":3,"stepIndex":4,"stepCount":8}}`

func TestCommandsSendTheContract(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		call func(*client.Client) (model.View, error)
		want request
	}{
		{"promote", func(c *client.Client) (model.View, error) { return c.Promote(ctx, "checkout", false) },
			request{Method: "POST", Path: "/api/v1/rollouts/checkout/promote"}},
		{"promote full", func(c *client.Client) (model.View, error) { return c.Promote(ctx, "checkout", true) },
			request{Method: "POST", Path: "/api/v1/rollouts/checkout/promote", Body: `{"full":true}`, ContentType: "application/json"}},
		{"abort", func(c *client.Client) (model.View, error) { return c.Abort(ctx, "checkout") },
			request{Method: "POST", Path: "/api/v1/rollouts/checkout/abort"}},
		{"retry", func(c *client.Client) (model.View, error) { return c.Retry(ctx, "checkout") },
			request{Method: "POST", Path: "/api/v1/rollouts/checkout/retry"}},
		{"pause", func(c *client.Client) (model.View, error) { return c.Pause(ctx, "checkout") },
			request{Method: "POST", Path: "/api/v1/rollouts/checkout/pause"}},
		{"resume", func(c *client.Client) (model.View, error) { return c.Resume(ctx, "checkout") },
			request{Method: "POST", Path: "/api/v1/rollouts/checkout/resume"}},
		{"undo", func(c *client.Client) (model.View, error) { return c.Undo(ctx, "checkout", 0) },
			request{Method: "POST", Path: "/api/v1/rollouts/checkout/undo"}},
		{"undo to revision", func(c *client.Client) (model.View, error) { return c.Undo(ctx, "checkout", 2) },
			request{Method: "POST", Path: "/api/v1/rollouts/checkout/undo", Body: `{"toRevision":2}`, ContentType: "application/json"}},
		{"set canary", func(c *client.Client) (model.View, error) {
			return c.SetCanary(ctx, "checkout", spec.VersionSpec{Version: "v2", Endpoints: []string{"http://127.0.0.1:9002"}})
		}, request{Method: "PUT", Path: "/api/v1/rollouts/checkout/canary", Body: `{"version":"v2","endpoints":["http://127.0.0.1:9002"]}`, ContentType: "application/json"}},
		{"apply", func(c *client.Client) (model.View, error) {
			return c.Apply(ctx, spec.Rollout{APIVersion: spec.APIVersion, Kind: spec.KindRollout, Metadata: spec.Metadata{Name: "checkout"}})
		}, request{Method: "PUT", Path: "/api/v1/rollouts/checkout", ContentType: "application/json"}},
		{"escaped name", func(c *client.Client) (model.View, error) { return c.Abort(ctx, "a b/c") },
			request{Method: "POST", Path: "/api/v1/rollouts/a%20b%2Fc/abort"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, c := newRecorder(t, 200, viewJSON)
			v, err := tt.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if v.Metadata.Name != "checkout" || v.Status.StepCount != 8 {
				t.Errorf("view = %+v", v)
			}
			got := rec.last()
			if tt.name == "apply" {
				// The document goes as JSON with the YAML's keys.
				if !strings.HasPrefix(got.Body, `{"apiVersion":"coalmine.dev/v1alpha1","kind":"Rollout","metadata":{"name":"checkout"},"spec":{`) {
					t.Errorf("apply body = %.120s", got.Body)
				}
				got.Body = ""
			}
			if got != tt.want {
				t.Errorf("request = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	ctx := context.Background()
	const tmpl = `{"apiVersion":"coalmine.dev/v1alpha1","kind":"AnalysisTemplate","metadata":{"name":"golden"},"spec":{"metrics":[{"name":"error-rate"}]}}`
	rec, c := newRecorder(t, 200, tmpl)
	in := spec.AnalysisTemplate{APIVersion: spec.APIVersion, Kind: spec.KindAnalysisTemplate, Metadata: spec.Metadata{Name: "golden"}}
	out, err := c.ApplyTemplate(ctx, in)
	if err != nil || out.Metadata.Name != "golden" || len(out.Spec.Metrics) != 1 {
		t.Fatalf("ApplyTemplate = %+v, %v", out, err)
	}
	if got := rec.last(); got.Method != "PUT" || got.Path != "/api/v1/analysistemplates/golden" {
		t.Errorf("ApplyTemplate sent %+v", got)
	}
	if _, err := c.GetTemplate(ctx, "golden"); err != nil {
		t.Fatal(err)
	}
	if got := rec.last(); got.Method != "GET" || got.Path != "/api/v1/analysistemplates/golden" {
		t.Errorf("GetTemplate sent %+v", got)
	}

	rec, c = newRecorder(t, 200, `{"items":[`+tmpl+`]}`)
	list, err := c.ListTemplates(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListTemplates = %+v, %v", list, err)
	}
	if got := rec.last(); got.Method != "GET" || got.Path != "/api/v1/analysistemplates" {
		t.Errorf("ListTemplates sent %+v", got)
	}

	rec, c = newRecorder(t, 204, "")
	if err := c.DeleteTemplate(ctx, "golden"); err != nil {
		t.Fatal(err)
	}
	if got := rec.last(); got.Method != "DELETE" || got.Path != "/api/v1/analysistemplates/golden" {
		t.Errorf("DeleteTemplate sent %+v", got)
	}
}

func TestAnalysisRunsAndEvents(t *testing.T) {
	ctx := context.Background()
	rec, c := newRecorder(t, 200, `{"items":[{"id":"checkout-3-step-4","template":"canary-vs-stable","phase":"Running"}]}`)
	runs, err := c.AnalysisRuns(ctx, "checkout")
	want := []model.AnalysisRunStatus{{ID: "checkout-3-step-4", Template: "canary-vs-stable", Phase: "Running"}}
	if err != nil || !reflect.DeepEqual(runs, want) {
		t.Errorf("AnalysisRuns = %+v, %v", runs, err)
	}
	if got := rec.last(); got.Path != "/api/v1/rollouts/checkout/analysisruns" {
		t.Errorf("AnalysisRuns sent %+v", got)
	}
	raw, err := c.AnalysisRunsRaw(ctx, "checkout")
	if err != nil || !strings.HasPrefix(string(raw), `{"items":[{"id":"checkout-3-step-4"`) {
		t.Errorf("AnalysisRunsRaw = %s, %v", raw, err)
	}

	rec, c = newRecorder(t, 200, `{"items":[{"seq":8,"time":"2026-03-01T12:00:00Z","rollout":"checkout","revision":3,"type":"rollout-paused","message":"paused","details":{"step":4}}]}`)
	for _, tt := range []struct {
		after uint64
		limit int
		query string
	}{
		{7, 10, "after=7&limit=10"},
		{0, 0, "after=0&limit=1000"},
		{0, 5000, "after=0&limit=1000"},
	} {
		evs, err := c.Events(ctx, "checkout", tt.after, tt.limit)
		if err != nil || len(evs) != 1 || evs[0].Seq != 8 || evs[0].Details["step"] != 4.0 {
			t.Errorf("Events = %+v, %v", evs, err)
		}
		if got := rec.last(); got.Path != "/api/v1/rollouts/checkout/events" || got.Query != tt.query {
			t.Errorf("Events(after %d, limit %d) sent %+v, want query %s", tt.after, tt.limit, got, tt.query)
		}
	}
}

func TestCommandErrors(t *testing.T) {
	ctx := context.Background()
	_, c := newRecorder(t, 409, `{"error":"rollout \"search\" is Healthy: there is nothing to promote"}`)
	_, err := c.Promote(ctx, "search", false)
	if !errors.Is(err, client.ErrConflict) || err.Error() != `rollout "search" is Healthy: there is nothing to promote` {
		t.Errorf("409: err = %v", err)
	}

	body, _ := json.Marshal(map[string]any{
		"error": "spec.listen: is required; spec.stable.version: is required",
		"field": "spec.listen",
		"details": []map[string]string{
			{"field": "spec.listen", "error": "is required"},
			{"field": "spec.stable.version", "error": "is required"},
		},
	})
	_, c = newRecorder(t, 400, string(body))
	_, err = c.Apply(ctx, spec.Rollout{Metadata: spec.Metadata{Name: "x"}})
	var ae *client.APIError
	if !errors.As(err, &ae) || !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("400: err = %v (%T)", err, err)
	}
	wantDetails := []client.FieldDetail{{Field: "spec.listen", Error: "is required"}, {Field: "spec.stable.version", Error: "is required"}}
	if ae.Field != "spec.listen" || !reflect.DeepEqual(ae.Details, wantDetails) {
		t.Errorf("400: APIError = %+v", ae)
	}
	if err.Error() != "spec.listen: is required; spec.stable.version: is required" {
		t.Errorf("400: message = %q", err)
	}
}
