// Package web serves the Connect widget: the page end users see
// (/embedded-widget), the page its OAuth popups land on
// (/embedded-widget/done), its assets, and /embed.js for host pages. The
// assets are compiled from ts/ by go generate and embedded in the binary, so
// the widget works offline and `go run` needs no Node.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/valetkey/valetkey/internal/embedded"
)

//go:generate sh -c "cd ts && npm ci --no-audit --no-fund && npx tsc -p ."

//go:embed assets
var assets embed.FS

// Paths the package serves.
const (
	WidgetPath = "/embedded-widget"
	AssetsPath = "/embedded-widget/assets/"
	EmbedPath  = "/embed.js"
)

// csp is the widget's Content-Security-Policy: scripts and styles from
// Valetkey only (no inline script), API calls to Valetkey only, images also
// from https/data: (the organization's logo), embeddable only by ancestors.
func csp(ancestors string) string {
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors " + ancestors
}

func page(w http.ResponseWriter, name, ancestors string) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp(ancestors))
	h.Set("Referrer-Policy", "no-referrer")
	// No Cross-Origin-Opener-Policy: the widget talks to its opener (embed.js
	// in popup mode) and the OAuth popup to the widget through window.opener,
	// which COOP would sever.
	if ancestors == "'none'" {
		h.Set("X-Frame-Options", "DENY")
	}
	serve(w, name, "text/html; charset=utf-8", "no-store")
}

// Widget serves the widget page. It may be framed only by the origin in
// its allowedOrigin parameter (a well-formed origin; anything else makes it
// unframeable); the session token, checked by the API, must name the same
// origin before the page talks to its embedder.
func Widget(w http.ResponseWriter, r *http.Request) {
	ancestors := "'none'"
	if o := r.URL.Query().Get("allowedOrigin"); embedded.IsOrigin(o) {
		ancestors = o
	}
	page(w, "widget.html", ancestors)
}

// Done serves the OAuth popup's landing page (never framed), at
// connection.WidgetDonePath, where the OAuth flow sends the browser.
func Done(w http.ResponseWriter, _ *http.Request) { page(w, "done.html", "'none'") }

var types = map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

// Asset serves the widget's scripts and styles.
func Asset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, AssetsPath)
	typ, ok := types[path.Ext(name)]
	if !ok || strings.Contains(name, "/") {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	serve(w, name, typ, "public, max-age=300")
}

// Embed serves /embed.js for host pages on any origin.
func Embed(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
	serve(w, "embed.js", types[".js"], "public, max-age=300")
}

// serve writes an embedded asset with its type and caching.
func serve(w http.ResponseWriter, name, typ, cache string) {
	b, err := fs.ReadFile(assets, "assets/"+name)
	if err != nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", typ)
	h.Set("Cache-Control", cache)
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}
