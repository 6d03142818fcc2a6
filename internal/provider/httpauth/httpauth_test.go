package httpauth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// echoAuth answers with the Authorization header it received.
func echoAuth(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Header.Get("Authorization")))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, rt http.RoundTripper, url string) string {
	t.Helper()
	resp, err := (&http.Client{Transport: rt}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func env(vars map[string]string) Resolver {
	return func(ref *spec.SecretRef) (string, error) {
		if v, ok := vars[ref.Env]; ok {
			return v, nil
		}
		return "", errors.New("environment variable " + ref.Env + " is not set")
	}
}

func TestBasicAndBearer(t *testing.T) {
	srv := echoAuth(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	a := New(env(map[string]string{"PW": "s3cret", "TOKEN": "tok-from-env\n"}))
	tests := []struct {
		name string
		auth *spec.Authentication
		want string
	}{
		{"none", nil, ""},
		{"basic, literal", &spec.Authentication{BasicAuth: &spec.BasicAuth{Username: "u", Password: "p"}}, "Basic dTpw"},
		{"basic, from env", &spec.Authentication{BasicAuth: &spec.BasicAuth{Username: "u", PasswordFrom: &spec.SecretRef{Env: "PW"}}}, "Basic dTpzM2NyZXQ="},
		{"bearer, literal", &spec.Authentication{Bearer: &spec.BearerAuth{Token: "abc"}}, "Bearer abc"},
		{"bearer, from env, trimmed", &spec.Authentication{Bearer: &spec.BearerAuth{TokenFrom: &spec.SecretRef{Env: "TOKEN"}}}, "Bearer tok-from-env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := a.Transport(context.Background(), http.DefaultTransport, tt.auth, host, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := send(t, rt, srv.URL); got != tt.want {
				t.Errorf("Authorization %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCredentialsStayOnTheirHost(t *testing.T) {
	other := echoAuth(t)
	a := New(env(nil))
	rt, err := a.Transport(context.Background(), http.DefaultTransport,
		&spec.Authentication{Bearer: &spec.BearerAuth{Token: "abc"}}, "metrics.example:443", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := send(t, rt, other.URL); got != "" {
		t.Errorf("another host received Authorization %q", got)
	}
}

func TestMissingSecretNamesTheReference(t *testing.T) {
	a := New(env(nil))
	_, err := a.Transport(context.Background(), http.DefaultTransport,
		&spec.Authentication{BasicAuth: &spec.BasicAuth{Username: "u", PasswordFrom: &spec.SecretRef{Env: "PROM_PASSWORD"}}}, "h", false)
	if err == nil || err.Error() != "authentication.basicAuth.passwordFrom: environment variable PROM_PASSWORD is not set" {
		t.Errorf("got %v", err)
	}
}

// tokenServer is an OAuth2 token endpoint for one client; it counts the
// tokens it issued.
type tokenServer struct {
	issued    atomic.Int32
	expiresIn int
}

func (ts *tokenServer) start(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" {
			http.Error(w, "bad request", 400)
			return
		}
		if !ok || id != "coalmine" || secret != "client-secret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"invalid_client","error_description":"unknown client"}`))
			return
		}
		n := ts.issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "token-" + string(rune('0'+n)) + "-" + r.Form.Get("scope"),
			"token_type": "Bearer", "expires_in": ts.expiresIn})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOAuth2ClientCredentials(t *testing.T) {
	ts := &tokenServer{expiresIn: 3600}
	tokenSrv := ts.start(t)
	api := echoAuth(t)
	host := strings.TrimPrefix(api.URL, "http://")
	a := New(env(map[string]string{"CLIENT_SECRET": "client-secret"}))
	now := time.Now()
	a.now = func() time.Time { return now }
	auth := &spec.Authentication{OAuth2: &spec.OAuth2Auth{TokenURL: tokenSrv.URL + "/token", ClientID: "coalmine",
		ClientSecretFrom: &spec.SecretRef{Env: "CLIENT_SECRET"}, Scopes: []string{"metrics:read"}}}
	for i := 0; i < 3; i++ {
		rt, err := a.Transport(context.Background(), http.DefaultTransport, auth, host, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := send(t, rt, api.URL); got != "Bearer token-1-metrics:read" {
			t.Fatalf("query %d: Authorization %q", i, got)
		}
	}
	if n := ts.issued.Load(); n != 1 {
		t.Errorf("%d tokens fetched for 3 queries, want 1 (cached)", n)
	}
	// Close to its expiry the token is renewed.
	now = now.Add(time.Hour - 10*time.Second)
	rt, err := a.Transport(context.Background(), http.DefaultTransport, auth, host, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := send(t, rt, api.URL); got != "Bearer token-2-metrics:read" {
		t.Errorf("after expiry: Authorization %q", got)
	}
}

func TestOAuth2Refused(t *testing.T) {
	tokenSrv := (&tokenServer{}).start(t)
	a := New(env(nil))
	_, err := a.Transport(context.Background(), http.DefaultTransport, &spec.Authentication{OAuth2: &spec.OAuth2Auth{
		TokenURL: tokenSrv.URL + "/token?x=1", ClientID: "coalmine", ClientSecret: "wrong-secret"}}, "h", false)
	if err == nil {
		t.Fatal("a refused client got a token")
	}
	want := "get an OAuth2 token from " + tokenSrv.URL + "/token: status 401 Unauthorized: invalid_client (unknown client)"
	if err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Error("the error shows the secret")
	}
}

func TestInsecureTransport(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	tr := NewTransports(nil)
	if _, err := (&http.Client{Transport: tr.For(false)}).Get(srv.URL); err == nil {
		t.Error("a self-signed certificate was accepted without insecure")
	}
	if got := send(t, tr.For(true), srv.URL); got != "ok" {
		t.Errorf("insecure: got %q", got)
	}
}
