// Package accesslog gives coalmine's judges the traffic of load balancers
// it does not run itself: HAProxy and NGINX send their access logs over
// syslog, a Receiver reads each line, finds the backend (HAProxy) or
// upstream (NGINX) it names, asks a Resolver which version that is, and
// records the status code and latency with telemetry.VersionStats.Observe,
// the call coalmine's own proxy makes. A line that cannot be used is
// counted and skipped, never fatal.
//
// # Listening
//
// Listen takes udp://host:port or unix:///path (a unix datagram socket).
// A socket file left by a receiver that is gone is replaced; a path that
// is not a socket, or a socket someone still receives on, is refused. The
// sender needs write permission on the socket file (Options.SocketMode);
// NGINX's workers usually run as another user than coalmine.
//
// Syslog envelopes: RFC 3164 (with or without host name), RFC 5424, and
// HAProxy's short, priority, timed, iso and raw formats; a datagram may
// hold several lines separated by newlines.
//
// # HAProxy
//
// HAProxy's default HTTP log format, in every frontend whose backends
// coalmine routes:
//
//	global
//	    log 127.0.0.1:5514 local0          # or: log /run/coalmine/access.sock local0
//	defaults
//	    mode http
//	    log global
//	    option httplog
//	    option dontlognull                 # health probes and empty connections stay out
//
// Do not use "option httplog clf" or a custom log-format: the line must
// start with the fields of the default format, which HAProxy 2.6
// documents as
//
//	%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r
//
// The version is found from %b, the backend. A request HAProxy answered
// itself (%s is <NOSRV>: no server up, a 503) counts for its backend; a
// request refused in the frontend names the frontend as its backend (and
// so counts as unknown_backend unless the Resolver knows that name). The
// code is %ST, except that a request whose client left before any answer
// (%ST -1, or termination state CQ, CC or CH, which option abortonclose
// logs as 400) is recorded as 499, as coalmine's proxy and NGINX do: never
// the version's error. The latency is %Ta
// (whole request), or %Tr when %Ta is -1, in milliseconds. Each retry in
// %rc is a failed connection attempt (VersionStats.FailedAttempt). A line
// must be complete up to %sq/%bq: HAProxy cuts lines longer than its log
// "len" (1024 by default) at the end, so a long URL loses only the
// request text, while a line cut before the queues is malformed. tcplog
// lines and connection errors ("fe/bind: SSL handshake failure") are
// ignored.
//
// # NGINX
//
// A JSON log_format with these members, sent to syslog:
//
//	log_format coalmine escape=json '{"upstream":"$proxy_host","status":$status,"request_time":$request_time,"upstream_status":"$upstream_status"}';
//	access_log syslog:server=127.0.0.1:5514 coalmine;   # or syslog:server=unix:/run/coalmine/access.sock
//
// "upstream" is $proxy_host, which is the upstream's name when the
// location proxies to it (proxy_pass http://shop_stable; or
// proxy_pass http://$variable; holding an upstream name); "" when NGINX
// answered without proxying (unknown_backend). "status" is $status, the
// code the client got; "request_time" is $request_time in seconds. Both
// may also be quoted. "upstream_status" is optional: each attempt before
// the last in its final group ("502, 200") is a failed attempt, a
// timeout for 504 and a failed connection otherwise. Other members may be
// added and are skipped; the line must be one whole JSON object.
//
// # Results
//
// Every line read ends up in exactly one counter, exported by Collector as
// coalmine_access_log_lines_total{listener,result}:
//
//   - recorded: observed into the version its backend resolves to;
//   - unknown_backend: a request line whose backend the Resolver does not
//     know (another application's, or answered without a backend);
//   - ignored: well-formed but no HTTP request: HAProxy tcplog lines and
//     connection errors, and any message at syslog severity notice or
//     above that is not an access line (HAProxy's "Server x/y is DOWN",
//     NGINX error_log lines);
//   - malformed: garbage, a truncated line, a line of another format.
//
// coalmine_access_log_read_errors_total{listener} counts failed reads.
//
// # Cost
//
// One goroutine reads the socket into a fixed buffer; envelope, parsers,
// name lookup and Observe allocate nothing per line (names are interned,
// up to 1,024 distinct ones). BenchmarkHandleLine and BenchmarkReceive
// measure it.
package accesslog
