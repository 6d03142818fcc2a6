package accesslog

import (
	"testing"
	"time"
)

func TestParseNGINX(t *testing.T) {
	tests := []struct {
		name     string
		msg      string
		backend  string
		code     int
		latency  time.Duration
		connects int
		timeouts int
	}{
		{"captured", nginxMsg, "shop_stable", 200, time.Millisecond, 0, 0},
		{"no upstream", `{"upstream":"","status":204,"request_time":0.000,"upstream_status":"","upstream_response_time":""}`, "", 204, 0, 0, 0},
		{"minimal", `{"upstream":"u","status":500,"request_time":1.5}`, "u", 500, 1500 * time.Millisecond, 0, 0},
		{"strings and spaces", ` { "status" : "503" , "request_time" : "12.000" , "upstream" : "shop_canary" } `, "shop_canary", 503, 12 * time.Second, 0, 0},
		{"retries", `{"upstream":"u","status":200,"request_time":0.2,"upstream_status":"502, 504, 200"}`, "u", 200, 200 * time.Millisecond, 1, 1},
		{"redirect groups: only the last counts", `{"upstream":"u","status":200,"request_time":0.2,"upstream_status":"502, 502 : 502, 200"}`, "u", 200, 200 * time.Millisecond, 1, 0},
		{"other members skipped", `{"time":"2026-12-02T14:25:15+00:00","req":{"h":["a",1,true,null,-2.5e3]},"upstream":"u","status":404,"request_time":0.010,"bytes":123}`, "u", 404, 10 * time.Millisecond, 0, 0},
		{"escaped upstream", `{"upstream":"a\u0041\"b","status":200,"request_time":0.001}`, `aA"b`, 200, time.Millisecond, 0, 0},
		{"escaped key is another member", `{"upstr\u0065am":"x","upstream":"u","status":200,"request_time":0.001}`, "u", 200, time.Millisecond, 0, 0},
		{"nanoseconds and beyond", `{"upstream":"u","status":200,"request_time":0.0000000019}`, "u", 200, time.Nanosecond, 0, 0},
		{"client closed", `{"upstream":"u","status":499,"request_time":3.000,"upstream_status":"-"}`, "u", 499, 3 * time.Second, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, v := parseNGINX([]byte(tt.msg), make([]byte, len(tt.msg)))
			if v != verdictRequest {
				t.Fatalf("verdict %d, want a request", v)
			}
			if string(r.backend) != tt.backend || r.code != tt.code || r.latency != tt.latency || r.failedConnects != tt.connects || r.failedTimeouts != tt.timeouts {
				t.Errorf("got %q %d %v %d/%d; want %q %d %v %d/%d", r.backend, r.code, r.latency, r.failedConnects, r.failedTimeouts,
					tt.backend, tt.code, tt.latency, tt.connects, tt.timeouts)
			}
		})
	}
}

func TestParseNGINXRejects(t *testing.T) {
	for _, msg := range []string{
		`{}`,
		`{"upstream":"u","status":200}`,                                // no request_time
		`{"upstream":"u","request_time":0.1}`,                          // no status
		`{"status":200,"request_time":0.1}`,                            // no upstream
		`{"upstream":"u","status":200,"request_time":0.1`,              // truncated
		`{"upstream":"u","status":200,"request_time":0.1}x`,            // trailing bytes
		`{"upstream":"u","status":2000,"request_time":0.1}`,            // not a status
		`{"upstream":"u","status":99,"request_time":0.1}`,              // not a status
		`{"upstream":"u","status":200.0,"request_time":0.1}`,           // not a status
		`{"upstream":"u","status":200,"request_time":-0.1}`,            // negative
		`{"upstream":"u","status":200,"request_time":1e3}`,             // NGINX never writes exponents
		`{"upstream":"u","status":200,"request_time":"1."}`,            // no fraction digits
		`{"upstream":5,"status":200,"request_time":0.1}`,               // upstream not a string
		`{"upstream":"a\q","status":200,"request_time":0.1}`,           // bad escape
		`{"upstream":"a\u00","status":200,"request_time":0.1}`,         // cut escape
		"{\"upstream\":\"a\x01\",\"status\":200,\"request_time\":0.1}", // raw control byte
		`{"upstream":"u","status":200,"request_time":0.1,"x":01}`,      // leading zero
		`{"upstream":"u","status":200,"request_time":0.1,"x":[1,]}`,
		`{"upstream":"u","status":200,"request_time":0.1,"x":tru}`,
		`{"upstream":"u","status":200,"request_time":0.1,"x":` + deep(40) + `}`,
		`{"upstream":"u","status":200,"request_time":0.1,,}`,
		`["upstream","u"]`,
	} {
		if r, v := parseNGINX([]byte(msg), make([]byte, len(msg))); v != verdictMalformed {
			t.Errorf("parseNGINX(%q) = %+v, verdict %d; want malformed", msg, r, v)
		}
	}
}

// deep returns n nested arrays.
func deep(n int) string {
	s := ""
	for range n {
		s = "[" + s
	}
	for range n {
		s += "]"
	}
	return s
}

func FuzzParseNGINX(f *testing.F) {
	f.Add([]byte(nginxMsg))
	f.Add([]byte(`{"upstream":"a\u0041\"b","status":"200","request_time":"0.001","upstream_status":"502, 504 : 200"}`))
	f.Add([]byte(`{"x":{"y":[1,2,{"z":null}]},"upstream":"u","status":200,"request_time":12.5}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		scratch := make([]byte, len(msg))
		r, v := parseNGINX(msg, scratch)
		if v != verdictRequest {
			return
		}
		if len(r.backend) > len(msg) {
			t.Fatalf("backend %q longer than the line", r.backend)
		}
		if r.code < 100 || r.code > 599 || r.latency < 0 {
			t.Fatalf("code %d latency %v", r.code, r.latency)
		}
		if r.failedConnects+r.failedTimeouts > maxFailedAttempts || r.failedConnects < 0 || r.failedTimeouts < 0 {
			t.Fatalf("failed attempts %d/%d", r.failedConnects, r.failedTimeouts)
		}
	})
}
