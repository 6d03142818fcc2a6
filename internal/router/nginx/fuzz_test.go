package nginx

import (
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
// names and values, regexes and hosts are the fuzzer's, with the fuzzer's
// state directory, and checks that NGINX would read the same directives
// in both include files as for harmless values, that each match reaches
// NGINX as exactly the pattern meant, and that the weight file path and
// the status file are the state directory's.
func FuzzRenderCannotInject(f *testing.F) {
	f.Add("shop", "v1", "X-User-Id", "X-Canary", "always", "beta", `v[0-9]+`, "testers", "canary.internal", "/etc/nginx/coalmine/shop.d")
	f.Add("a;b{c}", "v1\n}server{", "X-U", "X-H", "\"; } server { listen 1; #", "x\\\" y", `a"b';c\\n\$x{1}`, "r\n}\n", "h", "/a;b{}")
	f.Add("x", "v", "X", "X", "$host", "${x}", `(?P<host>.*)`, "#", "1.2.3.4", "/x/${y}")
	f.Add("é", "\x00", "X", "Y", "\t\r\n", "\\", `\\\"`, "\\", "h", "/s p\n")
	// Without a user header the file has no key map: it is another shape.
	want := map[bool][]string{}
	var wantLocation []string
	for _, userHeader := range []string{"X-U", ""} {
		br, err := Render(fuzzDesired("r", "v", userHeader, "X-H", "v", "v", "v", "n", "h"), "", "/s")
		if err != nil {
			f.Fatal(err)
		}
		bds, err := parseConf(string(br.Text))
		if err != nil {
			f.Fatal(err)
		}
		want[userHeader != ""] = skeleton(bds)
		lds, err := parseConf(string(br.Location))
		if err != nil {
			f.Fatal(err)
		}
		wantLocation = skeleton(lds)
	}
	f.Fuzz(func(t *testing.T, rollout, version, userHeader, headerName, exact, prefix, regex, routeName, host, stateDir string) {
		d := fuzzDesired(rollout, version, userHeader, headerName, exact, prefix, regex, routeName, host)
		r, err := Render(d, "", stateDir)
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
		lds, err := parseConf(string(r.Location))
		if err != nil {
			t.Fatalf("rendered location file does not parse: %v\n%s", err, r.Location)
		}
		if got := skeleton(lds); !slices.Equal(got, wantLocation) {
			t.Fatalf("the values changed the location file's structure:\n%s", r.Location)
		}
		id, _ := Identifier(rollout)
		if stateDir == "" {
			stateDir = DefaultStateDir("/etc/nginx/coalmine/" + id + ".conf")
		}
		for _, dv := range lds {
			if dv.words[0] == "if" {
				want := []string{"if", "(-f", stateDir + "/current/r${coalmine_" + id + "_b1}/${coalmine_" + id + "_b2})"}
				if !slices.Equal(dv.words, want) {
					t.Fatalf("weight check reads %q as NGINX parses it, want %q", dv.words, want)
				}
			}
		}
		var keys []string
		for _, dv := range ds {
			if len(dv.words) == 2 && strings.HasPrefix(dv.words[0], `~\A`) {
				keys = append(keys, dv.words[0])
			}
			if dv.words[0] == "alias" && dv.words[1] != stateDir+"/current/status.json" {
				t.Fatalf("status alias %q is not the state directory's", dv.words[1])
			}
			if dv.words[0] == "add_header" && (dv.words[1] != DigestHeader || dv.words[2] != r.Status.Digest) {
				t.Fatalf("status header %q is not the digest %s", dv.words, r.Status.Digest)
			}
		}
		re, _ := regexPattern(regex)
		wantKeys := []string{"~" + exactPattern(exact), "~" + prefixPattern(prefix), "~" + re}
		if !slices.Equal(keys, wantKeys) {
			t.Fatalf("map keys as NGINX reads them = %q, want %q", keys, wantKeys)
		}
	})
}
