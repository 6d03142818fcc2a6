// Package nginx drives an open-source NGINX (no Plus API) for one rollout.
// Structural changes (endpoints, header routes, a new revision's salt,
// the user header) are rendered into include files that `nginx -t` checks
// and a reload applies; a weight change is a swap of files in a state
// directory that the workers stat on every request, with no reload. The
// status NGINX answers tells coalmine which routing the workers serve.
//
// For a rollout whose NGINX identifier is NAME, the http include file
// defines:
//
//   - upstreams NAME_stable and NAME_canary (the values of $proxy_host in
//     the access log);
//   - two split_clients on the user key (the user header, or $request_id
//     for a request without it) salted by the rollout, its revision and
//     a letter, that put each user in bucket b1 and bucket b2, each of
//     100;
//   - $coalmine_NAME_upstream, the upstream a request goes to: the first
//     header route that matches, else $coalmine_NAME_split, which the
//     location include sets;
//   - a small server on the status address whose location
//     /coalmine/NAME answers the weight state's status file, with the
//     digest of the routing the workers run in a header.
//
// The location include, which the user's proxying location includes, sets
// $coalmine_NAME_split to c when the file STATE/current/r<b1>/<b2> exists.
// The weight w = 100*A + B basis points is in the files: rows r00 to
// r<A-1> hold every b2, row r<A> holds b2 < B. So a user is on the canary
// iff b1 < A, or b1 == A and b2 < B: exact to 0.01 %, and raising the
// weight never moves a canary user back. current is a symbolic link that
// coalmine swaps in one rename, so a request sees the old weight or the
// new one, never a mix.
//
// The user's location proxies with `proxy_pass http://$coalmine_NAME_upstream;`
// (ConfigExample writes a complete nginx.conf). One include file serves
// one rollout; rollouts may share the status address.
package nginx

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// DefaultStatusAddress is where NGINX answers coalmine's status requests
// when the spec names no address.
const DefaultStatusAddress = "127.0.0.1:7079"

// keepaliveConnections is the idle connections each NGINX worker keeps to
// an upstream, so a canary does not pay a TCP handshake per request.
const keepaliveConnections = 32

// Identifier turns a rollout name into the NGINX identifier its upstreams
// and variables are named after: letters, digits and underscores, every
// other byte becoming an underscore.
func Identifier(rollout string) (string, error) {
	if rollout == "" {
		return "", errors.New("the rollout has no name: the nginx router names its upstreams after it")
	}
	b := []byte(rollout)
	for i, c := range b {
		if !isIdentByte(c) {
			b[i] = '_'
		}
	}
	return string(b), nil
}

func isIdentByte(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// Names are what the include file of one rollout declares.
type Names struct {
	// ID is the rollout's NGINX identifier.
	ID string
	// Stable and Canary are the upstream names.
	Stable, Canary string
	// Upstream is the variable the user's location proxies to.
	Upstream string
	// StatusPath and StatusHost are the status location and the server
	// name it answers under.
	StatusPath, StatusHost string
}

// NamesFor returns the names the include file of rollout declares.
func NamesFor(rollout string) (Names, error) {
	id, err := Identifier(rollout)
	if err != nil {
		return Names{}, err
	}
	return Names{
		ID:         id,
		Stable:     id + "_stable",
		Canary:     id + "_canary",
		Upstream:   "$coalmine_" + id + "_upstream",
		StatusPath: "/coalmine/" + id,
		// Rollouts that share a status address each have their own
		// server, told apart by this name.
		StatusHost: "coalmine-status-" + strings.ToLower(strings.ReplaceAll(id, "_", "-")),
	}, nil
}

// Status is what the status location answers: the weight state's status
// file, written by coalmine with the weight files.
type Status struct {
	Rollout         string      `json:"rollout"`
	Generation      uint64      `json:"generation"`
	Weight          spec.Weight `json:"weight"`
	CanaryAvailable bool        `json:"canaryAvailable"`
	// Digest fingerprints the include files the weight state was written
	// for; the status location answers the digest of the files the
	// workers run in DigestHeader, so coalmine knows the workers run this
	// very routing, not only this generation.
	Digest string `json:"digest"`
}

// DigestHeader carries, in every status answer, the digest of the include
// files the answering worker runs.
const DigestHeader = "X-Coalmine-Digest"

// Rendered is what Render writes for one Desired: the two include files,
// and the status NGINX answers once it runs them with the weight state.
type Rendered struct {
	// Text is the http include file: upstreams, splits, header routes and
	// the status server. It holds neither the weight nor the generation,
	// so a weight change leaves it unchanged.
	Text []byte
	// Location is the location include file, which sets the split from
	// the weight files.
	Location []byte
	// Status is the status the weight state's file holds; its Digest is
	// the fingerprint of Text and Location.
	Status Status
}

// Render writes the include files for d. statusAddress is host:port (""
// for DefaultStatusAddress); stateDir is the weight state's directory (""
// for DefaultStateDir of the default include file). It is pure: the same
// input gives the same bytes. Everything taken from the spec is validated
// or escaped, so no value can add, end or change an NGINX directive.
func Render(d router.Desired, statusAddress, stateDir string) (Rendered, error) {
	names, err := NamesFor(d.Rollout)
	if err != nil {
		return Rendered{}, err
	}
	listen, err := listenAddress(statusAddress)
	if err != nil {
		return Rendered{}, err
	}
	if stateDir == "" {
		stateDir = DefaultStateDir("/etc/nginx/coalmine/" + names.ID + ".conf")
	}
	if err := validStateDir(stateDir); err != nil {
		return Rendered{}, err
	}
	if d.Weight > spec.MaxWeight {
		return Rendered{}, fmt.Errorf("weight %d basis points is over 10000 (100%%)", d.Weight)
	}
	if len(d.MirrorRoutes) > 0 {
		return Rendered{}, errMirror()
	}
	stable, err := servers(d.Stable, "stable")
	if err != nil {
		return Rendered{}, err
	}
	if len(stable) == 0 {
		return Rendered{}, fmt.Errorf("stable version %q has no endpoints: an NGINX upstream needs at least one server", d.Stable.Version)
	}
	var canary []string
	if d.Canary != nil {
		if canary, err = servers(*d.Canary, "canary"); err != nil {
			return Rendered{}, err
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Written by coalmine for rollout %s. Do not edit: coalmine rewrites\n", names.ID)
	b.WriteString("# this file when the rollout's upstreams, header routes or revision\n")
	b.WriteString("# change, and reloads NGINX. Weights change in files, without a reload.\n")
	b.WriteString("# Proxy to it with: proxy_pass http://" + names.Upstream + ";\n\n")
	writeUpstream(&b, names.Stable, d.Stable.Version, stable)
	if len(canary) > 0 {
		writeUpstream(&b, names.Canary, d.Canary.Version, canary)
	}
	if err := writeSplit(&b, names, d, len(canary) > 0); err != nil {
		return Rendered{}, err
	}
	location := renderLocation(names, stateDir)
	sum := sha256.New()
	sum.Write([]byte(b.String()))
	sum.Write([]byte{0})
	sum.Write([]byte(location))
	digest := hex.EncodeToString(sum.Sum(nil)[:8])
	writeStatusServer(&b, names, listen, stateDir, digest)
	st := Status{
		Rollout:         names.ID,
		Generation:      d.Generation,
		Weight:          d.Weight,
		CanaryAvailable: len(canary) > 0,
		Digest:          digest,
	}
	return Rendered{Text: []byte(b.String()), Location: []byte(location), Status: st}, nil
}

// DefaultStateDir is the weight state's directory beside includeFile:
// /etc/nginx/coalmine/shop.conf keeps its state in
// /etc/nginx/coalmine/shop.d.
func DefaultStateDir(includeFile string) string {
	return strings.TrimSuffix(includeFile, ".conf") + ".d"
}

// LocationFile is the location include beside includeFile:
// /etc/nginx/coalmine/shop.conf has /etc/nginx/coalmine/shop.location.
// It does not end in .conf, so an http-level `include dir/*.conf` does
// not take it (its directives belong in a location).
func LocationFile(includeFile string) string {
	return strings.TrimSuffix(includeFile, ".conf") + ".location"
}

// validStateDir accepts an absolute path of letters, digits and . _ - /,
// which NGINX reads literally in an if condition.
func validStateDir(dir string) error {
	if !strings.HasPrefix(dir, "/") {
		return fmt.Errorf("state directory %q must be an absolute path", dir)
	}
	for i := 0; i < len(dir); i++ {
		c := dir[i]
		if c != '/' && c != '.' && c != '-' && !isIdentByte(c) {
			return fmt.Errorf("state directory %q: NGINX reads it in an if condition, so only letters, digits and . _ - / are allowed", dir)
		}
	}
	return nil
}

// Buckets is the number of buckets each of the two splits has: the weight
// is exact to 1/(Buckets*Buckets).
const Buckets = 100

// renderLocation writes the location include: only rewrite-module
// directives (set, and if with set), which are safe inside a location
// with proxy_pass. NGINX stats the weight file on every request, so a
// swap of the files takes effect at once in every worker.
func renderLocation(names Names, stateDir string) string {
	split := "coalmine_" + names.ID + "_split"
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by coalmine for rollout %s. Do not edit. Include it in the\n", names.ID)
	fmt.Fprintf(&b, "# location that proxies to %s: it sends the user's bucket\n", names.Upstream)
	b.WriteString("# to the canary when its weight file exists, which coalmine adds and\n")
	b.WriteString("# removes to change the weight without a reload.\n")
	// The weight files must be seen as they are now by every worker: an
	// open_file_cache (often set for the whole http block) would keep a
	// removed file "existing" for its valid time, so an abort would not
	// reach that worker. A location that sets them itself makes nginx -t
	// refuse the duplicate, loudly.
	b.WriteString("open_file_cache off;\ndisable_symlinks off;\n")
	fmt.Fprintf(&b, "set $%s %s;\n", split, letterStable)
	fmt.Fprintf(&b, "if (-f %s/current/r${coalmine_%s_b1}/${coalmine_%s_b2}) {\n", stateDir, names.ID, names.ID)
	fmt.Fprintf(&b, "    set $%s %s;\n}\n", split, letterCanary)
	return b.String()
}

func errMirror() error {
	return fmt.Errorf("nginx router: mirror routes: %w (NGINX's mirror directive cannot choose requests by a match per request; remove the rollout's mirror routes or use the built-in proxy)", router.ErrUnsupported)
}

func writeUpstream(b *strings.Builder, name, version string, servers []string) {
	fmt.Fprintf(b, "# Version %s.\n", commentSafe(version))
	fmt.Fprintf(b, "upstream %s {\n", name)
	for _, s := range servers {
		fmt.Fprintf(b, "    server %s;\n", s)
	}
	fmt.Fprintf(b, "    keepalive %d;\n}\n\n", keepaliveConnections)
}

// Each header route match and the split yield one letter, c (canary) or s
// (stable), or nothing when a match does not hold. The final map reads
// them in order, so the first letter decides: header routes in order, then
// the split.
const (
	letterCanary = "c"
	letterStable = "s"
)

func writeSplit(b *strings.Builder, names Names, d router.Desired, hasCanary bool) error {
	key := "$request_id"
	if d.UserHeader != "" {
		hv, err := headerVariable(d.UserHeader)
		if err != nil {
			return fmt.Errorf("user header: %w", err)
		}
		key = "$coalmine_" + names.ID + "_key"
		fmt.Fprintf(b, "# The user key: the %s header, or a fresh id per request without it.\n", d.UserHeader)
		fmt.Fprintf(b, "map %s %s {\n    \"\" $request_id;\n    default %s;\n}\n\n", hv, key, hv)
	}
	b.WriteString("# Each user's two buckets, which the location include looks the weight\n")
	b.WriteString("# files up with. The rollout and its revision salt the key, so each\n")
	b.WriteString("# release starts with other users, and no user is first in every rollout.\n")
	for _, half := range []string{"b1", "b2"} {
		fmt.Fprintf(b, "split_clients \"${%s}/%s/%d/%s\" $coalmine_%s_%s {\n", strings.TrimPrefix(key, "$"), names.ID, d.Revision, half, names.ID, half)
		for i := 0; i < Buckets-1; i++ {
			fmt.Fprintf(b, "    %d%% %02d;\n", 100/Buckets, i)
		}
		fmt.Fprintf(b, "    * %02d;\n}\n\n", Buckets-1)
	}
	if !hasCanary {
		b.WriteString("# No canary: every request goes to stable.\n")
		fmt.Fprintf(b, "map \"\" %s {\n    default %s;\n}\n", names.Upstream, names.Stable)
		return nil
	}
	split := "$coalmine_" + names.ID + "_split"

	var parts []string
	for i, hr := range d.HeaderRoutes {
		letter := letterCanary
		switch hr.To {
		case "", spec.RoleCanary:
		case spec.RoleStable:
			letter = letterStable
		default:
			return fmt.Errorf("header route %d (%q): to %q is neither canary nor stable", i+1, hr.Name, hr.To)
		}
		for j, m := range hr.Match {
			hv, err := headerVariable(m.HeaderName)
			if err != nil {
				return fmt.Errorf("header route %d (%q), match %d: %w", i+1, hr.Name, j+1, err)
			}
			pattern, err := matchPattern(m.HeaderValue)
			if err != nil {
				return fmt.Errorf("header route %d (%q), match %d: %w", i+1, hr.Name, j+1, err)
			}
			if len(pattern) > maxPattern {
				return fmt.Errorf("header route %d (%q), match %d: the value or regex is %d bytes long written for NGINX, over the %d NGINX reads in one parameter; shorten it", i+1, hr.Name, j+1, len(pattern), maxPattern)
			}
			if err := safeInQuotes(pattern); err != nil {
				return fmt.Errorf("header route %d (%q), match %d: %w", i+1, hr.Name, j+1, err)
			}
			v := fmt.Sprintf("$coalmine_%s_r%d_%d", names.ID, i, j)
			fmt.Fprintf(b, "# Header route %d (%s), match %d: %s.\n", i+1, commentSafe(hr.Name), j+1, m.HeaderName)
			fmt.Fprintf(b, "map %s %s {\n    \"~%s\" %s;\n    default \"\";\n}\n\n", hv, v, pattern, letter)
			parts = append(parts, v)
		}
	}
	parts = append(parts, split)
	var src strings.Builder
	for _, p := range parts {
		src.WriteString("${" + strings.TrimPrefix(p, "$") + "}")
	}
	fmt.Fprintf(b, "map \"%s\" %s {\n    \"~^%s\" %s;\n    default %s;\n}\n", src.String(), names.Upstream, letterCanary, names.Canary, names.Stable)
	return nil
}

// maxPattern keeps a map key within the 4096 bytes NGINX's configuration
// reader holds of one parameter ("too long parameter").
const maxPattern = 4000

func matchPattern(m spec.StringMatch) (string, error) {
	set := 0
	var pattern string
	var err error
	if m.Exact != nil {
		set++
		pattern = exactPattern(*m.Exact)
	}
	if m.Prefix != nil {
		set++
		pattern = prefixPattern(*m.Prefix)
	}
	if m.Regex != nil {
		set++
		pattern, err = regexPattern(*m.Regex)
	}
	if set != 1 {
		return "", fmt.Errorf("a header value match needs exactly one of exact, prefix or regex; got %d", set)
	}
	return pattern, err
}

// safeInQuotes checks that a pattern reads back unchanged from a double
// quoted NGINX string: no quote, no whitespace, no $, and no backslash
// that NGINX would take as an escape (\" \' \\ \n \r \t). The patterns
// written here never hold one; this keeps it so.
func safeInQuotes(p string) error {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\'' || c == '$' || c == ';' || c == '#' {
			return fmt.Errorf("internal error: pattern %q holds %q, unsafe in an NGINX string", p, c)
		}
		if c == '\\' {
			if i+1 >= len(p) || strings.IndexByte(`"'\nrt`, p[i+1]) >= 0 {
				return fmt.Errorf("internal error: pattern %q holds an escape NGINX would read", p)
			}
			i++
		}
	}
	return nil
}

// headerVariable is the NGINX variable of a request header. A name with
// other bytes than letters, digits and hyphens cannot be read reliably
// (NGINX drops headers with underscores by default), so it is refused.
func headerVariable(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty header name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '-' && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && !('0' <= c && c <= '9') {
			return "", fmt.Errorf("header name %q: the nginx router reads only headers named with letters, digits and hyphens", name)
		}
	}
	return "$http_" + strings.ToLower(strings.ReplaceAll(name, "-", "_")), nil
}

// servers turns a version's endpoints (http://host:port) into the
// addresses of upstream server lines.
func servers(t router.Target, role string) ([]string, error) {
	out := make([]string, 0, len(t.Endpoints))
	for _, e := range t.Endpoints {
		s, err := serverAddress(e)
		if err != nil {
			return nil, fmt.Errorf("%s version %q: %w", role, t.Version, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func serverAddress(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("endpoint %q: the nginx router proxies with http://, so endpoints must be http://host:port", endpoint)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("endpoint %q: only http://host:port is allowed (no user, path, query or fragment)", endpoint)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("endpoint %q: port %q is not between 1 and 65535", endpoint, port)
	}
	if err := validHost(host); err != nil {
		return "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	return net.JoinHostPort(host, port), nil
}

// validHost accepts an IP address or a DNS name.
func validHost(host string) error {
	if ip := net.ParseIP(host); ip != nil {
		return nil
	}
	if host == "" || len(host) > 253 {
		return fmt.Errorf("host %q is not an IP address or a DNS name", host)
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q is not an IP address or a DNS name", host)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c != '-' && c != '_' && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && !('0' <= c && c <= '9') {
				return fmt.Errorf("host %q is not an IP address or a DNS name", host)
			}
		}
	}
	return nil
}

// listenAddress validates the status address and writes it as NGINX's
// listen directive takes it.
func listenAddress(addr string) (string, error) {
	if addr == "" {
		addr = DefaultStatusAddress
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("status address %q: want host:port, such as %s: %w", addr, DefaultStatusAddress, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("status address %q: port %q is not between 1 and 65535", addr, port)
	}
	if host == "" {
		return "", fmt.Errorf("status address %q: name the host, such as 127.0.0.1 (the status should not listen on every interface)", addr)
	}
	if err := validHost(host); err != nil {
		return "", fmt.Errorf("status address %q: %w", addr, err)
	}
	return net.JoinHostPort(host, port), nil
}

func writeStatusServer(b *strings.Builder, names Names, listen, stateDir, digest string) {
	b.WriteString("\n# The weight state coalmine wrote, answered by the workers with the\n")
	b.WriteString("# digest of the routing they run.\n")
	fmt.Fprintf(b, "server {\n    listen %s;\n    server_name %s;\n    access_log off;\n", listen, names.StatusHost)
	// Any other path answers 404 without the digest, which Observe reads
	// as "this rollout is not routed here" when rollouts share the address.
	fmt.Fprintf(b, "    location = %s {\n        default_type application/json;\n", names.StatusPath)
	fmt.Fprintf(b, "        alias %s/current/status.json;\n", stateDir)
	b.WriteString("        open_file_cache off;\n        disable_symlinks off;\n")
	fmt.Fprintf(b, "        add_header %s %s always;\n    }\n", DigestHeader, digest)
	b.WriteString("    location / {\n        return 404;\n    }\n}\n")
}

// commentSafe keeps a spec string to printable ASCII, so it cannot end the
// comment it is written in.
func commentSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < ' ' || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}
