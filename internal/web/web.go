// Package web is coalmine's dashboard: hand-written HTML, CSS and vanilla
// JavaScript embedded in the binary (no build step, nothing fetched at run
// time), served by the admin API at GET / and /ui/..., plus SeriesSource,
// which builds the per-version time series its charts draw.
//
// The page is a single document with hash routes (#/ is the list of
// rollouts, #/rollouts/NAME a rollout). Everything it shows comes from the
// admin API, with the same rules as the CLI:
//
//   - The static files are public: they are the same for everyone and hold
//     no data. Every /api/ call the page makes carries Authorization:
//     Bearer <token> when the operator entered one (kept in sessionStorage
//     for the tab's life, never in a URL, a cookie or localStorage).
//   - The live updates come from GET /api/v1/rollouts/{name}/watch read
//     with fetch and a ReadableStream, since EventSource cannot send the
//     Authorization header; the page reconnects with ?after=<last seq>.
//   - Responses carry a Content-Security-Policy that allows only the
//     page's own files (no inline script or style, no other origin, no
//     framing), X-Frame-Options: DENY and Referrer-Policy: no-referrer.
//     The script builds the page with DOM calls and textContent only, so
//     data from the API is never parsed as HTML.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is sent with every file of the dashboard: scripts,
// styles, images and connections to the page's own origin only, no inline
// code, no plugins, no framing, no form posts elsewhere.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes maps the extensions of the embedded files; anything else is
// not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// Handler serves the dashboard: GET / is the page and GET /ui/NAME the
// file static/NAME. Other paths, directories and unknown files answer 404.
// It is safe for concurrent use.
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic("web: embedded files missing: " + err.Error()) // a build mistake
	}
	return handler{files: files}
}

type handler struct{ files fs.FS }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := h.fileName(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	data, err := fs.ReadFile(h.files, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	hdr.Set("Content-Type", contentTypes[path.Ext(name)])
	// The files change with the binary only; revalidating is cheap.
	hdr.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data)
}

// fileName maps a request path to an embedded file: / is index.html and
// /ui/NAME is NAME, a plain file name with a known extension.
func (h handler) fileName(p string) (string, bool) {
	if p == "/" {
		return "index.html", true
	}
	name, ok := strings.CutPrefix(p, "/ui/")
	if !ok || name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, ".") || !fs.ValidPath(name) {
		return "", false
	}
	if _, known := contentTypes[path.Ext(name)]; !known {
		return "", false
	}
	return name, true
}
