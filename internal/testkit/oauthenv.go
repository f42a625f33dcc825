package testkit

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/testkit/oauthserver"
)

// AppRedirect is the allowlisted redirect URL OAuthEnv registers.
const AppRedirect = "https://app.example.com/oauth/done"

// OAuthEnv is a Valetkey server whose catalog has a source "testoauth"
// backed by a real (fosite) authorization server, with the organization's
// OAuth app registered, and a test clock driving the refresh engine.
type OAuthEnv struct {
	AS    *oauthserver.Server
	S     *Server
	Clock *Clock
	// Browser follows no redirects: each hop is checked.
	Browser *http.Client
}

// NewOAuthEnv starts the pair on a database URL.
func NewOAuthEnv(t testing.TB, dbURL string, mutate ...func(*config.Config)) *OAuthEnv {
	t.Helper()
	as := oauthserver.New(t, oauthserver.Options{ClientAuth: "header", Scopes: []string{"read", "write"}})
	dir := WriteCatalogDir(t, OAuthSource{ShortName: "testoauth", AuthorizeURL: as.AuthorizeURL(), TokenURL: as.TokenURL(),
		RevokeURL: as.RevokeURL(), PKCE: true, Scopes: []string{"read"}, APIBaseURL: as.URL})
	clock := &Clock{}
	s := NewServer(t, dbURL, append([]func(*config.Config){func(c *config.Config) {
		c.CatalogDir = dir
		c.Clock = clock.Now
		c.RefreshRequestTimeout = 500 * time.Millisecond
		c.Refresh = refresh.Options{Backoff: 5 * time.Millisecond, Attempts: 3}
	}}, mutate...)...)
	as.SetRedirectURIs(s.URL + "/oauth/callback")
	r := s.Do(t, s.Key, "PUT", "/oauth-apps/testoauth", map[string]any{"client_id": "valetkey-client", "client_secret": "valetkey-secret",
		"redirect_url_allowlist": []string{AppRedirect}})
	if r.Status != 200 || strings.Contains(string(r.Body), "valetkey-secret") {
		t.Fatalf("register app: %d %s", r.Status, r.Body)
	}
	return &OAuthEnv{AS: as, S: s, Clock: clock, Browser: NoRedirectClient()}
}

// Get fetches a URL without following redirects.
func (e *OAuthEnv) Get(t testing.TB, u string) *http.Response {
	t.Helper()
	resp, err := e.Browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// Start creates a pending connection (redirect may be empty) and returns it.
func (e *OAuthEnv) Start(t testing.TB, redirect string) map[string]any {
	t.Helper()
	body := map[string]any{"name": "Test OAuth", "short_name": "testoauth"}
	if redirect != "" {
		body["redirect_url"] = redirect
	}
	r := e.S.Do(t, e.S.Key, "POST", "/source-connections", body)
	if r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	return r.Map(t)
}

// Connect runs the whole browser flow and returns the connection id.
func (e *OAuthEnv) Connect(t testing.TB) string {
	t.Helper()
	c := e.Start(t, AppRedirect+"?user=1")
	resp := e.Get(t, c["auth"].(map[string]any)["auth_url"].(string))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("auth_url answered %d", resp.StatusCode)
	}
	callback := e.AS.Consent(t, e.Browser, resp.Header.Get("Location"), true)
	if resp = e.Get(t, callback.String()); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback answered %d", resp.StatusCode)
	}
	return c["id"].(string)
}

// Token reads /token (with the refresh token) and returns the body.
func (e *OAuthEnv) Token(t testing.TB, id string) map[string]any {
	t.Helper()
	r := e.S.Do(t, e.S.Key, "GET", "/source-connections/"+id+"/token?include_refresh_token=true", nil)
	if r.Status != 200 {
		t.Fatalf("token: %d %s", r.Status, r.Body)
	}
	return r.Map(t)
}

// NoRedirectClient is an HTTP client that stops at every redirect, as a
// test that checks each hop of a browser flow needs.
func NoRedirectClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
