package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// fakeSeries records the calls of api.Config.Series and answers with a
// fixed series, or err.
type fakeSeries struct {
	mu    sync.Mutex
	calls []seriesCall
	err   error
}

type seriesCall struct {
	name  string
	since time.Time
	step  time.Duration
}

func (f *fakeSeries) series(_ context.Context, name string, since time.Time, step time.Duration) (model.Series, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, seriesCall{name, since, step})
	if f.err != nil {
		return model.Series{}, f.err
	}
	if name != "checkout" {
		return model.Series{}, model.ErrNotFound
	}
	from := now().Add(-2 * time.Second)
	rate, p := 0.5, 12.5
	return model.Series{
		Rollout: name, Revision: 3, TelemetryStart: from, From: from, To: now(),
		Step: spec.Duration(step), Retention: spec.Duration(10 * time.Minute),
		Versions: []model.VersionSeries{
			{Role: spec.RoleStable, Version: "v1.4.2", Points: []model.SeriesPoint{
				{T: from.Add(time.Second), Requests: 2, Errors: 1, RPS: 2, ErrorRate: &rate, P50: &p, P90: &p, P99: &p},
				{T: now()}, // no traffic: nulls
			}},
			{Role: spec.RoleCanary, Version: "v1.5.0"}, // nil points: []
		},
		Weight: []model.WeightPoint{{T: from, Weight: 1}},
	}, nil
}

func (f *fakeSeries) last() seriesCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[len(f.calls)-1]
}

func TestSeries(t *testing.T) {
	fs := &fakeSeries{}
	h, _, _ := newHandler(t, func(c *api.Config) { c.Series = fs.series })

	res := do(t, h, "GET", "/api/v1/rollouts/checkout/series", "")
	if res.status != 200 || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s, body %s", res.status, res.header.Get("Content-Type"), res.body)
	}
	if c := fs.last(); c.name != "checkout" || !c.since.IsZero() || c.step != time.Second {
		t.Errorf("call %+v, want checkout, zero since, step 1s", c)
	}
	var s model.Series
	if err := json.Unmarshal([]byte(res.body), &s); err != nil {
		t.Fatal(err)
	}
	if s.Rollout != "checkout" || len(s.Versions) != 2 || s.Step != spec.Duration(time.Second) || len(s.Weight) != 1 {
		t.Errorf("series %+v", s)
	}
	for _, want := range []string{
		`"from":"2026-03-01T11:59:58Z"`, `"step":"1s"`, `"retention":"10m0s"`,
		`"errorRate":0.5`, `"p99":12.5`,
		`"errorRate":null,"p50":null,"p90":null,"p99":null`, // no data is not zero
		`"version":"v1.5.0","points":[]`,
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("body lacks %s:\n%s", want, res.body)
		}
	}

	res = do(t, h, "GET", "/api/v1/rollouts/checkout/series?since=2026-03-01T11:59:30.5%2B01:00&step=5s", "")
	if res.status != 200 {
		t.Fatalf("with since and step: %d %s", res.status, res.body)
	}
	want := time.Date(2026, 3, 1, 10, 59, 30, 500e6, time.UTC)
	if c := fs.last(); !c.since.Equal(want) || c.step != 5*time.Second {
		t.Errorf("call %+v, want since %s and step 5s", c, want)
	}

	res = do(t, h, "GET", "/api/v1/rollouts/nope/series", "")
	if res.status != 404 {
		t.Fatalf("unknown rollout: %d, want 404", res.status)
	}
	if b := errorBody(t, res); b.Error != `rollout "nope" not found` {
		t.Errorf("error %q", b.Error)
	}

	fs.err = errors.New("disk on fire")
	if res := do(t, h, "GET", "/api/v1/rollouts/checkout/series", ""); res.status != 500 || strings.Contains(res.body, "fire") {
		t.Errorf("internal error: %d %s, want a generic 500", res.status, res.body)
	}
}

func TestSeriesRejectsBadQueries(t *testing.T) {
	fs := &fakeSeries{}
	h, _, _ := newHandler(t, func(c *api.Config) { c.Series = fs.series })
	for _, tt := range []struct{ query, field, msg string }{
		{"since=yesterday", "since", "RFC 3339"},
		{"since=1700000000", "since", "RFC 3339"},
		{"step=1", "step", "duration from 1s to 1h0m0s"},
		{"step=500ms", "step", "duration from 1s"},
		{"step=2h", "step", "duration from 1s"},
		{"step=-1s", "step", "duration"},
		{"step=1s&step=2s", "step", "given 2 times"},
		{"since=2026-03-01T12:00:00Z&since=2026-03-01T12:00:00Z", "since", "given 2 times"},
	} {
		res := do(t, h, "GET", "/api/v1/rollouts/checkout/series?"+tt.query, "")
		if res.status != 400 {
			t.Errorf("?%s: %d, want 400", tt.query, res.status)
			continue
		}
		if b := errorBody(t, res); b.Field != tt.field || !strings.Contains(b.Error, tt.msg) {
			t.Errorf("?%s: error %q field %q, want %q in it and field %s", tt.query, b.Error, b.Field, tt.msg, tt.field)
		}
	}
	if len(fs.calls) != 0 {
		t.Errorf("bad queries reached the provider: %+v", fs.calls)
	}
}

func TestSeriesWithoutProviderIs404(t *testing.T) {
	h, _, _ := newHandler(t, nil)
	if res := do(t, h, "GET", "/api/v1/rollouts/checkout/series", ""); res.status != 404 {
		t.Errorf("no Series provider: %d, want 404", res.status)
	}
}

func TestSeriesAuth(t *testing.T) {
	fs := &fakeSeries{}
	for _, tt := range []struct {
		anon bool
		auth string
		want int
	}{
		{false, "", 401},
		{false, "Bearer nope", 401},
		{false, "Bearer s3cret", 200},
		{true, "", 200},
	} {
		h, _, _ := newHandler(t, func(c *api.Config) { c.Series = fs.series; c.Token = "s3cret"; c.ReadOnlyAnonymous = tt.anon })
		var headers []string
		if tt.auth != "" {
			headers = []string{"Authorization", tt.auth}
		}
		if res := do(t, h, "GET", "/api/v1/rollouts/checkout/series", "", headers...); res.status != tt.want {
			t.Errorf("anonymous=%v auth %q: %d, want %d", tt.anon, tt.auth, res.status, tt.want)
		}
	}
}

// uiStub stands for internal/web: it answers every path it gets with the
// path, so tests see what reached it.
var uiStub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ui/missing.js" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ui "+r.URL.Path)
})

func TestDashboardRoutes(t *testing.T) {
	const token = "s3cret"
	h, _, _ := newHandler(t, func(c *api.Config) { c.UI = uiStub; c.Token = token })
	for _, tt := range []struct {
		method, path, auth string
		want               int
		body               string
	}{
		// The static files are public: the page asks for the token.
		{"GET", "/", "", 200, "ui /"},
		{"HEAD", "/", "", 200, ""},
		{"GET", "/ui/app.js", "", 200, "ui /ui/app.js"},
		{"GET", "/ui/missing.js", "", 404, ""},
		// Data is not.
		{"GET", "/api/v1/rollouts", "", 401, ""},
		{"GET", "/index.html", "", 401, ""},
		{"GET", "/index.html", "Bearer " + token, 404, ""},
		// The dashboard's paths only read.
		{"POST", "/", "Bearer " + token, 405, ""},
		{"POST", "/", "", 401, ""},
		{"PUT", "/ui/app.js", "", 401, ""},
	} {
		var headers []string
		if tt.auth != "" {
			headers = []string{"Authorization", tt.auth}
		}
		res := do(t, h, tt.method, tt.path, "", headers...)
		if res.status != tt.want || (tt.body != "" && res.body != tt.body) {
			t.Errorf("%s %s (auth %q): %d %q, want %d %q", tt.method, tt.path, tt.auth, res.status, res.body, tt.want, tt.body)
		}
	}

	// Without a token the Host check guards the page too (DNS rebinding).
	open, _, _ := newHandler(t, func(c *api.Config) { c.UI = uiStub })
	req := httptest.NewRequest("GET", "/", nil)
	req.Host = "evil.example:7070"
	rec := httptest.NewRecorder()
	open.ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Errorf("dashboard with a foreign Host and no token: %d, want 403", rec.Code)
	}
	if res := do(t, open, "GET", "/", ""); res.status != 200 || res.body != "ui /" {
		t.Errorf("dashboard on loopback: %d %q", res.status, res.body)
	}

	// Without a UI, / is an unknown endpoint as before.
	none, _, _ := newHandler(t, nil)
	if res := do(t, none, "GET", "/", ""); res.status != 404 {
		t.Errorf("GET / without a UI: %d, want 404", res.status)
	}
	if res := do(t, none, "GET", "/ui/app.js", ""); res.status != 404 {
		t.Errorf("GET /ui/app.js without a UI: %d, want 404", res.status)
	}
}
