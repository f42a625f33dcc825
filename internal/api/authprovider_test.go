package api_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/testkit/pipedream"
)

const pdProject = "proj_JPsD74a"

// pipedreamEnv is a Valetkey server pointed at a Pipedream emulator, with
// a test clock for Valetkey's side.
type pipedreamEnv struct {
	pd    *pipedream.Emulator
	s     *testkit.Server
	clock *testkit.Clock
}

func newPipedreamEnv(t *testing.T, mutate ...func(*config.Config)) *pipedreamEnv {
	t.Helper()
	pd := pipedream.New(t, "pd-client-id-123", "LEAKCANARYPipedreamSecretQ7Z9")
	clock := &testkit.Clock{}
	s := testkit.NewServer(t, testkit.SQLiteURL(t), append([]func(*config.Config){func(c *config.Config) {
		c.PipedreamBaseURL = pd.URL
		c.Clock = clock.Now
		c.Providers.Backoff = 5 * time.Millisecond
	}}, mutate...)...)
	return &pipedreamEnv{pd: pd, s: s, clock: clock}
}

func (e *pipedreamEnv) register(t *testing.T) string {
	t.Helper()
	r := e.s.Do(t, e.s.Key, "POST", "/auth-providers", map[string]any{"name": "My Pipedream", "readable_id": "my-pipedream", "short_name": "pipedream",
		"auth_fields": map[string]any{"client_id": "pd-client-id-123", "client_secret": "LEAKCANARYPipedreamSecretQ7Z9"}})
	wantStatus(t, r, 200)
	return r.Map(t)["readable_id"].(string)
}

func notionCreds(access string) map[string]any {
	return map[string]any{"oauth_access_token": access, "oauth_refresh_token": "LEAKCANARYPdRefreshQ7Z9",
		"oauth_client_id": "notion-client", "oauth_client_secret": "LEAKCANARYNotionSecretQ7Z9"}
}

func TestPipedreamProvider(t *testing.T) {
	e := newPipedreamEnv(t)
	s := e.s
	exp := time.Now().Add(time.Hour).UTC()
	e.pd.AddAccount(pdProject, pipedream.Account{ID: "apn_good", Name: "Acme Notion", ExternalID: "user-1", AppSlug: "notion", Healthy: true,
		Credentials: notionCreds("LEAKCANARYPdAccessQ7Z9"), ExpiresAt: &exp})
	e.pd.AddAccount(pdProject, pipedream.Account{ID: "apn_default", AppSlug: "notion", Healthy: true})
	e.pd.AddAccount(pdProject, pipedream.Account{ID: "apn_slack", AppSlug: "slack", Healthy: true, Credentials: map[string]any{"oauth_access_token": "xoxb-1"}})
	e.pd.AddAccount(pdProject, pipedream.Account{ID: "apn_norefresh", AppSlug: "notion", Healthy: true, Credentials: map[string]any{"oauth_access_token": "a"}})
	e.pd.AddAccount(pdProject, pipedream.Account{ID: "apn_dead", AppSlug: "notion", Dead: true, Error: "token revoked by user", Credentials: notionCreds("x")})
	e.pd.AddAccount(pdProject, pipedream.Account{ID: "apn_dev", AppSlug: "notion", Healthy: true, Environment: "development", Credentials: notionCreds("dev-token")})

	t.Run("registration checks the client credentials", func(t *testing.T) {
		r := s.Do(t, s.Key, "POST", "/auth-providers", map[string]any{"name": "Wrong", "short_name": "pipedream",
			"auth_fields": map[string]any{"client_id": "pd-client-id-123", "client_secret": "wrong"}})
		wantLocs(t, r, "body.auth_fields")
		if !strings.Contains(string(r.Body), "Invalid Pipedream client credentials") {
			t.Fatalf("body = %s", r.Body)
		}
		wantLocs(t, s.Do(t, s.Key, "POST", "/auth-providers", map[string]any{"name": "Missing", "short_name": "pipedream",
			"auth_fields": map[string]any{"client_id": "x", "token": "y"}}), "body.auth_fields.client_secret", "body.auth_fields.token")
		wantLocs(t, s.Do(t, s.Key, "POST", "/auth-providers", map[string]any{"name": "Other", "short_name": "nango", "auth_fields": map[string]any{}}), "body.short_name")
	})
	rid := e.register(t)
	t.Run("views never show a secret", func(t *testing.T) {
		wantDetail(t, s.Do(t, s.Key, "POST", "/auth-providers", map[string]any{"name": "Again", "readable_id": "my-pipedream", "short_name": "pipedream",
			"auth_fields": map[string]any{"client_id": "pd-client-id-123", "client_secret": "LEAKCANARYPipedreamSecretQ7Z9"}}), 409,
			"Auth provider with readable_id 'my-pipedream' already exists")
		g := s.Do(t, s.Key, "GET", "/auth-providers/"+rid, nil).Map(t)
		if g["short_name"] != "pipedream" || g["masked_client_id"] != "pd-c********" {
			t.Fatalf("get = %v", g)
		}
		var list []map[string]any
		s.Do(t, s.Key, "GET", "/auth-providers", nil).JSON(t, &list)
		if len(list) != 1 {
			t.Fatalf("list = %v", list)
		}
		var kinds []map[string]any
		s.Do(t, s.Key, "GET", "/auth-providers/catalog", nil).JSON(t, &kinds)
		if len(kinds) != 2 || kinds[0]["short_name"] != "pipedream" || len(kinds[0]["config_fields"].([]any)) != 4 {
			t.Fatalf("catalog = %v", kinds)
		}
		wantDetail(t, s.Do(t, s.Key, "GET", "/auth-providers/nope", nil), 404, "Auth provider 'nope' not found")
		// PUT replaces the credentials, checked again.
		wantLocs(t, s.Do(t, s.Key, "PUT", "/auth-providers/"+rid, map[string]any{"auth_fields": map[string]any{"client_id": "pd-client-id-123", "client_secret": "wrong"}}), "body.auth_fields")
		r := s.Do(t, s.Key, "PUT", "/auth-providers/"+rid, map[string]any{"name": "Renamed Pipedream",
			"auth_fields": map[string]any{"client_id": "pd-client-id-123", "client_secret": "LEAKCANARYPipedreamSecretQ7Z9"}})
		wantStatus(t, r, 200)
		if r.Map(t)["name"] != "Renamed Pipedream" {
			t.Fatalf("put = %s", r.Body)
		}
		other := s.NewOrgKey(t, "other")
		wantDetail(t, s.Do(t, other, "GET", "/auth-providers/"+rid, nil), 404, "Auth provider '"+rid+"' not found")
	})

	create := func(account string, extra map[string]any) testkit.Response {
		cfg := map[string]any{"project_id": pdProject, "account_id": account}
		for k, v := range extra {
			cfg[k] = v
		}
		return s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Team Notion", "short_name": "notion",
			"auth_provider": rid, "auth_provider_config": cfg})
	}
	t.Run("seed errors at creation", func(t *testing.T) {
		wantDetail(t, create("apn_missing", nil), 404, "Account apn_missing not found in project "+pdProject)
		wantDetail(t, create("apn_slack", nil), 400, "Account apn_slack is not for app 'notion'")
		wantDetail(t, create("apn_default", nil), 400, "Credentials not available. Pipedream only exposes credentials for accounts created with custom OAuth clients, not default Pipedream OAuth.")
		wantDetail(t, create("apn_norefresh", nil), 400, "Missing required auth fields: refresh_token")
		wantDetail(t, create("apn_dead", nil), 400, "Pipedream reports account apn_dead as dead: token revoked by user")
		wantDetail(t, create("apn_dev", nil), 404, "Account apn_dev not found in project "+pdProject)
		wantLocs(t, create("apn_good", map[string]any{"colour": "red"}), "body.auth_provider_config.colour")
		wantLocs(t, create("nope", map[string]any{"environment": "staging"}), "body.auth_provider_config.account_id", "body.auth_provider_config.environment")
		wantLocs(t, s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Team Notion", "short_name": "notion",
			"auth_provider": rid, "auth_provider_config": map[string]any{"project_id": pdProject}}), "body.auth_provider_config.account_id")
		wantDetail(t, s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Team Notion", "short_name": "notion",
			"auth_provider": "nope", "auth_provider_config": map[string]any{}}), 404, "Auth provider 'nope' not found")
	})

	var id string
	t.Run("create and use", func(t *testing.T) {
		r := create("apn_good", map[string]any{"external_user_id": "user-1"})
		wantStatus(t, r, 200)
		c := r.Map(t)
		auth := c["auth"].(map[string]any)
		if auth["method"] != "auth_provider" || auth["provider_readable_id"] != rid || c["status"] != "active" || auth["authenticated"] != true {
			t.Fatalf("connection = %v", c)
		}
		id = c["id"].(string)
		reads := e.pd.AccountRequests()
		tok := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token?include_refresh_token=true", nil).Map(t)
		if tok["access_token"] != "LEAKCANARYPdAccessQ7Z9" || tok["refresh_token"] != "LEAKCANARYPdRefreshQ7Z9" || tok["token_type"] != "Bearer" {
			t.Fatalf("token = %v", tok)
		}
		if e.pd.LastEnvironment() != "production" {
			t.Errorf("x-pd-environment = %q", e.pd.LastEnvironment())
		}
		// Cached until expires_at - margin: Pipedream refreshed its copy, we still serve ours.
		e.pd.SetCredentials(pdProject, "apn_good", notionCreds("pipedream-refreshed"))
		s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil)
		if e.pd.AccountRequests() != reads+1 {
			t.Fatalf("account reads = %d, want one (the rest cached)", e.pd.AccountRequests()-reads)
		}
		e.clock.Advance(56 * time.Minute) // past expires_at - 5m: read again, never refresh ourselves
		if tok := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil).Map(t); tok["access_token"] != "pipedream-refreshed" {
			t.Fatalf("after expiry = %v", tok)
		}
		// The SDK's shape, in development.
		r = s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Dev Notion", "short_name": "notion",
			"authentication": map[string]any{"provider_readable_id": rid, "provider_config": map[string]any{"project_id": pdProject, "account_id": "apn_dev", "environment": "development"}}})
		wantStatus(t, r, 200)
		if e.pd.LastEnvironment() != "development" {
			t.Errorf("x-pd-environment = %q", e.pd.LastEnvironment())
		}
	})
	t.Run("a broken account makes the connection needs_reauth", func(t *testing.T) {
		e.pd.AddAccount(pdProject, pipedream.Account{ID: "apn_good", AppSlug: "notion", Dead: true, Error: "refresh failed at the provider", Credentials: notionCreds("x")})
		e.clock.Advance(2 * time.Hour)
		r := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil)
		wantDetail(t, r, 400, "Token refresh failed: Pipedream reports account apn_good as dead: refresh failed at the provider")
		if st := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t)["status"]; st != "needs_reauth" {
			t.Fatalf("status = %v", st)
		}
		e.pd.AddAccount(pdProject, pipedream.Account{ID: "apn_good", AppSlug: "notion", Healthy: true, Credentials: notionCreds("healthy-again")})
		if tok := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil).Map(t); tok["access_token"] != "healthy-again" {
			t.Fatalf("after recovery = %v", tok)
		}
		if st := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t)["status"]; st != "active" {
			t.Fatalf("status after recovery = %v", st)
		}
	})
	t.Run("rate limits and outages", func(t *testing.T) {
		reads := e.pd.AccountRequests()
		e.pd.FailAccountReads(1, 429, "1")
		if tok := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil); tok.Status != 200 || e.pd.AccountRequests()-reads != 2 {
			t.Fatalf("short Retry-After not waited out: %d, %d reads", tok.Status, e.pd.AccountRequests()-reads)
		}
		e.pd.FailAccountReads(-1, 429, "120")
		r := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil)
		if r.Status != 429 || r.Header.Get("Retry-After") != "120" {
			t.Fatalf("long Retry-After: %d %q", r.Status, r.Header.Get("Retry-After"))
		}
		e.pd.FailAccountReads(-1, 502, "")
		reads = e.pd.AccountRequests()
		r = s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil)
		if r.Status != 503 || r.Header.Get("Retry-After") == "" || e.pd.AccountRequests()-reads != 3 {
			t.Fatalf("5xx: %d, %d reads", r.Status, e.pd.AccountRequests()-reads)
		}
		e.pd.FailAccountReads(0, 0, "")
		if st := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t)["status"]; st != "active" {
			t.Fatalf("an outage changed the status: %v", st)
		}
	})
	t.Run("Valetkey's own Pipedream client rejected", func(t *testing.T) {
		e.pd.RejectClient(true)
		defer e.pd.RejectClient(false)
		e.clock.Advance(2 * time.Hour) // Valetkey's Pipedream token is due
		r := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil)
		wantStatus(t, r, 400)
		if d := r.Map(t)["detail"].(string); !strings.HasPrefix(d, "Failed to refresh token") || !strings.Contains(d, "Valetkey") {
			t.Fatalf("detail = %q", d)
		}
	})
	t.Run("delete", func(t *testing.T) {
		wantDetail(t, s.Do(t, s.Key, "DELETE", "/auth-providers/"+rid, nil), 409, "Auth provider '"+rid+"' is used by source connections; delete them first")
		var list []map[string]any
		s.Do(t, s.Key, "GET", "/source-connections", nil).JSON(t, &list)
		for _, c := range list {
			wantStatus(t, s.Do(t, s.Key, "DELETE", "/source-connections/"+c["id"].(string), nil), 200)
		}
		wantStatus(t, s.Do(t, s.Key, "DELETE", "/auth-providers/"+rid, nil), 200)
	})
	t.Run("no secret leaked", func(t *testing.T) {
		logs, bodies := s.Logs.String(), s.Bodies.String()
		for _, c := range []string{"LEAKCANARYPipedreamSecretQ7Z9", "LEAKCANARYPdAccessQ7Z9", "LEAKCANARYPdRefreshQ7Z9", "LEAKCANARYNotionSecretQ7Z9"} {
			if strings.Contains(logs, c) || strings.Contains(bodies, c) {
				t.Errorf("%s leaked (logs %v, bodies %v)", c, strings.Contains(logs, c), strings.Contains(bodies, c))
			}
		}
	})
}

// TestPipedreamTokenRenewedOnce: with a 2-second Pipedream token and a
// 1-second margin, 200 concurrent reads across the renewal point make
// exactly one new client_credentials request.
func TestPipedreamTokenRenewedOnce(t *testing.T) {
	e := newPipedreamEnv(t, func(c *config.Config) { c.Providers.TokenMargin = time.Second })
	e.pd.SetTokenLifetime(2 * time.Second)
	e.pd.AddAccount(pdProject, pipedream.Account{ID: "apn_good", AppSlug: "notion", Healthy: true, Credentials: notionCreds("a")}) // no expires_at: never cached
	rid := e.register(t)
	r := e.s.Do(t, e.s.Key, "POST", "/source-connections", map[string]any{"name": "Team Notion", "short_name": "notion",
		"auth_provider": rid, "auth_provider_config": map[string]any{"project_id": pdProject, "account_id": "apn_good"}})
	wantStatus(t, r, 200)
	id := r.Map(t)["id"].(string)
	before := e.pd.TokenRequests()
	e.clock.Advance(1500 * time.Millisecond) // inside the margin of the 2 s token
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := e.s.Do(t, e.s.Key, "GET", "/source-connections/"+id+"/token", nil).Status
			mu.Lock()
			statuses[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[200] != 200 {
		t.Fatalf("statuses = %v", statuses)
	}
	if got := e.pd.TokenRequests() - before; got != 1 {
		t.Fatalf("%d client_credentials requests during the burst, want exactly 1", got)
	}
}
