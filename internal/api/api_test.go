package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/api/apitest"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

func now() time.Time { return apitest.Epoch }

// newHandler returns the API over a fake holding the fixtures, their
// events, history and templates.
func newHandler(t testing.TB, mod func(*api.Config)) (http.Handler, *apitest.Fake, *bytes.Buffer) {
	t.Helper()
	fake := apitest.NewFixtures(now)
	logs := &bytes.Buffer{}
	cfg := api.Config{
		Commands: fake,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "coalmine_up 1\n")
		}),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	return api.New(cfg), fake, logs
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request addressed to a loopback host, as the CLI does.
func do(t *testing.T, h http.Handler, method, path, body string, headers ...string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.Host = "127.0.0.1:7070"
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

// errorBody decodes a JSON error response and checks its content type.
func errorBody(t *testing.T, res response) api.ErrorBody {
	t.Helper()
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q, want application/json; body %s", ct, res.body)
	}
	var b api.ErrorBody
	dec := json.NewDecoder(strings.NewReader(res.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("error body %q is not {error, field}: %v", res.body, err)
	}
	if b.Error == "" {
		t.Fatalf("error body %q has an empty message", res.body)
	}
	return b
}

func TestProbes(t *testing.T) {
	ready := errors.New("store is still opening")
	h, _, _ := newHandler(t, func(c *api.Config) {
		c.Token = "s3cret"
		c.Ready = func() error { return ready }
	})

	res := do(t, h, "GET", "/healthz", "")
	if res.status != 200 || res.body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", res.status, res.body)
	}
	res = do(t, h, "GET", "/readyz", "")
	if res.status != 503 {
		t.Fatalf("GET /readyz while not ready = %d, want 503", res.status)
	}
	if b := errorBody(t, res); b.Error != "not ready: store is still opening" {
		t.Errorf("readyz reason = %q", b.Error)
	}
	ready = nil
	if res := do(t, h, "GET", "/readyz", ""); res.status != 200 || res.body != "ok\n" {
		t.Errorf("GET /readyz when ready = %d %q, want 200 ok", res.status, res.body)
	}
}

func TestListRollouts(t *testing.T) {
	h, _, _ := newHandler(t, nil)
	res := do(t, h, "GET", "/api/v1/rollouts", "")
	if res.status != 200 {
		t.Fatalf("status %d, body %s", res.status, res.body)
	}
	var list api.RolloutList
	if err := json.Unmarshal([]byte(res.body), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range list.Items {
		names = append(names, v.Metadata.Name)
	}
	if got := strings.Join(names, ","); got != "checkout,payments,search" {
		t.Errorf("items = %s, want checkout,payments,search", got)
	}

	empty := api.New(api.Config{Commands: apitest.NewFake(now)})
	if res := do(t, empty, "GET", "/api/v1/rollouts", ""); res.body != `{"items":[]}`+"\n" {
		t.Errorf("empty list body = %q, want items: []", res.body)
	}
}

func TestGetRollout(t *testing.T) {
	h, _, _ := newHandler(t, nil)
	res := do(t, h, "GET", "/api/v1/rollouts/checkout", "")
	if res.status != 200 {
		t.Fatalf("status %d, body %s", res.status, res.body)
	}
	want, _ := json.Marshal(apitest.Checkout())
	if strings.TrimSpace(res.body) != string(want) {
		t.Errorf("body is not the View:\n got %s\nwant %s", res.body, want)
	}
	for _, key := range []string{`"apiVersion"`, `"spec"`, `"status"`, `"stepIndex"`, `"observedWeight"`, `"analysisRuns"`, `"updatedAt"`} {
		if !strings.Contains(res.body, key) {
			t.Errorf("body lacks %s (SPEC §6.2)", key)
		}
	}

	res = do(t, h, "GET", "/api/v1/rollouts/nope", "")
	if res.status != 404 {
		t.Fatalf("missing rollout: status %d, want 404", res.status)
	}
	if b := errorBody(t, res); b.Error != `rollout "nope" not found` {
		t.Errorf("error = %q", b.Error)
	}
}

func TestSetWeight(t *testing.T) {
	h, fake, _ := newHandler(t, nil)
	res := do(t, h, "PUT", "/api/v1/rollouts/checkout/weight", `{"percent": 2.5}`)
	if res.status != 200 {
		t.Fatalf("status %d, body %s", res.status, res.body)
	}
	var v model.View
	if err := json.Unmarshal([]byte(res.body), &v); err != nil {
		t.Fatal(err)
	}
	if v.Status.Weight != 2.5 || v.Status.Phase != model.PhasePaused || v.Status.PauseReason != model.PauseManual {
		t.Errorf("returned status = %+v, want weight 2.5, Paused, Manual", v.Status)
	}
	stored, _ := fake.Get(context.Background(), "checkout")
	if stored.Status.Weight != 2.5 {
		t.Errorf("stored weight = %v, want 2.5", stored.Status.Weight)
	}
}

func TestSetWeightRejectsBadRequests(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		body       string
		wantStatus int
		wantField  string
		wantMsg    string // substring
	}{
		{"unknown field", "checkout", `{"percent": 5, "force": true}`, 400, "force", `unknown field "force"`},
		{"field names are case-sensitive", "checkout", `{"Percent": 5}`, 400, "Percent", `unknown field "Percent"`},
		{"duplicate field", "checkout", `{"percent": 5, "percent": 50}`, 400, "percent", "appears more than once"},
		{"null body", "checkout", `null`, 400, "percent", "is required"},
		{"wrong type", "checkout", `{"percent": "5"}`, 400, "percent", `field "percent" must be a number, not a string`},
		{"trailing data", "checkout", `{"percent": 5} {"percent": 6}`, 400, "", "data after the JSON object"},
		{"trailing garbage", "checkout", `{"percent": 5}x`, 400, "", "not valid JSON"},
		{"empty body", "checkout", ``, 400, "", "request body is empty"},
		{"not an object", "checkout", `[5]`, 400, "", "must be a JSON object"},
		{"syntax error", "checkout", `{"percent": }`, 400, "", "not valid JSON at byte"},
		{"truncated", "checkout", `{"percent": 5`, 400, "", "truncated"},
		{"missing percent", "checkout", `{}`, 400, "percent", "is required"},
		{"null percent", "checkout", `{"percent": null}`, 400, "percent", "is required"},
		{"above 100", "checkout", `{"percent": 100.5}`, 400, "percent", "out of range"},
		{"negative", "checkout", `{"percent": -1}`, 400, "percent", "out of range"},
		{"three decimals", "checkout", `{"percent": 2.555}`, 400, "percent", "more than two decimals"},
		{"huge body", "checkout", `{"percent": 5, "pad": "` + strings.Repeat("x", 2<<20) + `"}`, 413, "", "larger than the limit of 1 MiB"},
		{"missing rollout", "nope", `{"percent": 5}`, 404, "", `rollout "nope" not found`},
		{"no canary", "search", `{"percent": 5}`, 409, "", "has no canary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, fake, _ := newHandler(t, nil)
			before, _ := fake.Get(context.Background(), "checkout")
			res := do(t, h, "PUT", "/api/v1/rollouts/"+tt.path+"/weight", tt.body, "Content-Type", "application/json")
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", res.status, tt.wantStatus, res.body)
			}
			b := errorBody(t, res)
			if b.Field != tt.wantField && tt.wantField != "" {
				t.Errorf("field = %q, want %q", b.Field, tt.wantField)
			}
			if !strings.Contains(b.Error, tt.wantMsg) {
				t.Errorf("error = %q, want it to contain %q", b.Error, tt.wantMsg)
			}
			after, _ := fake.Get(context.Background(), "checkout")
			if after.Status.Weight != before.Status.Weight {
				t.Errorf("a rejected request changed the weight from %v to %v", before.Status.Weight, after.Status.Weight)
			}
		})
	}
}

func TestMaxBodyBytesIsConfigurable(t *testing.T) {
	h, _, _ := newHandler(t, func(c *api.Config) { c.MaxBodyBytes = 10 })
	res := do(t, h, "PUT", "/api/v1/rollouts/checkout/weight", `{"percent":   5}`)
	if res.status != 413 {
		t.Fatalf("status = %d, want 413", res.status)
	}
	if b := errorBody(t, res); b.Error != "request body is larger than the limit of 10 bytes" {
		t.Errorf("error = %q", b.Error)
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantMsg    string
		wantField  string
		wantLogged bool
	}{
		{"not found", fmt.Errorf("rollout %q is gone: %w", "checkout", model.ErrNotFound), 404, `rollout "checkout" is gone: not found`, "", false},
		{"bare conflict gets a subject", model.ErrConflict, 409, `rollout "checkout": conflict`, "", false},
		{"invalid", fmt.Errorf("cannot weight a completed rollout: %w", model.ErrInvalid), 400, "cannot weight a completed rollout: invalid", "", false},
		{"one field error", spec.FieldErrors{{Path: "spec.listen", Msg: "required"}}, 400, "spec.listen: required", "spec.listen", false},
		{"several field errors", spec.FieldErrors{{Path: "spec.listen", Msg: "required"}, {Path: "spec.stable.version", Msg: "required"}}, 400, "spec.listen: required; spec.stable.version: required", "spec.listen", false},
		{"internal error is generic and logged", errors.New("bolt: database is locked at /var/lib/coalmine"), 500, "internal server error; the server log has the details", "", true},
		{"deadline", context.DeadlineExceeded, 503, "timed out", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, fake, logs := newHandler(t, nil)
			fake.FailWith(tt.err)
			res := do(t, h, "PUT", "/api/v1/rollouts/checkout/weight", `{"percent": 5}`)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", res.status, tt.wantStatus, res.body)
			}
			b := errorBody(t, res)
			if !strings.Contains(b.Error, tt.wantMsg) {
				t.Errorf("error = %q, want %q", b.Error, tt.wantMsg)
			}
			if b.Field != tt.wantField {
				t.Errorf("field = %q, want %q", b.Field, tt.wantField)
			}
			if strings.Contains(res.body, "/var/lib") {
				t.Errorf("internal details leaked to the client: %s", res.body)
			}
			if logged := strings.Contains(logs.String(), "database is locked"); logged != tt.wantLogged {
				t.Errorf("logged = %v, want %v; log: %s", logged, tt.wantLogged, logs)
			}
		})
	}
}

func TestUnknownRouteAndWrongMethod(t *testing.T) {
	h, _, _ := newHandler(t, nil)

	res := do(t, h, "GET", "/api/v1/nothing", "")
	if res.status != 404 {
		t.Fatalf("unknown route: %d, want 404", res.status)
	}
	if b := errorBody(t, res); b.Error != "no such endpoint: GET /api/v1/nothing" {
		t.Errorf("404 error = %q", b.Error)
	}

	res = do(t, h, "DELETE", "/api/v1/rollouts/checkout", "")
	if res.status != 405 {
		t.Fatalf("wrong method: %d, want 405", res.status)
	}
	errorBody(t, res)
	if allow := res.header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("Allow = %q, want it to list GET", allow)
	}

	res = do(t, h, "GET", "/api/v1/rollouts/checkout/weight", "")
	if res.status != 405 || !strings.Contains(res.header.Get("Allow"), "PUT") {
		t.Errorf("GET on the weight endpoint: %d Allow=%q, want 405 Allow PUT", res.status, res.header.Get("Allow"))
	}
}

func TestMetrics(t *testing.T) {
	h, _, _ := newHandler(t, nil)
	if res := do(t, h, "GET", "/metrics", ""); res.status != 200 || res.body != "coalmine_up 1\n" {
		t.Errorf("GET /metrics = %d %q, want the injected handler's output", res.status, res.body)
	}
	none := api.New(api.Config{Commands: apitest.NewFake(now)})
	if res := do(t, none, "GET", "/metrics", ""); res.status != 404 {
		t.Errorf("GET /metrics without a Metrics handler = %d, want 404", res.status)
	}
}

func TestAuth(t *testing.T) {
	const token = "s3cret-token"
	tests := []struct {
		name         string
		readOnlyAnon bool
		method, path string
		auth         string
		want         int
	}{
		{"no header", false, "GET", "/api/v1/rollouts", "", 401},
		{"wrong token", false, "GET", "/api/v1/rollouts", "Bearer nope", 401},
		{"prefix of the token", false, "GET", "/api/v1/rollouts", "Bearer s3cret", 401},
		{"basic scheme", false, "GET", "/api/v1/rollouts", "Basic czNjcmV0LXRva2Vu", 401},
		{"right token", false, "GET", "/api/v1/rollouts", "Bearer " + token, 200},
		{"scheme is case-insensitive", false, "GET", "/api/v1/rollouts", "bearer " + token, 200},
		{"write with token", false, "PUT", "/api/v1/rollouts/checkout/weight", "Bearer " + token, 200},
		{"write without token", false, "PUT", "/api/v1/rollouts/checkout/weight", "", 401},
		{"unknown api route still needs the token", false, "GET", "/api/v1/secret", "", 401},
		{"metrics need the token", false, "GET", "/metrics", "", 401},
		{"metrics with token", false, "GET", "/metrics", "Bearer " + token, 200},
		{"healthz is open", false, "GET", "/healthz", "", 200},
		{"readyz is open", false, "GET", "/readyz", "", 200},
		{"anonymous read", true, "GET", "/api/v1/rollouts/checkout", "", 200},
		{"anonymous metrics", true, "GET", "/metrics", "", 200},
		{"anonymous write", true, "PUT", "/api/v1/rollouts/checkout/weight", "", 401},
		{"wrong token on an anonymous read", true, "GET", "/api/v1/rollouts", "Bearer nope", 401},
		{"write with token, read-only anonymous", true, "PUT", "/api/v1/rollouts/checkout/weight", "Bearer " + token, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, _ := newHandler(t, func(c *api.Config) {
				c.Token = token
				c.ReadOnlyAnonymous = tt.readOnlyAnon
			})
			var body string
			if tt.method == "PUT" {
				body = `{"percent": 5}`
			}
			var headers []string
			if tt.auth != "" {
				headers = []string{"Authorization", tt.auth}
			}
			res := do(t, h, tt.method, tt.path, body, headers...)
			if res.status != tt.want {
				t.Fatalf("status = %d, want %d; body %s", res.status, tt.want, res.body)
			}
			if tt.want == 401 {
				errorBody(t, res)
				if got := res.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want Bearer", got)
				}
				if strings.Contains(res.body, token) {
					t.Errorf("401 body reveals the token: %s", res.body)
				}
			}
		})
	}
}

func TestBrowserProtections(t *testing.T) {
	open, _, _ := newHandler(t, nil)

	// DNS rebinding: without a token only loopback host names are served.
	for host, want := range map[string]int{
		"127.0.0.1:7070":      200,
		"localhost:7070":      200,
		"[::1]:7070":          200,
		"127.1.2.3":           200,
		"app.localhost:7070":  200,
		"evil.example:7070":   403,
		"192.168.1.10:7070":   403,
		"127.0.0.1.evil.test": 403,
	} {
		req := httptest.NewRequest("GET", "/api/v1/rollouts", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		open.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %s: status %d, want %d", host, rec.Code, want)
		}
	}
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Host = "10.0.0.5:7070"
	rec := httptest.NewRecorder()
	open.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("probe with a non-loopback Host: %d, want 200", rec.Code)
	}

	// With a token, any Host is fine: the token is the protection.
	tokened, _, _ := newHandler(t, func(c *api.Config) { c.Token = "t" })
	req = httptest.NewRequest("GET", "/api/v1/rollouts", nil)
	req.Host = "coalmine.internal:7070"
	req.Header.Set("Authorization", "Bearer t")
	rec = httptest.NewRecorder()
	tokened.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("token and a non-loopback Host: %d, want 200", rec.Code)
	}

	// CSRF: a cross-site browser request may not change anything.
	res := do(t, open, "PUT", "/api/v1/rollouts/checkout/weight", `{"percent": 5}`, "Sec-Fetch-Site", "cross-site")
	if res.status != 403 {
		t.Fatalf("cross-site PUT: %d, want 403", res.status)
	}
	errorBody(t, res)
}

type panicky struct{ model.Commands }

func (panicky) List(context.Context) ([]model.View, error) { panic("boom") }

func TestPanicBecomesJSON500(t *testing.T) {
	logs := &bytes.Buffer{}
	h := api.New(api.Config{Commands: panicky{}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	res := do(t, h, "GET", "/api/v1/rollouts", "")
	if res.status != 500 {
		t.Fatalf("status %d, want 500", res.status)
	}
	errorBody(t, res)
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged: %s", logs)
	}
}

func TestCheckBind(t *testing.T) {
	tests := []struct {
		addr, token string
		wantErr     string // substring; empty = allowed
	}{
		{"127.0.0.1:7070", "", ""},
		{"127.9.9.9:7070", "", ""},
		{"[::1]:7070", "", ""},
		{"localhost:7070", "", ""},
		{"LOCALHOST:7070", "", ""},
		{"0.0.0.0:7070", "", "refusing to serve the admin API on 0.0.0.0:7070 without a token: anyone who can reach it could change rollouts; pass --token-file FILE (or set COALMINE_TOKEN), or bind to 127.0.0.1"},
		{":7070", "", "on :7070 (every interface) without a token"},
		{"[::]:7070", "", "without a token"},
		{"10.1.2.3:7070", "", "without a token"},
		{"coalmine.internal:7070", "", "without a token"},
		{"localhost.evil.test:7070", "", "without a token"},
		{"0.0.0.0:7070", "   ", "without a token"},
		{"0.0.0.0:7070", "s3cret", ""},
		{":7070", "s3cret", ""},
		{"127.0.0.1", "", "invalid admin address"},
	}
	for _, tt := range tests {
		err := api.CheckBind(tt.addr, tt.token)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("CheckBind(%q, %q) = %v, want nil", tt.addr, tt.token, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("CheckBind(%q, %q) = %v, want an error containing %q", tt.addr, tt.token, err, tt.wantErr)
		}
	}
	var ibe *api.InsecureBindError
	if err := api.CheckBind("0.0.0.0:7070", ""); !errors.As(err, &ibe) || ibe.Addr != "0.0.0.0:7070" {
		t.Errorf("CheckBind error %v is not an *InsecureBindError", err)
	}
}

func TestServesOverRealHTTP(t *testing.T) {
	h, _, _ := newHandler(t, func(c *api.Config) { c.Token = "t" })
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/rollouts/checkout/weight", strings.NewReader(`{"percent": 10}`))
	req.Header.Set("Authorization", "Bearer t")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(body), `"weight":10`) {
		t.Errorf("PUT over HTTP = %d %s", res.StatusCode, body)
	}
}
