package accesslog

import "testing"

// The envelopes below were captured from HAProxy 2.6.12 (log formats
// rfc3164, rfc5424, short, priority, timed, iso, raw, with and without
// log-send-hostname) and NGINX 1.22.1 (syslog: with and without
// nohostname and tag), over UDP and unix sockets.
const haproxyMsg = `127.0.0.1:56528 [02/Dec/2026:14:24:33.228] fe shop_stable/s1 0/0/1002/1/1003 500 135 - - ---- 1/1/0/0/1 0/0 "GET /fail HTTP/1.1"`

const nginxMsg = `{"upstream":"shop_stable","status":200,"request_time":0.001,"upstream_status":"200","upstream_response_time":"0.002"}`

func TestSplitEnvelope(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		severity int
		msg      string
	}{
		{"haproxy rfc3164", "<134>Dec  2 14:24:34 haproxy[9528]: " + haproxyMsg, 6, haproxyMsg},
		{"haproxy rfc3164 with hostname", "<134>Dec  2 14:25:51 vm haproxy[12403]: " + haproxyMsg, 6, haproxyMsg},
		{"haproxy rfc5424", "<134>1 2026-12-02T14:24:34.235646+00:00 - haproxy 9528 - - " + haproxyMsg, 6, haproxyMsg},
		{"haproxy rfc5424 with hostname", "<134>1 2026-12-02T14:24:34.235646+00:00 vm haproxy 9528 - - " + haproxyMsg, 6, haproxyMsg},
		{"haproxy short", "<6>" + haproxyMsg, 6, haproxyMsg},
		{"haproxy priority", "<134>" + haproxyMsg, 6, haproxyMsg},
		{"haproxy timed", "<6>2026-12-02T14:25:51.455582+00:00 " + haproxyMsg, 6, haproxyMsg},
		{"haproxy iso", "2026-12-02T14:25:51.456442+00:00 " + haproxyMsg, -1, haproxyMsg},
		{"haproxy raw", haproxyMsg, -1, haproxyMsg},
		{"nginx", "<190>Dec  2 14:25:15 vm nginx: " + nginxMsg, 6, nginxMsg},
		{"nginx nohostname", "<190>Dec  2 14:25:15 nginx: " + nginxMsg, 6, nginxMsg},
		{"nginx custom tag", "<190>Dec 12 14:25:15 web-1.example.org coalmine_shop: " + nginxMsg, 6, nginxMsg},
		{"json with spaces is no tag", `<190>Dec  2 14:25:15 { "upstream": "a" }`, 6, `{ "upstream": "a" }`},
		{"rfc5424 structured data", `<165>1 2003-10-11T22:14:15.003Z host app - ID47 [ex@32473 iut="3" eventSource="Ap\]p"][b@1 x="y"] ` + "\xEF\xBB\xBF" + "hello", 5, "hello"},
		{"rfc5424 no message", `<165>1 2003-10-11T22:14:15.003Z host app - ID47 -`, 5, ""},
		{"event", "<133>Dec  2 14:24:34 haproxy[9528]: Proxy fe started.", 5, "Proxy fe started."},
		{"pri only", "<0>", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, ok := splitEnvelope([]byte(tt.line))
			if !ok {
				t.Fatalf("splitEnvelope(%q) failed", tt.line)
			}
			if env.severity != tt.severity || string(env.msg) != tt.msg {
				t.Errorf("splitEnvelope(%q) = severity %d, msg %q; want %d, %q", tt.line, env.severity, env.msg, tt.severity, tt.msg)
			}
		})
	}
}

func TestSplitEnvelopeRejects(t *testing.T) {
	for _, line := range []string{
		"<", "<>", "<1", "<1234>x", "<192>x", "<ab>x",
		"<134>1 2026-12-02T14:24:34Z - haproxy", // cut inside the header
		"<134>1 2026-12-02T14:24:34Z - haproxy 1 - [unclosed",
		"<134>1 2026-12-02T14:24:34Z - haproxy 1 - x msg", // SD neither - nor [
		"<134>1 2026-12-02T14:24:34Z - haproxy 1 - -msg",
	} {
		if env, ok := splitEnvelope([]byte(line)); ok {
			t.Errorf("splitEnvelope(%q) = %q, ok; want a failure", line, env.msg)
		}
	}
}

func FuzzSplitEnvelope(f *testing.F) {
	for _, s := range []string{
		"<134>Dec  2 14:24:34 haproxy[9528]: " + haproxyMsg,
		"<134>1 2026-12-02T14:24:34.235646+00:00 - haproxy 9528 - - " + haproxyMsg,
		`<165>1 2003-10-11T22:14:15.003Z host app - ID47 [ex@32473 iut="3" eventSource="Ap\]p"] msg`,
		"<190>Dec  2 14:25:15 vm nginx: " + nginxMsg,
		"2026-12-02T14:25:51.456442+00:00 x",
		"<6>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		env, ok := splitEnvelope(line)
		if !ok {
			return
		}
		if env.severity < -1 || env.severity > 7 {
			t.Fatalf("severity %d", env.severity)
		}
		// The message is always a tail of the line.
		if len(env.msg) > len(line) || string(line[len(line)-len(env.msg):]) != string(env.msg) {
			t.Fatalf("msg %q is not a tail of %q", env.msg, line)
		}
	})
}
