package haproxy

import (
	"fmt"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Sections are the haproxy.cfg lines of one rollout, per section, each
// line indented and commented for pasting.
type Sections struct {
	// Header is a comment on what must exist besides these lines.
	Header string
	// Global goes into the global section.
	Global string
	// Frontend goes into the frontend that receives the rollout's
	// requests, after the user's own rules and before its other
	// use_backend lines.
	Frontend string
	// StableBackend and CanaryBackend are the two backends, whole.
	StableBackend string
	CanaryBackend string
}

// ConfigLines returns, as one commented text, the haproxy.cfg lines that
// make HAProxy route a rollout the way the driver sets it: userHeader
// ("" for none) keeps a user on one version; headerNames lists every
// header a header route may match (each costs a few lookups per request).
func ConfigLines(rollout string, cfg spec.HAProxyRouter, userHeader string, headerNames []string) string {
	s := ConfigSections(rollout, cfg, userHeader, headerNames)
	return s.Header + "\nglobal\n" + s.Global + "\nfrontend YOUR_FRONTEND\n" + s.Frontend + "\n" + s.StableBackend + "\n" + s.CanaryBackend
}

// ConfigSections is ConfigLines split by section, for a caller that
// assembles a configuration (the tests, the example).
func ConfigSections(rollout string, cfg spec.HAProxyRouter, userHeader string, headerNames []string) Sections {
	cfg = Defaults(rollout, cfg)
	var s Sections
	v := func(what string) string { return txnVar(rollout, what) }
	mapFile, regexFile := cfg.Map, RegexMap(cfg.Map)

	var names, skipped []string
	seen := map[string]bool{}
	for _, h := range headerNames {
		lh := strings.ToLower(h)
		switch {
		case !validHeaderName(lh):
			skipped = append(skipped, h)
		case !seen[lh]:
			seen[lh] = true
			names = append(names, lh)
		}
	}

	files := mapFile
	if len(names) > 0 {
		files += " " + regexFile
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# coalmine: haproxy.cfg lines for rollout %q. coalmine sets the entries\n", rollout)
	b.WriteString("# of the map files at run time through the runtime API (a stats socket at\n")
	b.WriteString("# `level admin`): these lines stay as they are while the rollout moves, and\n")
	b.WriteString("# HAProxy is never reloaded for it. The map files must exist (empty is fine)\n")
	fmt.Fprintf(&b, "# when HAProxy starts: %s\n", files)
	for _, h := range skipped {
		fmt.Fprintf(&b, "# Header %q is left out: only letters, digits, '-', '_' and '.' can be routed on.\n", h)
	}
	s.Header = b.String()

	user := strings.ToLower(userHeader)
	if !validHeaderName(user) {
		user = ""
	}
	b.Reset()
	b.WriteString("    # coalmine: the header the frontend hashes for stickiness and those its route\n")
	b.WriteString("    # lookups cover, as the lines below read them; coalmine checks the rollout against them.\n")
	fmt.Fprintf(&b, "    set-var %s str(|%s|)\n", userHeaderVar(rollout), user)
	fmt.Fprintf(&b, "    set-var %s str(|%s)\n", headersVar(rollout), strings.Join(append(names, ""), "|"))
	s.Global = b.String()

	b.Reset()
	fmt.Fprintf(&b, "    # coalmine rollout %q: canary weight (basis points) and stickiness salt.\n", rollout)
	fmt.Fprintf(&b, "    http-request set-var(%s) str(%s),map_str_int(%s,0)\n", v("w"), weightKey(rollout), mapFile)
	fmt.Fprintf(&b, "    http-request set-var(%s) str(%s),map_str_int(%s,0)\n", v("salt"), saltKey(rollout), mapFile)
	b.WriteString("    # The request's bucket in [0, 10000): a hash of the user's key and the salt, so a\n")
	b.WriteString("    # user stays on one version while the weight rises; random without the header.\n")
	if uh := user; uh != "" {
		fmt.Fprintf(&b, "    http-request set-var(%s) req.fhdr(%s,1),concat(/,%s),xxh32,mod(10000) if { req.fhdr(%s,1) -m found }\n", v("b"), uh, v("salt"), uh)
		fmt.Fprintf(&b, "    http-request set-var(%s) rand(10000) unless { var(%s) -m found }\n", v("b"), v("b"))
	} else {
		if userHeader != "" {
			fmt.Fprintf(&b, "    # User header %q cannot be read by these lines: only letters, digits, '-', '_' and '.'.\n", userHeader)
		}
		fmt.Fprintf(&b, "    http-request set-var(%s) rand(10000)\n", v("b"))
	}
	if len(names) > 0 {
		b.WriteString("    # Header routes: each lookup finds the route's order and target (low bit: 1 canary,\n")
		b.WriteString("    # 0 stable); the smallest wins, so the first route in the rollout's order decides.\n")
		fmt.Fprintf(&b, "    http-request set-var(%s) int(%d)\n", v("route"), noRoute)
		for _, h := range names {
			for _, l := range []struct{ input, conv, file string }{
				{exactInput(rollout, h), "map_str_int", mapFile},
				{prefixInput(rollout, h), "map_beg_int", mapFile},
				{regexInput(rollout, h), "map_reg_int", regexFile},
			} {
				fmt.Fprintf(&b, "    http-request set-var(%s) req.fhdr(%s,1),regsub(^,%s),%s(%s,%d)\n", v("t"), h, l.input, l.conv, l.file, noRoute)
				fmt.Fprintf(&b, "    http-request set-var(%s) var(%s) if { var(%s),sub(%s) -m int gt 0 }\n", v("route"), v("t"), v("route"), v("t"))
			}
		}
		fmt.Fprintf(&b, "    http-request set-var(%s) var(%s),and(1) if { var(%s) -m int lt %d }\n", v("to"), v("route"), v("route"), noRoute)
	}
	b.WriteString("    # Otherwise the canary iff bucket < weight.\n")
	fmt.Fprintf(&b, "    http-request set-var(%s) int(1) if !{ var(%s) -m found } { var(%s),sub(%s) -m int gt 0 }\n", v("to"), v("to"), v("w"), v("b"))
	b.WriteString("    # Where the frontend serves other sites too, add your own condition to both lines.\n")
	fmt.Fprintf(&b, "    use_backend %s if { var(%s) -m int 1 }\n", cfg.CanaryBackend, v("to"))
	fmt.Fprintf(&b, "    use_backend %s\n", cfg.StableBackend)
	s.Frontend = b.String()

	backend := func(name, role string) string {
		return fmt.Sprintf("backend %s\n"+
			"    # No servers here: coalmine adds one per %s endpoint at run time (`add server`),\n"+
			"    # and disables and deletes those that leave. Keep a balance algorithm that takes\n"+
			"    # servers at run time (roundrobin, the default, leastconn, random; not static-rr\n"+
			"    # or map-based hashing). Such servers take no default-server settings.\n", name, role)
	}
	s.StableBackend = backend(cfg.StableBackend, "stable")
	s.CanaryBackend = backend(cfg.CanaryBackend, "canary")
	return s
}
