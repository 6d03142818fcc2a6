// Package httpauth gives the prometheus and web providers what Argo
// Rollouts' metric providers share: skipping TLS verification (insecure)
// and credentials (basicAuth, bearer, OAuth2 client credentials).
//
// Credentials are resolved for each query: a secret reference
// ({env: NAME} or {file: PATH}) is read again, so a rotated token file is
// picked up without a restart. OAuth2 tokens are cached until shortly
// before they expire, keyed by everything that identifies the client
// (including a hash of its secret), so a changed secret fetches a new one.
// Credentials are sent only to the metric's own host: a redirect to another
// host never carries them. Errors name the field and the reference, never
// the value.
package httpauth

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Resolver reads a secret reference (config.ResolveSecret in production).
type Resolver func(*spec.SecretRef) (string, error)

// maxCachedTokens bounds the token cache; past it the cache starts over
// (a secret that changes often would otherwise grow it forever).
const maxCachedTokens = 64

// Transports holds a base transport and its copy that skips TLS
// verification, both shared by every query so connections are reused.
type Transports struct {
	secure, insecure http.RoundTripper
}

// NewTransports returns the transports for base (a clone of
// http.DefaultTransport when nil). A base that is not an *http.Transport
// cannot be changed, so it is used for insecure metrics too.
func NewTransports(base http.RoundTripper) *Transports {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	t := &Transports{secure: base, insecure: base}
	if ht, ok := base.(*http.Transport); ok {
		c := ht.Clone()
		if c.TLSClientConfig == nil {
			c.TLSClientConfig = &tls.Config{}
		}
		c.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the metric asked for it with insecure: true
		t.insecure = c
	}
	return t
}

// For returns the transport for a metric's insecure setting.
func (t *Transports) For(insecure bool) http.RoundTripper {
	if insecure {
		return t.insecure
	}
	return t.secure
}

// Auth adds metrics' credentials to their requests. It is safe for
// concurrent use.
type Auth struct {
	resolve Resolver
	now     func() time.Time

	mu     sync.Mutex
	tokens map[tokenKey]*oauth2.Token
}

type tokenKey struct {
	tokenURL, clientID, scopes string
	secret                     [sha256.Size]byte
	insecure                   bool
}

// New returns an Auth that reads secret references with resolve.
func New(resolve Resolver) *Auth {
	return &Auth{resolve: resolve, now: time.Now, tokens: map[tokenKey]*oauth2.Token{}}
}

// Transport returns base with the credentials of a added to requests for
// host (the URL's host:port as sent). It resolves the credentials now, and
// for OAuth2 fetches a token through base within ctx unless a cached one is
// still valid. A nil a returns base unchanged.
func (a *Auth) Transport(ctx context.Context, base http.RoundTripper, auth *spec.Authentication, host string, insecure bool) (http.RoundTripper, error) {
	if auth == nil {
		return base, nil
	}
	var header string
	switch {
	case auth.BasicAuth != nil:
		b := auth.BasicAuth
		pw, err := a.secret("basicAuth.password", b.Password, b.PasswordFrom)
		if err != nil {
			return nil, err
		}
		header = "Basic " + base64.StdEncoding.EncodeToString([]byte(b.Username+":"+pw))
	case auth.Bearer != nil:
		tok, err := a.secret("bearer.token", auth.Bearer.Token, auth.Bearer.TokenFrom)
		if err != nil {
			return nil, err
		}
		header = "Bearer " + strings.TrimSpace(tok)
	case auth.OAuth2 != nil:
		tok, err := a.oauth2Token(ctx, base, auth.OAuth2, insecure)
		if err != nil {
			return nil, err
		}
		header = tok.Type() + " " + tok.AccessToken
	case auth.SigV4 != nil:
		return nil, errors.New("authentication.sigv4 is not supported; put a signing proxy in front of the server")
	default:
		return base, nil
	}
	return &authTransport{base: base, host: host, header: header}, nil
}

// secret returns a credential written in the file or read from its
// reference.
func (a *Auth) secret(field, literal string, from *spec.SecretRef) (string, error) {
	if from == nil {
		return literal, nil
	}
	v, err := a.resolve(from)
	if err != nil {
		return "", fmt.Errorf("authentication.%sFrom: %w", field, err)
	}
	return v, nil
}

// oauth2Token returns a cached token that is still valid, or fetches one
// with the client-credentials flow.
func (a *Auth) oauth2Token(ctx context.Context, base http.RoundTripper, o *spec.OAuth2Auth, insecure bool) (*oauth2.Token, error) {
	secret, err := a.secret("oauth2.clientSecret", o.ClientSecret, o.ClientSecretFrom)
	if err != nil {
		return nil, err
	}
	key := tokenKey{tokenURL: o.TokenURL, clientID: o.ClientID, scopes: strings.Join(o.Scopes, " "), secret: sha256.Sum256([]byte(secret)), insecure: insecure}
	a.mu.Lock()
	tok := a.tokens[key]
	a.mu.Unlock()
	// Renew a little early so a token does not expire between here and the
	// server.
	if tok != nil && (tok.Expiry.IsZero() || a.now().Add(30*time.Second).Before(tok.Expiry)) {
		return tok, nil
	}
	cfg := clientcredentials.Config{ClientID: o.ClientID, ClientSecret: secret, TokenURL: o.TokenURL, Scopes: o.Scopes}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: base})
	tok, err = cfg.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("get an OAuth2 token from %s: %w", redactURL(o.TokenURL), tokenError(err))
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("get an OAuth2 token from %s: the answer has no access_token", redactURL(o.TokenURL))
	}
	a.mu.Lock()
	if len(a.tokens) >= maxCachedTokens {
		clear(a.tokens)
	}
	a.tokens[key] = tok
	a.mu.Unlock()
	return tok, nil
}

// tokenError shortens the oauth2 package's error: a RetrieveError quotes
// the whole response body; the status and the OAuth2 error code are what
// the user needs.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		msg := fmt.Sprintf("status %s", re.Response.Status)
		if re.ErrorCode != "" {
			msg += ": " + re.ErrorCode
			if re.ErrorDescription != "" {
				msg += " (" + re.ErrorDescription + ")"
			}
		}
		return errors.New(msg)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL prints a URL without its password and query string.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the token URL"
	}
	c := *u
	c.RawQuery, c.Fragment = "", ""
	return c.Redacted()
}

// authTransport sets Authorization on requests for one host. The incoming
// request is never modified.
type authTransport struct {
	base   http.RoundTripper
	host   string
	header string
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.host {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", t.header)
	return t.base.RoundTrip(r)
}
