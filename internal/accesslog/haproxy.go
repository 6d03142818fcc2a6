package accesslog

import "time"

// parseHAProxy reads one line of HAProxy's HTTP log format (option
// httplog; HAProxy 2.6 documents it as
//
//	%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r
//
// where %hr and %hs appear only with captures). It needs every field up to
// the queues (%sq/%bq); the captures and the request after them may be
// missing or cut, since HAProxy truncates long lines (log ... len) at the
// end and a long URL must not lose the request. A line cut before the
// queues is malformed: its status could be cut too.
//
// The older timer names (Tq/Tw/Tc/Tr/Tt) have the same places, and
// option logasap's "+" before Ta, %B and %rc is accepted. A request whose
// client left before any answer (status -1, or termination state CQ, CC
// or CH) is recorded as 499. A tcplog line (three timers, no status) and
// a connection error line ("fe/bind: SSL handshake failure") are ignored:
// they carry no HTTP request.
func parseHAProxy(m []byte) (record, verdict) {
	var r record
	f := fields{b: m}
	client, date := f.next(), f.next()
	if len(client) == 0 || len(date) < 2 || date[0] != '[' || date[len(date)-1] != ']' {
		return r, verdictForeign
	}
	fe := f.next()
	if len(fe) == 0 {
		return r, verdictMalformed
	}
	if fe[len(fe)-1] == ':' {
		// error-log-format: "%ci:%cp [%tr] %ft/%bn: %msg"
		return r, verdictIgnored
	}
	bs := f.next()
	slash := indexByte(bs, '/')
	if slash <= 0 || slash == len(bs)-1 {
		return r, verdictMalformed
	}
	r.backend = bs[:slash]

	var timers [5]int64
	n, ok := splitInts(f.next(), timers[:])
	if !ok {
		return r, verdictMalformed
	}
	switch n {
	case 3: // tcplog: %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq
		if !isCount(f.next()) || len(f.next()) == 0 || !tail(&f) {
			return r, verdictMalformed
		}
		return r, verdictIgnored
	case 5:
	default:
		return r, verdictMalformed
	}
	switch ta, tr := timers[4], timers[3]; {
	case ta >= 0:
		r.latency = time.Duration(ta) * time.Millisecond
	case tr >= 0:
		r.latency = time.Duration(tr) * time.Millisecond
	}

	st := f.next()
	switch {
	case len(st) == 2 && st[0] == '-' && st[1] == '1':
		// No answer: the client left (or was cut) first. HAProxy logs
		// its own answers (503, 504, 502) with their code.
		r.code = statusClientClosed
	case len(st) == 3 && isDigits(st):
		r.code = int(st[0]-'0')*100 + int(st[1]-'0')*10 + int(st[2]-'0')
		if r.code < 100 || r.code > 599 {
			return r, verdictMalformed
		}
	default:
		return r, verdictMalformed
	}
	if !isCount(f.next()) { // %B
		return r, verdictMalformed
	}
	if len(f.next()) == 0 || len(f.next()) == 0 { // %CC %CS
		return r, verdictMalformed
	}
	tsc := f.next()
	if len(tsc) == 0 {
		return r, verdictMalformed
	}
	if len(tsc) >= 2 && tsc[0] == 'C' && (tsc[1] == 'Q' || tsc[1] == 'C' || tsc[1] == 'H') {
		// The client left while the request waited for a server (in
		// the queue, connecting, or for the response headers); with
		// option abortonclose HAProxy logs that as a 400. No answer came
		// from the version: record it as coalmine's proxy and NGINX do.
		r.code = statusClientClosed
	}
	var conns [5]int64
	if n, ok := splitInts(f.next(), conns[:]); !ok || n != 5 || conns[4] < 0 {
		return r, verdictMalformed
	}
	r.failedConnects = int(min(conns[4], maxFailedAttempts))
	var queues [2]int64
	if n, ok := splitInts(f.next(), queues[:]); !ok || n != 2 {
		return r, verdictMalformed
	}
	return r, verdictRequest
}

// tail checks the last two fields every HAProxy format shares,
// %ac/%fc/%bc/%sc/%rc and %sq/%bq.
func tail(f *fields) bool {
	var conns [5]int64
	var queues [2]int64
	n1, ok1 := splitInts(f.next(), conns[:])
	n2, ok2 := splitInts(f.next(), queues[:])
	return ok1 && ok2 && n1 == 5 && n2 == 2
}

// fields walks the space-separated words of a line without allocating.
type fields struct{ b []byte }

// next returns the next word, or nil at the end.
func (f *fields) next() []byte {
	if len(f.b) == 0 {
		return nil
	}
	sp := indexByte(f.b, ' ')
	if sp < 0 {
		w := f.b
		f.b = nil
		return w
	}
	w := f.b[:sp]
	f.b = f.b[sp+1:]
	return w
}

// splitInts parses up to len(dst) '/'-separated integers, each "-1" or
// digits with an optional '+' (option logasap, redispatch), and returns
// how many there were.
func splitInts(b []byte, dst []int64) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for {
		end := indexByte(b, '/')
		word := b
		if end >= 0 {
			word = b[:end]
		}
		if n == len(dst) {
			return n, false
		}
		v, ok := parseTimerValue(word)
		if !ok {
			return n, false
		}
		dst[n] = v
		n++
		if end < 0 {
			return n, true
		}
		b = b[end+1:]
	}
}

// parseTimerValue reads "-1", or up to 10 digits after an optional '+'
// (so a millisecond value always fits a time.Duration).
func parseTimerValue(b []byte) (int64, bool) {
	if len(b) == 2 && b[0] == '-' && b[1] == '1' {
		return -1, true
	}
	if len(b) > 0 && b[0] == '+' {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// isCount reports whether b is a byte count (digits, maybe after '+').
func isCount(b []byte) bool {
	if len(b) > 0 && b[0] == '+' {
		b = b[1:]
	}
	return len(b) > 0 && len(b) <= 20 && isDigits(b)
}
