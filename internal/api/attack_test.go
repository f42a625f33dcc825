package api_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/testkit"
)

// TestAttacks is the table of attacks tried through the HTTP API, each with
// its expected answer. (Timing-safe key comparison: a presented API key is
// looked up by its SHA-256, so the lookup time does not depend on how much
// of a stored key it matches; application secrets use subtle.ConstantTimeCompare.)
func TestAttacks(t *testing.T) {
	s := testkit.NewServer(t, testkit.SQLiteURL(t), func(c *config.Config) { c.AllowPrivateTargets = false })
	victimKey := s.NewOrgKey(t, "victim")
	victim := s.Do(t, victimKey, "POST", "/source-connections", map[string]any{"name": "Victim Stripe", "short_name": "stripe",
		"auth_fields": map[string]any{"api_key": "sk_live_VICTIMSECRET"}})
	wantStatus(t, victim, 200)
	victimID := victim.Map(t)["id"].(string)
	victimColl := victim.Map(t)["readable_collection_id"].(string)

	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	raw := func(method, path, body string, header ...string) testkit.Response {
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		req.Header.Set("X-API-Key", s.Key)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	}
	cases := []struct {
		name   string
		do     func() testkit.Response
		status int
		detail string // a substring of the body
	}{
		// Cross-tenant ids: another organization's objects are 404, as missing ones.
		{"read another org's connection", func() testkit.Response { return s.Do(t, s.Key, "GET", "/source-connections/"+victimID, nil) }, 404, "not found"},
		{"read another org's token", func() testkit.Response { return s.Do(t, s.Key, "GET", "/source-connections/"+victimID+"/token", nil) }, 404, "not found"},
		{"patch another org's connection", func() testkit.Response {
			return s.Do(t, s.Key, "PATCH", "/source-connections/"+victimID, map[string]any{"name": "x"})
		}, 404, "not found"},
		{"delete another org's connection", func() testkit.Response { return s.Do(t, s.Key, "DELETE", "/source-connections/"+victimID, nil) }, 404, "not found"},
		{"run another org's connection", func() testkit.Response { return s.Do(t, s.Key, "POST", "/source-connections/"+victimID+"/run", nil) }, 404, "not found"},
		{"execute on another org's connection", func() testkit.Response {
			return s.Do(t, s.Key, "POST", "/source-connections/"+victimID+"/execute", map[string]any{"entity": "customers", "action": "list"})
		}, 404, "not found"},
		{"another org's collection", func() testkit.Response { return s.Do(t, s.Key, "GET", "/collections/"+victimColl, nil) }, 404, "not found"},
		{"search another org's collection", func() testkit.Response {
			return s.Do(t, s.Key, "GET", "/collections/"+victimColl+"/search?query=a", nil)
		}, 404, "not found"},
		{"audit of another org's connection", func() testkit.Response { return s.Do(t, s.Key, "GET", "/audit?target_id="+victimID, nil) }, 200, "[]"},
		// Oversized, deep and malformed bodies.
		{"oversized body", func() testkit.Response {
			return raw("POST", "/collections", `{"name": "`+strings.Repeat("a", 2<<20)+`"}`)
		}, 413, ""},
		{"deeply nested JSON", func() testkit.Response { return raw("POST", "/collections", deep) }, 400, "exceeded max depth"},
		{"invalid UTF-8", func() testkit.Response { return raw("POST", "/collections", "{\"name\": \"bad \xff\xfe name\"}") }, 400, "not valid UTF-8"},
		// Text Postgres cannot store (NUL, invalid UTF-8) is refused on both backends alike.
		{"NUL in a JSON string", func() testkit.Response {
			return raw("POST", "/source-connections", `{"name": "Nul Stripe", "short_name": "stripe", "auth_fields": {"api_key": "sk_\u0000x"}}`)
		}, 422, `"loc":["body","auth_fields","api_key"]`},
		{"NUL in a query parameter", func() testkit.Response { return raw("GET", "/audit?actor=a%00b", "") }, 422, `"loc":["query","actor"]`},
		{"invalid UTF-8 in a query parameter", func() testkit.Response { return raw("GET", "/source-connections?collection=%FF", "") }, 422, `"loc":["query","collection"]`},
		{"invalid UTF-8 in a path", func() testkit.Response { return raw("GET", "/collections/a%FFb", "") }, 404, "Not Found"},
		{"NUL in a path", func() testkit.Response { return raw("DELETE", "/oauth-apps/a%00b", "") }, 404, "Not Found"},
		{"not JSON", func() testkit.Response {
			return raw("POST", "/collections", "name=x", "Content-Type", "application/x-www-form-urlencoded")
		}, 415, ""},
		// Header injection in redirect URLs.
		{"CRLF in a session redirect_url", func() testkit.Response {
			return s.Do(t, s.Key, "POST", "/connect/sessions", map[string]any{"redirect_url": "https://app.example.com/x\r\nSet-Cookie: a=b"})
		}, 422, "redirect_url"},
		{"CRLF in a connection redirect_url", func() testkit.Response {
			return s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Notion", "short_name": "notion", "redirect_url": "https://app.example.com/x\r\nLocation: https://evil.example"})
		}, 400, ""},
		{"CSP injection through allowed_origin", func() testkit.Response {
			return s.Do(t, s.Key, "POST", "/connect/sessions", map[string]any{"allowed_origin": "https://a.example; script-src *"})
		}, 422, "allowed_origin"},
		// SSRF through user-given URLs and host fields.
		{"webhook to loopback", func() testkit.Response {
			return s.Do(t, s.Key, "POST", "/webhooks", map[string]any{"url": "http://127.0.0.1:5432/", "events": []string{"sync.completed"}})
		}, 422, "url"},
		{"webhook to link-local metadata", func() testkit.Response {
			return s.Do(t, s.Key, "POST", "/webhooks", map[string]any{"url": "http://169.254.169.254/latest/meta-data/", "events": []string{"sync.completed"}})
		}, 422, "url"},
		{"subdomain field pointing elsewhere", func() testkit.Response {
			return s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Zendesk", "short_name": "zendesk", "config": map[string]any{"subdomain": "169.254.169.254/x?"},
				"auth_fields": map[string]any{"username": "a@b.c/token", "password": "p"}})
		}, 422, "subdomain"},
		{"logo_url with a script scheme", func() testkit.Response {
			return s.Do(t, s.Key, "PUT", "/organization/branding", map[string]any{"logo_url": "javascript:alert(1)"})
		}, 422, "logo_url"},
		// Path traversal in short names.
		{"traversal in GET /sources", func() testkit.Response { return s.Do(t, s.Key, "GET", "/sources/..%2F..%2Fetc%2Fpasswd", nil) }, 404, "not found"},
		{"traversal in a connection's short_name", func() testkit.Response {
			return s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Passwd", "short_name": "../../etc/passwd", "auth_fields": map[string]any{"api_key": "x"}})
		}, 404, "not found"},
		{"traversal in widget assets", func() testkit.Response { return raw("GET", "/embedded-widget/assets/..%2f..%2fweb.go", "") }, 404, ""},
		{"traversal in oauth-apps", func() testkit.Response {
			return s.Do(t, s.Key, "PUT", "/oauth-apps/..%2Fnotion", map[string]any{"client_id": "a", "client_secret": "b"})
		}, 404, ""},
		// Authentication.
		{"no key", func() testkit.Response { return s.Do(t, "", "GET", "/source-connections", nil) }, 401, ""},
		{"a key one character off", func() testkit.Response { return s.Do(t, s.Key[:len(s.Key)-1]+"x", "GET", "/source-connections", nil) }, 401, ""},
		{"alg none JWT on the embedded API", func() testkit.Response {
			return bearer(t, s, "eyJhbGciOiJub25lIn0.eyJvcmciOiJ4In0.", "GET", "/api/v1/workspaces", nil)
		}, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.do()
			if r.Status != c.status || !strings.Contains(string(r.Body), c.detail) {
				t.Fatalf("status %d, body %.300s; want %d containing %q", r.Status, r.Body, c.status, c.detail)
			}
			if bytes.Contains(r.Body, []byte("VICTIMSECRET")) {
				t.Fatal("another organization's secret leaked")
			}
		})
	}
	// Nothing happened to the victim's connection.
	if r := s.Do(t, victimKey, "GET", "/source-connections/"+victimID+"/token", nil); r.Status != 200 || !strings.Contains(string(r.Body), "VICTIMSECRET") {
		t.Fatalf("victim's token after the attacks: %d", r.Status)
	}
}

// TestRateLimitPerKey: each API key has its own bucket; the excess is 429
// with Retry-After, and other keys and public routes are unaffected.
func TestRateLimitPerKey(t *testing.T) {
	s := testkit.NewServer(t, testkit.SQLiteURL(t), func(c *config.Config) { c.RateLimit, c.RateBurst = 0.001, 3 })
	other := s.NewOrgKey(t, "other") // created outside the API: its bucket is untouched
	for i := 0; i < 3; i++ {
		wantStatus(t, s.Do(t, s.Key, "GET", "/collections", nil), 200)
	}
	r := s.Do(t, s.Key, "GET", "/collections", nil)
	wantDetail(t, r, 429, "Rate limit exceeded: retry later")
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After = %q", ra)
	}
	wantStatus(t, s.Do(t, other, "GET", "/collections", nil), 200)
	wantStatus(t, s.Do(t, "", "GET", "/healthz", nil), 200)
	// Bearer callers of the embedded API are limited the same way.
	for i := 0; i < 2; i++ {
		wantStatus(t, bearer(t, s, other, "GET", "/api/v1/workspaces", nil), 200)
	}
	wantStatus(t, bearer(t, s, other, "GET", "/api/v1/workspaces", nil), 429)
}

// TestAuditRetention: events older than VALETKEY_AUDIT_RETENTION are deleted.
func TestAuditRetention(t *testing.T) {
	clock := &testkit.Clock{}
	s := testkit.NewServer(t, testkit.SQLiteURL(t), func(c *config.Config) { c.AuditRetention, c.Clock = time.Hour, clock.Now })
	r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Stripe", "short_name": "stripe", "auth_fields": map[string]any{"api_key": "sk_test_RET"}})
	wantStatus(t, r, 200)
	id := r.Map(t)["id"].(string)
	wantStatus(t, s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil), 200)
	if n, err := s.App.PruneAudit(t.Context()); err != nil || n != 0 {
		t.Fatalf("fresh events pruned: %d, %v", n, err)
	}
	clock.Advance(2 * time.Hour)
	if n, err := s.App.PruneAudit(t.Context()); err != nil || n < 2 {
		t.Fatalf("pruned %d, %v; want the create and the read", n, err)
	}
	if body := strings.TrimSpace(string(s.Do(t, s.Key, "GET", "/audit?target_id="+id, nil).Body)); body != "[]" {
		t.Fatalf("audit after retention = %s", body)
	}
}
