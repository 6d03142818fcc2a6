package accesslog

import (
	"time"
	"unicode/utf8"
)

// parseNGINX reads one NGINX access-log line written with a JSON
// log_format (escape=json): an object with at least
//
//	"upstream":       $proxy_host, the upstream name (a string; "" when NGINX answered itself)
//	"status":         $status, the code the client got (a number or a numeric string)
//	"request_time":   $request_time, seconds with a decimal point (a number or a string)
//
// and optionally "upstream_status" ($upstream_status, a string such as
// "502, 200": every attempt before the last of the final group is counted
// as a failed attempt, 504 as a timeout and anything else as a failed
// connection). Other members are allowed and skipped; the last of
// duplicated members wins. An escaped upstream name is decoded into
// scratch, which the returned record may then alias.
func parseNGINX(m []byte, scratch []byte) (record, verdict) {
	var r record
	s := jscan{b: m}
	s.ws()
	if !s.eat('{') {
		return r, verdictMalformed
	}
	var haveUpstream, haveStatus, haveTime bool
	var upstreamStatus []byte
	s.ws()
	if s.eat('}') {
		return r, verdictMalformed
	}
	for {
		s.ws()
		key, escaped, ok := s.str()
		if !ok {
			return r, verdictMalformed
		}
		s.ws()
		if !s.eat(':') {
			return r, verdictMalformed
		}
		s.ws()
		// Keys are compared undecoded: NGINX writes them from the
		// log_format verbatim, and "upstream" spelt with escapes is
		// someone else's member.
		switch {
		case !escaped && string(key) == "upstream":
			v, esc, ok := s.str()
			if !ok {
				return r, verdictMalformed
			}
			if esc {
				if v, ok = unescapeJSON(v, scratch[:0]); !ok {
					return r, verdictMalformed
				}
			}
			r.backend, haveUpstream = v, true
		case !escaped && string(key) == "status":
			v, ok := s.numberOrString()
			if !ok || len(v) != 3 || !isDigits(v) {
				return r, verdictMalformed
			}
			r.code = int(v[0]-'0')*100 + int(v[1]-'0')*10 + int(v[2]-'0')
			if r.code < 100 || r.code > 599 {
				return r, verdictMalformed
			}
			haveStatus = true
		case !escaped && string(key) == "request_time":
			v, ok := s.numberOrString()
			if !ok {
				return r, verdictMalformed
			}
			if r.latency, ok = parseSeconds(v); !ok {
				return r, verdictMalformed
			}
			haveTime = true
		case !escaped && string(key) == "upstream_status":
			v, ok := s.numberOrString()
			if !ok {
				return r, verdictMalformed
			}
			upstreamStatus = v
		default:
			if !s.skipValue(0) {
				return r, verdictMalformed
			}
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if !s.eat('}') {
			return r, verdictMalformed
		}
		break
	}
	s.ws()
	if s.i != len(s.b) || !haveUpstream || !haveStatus || !haveTime {
		return r, verdictMalformed
	}
	r.failedConnects, r.failedTimeouts = earlierAttempts(upstreamStatus)
	return r, verdictRequest
}

// earlierAttempts counts the attempts before the last one in the final
// group of an $upstream_status value ("502, 504, 200" → one connect, one
// timeout). Groups, separated by " : ", come from internal redirects to
// other upstreams, which may not be this version's.
func earlierAttempts(v []byte) (connects, timeouts int) {
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == ':' {
			v = v[i+1:]
			break
		}
	}
	for {
		comma := indexByte(v, ',')
		if comma < 0 {
			return connects, timeouts
		}
		if connects+timeouts >= maxFailedAttempts {
			return connects, timeouts
		}
		if trimSpace(v[:comma]) == "504" {
			timeouts++
		} else {
			connects++
		}
		v = v[comma+1:]
	}
}

// trimSpace returns b without surrounding spaces, as a string the caller
// only compares (the conversion does not allocate then).
func trimSpace(b []byte) string {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return string(b)
}

// parseSeconds reads a non-negative decimal number of seconds ("0.001",
// "12", "1.5") to the nanosecond; at most 9 digits before the point.
func parseSeconds(b []byte) (time.Duration, bool) {
	point := indexByte(b, '.')
	whole, frac := b, []byte(nil)
	if point >= 0 {
		whole, frac = b[:point], b[point+1:]
		if len(frac) == 0 {
			return 0, false
		}
	}
	if len(whole) == 0 || len(whole) > 9 || !isDigits(whole) || (len(frac) > 0 && !isDigits(frac)) {
		return 0, false
	}
	var d time.Duration
	for _, c := range whole {
		d = d*10 + time.Duration(c-'0')
	}
	d *= time.Second
	unit := time.Second
	for _, c := range frac {
		unit /= 10
		if unit == 0 {
			break // beyond nanoseconds
		}
		d += time.Duration(c-'0') * unit
	}
	return d, true
}

// jscan is a minimal JSON scanner over one line: enough to find members
// of one object and skip the rest, without allocating.
type jscan struct {
	b []byte
	i int
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jscan) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string and returns its raw contents (between the quotes)
// and whether they hold escapes.
func (s *jscan) str() (raw []byte, escaped, ok bool) {
	if !s.eat('"') {
		return nil, false, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, true
		case c == '\\':
			escaped = true
			s.i += 2
		case c < 0x20:
			return nil, false, false
		default:
			s.i++
		}
	}
	return nil, false, false
}

// number reads a JSON number and returns its text.
func (s *jscan) number() ([]byte, bool) {
	start := s.i
	s.eat('-')
	digits := s.digits()
	if digits == 0 || (digits > 1 && s.b[start+boolInt(s.b[start] == '-')] == '0') {
		return nil, false
	}
	if s.eat('.') && s.digits() == 0 {
		return nil, false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if s.digits() == 0 {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

func (s *jscan) digits() int {
	n := 0
	for s.i < len(s.b) && isDigit(s.b[s.i]) {
		s.i++
		n++
	}
	return n
}

// numberOrString reads a number, or a string without escapes, and
// returns its text.
func (s *jscan) numberOrString() ([]byte, bool) {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		v, escaped, ok := s.str()
		return v, ok && !escaped
	}
	return s.number()
}

// maxDepth bounds the nesting skipValue follows, so a hostile line cannot
// exhaust the stack.
const maxDepth = 32

// skipValue skips one value of any type.
func (s *jscan) skipValue(depth int) bool {
	if depth > maxDepth || s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		s.i++
		s.ws()
		if s.eat(closing) {
			return true
		}
		for {
			s.ws()
			if c == '{' {
				if _, _, ok := s.str(); !ok {
					return false
				}
				s.ws()
				if !s.eat(':') {
					return false
				}
				s.ws()
			}
			if !s.skipValue(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(closing) {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == '-' || isDigit(c):
		_, ok := s.number()
		return ok
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return true
			}
		}
		return false
	}
}

// unescapeJSON decodes the escapes of a JSON string's raw contents into
// dst, which must have room (the receiver passes a buffer as long as the
// line: decoding never grows a string).
func unescapeJSON(raw, dst []byte) ([]byte, bool) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case '"', '\\', '/':
			dst = append(dst, raw[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if i+4 >= len(raw) {
				return nil, false
			}
			var r rune
			for _, h := range raw[i+1 : i+5] {
				r <<= 4
				switch {
				case isDigit(h):
					r |= rune(h - '0')
				case h >= 'a' && h <= 'f':
					r |= rune(h-'a') + 10
				case h >= 'A' && h <= 'F':
					r |= rune(h-'A') + 10
				default:
					return nil, false
				}
			}
			i += 4
			// A surrogate half on its own becomes U+FFFD, as in
			// encoding/json; NGINX only escapes control bytes.
			dst = utf8.AppendRune(dst, r)
		default:
			return nil, false
		}
	}
	return dst, true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
