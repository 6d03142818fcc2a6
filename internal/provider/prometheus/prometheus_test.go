package prometheus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// fakeProm mimics /api/v1/query: it records what it received and answers
// with status and body.
type fakeProm struct {
	status int
	body   string
	// postStatus, when set, answers POSTs with it (a proxy refusing POST).
	postStatus int
	got        []*http.Request
	forms      []map[string]string
}

func (f *fakeProm) start(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		f.got = append(f.got, r)
		f.forms = append(f.forms, map[string]string{"query": r.Form.Get("query"), "timeout": r.Form.Get("timeout"), "time": r.Form.Get("time")})
		if r.Method == http.MethodPost && f.postStatus != 0 {
			w.WriteHeader(f.postStatus)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		io.WriteString(w, f.body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func query(addr, promql string, timeout time.Duration, headers map[string]string) provider.Query {
	s := &spec.PrometheusProvider{Address: addr, Query: promql, Headers: headers}
	if timeout > 0 {
		d := spec.Duration(timeout)
		s.Timeout = &d
	}
	return provider.Query{Rollout: "shop", Metric: "error-rate", Spec: spec.Provider{Prometheus: s}}
}

func TestQueryResults(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []float64 // NaN compares equal to NaN here
	}{
		{"vector", `{"status":"success","data":{"resultType":"vector","result":[
			{"metric":{"role":"canary"},"value":[1700000000.123,"0.25"]},
			{"metric":{"role":"stable"},"value":[1700000000.123,"1e-3"]}]}}`, []float64{0.25, 0.001}},
		{"scalar", `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}}`, []float64{42}}, // a float, not a list
		{"NaN and Inf kept", `{"status":"success","data":{"resultType":"vector","result":[
			{"metric":{},"value":[1,"NaN"]},{"metric":{},"value":[1,"+Inf"]}]}}`, []float64{math.NaN(), math.Inf(1)}},
		{"success with warnings", `{"status":"success","warnings":["something odd"],"data":{"resultType":"scalar","result":[1,"1"]}}`, []float64{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProm{status: 200, body: tt.body}
			srv := f.start(t)
			res, err := New(Config{}).Query(context.Background(), query(srv.URL, "sum(rate(x[1m]))", 0, nil))
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if f, ok := res.Value.(float64); ok && strings.Contains(tt.body, `"scalar"`) {
				// A scalar is a number, as Argo gives it.
				if f != tt.want[0] {
					t.Errorf("Value = %v, want %v", f, tt.want[0])
				}
				return
			}
			got, ok := res.Value.([]any)
			if !ok || len(got) != len(tt.want) {
				t.Fatalf("Value = %#v, want %d float64s", res.Value, len(tt.want))
			}
			for i, w := range tt.want {
				g, ok := got[i].(float64)
				if !ok || !(g == w || math.IsNaN(g) && math.IsNaN(w)) {
					t.Errorf("Value[%d] = %#v, want %v", i, got[i], w)
				}
			}
			if res.Versions != nil {
				t.Error("Versions set by the prometheus provider")
			}
		})
	}
}

func TestQueryRequest(t *testing.T) {
	f := &fakeProm{status: 200, body: `{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`}
	srv := f.start(t)
	headers := map[string]string{"Authorization": "Bearer s3cret", "X-Scope-OrgID": "team-a"}
	if _, err := New(Config{}).Query(context.Background(), query(srv.URL, `sum(up{job="a b"})`, 1500*time.Millisecond, headers)); err != nil {
		t.Fatal(err)
	}
	if len(f.got) != 1 {
		t.Fatalf("%d requests, want 1", len(f.got))
	}
	r, form := f.got[0], f.forms[0]
	if r.Method != http.MethodPost || form["query"] != `sum(up{job="a b"})` {
		t.Errorf("request = %s query %q, want a POST of the query", r.Method, form["query"])
	}
	if form["timeout"] != "1.5" || form["time"] != "" {
		t.Errorf("timeout=%q time=%q, want the metric's timeout in seconds and no time (server's now)", form["timeout"], form["time"])
	}
	for k, v := range headers {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func TestQueryFallsBackToGET(t *testing.T) {
	f := &fakeProm{status: 200, postStatus: http.StatusMethodNotAllowed,
		body: `{"status":"success","data":{"resultType":"scalar","result":[1,"7"]}}`}
	srv := f.start(t)
	res, err := New(Config{}).Query(context.Background(), query(srv.URL, "vector(7)", 0, map[string]string{"X-Token": "t"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.got) != 2 || f.got[1].Method != http.MethodGet || f.forms[1]["query"] != "vector(7)" || f.got[1].Header.Get("X-Token") != "t" {
		t.Fatalf("requests = %d, second %s %v: want a GET retry with the query and the headers", len(f.got), f.got[len(f.got)-1].Method, f.forms)
	}
	if v, ok := res.Value.(float64); !ok || v != 7.0 {
		t.Errorf("Value = %v, want the scalar 7", res.Value)
	}
}

func TestQueryFailures(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		noData bool
		want   []string // substrings of the error
	}{
		{name: "empty vector is no data", status: 200, noData: true,
			body: `{"status":"success","data":{"resultType":"vector","result":[]}}`, want: []string{"empty vector"}},
		{name: "bad query", status: 400,
			body: `{"status":"error","errorType":"bad_data","error":"parse error: unexpected end of input"}`,
			want: []string{"status 400", "bad_data", "parse error: unexpected end of input"}},
		{name: "evaluation timeout with warnings", status: 503,
			body: `{"status":"error","errorType":"timeout","error":"query timed out","warnings":["w1"]}`,
			want: []string{"status 503", "query timed out", "server warnings: w1"}},
		{name: "proxy error page", status: 502, body: "<html>\n<b>Bad gateway</b></html>",
			want: []string{"status 502 Bad Gateway", "<html> <b>Bad gateway</b></html>"}},
		{name: "bad JSON", status: 200, body: `{"status":"success","data":{`,
			want: []string{"not the Prometheus API's JSON", `{"status":"success","data":{`}},
		{name: "not JSON at all", status: 200, body: "hello", want: []string{"not the Prometheus API's JSON"}},
		{name: "error status on 200", status: 200, body: `{"status":"error","errorType":"execution","error":"boom"}`,
			want: []string{"execution", "boom"}},
		{name: "malformed vector", status: 200, body: `{"status":"success","data":{"resultType":"vector","result":[{"value":"x"}]}}`,
			want: []string{"vector is malformed"}},
		{name: "string", status: 200, body: `{"status":"success","data":{"resultType":"string","result":[1,"x"]}}`,
			want: []string{"returned a string"}},
		{name: "native histogram", status: 200,
			body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"h"},"histogram":[1,{"count":"1","sum":"1","buckets":[[0,"0","1","1"]]}]}]}}`,
			want: []string{"native histogram", "histogram_quantile"}},
		{name: "no data field", status: 200, body: `{"status":"success"}`, want: []string{"data is malformed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProm{status: tt.status, body: tt.body}
			srv := f.start(t)
			_, err := New(Config{}).Query(context.Background(), query(srv.URL, "up", 0, map[string]string{"Authorization": "Bearer s3cret"}))
			if err == nil {
				t.Fatal("Query succeeded")
			}
			if errors.Is(err, provider.ErrNoData) != tt.noData {
				t.Errorf("errors.Is(err, ErrNoData) = %v, want %v: %v", !tt.noData, tt.noData, err)
			}
			msg := err.Error()
			for _, w := range append([]string{"query prometheus " + srv.URL, `metric "error-rate"`, `query "up"`}, tt.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error %q shows a header value", msg)
			}
		})
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
	start := time.Now()
	_, err := New(Config{}).Query(context.Background(), query(srv.URL, "up", 50*time.Millisecond, nil))
	if err == nil || errors.Is(err, provider.ErrNoData) {
		t.Fatalf("err = %v, want a timeout error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timeout of 50ms") {
		t.Errorf("err = %v, want a wrapped deadline naming the 50ms timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Query took %s with a 50ms timeout", d)
	}
}

func TestQueryUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://admin:pw@" + ln.Addr().String()
	ln.Close()
	_, err = New(Config{}).Query(context.Background(), query(addr, "up", time.Second, nil))
	if err == nil || errors.Is(err, provider.ErrNoData) {
		t.Fatalf("err = %v, want a connection error", err)
	}
	if !strings.Contains(err.Error(), ln.Addr().String()) || strings.Contains(err.Error(), "pw") {
		t.Errorf("error %q should name %s and hide the password", err, ln.Addr())
	}
}

func TestQuerySpecErrors(t *testing.T) {
	p := New(Config{})
	for _, addr := range []string{"localhost:9090", "prometheus", "ftp://x", "http://", "http://[::1"} {
		_, err := p.Query(context.Background(), query(addr, "up", 0, nil))
		if err == nil || errors.Is(err, provider.ErrNoData) || !strings.Contains(err.Error(), "invalid prometheus address") {
			t.Errorf("address %q: err = %v, want invalid address", addr, err)
		}
	}
	_, err := p.Query(context.Background(), provider.Query{Metric: "m", Spec: spec.Provider{Builtin: &spec.BuiltinProvider{}}})
	if err == nil || !strings.Contains(err.Error(), "no prometheus provider") {
		t.Errorf("wrong kind: err = %v", err)
	}
}

// Headers go to the Prometheus host only: a redirect elsewhere must not
// carry a token.
func TestHeadersStayOnTheHost(t *testing.T) {
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
		io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`)
	}))
	t.Cleanup(other.Close)
	// A different host name for the same machine, so the URL host differs.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "k" {
			t.Errorf("the Prometheus host did not get the header")
		}
		http.Redirect(w, r, otherURL+"/api/v1/query?query=up", http.StatusFound)
	}))
	t.Cleanup(prom.Close)
	_, err := New(Config{}).Query(context.Background(), query(prom.URL, "up", 0,
		map[string]string{"Authorization": "Bearer s3cret", "X-Api-Key": "k"}))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(leaked) != "[ ]" {
		t.Errorf("the redirect target received headers %q", leaked)
	}
}
