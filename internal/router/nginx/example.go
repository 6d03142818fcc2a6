package nginx

import (
	"fmt"
	"strings"
)

// ExampleOptions shape ConfigExample's nginx.conf. The zero value gives
// the file in examples/nginx/nginx.conf.
type ExampleOptions struct {
	// Rollout is the rollout's name. Default shop.
	Rollout string
	// IncludeFile is the http include file coalmine writes. Default
	// /etc/nginx/coalmine/ROLLOUT.conf; the location include and the
	// state directory are beside it (LocationFile, DefaultStateDir).
	IncludeFile string
	// Listen is where the users' traffic arrives. Default 80.
	Listen string
	// Syslog is where NGINX sends the access log coalmine reads. Default
	// 127.0.0.1:5514.
	Syslog string
	// PidFile and ErrorLog default to /run/nginx.pid and
	// /var/log/nginx/error.log.
	PidFile, ErrorLog string
	// TempDir, when set, holds NGINX's temporary files (tests run NGINX
	// without root, away from /var/lib/nginx).
	TempDir string
}

// LogFormat is the access-log format coalmine's access-log receiver reads:
// one JSON object per request, the upstream ($proxy_host) telling which
// version served it.
const LogFormat = `log_format coalmine escape=json '{"time":"$time_iso8601","upstream":"$proxy_host",'
                                   '"status":$status,"request_time":$request_time,'
                                   '"upstream_status":"$upstream_status",'
                                   '"upstream_response_time":"$upstream_response_time",'
                                   '"method":"$request_method","uri":"$uri"}';`

// ConfigExample returns a complete nginx.conf whose http block includes
// the rollout's include file, proxies every request to the version
// coalmine chooses, and sends coalmine the access log it judges by.
func ConfigExample(o ExampleOptions) (string, error) {
	if o.Rollout == "" {
		o.Rollout = "shop"
	}
	names, err := NamesFor(o.Rollout)
	if err != nil {
		return "", err
	}
	if o.IncludeFile == "" {
		o.IncludeFile = "/etc/nginx/coalmine/" + names.ID + ".conf"
	}
	if o.Listen == "" {
		o.Listen = "80"
	}
	if o.Syslog == "" {
		o.Syslog = "127.0.0.1:5514"
	}
	if o.PidFile == "" {
		o.PidFile = "/run/nginx.pid"
	}
	if o.ErrorLog == "" {
		o.ErrorLog = "/var/log/nginx/error.log"
	}
	for _, v := range []string{o.IncludeFile, o.Listen, o.Syslog, o.PidFile, o.ErrorLog, o.TempDir} {
		if strings.ContainsAny(v, " \t\r\n;{}#'\"$\\") {
			return "", fmt.Errorf("example option %q holds a character NGINX would read as syntax", v)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, `# nginx.conf for a rollout %[1]q that coalmine drives through NGINX. The
# rollout's spec says (excerpt):
#
#   trafficRouting:
#     router:
#       nginx:
#         includeFile: %[2]s
#         # testCommand: [nginx, -t]          (the defaults)
#         # reloadCommand: [nginx, -s, reload]
#         # statusAddress: %[3]s
#         # stateDir: %[10]s
#     assignment:
#       userHeader: X-User-Id         # one user, one version
#     headerRoutes:
#       - name: testers               # X-Canary: always -> canary, at any weight
#         match: [{headerName: X-Canary, headerValue: {exact: always}}]
#
# coalmine writes %[2]s (upstreams %[4]s and %[5]s,
# the variable %[6]s, and a status server on %[3]s that
# only coalmine asks) and %[9]s (for the proxying
# location), checks them with nginx -t and reloads NGINX when the
# upstreams, header routes or revision change. A weight change (an abort
# too) needs no reload: coalmine swaps files in %[10]s,
# which the workers stat on every request (keep open_file_cache and
# disable_symlinks off there). NGINX cannot start without the include
# files: coalmine's first apply writes them, and keeps them once nginx -t
# accepts them even when NGINX is not running yet. Several rollouts: one
# include file each (they may share the status address); include them
# with a glob such as /etc/nginx/coalmine/*.conf, so one rollout's first
# file is tested without the others'.

worker_processes auto;
pid %[7]s;
error_log %[8]s;

events {
    worker_connections 1024;
}

http {
`, o.Rollout, o.IncludeFile, DefaultStatusAddress, names.Stable, names.Canary, names.Upstream, o.PidFile, o.ErrorLog,
		LocationFile(o.IncludeFile), DefaultStateDir(o.IncludeFile))
	if o.TempDir != "" {
		for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
			fmt.Fprintf(&b, "    %s_temp_path %s/%s;\n", d, o.TempDir, d)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, `    # coalmine's judges read every proxied request from this log: which
    # upstream (so which version) served it, its status and its duration.
    %s
    access_log syslog:server=%s,tag=nginx coalmine;

    include %s;

    server {
        listen %s;

        location / {
            # Chooses the version by the weight files (set and if only).
            include %s;
            proxy_pass http://%s;
            # Reuse the upstream connections the include file keeps alive.
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }
    }
}
`, LogFormat, o.Syslog, o.IncludeFile, o.Listen, LocationFile(o.IncludeFile), names.Upstream)
	return b.String(), nil
}
