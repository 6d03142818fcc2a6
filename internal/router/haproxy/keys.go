package haproxy

import (
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// The map's keys. Every key of a rollout starts with its name, so several
// rollouts can share one map file: "NAME:" for the control entries and
// "NAME/KIND/header=value" for the header routes. Rollout names are
// [a-z0-9-] and header names never hold '/', '=' or ':', so no key of one
// kind can be mistaken for another, or for a prefix of another (the prefix
// lookup sees every key of the map, and a key such as "shop:weight" must
// never be a prefix of a lookup such as "shop/prefix/x=...").
//
// Every value is an integer, because the frontend reads them with the
// *_int converters (HAProxy then refuses any other value).

func weightKey(rollout string) string     { return rollout + ":weight" }
func saltKey(rollout string) string       { return rollout + ":salt" }
func generationKey(rollout string) string { return rollout + ":generation" }

// routesPrefix starts every header-route key of the rollout in the main
// map; regexRoutesPrefix every key of its regex map.
func routesPrefix(rollout string) string      { return rollout + "/" }
func regexRoutesPrefix(rollout string) string { return "^" + rollout + "/regex/" }

// Lookup inputs: the frontend prepends these to a header's first value.
func exactInput(rollout, header string) string {
	return rollout + "/exact/" + strings.ToLower(header) + "="
}
func prefixInput(rollout, header string) string {
	return rollout + "/prefix/" + strings.ToLower(header) + "="
}
func regexInput(rollout, header string) string {
	return rollout + "/regex/" + strings.ToLower(header) + "="
}

// regexKey anchors the user's regex to the whole header value (RE2 full
// match, as the built-in proxy and Istio match), after the fixed part of
// the lookup input.
func regexKey(rollout, header, re string) string {
	return "^" + regexp.QuoteMeta(regexInput(rollout, header)) + "(?:" + re + ")$"
}

// noRoute is the frontend's "no header route matched" value; a route's
// value is below it. It bounds the number of header routes.
const noRoute = 1000000

// routeValue orders routes and names their target in one integer: the
// frontend keeps the smallest value any lookup found, so the first route
// in the rollout's order wins whatever kind of lookup found it, and the
// low bit says where it sends the request.
func routeValue(index int, to spec.Role) int {
	v := 2 * index
	if to == spec.RoleCanary {
		v++
	}
	return v
}

// salt is the per-revision stickiness salt: a new revision reshuffles
// which users see the canary first, as the built-in proxy does. It is a
// non-negative int32 so HAProxy's integer map values hold it everywhere.
func salt(rollout string, revision int64) int64 {
	h := fnv.New32a()
	h.Write([]byte(rollout))
	h.Write([]byte{'/'})
	h.Write([]byte(strconv.FormatInt(revision, 10)))
	return int64(h.Sum32() & math.MaxInt32)
}

// varName turns a rollout name into a part of an HAProxy variable name,
// which may only hold letters, digits, '.' and '_'. Rollout names are
// [a-z0-9-] and never hold '_', so the mapping is one to one.
func varName(rollout string) string { return strings.ReplaceAll(rollout, "-", "_") }

func txnVar(rollout, what string) string { return "txn.coalmine_" + varName(rollout) + "_" + what }

// headersVar is the process variable the global section sets to the
// header names the frontend's lookups cover, so coalmine can refuse a
// route on a header that HAProxy would never look at.
func headersVar(rollout string) string { return "proc.coalmine_" + varName(rollout) + "_headers" }

// userHeaderVar is the process variable that names the header the
// frontend hashes for stickiness, so coalmine can refuse to route a
// rollout whose user header is not the one haproxy.cfg reads.
func userHeaderVar(rollout string) string {
	return "proc.coalmine_" + varName(rollout) + "_user_header"
}

// validHeaderName accepts the header names the generated configuration can
// name: letters, digits, '-', '_' and '.', which covers real header names
// and keeps haproxy.cfg's own syntax ('#', ',', ')' and spaces) out.
func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validRollout checks a rollout name as spec validation does, because the
// name is spliced into keys, variable names and regexes.
func validRollout(r string) error {
	if r == "" || len(r) > 63 || r[0] == '-' || r[len(r)-1] == '-' {
		return fmt.Errorf("rollout name %q is not a valid name ([a-z0-9-], 1 to 63 characters, starting and ending with a letter or digit)", r)
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("rollout name %q may only contain lowercase letters, digits and '-'", r)
		}
	}
	return nil
}
