package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/testkit"
)

// connectSession opens a Connect session through the native API and
// returns the whole token and the JWT inside it.
func connectSession(t *testing.T, s *testkit.Server, body map[string]any) (string, string, map[string]any) {
	t.Helper()
	r := s.Do(t, s.Key, "POST", "/connect/sessions", body)
	wantStatus(t, r, 200)
	m := r.Map(t)
	raw, err := base64.StdEncoding.DecodeString(m["token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var inner map[string]string
	if err := json.Unmarshal(raw, &inner); err != nil {
		t.Fatal(err)
	}
	return m["token"].(string), inner["token"], m
}

func TestConnectSessions(t *testing.T) {
	e := testkit.NewOAuthEnv(t, testkit.SQLiteURL(t))
	s := e.S
	s.Do(t, s.Key, "POST", "/collections", map[string]any{"name": "Widget", "readable_id": "widget-coll"})

	wantLocs(t, s.Do(t, s.Key, "POST", "/connect/sessions", map[string]any{"allowed_origin": "https://app.example.com/path",
		"allowed_sources": []string{"stripe", "nope"}, "collection": "missing", "redirect_url": "https://evil.example.com/x"}),
		"body.allowed_origin", "body.allowed_sources.1", "body.collection", "body.redirect_url")
	wantLocs(t, s.Do(t, s.Key, "POST", "/connect/sessions", map[string]any{"allowed_origin": "https://app.example.com;script-src *"}), "body.allowed_origin")
	wantStatus(t, s.Do(t, "", "POST", "/connect/sessions", map[string]any{}), 401)

	whole, jwt, m := connectSession(t, s, map[string]any{"collection": "widget-coll", "external_user_id": "user-7",
		"allowed_sources": []string{"stripe", "testoauth"}, "allowed_origin": "https://app.example.com", "redirect_url": testkit.AppRedirect})
	exp, _ := time.Parse(time.RFC3339, m["expires_at"].(string))
	if d := time.Until(exp); d < 15*time.Minute || d > 21*time.Minute {
		t.Fatalf("expires_at in %v", d)
	}
	u, _ := url.Parse(m["url"].(string))
	if u.Path != "/embedded-widget" || u.Query().Get("allowedOrigin") != "https://app.example.com" || u.Query().Get("token") != "" ||
		!strings.HasPrefix(u.Fragment, "token=") {
		t.Fatalf("url = %s (the token belongs in the fragment only)", m["url"])
	}
	if got, _ := url.QueryUnescape(strings.TrimPrefix(u.EscapedFragment(), "token=")); got != whole {
		t.Fatalf("fragment token differs from token")
	}

	// Branding shows in the session.
	wantLocs(t, s.Do(t, s.Key, "PUT", "/organization/branding", map[string]any{"display_name": "Acme", "accent_color": "red",
		"logo_url": "javascript:alert(1)"}), "body.accent_color", "body.logo_url")
	wantLocs(t, s.Do(t, s.Key, "PUT", "/organization/branding", map[string]any{"logo_url": "data:text/html;base64,PGgxPg=="}), "body.logo_url")
	wantStatus(t, s.Do(t, s.Key, "PUT", "/organization/branding", map[string]any{"display_name": "Acme Inc", "accent_color": "#0A7CFF",
		"logo_url": "data:image/svg+xml;base64,PHN2Zy8+"}), 200)
	if b := s.Do(t, s.Key, "GET", "/organization/branding", nil).Map(t); b["accent_color"] != "#0a7cff" || b["display_name"] != "Acme Inc" {
		t.Fatalf("branding = %v", b)
	}

	sess := bearer(t, s, jwt, "GET", "/api/v1/embedded/widget/session", nil)
	wantStatus(t, sess, 200)
	var ws struct {
		AllowedOrigin string `json:"allowed_origin"`
		RedirectURL   string `json:"redirect_url"`
		Organization  struct {
			Name, AccentColor, LogoURL string
		} `json:"organization"`
		Sources []struct {
			ShortName string `json:"short_name"`
			OAuth     bool   `json:"oauth"`
			Fields    []struct {
				Name   string `json:"name"`
				In     string `json:"in"`
				Secret bool   `json:"secret"`
			} `json:"fields"`
		} `json:"sources"`
	}
	sess.JSON(t, &ws)
	if ws.AllowedOrigin != "https://app.example.com" || ws.RedirectURL != testkit.AppRedirect || ws.Organization.Name != "Acme Inc" || len(ws.Sources) != 2 {
		t.Fatalf("session = %s", sess.Body)
	}
	for _, src := range ws.Sources {
		switch src.ShortName {
		case "stripe": // no Stripe OAuth app registered: its key form
			if src.OAuth || len(src.Fields) != 1 || src.Fields[0].Name != "api_key" || !src.Fields[0].Secret || src.Fields[0].In != "auth_fields" {
				t.Fatalf("stripe = %+v", src)
			}
		case "testoauth":
			if !src.OAuth {
				t.Fatalf("testoauth = %+v", src)
			}
		default:
			t.Fatalf("source %s is not allowed in this session", src.ShortName)
		}
	}

	// Operators and API keys don't use the widget routes.
	wantDetail(t, bearer(t, s, s.Key, "GET", "/api/v1/embedded/widget/session", nil), 403, "This route needs a widget token")

	// API-key source: a wrong key is a 422 naming the field; nothing stored.
	bad := bearer(t, s, jwt, "POST", "/api/v1/embedded/widget/connections", map[string]any{"short_name": "stripe", "auth_fields": map[string]any{"api_key": "not-a-key"}})
	wantLocs(t, bad, "body.auth_fields.api_key")
	wantDetail(t, bearer(t, s, jwt, "POST", "/api/v1/embedded/widget/connections", map[string]any{"short_name": "github", "auth_fields": map[string]any{"personal_access_token": "x"}}),
		403, "Source 'github' is not offered in this session")
	const key = "sk_test_WIDGETSECRET123"
	ok := bearer(t, s, jwt, "POST", "/api/v1/embedded/widget/connections", map[string]any{"short_name": "stripe", "auth_fields": map[string]any{"api_key": key}})
	wantStatus(t, ok, 200)
	stripeID := ok.Map(t)["connection"].(map[string]any)["id"].(string)
	conn := s.Do(t, s.Key, "GET", "/source-connections/"+stripeID, nil).Map(t)
	if conn["readable_collection_id"] != "widget-coll" || conn["status"] != "active" {
		t.Fatalf("connection = %v", conn)
	}

	// OAuth source: the auth URL leads through consent to the widget's done page.
	oa := bearer(t, s, jwt, "POST", "/api/v1/embedded/widget/connections", map[string]any{"short_name": "testoauth"})
	wantStatus(t, oa, 200)
	oauthID := oa.Map(t)["connection"].(map[string]any)["id"].(string)
	done := runConsent(t, e, oa.Map(t)["auth_url"].(string))
	if done.Path != "/embedded-widget/done" || done.Query().Get("status") != "success" || done.Query().Get("source_connection_id") != oauthID {
		t.Fatalf("landed on %s", done)
	}

	list := bearer(t, s, jwt, "GET", "/api/v1/embedded/widget/connections", nil)
	wantStatus(t, list, 200)
	if n := len(list.Map(t)["data"].([]any)); n != 2 {
		t.Fatalf("connections = %s", list.Body)
	}

	// Reconnect: a needs_reauth OAuth connection gets a new consent and is active again.
	s.SetStatus(t, oauthID, store.StatusNeedsReauth)
	before := e.Token(t, oauthID)["access_token"]
	re := bearer(t, s, jwt, "POST", "/api/v1/embedded/widget/connections/"+oauthID+"/reconnect", map[string]any{})
	wantStatus(t, re, 200)
	if done = runConsent(t, e, re.Map(t)["auth_url"].(string)); done.Query().Get("status") != "success" {
		t.Fatalf("reconnect landed on %s", done)
	}
	if c := s.Do(t, s.Key, "GET", "/source-connections/"+oauthID, nil).Map(t); c["status"] != "active" {
		t.Fatalf("after reconnect: %v", c)
	}
	if after := e.Token(t, oauthID)["access_token"]; after == before {
		t.Fatal("reconnect kept the old access token")
	}
	// Reconnect with fields replaces an API key.
	wantLocs(t, bearer(t, s, jwt, "POST", "/api/v1/embedded/widget/connections/"+stripeID+"/reconnect", map[string]any{"auth_fields": map[string]any{"api_key": "x"}}),
		"body.auth_fields.api_key")
	wantStatus(t, bearer(t, s, jwt, "POST", "/api/v1/embedded/widget/connections/"+stripeID+"/reconnect", map[string]any{"auth_fields": map[string]any{"api_key": key + "2"}}), 200)

	// A session of the same user that does not offer Stripe cannot reconnect it.
	_, onlyOAuth, _ := connectSession(t, s, map[string]any{"external_user_id": "user-7", "allowed_sources": []string{"testoauth"}, "allowed_origin": "https://app.example.com"})
	wantDetail(t, bearer(t, s, onlyOAuth, "POST", "/api/v1/embedded/widget/connections/"+stripeID+"/reconnect", map[string]any{"auth_fields": map[string]any{"api_key": key}}),
		403, "Source 'stripe' is not offered in this session")

	// Another end user's session sees none of it.
	_, other, _ := connectSession(t, s, map[string]any{"external_user_id": "user-8", "allowed_origin": "https://app.example.com"})
	if n := len(bearer(t, s, other, "GET", "/api/v1/embedded/widget/connections", nil).Map(t)["data"].([]any)); n != 0 {
		t.Fatalf("user-8 sees %d connections", n)
	}
	wantStatus(t, bearer(t, s, other, "POST", "/api/v1/embedded/widget/connections/"+stripeID+"/reconnect", map[string]any{}), 404)
	wantStatus(t, bearer(t, s, other, "DELETE", "/api/v1/integrations/sources/"+stripeID, nil), 404)
	wantStatus(t, bearer(t, s, jwt, "DELETE", "/api/v1/integrations/sources/"+stripeID, nil), 204)

	// CORS: the session's origin and Valetkey's own (the widget) only.
	wantStatus(t, bearer(t, s, jwt, "GET", "/api/v1/embedded/widget/connections", nil, "Origin", "https://evil.example.com"), 403)
	r := bearer(t, s, jwt, "GET", "/api/v1/embedded/widget/connections", nil, "Origin", "https://app.example.com")
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("allowed origin: %d %v", r.Status, r.Header)
	}
	wantStatus(t, bearer(t, s, jwt, "POST", "/api/v1/embedded/widget/connections", map[string]any{"short_name": "zzz"}, "Origin", s.URL), 404)

	for _, b := range []string{s.Bodies.String(), s.Logs.String()} {
		if strings.Contains(b, key) || strings.Contains(b, "WIDGETSECRET") {
			t.Fatal("an API key entered in the widget was echoed")
		}
	}
}

// runConsent follows a one-time auth URL through the authorization
// server's consent page and the callback; it returns where Valetkey sent the
// browser.
func runConsent(t *testing.T, e *testkit.OAuthEnv, authURL string) *url.URL {
	t.Helper()
	resp := e.Get(t, authURL)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("auth_url answered %d", resp.StatusCode)
	}
	callback := e.AS.Consent(t, e.Browser, resp.Header.Get("Location"), true)
	resp = e.Get(t, callback.String())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback answered %d", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestWidgetPageHeaders(t *testing.T) {
	s := testkit.NewServer(t, testkit.SQLiteURL(t))
	get := func(path string) *http.Response {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp
	}
	cases := []struct {
		path, ancestors string
	}{
		{"/embedded-widget?workspaceId=w&allowedOrigin=https%3A%2F%2Fapp.example.com", "frame-ancestors https://app.example.com"},
		{"/embedded-widget?workspaceId=w&allowedOrigin=https%3A%2F%2Fa.example%20https%3A%2F%2Fevil.example", "frame-ancestors 'none'"},
		{"/embedded-widget?workspaceId=w&allowedOrigin=not-an-origin", "frame-ancestors 'none'"},
		{"/embedded-widget?allowedOrigin=https%3A%2F%2Fapp.example.com%3B%20script-src%20*", "frame-ancestors 'none'"},
		{"/embedded-widget/done?status=success", "frame-ancestors 'none'"},
	}
	for _, c := range cases {
		resp := get(c.path)
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || !strings.HasSuffix(csp, c.ancestors) || !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: %d CSP %q", c.path, resp.StatusCode, csp)
		}
		if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", c.path, resp.Header)
		}
	}
	for path, typ := range map[string]string{"/embed.js": "text/javascript", "/embedded-widget/assets/widget.js": "text/javascript",
		"/embedded-widget/assets/widget.css": "text/css"} {
		if resp := get(path); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/embedded-widget/assets/../web.go", "/embedded-widget/assets/widget.html", "/embedded-widget/assets/x.js"} {
		if resp := get(path); resp.StatusCode != 404 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}
