package proxy

import (
	"net"
	"time"
)

// idleTimer enforces an idle timeout on one direction of a connection: an
// operation fails only after idle has passed without any progress, however
// long the transfer as a whole. Setting a deadline before every read or
// write would cost a timer update per operation, so the deadline is moved
// only when less than half the idle time is left; a deadline that fires
// while the last progress is more recent than idle is moved to last+idle
// and the operation tried again, so the limit is exact, not "between half
// and all of idle".
//
// One goroutine uses an idleTimer at a time (a connection's reader, or its
// writer).
type idleTimer struct {
	idle int64 // ns
	set  int64 // the deadline last set, unix ns
	last int64 // the last progress, unix ns
	// strict sets the deadline before every operation instead: for a TLS
	// connection, whose writes cannot be retried after a timeout.
	strict bool
}

func nowNano() int64 { return time.Now().UnixNano() }

// start records progress now: the silence counts from here.
func (t *idleTimer) start(now int64) { t.last = now }

// arm makes sure a deadline at least idle/2 away is set before an
// operation.
func (t *idleTimer) arm(now int64, set func(time.Time) error) {
	if t.strict || t.set-now < t.idle/2 {
		t.set = now + t.idle
		_ = set(time.Unix(0, t.set))
	}
}

// extend is called after an operation timed out without progress; it
// reports whether the silence is in fact shorter than idle, having moved
// the deadline to last+idle, so the operation should be tried again.
func (t *idleTimer) extend(now int64, set func(time.Time) error) bool {
	if now-t.last >= t.idle {
		return false
	}
	t.set = t.last + t.idle
	_ = set(time.Unix(0, t.set))
	return true
}

// idleRead reads from c under t.
func idleRead(c net.Conn, t *idleTimer, p []byte) (int, error) {
	for {
		t.arm(nowNano(), c.SetReadDeadline)
		n, err := c.Read(p)
		if n > 0 {
			t.last = nowNano()
			return n, err
		}
		if err != nil && isTimeout(err) && t.extend(nowNano(), c.SetReadDeadline) {
			continue
		}
		return n, err
	}
}

// maxWriteChunk bounds one write so that progress within a large write is
// seen (a blocked write of megabytes would otherwise count as one silence).
const maxWriteChunk = 64 << 10

// idleWrite writes p to c under t; each call is progress when it starts.
func idleWrite(c net.Conn, t *idleTimer, p []byte) (int, error) {
	t.start(nowNano())
	written := 0
	for written < len(p) {
		chunk := p[written:min(len(p), written+maxWriteChunk)]
		t.arm(nowNano(), c.SetWriteDeadline)
		n, err := c.Write(chunk)
		written += n
		if n > 0 {
			t.last = nowNano()
		}
		if err != nil {
			if !t.strict && isTimeout(err) && (n > 0 || t.extend(nowNano(), c.SetWriteDeadline)) {
				continue
			}
			return written, err
		}
	}
	return written, nil
}
