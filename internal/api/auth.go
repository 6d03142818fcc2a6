package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// authPolicy decides which requests need the bearer token (SPEC §7).
//
// With a token configured, everything except the liveness and readiness
// probes needs it: the /api/ tree, /metrics, and any route added later
// (deny by default). /metrics is protected because it names every rollout,
// version and endpoint and shows their traffic; it is treated like any other
// read, so ReadOnlyAnonymous opens it together with the read API, and a
// Prometheus server scraping a token-protected coalmine sets
// `authorization: {credentials_file: ...}` in its scrape config.
//
// The dashboard's static files (GET / and /ui/..., when served) are public
// too: they are the same for everyone and hold no data; the page asks for
// the token and sends it with every /api/ call it makes. They still get the
// Host check below, like everything but the probes.
type authPolicy struct {
	token             string
	readOnlyAnonymous bool
	publicUI          bool
}

// openPath reports the paths served without a token: probes must work from
// orchestrators that cannot hold secrets, and they reveal nothing.
func openPath(p string) bool { return p == "/healthz" || p == "/readyz" }

// uiPath reports the dashboard's static paths.
func uiPath(p string) bool { return p == "/" || strings.HasPrefix(p, "/ui/") }

func (p authPolicy) check(r *http.Request) error {
	if p.token == "" || openPath(r.URL.Path) {
		return nil
	}
	if p.publicUI && uiPath(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return nil
	}
	header := r.Header.Get("Authorization")
	if header == "" && p.readOnlyAnonymous && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return nil
	}
	got, ok := bearerToken(header)
	if !ok {
		msg := "missing bearer token: this endpoint requires the header Authorization: Bearer <token>"
		if header != "" {
			msg = "malformed Authorization header: use Authorization: Bearer <token>"
		}
		return &httpError{status: http.StatusUnauthorized, msg: msg}
	}
	if !tokensEqual(got, p.token) {
		return &httpError{status: http.StatusUnauthorized, msg: "invalid bearer token"}
	}
	return nil
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// tokensEqual compares in constant time. Hashing first makes the time
// independent of the lengths too, which subtle.ConstantTimeCompare alone
// would leak.
func tokensEqual(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// checkBrowser rejects requests a web browser could be tricked into
// sending. Cross-origin state-changing requests (CSRF) are refused always.
// Without a token the API trusts anyone who can reach its loopback address,
// and a hostile web page can reach it through DNS rebinding; so then only
// requests addressed to localhost or a loopback IP are served.
func (s *server) checkBrowser(r *http.Request) error {
	if err := s.crossOrg.Check(r); err != nil {
		return &httpError{status: http.StatusForbidden, msg: "cross-origin request rejected: " + err.Error()}
	}
	if s.auth.token == "" && !openPath(r.URL.Path) && !loopbackHost(hostOnly(r.Host)) {
		return &httpError{status: http.StatusForbidden, msg: fmt.Sprintf(
			"host %q is not allowed: without a token the admin API answers only to localhost and loopback addresses (protection against DNS rebinding); configure a token to serve other host names", r.Host)}
	}
	return nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// loopbackHost reports whether host is "localhost" (or a name under
// .localhost, RFC 6761) or an address in 127.0.0.0/8 or ::1.
func loopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.WithZone("").Unmap().IsLoopback()
}

// InsecureBindError is returned by CheckBind for a non-loopback admin
// address without a token.
type InsecureBindError struct {
	Addr string
}

func (e *InsecureBindError) Error() string {
	where := e.Addr
	if host, _, err := net.SplitHostPort(e.Addr); err == nil && host == "" {
		where += " (every interface)"
	}
	return "refusing to serve the admin API on " + where +
		" without a token: anyone who can reach it could change rollouts; pass --token-file FILE (or set COALMINE_TOKEN), or bind to 127.0.0.1"
}

// CheckBind refuses to serve the admin API on a non-loopback address
// without a token (SPEC §7). addr is host:port as given to --admin; a host
// counts as loopback when it is "localhost" or an IP in 127.0.0.0/8 or ::1.
// An empty host (":7070") listens on every interface and so does not. Any
// other host name is not resolved and counts as non-loopback: what it
// resolves to can change. A token that is empty or only spaces counts as no
// token.
func CheckBind(addr string, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid admin address %q: use host:port, such as 127.0.0.1:7070", addr)
	}
	if strings.TrimSpace(token) != "" || loopbackHost(host) {
		return nil
	}
	return &InsecureBindError{Addr: addr}
}
