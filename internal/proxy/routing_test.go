package proxy_test

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// assign sends one request per user with the user key header (plus extra
// headers) and returns which users the canary served. Every response must be
// a 200 from a real backend, and the proxy's version header must name it.
func assign(t *testing.T, g *rig, users int, extra string) []bool {
	t.Helper()
	canary := make([]bool, users)
	err := pipelined(g.addr, users, 16, func(i int) string {
		return fmt.Sprintf("X-User-ID: user-%d\r\n%s", i, extra)
	}, func(i int, resp *http.Response, body []byte) error {
		backend, version := resp.Header.Get(hdrBackend), resp.Header.Get(hdrVersion)
		if resp.StatusCode != http.StatusOK || backend == "" {
			return fmt.Errorf("user %d: status %d from backend %q, body %q", i, resp.StatusCode, backend, body)
		}
		if version != backend {
			return fmt.Errorf("user %d: %s says %q, but %q served", i, hdrVersion, version, backend)
		}
		if sc := resp.Header.Get("Set-Cookie"); sc != "" {
			return fmt.Errorf("user %d: a request with a user key got a subject cookie %q", i, sc)
		}
		canary[i] = backend == canaryVersion
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return canary
}

func share(canary []bool) float64 {
	n := 0
	for _, c := range canary {
		if c {
			n++
		}
	}
	return 100 * float64(n) / float64(len(canary))
}

func TestUserKeySplit(t *testing.T) {
	stable := newBackend(t, stableVersion, nil)
	canary := newBackend(t, canaryVersion, nil)
	r := rolloutSpec(t, []string{stable.url}, []string{canary.url}, func(s *spec.RolloutSpec) {
		s.TrafficRouting.Assignment.UserHeader = "X-User-ID"
		s.TrafficRouting.HeaderRoutes = []spec.HeaderRoute{{
			Name:  "internal",
			Match: []spec.HeaderMatch{{HeaderName: "X-Canary", HeaderValue: spec.StringMatch{Exact: ptr("true")}}},
			To:    spec.RoleCanary,
		}}
	})
	g := startProxy(t, r, tableConfig(r, 1000))
	const users = 20000

	at10 := assign(t, g, users, "")
	if s := share(at10); s < 9 || s > 11 {
		t.Fatalf("canary share at weight 10%% = %.2f%%, want 10 ± 1", s)
	}

	again := assign(t, g, users, "")
	moved := 0
	for i := range at10 {
		if at10[i] != again[i] {
			moved++
		}
	}
	if moved != 0 {
		t.Fatalf("%d of %d users changed version on a second pass at the same weight", moved, users)
	}

	g.setWeight(t, 3000)
	if gen, w, avail, err := g.p.Observed(g.name); err != nil || gen != g.table.Generation || w != 3000 || !avail {
		t.Fatalf("Observed = generation %d, weight %d, canaryAvailable %v, %v; want %d, 3000, true", gen, w, avail, err, g.table.Generation)
	}
	at30 := assign(t, g, users, "")
	if s := share(at30); s < 28.5 || s > 31.5 {
		t.Fatalf("canary share at weight 30%% = %.2f%%, want 30 ± 1.5", s)
	}
	back := 0
	for i := range at10 {
		if at10[i] && !at30[i] {
			back++
		}
	}
	if back != 0 {
		t.Fatalf("raising the weight from 10%% to 30%% moved %d users from canary back to stable", back)
	}

	// Weights 0 and 100 are exact by construction (bucket < weight), so a
	// quarter of the users is enough to show it end to end.
	g.setWeight(t, 0)
	if s := share(assign(t, g, users/4, "")); s != 0 {
		t.Fatalf("canary share at weight 0 = %.2f%%, want nobody", s)
	}

	g.setWeight(t, spec.MaxWeight)
	if s := share(assign(t, g, users/4, "")); s != 100 {
		t.Fatalf("canary share at weight 100%% = %.2f%%, want everybody", s)
	}

	g.setWeight(t, 0)
	if s := share(assign(t, g, 2000, "X-Canary: true\r\n")); s != 100 {
		t.Fatalf("canary share of requests matching the header route at weight 0 = %.2f%%, want 100%%", s)
	}
	if s := share(assign(t, g, 2000, "X-Canary: false\r\n")); s != 0 {
		t.Fatalf("canary share of requests not matching the header route at weight 0 = %.2f%%, want 0", s)
	}
}

var subjectCookie = regexp.MustCompile(`^coalmine_subject=([0-9a-f]{32})(;|$)`)

func TestCookieStickiness(t *testing.T) {
	stable := newBackend(t, stableVersion, nil)
	canary := newBackend(t, canaryVersion, nil)
	r := rolloutSpec(t, []string{stable.url}, []string{canary.url}, nil)
	g := startProxy(t, r, tableConfig(r, 2500))
	tr := newClient(64).Transport
	defer tr.(*http.Transport).CloseIdleConnections()

	// newUser is a browser: its own cookie jar over the shared transport.
	newUser := func() *http.Client {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Transport: tr, Jar: jar}
	}

	t.Run("set-cookie", func(t *testing.T) {
		res := get(t, newUser(), g.url+"/", nil)
		if res.status != http.StatusOK {
			t.Fatalf("status %d, body %q", res.status, res.body)
		}
		if res.version != res.backend || res.version == "" {
			t.Fatalf("%s = %q, but %q served", hdrVersion, res.version, res.backend)
		}
		cookies := res.header.Values("Set-Cookie")
		if len(cookies) != 1 {
			t.Fatalf("Set-Cookie = %q, want one subject cookie", cookies)
		}
		sc := cookies[0]
		if !subjectCookie.MatchString(sc) {
			t.Fatalf("Set-Cookie = %q, want coalmine_subject=<32 hex digits>", sc)
		}
		attrs := map[string]bool{}
		for _, a := range strings.Split(sc, ";")[1:] {
			attrs[strings.ToLower(strings.TrimSpace(a))] = true
		}
		if !attrs["httponly"] || !attrs["samesite=lax"] {
			t.Errorf("Set-Cookie = %q, want HttpOnly and SameSite=Lax", sc)
		}
		if attrs["secure"] {
			t.Errorf("Set-Cookie = %q has Secure on a plain HTTP listener", sc)
		}
		if strings.Contains(sc, stableVersion) || strings.Contains(sc, canaryVersion) {
			t.Errorf("Set-Cookie = %q names a version; it must hold only a subject id", sc)
		}
	})

	t.Run("sticky", func(t *testing.T) {
		seen := map[string]int{}
		for u := 0; u < 20; u++ {
			c := newUser()
			first := get(t, c, g.url+"/", nil)
			if first.status != http.StatusOK {
				t.Fatalf("user %d: status %d", u, first.status)
			}
			seen[first.backend]++
			for i := 1; i < 20; i++ {
				res := get(t, c, g.url+fmt.Sprintf("/page/%d", i), nil)
				if res.status != http.StatusOK || res.backend != first.backend || res.version != first.backend {
					t.Fatalf("user %d request %d: status %d from %q (header %q), first request went to %q",
						u, i, res.status, res.backend, res.version, first.backend)
				}
				if sc := res.header.Get("Set-Cookie"); sc != "" {
					t.Fatalf("user %d request %d: a request carrying the subject cookie got a new one: %q", u, i, sc)
				}
			}
		}
		t.Logf("20 sticky users: %v", seen)
	})

	t.Run("split", func(t *testing.T) {
		const users = 4000
		first := make([]string, users)
		err := parallel(users, 32, func(i int) error {
			c := newUser()
			a, err := tryGet(c, g.url+"/", nil)
			if err != nil {
				return err
			}
			b, err := tryGet(c, g.url+"/next", nil)
			if err != nil {
				return err
			}
			if a.status != http.StatusOK || b.status != http.StatusOK {
				return fmt.Errorf("user %d: status %d then %d", i, a.status, b.status)
			}
			if a.header.Get("Set-Cookie") == "" {
				return fmt.Errorf("user %d: a first request without a key got no subject cookie", i)
			}
			if a.backend != b.backend || a.version != a.backend || b.version != b.backend {
				return fmt.Errorf("user %d: first request served by %q (header %q), second by %q (header %q)",
					i, a.backend, a.version, b.backend, b.version)
			}
			first[i] = a.backend
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, v := range first {
			if v == canaryVersion {
				n++
			}
		}
		if s := 100 * float64(n) / users; s < 22.5 || s > 27.5 {
			t.Fatalf("canary share of %d new users at weight 25%% = %.2f%%, want 25 ± 2.5", users, s)
		}
	})
}
