// Package docs serves the API reference page at /docs from assets embedded in
// the binary (Swagger UI), so it works with no internet access.
package docs

import (
	"embed"
	"net/http"
)

//go:embed index.html init.js third_party/swagger-ui/swagger-ui-bundle.js third_party/swagger-ui/swagger-ui.css
var assets embed.FS

// Handler serves /docs and /docs/assets/*.
func Handler() http.Handler {
	mux := http.NewServeMux()
	serve := func(name, ctype string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := assets.ReadFile(name)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
			w.Header().Set("Cache-Control", "public, max-age=3600")
			_, _ = w.Write(b)
		}
	}
	mux.Handle("GET /docs", serve("index.html", "text/html; charset=utf-8"))
	mux.Handle("GET /docs/assets/init.js", serve("init.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /docs/assets/swagger-ui-bundle.js", serve("third_party/swagger-ui/swagger-ui-bundle.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /docs/assets/swagger-ui.css", serve("third_party/swagger-ui/swagger-ui.css", "text/css; charset=utf-8"))
	return mux
}
