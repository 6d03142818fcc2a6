package proxy_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// HTTP/2 abuse against an h2c listener, with raw frames: each attack ends
// with the attacker's connection refused or closed while the listener goes
// on serving others.

type h2Raw struct {
	t  *testing.T
	c  net.Conn
	fr *http2.Framer
}

func dialH2Raw(t *testing.T, addr string) *h2Raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A safety net against a hung test, never an assertion on time.
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return &h2Raw{t: t, c: c, fr: fr}
}

func headerBlock(fields ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return buf.Bytes()
}

func getRequest(extra ...string) []byte {
	return headerBlock(append([]string{":method", "GET", ":scheme", "http", ":authority", "shop", ":path", "/"}, extra...)...)
}

// readUntil reads frames until match holds for one (true) or the
// connection ends (false), acknowledging SETTINGS on the way.
func (h *h2Raw) readUntil(match func(http2.Frame) bool) bool {
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return false
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			_ = h.fr.WriteSettingsAck()
			continue
		}
		if match(f) {
			return true
		}
	}
}

func abuseRig(t *testing.T, h http.HandlerFunc) (*rig, *backend) {
	t.Helper()
	be := newBackend(t, stableVersion, h)
	r := rolloutSpec(t, []string{be.url}, nil, func(s *spec.RolloutSpec) {
		s.Protocols = []string{spec.ProtocolH1, spec.ProtocolH2C}
	})
	return startProxy(t, r, tableConfig(r, 0)), be
}

// stillServes shows the listener serving a well-behaved HTTP/2 client and
// an HTTP/1.1 one.
func stillServes(t *testing.T, g *rig) {
	t.Helper()
	for _, cl := range []*http.Client{h2Client(false), {Timeout: 5 * time.Second}} {
		resp, err := cl.Get(g.url + "/after")
		if err != nil {
			t.Fatalf("the listener no longer serves: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after the attack: %s", resp.Status)
		}
	}
}

// Rapid reset (CVE-2023-44487): streams opened and cancelled at once, by
// the thousand. The backend sees a bounded share of them and the listener
// keeps serving.
func TestHTTP2RapidResetLeavesTheListenerUp(t *testing.T) {
	g, be := abuseRig(t, nil)
	h := dialH2Raw(t, g.addr)
	block := getRequest()
	const streams = 5000
	for i := range streams {
		id := uint32(2*i + 1)
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true, EndStream: true}); err != nil {
			break // the server gave up on us: fine
		}
		if err := h.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
	}
	stillServes(t, g)
	if n := be.hits.Load(); n >= streams {
		t.Errorf("the backend got %d of %d reset requests", n, streams)
	}
	t.Logf("the backend saw %d of %d rapidly reset streams", be.hits.Load(), streams)
}

// CONTINUATION flood: a header block that never ends. The server stops
// reading it at the header limit and closes the connection.
func TestHTTP2ContinuationFloodIsCutOff(t *testing.T) {
	g, _ := abuseRig(t, nil)
	h := dialH2Raw(t, g.addr)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: getRequest(), EndHeaders: false}); err != nil {
		t.Fatal(err)
	}
	junk := headerBlock("x-junk", strings.Repeat("a", 1000))
	// Only read here: the framer is not safe for two writers.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				return
			}
			if _, ok := f.(*http2.GoAwayFrame); ok {
				return
			}
		}
	}()
	sent := 0
	for range 100000 { // 100 MB of headers if nothing stopped it
		if err := h.fr.WriteContinuation(1, false, junk); err != nil {
			break
		}
		sent++
	}
	<-closed // GOAWAY or the connection closed: either way it ended
	if sent == 100000 {
		t.Errorf("the server read 100 MB of CONTINUATION frames")
	}
	t.Logf("the connection was cut after %d CONTINUATION frames of 1 KB", sent)
	stillServes(t, g)
}

// More concurrent streams than the limit: the extra ones are refused, the
// others are served.
func TestHTTP2TooManyStreamsAreRefused(t *testing.T) {
	release := make(chan struct{})
	g, _ := abuseRig(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	defer close(release)
	h := dialH2Raw(t, g.addr)
	block := headerBlock(":method", "GET", ":scheme", "http", ":authority", "shop", ":path", "/hold")
	const streams = 400
	for i := range streams {
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: block, EndHeaders: true, EndStream: true}); err != nil {
			t.Fatal(err)
		}
	}
	refused := h.readUntil(func(f http2.Frame) bool {
		if rst, ok := f.(*http2.RSTStreamFrame); ok && (rst.ErrCode == http2.ErrCodeRefusedStream || rst.ErrCode == http2.ErrCodeProtocol) {
			return true
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			return ga.ErrCode != http2.ErrCodeNo
		}
		return false
	})
	if !refused {
		t.Fatal("no stream over the limit was refused")
	}
	stillServes(t, g)
}

// A header list over clientLimits.maxHeaderBytes is answered 431 without
// reaching the upstream.
func TestHTTP2OversizedHeadersAre431(t *testing.T) {
	g, be := abuseRig(t, nil)
	h := dialH2Raw(t, g.addr)
	var fields []string
	for i := range 12 {
		fields = append(fields, "x-big-"+string(rune('a'+i)), strings.Repeat("b", 1000))
	}
	block := getRequest(fields...)
	// Split into frames of the default maximum size.
	first := true
	for len(block) > 0 {
		n := min(len(block), 16384)
		var err error
		if first {
			err = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:n], EndHeaders: n == len(block), EndStream: true})
			first = false
		} else {
			err = h.fr.WriteContinuation(1, n == len(block), block[:n])
		}
		if err != nil {
			t.Fatal(err)
		}
		block = block[n:]
	}
	var status string
	ok := h.readUntil(func(f http2.Frame) bool {
		if mh, ok := f.(*http2.MetaHeadersFrame); ok && mh.StreamID == 1 {
			status = mh.PseudoValue("status")
			return true
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == 1 {
			status = "reset " + rst.ErrCode.String()
			return true
		}
		return false
	})
	if !ok || status != "431" {
		t.Fatalf("oversized headers answered %q (frame seen: %v)", status, ok)
	}
	if be.hits.Load() != 0 {
		t.Errorf("the oversized request reached the upstream")
	}
	stillServes(t, g)
}
