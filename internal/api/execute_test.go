package api_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/testkit/github"
	"github.com/valetkey/valetkey/internal/testkit/hubspot"
	"github.com/valetkey/valetkey/internal/testkit/oauthserver"
	"github.com/valetkey/valetkey/internal/testkit/pipedream"
)

// execEnv runs the built-in HubSpot and GitHub definitions (their real
// paths) against emulators that accept only tokens the test authorization
// server issued and the test has not rejected.
type execEnv struct {
	as      *oauthserver.Server
	s       *testkit.Server
	hs      *hubspot.Emulator
	gh      *github.Emulator
	browser *testkit.OAuthEnv
	pd      *pipedream.Emulator

	mu       sync.Mutex
	rejected map[string]bool
	extra    map[string]bool
}

func (e *execEnv) valid(tok string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rejected[tok] {
		return false
	}
	return e.extra[tok] || e.as.AccessTokenActive(tok)
}

// builtinWithEndpoints copies a built-in source definition, pointing its
// OAuth endpoints at the test server and its API at an emulator.
func builtinWithEndpoints(t *testing.T, dir, name, authorize, token, apiBase string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "catalog", "sources", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		trim := strings.TrimSpace(line)
		indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
		switch {
		case strings.HasPrefix(trim, "authorize_url:"):
			line = indent + "authorize_url: " + authorize
		case strings.HasPrefix(trim, "token_url:"):
			line = indent + "token_url: " + token
		case strings.HasPrefix(trim, "revoke_url:"):
			line = indent + `revoke_url: ""`
		case strings.HasPrefix(trim, "scopes:"):
			line = indent + "scopes: [read]"
		case strings.HasPrefix(trim, "base_url:"):
			line = indent + "base_url: " + apiBase
		case strings.HasPrefix(trim, "client_auth:"):
			line = indent + "client_auth: header"
		}
		out = append(out, line)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newExecEnv(t *testing.T) *execEnv { return newExecEnvOn(t, testkit.SQLiteURL(t)) }

func newExecEnvOn(t *testing.T, dbURL string, mutate ...func(*config.Config)) *execEnv {
	t.Helper()
	e := &execEnv{rejected: map[string]bool{}, extra: map[string]bool{}}
	e.as = oauthserver.New(t, oauthserver.Options{ClientAuth: "header", Scopes: []string{"read"}})
	e.hs = hubspot.New(t, e.valid)
	e.gh = github.New(t, e.valid)
	dir := t.TempDir()
	builtinWithEndpoints(t, dir, "hubspot", e.as.AuthorizeURL(), e.as.TokenURL(), e.hs.URL)
	builtinWithEndpoints(t, dir, "github", e.as.AuthorizeURL(), e.as.TokenURL(), e.gh.URL)
	e.pd = pipedream.New(t, "pd-client", "pd-secret")
	e.s = testkit.NewServer(t, dbURL, append([]func(*config.Config){func(c *config.Config) {
		c.CatalogDir = dir
		c.PipedreamBaseURL = e.pd.URL
		c.Refresh = refresh.Options{Backoff: 5 * time.Millisecond}
	}}, mutate...)...)
	e.as.SetRedirectURIs(e.s.URL + "/oauth/callback")
	e.browser = &testkit.OAuthEnv{AS: e.as, S: e.s, Clock: &testkit.Clock{}, Browser: testkit.NoRedirectClient()}
	for _, src := range []string{"hubspot", "github"} {
		wantStatus(t, e.s.Do(t, e.s.Key, "PUT", "/oauth-apps/"+src, map[string]any{"client_id": "valetkey-client", "client_secret": "valetkey-secret"}), 200)
	}
	return e
}

// connect runs the browser flow for a source and returns the connection id.
func (e *execEnv) connect(t *testing.T, src string) string {
	t.Helper()
	r := e.s.Do(t, e.s.Key, "POST", "/source-connections", map[string]any{"name": "Exec " + src, "short_name": src})
	wantStatus(t, r, 200)
	c := r.Map(t)
	resp := e.browser.Get(t, c["auth"].(map[string]any)["auth_url"].(string))
	e.browser.Get(t, e.as.Consent(t, e.browser.Browser, resp.Header.Get("Location"), true).String())
	return c["id"].(string)
}

func (e *execEnv) exec(t *testing.T, id, entity, action string, params map[string]any) testkit.Response {
	t.Helper()
	return e.s.Do(t, e.s.Key, "POST", "/source-connections/"+id+"/execute", map[string]any{"entity": entity, "action": action, "params": params})
}

func TestExecuteHubSpot(t *testing.T) {
	e := newExecEnv(t)
	e.hs.Seed("contacts", 250)
	id := e.connect(t, "hubspot")

	// Walk every page of contacts.
	seen := map[string]bool{}
	var cursor any
	for page := 0; page < 10; page++ {
		params := map[string]any{"limit": 100}
		if cursor != nil {
			params["cursor"] = cursor
		}
		r := e.exec(t, id, "contacts", "list", params)
		wantStatus(t, r, 200)
		m := r.Map(t)
		for _, rec := range m["result"].([]any) {
			seen[rec.(map[string]any)["id"].(string)] = true
		}
		cursor = m["connector_metadata"].(map[string]any)["pagination"].(map[string]any)["cursor"]
		if cursor == nil {
			break
		}
	}
	if len(seen) != 250 {
		t.Fatalf("paged %d contacts, want 250", len(seen))
	}

	r := e.exec(t, id, "contacts", "create", map[string]any{"properties": map[string]any{"email": "new@example.com", "firstname": "New"}})
	wantStatus(t, r, 200)
	newID := r.Map(t)["result"].(map[string]any)["id"].(string)
	wantStatus(t, e.exec(t, id, "contacts", "update", map[string]any{"id": newID, "properties": map[string]any{"lastname": "Person"}}), 200)
	if v, _ := e.hs.Property("contacts", newID, "lastname"); v != "Person" {
		t.Fatalf("update did not reach HubSpot: %q", v)
	}
	g := e.exec(t, id, "contacts", "get", map[string]any{"id": newID})
	wantStatus(t, g, 200)
	r = e.exec(t, id, "contacts", "search", map[string]any{"filterGroups": []any{map[string]any{"filters": []any{
		map[string]any{"propertyName": "email", "operator": "EQ", "value": "new@example.com"}}}}})
	wantStatus(t, r, 200)
	if res := r.Map(t)["result"].([]any); len(res) != 1 {
		t.Fatalf("search found %d", len(res))
	}

	// Errors.
	wantLocs(t, e.exec(t, id, "contacts", "get", nil), "body.params.id")
	wantDetail(t, e.exec(t, id, "tickets", "list", nil), 404, "Entity 'tickets' not found for source 'hubspot'; available: companies, contacts, deals")
	r = e.exec(t, id, "contacts", "get", map[string]any{"id": "does-not-exist"})
	wantStatus(t, r, 502)
	if d := r.Map(t)["detail"].(string); !strings.HasPrefix(d, "The provider answered HTTP 404") {
		t.Fatalf("detail = %q", d)
	}
	e.hs.FailNext(1, 429, "7")
	r = e.exec(t, id, "contacts", "list", nil)
	if r.Status != 429 || r.Header.Get("Retry-After") != "7" {
		t.Fatalf("429: %d %q", r.Status, r.Header.Get("Retry-After"))
	}

	// Upstream 401: one forced refresh, one retry, with the new token.
	tok := e.s.Do(t, e.s.Key, "GET", "/source-connections/"+id+"/token", nil).Map(t)["access_token"].(string)
	e.mu.Lock()
	e.rejected[tok] = true
	e.mu.Unlock()
	before := e.as.TokenRequests("refresh_token")
	wantStatus(t, e.exec(t, id, "contacts", "list", map[string]any{"limit": 1}), 200)
	if e.as.TokenRequests("refresh_token") != before+1 {
		t.Fatalf("refreshes = %d", e.as.TokenRequests("refresh_token")-before)
	}
	for _, seenTok := range e.hs.SeenTokens() {
		if strings.Contains(e.s.Bodies.String(), seenTok) || strings.Contains(e.s.Logs.String(), seenTok) {
			t.Fatal("an upstream token reached a response body or a log")
		}
	}
}

func TestExecuteGitHub(t *testing.T) {
	e := newExecEnv(t)
	id := e.connect(t, "github")
	for i := 0; i < 5; i++ {
		e.gh.AddRepo("octocat", fmt.Sprintf("repo-%d", i), i%2 == 0)
	}
	e.gh.SeedIssues("octocat", "repo-1", 7)
	e.gh.SeedPulls("octocat", "repo-1", 3)

	var repos int
	var cursor any
	for page := 0; page < 10; page++ {
		params := map[string]any{"per_page": 2}
		if cursor != nil {
			params["cursor"] = cursor
		}
		r := e.exec(t, id, "repositories", "list", params)
		wantStatus(t, r, 200)
		m := r.Map(t)
		repos += len(m["result"].([]any))
		cursor = m["connector_metadata"].(map[string]any)["pagination"].(map[string]any)["cursor"]
		if cursor == nil {
			break
		}
	}
	if repos != 5 {
		t.Fatalf("paged %d repositories via Link headers, want 5", repos)
	}
	r := e.exec(t, id, "issues", "list", map[string]any{"owner": "octocat", "repo": "repo-1"})
	wantStatus(t, r, 200)
	if n := len(r.Map(t)["result"].([]any)); n != 10 { // GitHub lists pull requests among issues: 7 + 3
		t.Fatalf("issues = %d", n)
	}
	r = e.exec(t, id, "issues", "create", map[string]any{"owner": "octocat", "repo": "repo-1", "title": "From Valetkey"})
	wantStatus(t, r, 200)
	num := r.Map(t)["result"].(map[string]any)["number"]
	wantStatus(t, e.exec(t, id, "issues", "get", map[string]any{"owner": "octocat", "repo": "repo-1", "number": num}), 200)
	wantStatus(t, e.exec(t, id, "pull_requests", "list", map[string]any{"owner": "octocat", "repo": "repo-1"}), 200)
	wantStatus(t, e.exec(t, id, "repositories", "get", map[string]any{"owner": "octocat", "repo": "nope"}), 502)
	if e.gh.IssueCount("octocat", "repo-1") != 8 { // 7 seeded + 1 created (pull requests not counted)
		t.Fatalf("issue count = %d", e.gh.IssueCount("octocat", "repo-1"))
	}
}

// TestExecuteProviderBacked: execute works the same for a connection whose
// credential Pipedream holds.
func TestExecuteProviderBacked(t *testing.T) {
	e := newExecEnv(t)
	e.hs.Seed("deals", 3)
	e.mu.Lock()
	e.extra["pd-held-hubspot-token"] = true
	e.mu.Unlock()
	e.pd.AddAccount("proj_abc", pipedream.Account{ID: "apn_hub", AppSlug: "hubspot", Healthy: true,
		Credentials: map[string]any{"oauth_access_token": "pd-held-hubspot-token", "oauth_refresh_token": "pd-rt"}})
	r := e.s.Do(t, e.s.Key, "POST", "/auth-providers", map[string]any{"name": "PD", "readable_id": "pd-main", "short_name": "pipedream",
		"auth_fields": map[string]any{"client_id": "pd-client", "client_secret": "pd-secret"}})
	wantStatus(t, r, 200)
	r = e.s.Do(t, e.s.Key, "POST", "/source-connections", map[string]any{"name": "PD HubSpot", "short_name": "hubspot", "auth_provider": "pd-main",
		"auth_provider_config": map[string]any{"project_id": "proj_abc", "account_id": "apn_hub"}})
	wantStatus(t, r, 200)
	res := e.exec(t, r.Map(t)["id"].(string), "deals", "list", nil)
	wantStatus(t, res, 200)
	if n := len(res.Map(t)["result"].([]any)); n != 3 {
		t.Fatalf("deals = %d", n)
	}
	found := false
	for _, tok := range e.hs.SeenTokens() {
		found = found || tok == "pd-held-hubspot-token"
	}
	if !found {
		t.Fatal("the Pipedream-held token did not reach HubSpot")
	}
}
