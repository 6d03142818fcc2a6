package command

import (
	"encoding/json"
	"strconv"
	"strings"
)

// ParseResult turns a command's stdout into the `result` of conditions:
// the JSON value when the trimmed output is one JSON document (numbers
// are float64, as from the web provider), else a number when it parses as
// one (NaN, Inf and 1e3 included), else the trimmed text as a string.
// Empty output is nil: a command that prints nothing gives conditions no
// value, so a condition that needs one finds no data (see analysis).
func ParseResult(stdout []byte) any {
	s := strings.TrimSpace(strings.ToValidUTF8(string(stdout), "\uFFFD"))
	if s == "" {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		return v
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return s
}

// capped keeps the first max bytes written and notes whether more came.
// It never fails a write, so a command that prints too much is not killed
// by a broken pipe before its exit status is known.
type capped struct {
	max      int
	buf      []byte
	overflow bool
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	room := c.max - len(c.buf)
	if len(p) > room {
		c.overflow = true
		p = p[:max(room, 0)]
	}
	c.buf = append(c.buf, p...)
	return n, nil
}

// tail keeps the last max bytes written.
type tail struct {
	max       int
	buf       []byte
	truncated bool
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(t.buf)+n > t.max {
		t.truncated = true
		if n >= t.max {
			t.buf = append(t.buf[:0], p[n-t.max:]...)
			return n, nil
		}
		t.buf = append(t.buf[:0], t.buf[len(t.buf)+n-t.max:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String is the kept text, trimmed, led by "…" when the start was cut.
func (t *tail) String() string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(t.buf), ""))
	if t.truncated && s != "" {
		s = "…" + s
	}
	return s
}

// tailString is the last max bytes of b as trimmed text.
func tailString(b []byte, max int) string {
	t := tail{max: max}
	t.Write(b) //nolint:errcheck // never fails
	return t.String()
}
