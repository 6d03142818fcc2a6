package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/api/apitest"
	"github.com/coalmine-dev/coalmine/internal/client"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// newServer serves the real API over the fake fixtures.
func newServer(t *testing.T, token string) (*httptest.Server, *apitest.Fake) {
	t.Helper()
	fake := apitest.NewFake(func() time.Time { return apitest.Epoch }, apitest.Fixtures()...)
	srv := httptest.NewServer(api.New(api.Config{Commands: fake, Token: token}))
	t.Cleanup(srv.Close)
	return srv, fake
}

func newClient(t *testing.T, server, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Server: server, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewValidatesServer(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "http://127.0.0.1:7070",
		"127.0.0.1:7070":          "http://127.0.0.1:7070",
		"https://coalmine.test/":  "https://coalmine.test",
		"http://10.0.0.1:7070/cm": "http://10.0.0.1:7070/cm",
	} {
		c, err := client.New(client.Options{Server: in})
		if err != nil {
			t.Errorf("New(%q): %v", in, err)
			continue
		}
		if c.Server() != want {
			t.Errorf("New(%q).Server() = %q, want %q", in, c.Server(), want)
		}
	}
	for _, bad := range []string{"ftp://x", "http://", "http://x/?a=b", "::"} {
		if _, err := client.New(client.Options{Server: bad}); err == nil || !strings.Contains(err.Error(), "invalid server address") {
			t.Errorf("New(%q) = %v, want an invalid server address error", bad, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	srv, fake := newServer(t, "t0ken")
	c := newClient(t, srv.URL, "t0ken")
	ctx := context.Background()

	views, err := c.ListRollouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != 3 || views[0].Metadata.Name != "checkout" {
		t.Fatalf("ListRollouts = %d views, first %q", len(views), views[0].Metadata.Name)
	}

	v, err := c.GetRollout(ctx, "payments")
	if err != nil {
		t.Fatal(err)
	}
	if v.Status.Phase != model.PhaseDegraded || v.Status.CanaryVersion != "v2.1.0" {
		t.Errorf("GetRollout status = %+v", v.Status)
	}

	raw, err := c.GetRolloutRaw(ctx, "payments")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), `{"apiVersion":"coalmine.dev/v1alpha1"`) {
		t.Errorf("GetRolloutRaw = %.60s...", raw)
	}
	rawList, err := c.ListRolloutsRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(rawList), `{"items":[`) {
		t.Errorf("ListRolloutsRaw = %.60s...", rawList)
	}

	v, err = c.SetWeight(ctx, "checkout", 12.5)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status.Weight != 12.5 || v.Status.PauseReason != model.PauseManual {
		t.Errorf("SetWeight returned %+v", v.Status)
	}
	if stored, _ := fake.Get(ctx, "checkout"); stored.Status.Weight != 12.5 {
		t.Errorf("server weight = %v, want 12.5", stored.Status.Weight)
	}
}

func TestAPIErrors(t *testing.T) {
	srv, _ := newServer(t, "t0ken")
	ctx := context.Background()
	tests := []struct {
		name      string
		token     string
		call      func(*client.Client) error
		status    int
		sentinel  error
		field     string
		msgSubstr string
	}{
		{"not found", "t0ken", func(c *client.Client) error { _, err := c.GetRollout(ctx, "nope"); return err },
			404, client.ErrNotFound, "", `rollout "nope" not found`},
		{"invalid percent", "t0ken", func(c *client.Client) error { _, err := c.SetWeight(ctx, "checkout", 101); return err },
			400, client.ErrInvalid, "percent", "out of range"},
		{"conflict", "t0ken", func(c *client.Client) error { _, err := c.SetWeight(ctx, "search", 5); return err },
			409, client.ErrConflict, "", "has no canary"},
		{"no token", "", func(c *client.Client) error { _, err := c.ListRollouts(ctx); return err },
			401, client.ErrUnauthorized, "", "missing bearer token"},
		{"wrong token", "nope", func(c *client.Client) error { _, err := c.ListRollouts(ctx); return err },
			401, client.ErrUnauthorized, "", "invalid bearer token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(newClient(t, srv.URL, tt.token))
			var ae *client.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if ae.Status != tt.status || ae.Field != tt.field {
				t.Errorf("APIError = %+v, want status %d field %q", ae, tt.status, tt.field)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
			if errors.Is(err, client.ErrUnreachable) {
				t.Errorf("an answer from the server must not be ErrUnreachable")
			}
			if !strings.Contains(err.Error(), tt.msgSubstr) {
				t.Errorf("err = %q, want it to contain %q", err, tt.msgSubstr)
			}
		})
	}
}

func TestNonCoalmineAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/rollouts" {
			http.Error(w, "upstream connect error\nmore", http.StatusBadGateway)
			return
		}
		_, _ = w.Write([]byte("<html>hello</html>"))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, "")

	_, err := c.ListRollouts(context.Background())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 502 || !strings.Contains(ae.Message, "502 Bad Gateway: upstream connect error") {
		t.Errorf("502 text answer: err = %v", err)
	}
	_, err = c.GetRollout(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "is not coalmine's JSON") {
		t.Errorf("HTML 200 answer: err = %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	c := newClient(t, "http://"+addr, "")
	_, err = c.ListRollouts(context.Background())
	if !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	want := "cannot reach coalmine at http://" + addr + ": connection refused"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to contain %q", err, want)
	}
	var ue *client.UnreachableError
	if !errors.As(err, &ue) || ue.Server != "http://"+addr {
		t.Errorf("err is not an *UnreachableError for the server: %v", err)
	}
}

func TestTimeoutIsUnreachable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	c, err := client.New(client.Options{Server: srv.URL, HTTPClient: &http.Client{Timeout: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListRollouts(context.Background())
	if !errors.Is(err, client.ErrUnreachable) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Errorf("err = %v, want ErrUnreachable with no answer within 50ms", err)
	}
}

func TestCanceledContextIsNotUnreachable(t *testing.T) {
	srv, _ := newServer(t, "")
	c := newClient(t, srv.URL, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.ListRollouts(ctx)
	if !errors.Is(err, context.Canceled) || errors.Is(err, client.ErrUnreachable) {
		t.Errorf("err = %v, want context.Canceled and not ErrUnreachable", err)
	}
}

func TestSendsHeaders(t *testing.T) {
	var got http.Header
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		path = r.URL.EscapedPath()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c, err := client.New(client.Options{Server: srv.URL, Token: "abc", UserAgent: "coalmine/test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetWeight(context.Background(), "a/b", 1); err != nil {
		t.Fatal(err)
	}
	if got.Get("Authorization") != "Bearer abc" || got.Get("User-Agent") != "coalmine/test" || got.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", got)
	}
	if path != "/api/v1/rollouts/a%2Fb/weight" {
		t.Errorf("path = %q, want the name escaped as one segment", path)
	}
}

// newFixtureServer serves the real API over the fixtures with their events,
// history and templates.
func newFixtureServer(t *testing.T) (*httptest.Server, *apitest.Fake) {
	t.Helper()
	fake := apitest.NewFixtures(func() time.Time { return apitest.Epoch })
	srv := httptest.NewServer(api.New(api.Config{Commands: fake}))
	t.Cleanup(srv.Close)
	return srv, fake
}

// TestAgainstTheAPI runs every method once against the real handler, so a
// drift between the client and the API's wire format shows here.
func TestAgainstTheAPI(t *testing.T) {
	srv, _ := newFixtureServer(t)
	c := newClient(t, srv.URL, "")
	ctx := context.Background()

	v, err := c.Pause(ctx, "checkout")
	if err != nil || v.Status.PauseReason != model.PauseManual {
		t.Fatalf("Pause = %+v, %v", v.Status, err)
	}
	if v, err = c.Resume(ctx, "checkout"); err != nil || v.Status.PauseReason != model.PauseStep {
		t.Fatalf("Resume = %+v, %v", v.Status, err)
	}
	if v, err = c.Promote(ctx, "checkout", false); err != nil || v.Status.StepIndex != 4 {
		t.Fatalf("Promote = %+v, %v", v.Status, err)
	}
	if v, err = c.Abort(ctx, "checkout"); err != nil || v.Status.Phase != model.PhaseDegraded {
		t.Fatalf("Abort = %+v, %v", v.Status, err)
	}
	if v, err = c.Retry(ctx, "checkout"); err != nil || v.Status.Phase == model.PhaseDegraded {
		t.Fatalf("Retry = %+v, %v", v.Status, err)
	}
	if v, err = c.Promote(ctx, "checkout", true); err != nil || v.Status.Phase != model.PhaseHealthy || v.Status.StableVersion != "v1.5.0" {
		t.Fatalf("Promote full = %+v, %v", v.Status, err)
	}
	// Undo goes to the previous revision (Argo's N-1): v1.5.0-rc.1, which
	// v1.5.0 superseded, rolled out again with its steps.
	if v, err = c.Undo(ctx, "checkout", 0); err != nil || v.Status.StableVersion != "v1.5.0" || v.Status.CanaryVersion != "v1.5.0-rc.1" {
		t.Fatalf("Undo = %+v, %v", v.Status, err)
	}
	v, err = c.SetCanary(ctx, "checkout", spec.VersionSpec{Version: "v1.6.0", Endpoints: []string{"http://127.0.0.1:9004"}})
	if err != nil || v.Status.CanaryVersion != "v1.6.0" {
		t.Fatalf("SetCanary = %+v, %v", v.Status, err)
	}
	if _, err := c.Undo(ctx, "checkout", 99); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Undo to an unknown revision: err = %v, want ErrInvalid", err)
	}
	if _, err := c.Promote(ctx, "search", false); !errors.Is(err, client.ErrConflict) {
		t.Errorf("Promote on a Healthy rollout: err = %v, want ErrConflict", err)
	}

	runs, err := c.AnalysisRuns(ctx, "payments")
	if err != nil || len(runs) != 1 || runs[0].Phase != "Failed" {
		t.Errorf("AnalysisRuns = %+v, %v", runs, err)
	}
	evs, err := c.Events(ctx, "payments", 4, 1)
	if err != nil || len(evs) != 1 || evs[0].Seq != 5 || evs[0].Type != "analysis-failed" {
		t.Errorf("Events = %+v, %v", evs, err)
	}

	ts, err := c.ListTemplates(ctx)
	if err != nil || len(ts) != 2 {
		t.Fatalf("ListTemplates = %d, %v", len(ts), err)
	}
	tmpl := ts[0]
	tmpl.Metadata.Name = "copy"
	if _, err := c.ApplyTemplate(ctx, tmpl); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetTemplate(ctx, "copy"); err != nil || got.Spec.Metrics[0].Name != tmpl.Spec.Metrics[0].Name {
		t.Errorf("GetTemplate = %+v, %v", got, err)
	}
	if err := c.DeleteTemplate(ctx, "copy"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTemplate(ctx, "copy"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("GetTemplate after delete: err = %v", err)
	}

	doc := spec.Rollout{APIVersion: spec.APIVersion, Kind: spec.KindRollout, Metadata: spec.Metadata{Name: "orders"},
		Spec: spec.RolloutSpec{Listen: "127.0.0.1:8090", Stable: spec.VersionSpec{Version: "v1", Endpoints: []string{"http://127.0.0.1:9301"}}}}
	if v, err = c.Apply(ctx, doc); err != nil || v.Status.Phase != model.PhaseHealthy {
		t.Fatalf("Apply = %+v, %v", v.Status, err)
	}
	doc.Spec.Listen = ""
	_, err = c.Apply(ctx, doc)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Field != "spec.listen" {
		t.Errorf("Apply without listen: err = %v", err)
	}
}

// TestWatchAgainstTheAPI follows a rollout through the real SSE handler.
func TestWatchAgainstTheAPI(t *testing.T) {
	srv, fake := newFixtureServer(t)
	c := newClient(t, srv.URL, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := c.Watch(ctx, "checkout", 7)
	next := func() model.WatchUpdate {
		t.Helper()
		select {
		case u, ok := <-w.Updates():
			if !ok {
				t.Fatalf("the watch ended: %v", w.Err())
			}
			return u
		case <-time.After(10 * time.Second):
			t.Fatal("no update")
		}
		return model.WatchUpdate{}
	}
	if u := next(); u.View == nil || u.View.Status.PauseReason != model.PauseStep {
		t.Fatalf("first update = %+v, want the view", u)
	}
	if u := next(); u.Event == nil || u.Event.Seq != 8 {
		t.Fatalf("second update = %+v, want event 8", u)
	}
	if _, err := fake.Pause(ctx, "checkout"); err != nil {
		t.Fatal(err)
	}
	if u := next(); u.Event == nil || u.Event.Seq != 9 || u.Event.Type != "rollout-paused" {
		t.Fatalf("update = %+v, want event 9 rollout-paused", u)
	}
	if u := next(); u.View == nil || u.View.Status.PauseReason != model.PauseManual {
		t.Fatalf("update = %+v, want the paused view", u)
	}
	cancel()
	for range w.Updates() {
	}
	if err := w.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}

	// An unknown rollout is a 404 before the stream starts.
	w = c.Watch(context.Background(), "nope", 0)
	for range w.Updates() {
	}
	if err := w.Err(); !errors.Is(err, client.ErrNotFound) || !strings.Contains(err.Error(), `rollout "nope" not found`) {
		t.Errorf("Watch(nope): err = %v", err)
	}
}
