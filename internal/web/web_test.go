package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/web"
)

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestServesTheFiles(t *testing.T) {
	h := web.Handler()
	for _, tt := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="/ui/app.js" defer></script>`},
		{"/ui/app.js", "text/javascript; charset=utf-8", "'use strict'"},
		{"/ui/style.css", "text/css; charset=utf-8", ":root"},
		{"/ui/favicon.svg", "image/svg+xml", "<svg"},
	} {
		rec := get(t, h, "GET", tt.path)
		if rec.Code != 200 {
			t.Errorf("GET %s: %d", tt.path, rec.Code)
			continue
		}
		hdr := rec.Header()
		if got := hdr.Get("Content-Type"); got != tt.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tt.path, got, tt.contentType)
		}
		if !strings.Contains(rec.Body.String(), tt.contains) {
			t.Errorf("GET %s: body lacks %q", tt.path, tt.contains)
		}
		for key, want := range map[string]string{
			"Content-Security-Policy": web.ContentSecurityPolicy,
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := hdr.Get(key); got != want {
				t.Errorf("GET %s: %s = %q, want %q", tt.path, key, got, want)
			}
		}
		head := get(t, h, "HEAD", tt.path)
		if head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Type") != tt.contentType {
			t.Errorf("HEAD %s: %d, %d bytes, %q", tt.path, head.Code, head.Body.Len(), head.Header().Get("Content-Type"))
		}
	}
}

func TestPolicyForbidsInlineCodeAndFraming(t *testing.T) {
	csp := web.ContentSecurityPolicy
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP lacks %q: %s", want, csp)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP allows %q: %s", bad, csp)
		}
	}
	// The files must work under it: no inline script, style or handler,
	// nothing loaded from another origin.
	page := get(t, web.Handler(), "GET", "/").Body.String()
	for _, re := range []string{`<script>`, `<script(?:\s[^>]*)?>[^<]+</script>`, `<style`, `\sstyle=`, `\son[a-z]+=`, `(?:src|href)="(?:https?:)?//`} {
		if regexp.MustCompile(re).MatchString(page) {
			t.Errorf("index.html matches %s, which the CSP forbids", re)
		}
	}
	js := get(t, web.Handler(), "GET", "/ui/app.js").Body.String()
	for _, bad := range []string{".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "new EventSource", "localStorage", "setAttribute('style'"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	if !strings.Contains(js, "sessionStorage") || !strings.Contains(js, "Authorization") || !strings.Contains(js, "getReader()") {
		t.Errorf("app.js does not keep the token in sessionStorage, send it as Authorization, or read the watch as a stream")
	}
}

func TestUnknownPathsAre404(t *testing.T) {
	h := web.Handler()
	for _, p := range []string{
		"/ui/", "/ui/nope.js", "/ui/index.html.bak", "/ui/static/app.js", "/ui/../web.go", "/ui/.hidden.js",
		"/index.html", "/app.js", "/ui/app.js/", "/ui/web.go", "/ui/README",
	} {
		rec := get(t, h, "GET", p)
		if rec.Code != 404 {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
		if rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: 404 without the CSP", p)
		}
	}
	rec := get(t, h, "POST", "/")
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d Allow %q, want 405 GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestPageLinksOnlyItsOwnFiles(t *testing.T) {
	h := web.Handler()
	page := get(t, h, "GET", "/").Body.String()
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(page, -1) {
		rec := get(t, h, "GET", m[1])
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != 200 || len(body) == 0 {
			t.Errorf("index.html links %s, which answers %d", m[1], rec.Code)
		}
	}
}
