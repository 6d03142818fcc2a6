package haproxy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// routeEntries are the header-route entries a Desired needs, each list in
// the order its lookup must try them.
type routeEntries struct {
	// exact are looked up in a tree: one value per key, the first route's.
	exact map[string]int
	// prefix and regex are looked up in a list that HAProxy walks in
	// order and answers with the first match, so they are kept in route
	// order: the first match is then the first route.
	prefix []kv
	regex  []kv
}

type kv struct {
	Key   string
	Value string
}

// buildRoutes turns header routes into map entries. declared holds the
// header names the frontend's lookups cover (nil: not known, not checked).
func buildRoutes(rollout string, routes []spec.HeaderRoute, declared map[string]bool) (routeEntries, error) {
	e := routeEntries{exact: map[string]int{}}
	if len(routes) >= noRoute/2 {
		return e, fmt.Errorf("%d header routes: the HAProxy router takes fewer than %d", len(routes), noRoute/2)
	}
	seenPrefix := map[string]bool{}
	seenRegex := map[string]bool{}
	for i, r := range routes {
		to := r.To
		if to == "" {
			to = spec.DefaultHeaderRouteTarget
		}
		if !to.Valid() {
			return e, fmt.Errorf("header route %q sends to %q: use canary or stable", r.Name, to)
		}
		if len(r.Match) == 0 {
			return e, fmt.Errorf("header route %q has no match", r.Name)
		}
		v := routeValue(i, to)
		for _, m := range r.Match {
			h := strings.ToLower(m.HeaderName)
			if !validHeaderName(h) {
				return e, fmt.Errorf("header route %q matches header %q: the HAProxy router takes header names of letters, digits, '-', '_' and '.'", r.Name, m.HeaderName)
			}
			if declared != nil && !declared[h] {
				return e, fmt.Errorf("header route %q matches header %q, which the frontend's lookups in haproxy.cfg do not cover: add it to the header names the HAProxy lines are generated for, paste the new lines and reload HAProxy", r.Name, m.HeaderName)
			}
			sm := m.HeaderValue
			n := 0
			for _, set := range []bool{sm.Exact != nil, sm.Prefix != nil, sm.Regex != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				return e, fmt.Errorf("header route %q, header %q: a value match needs exactly one of exact, prefix or regex; got %d", r.Name, m.HeaderName, n)
			}
			switch {
			case sm.Exact != nil:
				k := exactInput(rollout, h) + *sm.Exact
				if err := checkArg("header route "+strconv.Quote(r.Name)+" value", k); err != nil {
					return e, err
				}
				if old, ok := e.exact[k]; !ok || v < old {
					e.exact[k] = v
				}
			case sm.Prefix != nil:
				k := prefixInput(rollout, h) + *sm.Prefix
				if err := checkArg("header route "+strconv.Quote(r.Name)+" prefix", k); err != nil {
					return e, err
				}
				// A later route with the same prefix can never be the first
				// match; leaving it out keeps the list minimal.
				if !seenPrefix[k] {
					seenPrefix[k] = true
					e.prefix = append(e.prefix, kv{k, strconv.Itoa(v)})
				}
			case sm.Regex != nil:
				re := *sm.Regex
				// Alone first, as the built-in proxy does, so a pattern such
				// as "a)|(b" cannot escape the anchoring group.
				if _, err := regexp.Compile(re); err != nil {
					return e, fmt.Errorf("header route %q: regex %q: %w", r.Name, re, err)
				}
				k := regexKey(rollout, h, re)
				if _, err := regexp.Compile(k); err != nil {
					return e, fmt.Errorf("header route %q: regex %q: %w", r.Name, re, err)
				}
				if err := checkArg("header route "+strconv.Quote(r.Name)+" regex", k); err != nil {
					return e, err
				}
				if !seenRegex[k] {
					seenRegex[k] = true
					e.regex = append(e.regex, kv{k, strconv.Itoa(v)})
				}
			}
		}
	}
	return e, nil
}

// mapState is what a map holds for one rollout.
type mapState struct {
	all []mapEntry // the rollout's entries, in map order
}

func (m mapState) get(key string) (string, bool) {
	for _, e := range m.all {
		if e.Key == key {
			return e.Value, true
		}
	}
	return "", false
}

// ofRollout keeps the entries whose keys start with one of prefixes.
func ofRollout(entries []mapEntry, prefixes ...string) mapState {
	var m mapState
	for _, e := range entries {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Key, p) {
				m.all = append(m.all, e)
				break
			}
		}
	}
	return m
}

// setEntry makes key hold value: nothing when every copy already does,
// `set map` when the key exists (it sets every copy), `add map` otherwise.
func setEntry(file string, cur mapState, key, value string) []command {
	exists, same := false, true
	for _, e := range cur.all {
		if e.Key == key {
			exists = true
			same = same && e.Value == value
		}
	}
	subject := "map " + file
	switch {
	case exists && same:
		return nil
	case exists:
		return []command{{args: []string{"set", "map", file, key, value}, subject: subject, ok: emptyAnswer}}
	}
	return []command{{args: []string{"add", "map", file, key, value}, subject: subject, ok: emptyAnswer}}
}

func delKey(file, key string) command {
	return command{args: []string{"del", "map", file, key}, subject: "map " + file, ok: emptyAnswer}
}

func delRef(file, ref string) command {
	return command{args: []string{"del", "map", file, "#" + ref}, subject: "map " + file, ok: emptyAnswer}
}

// planExact makes the rollout's exact-route entries of the main map equal
// want: additions and changes first, deletions after, so no route is
// missing while it is being replaced.
func planExact(file string, cur mapState, rollout string, want map[string]int) (adds, dels []command) {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		adds = append(adds, setEntry(file, cur, k, strconv.Itoa(want[k]))...)
	}
	gone := map[string]bool{}
	for _, e := range cur.all {
		if strings.HasPrefix(e.Key, rollout+"/exact/") {
			if _, ok := want[e.Key]; !ok && !gone[e.Key] {
				gone[e.Key] = true
				dels = append(dels, delKey(file, e.Key))
			}
		}
	}
	return adds, dels
}

// planList makes the rollout's entries with keys starting with prefix, in
// a map HAProxy walks as a list, equal to want in that order. When they
// already are, it sends nothing; otherwise it appends the whole new list
// and then deletes each old entry by its id. No request meets a list
// missing a route of either state; while the old entries are deleted one
// by one, a request may still meet one of them first (it then routes as
// before the change).
func planList(file string, cur mapState, prefix string, want []kv) (adds, dels []command) {
	var have []mapEntry
	for _, e := range cur.all {
		if strings.HasPrefix(e.Key, prefix) {
			have = append(have, e)
		}
	}
	same := len(have) == len(want)
	for i := 0; same && i < len(want); i++ {
		same = have[i].Key == want[i].Key && have[i].Value == want[i].Value
	}
	if same {
		return nil, nil
	}
	for _, w := range want {
		adds = append(adds, command{args: []string{"add", "map", file, w.Key, w.Value}, subject: "map " + file, ok: emptyAnswer})
	}
	for _, h := range have {
		dels = append(dels, delRef(file, h.Ref))
	}
	return adds, dels
}
