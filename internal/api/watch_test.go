package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/api/apitest"
	"github.com/coalmine-dev/coalmine/internal/model"
)

// sseMessage is one Server-Sent Events message, or a comment.
type sseMessage struct {
	id, event, data, comment string
}

// stream is an open watch response read line by line.
type stream struct {
	t        *testing.T
	res      *http.Response
	cancel   context.CancelFunc
	messages chan sseMessage // closed at the end of the stream
}

// openWatch starts GET path on srv and checks that it is an event stream.
func openWatch(t *testing.T, srv *httptest.Server, path string, headers ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(res.Body)
		cancel()
		t.Fatalf("watch: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	s := &stream{t: t, res: res, cancel: cancel, messages: make(chan sseMessage, 100)}
	go s.read()
	t.Cleanup(s.close)
	return s
}

// read parses the stream into messages until it ends.
func (s *stream) read() {
	defer close(s.messages)
	br := bufio.NewReader(s.res.Body)
	var m sseMessage
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ": ")
		switch {
		case line == "":
			s.messages <- m
			m = sseMessage{}
			continue
		case strings.HasPrefix(line, ":"):
			m.comment = strings.TrimPrefix(line, ": ")
			continue
		}
		switch field {
		case "id":
			m.id = value
		case "event":
			m.event = value
		case "data":
			m.data += value
		default:
			m.data = "unexpected line " + line
		}
	}
}

func (s *stream) close() {
	s.cancel()
	s.res.Body.Close()
}

// next returns the next message that is not a keep-alive comment.
func (s *stream) next() sseMessage {
	s.t.Helper()
	for {
		m := s.nextAny()
		if m.comment != "keep-alive" {
			return m
		}
	}
}

func (s *stream) nextAny() sseMessage {
	s.t.Helper()
	select {
	case m, ok := <-s.messages:
		if !ok {
			s.t.Fatal("the stream ended")
		}
		return m
	case <-time.After(5 * time.Second):
		s.t.Fatal("no message within 5s")
	}
	return sseMessage{}
}

// status reads the next message and checks that it is a status.
func (s *stream) status() model.View {
	s.t.Helper()
	m := s.next()
	if m.event != "status" || m.id != "" {
		s.t.Fatalf("message %+v, want a status without an id", m)
	}
	var v model.View
	if err := json.Unmarshal([]byte(m.data), &v); err != nil {
		s.t.Fatalf("status data %q: %v", m.data, err)
	}
	return v
}

// event reads the next message and checks that it is event seq of type typ.
func (s *stream) event(seq uint64, typ string) model.Event {
	s.t.Helper()
	m := s.next()
	var e model.Event
	if err := json.Unmarshal([]byte(m.data), &e); err != nil || m.event != "event" {
		s.t.Fatalf("message %+v, want an event: %v", m, err)
	}
	if m.id != itoa(int(e.Seq)) || e.Seq != seq || (typ != "" && e.Type != typ) {
		s.t.Fatalf("event id %q seq %d type %q, want %d %s", m.id, e.Seq, e.Type, seq, typ)
	}
	return e
}

// ended waits for the end of the stream.
func (s *stream) ended() {
	s.t.Helper()
	for {
		select {
		case m, ok := <-s.messages:
			if !ok {
				return
			}
			if m.comment != "keep-alive" {
				s.t.Fatalf("message %+v, want the end of the stream", m)
			}
		case <-time.After(5 * time.Second):
			s.t.Fatal("the stream did not end")
		}
	}
}

// settle waits until cond holds, for things that happen when a goroutine
// of the server notices a closed connection.
func settle(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func newServer(t *testing.T, mod func(*api.Config)) (*httptest.Server, *apitest.Fake) {
	t.Helper()
	h, fake, _ := newHandler(t, mod)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, fake
}

func post(t *testing.T, srv *httptest.Server, path string) {
	t.Helper()
	res, err := srv.Client().Post(srv.URL+path, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", path, res.StatusCode, body)
	}
}

func TestWatchStream(t *testing.T) {
	srv, fake := newServer(t, nil)
	s := openWatch(t, srv, "/api/v1/rollouts/checkout/watch")
	if h := s.res.Header; h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", h)
	}

	v := s.status()
	if v.Metadata.Name != "checkout" || v.Status.LastEventSeq != 8 {
		t.Fatalf("first status %+v", v.Status)
	}
	s.event(1, "rollout-started")
	for seq := uint64(2); seq <= 8; seq++ {
		s.event(seq, "")
	}

	post(t, srv, "/api/v1/rollouts/checkout/pause")
	e := s.event(9, "rollout-paused")
	if e.Details["reason"] != "Manual" {
		t.Errorf("live event details %v", e.Details)
	}
	if v := s.status(); v.Status.PauseReason != model.PauseManual || v.Status.LastEventSeq != 9 {
		t.Errorf("status after pause: %+v", v.Status)
	}

	post(t, srv, "/api/v1/rollouts/checkout/promote")
	s.event(10, "rollout-promoted")
	s.event(11, "analysis-started")
	if v := s.status(); v.Status.StepIndex != 4 {
		t.Errorf("status after promote: step %d", v.Status.StepIndex)
	}

	// The client goes away: the handler and the service's watch end.
	if n := fake.Watchers("checkout"); n != 1 {
		t.Fatalf("%d watchers while streaming, want 1", n)
	}
	s.close()
	settle(t, "the watch ends when the client goes away", func() bool { return fake.Watchers("checkout") == 0 })
	done := make(chan struct{})
	go func() { fake.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a watch goroutine of the service is still running")
	}
}

func TestWatchResume(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		headers []string
		first   uint64
	}{
		{"query", "?after=6", nil, 7},
		{"Last-Event-ID", "", []string{"Last-Event-ID", "5"}, 6},
		{"the query wins over Last-Event-ID", "?after=7", []string{"Last-Event-ID", "2"}, 8},
		{"the query wins over a bad Last-Event-ID", "?after=7", []string{"Last-Event-ID", "x"}, 8},
		{"after the newest", "?after=8", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newServer(t, nil)
			s := openWatch(t, srv, "/api/v1/rollouts/checkout/watch"+tt.query, tt.headers...)
			s.status()
			if tt.first > 0 {
				for seq := tt.first; seq <= 8; seq++ {
					s.event(seq, "")
				}
			}
			post(t, srv, "/api/v1/rollouts/checkout/abort")
			s.event(9, "rollout-aborted")
			s.status()
		})
	}
}

func TestWatchKeepAlive(t *testing.T) {
	srv, _ := newServer(t, func(c *api.Config) { c.KeepAlive = 5 * time.Millisecond })
	s := openWatch(t, srv, "/api/v1/rollouts/search/watch?after=8")
	s.status()
	for i := 0; i < 3; i++ {
		if m := s.nextAny(); m != (sseMessage{comment: "keep-alive"}) {
			t.Fatalf("message %+v, want a keep-alive comment", m)
		}
	}
}

// TestWatchOutlivesServerTimeouts checks that the stream clears the
// server's read and write deadlines: it lives well past both.
func TestWatchOutlivesServerTimeouts(t *testing.T) {
	h, _, _ := newHandler(t, func(c *api.Config) { c.KeepAlive = 10 * time.Millisecond })
	srv := httptest.NewUnstartedServer(h)
	const timeout = 100 * time.Millisecond
	srv.Config.ReadTimeout = timeout
	srv.Config.WriteTimeout = timeout
	srv.Start()
	t.Cleanup(srv.Close)

	s := openWatch(t, srv, "/api/v1/rollouts/checkout/watch?after=8")
	s.status()
	start := time.Now()
	for time.Since(start) < 4*timeout {
		s.nextAny()
	}
	post(t, srv, "/api/v1/rollouts/checkout/pause")
	s.event(9, "rollout-paused")
}

// closing is a model.Commands whose watch streams are closed by the test.
type closing struct {
	*apitest.Fake
	ch chan model.WatchUpdate
}

func (c closing) Watch(context.Context, string, uint64) (<-chan model.WatchUpdate, error) {
	return c.ch, nil
}

func TestWatchEndsWhenTheServiceClosesIt(t *testing.T) {
	c := closing{Fake: apitest.NewFixtures(now), ch: make(chan model.WatchUpdate, 2)}
	srv := httptest.NewServer(api.New(api.Config{Commands: c}))
	t.Cleanup(srv.Close)
	v := apitest.Search()
	c.ch <- model.WatchUpdate{View: &v}
	c.ch <- model.WatchUpdate{} // neither field: skipped
	s := openWatch(t, srv, "/api/v1/rollouts/search/watch")
	if got := s.status(); got.Metadata.Name != "search" {
		t.Errorf("status %+v", got.Metadata)
	}
	close(c.ch)
	s.ended()
}

func TestWatchRejects(t *testing.T) {
	h, fake, _ := newHandler(t, nil)
	for _, tt := range []struct {
		path    string
		headers []string
		status  int
		field   string
		msg     string
	}{
		{"/api/v1/rollouts/nope/watch", nil, 404, "", `rollout "nope" not found`},
		{"/api/v1/rollouts/checkout/watch?after=x", nil, 400, "after", "whole number"},
		{"/api/v1/rollouts/checkout/watch", []string{"Last-Event-ID", "seven"}, 400, "Last-Event-ID", `not "seven"`},
	} {
		res := do(t, h, "GET", tt.path, "", tt.headers...)
		if res.status != tt.status {
			t.Errorf("%s: %d, want %d", tt.path, res.status, tt.status)
			continue
		}
		if b := errorBody(t, res); b.Field != tt.field || !strings.Contains(b.Error, tt.msg) {
			t.Errorf("%s: %+v", tt.path, b)
		}
	}
	if n := fake.Watchers("checkout"); n != 0 {
		t.Errorf("a rejected watch left %d watchers", n)
	}
}

func TestWatchAuth(t *testing.T) {
	const token = "s3cret"
	srv, _ := newServer(t, func(c *api.Config) { c.Token = token; c.ReadOnlyAnonymous = true })

	// Anonymous reads may watch, but not command.
	s := openWatch(t, srv, "/api/v1/rollouts/checkout/watch?after=8")
	s.status()
	res, err := srv.Client().Post(srv.URL+"/api/v1/rollouts/checkout/pause", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("anonymous pause: %d, want 401", res.StatusCode)
	}

	strict, _ := newServer(t, func(c *api.Config) { c.Token = token })
	res, err = strict.Client().Get(strict.URL + "/api/v1/rollouts/checkout/watch")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("watch without a token: %d %v, want 401 with WWW-Authenticate", res.StatusCode, res.Header)
	}
	s = openWatch(t, strict, "/api/v1/rollouts/checkout/watch?after=8", "Authorization", "Bearer "+token)
	s.status()
}

// routes lists every /api/ route with a body it accepts.
var routes = []struct{ method, path, body string }{
	{"GET", "/api/v1/rollouts", ""},
	{"GET", "/api/v1/rollouts/checkout", ""},
	{"PUT", "/api/v1/rollouts/web", webDoc},
	{"POST", "/api/v1/rollouts/checkout/promote", ""},
	{"POST", "/api/v1/rollouts/checkout/abort", ""},
	{"POST", "/api/v1/rollouts/payments/retry", ""},
	{"POST", "/api/v1/rollouts/checkout/pause", ""},
	{"POST", "/api/v1/rollouts/checkout/resume", ""},
	{"POST", "/api/v1/rollouts/checkout/undo", ""},
	{"PUT", "/api/v1/rollouts/checkout/weight", `{"percent": 5}`},
	{"PUT", "/api/v1/rollouts/search/canary", `{"version": "v2", "endpoints": ["http://127.0.0.1:9202"]}`},
	{"GET", "/api/v1/rollouts/checkout/analysisruns", ""},
	{"GET", "/api/v1/rollouts/checkout/events", ""},
	{"GET", "/api/v1/rollouts/checkout/watch", ""},
	{"GET", "/api/v1/analysistemplates", ""},
	{"GET", "/api/v1/analysistemplates/golden-signals", ""},
	{"PUT", "/api/v1/analysistemplates/t", `{"spec": {"metrics": [{"name": "m", "provider": {"builtin": {}}, "successCondition": "true"}]}}`},
	{"DELETE", "/api/v1/analysistemplates/t", ""},
}

func TestEveryAPIRouteNeedsTheToken(t *testing.T) {
	for _, anon := range []bool{false, true} {
		h, fake, _ := newHandler(t, func(c *api.Config) { c.Token = "s3cret"; c.ReadOnlyAnonymous = anon })
		for _, r := range routes {
			if anon && r.method == "GET" {
				continue // read-only anonymous: see TestAuth and TestWatchAuth
			}
			res := do(t, h, r.method, r.path, r.body)
			if res.status != 401 || !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("anonymous=%v %s %s without a token: %d, want 401", anon, r.method, r.path, res.status)
			}
			errorBody(t, res)
		}
		if v, _ := fake.Get(context.Background(), "checkout"); v.Status.LastEventSeq != 8 {
			t.Errorf("a request without a token changed a rollout")
		}
	}
}

func TestEveryAPIRouteServesWithTheToken(t *testing.T) {
	for _, r := range routes {
		if strings.HasSuffix(r.path, "/watch") {
			continue // streams; see TestWatchAuth
		}
		h, _, _ := newHandler(t, func(c *api.Config) { c.Token = "s3cret" })
		switch { // what the command needs to apply
		case r.method == "DELETE":
			do(t, h, "PUT", "/api/v1/analysistemplates/t", routes[len(routes)-2].body, "Authorization", "Bearer s3cret")
		case strings.HasSuffix(r.path, "/resume"):
			do(t, h, "POST", "/api/v1/rollouts/checkout/pause", "", "Authorization", "Bearer s3cret")
		}
		res := do(t, h, r.method, r.path, r.body, "Authorization", "Bearer s3cret")
		if res.status/100 != 2 {
			t.Errorf("%s %s: %d %s", r.method, r.path, res.status, res.body)
		}
	}
}
