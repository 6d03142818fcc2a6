package haproxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// command is one runtime API command and how its success reads.
type command struct {
	args    []string
	subject string // what the command is about, for error messages
	ok      func(answer string) bool
	// optional commands may be refused because a server still holds
	// connections, which close by themselves: a later Apply retries.
	optional bool
}

func joinHostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// endpointHostPort splits an endpoint URL (http://host:port) into host and
// port. HAProxy's server servers speak plain HTTP to an address, so a URL
// with TLS, a path or no port cannot be carried by a serverState.
func endpointHostPort(raw string) (host string, port int, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", 0, fmt.Errorf("endpoint %q is not a URL: write http://host:port", raw)
	}
	if u.Scheme != "http" {
		return "", 0, fmt.Errorf("endpoint %q: the HAProxy router sets plain-HTTP server addresses, so endpoints must be http://host:port (scheme %q is not supported)", raw, u.Scheme)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", 0, fmt.Errorf("endpoint %q: an HAProxy server is an address, so the endpoint must be http://host:port with no path, query or credentials", raw)
	}
	host, p := u.Hostname(), u.Port()
	if host == "" {
		return "", 0, fmt.Errorf("endpoint %q has no host", raw)
	}
	if p == "" {
		p = "80"
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("endpoint %q has an invalid port %q", raw, p)
	}
	return host, n, nil
}

// resolveEndpoints turns endpoint URLs into ip:port, resolving host names
// here (HAProxy's `set server addr` takes addresses only). A name that
// resolves to several addresses takes the first IPv4 one, else the first:
// one serverState per endpoint, as the spec lists them. Duplicates collapse.
func resolveEndpoints(ctx context.Context, r *net.Resolver, role string, urls []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, raw := range urls {
		host, port, err := endpointHostPort(raw)
		if err != nil {
			return nil, fmt.Errorf("%s %w", role, err)
		}
		ip, err := resolveHost(ctx, r, host)
		if err != nil {
			return nil, fmt.Errorf("%s endpoint %q: %w", role, raw, err)
		}
		hp := joinHostPort(ip, port)
		if !seen[hp] {
			seen[hp] = true
			out = append(out, hp)
		}
	}
	return out, nil
}

func resolveHost(ctx context.Context, r *net.Resolver, host string) (string, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().WithZone("").String(), nil
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("resolve %s: no address", host)
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap().String(), nil
		}
	}
	return addrs[0].WithZone("").String(), nil
}

// serverPrefix starts the name of every server coalmine adds.
const serverPrefix = "coalmine-"

// serverName names the server of one endpoint after its address, so a
// server is never re-pointed: HAProxy keeps idle keep-alive connections
// to a server across `set server ... addr` and would go on sending
// requests to the old address through them (the old version, after a
// promotion). A server that leaves is put into maintenance, so it is
// never picked again, and deleted once HAProxy lets it go. IPv6 colons
// become '_' (IPv4 has none), keeping names unique and plain.
func serverName(hostPort string) string {
	host, port, _ := net.SplitHostPort(hostPort)
	return serverPrefix + strings.ReplaceAll(host, ":", "_") + "-" + port
}

// planServers makes a backend's ready servers exactly want (ip:port, no
// duplicates). It returns two phases: enable, run before traffic moves,
// adds a server for each wanted address that has none and makes every
// wanted server ready; retire, run after, puts every other ready server
// into maintenance (the user's own servers included: the backend serves
// the version and nothing else) and deletes coalmine's servers in
// maintenance that are no longer wanted. Re-applying the same state sends
// nothing but the deletions HAProxy refused before.
func planServers(backend string, servers []serverState, want []string) (enable, retire []command, err error) {
	byName := map[string]serverState{}
	for _, s := range servers {
		byName[s.Name] = s
	}
	wanted := map[string]bool{}
	full := func(name string) string { return backend + "/" + name }
	setState := func(name, state string) command {
		return command{args: []string{"set", "server", full(name), "state", state}, subject: "server " + full(name), ok: emptyAnswer}
	}
	for _, hp := range want {
		name := serverName(hp)
		wanted[name] = true
		s, found := byName[name]
		switch {
		case found && s.hostPort() != hp:
			return nil, nil, fmt.Errorf("server %s is at %s, not the address its name says (%s): someone changed it; delete it (`del server %s` after `set server %s state maint`)", full(name), s.hostPort(), hp, full(name), full(name))
		case !found:
			enable = append(enable,
				command{args: []string{"add", "server", full(name), hp}, subject: "backend " + backend, ok: serverAdded},
				setState(name, "ready"))
		case !s.ready():
			enable = append(enable, setState(name, "ready"))
		}
	}
	for _, s := range servers {
		if wanted[s.Name] {
			continue
		}
		if s.ready() {
			retire = append(retire, setState(s.Name, "maint"))
		}
		if strings.HasPrefix(s.Name, serverPrefix) {
			retire = append(retire, command{args: []string{"del", "server", full(s.Name)}, subject: "server " + full(s.Name), ok: serverDeleted, optional: true})
		}
	}
	return enable, retire, nil
}
