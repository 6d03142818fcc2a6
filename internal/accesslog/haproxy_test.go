package accesslog

import (
	"testing"
	"time"
)

func TestParseHAProxy(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		backend string
		code    int
		latency time.Duration
		retries int
	}{
		{"server answered, one retry", haproxyMsg, "shop_stable", 500, 1003 * time.Millisecond, 1},
		{"no server: HAProxy's own 503 counts for the backend",
			`127.0.0.1:56536 [02/Dec/2026:14:24:34.264] fe nosrv/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 "GET /nosrv HTTP/1.1"`,
			"nosrv", 503, 0, 0},
		{"denied in the frontend names the frontend",
			`127.0.0.1:56548 [02/Dec/2026:14:24:34.296] fe fe/<NOSRV> 0/-1/-1/-1/0 403 192 - - PR-- 1/1/0/0/0 0/0 "GET /deny HTTP/1.1"`,
			"fe", 403, 0, 0},
		{"bad request",
			`127.0.0.1:56550 [02/Dec/2026:14:24:34.428] fe fe/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"`,
			"fe", 400, 0, 0},
		{"client left before the answer",
			`10.0.0.1:1234 [02/Dec/2026:14:24:34.428] fe~ shop_canary/s2 12/0/1/-1/5000 -1 0 - - CD-- 3/3/1/1/0 0/0 "GET /slow HTTP/1.1"`,
			"shop_canary", 499, 5000 * time.Millisecond, 0},
		{"client left, abortonclose (captured from HAProxy 2.6)",
			`127.0.0.1:56656 [02/Dec/2026:14:45:55.504] fe shop_stable/s1 0/0/0/-1/501 400 206 - - CH-- 1/1/0/0/0 0/0 "GET /x HTTP/1.1"`,
			"shop_stable", 499, 501 * time.Millisecond, 0},
		{"client sent a bad request: its 400 stays",
			`127.0.0.1:56656 [02/Dec/2026:14:45:55.504] fe shop_stable/<NOSRV> -1/-1/-1/-1/3 400 206 - - CR-- 1/1/0/0/0 0/0 "GET /x HTTP/1.1"`,
			"shop_stable", 400, 3 * time.Millisecond, 0},
		{"no Ta: Tr is the latency",
			`10.0.0.1:1234 [02/Dec/2026:14:24:34.428] fe b/s 1/0/1/42/-1 200 10 - - ---- 1/1/1/1/0 0/0 "GET / HTTP/1.1"`,
			"b", 200, 42 * time.Millisecond, 0},
		{"logasap and redispatch",
			`10.0.0.1:1234 [02/Dec/2026:14:24:34.428] fe b/s 1/0/1/42/+77 200 +10 - - ---- 1/1/1/1/+2 0/0 "GET / HTTP/1.1"`,
			"b", 200, 77 * time.Millisecond, 2},
		{"captures and a request cut by HAProxy's line length",
			`10.0.0.1:1234 [02/Dec/2026:14:24:34.428] fe b/s 1/0/1/2/3 302 10 - - ---- 1/1/1/1/0 0/0 {host.example|Mozilla} {} "GET /very/long/ur`,
			"b", 302, 3 * time.Millisecond, 0},
		{"cut right after the queues",
			`10.0.0.1:1234 [02/Dec/2026:14:24:34.428] fe b/s 1/0/1/2/3 204 10 - - ---- 1/1/1/1/0 0/0`,
			"b", 204, 3 * time.Millisecond, 0},
		{"IPv6 client",
			`[::1]:1234 [02/Dec/2026:14:24:34.428] fe b/s 1/0/1/2/3 200 10 - - ---- 1/1/1/1/0 0/0 "GET / HTTP/1.1"`,
			"b", 200, 3 * time.Millisecond, 0},
		{"absurd retries are capped",
			`10.0.0.1:1234 [02/Dec/2026:14:24:34.428] fe b/s 1/0/1/2/3 200 10 - - ---- 1/1/1/1/999999999 0/0 "GET / HTTP/1.1"`,
			"b", 200, 3 * time.Millisecond, maxFailedAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, v := parseHAProxy([]byte(tt.msg))
			if v != verdictRequest {
				t.Fatalf("verdict %d, want a request", v)
			}
			if string(r.backend) != tt.backend || r.code != tt.code || r.latency != tt.latency || r.failedConnects != tt.retries || r.failedTimeouts != 0 {
				t.Errorf("got backend %q code %d latency %v retries %d; want %q %d %v %d",
					r.backend, r.code, r.latency, r.failedConnects, tt.backend, tt.code, tt.latency, tt.retries)
			}
		})
	}
}

func TestParseHAProxyNotRequests(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want verdict
	}{
		{"tcplog", `127.0.0.1:50608 [02/Dec/2026:14:25:51.482] tcpfe tcpbe/s1 1/0/1 113 -- 1/1/0/0/0 0/0`, verdictIgnored},
		{"connection error", `127.0.0.1:50608 [02/Dec/2026:14:25:51.482] fe/1: SSL handshake failure`, verdictIgnored},
		{"event", `Proxy fe started.`, verdictForeign},
		{"server down", `Server shop_canary/s1 is DOWN, reason: Layer4 connection problem.`, verdictForeign},
		{"empty", ``, verdictForeign},
		{"cut before the queues", `127.0.0.1:46798 [02/Dec/2026:14:25:50.450] fe shop_stable/s1 0/0/1002/2/1004 200`, verdictMalformed},
		{"cut inside the status", `127.0.0.1:46798 [02/Dec/2026:14:25:50.450] fe shop_stable/s1 0/0/1002/2/1004 20`, verdictMalformed},
		{"cut inside the queues", `127.0.0.1:46798 [02/Dec/2026:14:25:50.450] fe b/s 0/0/2/2/4 200 116 - - ---- 1/1/0/0/1 0/`, verdictMalformed},
		{"status out of range", `1.2.3.4:5 [d] fe b/s 0/0/2/2/4 600 116 - - ---- 1/1/0/0/1 0/0`, verdictMalformed},
		{"status not a number", `1.2.3.4:5 [d] fe b/s 0/0/2/2/4 2x0 116 - - ---- 1/1/0/0/1 0/0`, verdictMalformed},
		{"four timers", `1.2.3.4:5 [d] fe b/s 0/0/2/4 200 116 - - ---- 1/1/0/0/1 0/0`, verdictMalformed},
		{"six timers", `1.2.3.4:5 [d] fe b/s 0/0/2/4/5/6 200 116 - - ---- 1/1/0/0/1 0/0`, verdictMalformed},
		{"no server", `1.2.3.4:5 [d] fe b 0/0/2/2/4 200 116 - - ---- 1/1/0/0/1 0/0`, verdictMalformed},
		{"empty backend", `1.2.3.4:5 [d] fe /s 0/0/2/2/4 200 116 - - ---- 1/1/0/0/1 0/0`, verdictMalformed},
		{"huge timer", `1.2.3.4:5 [d] fe b/s 0/0/2/2/99999999999 200 116 - - ---- 1/1/0/0/1 0/0`, verdictMalformed},
		{"clf", `"1.2.3.4" 1.2.3.4 - - [02/Dec/2026:14:24:34 +0000] "GET / HTTP/1.1" 200 10 "" "" 5 123 fe b s 0 0 1 2 3 ---- 1 1 1 1 0 0 0 - -`, verdictForeign},
		{"double space", `1.2.3.4:5 [d] fe  b/s 0/0/2/2/4 200 116 - - ---- 1/1/0/0/1 0/0`, verdictMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, v := parseHAProxy([]byte(tt.msg)); v != tt.want {
				t.Errorf("parseHAProxy(%q) = verdict %d, want %d", tt.msg, v, tt.want)
			}
		})
	}
}

func FuzzParseHAProxy(f *testing.F) {
	f.Add([]byte(haproxyMsg))
	f.Add([]byte(`127.0.0.1:50608 [02/Dec/2026:14:25:51.482] tcpfe tcpbe/s1 1/0/1 113 -- 1/1/0/0/0 0/0`))
	f.Add([]byte(`10.0.0.1:1234 [d] fe b/s 1/0/1/42/+77 -1 +10 - - CD-- 1/1/1/1/+2 0/0 {a} "GET /`))
	f.Add([]byte(`1.2.3.4:5 [d] fe/1: SSL handshake failure`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, v := parseHAProxy(msg)
		if v != verdictRequest {
			return
		}
		if len(r.backend) == 0 || len(r.backend) > len(msg) {
			t.Fatalf("backend %q", r.backend)
		}
		if r.code < 100 || r.code > 599 {
			t.Fatalf("code %d", r.code)
		}
		if r.latency < 0 || r.latency > 9999999999*time.Millisecond {
			t.Fatalf("latency %v", r.latency)
		}
		if r.failedConnects < 0 || r.failedConnects > maxFailedAttempts || r.failedTimeouts != 0 {
			t.Fatalf("failed attempts %d/%d", r.failedConnects, r.failedTimeouts)
		}
	})
}
