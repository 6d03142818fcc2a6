package accesslog

import "bytes"

// envelope is what the syslog framing around one message told us.
type envelope struct {
	// severity is the PRI's severity (0 emerg .. 7 debug), or -1 when the
	// line had no <PRI>.
	severity int
	// msg is the message text: the line without PRI, timestamp, host name
	// and tag. It aliases the line.
	msg []byte
}

// splitEnvelope finds the message inside one syslog line. It accepts
// RFC 5424 (<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG), RFC 3164
// (<PRI>Mmm dd hh:mm:ss [HOST] TAG: MSG), HAProxy's shorter formats (short,
// priority, timed, iso: a PRI and/or an ISO 8601 timestamp before the
// message) and a bare message (HAProxy's raw format). Every part of the
// envelope is optional except that a 5424 header must be complete, so the
// only failure is a broken PRI or a truncated 5424 header. It never
// allocates and never reads outside line.
func splitEnvelope(line []byte) (envelope, bool) {
	env := envelope{severity: -1}
	rest := line
	if len(rest) > 0 && rest[0] == '<' {
		pri, n := parsePRI(rest)
		if n == 0 {
			return env, false
		}
		env.severity = pri & 7
		rest = rest[n:]
		// RFC 5424: the PRI is followed by a version number and a space.
		if len(rest) >= 2 && rest[0] >= '1' && rest[0] <= '9' && rest[1] == ' ' {
			msg, ok := split5424(rest[2:])
			env.msg = msg
			return env, ok
		}
	}
	rest = skipTimestamp(rest)
	env.msg = skipHostAndTag(rest)
	return env, true
}

// parsePRI reads "<N>" with 1 to 3 digits and N ≤ 191 (facility 23,
// severity 7), returning N and the bytes consumed (0: not a PRI).
func parsePRI(b []byte) (int, int) {
	n := 0
	i := 1
	for ; i < len(b) && i <= 4 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int(b[i]-'0')
	}
	if i == 1 || i > 4 || i >= len(b) || b[i] != '>' || n > 191 {
		return 0, 0
	}
	return n, i + 1
}

// split5424 skips TIMESTAMP HOSTNAME APP-NAME PROCID MSGID (each a token or
// "-") and the structured data, and returns the message (possibly empty,
// its UTF-8 byte-order mark removed).
func split5424(b []byte) ([]byte, bool) {
	for range 5 {
		sp := indexByte(b, ' ')
		if sp <= 0 {
			return nil, false
		}
		b = b[sp+1:]
	}
	// STRUCTURED-DATA: "-" or one or more [ID param="value"...] elements,
	// where a value may hold \] and \" escapes.
	switch {
	case len(b) > 0 && b[0] == '-':
		b = b[1:]
	case len(b) > 0 && b[0] == '[':
		for len(b) > 0 && b[0] == '[' {
			end := sdElementEnd(b)
			if end < 0 {
				return nil, false
			}
			b = b[end+1:]
		}
	default:
		return nil, false
	}
	if len(b) == 0 {
		return b, true
	}
	if b[0] != ' ' {
		return nil, false
	}
	b = b[1:]
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		b = b[3:]
	}
	return b, true
}

// sdElementEnd returns the index of the ']' closing the structured-data
// element that starts at b[0], or -1.
func sdElementEnd(b []byte) int {
	inQuote := false
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case inQuote && c == '\\':
			i++ // an escaped ", \ or ]
		case c == '"':
			inQuote = !inQuote
		case c == ']' && !inQuote:
			return i
		}
	}
	return -1
}

// skipTimestamp removes an RFC 3164 timestamp ("Dec  2 14:25:00 ") or an
// ISO 8601 one ("2026-12-02T14:25:51.455582+00:00 ") from the start of b.
func skipTimestamp(b []byte) []byte {
	if is3164Time(b) {
		return b[16:]
	}
	if len(b) >= 11 && isDigits(b[:4]) && b[4] == '-' && b[7] == '-' && b[10] == 'T' {
		if sp := indexByte(b, ' '); sp > 0 {
			return b[sp+1:]
		}
	}
	return b
}

// is3164Time reports whether b starts with "Mmm dd hh:mm:ss " (the day
// padded with a space).
func is3164Time(b []byte) bool {
	if len(b) < 16 {
		return false
	}
	return isUpper(b[0]) && isLower(b[1]) && isLower(b[2]) && b[3] == ' ' &&
		(b[4] == ' ' || isDigit(b[4])) && isDigit(b[5]) && b[6] == ' ' &&
		isDigit(b[7]) && isDigit(b[8]) && b[9] == ':' &&
		isDigit(b[10]) && isDigit(b[11]) && b[12] == ':' &&
		isDigit(b[13]) && isDigit(b[14]) && b[15] == ' '
}

// skipHostAndTag removes "TAG: " or "HOST TAG: " (a tag being a word
// ending in ':' such as "haproxy[123]:" or "nginx:"). A line with neither,
// like HAProxy's raw format, is returned whole: neither an access line
// ("127.0.0.1:5000 [...") nor a JSON object has a tag-shaped first or
// second word.
func skipHostAndTag(b []byte) []byte {
	first := indexByte(b, ' ')
	if first < 0 {
		return b
	}
	if isTag(b[:first]) {
		return b[first+1:]
	}
	rest := b[first+1:]
	second := indexByte(rest, ' ')
	if second >= 0 && isTag(rest[:second]) {
		return rest[second+1:]
	}
	return b
}

// isTag reports whether w looks like a syslog tag: a program name with an
// optional [pid], then ':'.
func isTag(w []byte) bool {
	if len(w) < 2 || w[len(w)-1] != ':' {
		return false
	}
	for _, c := range w[:len(w)-1] {
		if !(isDigit(c) || isUpper(c) || isLower(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }

func isDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }
