package api

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/connection"
)

// oauthFlow serves the browser side of the OAuth flow: the one-time auth
// URL that sends the user to the provider, and the provider's callback.
// Neither takes an API key; both answer a page or a redirect to a URL that
// was checked against the organization's allowlist when the flow began.
type oauthFlow struct {
	conns *connection.Service
	log   *slog.Logger
}

var flowPage = template.Must(template.New("flow").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>`))

func writePage(w http.ResponseWriter, status int, title, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = flowPage.Execute(w, struct{ Title, Message string }{title, msg})
}

func (f *oauthFlow) fail(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := apperr.As(err); ok && (errors.Is(err, connection.ErrFlow) || e.Kind == apperr.KindBadRequest || e.Kind == apperr.KindNotFound) {
		writePage(w, http.StatusBadRequest, "Authorization failed", e.Msg)
		return
	}
	f.log.ErrorContext(r.Context(), "oauth flow failed", "route", routePattern(r), "error", err.Error())
	writePage(w, http.StatusInternalServerError, "Authorization failed", "Something went wrong on our side. Please try again.")
}

func (f *oauthFlow) authorize(w http.ResponseWriter, r *http.Request) {
	to, err := f.conns.Authorize(r.Context(), chi.URLParam(r, "code"))
	if err != nil {
		f.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, to, http.StatusFound)
}

func (f *oauthFlow) callback(w http.ResponseWriter, r *http.Request) {
	res, err := f.conns.Callback(r.Context(), r.URL.Query())
	if err != nil {
		f.fail(w, r, err)
		return
	}
	if res.RedirectURL != "" {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, res.RedirectURL, http.StatusFound)
		return
	}
	if res.Success {
		writePage(w, http.StatusOK, "Connected", "The account is connected. You can close this window.")
		return
	}
	writePage(w, http.StatusBadRequest, "Not connected", "The authorization did not complete ("+res.Error+"). You can close this window and try again.")
}
