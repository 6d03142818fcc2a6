package proxy_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/proxy"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// received is one request a recording backend got.
type received struct {
	method string
	path   string
	header http.Header
	sha    string
	n      int
}

// recorder is a backend handler that keeps every request's headers and the
// sha256 of its body, and answers with that sha256 and the body length.
type recorder struct {
	mu   sync.Mutex
	reqs []received
}

func (rec *recorder) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, received{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), sha: sha(body), n: len(body)})
	rec.mu.Unlock()
	w.Header().Set("X-Stable-Only", "yes")
	fmt.Fprintf(w, "%s %d", sha(body), len(body))
}

func (rec *recorder) all() []received {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]received(nil), rec.reqs...)
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

// mirrorRig runs a rollout at weight 0 whose mirror route copies POSTs to
// the canary; both backends record what they receive.
func mirrorRig(t *testing.T) (g *rig, stable, canary *recorder) {
	t.Helper()
	stable, canary = &recorder{}, &recorder{}
	sb := newBackend(t, stableVersion, stable.handle)
	cb := newBackend(t, canaryVersion, canary.handle)
	r := rolloutSpec(t, []string{sb.url}, []string{cb.url}, nil)
	cfg := tableConfig(r, 0)
	cfg.MirrorRoutes = []spec.MirrorRoute{{
		Name:  "m",
		Match: []spec.RequestMatch{{Method: &spec.StringMatch{Exact: ptr("POST")}}},
	}}
	return startProxy(t, r, cfg), stable, canary
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t testing.TB, c *http.Client, url string, body io.Reader, size int64) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := do(c, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (g *rig) mirrored(t testing.TB, code string) float64 {
	t.Helper()
	return g.metric(t, "coalmine_requests_total", map[string]string{
		"rollout": g.name, "role": "canary", "version": canaryVersion, "source": "mirror", "code": code,
	})
}

func (g *rig) mirrorDropped(t testing.TB, reason string) float64 {
	t.Helper()
	return g.metric(t, "coalmine_mirror_dropped_total", map[string]string{"rollout": g.name, "reason": reason})
}

func TestMirrorPostBody(t *testing.T) {
	g, stable, canary := mirrorRig(t)
	c := newClient(4)
	defer closeIdle(c)
	body := randomBytes(t, 100<<10)
	want := fmt.Sprintf("%s %d", sha(body), len(body))

	res := post(t, c, g.url+"/orders", bytes.NewReader(body), int64(len(body)))
	if res.status != http.StatusOK || res.body != want {
		t.Fatalf("client got %d %q, want stable's answer 200 %q", res.status, res.body, want)
	}
	if res.backend != stableVersion || res.version != stableVersion || res.header.Get("X-Stable-Only") != "yes" {
		t.Fatalf("client got headers %v, want stable's response unchanged", res.header)
	}
	got := stable.all()
	if len(got) != 1 || got[0].sha != sha(body) || got[0].n != len(body) {
		t.Fatalf("stable received %+v, want the %d-byte body once", got, len(body))
	}
	if v := got[0].header.Get(hdrMirror); v != "" {
		t.Fatalf("the primary request to stable carries %s: %q", hdrMirror, v)
	}

	eventually(t, 5*time.Second, "the canary receives the mirrored POST", func() bool { return canary.count() > 0 })
	m := canary.all()
	if len(m) != 1 {
		t.Fatalf("canary received %d requests, want the one mirror", len(m))
	}
	if m[0].method != http.MethodPost || m[0].path != "/orders" {
		t.Errorf("mirror is %s %s, want POST /orders", m[0].method, m[0].path)
	}
	if m[0].sha != sha(body) || m[0].n != len(body) {
		t.Errorf("mirror body has %d bytes with sha256 %s, want %d bytes with %s", m[0].n, m[0].sha, len(body), sha(body))
	}
	if v := m[0].header.Get(hdrMirror); v != "true" {
		t.Errorf("mirror has %s = %q, want true", hdrMirror, v)
	}
	if v := m[0].header.Get("Content-Type"); v != "application/octet-stream" {
		t.Errorf("mirror has Content-Type %q, want the original's", v)
	}

	eventually(t, 5*time.Second, "the mirror is recorded with source=mirror", func() bool { return g.mirrored(t, "200") == 1 })
	if s := g.versionStats(spec.RoleCanary, canaryVersion).Summary(0); s.Requests != 0 {
		t.Errorf("the canary's live summary counts %d requests; mirrors must stay out of it", s.Requests)
	}
	if s := g.versionStats(spec.RoleStable, stableVersion).Summary(0); s.Requests != 1 {
		t.Errorf("the stable live summary counts %d requests, want 1", s.Requests)
	}
	for _, reason := range []string{"body-too-large", "pool-full", "error"} {
		if n := g.mirrorDropped(t, reason); n != 0 {
			t.Errorf("mirror dropped with reason %s: %v, want 0", reason, n)
		}
	}
}

func TestMirrorSkipsLargeBody(t *testing.T) {
	g, stable, canary := mirrorRig(t)
	c := newClient(4)
	defer closeIdle(c)
	body := randomBytes(t, 10<<20)
	want := fmt.Sprintf("%s %d", sha(body), len(body))

	res := post(t, c, g.url+"/upload", bytes.NewReader(body), int64(len(body)))
	if res.status != http.StatusOK || res.body != want || res.backend != stableVersion {
		t.Fatalf("client got %d %q from %q, want stable's 200 %q", res.status, res.body, res.backend, want)
	}
	if got := stable.all(); len(got) != 1 || got[0].sha != sha(body) {
		t.Fatalf("stable received %+v, want the whole 10 MiB once", got)
	}
	if n := g.mirrorDropped(t, "body-too-large"); n != 1 {
		t.Fatalf("mirror drops with reason body-too-large = %v, want 1", n)
	}
	// The mirror was skipped before the primary request was sent; give a
	// wrongly queued mirror a short, bounded chance to show up.
	never(t, 300*time.Millisecond, "the canary received a mirror of a body over the cap", func() bool { return canary.count() > 0 })

	// A small POST right after is mirrored, and it is the only thing the
	// canary ever sees.
	small := randomBytes(t, 1000)
	post(t, c, g.url+"/small", bytes.NewReader(small), int64(len(small)))
	eventually(t, 5*time.Second, "the canary receives the small mirror", func() bool { return canary.count() > 0 })
	if m := canary.all(); len(m) != 1 || m[0].sha != sha(small) {
		t.Fatalf("canary received %+v, want only the small mirror", m)
	}
}

// chunkedBody streams data through a pipe in small writes, so the client
// does not know the length and sends Transfer-Encoding: chunked.
func chunkedBody(data []byte) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		for len(data) > 0 {
			n := min(len(data), 7919)
			if _, err := pw.Write(data[:n]); err != nil {
				return
			}
			data = data[n:]
		}
		pw.Close()
	}()
	return pr
}

func TestMirrorChunkedBody(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int
		mirrored bool
	}{
		{"under-cap", 200 << 10, true},
		{"over-cap", 3 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, stable, canary := mirrorRig(t)
			c := newClient(4)
			defer closeIdle(c)
			body := randomBytes(t, tc.size)
			want := fmt.Sprintf("%s %d", sha(body), len(body))

			res := post(t, c, g.url+"/stream", chunkedBody(body), -1)
			if res.status != http.StatusOK || res.body != want || res.backend != stableVersion {
				t.Fatalf("client got %d %q from %q, want stable's 200 %q", res.status, res.body, res.backend, want)
			}
			got := stable.all()
			if len(got) != 1 || got[0].sha != sha(body) {
				t.Fatalf("stable received %+v, want the %d-byte body intact", got, len(body))
			}
			if !tc.mirrored {
				if n := g.mirrorDropped(t, "body-too-large"); n != 1 {
					t.Fatalf("mirror drops with reason body-too-large = %v, want 1", n)
				}
				never(t, 300*time.Millisecond, "the canary received a mirror of a body over the cap", func() bool { return canary.count() > 0 })
				return
			}
			eventually(t, 5*time.Second, "the canary receives the mirrored chunked POST", func() bool { return canary.count() > 0 })
			m := canary.all()
			if len(m) != 1 || m[0].sha != sha(body) || m[0].n != len(body) || m[0].header.Get(hdrMirror) != "true" {
				t.Fatalf("canary received %+v, want one mirror of the %d-byte body with %s: true", m, len(body), hdrMirror)
			}
		})
	}
}

// TestMirrorPoolFullNeverDelaysPrimary: with one mirror worker stuck on a
// slow canary and a queue of one, further mirrors are dropped and counted,
// and the primary requests are answered as if there were no mirroring.
func TestMirrorPoolFullNeverDelaysPrimary(t *testing.T) {
	blk := newBlocker()
	stable := &recorder{}
	sb := newBackend(t, stableVersion, stable.handle)
	cb := newBackend(t, canaryVersion, blk.handle)
	r := rolloutSpec(t, []string{sb.url}, []string{cb.url}, nil)
	cfg := tableConfig(r, 0)
	cfg.MirrorRoutes = []spec.MirrorRoute{{Name: "all-gets", Match: []spec.RequestMatch{{Path: &spec.StringMatch{Prefix: ptr("/")}}}}} // idempotent methods only
	g := startProxyWith(t, r, cfg, proxy.Options{MirrorWorkers: 1, MirrorQueue: 1})
	defer blk.free() // before the proxy's cleanup, which waits for the worker
	c := newClient(4)
	defer closeIdle(c)

	const n = 10
	for i := 0; i < n; i++ {
		res := get(t, c, g.url+"/page", nil)
		if res.status != http.StatusOK || res.backend != stableVersion {
			t.Fatalf("request %d: status %d from %q while the canary is stuck", i, res.status, res.backend)
		}
	}
	blk.wait(t, 1) // the worker's mirror reached the canary and hangs there
	dropped := g.mirrorDropped(t, "pool-full")
	if dropped < n-2 || dropped > n-1 {
		t.Fatalf("pool-full drops = %v, want %d or %d (one mirror in the worker, at most one queued)", dropped, n-2, n-1)
	}
	// A route that names no method mirrors no POST: the count below shows it.
	if res := postBody(t, c, g.url+"/orders", randomBytes(t, 10)); res.status != http.StatusOK {
		t.Fatalf("POST: status %d", res.status)
	}

	blk.free()
	want := n - int(dropped)
	eventually(t, 5*time.Second, "the mirrors that were not dropped are recorded", func() bool {
		return g.mirrored(t, "200") == float64(want)
	})
	if got := cb.hits.Load(); got != int64(want) {
		t.Fatalf("the canary received %d mirrors, want the %d GETs that were not dropped", got, want)
	}
}

func postBody(t testing.TB, c *http.Client, url string, body []byte) result {
	t.Helper()
	return post(t, c, url, bytes.NewReader(body), int64(len(body)))
}
