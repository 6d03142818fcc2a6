package nginx

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// fuzzDesired builds a Desired of a fixed shape whose every spec-taken
// string is one of the fuzzer's.
func fuzzDesired(rollout, version, userHeader, headerName, exact, prefix, regex, routeName, host string) router.Desired {
	return router.Desired{
		Rollout:    rollout,
		Revision:   -3,
		Generation: 9,
		Weight:     1234,
		Stable:     router.Target{Version: version, Endpoints: []string{"http://127.0.0.1:9001"}},
		Canary:     &router.Target{Version: version, Endpoints: []string{"http://" + host + ":9002"}},
		UserHeader: userHeader,
		HeaderRoutes: []spec.HeaderRoute{{Name: routeName, Match: []spec.HeaderMatch{
			{HeaderName: headerName, HeaderValue: spec.StringMatch{Exact: &exact}},
			{HeaderName: headerName, HeaderValue: spec.StringMatch{Prefix: &prefix}},
			{HeaderName: headerName, HeaderValue: spec.StringMatch{Regex: &regex}},
		}}},
	}
}

// FuzzRenderCannotInject renders Desireds whose names, versions, header
// names and values, regexes and hosts are the fuzzer's, and checks that
// NGINX would read the same directives as for harmless values, that each
// match reaches NGINX as exactly the pattern meant, and that the status
// answer stays coalmine's JSON.
func FuzzRenderCannotInject(f *testing.F) {
	f.Add("shop", "v1", "X-User-Id", "X-Canary", "always", "beta", `v[0-9]+`, "testers", "canary.internal")
	f.Add("a;b{c}", "v1\n}server{", "X-U", "X-H", "\"; } server { listen 1; #", "x\\\" y", `a"b';c\\n\$x{1}`, "r\n}\n", "h")
	f.Add("x", "v", "X", "X", "$host", "${x}", `(?P<host>.*)`, "#", "1.2.3.4")
	f.Add("é", "\x00", "X", "Y", "\t\r\n", "\\", `\\\"`, "\\", "h")
	// Without a user header the file has no key map: it is another shape.
	want := map[bool][]string{}
	for _, userHeader := range []string{"X-U", ""} {
		br, err := Render(fuzzDesired("r", "v", userHeader, "X-H", "v", "v", "v", "n", "h"), "")
		if err != nil {
			f.Fatal(err)
		}
		bds, err := parseConf(string(br.Text))
		if err != nil {
			f.Fatal(err)
		}
		want[userHeader != ""] = skeleton(bds)
	}
	f.Fuzz(func(t *testing.T, rollout, version, userHeader, headerName, exact, prefix, regex, routeName, host string) {
		d := fuzzDesired(rollout, version, userHeader, headerName, exact, prefix, regex, routeName, host)
		r, err := Render(d, "")
		if err != nil {
			return // refused: nothing reaches NGINX
		}
		ds, err := parseConf(string(r.Text))
		if err != nil {
			t.Fatalf("rendered file does not parse: %v\n%s", err, r.Text)
		}
		if got := skeleton(ds); !slices.Equal(got, want[userHeader != ""]) {
			t.Fatalf("the values changed the file's structure:\n%s", r.Text)
		}
		var keys []string
		for _, dv := range ds {
			if len(dv.words) == 2 && strings.HasPrefix(dv.words[0], `~\A`) {
				keys = append(keys, dv.words[0])
			}
			if dv.words[0] == "return" && dv.words[1] == "200" {
				var st Status
				if err := json.Unmarshal([]byte(dv.words[2]), &st); err != nil || st != r.Status {
					t.Fatalf("status answer %q is not the rendered status %+v (%v)", dv.words[2], r.Status, err)
				}
			}
		}
		re, _ := regexPattern(regex)
		wantKeys := []string{"~" + exactPattern(exact), "~" + prefixPattern(prefix), "~" + re}
		if !slices.Equal(keys, wantKeys) {
			t.Fatalf("map keys as NGINX reads them = %q, want %q", keys, wantKeys)
		}
	})
}
