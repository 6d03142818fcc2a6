package api

import (
	"sync"
	"time"
)

// logThrottle lets one log line through per interval and counts the ones it
// holds back, so the next line can say how many there were. Anyone can send
// bad requests; a line for each would let them fill the log and its disk.
type logThrottle struct {
	interval time.Duration

	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether a line may be logged at now and, if so, how many
// were held back since the last one.
func (t *logThrottle) allow(now time.Time) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Before(t.next) {
		t.suppressed++
		return false, 0
	}
	n := t.suppressed
	t.suppressed, t.next = 0, now.Add(t.interval)
	return true, n
}
