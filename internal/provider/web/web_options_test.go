package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

func TestJSONBody(t *testing.T) {
	e := &endpoint{status: 200, body: `{"ok":true}`}
	srv := e.start(t)
	body, err := spec.NewJSONValue(`{"service":"checkout","versions":["v1","v2"]}`)
	if err != nil {
		t.Fatal(err)
	}
	res, err := New(Config{}).Query(context.Background(), webQuery(spec.WebProvider{URL: srv.URL, Method: "POST", JSONBody: body, JSONPath: "{$.ok}"}))
	if err != nil || res.Value != true {
		t.Fatalf("Query = %v, %v", res.Value, err)
	}
	if e.got.Method != http.MethodPost || e.got.Header.Get("Content-Type") != "application/json" || e.gotBody != `{"service":"checkout","versions":["v1","v2"]}` {
		t.Errorf("request = %s %q content-type %q", e.got.Method, e.gotBody, e.got.Header.Get("Content-Type"))
	}
}

func TestTimeoutSeconds(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	_, err := New(Config{}).Query(context.Background(), webQuery(spec.WebProvider{URL: srv.URL, TimeoutSeconds: new(1)}))
	if err == nil || !strings.Contains(err.Error(), "no answer within the timeout of 1s") {
		t.Errorf("got %v", err)
	}
}

func TestInsecure(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"v":1}`)) }))
	defer srv.Close()
	p := New(Config{})
	if _, err := p.Query(context.Background(), webQuery(spec.WebProvider{URL: srv.URL, JSONPath: "$.v"})); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("a self-signed certificate without insecure: %v", err)
	}
	res, err := p.Query(context.Background(), webQuery(spec.WebProvider{URL: srv.URL, JSONPath: "$.v", Insecure: true}))
	if err != nil || res.Value != 1.0 {
		t.Errorf("insecure: %v, %v", res.Value, err)
	}
}

// TestOAuth2 runs Argo's oauth2 shape against a token endpoint and an API
// that accepts only the token it issued.
func TestOAuth2(t *testing.T) {
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if err := r.ParseForm(); err != nil || id != "coalmine" || secret != "from-env" || r.Form.Get("scope") != "gate:read" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "issued-token", "token_type": "Bearer", "expires_in": 600})
	}))
	defer tokenSrv.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer issued-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	defer api.Close()
	resolve := func(ref *spec.SecretRef) (string, error) { return "from-env", nil }
	res, err := New(Config{Resolve: resolve}).Query(context.Background(), webQuery(spec.WebProvider{URL: api.URL, JSONPath: "{$.ok}",
		Authentication: &spec.Authentication{OAuth2: &spec.OAuth2Auth{TokenURL: tokenSrv.URL, ClientID: "coalmine",
			ClientSecretFrom: &spec.SecretRef{Env: "GATE_CLIENT_SECRET"}, Scopes: []string{"gate:read"}}}}))
	if err != nil || res.Value != true {
		t.Fatalf("Query = %v, %v", res.Value, err)
	}
	_, err = New(Config{}).Query(context.Background(), webQuery(spec.WebProvider{URL: api.URL,
		Authentication: &spec.Authentication{OAuth2: &spec.OAuth2Auth{TokenURL: tokenSrv.URL, ClientID: "coalmine", ClientSecret: "wrong"}}}))
	if err == nil || !strings.Contains(err.Error(), "get an OAuth2 token from "+tokenSrv.URL+": status 401") {
		t.Errorf("a wrong secret: %v", err)
	}
}
