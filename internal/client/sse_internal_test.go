package client

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// readAll parses a whole stream, one byte per read so that every split of
// a line ending across reads is exercised.
func readAll(t *testing.T, stream string, maxEvent int) ([]sseEvent, *sseReader, error) {
	t.Helper()
	sr := newSSEReader(iotest.OneByteReader(strings.NewReader(stream)), maxEvent, nil)
	var got []sseEvent
	for {
		ev, err := sr.Next()
		if err != nil {
			return got, sr, err
		}
		got = append(got, ev)
	}
}

func TestSSEParse(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []sseEvent
	}{
		{"status and event", "event: status\ndata: {}\n\nid: 7\nevent: event\ndata: {\"seq\":7}\n\n",
			[]sseEvent{{"status", "{}", ""}, {"event", `{"seq":7}`, "7"}}},
		{"multi-line data joined with LF", "data: a\ndata: b\ndata:\ndata: c\n\n",
			[]sseEvent{{"message", "a\nb\n\nc", ""}}},
		{"comments and keep-alives are skipped", ": keep-alive\n\n:\n: x\nevent: status\n: between fields\ndata: 1\n\n",
			[]sseEvent{{"status", "1", ""}}},
		{"one space after the colon is dropped, no more", "data:x\n\ndata:  y\n\n",
			[]sseEvent{{"message", "x", ""}, {"message", " y", ""}}},
		{"colons in the value stay", "data: a: b:c\n\n",
			[]sseEvent{{"message", "a: b:c", ""}}},
		{"CRLF line endings", "event: status\r\ndata: 1\r\n\r\n",
			[]sseEvent{{"status", "1", ""}}},
		{"lone CR line endings", "event: status\rdata: 1\r\rdata: 2\r\r",
			[]sseEvent{{"status", "1", ""}, {"message", "2", ""}}},
		{"mixed line endings", "data: 1\r\n\rdata: 2\n\r\n",
			[]sseEvent{{"message", "1", ""}, {"message", "2", ""}}},
		{"the id carries over to later events", "id: 5\nevent: event\ndata: a\n\nevent: status\ndata: b\n\nid\ndata: c\n\n",
			[]sseEvent{{"event", "a", "5"}, {"status", "b", "5"}, {"message", "c", ""}}},
		{"an id with NUL is ignored", "id: 3\ndata: a\n\nid: 4\x005\ndata: b\n\n",
			[]sseEvent{{"message", "a", "3"}, {"message", "b", "3"}}},
		{"a field without colon has an empty value", "data\n\n",
			[]sseEvent{{"message", "", ""}}},
		{"an event without data is not dispatched and its type is forgotten", "event: status\n\ndata: x\n\n",
			[]sseEvent{{"message", "x", ""}}},
		{"unknown fields are ignored", "foo: bar\nevent: status\ndata: x\n\n",
			[]sseEvent{{"status", "x", ""}}},
		{"a byte order mark starts the stream", "\xEF\xBB\xBFdata: x\n\n",
			[]sseEvent{{"message", "x", ""}}},
		{"an unterminated last event is discarded", "data: a\n\ndata: b\n",
			[]sseEvent{{"message", "a", ""}}},
		{"an unterminated last line is discarded", "data: a\n\ndata: b",
			[]sseEvent{{"message", "a", ""}}},
		{"blank lines alone dispatch nothing", "\n\n\r\n\r\r",
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := readAll(t, tt.stream, 1<<20)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("err = %v, want io.EOF", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events = %q\nwant      %q", got, tt.want)
			}
		})
	}
}

func TestSSERetry(t *testing.T) {
	for stream, want := range map[string]time.Duration{
		"retry: 1500\ndata: x\n\n": 1500 * time.Millisecond,
		"retry: 1.5\ndata: x\n\n":  0,
		"retry: -1\ndata: x\n\n":   0,
		"retry:\ndata: x\n\n":      0,
	} {
		got, sr, _ := readAll(t, stream, 1<<20)
		if len(got) != 1 || sr.retry != want {
			t.Errorf("%q: %d events, retry %v, want 1 event and retry %v", stream, len(got), sr.retry, want)
		}
	}
}

func TestSSETooLarge(t *testing.T) {
	for _, stream := range []string{
		"data: " + strings.Repeat("x", 100) + "\n\n",              // one long line
		strings.Repeat("data: xxxxxxxxxxxxxxxxxxxx\n", 10) + "\n", // many short ones
	} {
		_, _, err := readAll(t, stream, 64)
		if !errors.Is(err, errEventTooLarge) {
			t.Errorf("err = %v, want errEventTooLarge", err)
		}
	}
}

// TestSSEDispatchesOnCRWithoutWaiting checks that an event whose blank line
// ends with CR is delivered at once, without waiting for the next byte
// (which could be a keep-alive many seconds later) to see whether LF
// follows.
func TestSSEDispatchesOnCRWithoutWaiting(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	var lines int
	sr := newSSEReader(pr, 1<<20, func() { lines++ })
	go func() { _, _ = pw.Write([]byte("data: x\r\r")) }()
	done := make(chan sseEvent)
	go func() {
		ev, _ := sr.Next()
		done <- ev
	}()
	select {
	case ev := <-done:
		if ev.Data != "x" {
			t.Errorf("event = %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the event was not dispatched before more bytes came")
	}
	if lines != 2 {
		t.Errorf("onLine called %d times, want 2", lines)
	}
	// The LF of a CRLF split across writes is not a blank line.
	go func() {
		_, _ = pw.Write([]byte("\ndata: y\r"))
		_, _ = pw.Write([]byte("\n\r\n"))
	}()
	ev, err := sr.Next()
	if err != nil || ev.Data != "y" {
		t.Errorf("next event = %+v, %v; want data y", ev, err)
	}
}
