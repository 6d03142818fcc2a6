package cli

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// ANSI sequences of the in-place redraw.
const (
	ansiClearLine = "\x1b[2K" // erase the whole line
	ansiClearDown = "\x1b[J"  // erase from the cursor to the end of the screen
)

// ansiUp moves the cursor up n lines, to the first column.
func ansiUp(n int) string { return fmt.Sprintf("\x1b[%dA\r", n) }

// liveView draws successive frames of a text view. On a terminal each
// frame replaces the previous one in place; elsewhere (a pipe, a file, a
// CI log) frames follow each other separated by a blank line. A frame
// equal to the last one is not drawn again. It is not safe for concurrent
// use.
type liveView struct {
	w     io.Writer
	tty   bool
	width int // terminal columns; 0 = unknown (lines are not cut)
	drawn bool
	last  string
	lines int // lines of the last frame on the terminal
}

func (l *liveView) draw(frame string) error {
	if l.drawn && frame == l.last {
		return nil
	}
	var b strings.Builder
	switch {
	case l.tty:
		if l.lines > 0 {
			b.WriteString(ansiUp(l.lines))
		}
		for line := range strings.Lines(frame) {
			b.WriteString(ansiClearLine)
			b.WriteString(fitLine(line, l.width))
		}
		b.WriteString(ansiClearDown)
		l.lines = strings.Count(frame, "\n")
	case l.drawn:
		b.WriteString("\n")
		b.WriteString(frame)
	default:
		b.WriteString(frame)
	}
	l.drawn, l.last = true, frame
	_, err := io.WriteString(l.w, b.String())
	return err
}

// reconnects collects the reasons a watch reconnects, from the client's
// goroutine, for the command's own goroutine to show; it keeps the latest
// when the command is slower.
type reconnects chan string

func newReconnects() reconnects { return make(reconnects, 1) }

func (r reconnects) onRetry(err error, wait time.Duration) {
	msg := fmt.Sprintf("lost the stream (%s); reconnecting in %s", oneLine(err.Error()), roundDurationMin(wait))
	for {
		select {
		case r <- msg:
			return
		default:
		}
		select { // full: replace the older message
		case <-r:
		default:
		}
	}
}

// roundDurationMin formats short waits as they are: 250ms, 2s.
func roundDurationMin(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return roundDuration(d)
}

// fitLine cuts a line (with its newline) to fewer than width columns, so it
// never wraps: a wrapped line would make the cursor-up count wrong. Every
// character the views print is one column wide.
func fitLine(line string, width int) string {
	if width <= 1 {
		return line
	}
	body, nl := strings.CutSuffix(line, "\n")
	if utf8.RuneCountInString(body) < width {
		return line
	}
	r := []rune(body)
	out := string(r[:width-2]) + "…"
	if nl {
		out += "\n"
	}
	return out
}
