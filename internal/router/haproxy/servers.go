package haproxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
)

// command is one runtime API command and how its success reads.
type command struct {
	args    []string
	subject string // what the command is about, for error messages
	ok      func(answer string) bool
}

func joinHostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// endpointHostPort splits an endpoint URL (http://host:port) into host and
// port. HAProxy's server slots speak plain HTTP to an address, so a URL
// with TLS, a path or no port cannot be carried by a slot.
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
// one slot per endpoint, as the spec lists them. Duplicates collapse.
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

// planSlots points a backend's server slots at want (ip:port, no
// duplicates). It returns two phases: enable, run before traffic moves,
// makes every wanted address ready; retire, run after, puts the slots no
// longer wanted into maintenance. A slot already ready at a wanted address
// is left alone, so re-applying the same state sends nothing and
// connections to it are never disturbed. When no free slot is left, a
// slot that is about to be retired is re-pointed in place during enable
// (HAProxy sends new connections to the new address at once, and lets
// those in flight finish), so the backend never has fewer serving slots
// than it needs.
func planSlots(backend string, slots []slot, want []string) (enable, retire []command, err error) {
	if len(want) > len(slots) {
		return nil, nil, fmt.Errorf("backend %s has %d server slots but %d endpoints must go in it: raise the count of its `server-template` line in haproxy.cfg (e.g. `server-template s 1-%d 127.0.0.1:1 disabled`) and reload HAProxy", backend, len(slots), len(want), max(len(want), 2*len(slots)))
	}
	wanted := map[string]bool{}
	for _, hp := range want {
		wanted[hp] = true
	}
	placed := map[string]bool{}
	used := make([]bool, len(slots))
	// Keep what is already right.
	for i, s := range slots {
		if s.ready() && wanted[s.hostPort()] && !placed[s.hostPort()] {
			placed[s.hostPort()] = true
			used[i] = true
		}
	}
	var missing []string
	for _, hp := range want {
		if !placed[hp] {
			missing = append(missing, hp)
		}
	}
	name := func(s slot) string { return backend + "/" + s.Name }
	setAddr := func(s slot, hp string) command {
		host, port, _ := net.SplitHostPort(hp)
		return command{args: []string{"set", "server", name(s), "addr", host, "port", port}, subject: "server " + name(s), ok: addrChanged}
	}
	setState := func(s slot, state string) command {
		return command{args: []string{"set", "server", name(s), "state", state}, subject: "server " + name(s), ok: emptyAnswer}
	}
	// Free slots first: a slot in maintenance already at the address needs
	// only `state ready`; any other free slot is re-pointed, then readied.
	take := func(match func(i int, s slot) bool, inPlace bool) {
		rest := missing[:0]
		for _, hp := range missing {
			i := -1
			for j, s := range slots {
				if !used[j] && match(j, s) && (inPlace || s.hostPort() == hp || !sameAddrFree(slots, used, hp)) {
					i = j
					break
				}
			}
			if i < 0 {
				rest = append(rest, hp)
				continue
			}
			used[i] = true
			s := slots[i]
			if s.hostPort() != hp {
				enable = append(enable, setAddr(s, hp))
			}
			if !s.ready() {
				enable = append(enable, setState(s, "ready"))
			}
		}
		missing = rest
	}
	take(func(_ int, s slot) bool { return !s.ready() }, false)
	take(func(_ int, s slot) bool { return s.ready() }, true)
	if len(missing) > 0 {
		// Unreachable given the count check above; kept so a mistake here
		// fails loudly rather than leaving endpoints out.
		return nil, nil, fmt.Errorf("backend %s: no server slot left for %v", backend, missing)
	}
	for i, s := range slots {
		if !used[i] && s.ready() {
			retire = append(retire, setState(s, "maint"))
		}
	}
	return enable, retire, nil
}

// sameAddrFree reports whether a free slot in maintenance already holds
// hp, so another free slot is not re-pointed to it needlessly.
func sameAddrFree(slots []slot, used []bool, hp string) bool {
	for i, s := range slots {
		if !used[i] && !s.ready() && s.hostPort() == hp {
			return true
		}
	}
	return false
}
