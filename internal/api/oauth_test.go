package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/testkit"
)

const appRedirect = testkit.AppRedirect

func newOAuthEnv(t *testing.T, dbURL string) *testkit.OAuthEnv { return testkit.NewOAuthEnv(t, dbURL) }

func TestOAuthBrowserFlowRoundTrip(t *testing.T) {
	for name, newURL := range testkit.DatabaseURLs() {
		t.Run(name, func(t *testing.T) {
			e := newOAuthEnv(t, newURL(t))
			c := e.Start(t, appRedirect+"?user=1")
			auth := c["auth"].(map[string]any)
			if c["status"] != "pending_auth" || auth["method"] != "oauth_browser" || auth["authenticated"] != false {
				t.Fatalf("pending connection = %v", c)
			}
			authURL, _ := auth["auth_url"].(string)
			if !strings.HasPrefix(authURL, e.S.URL+"/connect/oauth/") || auth["auth_url_expires"] == nil || auth["redirect_url"] != appRedirect+"?user=1" {
				t.Fatalf("auth = %v", auth)
			}
			id := c["id"].(string)

			// The auth URL sends the browser to the provider with state and PKCE.
			resp := e.Get(t, authURL)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("auth_url: %d", resp.StatusCode)
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			q := loc.Query()
			if !strings.HasPrefix(loc.String(), e.AS.AuthorizeURL()) || len(q.Get("state")) < 40 || q.Get("code_challenge_method") != "S256" ||
				q.Get("code_challenge") == "" || q.Get("scope") != "read" || q.Get("redirect_uri") != e.S.URL+"/oauth/callback" || q.Get("client_id") != "valetkey-client" {
				t.Fatalf("provider URL = %s", loc)
			}
			// Single use.
			if again := e.Get(t, authURL); again.StatusCode != http.StatusBadRequest {
				t.Fatalf("auth_url reused: %d", again.StatusCode)
			}

			callback := e.AS.Consent(t, e.Browser, loc.String(), true)
			resp = e.Get(t, callback.String())
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("callback: %d", resp.StatusCode)
			}
			back, _ := url.Parse(resp.Header.Get("Location"))
			if back.Scheme+"://"+back.Host+back.Path != appRedirect || back.Query().Get("user") != "1" ||
				back.Query().Get("status") != "success" || back.Query().Get("source_connection_id") != id {
				t.Fatalf("redirect back = %s", back)
			}
			// Replaying the callback is refused and changes nothing.
			if replay := e.Get(t, callback.String()); replay.StatusCode != http.StatusBadRequest {
				t.Fatalf("callback replay: %d", replay.StatusCode)
			}

			g := e.S.Do(t, e.S.Key, "GET", "/source-connections/"+id, nil).Map(t)
			if g["status"] != "active" || g["auth"].(map[string]any)["authenticated"] != true || g["auth"].(map[string]any)["expires_at"] == nil {
				t.Fatalf("after callback = %v", g)
			}
			tok := e.Token(t, id)
			first, firstRT := tok["access_token"].(string), tok["refresh_token"].(string)
			if !e.AS.AccessTokenActive(first) || !e.AS.RefreshTokenActive(firstRT) {
				t.Fatal("stored tokens are not the server's")
			}
			if e.AS.TokenRequests("authorization_code") != 1 || e.AS.TokenRequests("refresh_token") != 0 {
				t.Fatalf("token requests: code %d refresh %d", e.AS.TokenRequests("authorization_code"), e.AS.TokenRequests("refresh_token"))
			}

			// Expiry passes: the next use refreshes, with rotation.
			e.Clock.Advance(2 * time.Hour)
			tok = e.Token(t, id)
			second, secondRT := tok["access_token"].(string), tok["refresh_token"].(string)
			if second == first || secondRT == firstRT || e.AS.TokenRequests("refresh_token") != 1 {
				t.Fatalf("no rotation: refreshes %d", e.AS.TokenRequests("refresh_token"))
			}
			if e.AS.RefreshTokenActive(firstRT) {
				t.Fatal("the server still accepts the old refresh token")
			}
			if !e.AS.RefreshTokenActive(secondRT) || !e.AS.AccessTokenActive(second) {
				t.Fatal("the rotated tokens are not active")
			}
			// Fresh now: no second refresh.
			if again := e.Token(t, id); again["access_token"] != second || e.AS.TokenRequests("refresh_token") != 1 {
				t.Fatal("refreshed a fresh token")
			}
			// And again later: Valetkey keeps working on the rotated token.
			e.Clock.Advance(2 * time.Hour)
			third := e.Token(t, id)["access_token"].(string)
			if third == second || !e.AS.AccessTokenActive(third) || e.AS.TokenRequests("refresh_token") != 2 {
				t.Fatal("second refresh did not work")
			}
		})
	}
}

func TestOAuthFlowRejections(t *testing.T) {
	e := newOAuthEnv(t, testkit.SQLiteURL(t))
	s := e.S

	t.Run("no app for the source", func(t *testing.T) {
		wantStatus(t, s.Do(t, s.Key, "DELETE", "/oauth-apps/testoauth", nil), 204)
		wantDetail(t, s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "No App", "short_name": "testoauth"}), 400,
			"No OAuth client configured for source 'testoauth'")
		wantStatus(t, s.Do(t, s.Key, "PUT", "/oauth-apps/testoauth", map[string]any{"client_id": "valetkey-client", "client_secret": "valetkey-secret",
			"redirect_url_allowlist": []string{appRedirect}}), 200)
	})
	t.Run("app validation", func(t *testing.T) {
		wantDetail(t, s.Do(t, s.Key, "PUT", "/oauth-apps/nope", map[string]any{"client_id": "a", "client_secret": "b"}), 404, "Source 'nope' not found")
		wantDetail(t, s.Do(t, s.Key, "PUT", "/oauth-apps/stripe_x", map[string]any{"client_id": "a", "client_secret": "b"}), 404, "Source 'stripe_x' not found")
		wantLocs(t, s.Do(t, s.Key, "PUT", "/oauth-apps/testoauth", map[string]any{"client_id": "a"}), "body.client_secret")
		wantLocs(t, s.Do(t, s.Key, "PUT", "/oauth-apps/testoauth", map[string]any{"client_id": "a", "client_secret": "b",
			"redirect_url_allowlist": []string{"not a url"}}), "body.redirect_url_allowlist.0")
		var apps []map[string]any
		s.Do(t, s.Key, "GET", "/oauth-apps", nil).JSON(t, &apps)
		if len(apps) != 1 || apps[0]["client_id"] != "valetkey-client" || apps[0]["client_secret"] != nil {
			t.Fatalf("apps = %v", apps)
		}
	})
	t.Run("redirect not on the allowlist", func(t *testing.T) {
		for _, bad := range []string{"https://evil.example.com/oauth/done", "https://app.example.com/other", "http://app.example.com/oauth/done",
			"https://app.example.com:8443/oauth/done", "https://app.example.com/oauth/done/../../x", "javascript:alert(1)"} {
			wantLocs(t, s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Bad Redirect", "short_name": "testoauth", "redirect_url": bad}), "body.redirect_url")
		}
		wantLocs(t, s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Bad Redirect", "short_name": "testoauth",
			"authentication": map[string]any{"redirect_uri": "https://evil.example.com/"}}), "body.authentication.redirect_uri")
	})
	t.Run("declined consent", func(t *testing.T) {
		c := e.Start(t, appRedirect)
		resp := e.Get(t, c["auth"].(map[string]any)["auth_url"].(string))
		callback := e.AS.Consent(t, e.Browser, resp.Header.Get("Location"), false)
		resp = e.Get(t, callback.String())
		back, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || back.Query().Get("status") != "error" || back.Query().Get("error") != "access_denied" {
			t.Fatalf("declined: %d %s", resp.StatusCode, back)
		}
		if g := s.Do(t, s.Key, "GET", "/source-connections/"+c["id"].(string), nil).Map(t); g["status"] != "pending_auth" {
			t.Fatalf("declined connection status = %v", g["status"])
		}
		wantStatus(t, s.Do(t, s.Key, "GET", "/source-connections/"+c["id"].(string)+"/token", nil), 400)
	})
	t.Run("bad states", func(t *testing.T) {
		for _, q := range []string{"", "?code=x", "?code=x&state=unknown-state-value-123456789", "?error=access_denied&state=nope"} {
			resp := e.Get(t, s.URL+"/oauth/callback"+q)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("callback%s = %d", q, resp.StatusCode)
			}
		}
		if resp := e.Get(t, s.URL+"/connect/oauth/not-a-code"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("unknown auth code = %d", resp.StatusCode)
		}
	})
	t.Run("expired state", func(t *testing.T) {
		c := e.Start(t, appRedirect)
		resp := e.Get(t, c["auth"].(map[string]any)["auth_url"].(string))
		callback := e.AS.Consent(t, e.Browser, resp.Header.Get("Location"), true)
		e.Clock.Advance(11 * time.Minute)
		if resp := e.Get(t, callback.String()); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("expired state accepted: %d", resp.StatusCode)
		}
		if g := s.Do(t, s.Key, "GET", "/source-connections/"+c["id"].(string), nil).Map(t); g["status"] != "pending_auth" {
			t.Fatalf("expired flow stored something: %v", g["status"])
		}
		if e.AS.TokenRequests("authorization_code") != 0 {
			t.Fatal("an expired state reached the token endpoint")
		}
	})
	t.Run("expired auth url", func(t *testing.T) {
		c := e.Start(t, "")
		e.Clock.Advance(11 * time.Minute)
		if resp := e.Get(t, c["auth"].(map[string]any)["auth_url"].(string)); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("expired auth url: %d", resp.StatusCode)
		}
	})
	t.Run("no redirect url shows a page", func(t *testing.T) {
		c := e.Start(t, "")
		resp := e.Get(t, c["auth"].(map[string]any)["auth_url"].(string))
		callback := e.AS.Consent(t, e.Browser, resp.Header.Get("Location"), true)
		resp = e.Get(t, callback.String())
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
			t.Fatalf("callback without redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("bring your own client", func(t *testing.T) {
		r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "BYOC Conn", "short_name": "testoauth",
			"authentication": map[string]any{"client_id": "valetkey-client", "client_secret": "valetkey-secret", "redirect_uri": appRedirect}})
		wantStatus(t, r, 200)
		if m := r.Map(t)["auth"].(map[string]any)["method"]; m != "oauth_byoc" {
			t.Fatalf("method = %v", m)
		}
		if strings.Contains(string(r.Body), "valetkey-secret") {
			t.Fatal("client secret echoed")
		}
		wantLocs(t, s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "BYOC Half", "short_name": "testoauth",
			"authentication": map[string]any{"client_id": "only-id"}}), "body.authentication")
	})
}

func TestRefreshFailuresKeepTheCredential(t *testing.T) {
	e := newOAuthEnv(t, testkit.SQLiteURL(t))
	s := e.S
	id := e.Connect(t)
	tok := e.Token(t, id)
	orgID := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t)["organization_id"].(string)
	stored := func() []byte {
		c, err := s.App.Store.GetCredentialForConnection(context.Background(), orgID, id)
		if err != nil {
			t.Fatal(err)
		}
		return c.Ciphertext
	}
	status := func() string { return s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t)["status"].(string) }
	before := stored()
	e.Clock.Advance(2 * time.Hour)

	t.Run("server errors answer 503 and touch nothing", func(t *testing.T) {
		e.AS.FailTokenRequests(-1, 500, `{"error":"server_error"}`)
		defer e.AS.FailTokenRequests(0, 0, "")
		n := e.AS.TokenRequests("refresh_token")
		r := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil)
		wantStatus(t, r, 503)
		if r.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if got := e.AS.TokenRequests("refresh_token") - n; got != 3 {
			t.Errorf("%d attempts, want 3 (bounded retries)", got)
		}
		if status() != "active" || string(stored()) != string(before) {
			t.Fatal("a transient failure changed the connection or its credential")
		}
	})
	t.Run("timeouts answer 503 and touch nothing", func(t *testing.T) {
		e.AS.SetTokenDelay(5 * time.Second)
		defer e.AS.SetTokenDelay(0)
		r := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil)
		wantStatus(t, r, 503)
		if status() != "active" || string(stored()) != string(before) {
			t.Fatal("a timeout changed the connection or its credential")
		}
	})
	t.Run("429 is transient too", func(t *testing.T) {
		e.AS.FailTokenRequests(-1, 429, `{"error":"slow_down"}`)
		defer e.AS.FailTokenRequests(0, 0, "")
		wantStatus(t, s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil), 503)
		if status() != "active" {
			t.Fatal("429 marked the connection")
		}
	})
	t.Run("the provider back: refresh works with the kept token", func(t *testing.T) {
		got := e.Token(t, id)
		if got["access_token"] == tok["access_token"] || !e.AS.AccessTokenActive(got["access_token"].(string)) {
			t.Fatal("no working token after the outage")
		}
		before = stored()
	})
	t.Run("invalid_grant marks needs_reauth and keeps the credential", func(t *testing.T) {
		e.AS.RevokeRefreshTokens()
		e.Clock.Advance(2 * time.Hour)
		r := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil)
		wantStatus(t, r, 400)
		d, _ := r.Map(t)["detail"].(string)
		if !strings.HasPrefix(d, "Token refresh failed: invalid_grant: ") || !strings.Contains(d, "malformed or not valid") {
			t.Fatalf("detail = %q", d)
		}
		if status() != "needs_reauth" || string(stored()) != string(before) {
			t.Fatalf("status %s; credential changed %v", status(), string(stored()) != string(before))
		}
		if g := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t); g["auth"].(map[string]any)["authenticated"] != false {
			t.Fatal("needs_reauth connection claims to be authenticated")
		}
		n := e.AS.TokenRequests("refresh_token")
		wantStatus(t, s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil), 400)
		if e.AS.TokenRequests("refresh_token") != n {
			t.Fatal("a needs_reauth connection kept hitting the provider")
		}
	})
}

func TestExpiresInAsStringAndNonRotatingProviders(t *testing.T) {
	e := newOAuthEnv(t, testkit.SQLiteURL(t))
	e.AS.ExpiresInAsString(true)
	id := e.Connect(t)
	g := e.S.Do(t, e.S.Key, "GET", "/source-connections/"+id, nil).Map(t)
	if g["auth"].(map[string]any)["expires_at"] == nil {
		t.Fatal("expires_in as a string was not understood")
	}
	e.AS.OmitRefreshTokenOnRefresh(true)
	rt := e.Token(t, id)["refresh_token"]
	e.Clock.Advance(2 * time.Hour)
	after := e.Token(t, id)
	if after["refresh_token"] != rt || !e.AS.RefreshTokenActive(rt.(string)) {
		t.Fatal("a refresh response without refresh_token lost the stored one")
	}
	e.Clock.Advance(2 * time.Hour)
	if e.Token(t, id)["access_token"] == after["access_token"] || e.AS.TokenRequests("refresh_token") != 2 {
		t.Fatal("the kept refresh token did not work again")
	}
}

func TestDeleteRevokesAtTheProvider(t *testing.T) {
	e := newOAuthEnv(t, testkit.SQLiteURL(t))
	id := e.Connect(t)
	tok := e.Token(t, id)
	wantStatus(t, e.S.Do(t, e.S.Key, "DELETE", "/source-connections/"+id, nil), 200)
	if e.AS.RevokeRequests() != 1 || e.AS.RefreshTokenActive(tok["refresh_token"].(string)) || e.AS.AccessTokenActive(tok["access_token"].(string)) {
		t.Fatalf("revocations %d; tokens still active", e.AS.RevokeRequests())
	}
	if !strings.Contains(e.S.Logs.String(), "token revoked at the provider") {
		t.Error("revocation outcome not logged")
	}
}

func TestProactiveSweep(t *testing.T) {
	for name, newURL := range testkit.DatabaseURLs() {
		t.Run(name, func(t *testing.T) {
			e := newOAuthEnv(t, newURL(t))
			ids := []string{e.Connect(t), e.Connect(t), e.Connect(t)}
			res, err := e.S.App.Refresh.Sweep(context.Background(), refresh.SweepOptions{Window: 10 * time.Minute})
			if err != nil || res.Candidates != 0 {
				t.Fatalf("early sweep = %+v, %v", res, err)
			}
			e.Clock.Advance(55 * time.Minute) // within 10 minutes of the 1h expiry
			res, err = e.S.App.Refresh.Sweep(context.Background(), refresh.SweepOptions{Window: 10 * time.Minute, Concurrency: 2})
			if err != nil || res.Candidates != 3 || res.Refreshed != 3 || e.AS.TokenRequests("refresh_token") != 3 {
				t.Fatalf("sweep = %+v, %v; refreshes %d", res, err, e.AS.TokenRequests("refresh_token"))
			}
			res, _ = e.S.App.Refresh.Sweep(context.Background(), refresh.SweepOptions{Window: 10 * time.Minute})
			if res.Candidates != 0 {
				t.Fatalf("second sweep found %d", res.Candidates)
			}
			for _, id := range ids {
				if !e.AS.AccessTokenActive(e.Token(t, id)["access_token"].(string)) {
					t.Fatal("swept token does not work")
				}
			}
			if e.AS.TokenRequests("refresh_token") != 3 {
				t.Fatal("use after the sweep refreshed again")
			}
		})
	}
}

// TestForcedRefreshAfterProviderRejection: a consumer whose token the
// provider rejected (401) asks once with Force and the version it used; a
// second consumer with the same stale version gets the new token without a
// second refresh.
func TestForcedRefreshAfterProviderRejection(t *testing.T) {
	e := newOAuthEnv(t, testkit.SQLiteURL(t))
	id := e.Connect(t)
	orgID := e.S.Do(t, e.S.Key, "GET", "/source-connections/"+id, nil).Map(t)["organization_id"].(string)
	ctx := context.Background()
	f, err := e.S.App.Connections.Fresh(ctx, orgID, id, refresh.GetOptions{})
	if err != nil || e.AS.TokenRequests("refresh_token") != 0 {
		t.Fatalf("fresh = %v; refreshes %d", err, e.AS.TokenRequests("refresh_token"))
	}
	forced, err := e.S.App.Connections.Fresh(ctx, orgID, id, refresh.GetOptions{Force: true, SeenVersion: f.Version})
	if err != nil || e.AS.TokenRequests("refresh_token") != 1 || forced.Version <= f.Version ||
		forced.Payload.Fields["access_token"].Reveal() == f.Payload.Fields["access_token"].Reveal() {
		t.Fatalf("forced = v%d, %v; refreshes %d", forced.Version, err, e.AS.TokenRequests("refresh_token"))
	}
	again, err := e.S.App.Connections.Fresh(ctx, orgID, id, refresh.GetOptions{Force: true, SeenVersion: f.Version})
	if err != nil || e.AS.TokenRequests("refresh_token") != 1 || again.Payload.Fields["access_token"].Reveal() != forced.Payload.Fields["access_token"].Reveal() {
		t.Fatalf("second forced with a stale version refreshed again: refreshes %d", e.AS.TokenRequests("refresh_token"))
	}
	if !e.AS.AccessTokenActive(again.Payload.Fields["access_token"].Reveal()) {
		t.Fatal("forced token does not work")
	}
}

// TestOAuthSecretsNeverLeak extends the leak test to OAuth app secrets, a
// one-connection client secret, and tokens obtained through the flow.
func TestOAuthSecretsNeverLeak(t *testing.T) {
	e := newOAuthEnv(t, testkit.SQLiteURL(t))
	s := e.S
	const appSecret, byocSecret = "LEAKCANARYAppSecretQ7Z9", "LEAKCANARYByocSecretQ7Z9"
	wantStatus(t, s.Do(t, s.Key, "PUT", "/oauth-apps/asana", map[string]any{"client_id": "asana-id", "client_secret": appSecret}), 200)
	wantStatus(t, s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "BYOC Leak", "short_name": "testoauth",
		"authentication": map[string]any{"client_id": "x", "client_secret": byocSecret}}), 200)
	wantStatus(t, s.Do(t, s.Key, "PUT", "/oauth-apps/nope", map[string]any{"client_id": "x", "client_secret": appSecret}), 404)
	id := e.Connect(t)
	e.Clock.Advance(2 * time.Hour)
	tok := e.Token(t, id) // refreshes
	for _, p := range []string{"/oauth-apps", "/source-connections", "/source-connections/" + id} {
		wantStatus(t, s.Do(t, s.Key, "GET", p, nil), 200)
	}
	wantStatus(t, s.Do(t, s.Key, "DELETE", "/source-connections/"+id, nil), 200)
	canaries := []string{appSecret, byocSecret, "valetkey-secret", tok["access_token"].(string), tok["refresh_token"].(string)}
	logs, bodies := s.Logs.String(), s.Bodies.String()
	for _, c := range canaries {
		if strings.Contains(logs, c) {
			t.Errorf("%s in logs", c)
		}
		if strings.Contains(bodies, c) {
			t.Errorf("%s in a response body", c)
		}
	}
}

// TestAuditLog: credential creation, reads, refreshes, replacement and
// deletion are recorded with who and from where, and listed with filters.
func TestAuditLog(t *testing.T) {
	e := newOAuthEnv(t, testkit.SQLiteURL(t))
	s := e.S
	id := e.Connect(t)
	e.Token(t, id)
	e.Clock.Advance(2 * time.Hour)
	e.Token(t, id) // refreshes
	wantStatus(t, s.Do(t, s.Key, "PATCH", "/source-connections/"+id, map[string]any{"auth_fields": map[string]any{"access_token": "LEAKCANARYAuditQ7Z9"}}), 200)
	wantStatus(t, s.Do(t, s.Key, "DELETE", "/source-connections/"+id, nil), 200)
	var all []map[string]any
	s.Do(t, s.Key, "GET", "/audit?target_id="+id, nil).JSON(t, &all)
	var actions []string
	for i := len(all) - 1; i >= 0; i-- {
		actions = append(actions, all[i]["action"].(string))
	}
	want := "credential.create credential.read credential.refresh credential.read credential.replace credential.delete"
	if strings.Join(actions, " ") != want {
		t.Fatalf("audit actions = %v, want %s", actions, want)
	}
	for _, ev := range all {
		switch ev["action"] {
		case "credential.refresh":
			if ev["actor"] != "system:refresh" && !strings.HasPrefix(ev["actor"].(string), "api_key:") {
				t.Errorf("refresh actor = %v", ev["actor"])
			}
		case "credential.read", "credential.replace", "credential.delete":
			if !strings.HasPrefix(ev["actor"].(string), "api_key:") || ev["remote_addr"] == "" {
				t.Errorf("%v: actor %v remote %v", ev["action"], ev["actor"], ev["remote_addr"])
			}
		}
	}
	var reads []map[string]any
	s.Do(t, s.Key, "GET", "/audit?action=credential.read", nil).JSON(t, &reads)
	if len(reads) != 2 {
		t.Fatalf("reads = %d", len(reads))
	}
	var none []map[string]any
	s.Do(t, s.NewOrgKey(t, "other"), "GET", "/audit?target_id="+id, nil).JSON(t, &none)
	if len(none) != 0 {
		t.Fatal("another organization sees the audit log")
	}
	if strings.Contains(s.Bodies.String(), "LEAKCANARYAuditQ7Z9") {
		t.Fatal("a value reached a response")
	}
	metrics := string(s.Do(t, "", "GET", "/metrics", nil).Body)
	for _, want := range []string{`valetkey_refresh_total{outcome="refreshed"} 1`, `valetkey_token_reads_total 2`, `valetkey_refresh_total{outcome="needs_reauth"} 0`, `valetkey_sync_jobs{status="pending"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
