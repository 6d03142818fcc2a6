package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// sseEvent is one event of a Server-Sent Events stream, as the
// WHATWG HTML standard ("Interpreting an event stream") dispatches it.
type sseEvent struct {
	// Type is the "event" field, "message" when the event had none.
	Type string
	// Data is the "data" fields joined by "\n".
	Data string
	// ID is the last event ID at dispatch time: it carries over from
	// earlier events until an "id" field changes it.
	ID string
}

// sseReader parses a Server-Sent Events stream. It accepts every line
// ending the standard allows (CRLF, LF and a lone CR), skips a leading
// byte order mark and comments (lines starting with ':'), joins multi-line
// data, and remembers the last event ID and the server's retry hint. It is
// not safe for concurrent use.
type sseReader struct {
	r *bufio.Reader
	// maxEvent caps one line and the data of one event, so a broken server
	// cannot make the client buffer without end.
	maxEvent int
	// onLine is called for every line read, comments included: anything
	// from the server proves the connection alive.
	onLine func()

	lastID string
	// retry is the reconnection time the server asked for with a "retry"
	// field; 0 when it did not.
	retry   time.Duration
	started bool
	afterCR bool // the last line ended with CR; a LF right after it belongs to it
	line    []byte
}

func newSSEReader(r io.Reader, maxEvent int, onLine func()) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 32<<10), maxEvent: maxEvent, onLine: onLine}
}

// errEventTooLarge ends a stream whose event exceeds maxEvent.
var errEventTooLarge = errors.New("the server sent an event larger than the client accepts")

// Next returns the next event. At the end of the stream it returns io.EOF
// (an event not terminated by a blank line is discarded, as the standard
// says) or the read error.
func (s *sseReader) Next() (sseEvent, error) {
	var (
		typ     string
		data    bytes.Buffer
		hasData bool
	)
	for {
		line, err := s.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if s.onLine != nil {
			s.onLine()
		}
		if len(line) == 0 { // a blank line dispatches the event
			if !hasData {
				typ = ""
				continue
			}
			if typ == "" {
				typ = "message"
			}
			d := data.Bytes()
			d = d[:len(d)-1] // drop the "\n" after the last data line
			return sseEvent{Type: typ, Data: string(d), ID: s.lastID}, nil
		}
		if line[0] == ':' {
			continue // a comment, such as ": keep-alive"
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			typ = string(value)
		case "data":
			if data.Len()+len(value)+1 > s.maxEvent {
				return sseEvent{}, errEventTooLarge
			}
			data.Write(value)
			data.WriteByte('\n')
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				s.lastID = string(value)
			}
		case "retry":
			if ms, err := strconv.ParseUint(string(value), 10, 32); err == nil {
				s.retry = time.Duration(ms) * time.Millisecond
			}
		}
		// Other fields are ignored, as the standard says.
	}
}

// readLine returns the next line without its ending. The slice is valid
// until the next call.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(s.line) > 0 {
				// A last line without an ending cannot complete an event.
				return nil, io.EOF
			}
			return nil, err
		}
		afterCR := s.afterCR
		s.afterCR = false
		switch b {
		case '\n':
			if afterCR && len(s.line) == 0 {
				continue // the LF of a CRLF whose CR ended the previous line
			}
			return s.finishLine(), nil
		case '\r':
			// Not peeking at the next byte: on a live stream it may come
			// only with the next keep-alive, and the event must not wait.
			s.afterCR = true
			return s.finishLine(), nil
		}
		if len(s.line) >= s.maxEvent {
			return nil, errEventTooLarge
		}
		s.line = append(s.line, b)
	}
}

// finishLine strips a byte order mark from the first line of the stream.
func (s *sseReader) finishLine() []byte {
	if !s.started {
		s.started = true
		return bytes.TrimPrefix(s.line, []byte("\xEF\xBB\xBF"))
	}
	return s.line
}

// String describes an event for error messages.
func (e sseEvent) String() string {
	return fmt.Sprintf("event %q (id %q, %d bytes of data)", e.Type, e.ID, len(e.Data))
}
