package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/testkit/composio"
)

func TestComposioProvider(t *testing.T) {
	const apiKey = "LEAKCANARYComposioKeyQ7Z9"
	co := composio.New(t, apiKey)
	s := testkit.NewServer(t, testkit.SQLiteURL(t), func(c *config.Config) {
		c.ComposioBaseURL = co.URL
		c.Providers.Backoff = 5 * time.Millisecond
	})
	co.AddAccount(composio.Account{ID: "ca_good", ToolkitSlug: "notion", AuthConfigID: "ac_own",
		Val: map[string]any{"access_token": "LEAKCANARYCoAccessQ7Z9", "refresh_token": "LEAKCANARYCoRefreshQ7Z9", "expires_in": 3600}})
	co.AddAccount(composio.Account{ID: "ca_expired", ToolkitSlug: "notion", AuthConfigID: "ac_own", Status: "EXPIRED",
		Val: map[string]any{"access_token": "x", "refresh_token": "y"}})
	co.AddAccount(composio.Account{ID: "ca_managed", ToolkitSlug: "notion", AuthConfigID: "ac_managed", ComposioManaged: true,
		Val: map[string]any{"access_token": "real", "refresh_token": "real"}})
	co.AddAccount(composio.Account{ID: "ca_github", ToolkitSlug: "github", AuthConfigID: "ac_own", Val: map[string]any{"access_token": "gh"}})
	co.AddAccount(composio.Account{ID: "ca_stripe", ToolkitSlug: "stripe", AuthConfigID: "ac_stripe", AuthScheme: "API_KEY",
		Val: map[string]any{"api_key": "sk_test_composio"}})

	r := s.Do(t, s.Key, "POST", "/auth-providers", map[string]any{"name": "Bad Composio", "short_name": "composio", "auth_fields": map[string]any{"api_key": "wrong"}})
	wantLocs(t, r, "body.auth_fields.api_key")
	if !strings.Contains(string(r.Body), "Invalid Composio API key") {
		t.Fatalf("body = %s", r.Body)
	}
	r = s.Do(t, s.Key, "POST", "/auth-providers", map[string]any{"name": "My Composio", "short_name": "composio", "auth_fields": map[string]any{"api_key": apiKey}})
	wantStatus(t, r, 200)
	rid := r.Map(t)["readable_id"].(string)
	if !strings.HasPrefix(rid, "my-composio-") {
		t.Fatalf("generated readable_id = %q", rid)
	}

	create := func(short, ac, ca string) testkit.Response {
		return s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Composio Conn", "short_name": short,
			"authentication": map[string]any{"provider_readable_id": rid, "provider_config": map[string]any{"auth_config_id": ac, "account_id": ca}}})
	}
	wantDetail(t, create("notion", "ac_own", "ca_expired"), 400, "Composio account ca_expired is EXPIRED")
	wantDetail(t, create("notion", "ac_managed", "ca_managed"), 400, "Credentials not available: auth config ac_managed is managed by Composio; use your own OAuth app in Composio")
	wantDetail(t, create("notion", "ac_own", "ca_github"), 400, "Account ca_github is not for app 'notion'")
	wantDetail(t, create("notion", "ac_own", "ca_missing"), 404, "Account ca_missing not found for auth config ac_own")
	wantLocs(t, create("notion", "nope", "ca_good"), "body.authentication.provider_config.auth_config_id")
	if q := co.LastQuery(); q.Get("toolkit_slugs") != "notion" || q.Get("auth_config_ids") != "ac_own" {
		t.Fatalf("list filters = %v", q)
	}

	r = create("notion", "ac_own", "ca_good")
	wantStatus(t, r, 200)
	id := r.Map(t)["id"].(string)
	tok := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token?include_refresh_token=true", nil).Map(t)
	if tok["access_token"] != "LEAKCANARYCoAccessQ7Z9" || tok["refresh_token"] != "LEAKCANARYCoRefreshQ7Z9" {
		t.Fatalf("token = %v", tok)
	}
	r = create("stripe", "ac_stripe", "ca_stripe")
	wantStatus(t, r, 200)
	if tok := s.Do(t, s.Key, "GET", "/source-connections/"+r.Map(t)["id"].(string)+"/token", nil).Map(t); tok["api_key"] != "sk_test_composio" {
		t.Fatalf("api key token = %v", tok)
	}
	// Composio refreshed its copy: the next read (no expiry known, so no cache) sees it.
	co.SetVal("ca_good", map[string]any{"access_token": "refreshed-by-composio", "refresh_token": "r2"})
	if tok := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil).Map(t); tok["access_token"] != "refreshed-by-composio" {
		t.Fatalf("after Composio refresh = %v", tok)
	}
	co.SetStatus("ca_good", "EXPIRED")
	wantDetail(t, s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil), 400, "Composio account ca_good is EXPIRED")
	co.FailRequests(-1, 503, "")
	r = s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("outage: %d", r.Status)
	}
	co.FailRequests(0, 0, "")

	logs, bodies := s.Logs.String(), s.Bodies.String()
	for _, c := range []string{apiKey, "LEAKCANARYCoAccessQ7Z9", "LEAKCANARYCoRefreshQ7Z9"} {
		if strings.Contains(logs, c) || strings.Contains(bodies, c) {
			t.Errorf("%s leaked", c)
		}
	}
}
