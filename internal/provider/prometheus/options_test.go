package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

const matrixBody = `{"status":"success","data":{"resultType":"matrix","result":[
	{"metric":{"pod":"a"},"values":[[1700000000,"1"],[1700000060,"2"]]},
	{"metric":{"pod":"b"},"values":[[1700000000,"3"]]}]}}`

// TestRangeQuery checks the request Argo's rangeQuery makes and the shape
// of its result: every value of every series in one list.
func TestRangeQuery(t *testing.T) {
	var form map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query_range" || r.ParseForm() != nil {
			http.NotFound(w, r)
			return
		}
		form = map[string]string{"query": r.Form.Get("query"), "start": r.Form.Get("start"), "end": r.Form.Get("end"), "step": r.Form.Get("step")}
		io.WriteString(w, matrixBody)
	}))
	defer srv.Close()
	now := time.Unix(1700000120, 500_000_000)
	p := New(Config{Now: func() time.Time { return now }})
	step := spec.Duration(90 * time.Second)
	q := query(srv.URL, "latency_ms", 0, nil)
	q.Spec.Prometheus.RangeQuery = &spec.PrometheusRangeQuery{Start: `now() - duration("2m")`, End: "now()", Step: &step}
	res, err := p.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{1.0, 2.0, 3.0}; !reflect.DeepEqual(res.Value, want) {
		t.Errorf("result %#v, want %#v", res.Value, want)
	}
	if want := map[string]string{"query": "latency_ms", "start": "1700000000.5", "end": "1700000120.5", "step": "90"}; !reflect.DeepEqual(form, want) {
		t.Errorf("form %v, want %v", form, want)
	}
}

func TestRangeQueryProblems(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
	}))
	defer srv.Close()
	step := spec.Duration(time.Minute)
	for _, tt := range []struct {
		name       string
		start, end string
		noData     bool
		want       string
	}{
		{"empty matrix is no data", `now() - duration("1h")`, "now()", true, "the range query returned no samples"},
		{"an argument that is not a duration", `now() - duration("5 minutes")`, "now()", false, `rangeQuery.start "now() - duration(\"5 minutes\")": time: unknown unit`},
		{"end before start", "now()", `now() - duration("1h")`, false, "rangeQuery: end"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := query(srv.URL, "x", 0, nil)
			q.Spec.Prometheus.RangeQuery = &spec.PrometheusRangeQuery{Start: tt.start, End: tt.end, Step: &step}
			_, err := New(Config{}).Query(context.Background(), q)
			if err == nil || errors.Is(err, provider.ErrNoData) != tt.noData || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want no data %v and %q", err, tt.noData, tt.want)
			}
		})
	}
}

// TestInstantRangeSelector: an instant query of a range selector (x[5m])
// gives a matrix, flattened as in Argo rather than refused.
func TestInstantRangeSelector(t *testing.T) {
	f := &fakeProm{status: 200, body: matrixBody}
	srv := f.start(t)
	res, err := New(Config{}).Query(context.Background(), query(srv.URL, "x[5m]", 0, nil))
	if err != nil || !reflect.DeepEqual(res.Value, []any{1.0, 2.0, 3.0}) {
		t.Errorf("got %#v, %v", res.Value, err)
	}
}

func TestInsecure(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`)
	}))
	defer srv.Close()
	p := New(Config{})
	if _, err := p.Query(context.Background(), query(srv.URL, "x", 0, nil)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a self-signed certificate without insecure: %v", err)
	}
	q := query(srv.URL, "x", 0, nil)
	q.Spec.Prometheus.Insecure = true
	if res, err := p.Query(context.Background(), q); err != nil || res.Value != 1.0 {
		t.Errorf("insecure: %v, %v", res.Value, err)
	}
}

// TestBearerAndOAuth2 puts Prometheus behind a check of the token, as a
// proxy in front of it would.
func TestBearerAndOAuth2(t *testing.T) {
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, _ := r.BasicAuth(); id != "coalmine" || secret != "client-secret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "oauth-token", "token_type": "Bearer", "expires_in": 300})
	}))
	defer tokenSrv.Close()
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "Bearer oauth-token" && a != "Bearer file-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`)
	}))
	defer prom.Close()
	resolve := func(ref *spec.SecretRef) (string, error) {
		switch ref.File {
		case "/run/secrets/prom-token":
			return "file-token", nil
		case "/run/secrets/client-secret":
			return "client-secret", nil
		}
		return "", errors.New("cannot read secret file " + ref.File)
	}
	p := New(Config{Resolve: resolve})
	for _, auth := range []*spec.Authentication{
		{Bearer: &spec.BearerAuth{TokenFrom: &spec.SecretRef{File: "/run/secrets/prom-token"}}},
		{OAuth2: &spec.OAuth2Auth{TokenURL: tokenSrv.URL, ClientID: "coalmine", ClientSecretFrom: &spec.SecretRef{File: "/run/secrets/client-secret"}}},
	} {
		q := query(prom.URL, "x", 0, nil)
		q.Spec.Prometheus.Authentication = auth
		if res, err := p.Query(context.Background(), q); err != nil || res.Value != 1.0 {
			t.Errorf("%+v: %v, %v", auth, res.Value, err)
		}
	}
	q := query(prom.URL, "x", 0, nil)
	q.Spec.Prometheus.Authentication = &spec.Authentication{Bearer: &spec.BearerAuth{TokenFrom: &spec.SecretRef{File: "/missing"}}}
	if _, err := p.Query(context.Background(), q); err == nil || !strings.Contains(err.Error(), "authentication.bearer.tokenFrom: cannot read secret file /missing") {
		t.Errorf("a missing token file: %v", err)
	}
}
