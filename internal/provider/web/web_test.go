package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// endpoint answers every request with status and body and records what
// it received.
type endpoint struct {
	status  int
	body    string
	got     *http.Request
	gotBody string
}

func (e *endpoint) start(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.got, e.gotBody = r, string(b)
		w.WriteHeader(e.status)
		io.WriteString(w, e.body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func webQuery(w spec.WebProvider) provider.Query {
	return provider.Query{Rollout: "shop", Metric: "gate", Spec: spec.Provider{Web: &w}}
}

func TestQueryValues(t *testing.T) {
	tests := []struct {
		name, body, path string
		want             any
	}{
		{"number", `{"data":{"value":0.5}}`, "{$.data.value}", 0.5},
		{"string stays a string", `{"data":{"value":"0.5"}}`, "$.data.value", "0.5"},
		{"boolean", `{"ok":true}`, "$.ok", true},
		{"array element", `{"r":[[1,"3"]]}`, "$.r[0][1]", "3"},
		{"object", `{"a":{"b":1}}`, "$.a", map[string]any{"b": 1.0}},
		{"whole document without a path", `[1,2]`, "", []any{1.0, 2.0}},
		{"whole document with {$}", `[1,2]`, "{$}", []any{1.0, 2.0}},
		{"filter", `{"checks":[{"name":"db","ok":false},{"name":"api","ok":true}]}`, `{$.checks[?(@.name == "api")].ok}`, true},
		{"wildcard: the first match, as in Argo", `{"items":[{"v":3},{"v":4}]}`, "{$.items[*].v}", 3.0},
		{"recursive descent", `{"a":{"b":{"latency":12}}}`, "{..latency}", 12.0},
		{"negative index", `{"r":[1,2,3]}`, "{$.r[-1]}", 3.0},
		{"quoted name", `{"x-y":{"c":1}}`, "{$['x-y'].c}", 1.0},
		{"not JSON is a string, whatever the path (Argo)", "I am OK\n", "{$.v}", "I am OK"},
		{"an empty body is an empty string (Argo)", "", "$.v", ""},
		{"trailing garbage is not JSON", `{"v":1} x`, "$.v", `{"v":1} x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &endpoint{status: 200, body: tt.body}
			srv := e.start(t)
			res, err := New(Config{}).Query(context.Background(), webQuery(spec.WebProvider{URL: srv.URL + "/gate", JSONPath: tt.path}))
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if !reflect.DeepEqual(res.Value, tt.want) {
				t.Errorf("Value = %#v, want %#v", res.Value, tt.want)
			}
		})
	}
}

func TestQueryRequest(t *testing.T) {
	t.Run("GET by default", func(t *testing.T) {
		e := &endpoint{status: 200, body: `{"v":1}`}
		srv := e.start(t)
		if _, err := New(Config{}).Query(context.Background(), webQuery(spec.WebProvider{URL: srv.URL + "/q?x=1", JSONPath: "$.v",
			Headers: map[string]string{"X-Api-Key": "k", "Host": "gate.example"}})); err != nil {
			t.Fatal(err)
		}
		r := e.got
		if r.Method != http.MethodGet || r.URL.RequestURI() != "/q?x=1" || r.Header.Get("X-Api-Key") != "k" ||
			r.Host != "gate.example" || r.Header.Get("Accept") != "application/json" || r.Header.Get("Content-Type") != "" {
			t.Errorf("request = %s %s host %s headers %v", r.Method, r.URL, r.Host, r.Header)
		}
	})
	t.Run("POST with a body", func(t *testing.T) {
		e := &endpoint{status: 201, body: `{"v":1}`}
		srv := e.start(t)
		if _, err := New(Config{}).Query(context.Background(), webQuery(spec.WebProvider{URL: srv.URL, Method: "post", JSONPath: "$.v",
			Body: `{"canary":"v2"}`})); err != nil {
			t.Fatal(err)
		}
		if e.got.Method != http.MethodPost || e.gotBody != `{"canary":"v2"}` || e.got.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request = %s %q content-type %q", e.got.Method, e.gotBody, e.got.Header.Get("Content-Type"))
		}
	})
	t.Run("the metric's Content-Type wins", func(t *testing.T) {
		e := &endpoint{status: 200, body: `{"v":1}`}
		srv := e.start(t)
		if _, err := New(Config{}).Query(context.Background(), webQuery(spec.WebProvider{URL: srv.URL, Method: "PUT", JSONPath: "$.v",
			Body: "a=1", Headers: map[string]string{"content-type": "application/x-www-form-urlencoded"}})); err != nil {
			t.Fatal(err)
		}
		if got := e.got.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type = %q", got)
		}
	})
}

func TestQueryFailures(t *testing.T) {
	tests := []struct {
		name, body, path string
		status           int
		noData           bool
		want             []string
	}{
		{name: "missing is no data", status: 200, body: `{"data":{}}`, path: "$.data.value", noData: true,
			want: []string{`jsonPath {$.data.value}: nothing matches`}},
		{name: "null is no data", status: 200, body: `{"data":{"value":null}}`, path: "$.data.value", noData: true,
			want: []string{"jsonPath {$.data.value}: the value is null"}},
		{name: "empty list is no data", status: 200, body: `{"result":[]}`, path: "$.result[0]", noData: true,
			want: []string{"array index out of bounds"}},
		{name: "a filter matching nothing is no data", status: 200, body: `{"checks":[{"name":"a","ok":true}]}`,
			path: `{$.checks[?(@.name == "b")].ok}`, noData: true},
		{name: "a field of an array is no data", status: 200, body: `{"v":[1]}`, path: "$.v.x", noData: true},
		{name: "non-2xx", status: 503, body: "upstream\n  down " + strings.Repeat("x", 500), path: "$.v",
			want: []string{"status 503 Service Unavailable: upstream down xxx", "…"}},
		{name: "404 with an empty body", status: 404, body: "", path: "$.v", want: []string{"status 404 Not Found: (empty body)"}},
		{name: "a wildcard over a number", status: 200, body: `{"v":1}`, path: "$.v[*]", want: []string{"float64 is not array or slice"}},
		{name: "bad path", status: 200, body: `{"v":1}`, path: "{$.v", want: []string{`invalid JSONPath "{$.v": unclosed action`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &endpoint{status: tt.status, body: tt.body}
			srv := e.start(t)
			_, err := New(Config{}).Query(context.Background(), webQuery(spec.WebProvider{URL: srv.URL + "/gate?token=s3cret",
				JSONPath: tt.path, Headers: map[string]string{"Authorization": "Bearer hunter2"}}))
			if err == nil {
				t.Fatal("Query succeeded")
			}
			if errors.Is(err, provider.ErrNoData) != tt.noData {
				t.Errorf("no data = %v, want %v: %v", !tt.noData, tt.noData, err)
			}
			msg := err.Error()
			for _, w := range append([]string{"web GET " + srv.URL + "/gate?… for metric \"gate\""}, tt.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "s3cret") || strings.Contains(msg, "hunter2") {
				t.Errorf("error %q shows a secret", msg)
			}
			if len(msg) > 600 {
				t.Errorf("error is %d bytes long", len(msg))
			}
		})
	}
}

func TestQueryTooLarge(t *testing.T) {
	e := &endpoint{status: 200, body: `{"v":"` + strings.Repeat("x", 100) + `"}`}
	srv := e.start(t)
	_, err := New(Config{MaxBodyBytes: 50}).Query(context.Background(), webQuery(spec.WebProvider{URL: srv.URL, JSONPath: "$.v"}))
	if err == nil || !strings.Contains(err.Error(), "larger than 50 bytes") {
		t.Errorf("err = %v, want a size error", err)
	}
}

func TestQueryTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	d := spec.Duration(50 * time.Millisecond)
	_, err := New(Config{}).Query(context.Background(), webQuery(spec.WebProvider{URL: srv.URL + "/?k=secret", JSONPath: "$.v", Timeout: &d}))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timeout of 50ms") {
		t.Errorf("err = %v, want a deadline naming the 50ms timeout", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q shows the query string", err)
	}
}

func TestQueryUnreachableAndBadSpecs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := New(Config{})
	_, err = p.Query(context.Background(), webQuery(spec.WebProvider{URL: "http://u:pw@" + addr + "/x", JSONPath: "$.v"}))
	if err == nil || errors.Is(err, provider.ErrNoData) || !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "pw@") {
		t.Errorf("unreachable: err = %v, want an error naming %s without the password", err, addr)
	}
	for _, u := range []string{"", "example.com/x", "ftp://x/y", "http://", "http://[::1/x?token=s3cret"} {
		_, err := p.Query(context.Background(), webQuery(spec.WebProvider{URL: u}))
		if err == nil || !strings.Contains(err.Error(), "invalid url") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("url %q: err = %v, want invalid url without the query", u, err)
		}
	}
	_, err = p.Query(context.Background(), provider.Query{Metric: "m", Spec: spec.Provider{Builtin: &spec.BuiltinProvider{}}})
	if err == nil || !strings.Contains(err.Error(), "no web provider") {
		t.Errorf("wrong kind: err = %v", err)
	}
}

// A redirect to another host keeps none of the metric's headers; one on
// the same host keeps them.
func TestRedirectHeaders(t *testing.T) {
	var gotOther []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotOther = []string{r.Header.Get("Authorization"), r.Header.Get("X-Api-Key")}
		io.WriteString(w, `{"v":2}`)
	}))
	t.Cleanup(other.Close)
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	var sameHost string
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/start":
			http.Redirect(w, r, "/same", http.StatusFound)
		case "/same":
			sameHost = r.Header.Get("X-Api-Key")
			http.Redirect(w, r, otherURL+"/elsewhere", http.StatusFound)
		}
	}))
	t.Cleanup(src.Close)
	res, err := New(Config{}).Query(context.Background(), webQuery(spec.WebProvider{URL: src.URL + "/start", JSONPath: "$.v",
		Headers: map[string]string{"Authorization": "Bearer s3cret", "X-Api-Key": "k"}}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Value != 2.0 || sameHost != "k" || fmt.Sprint(gotOther) != "[ ]" {
		t.Errorf("value %v, same-host key %q, other host got %q; want 2, k, nothing", res.Value, sameHost, gotOther)
	}
}
