package accesslog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// shop is a rollout's telemetry and a Table naming its two backends.
type shop struct {
	stable, canary *telemetry.VersionStats
	table          *Table
}

func newShop() *shop {
	rs := telemetry.NewRegistry(telemetry.Options{}).Rollout("shop")
	s := &shop{
		stable: rs.Version(spec.RoleStable, "v1"),
		canary: rs.Version(spec.RoleCanary, "v2"),
		table:  &Table{},
	}
	s.table.Set(map[string]*telemetry.VersionStats{
		"shop_stable": s.stable, "shop_canary": s.canary,
	})
	return s
}

func codes(v *telemetry.VersionStats) map[int]int64 {
	m := map[int]int64{}
	for _, c := range v.Summary(0).Codes {
		m[c.Code] = c.Count
	}
	return m
}

func TestHandleDatagram(t *testing.T) {
	s := newShop()
	r := newReceiver(s.table)
	lines := []string{
		"<134>Dec  2 14:24:34 haproxy[1]: " + haproxyMsg, // stable 500 after one retry
		"<134>1 2026-12-02T14:24:34Z - haproxy 1 - - 1.2.3.4:5 [d] fe shop_canary/s1 0/0/1/2/7 200 10 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
		"<134>Dec  2 14:24:34 haproxy[1]: 1.2.3.4:5 [d] fe fe/<NOSRV> 0/-1/-1/-1/0 403 192 - - PR-- 1/1/0/0/0 0/0 \"GET /deny HTTP/1.1\"",
		"<190>Dec  2 14:25:15 vm nginx: " + nginxMsg,  // stable 200
		"<190>Dec  2 14:25:15 vm nginx:  " + nginxMsg, // stable 200, a space before the object
		`<190>Dec  2 14:25:15 vm nginx: {"upstream":"shop_canary","status":503,"request_time":0.020,"upstream_status":"502, 503"}`,
		`<190>Dec  2 14:25:15 vm nginx: {"upstream":"","status":204,"request_time":0.000}`,
		"<134>Dec  2 14:25:51 haproxy[1]: 127.0.0.1:50608 [d] tcpfe tcpbe/s1 1/0/1 113 -- 1/1/0/0/0 0/0",
		"<133>Dec  2 14:24:34 haproxy[1]: Proxy fe started.",
		"<129>Dec  2 14:24:34 haproxy[1]: Server shop_canary/s1 is DOWN, reason: Layer4 connection problem.",
		"<134>Dec  2 14:25:51 haproxy[1]: 127.0.0.1:46798 [d] fe shop_stable/s1 0/0/1002/2/1004 200", // truncated
		"<134>Dec  2 14:24:34 haproxy[1]: hello world",
		"\x00\xff garbage",
		"",
		"\r",
	}
	r.handleDatagram([]byte(strings.Join(lines, "\n")+"\n"), false)

	got := r.Counts()
	want := Counts{Recorded: 5, UnknownBackend: 2, Ignored: 3, Malformed: 3}
	if got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	st, ca := s.stable.Summary(0), s.canary.Summary(0)
	if st.Requests != 3 || st.Errors != 1 || st.FailedAttempts != 1 {
		t.Errorf("stable %+v, want 3 requests, 1 error, 1 failed attempt", st)
	}
	if ca.Requests != 2 || ca.Errors != 1 || ca.FailedAttempts != 1 {
		t.Errorf("canary %+v, want 2 requests, 1 error, 1 failed attempt", ca)
	}
	if c := codes(s.canary); c[200] != 1 || c[503] != 1 {
		t.Errorf("canary codes %v, want one 200 and one 503", c)
	}
	// Latencies: stable 1003 ms, 1 ms and 1 ms; the mean is exact to 1 µs.
	if st.Mean < 0.99*335 || st.Mean > 1.01*335 {
		t.Errorf("stable mean latency %.2f ms, want ≈ 335", st.Mean)
	}
}

// A line that fills the whole buffer may have been cut by the kernel.
func TestHandleDatagramFullBuffer(t *testing.T) {
	s := newShop()
	r := newReceiver(s.table)
	line := "<190>x nginx: " + nginxMsg
	r.handleDatagram([]byte(line+"\n"+line), true)
	if got := r.Counts(); got.Recorded != 1 || got.Malformed != 1 {
		t.Errorf("counts %+v, want the last line malformed", got)
	}
}

// The hot path allocates nothing for lines of known backends.
func TestHandleDatagramAllocations(t *testing.T) {
	s := newShop()
	r := newReceiver(s.table)
	for _, line := range []string{
		"<134>Dec  2 14:24:34 haproxy[1]: " + haproxyMsg,
		"<190>Dec  2 14:25:15 vm nginx: " + nginxMsg,
		`<190>Dec  2 14:25:15 vm nginx: {"upstream":"shop\u005fcanary","status":503,"request_time":0.020,"upstream_status":"502, 503"}`,
		"<134>Dec  2 14:24:34 haproxy[1]: garbage",
		"\xff\xfe",
	} {
		b := []byte(line)
		r.handleDatagram(b, false) // interns the name
		if n := testing.AllocsPerRun(100, func() { r.handleDatagram(b, false) }); n != 0 {
			t.Errorf("%q: %.1f allocations per line, want 0", line, n)
		}
	}
}

// Forged backend names cannot grow the receiver's memory without bound.
func TestInternBounded(t *testing.T) {
	r := newReceiver(&Table{})
	for i := range 3 * maxInterned {
		r.handleDatagram(fmt.Appendf(nil, `{"upstream":"u%d","status":200,"request_time":0.1}`, i), false)
	}
	if len(r.names) != maxInterned {
		t.Errorf("%d names kept, want %d", len(r.names), maxInterned)
	}
	if got := r.Counts().UnknownBackend; got != 3*maxInterned {
		t.Errorf("unknown_backend %d, want %d", got, 3*maxInterned)
	}
}

func FuzzHandleDatagram(f *testing.F) {
	f.Add([]byte("<134>Dec  2 14:24:34 haproxy[1]: " + haproxyMsg + "\n<190>Dec  2 14:25:15 vm nginx: " + nginxMsg))
	f.Add([]byte("<134>1 2026-12-02T14:24:34Z - haproxy 1 - - " + haproxyMsg))
	f.Add([]byte("<133>Dec  2 14:24:34 haproxy[1]: Proxy fe started."))
	r := newReceiver(newShop().table)
	f.Fuzz(func(t *testing.T, b []byte) {
		before := r.Counts()
		r.handleDatagram(b, false)
		c := r.Counts()
		c.Recorded -= before.Recorded
		c.UnknownBackend -= before.UnknownBackend
		c.Ignored -= before.Ignored
		c.Malformed -= before.Malformed
		lines := uint64(0)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.TrimRight(l, "\r\x00") != "" {
				lines++
			}
		}
		if total := c.Recorded + c.UnknownBackend + c.Ignored + c.Malformed; total != lines {
			t.Fatalf("%d lines counted, want %d: %+v", total, lines, c)
		}
	})
}

func TestListenAddresses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, addr := range []string{"tcp://127.0.0.1:0", "127.0.0.1:514", "udp://nohost:x", "unix://relative.sock", "unix://" + dir} {
		if r, err := Listen(ctx, addr, &Table{}, Options{}); err == nil {
			r.Close()
			t.Errorf("Listen(%q) succeeded, want an error", addr)
		} else {
			t.Logf("Listen(%q): %v", addr, err)
		}
	}
	if _, err := Listen(ctx, "udp://127.0.0.1:0", nil, Options{}); err == nil {
		t.Error("Listen without a Resolver succeeded")
	}

	// A regular file is never replaced.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(ctx, "unix://"+file, &Table{}, Options{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a regular file: %v, want an error saying it is not a socket", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Errorf("the regular file was changed: %q", b)
	}
}

func TestListenUnixSocketFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "access.sock")

	// A stale socket (its receiver gone without removing it) is replaced.
	stale, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	// Closing a unixgram socket leaves its file behind.
	stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the stale socket file is gone already: %v", err)
	}
	r, err := Listen(ctx, "unix://"+path, &Table{}, Options{SocketMode: 0o660})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket file %v, %v; want mode 0660", fi, err)
	}

	// A live one is not.
	if r2, err := Listen(ctx, "unix://"+path, &Table{}, Options{}); err == nil || !strings.Contains(err.Error(), "another process") {
		if r2 != nil {
			r2.Close()
		}
		t.Errorf("Listen over a live socket: %v, want an error", err)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("after Close the socket file is still there (%v)", err)
	}
}

func TestListenStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, err := Listen(ctx, "udp://127.0.0.1:0", &Table{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver did not stop when its context ended")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// send writes each datagram to a receiver's address.
func send(t *testing.T, addr string, datagrams [][]byte) {
	t.Helper()
	network, a := "udp", strings.TrimPrefix(addr, "udp://")
	if strings.HasPrefix(addr, "unix://") {
		network, a = "unixgram", strings.TrimPrefix(addr, "unix://")
	}
	c, err := net.Dial(network, a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range datagrams {
		if _, err := c.Write(d); err != nil {
			t.Fatalf("sending to %s: %v", addr, err)
		}
	}
}

// garbage returns n random datagrams none of which can be read as a line
// (a byte 0xff first, no newline).
func garbage(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, 1+rng.IntN(600))
		for j := range b {
			b[j] = byte(rng.IntN(256))
			if b[j] == '\n' {
				b[j] = ' '
			}
		}
		b[0] = 0xff
		out[i] = b
	}
	return out
}

// A storm of garbage is counted and the receiver keeps recording. Over a
// unix socket nothing is lost (the sender blocks when the receiver is
// behind), so the counts are exact; over UDP the kernel may drop part of
// the storm, so only the lines after it are checked.
func TestGarbageStorm(t *testing.T) {
	const storm = 20000
	for _, addr := range []string{"unix://" + filepath.Join(t.TempDir(), "s.sock"), "udp://127.0.0.1:0"} {
		t.Run(strings.SplitN(addr, ":", 2)[0], func(t *testing.T) {
			s := newShop()
			r, err := Listen(context.Background(), addr, s.table, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			send(t, r.Addr(), garbage(storm))
			good := []byte("<134>Dec  2 14:24:34 haproxy[1]: " + haproxyMsg)
			if strings.HasPrefix(addr, "unix") {
				waitFor(t, "the storm to be counted", func() bool { return r.Counts().Malformed == storm })
				send(t, r.Addr(), [][]byte{good})
				waitFor(t, "the good line", func() bool { return r.Counts().Recorded == 1 })
			} else {
				// UDP may drop; keep sending good lines until one is seen.
				waitFor(t, "a good line after the storm", func() bool {
					send(t, r.Addr(), [][]byte{good})
					return r.Counts().Recorded > 0
				})
				if m := r.Counts().Malformed; m == 0 {
					t.Error("no malformed line counted")
				}
			}
			if c := r.Counts(); c.Recorded+c.UnknownBackend+c.Ignored != c.Recorded || c.ReadErrors != 0 {
				t.Errorf("counts %+v: garbage was taken for something else", c)
			}
			if got := s.stable.Summary(0).Requests; got != int64(r.Counts().Recorded) {
				t.Errorf("stable has %d requests, want %d", got, r.Counts().Recorded)
			}
		})
	}
}

func TestCollector(t *testing.T) {
	s := newShop()
	r, err := Listen(context.Background(), "udp://127.0.0.1:0", s.table, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.handleDatagram([]byte("<190>x nginx: "+nginxMsg+"\nbad\n"+`{"upstream":"other","status":200,"request_time":0.1}`), false)
	want := fmt.Sprintf(`
# HELP coalmine_access_log_lines_total Access-log lines received from HAProxy or NGINX, by what became of them (recorded, unknown_backend, ignored, malformed).
# TYPE coalmine_access_log_lines_total counter
coalmine_access_log_lines_total{listener=%[1]q,result="ignored"} 0
coalmine_access_log_lines_total{listener=%[1]q,result="malformed"} 1
coalmine_access_log_lines_total{listener=%[1]q,result="recorded"} 1
coalmine_access_log_lines_total{listener=%[1]q,result="unknown_backend"} 1
# HELP coalmine_access_log_read_errors_total Failed reads of the access-log socket.
# TYPE coalmine_access_log_read_errors_total counter
coalmine_access_log_read_errors_total{listener=%[1]q} 0
`, r.Addr())
	if err := testutil.CollectAndCompare(r.Collector(), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
