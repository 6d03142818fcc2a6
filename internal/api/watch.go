package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
)

// DefaultKeepAlive is the interval of keep-alive comments on a watch stream
// when Config.KeepAlive is zero.
const DefaultKeepAlive = 15 * time.Second

// watch streams a rollout as Server-Sent Events (GET
// /api/v1/rollouts/{name}/watch):
//
//	event: status            the View, first and after every change
//	data: {...}
//
//	id: 42                   an event; its id is the event's seq
//	event: event
//	data: {...}
//
//	: keep-alive             a comment every Config.KeepAlive
//
// The stream starts after the seq given by the query parameter after or,
// without one, by the Last-Event-ID header an EventSource sends when it
// reconnects. It ends when the client goes away or the service closes the
// watch (a subscriber that fell behind is dropped; it reconnects with
// Last-Event-ID and misses nothing). An unknown rollout is a JSON 404
// before the stream starts.
func (s *server) watch(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	after, err := watchStart(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The service's watch lives exactly as long as this handler, whatever
	// ends it.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	updates, err := s.cmds.Watch(ctx, name, after)
	if err != nil {
		s.writeError(w, r, describe(name, err))
		return
	}

	// A stream outlives any server-wide read or write timeout; the client's
	// going away ends it instead. Errors only mean the writer has no
	// deadlines to clear (httptest.ResponseRecorder, say).
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // reverse proxies: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if err := rc.Flush(); err != nil {
		s.log.Error("admin API cannot stream: the response writer does not flush", "path", r.URL.Path, "err", err)
		return
	}

	keepAlive := time.NewTicker(s.keepAlive)
	defer keepAlive.Stop()
	var buf bytes.Buffer
	for {
		buf.Reset()
		select {
		case u, ok := <-updates:
			if !ok {
				return
			}
			if err := writeUpdate(&buf, u); err != nil {
				s.log.Error("admin API skipped a watch update", "rollout", name, "err", err)
				continue
			}
		case <-keepAlive.C:
			buf.WriteString(": keep-alive\n\n")
		case <-ctx.Done():
			return
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return // the client went away
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// writeUpdate appends one SSE message. encoding/json escapes every line
// break inside strings, so data is always one line.
func writeUpdate(buf *bytes.Buffer, u model.WatchUpdate) error {
	switch {
	case u.View != nil:
		data, err := json.Marshal(u.View)
		if err != nil {
			return err
		}
		fmt.Fprintf(buf, "event: status\ndata: %s\n\n", data)
	case u.Event != nil:
		data, err := json.Marshal(u.Event)
		if err != nil {
			return err
		}
		fmt.Fprintf(buf, "id: %d\nevent: event\ndata: %s\n\n", u.Event.Seq, data)
	default:
		return errors.New("watch update has neither a view nor an event")
	}
	return nil
}

// watchStart is the seq the stream starts after: the query parameter after
// wins over the Last-Event-ID header.
func watchStart(r *http.Request) (uint64, error) {
	if _, ok := r.URL.Query()["after"]; ok {
		return uintParam(r.URL.Query(), "after", 0)
	}
	id := r.Header.Get("Last-Event-ID")
	if id == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return 0, &httpError{status: http.StatusBadRequest, field: "Last-Event-ID",
			msg: fmt.Sprintf("header Last-Event-ID must be an event seq (a whole number), not %q", id)}
	}
	return n, nil
}
