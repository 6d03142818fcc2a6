package spec

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const (
	maxNameLength = 63
	maxPort       = 65535
)

// validator collects problems; helpers add to it and keep going, because a
// user wants every mistake of a file in one run.
type validator struct {
	errs FieldErrors
}

func (v *validator) add(p FieldPath, format string, args ...any) {
	v.errs.Add(string(p), format, args...)
}

// union checks that exactly one of the named options is set. kind is the
// noun used in the message ("a step", "a provider").
func (v *validator) union(p FieldPath, kind string, names []string, set []bool) bool {
	var got []string
	for i, ok := range set {
		if ok {
			got = append(got, names[i])
		}
	}
	if len(got) == 1 {
		return true
	}
	what := "none"
	if len(got) > 1 {
		what = strconv.Itoa(len(got)) + ": " + strings.Join(got, ", ")
	}
	v.add(p, "%s must set exactly one of %s; this one sets %s", kind, strings.Join(names, ", "), what)
	return false
}

// name checks an object name: [a-z0-9-], at most 63 characters, starting and
// ending with a letter or digit, so it fits in a DNS label, a URL path
// segment and a metric label without escaping.
func (v *validator) name(p FieldPath, s string) {
	if s == "" {
		v.add(p, "a name is required")
		return
	}
	if len(s) > maxNameLength {
		v.add(p, "name %q is %d characters long; use at most %d", s, len(s), maxNameLength)
		return
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			v.add(p, "name %q may only contain lowercase letters, digits and '-'", s)
			return
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		v.add(p, "name %q must start and end with a letter or digit", s)
	}
}

func (v *validator) apiVersionKind(apiVersion, kind, wantKind string) {
	if apiVersion != APIVersion {
		if apiVersion == "" {
			v.add("apiVersion", "apiVersion is required: use %s", APIVersion)
		} else {
			v.add("apiVersion", "unsupported apiVersion %q: use %s", apiVersion, APIVersion)
		}
	}
	if kind != wantKind {
		v.add("kind", "kind must be %s, not %q", wantKind, kind)
	}
}

// positive checks a duration that makes no sense at zero.
func (v *validator) positive(p FieldPath, d Duration) {
	if d <= 0 {
		v.add(p, "must be a positive duration, such as 30s")
	}
}

// minDuration checks a duration that drives a loop or a deadline against
// its smallest sane value: a 1ns health-check interval is a flood, not a
// setting.
func (v *validator) minDuration(p FieldPath, d, min Duration) {
	if d <= 0 {
		v.add(p, "must be a positive duration, such as 30s")
		return
	}
	if d < min {
		v.add(p, "%s is too short: it must be at least %s", d, min)
	}
}

func (v *validator) atLeast(p FieldPath, n, min int) {
	if n < min {
		v.add(p, "must be at least %d, not %d", min, n)
	}
}

// token checks a header or cookie name: an RFC 9110 token.
func (v *validator) token(p FieldPath, what, s string) {
	if s == "" {
		v.add(p, "%s is required", what)
		return
	}
	if !isToken(s) {
		v.add(p, "%s %q is not a valid token: use letters, digits and !#$%%&'*+-.^_`|~ only", what, s)
	}
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (v *validator) headers(p FieldPath, h map[string]string) {
	for _, k := range sortedKeys(h) {
		v.token(p.Key(k), "header name", k)
	}
}

// stringMatch checks the exact/prefix/regex union and compiles the regex
// with the same RE2 engine the router uses.
func (v *validator) stringMatch(p FieldPath, m StringMatch) {
	if !v.union(p, "a match", []string{"exact", "prefix", "regex"},
		[]bool{m.Exact != nil, m.Prefix != nil, m.Regex != nil}) {
		return
	}
	if m.Regex != nil {
		if _, err := regexp.Compile(*m.Regex); err != nil {
			v.add(p.Child("regex"), "invalid regular expression %q: %s", *m.Regex, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
}

// listen checks a host:port listener address.
func (v *validator) listen(p FieldPath, s string) {
	if s == "" {
		v.add(p, "a listen address is required, such as 127.0.0.1:8080")
		return
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		v.add(p, "invalid listen address %q: use host:port, such as 127.0.0.1:8080 or :8080", s)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > maxPort {
		v.add(p, "invalid port %q in listen address %q: use a number from 1 to %d", port, s, maxPort)
	}
}

// endpoint checks an upstream base URL: http(s)://host[:port] or
// h2c://host:port (cleartext HTTP/2) with nothing after it, because
// coalmine forwards the request path unchanged and a base path or query
// would be silently dropped.
func (v *validator) endpoint(p FieldPath, s string) {
	u, ok := v.absURL(p, "endpoint", s, "http", "https", "h2c")
	if !ok {
		return
	}
	shown := u.Redacted()
	switch {
	case u.User != nil:
		v.add(p, "endpoint %q must not contain credentials", shown)
	case u.Path != "" && u.Path != "/":
		v.add(p, "endpoint %q must not have a path: use scheme://host:port; the request path is forwarded as is", shown)
	case u.RawQuery != "" || u.ForceQuery:
		v.add(p, "endpoint %q must not have a query", shown)
	case u.Fragment != "":
		v.add(p, "endpoint %q must not have a fragment", shown)
	}
}

// httpURL checks an absolute http or https URL with a host and a valid port
// (if any). It never prints credentials embedded in the URL.
func (v *validator) httpURL(p FieldPath, what, s string) (*url.URL, bool) {
	return v.absURL(p, what, s, "http", "https")
}

// absURL checks an absolute URL with one of schemes, a host and a valid
// port (if any). It never prints credentials embedded in the URL.
func (v *validator) absURL(p FieldPath, what, s string, schemes ...string) (*url.URL, bool) {
	if s == "" {
		v.add(p, "%s URL is required", what)
		return nil, false
	}
	u, err := url.Parse(s)
	if err != nil {
		msg := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			msg = ue.Err.Error()
		}
		v.add(p, "invalid %s URL: %s; use an absolute URL such as http://127.0.0.1:9001", what, msg)
		return nil, false
	}
	if !slices.Contains(schemes, u.Scheme) {
		v.add(p, "%s %q must be an absolute %s URL", what, u.Redacted(), orList(schemeList(schemes)))
		return nil, false
	}
	if u.Hostname() == "" {
		v.add(p, "%s %q has no host", what, u.Redacted())
		return nil, false
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > maxPort {
			v.add(p, "%s %q has an invalid port: use a number from 1 to %d", what, u.Redacted(), maxPort)
			return nil, false
		}
	}
	return u, true
}

// oneOf checks an enum value.
func (v *validator) oneOf(p FieldPath, what, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.add(p, "unknown %s %q: use %s", what, got, orList(allowed))
}

// openUnit checks 0 < x < 1.
func (v *validator) openUnit(p FieldPath, x *float64) {
	if x != nil && !(*x > 0 && *x < 1) {
		v.add(p, "must be between 0 and 1 (exclusive), not %v", *x)
	}
}

func (v *validator) finite(p FieldPath, x float64) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		v.add(p, "must be a finite number")
		return false
	}
	return true
}

// orList formats "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// plainLabel checks a free-form label such as a version: it ends up in a
// response header and a metric label, so no whitespace or control characters.
func (v *validator) plainLabel(p FieldPath, what, s string) {
	if s == "" {
		v.add(p, "%s is required", what)
		return
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f {
			v.add(p, "%s %q must not contain spaces or control characters", what, s)
			return
		}
	}
	if len(s) > 128 {
		v.add(p, "%s is %d characters long; use at most 128", what, len(s))
	}
}

// nameSet maps a name to the path where it was first used.
type nameSet map[string]FieldPath

// unique reports the second and later uses of a name among siblings.
func (v *validator) unique(seen nameSet, p FieldPath, what, name string) {
	if name == "" {
		return
	}
	if first, ok := seen[name]; ok {
		v.add(p, "duplicate %s %q: already used at %s", what, name, first)
		return
	}
	seen[name] = p
}

// ListenersClash reports whether two listen addresses (host:port) cannot
// both be bound on one machine: the same port, and hosts that overlap. A
// wildcard host ("", 0.0.0.0, ::) overlaps every host; localhost overlaps
// 127.0.0.1 (Go binds a "localhost" listener to its IPv4 address only);
// other hosts overlap when they are equal after normalising IP spellings. Addresses that do not parse never clash
// (validation reports them).
func ListenersClash(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false
	}
	na, errA := strconv.Atoi(pa)
	nb, errB := strconv.Atoi(pb)
	if errA != nil || errB != nil || na != nb || na == 0 {
		return false
	}
	ka, kb := listenHostKind(ha), listenHostKind(hb)
	switch {
	case ka == "*" || kb == "*":
		return true
	case ka == "loopback-name" || kb == "loopback-name":
		return isLoopbackSpelling(ha) && isLoopbackSpelling(hb)
	}
	return ka == kb
}

// listenHostKind normalises a listen host: "*" for a wildcard,
// "loopback-name" for localhost, the canonical IP for an IP, else the
// lower-cased name.
func listenHostKind(h string) string {
	if h == "" || strings.EqualFold(h, "localhost") {
		if h == "" {
			return "*"
		}
		return "loopback-name"
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.IsUnspecified() {
			return "*"
		}
		return ip.Unmap().String()
	}
	return strings.ToLower(h)
}

func isLoopbackSpelling(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap() == netip.MustParseAddr("127.0.0.1")
}

// argValueFrom checks an argument's valueFrom: one source, and only the
// rollout fields that mean something outside Kubernetes.
func (v *validator) argValueFrom(p FieldPath, vf *ArgValueFrom, hasValue bool) {
	if vf == nil {
		return
	}
	if hasValue {
		v.add(p, "set value or valueFrom, not both")
		return
	}
	if !v.union(p, "valueFrom", []string{"env", "file", "secretKeyRef", "fieldRef", "podTemplateHashValue"},
		[]bool{vf.Env != "", vf.File != "", vf.SecretKeyRef != nil, vf.FieldRef != nil, vf.PodTemplateHashValue != ""}) {
		return
	}
	switch {
	case vf.SecretKeyRef != nil:
		k := vf.SecretKeyRef
		for _, f := range []struct{ name, val string }{{"name", k.Name}, {"key", k.Key}} {
			if f.val == "" || strings.ContainsAny(f.val, "/\\") || f.val == "." || f.val == ".." {
				v.add(p.Child("secretKeyRef").Child(f.name), "secretKeyRef needs a %s without slashes (the file read is $%s/NAME/KEY)", f.name, SecretsDirEnv)
			}
		}
	case vf.FieldRef != nil:
		if vf.FieldRef.FieldPath != "metadata.name" {
			v.add(p.Child("fieldRef").Child("fieldPath"), "fieldPath %q has no meaning outside Kubernetes: only metadata.name (the rollout's name) is supported; for the versions use podTemplateHashValue: Stable or Latest, or value: \"{{rollout.canary.version}}\"", vf.FieldRef.FieldPath)
		}
	case vf.PodTemplateHashValue != "":
		v.oneOf(p.Child("podTemplateHashValue"), "podTemplateHashValue", vf.PodTemplateHashValue, PodTemplateHashStable, PodTemplateHashLatest)
	}
}

// selectors checks Argo's dryRun and measurementRetention lists: each
// metricName a regular expression, each limit in range.
func (v *validator) selectors(p FieldPath, dryRun []MetricSelector, retention []MeasurementRetention) {
	pattern := func(q FieldPath, s string) {
		if s == "" {
			v.add(q, "metricName is required: a metric name, or a regular expression such as .* for all")
			return
		}
		if _, err := regexp.Compile(s); err != nil {
			v.add(q, "invalid regular expression %q: %s", s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
	for i, d := range dryRun {
		pattern(p.Child("dryRun").Index(i).Child("metricName"), d.MetricName)
	}
	for i, r := range retention {
		rp := p.Child("measurementRetention").Index(i)
		pattern(rp.Child("metricName"), r.MetricName)
		if r.Limit < 1 || r.Limit > MaxMeasurementRetention {
			v.add(rp.Child("limit"), "keeps 1 to %d measurements, not %d", MaxMeasurementRetention, r.Limit)
		}
	}
}

// CheckListenAddress checks a host:port listen address as spec.listen is
// checked, for addresses given elsewhere (serve --listen-override).
func CheckListenAddress(s string) error {
	v := &validator{}
	v.listen("", s)
	if len(v.errs) > 0 {
		return errors.New(v.errs[0].Msg)
	}
	return nil
}

// schemeList spells schemes as URL prefixes: "http://".
func schemeList(schemes []string) []string {
	out := make([]string, len(schemes))
	for i, s := range schemes {
		out[i] = s + "://"
	}
	return out
}
