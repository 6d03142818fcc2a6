package route

import (
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// SubjectLen is the length of a subject id: 128 random bits in hex.
const SubjectLen = 32

// Decision is the outcome of routing one request.
type Decision struct {
	Target Target
	Reason Reason
	// Route is the index of the header route that matched, or -1.
	Route int
	// Bucket is the request's bucket in [0, 10000) when a subject decided.
	Bucket uint32
	// NewSubject is set when the request had no key: the proxy must send
	// Subject in the subject cookie so the next request is sticky.
	NewSubject bool
	Subject    [SubjectLen]byte
	// Mirror is set when the request should also be sent to the canary.
	Mirror bool
}

// Entropy is the randomness a decision may consume; the proxy passes fresh
// random words, tests pass fixed ones.
type Entropy struct{ A, B uint64 }

// Decide routes r with table t. It is pure: the same table, request and
// entropy always give the same decision. Precedence (SPEC §3): header routes
// in order, then the user key header, then the subject cookie, then a new
// random subject whose bucket decides (which is a weighted random choice).
func (t *Table) Decide(r Request, e Entropy) Decision {
	d := Decision{Route: -1}
	for i := range t.headerRoutes {
		if t.headerRoutes[i].match(r) {
			d.Target, d.Reason, d.Route = t.headerRoutes[i].To, ReasonHeaderRoute, i
			t.decideMirror(r, &d, e)
			return d
		}
	}
	switch {
	case t.userHeader != "" && t.keyFrom(r, t.userHeader, true, &d):
		d.Reason = ReasonUserKey
	case t.cookieOn && t.keyFrom(r, t.cookieName, false, &d):
		d.Reason = ReasonCookie
	default:
		encodeSubject(&d.Subject, e.A, e.B)
		d.Bucket = Bucket(t.salt, d.Subject[:])
		d.Reason = ReasonNewSubject
		d.NewSubject = t.cookieOn
	}
	if d.Bucket < uint32(t.Weight) {
		d.Target = Canary
	}
	t.decideMirror(r, &d, e)
	return d
}

// keyFrom reads a non-empty key from a header or cookie and buckets it.
func (t *Table) keyFrom(r Request, name string, header bool, d *Decision) bool {
	var v []byte
	var ok bool
	if header {
		v, ok = r.Header(name)
	} else {
		v, ok = r.Cookie(name)
	}
	if !ok || len(v) == 0 {
		return false
	}
	d.Bucket = Bucket(t.salt, v)
	return true
}

// decideMirror marks stable-served requests that a mirror route selects.
// Without an explicit method match only idempotent methods are mirrored,
// because replaying a POST against a canary can have side effects.
func (t *Table) decideMirror(r Request, d *Decision, e Entropy) {
	if d.Target != Stable || len(t.mirrorRoutes) == 0 {
		return
	}
	for i := range t.mirrorRoutes {
		mr := &t.mirrorRoutes[i]
		if !mr.matches(r) {
			continue
		}
		// Use bits of the entropy not used for the subject id's bucket.
		if mr.share < spec.MaxWeight && uint32((e.A^(e.B>>17))%uint64(spec.MaxWeight)) >= uint32(mr.share) {
			return
		}
		d.Mirror = true
		return
	}
}

// matches reports whether r is selected by one of the route's matches. A
// route without any matches nothing: in Argo a setMirrorRoute without match
// removes the route, and validation rejects one with a percentage, so only
// a state saved by an older build can hold one.
func (mr *MirrorRoute) matches(r Request) bool {
	for i := range mr.alts {
		alt := &mr.alts[i]
		if !alt.match(r) {
			continue
		}
		if alt.method == nil && !idempotent(r.Method()) {
			continue
		}
		return true
	}
	return false
}

// idempotent reports RFC 9110 §9.2.2 idempotent methods.
func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// AppendSetCookie appends the Set-Cookie value for d's new subject.
func (t *Table) AppendSetCookie(dst []byte, d *Decision, secure bool) []byte {
	dst = append(dst, t.setCookiePrefix...)
	dst = append(dst, d.Subject[:]...)
	dst = append(dst, t.setCookieSuffix...)
	if secure {
		dst = append(dst, "; Secure"...)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

func encodeSubject(dst *[SubjectLen]byte, a, b uint64) {
	for i := 0; i < 16; i++ {
		dst[i] = hexDigits[(a>>(60-4*uint(i)))&0xf]
		dst[16+i] = hexDigits[(b>>(60-4*uint(i)))&0xf]
	}
}
