package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/testkit"
)

// forEachDB runs a test against a whole server on SQLite and on Postgres.
func forEachDB(t *testing.T, run func(t *testing.T, s *testkit.Server)) {
	for name, newURL := range testkit.DatabaseURLs() {
		t.Run(name, func(t *testing.T) { run(t, testkit.NewServer(t, newURL(t))) })
	}
}

func sqliteServer(t *testing.T) *testkit.Server {
	return testkit.NewServer(t, testkit.SQLiteURL(t))
}

func wantStatus(t *testing.T, r testkit.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
}

func wantDetail(t *testing.T, r testkit.Response, status int, detail string) {
	t.Helper()
	wantStatus(t, r, status)
	got, _ := r.Map(t)["detail"].(string)
	if got != detail {
		t.Fatalf("detail = %q, want %q", got, detail)
	}
}

// wantLocs checks a 422 body names each location (joined with ".").
func wantLocs(t *testing.T, r testkit.Response, locs ...string) {
	t.Helper()
	wantStatus(t, r, http.StatusUnprocessableEntity)
	var body struct {
		Detail []struct {
			Loc  []any  `json:"loc"`
			Msg  string `json:"msg"`
			Type string `json:"type"`
		} `json:"detail"`
	}
	r.JSON(t, &body)
	have := map[string]bool{}
	for _, d := range body.Detail {
		parts := make([]string, len(d.Loc))
		for i, p := range d.Loc {
			parts[i] = fmt.Sprint(p)
		}
		have[strings.Join(parts, ".")] = true
		if d.Msg == "" || d.Type == "" {
			t.Fatalf("detail entry without msg or type: %s", r.Body)
		}
	}
	for _, l := range locs {
		if !have[l] {
			t.Fatalf("422 does not name %s: %s", l, r.Body)
		}
	}
}

func TestOperationalRoutesNeedNoKey(t *testing.T) {
	s := sqliteServer(t)
	wantStatus(t, s.Do(t, "", "GET", "/healthz", nil), 200)
	wantStatus(t, s.Do(t, "", "GET", "/readyz", nil), 200)

	spec := s.Do(t, "", "GET", "/openapi.json", nil)
	wantStatus(t, spec, 200)
	m := spec.Map(t)
	if m["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v", m["openapi"])
	}
	paths, _ := m["paths"].(map[string]any)
	for _, p := range []string{"/collections", "/collections/{readable_id}", "/sources", "/sources/{short_name}",
		"/source-connections", "/source-connections/{id}", "/source-connections/{id}/token"} {
		if _, ok := paths[p]; !ok {
			t.Errorf("spec lacks %s", p)
		}
	}

	docs := s.Do(t, "", "GET", "/docs", nil)
	wantStatus(t, docs, 200)
	if strings.Contains(string(docs.Body), "://") {
		t.Fatalf("docs page loads something from another host: %s", docs.Body)
	}
	for _, asset := range []string{"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/docs/assets/init.js"} {
		if !strings.Contains(string(docs.Body), asset) {
			t.Errorf("docs page does not reference %s", asset)
		}
		r := s.Do(t, "", "GET", asset, nil)
		if r.Status != 200 || len(r.Body) == 0 {
			t.Errorf("%s = %d (%d bytes)", asset, r.Status, len(r.Body))
		}
	}

	// Make a request so the route metrics have a sample, then read them.
	s.Do(t, s.Key, "GET", "/collections", nil)
	metrics := string(s.Do(t, "", "GET", "/metrics", nil).Body)
	for _, want := range []string{`valetkey_http_requests_total{code="200",method="GET",route="/collections"}`, "valetkey_http_request_duration_seconds_bucket"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestAuthentication(t *testing.T) {
	s := sqliteServer(t)
	wantDetail(t, s.Do(t, "", "GET", "/collections", nil), 401, "Missing API key: send X-API-Key or Authorization: Bearer")
	wantDetail(t, s.Do(t, "vk_wrong"+strings.Repeat("x", 40), "GET", "/collections", nil), 401, "Invalid API key")
	wantStatus(t, s.Do(t, s.Key, "GET", "/collections", nil), 200)
	bearer := s.DoWith(t, "", "GET", "/collections", nil, http.Header{"Authorization": {"Bearer " + s.Key}})
	wantStatus(t, bearer, 200)

	// A revoked key stops working at once.
	other := s.NewOrgKey(t, "globex")
	wantStatus(t, s.Do(t, other, "GET", "/collections", nil), 200)
	o, _ := s.App.Tenants.Organization(t.Context(), "globex")
	keys, _ := s.App.Tenants.ListAPIKeys(t.Context(), o.ID)
	if err := s.App.Tenants.RevokeAPIKey(t.Context(), o.ID, keys[0].ID); err != nil {
		t.Fatal(err)
	}
	wantDetail(t, s.Do(t, other, "GET", "/collections", nil), 401, "Invalid API key")
}

func TestCollections(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *testkit.Server) {
		r := s.Do(t, s.Key, "POST", "/collections", map[string]any{"name": "Product Docs"})
		wantStatus(t, r, 200)
		c := r.Map(t)
		rid, _ := c["readable_id"].(string)
		if !strings.HasPrefix(rid, "product-docs-") || len(rid) != len("product-docs-")+6 {
			t.Fatalf("generated readable_id = %q", rid)
		}
		for _, k := range []string{"id", "organization_id", "vector_size", "embedding_model_name", "created_at", "modified_at"} {
			if _, ok := c[k]; !ok {
				t.Errorf("collection lacks %s", k)
			}
		}
		if c["status"] != "NEEDS SOURCE" {
			t.Errorf("empty collection status = %v", c["status"])
		}
		wantStatus(t, s.Do(t, s.Key, "POST", "/collections", map[string]any{"name": "Fixed", "readable_id": "fixed-id"}), 200)
		wantDetail(t, s.Do(t, s.Key, "POST", "/collections", map[string]any{"name": "Again", "readable_id": "fixed-id"}), 409,
			"Collection with readable_id 'fixed-id' already exists")
		wantLocs(t, s.Do(t, s.Key, "POST", "/collections", map[string]any{"name": "Bad", "readable_id": "Not OK!"}), "body.readable_id")
		wantLocs(t, s.Do(t, s.Key, "POST", "/collections", map[string]any{}), "body.name")

		got := s.Do(t, s.Key, "GET", "/collections/"+rid, nil)
		wantStatus(t, got, 200)
		if got.Map(t)["id"] != c["id"] {
			t.Fatalf("get returned another collection: %s", got.Body)
		}
		var list []map[string]any
		r = s.Do(t, s.Key, "GET", "/collections?skip=1&limit=1", nil)
		wantStatus(t, r, 200)
		r.JSON(t, &list)
		if len(list) != 1 || list[0]["readable_id"] != "fixed-id" {
			t.Fatalf("page = %s", r.Body)
		}
		wantLocs(t, s.Do(t, s.Key, "GET", "/collections?limit=0", nil), "query.limit")

		wantStatus(t, s.Do(t, s.Key, "DELETE", "/collections/"+rid, nil), 200)
		wantDetail(t, s.Do(t, s.Key, "GET", "/collections/"+rid, nil), 404, "Collection '"+rid+"' not found")
		wantDetail(t, s.Do(t, s.Key, "DELETE", "/collections/"+rid, nil), 404, "Collection '"+rid+"' not found")
	})
}

func TestSources(t *testing.T) {
	s := sqliteServer(t)
	var list []map[string]any
	r := s.Do(t, s.Key, "GET", "/sources", nil)
	wantStatus(t, r, 200)
	r.JSON(t, &list)
	if len(list) < 60 {
		t.Fatalf("catalog has %d sources, want at least 60", len(list))
	}
	names := map[string]bool{}
	for _, src := range list {
		names[src["short_name"].(string)] = true
	}
	for _, want := range []string{"google_drive", "google_calendar", "gmail", "onedrive", "outlook_mail", "outlook_calendar",
		"sharepoint", "asana", "slack", "notion", "hubspot", "github", "salesforce", "intercom", "stripe", "jira", "confluence",
		"linear", "dropbox", "box", "zendesk", "airtable", "clickup", "monday", "trello", "todoist", "gitlab"} {
		if !names[want] {
			t.Errorf("catalog lacks %s", want)
		}
	}

	tests := []struct {
		source     string
		authFields []string // name, required ("!" suffix = required)
		config     []string
	}{
		{"asana", []string{"access_token!", "refresh_token"}, nil},
		{"slack", []string{"access_token!"}, nil},
		{"stripe", []string{"api_key!"}, nil},
		{"zendesk", []string{"access_token!", "refresh_token"}, []string{"subdomain!"}},
	}
	for _, tc := range tests {
		t.Run(tc.source, func(t *testing.T) {
			r := s.Do(t, s.Key, "GET", "/sources/"+tc.source, nil)
			wantStatus(t, r, 200)
			var src struct {
				ShortName  string `json:"short_name"`
				AuthFields struct {
					Fields []struct {
						Name     string `json:"name"`
						Title    string `json:"title"`
						Type     string `json:"type"`
						Required bool   `json:"required"`
					} `json:"fields"`
				} `json:"auth_fields"`
				ConfigFields struct {
					Fields []struct {
						Name     string `json:"name"`
						Type     string `json:"type"`
						Required bool   `json:"required"`
					} `json:"fields"`
				} `json:"config_fields"`
				AuthMethods []string `json:"auth_methods"`
			}
			r.JSON(t, &src)
			var got []string
			for _, f := range src.AuthFields.Fields {
				if f.Type != "string" || f.Title == "" {
					t.Errorf("field %s: type %q title %q", f.Name, f.Type, f.Title)
				}
				got = append(got, f.Name+map[bool]string{true: "!"}[f.Required])
			}
			if strings.Join(got, ",") != strings.Join(tc.authFields, ",") {
				t.Errorf("auth fields = %v, want %v", got, tc.authFields)
			}
			got = nil
			for _, f := range src.ConfigFields.Fields {
				got = append(got, f.Name+map[bool]string{true: "!"}[f.Required])
			}
			if strings.Join(got, ",") != strings.Join(tc.config, ",") {
				t.Errorf("config fields = %v, want %v", got, tc.config)
			}
			if len(src.AuthMethods) == 0 {
				t.Error("no auth methods")
			}
		})
	}
	wantDetail(t, s.Do(t, s.Key, "GET", "/sources/xyz", nil), 404, "Source 'xyz' not found")
}

func TestUnknownRoutesAnswerJSON(t *testing.T) {
	s := sqliteServer(t)
	r := s.Do(t, s.Key, "GET", "/no-such-route", nil)
	wantDetail(t, r, 404, "Not Found")
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type = %q", ct)
	}
	wantDetail(t, s.Do(t, s.Key, "PUT", "/source-connections/01900000-0000-7000-8000-000000000000", map[string]any{}), 405, "Method Not Allowed")
}

func TestCreateConnectionErrors(t *testing.T) {
	s := sqliteServer(t)
	wantStatus(t, s.Do(t, s.Key, "POST", "/collections", map[string]any{"name": "Existing", "readable_id": "existing"}), 200)
	tests := []struct {
		name   string
		body   any
		status int
		detail string   // for non-422
		locs   []string // for 422
	}{
		{"unknown source", map[string]any{"name": "Conn", "short_name": "xyz", "auth_fields": map[string]any{"access_token": "a"}}, 404, "Source 'xyz' not found", nil},
		{"missing required auth field", map[string]any{"name": "My Stripe", "short_name": "stripe", "auth_fields": map[string]any{}}, 422, "", []string{"body.auth_fields.api_key"}},
		{"missing access token", map[string]any{"name": "My Asana", "short_name": "asana", "auth_fields": map[string]any{"refresh_token": "r"}}, 422, "", []string{"body.auth_fields.access_token"}},
		{"unknown auth field", map[string]any{"name": "My Asana", "short_name": "asana", "auth_fields": map[string]any{"access_token": "a", "token_secret": "x"}}, 422, "", []string{"body.auth_fields.token_secret"}},
		{"wrong type", map[string]any{"name": "My Asana", "short_name": "asana", "auth_fields": map[string]any{"access_token": 42}}, 422, "", []string{"body.auth_fields.access_token"}},
		{"empty string", map[string]any{"name": "My Asana", "short_name": "asana", "auth_fields": map[string]any{"access_token": ""}}, 422, "", []string{"body.auth_fields.access_token"}},
		{"pattern mismatch", map[string]any{"name": "My Stripe", "short_name": "stripe", "auth_fields": map[string]any{"api_key": "pk_live_123"}}, 422, "", []string{"body.auth_fields.api_key"}},
		{"sdk shape pattern mismatch", map[string]any{"name": "My Stripe", "short_name": "stripe", "authentication": map[string]any{"credentials": map[string]any{"api_key": "nope"}}}, 422, "", []string{"body.authentication.credentials.api_key"}},
		{"name too short", map[string]any{"name": "abc", "short_name": "asana", "auth_fields": map[string]any{"access_token": "a"}}, 422, "", []string{"body.name"}},
		{"name too long", map[string]any{"name": strings.Repeat("n", 43), "short_name": "asana", "auth_fields": map[string]any{"access_token": "a"}}, 422, "", []string{"body.name"}},
		{"name missing", map[string]any{"short_name": "asana", "auth_fields": map[string]any{"access_token": "a"}}, 422, "", []string{"body.name"}},
		{"refresh token for access-only source", map[string]any{"name": "My Slack", "short_name": "slack", "auth_fields": map[string]any{"access_token": "xoxb-1", "refresh_token": "r"}}, 422, "", []string{"body.auth_fields.refresh_token"}},
		{"sdk refresh token for access-only source", map[string]any{"name": "My Slack", "short_name": "slack", "authentication": map[string]any{"access_token": "xoxb-1", "refresh_token": "r"}}, 422, "", []string{"body.authentication.refresh_token"}},
		{"several bad fields at once", map[string]any{"name": "ab", "short_name": "zendesk", "auth_fields": map[string]any{"access_token": ""}, "config_fields": map[string]any{"color": "red"}}, 422, "", []string{"body.name", "body.auth_fields.access_token", "body.config_fields.color", "body.config_fields.subdomain"}},
		{"config pattern", map[string]any{"name": "My Zendesk", "short_name": "zendesk", "auth_fields": map[string]any{"access_token": "a"}, "config": map[string]any{"subdomain": "Bad Host!"}}, 422, "", []string{"body.config.subdomain"}},
		{"config wrong type", map[string]any{"name": "My Zendesk", "short_name": "zendesk", "auth_fields": map[string]any{"access_token": "a"}, "config": map[string]any{"subdomain": 7}}, 422, "", []string{"body.config.subdomain"}},
		{"bad expires_at", map[string]any{"name": "My Asana", "short_name": "asana", "authentication": map[string]any{"access_token": "a", "expires_at": "tomorrow"}}, 422, "", []string{"body.authentication.expires_at"}},
		{"unknown top-level field", map[string]any{"name": "My Asana", "short_name": "asana", "auth_fields": map[string]any{"access_token": "a"}, "colour": "red"}, 422, "", []string{"body.colour"}},
		{"unknown authentication field", map[string]any{"name": "My Asana", "short_name": "asana", "authentication": map[string]any{"access_token": "a", "bogus": 1}}, 422, "", []string{"body.authentication.bogus"}},
		{"unknown collection", map[string]any{"name": "My Asana", "short_name": "asana", "collection": "nope", "auth_fields": map[string]any{"access_token": "a"}}, 404, "Collection 'nope' not found", nil},
		{"unknown sdk collection", map[string]any{"name": "My Asana", "short_name": "asana", "readable_collection_id": "nope", "authentication": map[string]any{"access_token": "a"}}, 404, "Collection 'nope' not found", nil},
		{"oauth source without credentials", map[string]any{"name": "My Notion", "short_name": "notion"}, 400, "No OAuth client configured for source 'notion'", nil},
		{"api-key source without credentials", map[string]any{"name": "My Key Thing", "short_name": "sendgrid"}, 422, "", []string{"body.auth_fields.api_key"}},
		{"malformed json", `{"name": "x",`, 400, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/source-connections", "/source-connections/"} {
				r := s.Do(t, s.Key, "POST", path, tc.body)
				switch {
				case tc.status == 422:
					wantLocs(t, r, tc.locs...)
				case tc.detail != "":
					wantDetail(t, r, tc.status, tc.detail)
				default:
					wantStatus(t, r, tc.status)
				}
			}
		})
	}
	// Nothing was stored by any of them.
	var list []map[string]any
	s.Do(t, s.Key, "GET", "/source-connections", nil).JSON(t, &list)
	if len(list) != 0 {
		t.Fatalf("failed creates stored %d connections", len(list))
	}

	t.Run("body over 1 MiB", func(t *testing.T) {
		big := `{"name":"My Asana","short_name":"asana","description":"` + strings.Repeat("a", 1<<20) + `"}`
		wantStatus(t, s.Do(t, s.Key, "POST", "/source-connections", big), 413)
	})
	t.Run("wrong content type", func(t *testing.T) {
		r := s.DoWith(t, s.Key, "POST", "/source-connections", `name=x`, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		wantDetail(t, r, 415, "Unsupported Content-Type: send application/json")
	})
	t.Run("malformed json message", func(t *testing.T) {
		r := s.Do(t, s.Key, "POST", "/source-connections", `{"name": "x",`)
		if d, _ := r.Map(t)["detail"].(string); !strings.HasPrefix(d, "Malformed JSON body") {
			t.Fatalf("detail = %q", d)
		}
	})
}

func TestConnectionLifecycle(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *testkit.Server) {
		wantStatus(t, s.Do(t, s.Key, "POST", "/collections", map[string]any{"name": "Team", "readable_id": "team"}), 200)
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)

		// Seeds' shape: no collection given, so one is created.
		r := s.Do(t, s.Key, "POST", "/source-connections/", map[string]any{
			"name": "Asana Seeds", "short_name": "asana", "description": "from the seeds",
			"auth_fields": map[string]any{"access_token": "at-1", "refresh_token": "rt-1"},
		})
		wantStatus(t, r, 200)
		seeds := r.Map(t)
		if seeds["readable_collection_id"] == "" || seeds["status"] != "active" {
			t.Fatalf("seeds create = %s", r.Body)
		}
		auth := seeds["auth"].(map[string]any)
		if auth["method"] != "oauth_token" || auth["authenticated"] != true || auth["authenticated_at"] == nil || auth["expires_at"] != nil {
			t.Fatalf("auth = %v", auth)
		}
		for _, k := range []string{"id", "organization_id", "name", "description", "short_name", "readable_collection_id", "status",
			"created_at", "modified_at", "auth", "config", "schedule", "sync"} {
			if _, ok := seeds[k]; !ok {
				t.Errorf("response lacks %s", k)
			}
		}
		sync := seeds["sync"].(map[string]any)
		if sync["total_runs"] != float64(0) || sync["last_job"] != nil {
			t.Errorf("sync = %v", sync)
		}

		// SDK shape into an existing collection, with an expiry and a schedule.
		r = s.Do(t, s.Key, "POST", "/source-connections", map[string]any{
			"name": "Asana SDK", "short_name": "asana", "readable_collection_id": "team",
			"authentication":   map[string]any{"access_token": "at-2", "refresh_token": "rt-2", "expires_at": exp.Format(time.RFC3339)},
			"schedule":         map[string]any{"cron": "0 * * * *"},
			"sync_immediately": false,
		})
		wantStatus(t, r, 200)
		sdk := r.Map(t)
		id := sdk["id"].(string)
		if sdk["readable_collection_id"] != "team" || sdk["auth"].(map[string]any)["expires_at"] != exp.Format(time.RFC3339) {
			t.Fatalf("sdk create = %s", r.Body)
		}
		if sdk["schedule"].(map[string]any)["cron"] != "0 * * * *" {
			t.Fatalf("schedule = %v", sdk["schedule"])
		}

		// API-key source through authentication.credentials, with config.
		r = s.Do(t, s.Key, "POST", "/source-connections", map[string]any{
			"name": "Stripe Live", "short_name": "stripe", "readable_collection_id": "team",
			"authentication": map[string]any{"credentials": map[string]any{"api_key": "sk_test_abc123"}},
		})
		wantStatus(t, r, 200)
		stripeID := r.Map(t)["id"].(string)
		if m := r.Map(t)["auth"].(map[string]any)["method"]; m != "direct" {
			t.Fatalf("api key method = %v", m)
		}
		// OAuth tokens given as a plain credentials set are "direct" too, as in Airweave.
		r = s.Do(t, s.Key, "POST", "/source-connections", map[string]any{
			"name": "Asana Creds", "short_name": "asana", "readable_collection_id": "team",
			"authentication": map[string]any{"credentials": map[string]any{"access_token": "at-c"}},
		})
		wantStatus(t, r, 200)
		if m := r.Map(t)["auth"].(map[string]any)["method"]; m != "direct" {
			t.Fatalf("credentials-shape method = %v", m)
		}
		wantStatus(t, s.Do(t, s.Key, "DELETE", "/source-connections/"+r.Map(t)["id"].(string), nil), 200)

		// Config with defaults and required fields.
		r = s.Do(t, s.Key, "POST", "/source-connections", map[string]any{
			"name": "Zendesk Help", "short_name": "zendesk", "readable_collection_id": "team",
			"config_fields": map[string]any{"subdomain": "acme"}, "auth_fields": map[string]any{"access_token": "zd"},
		})
		wantStatus(t, r, 200)
		if r.Map(t)["config"].(map[string]any)["subdomain"] != "acme" {
			t.Fatalf("config = %s", r.Body)
		}

		got := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil)
		wantStatus(t, got, 200)
		if got.Map(t)["name"] != "Asana SDK" || got.Map(t)["created_at"] != sdk["created_at"] {
			t.Fatalf("get = %s (created %s)", got.Body, sdk["created_at"])
		}

		var list []map[string]any
		s.Do(t, s.Key, "GET", "/source-connections", nil).JSON(t, &list)
		if len(list) != 4 {
			t.Fatalf("list has %d", len(list))
		}
		for _, k := range []string{"is_authenticated", "auth_method", "status", "readable_collection_id"} {
			if _, ok := list[0][k]; !ok {
				t.Errorf("list item lacks %s", k)
			}
		}
		s.Do(t, s.Key, "GET", "/source-connections?collection=team", nil).JSON(t, &list)
		if len(list) != 3 {
			t.Fatalf("collection filter gave %d", len(list))
		}
		s.Do(t, s.Key, "GET", "/source-connections?collection=team&skip=1&limit=1", nil).JSON(t, &list)
		if len(list) != 1 || list[0]["id"] != stripeID {
			t.Fatalf("page = %v", list)
		}
		wantDetail(t, s.Do(t, s.Key, "GET", "/source-connections?collection=nope", nil), 404, "Collection 'nope' not found")

		// PATCH: fields, config, and new credentials.
		r = s.Do(t, s.Key, "PATCH", "/source-connections/"+id, map[string]any{"name": "Asana Renamed", "description": "new"})
		wantStatus(t, r, 200)
		if r.Map(t)["name"] != "Asana Renamed" || r.Map(t)["description"] != "new" {
			t.Fatalf("patch = %s", r.Body)
		}
		wantLocs(t, s.Do(t, s.Key, "PATCH", "/source-connections/"+id, map[string]any{}), "body")
		wantLocs(t, s.Do(t, s.Key, "PATCH", "/source-connections/"+id, map[string]any{"name": "no"}), "body.name")
		wantLocs(t, s.Do(t, s.Key, "PATCH", "/source-connections/"+id, map[string]any{"auth_fields": map[string]any{"token": "x"}}), "body.auth_fields.access_token", "body.auth_fields.token")
		if g := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t); g["name"] != "Asana Renamed" {
			t.Fatalf("a failed patch changed the connection: %v", g["name"])
		}
		r = s.Do(t, s.Key, "PATCH", "/source-connections/"+id, map[string]any{"authentication": map[string]any{"access_token": "at-3", "expires_in": 3600}})
		wantStatus(t, r, 200)
		tok := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil)
		wantStatus(t, tok, 200)
		tm := tok.Map(t)
		if tm["access_token"] != "at-3" || tm["token_type"] != "Bearer" || tm["expires_at"] == nil {
			t.Fatalf("token = %s", tok.Body)
		}
		if _, ok := tm["refresh_token"]; ok {
			t.Fatal("refresh token returned without include_refresh_token")
		}
		if tok.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("token response cache-control = %q", tok.Header.Get("Cache-Control"))
		}
		wantLocs(t, s.Do(t, s.Key, "PATCH", "/source-connections/"+stripeID, map[string]any{"config": map[string]any{"nope": 1}}), "body.config.nope")

		// The token route for the seeds connection, with its refresh token.
		tok = s.Do(t, s.Key, "GET", "/source-connections/"+seeds["id"].(string)+"/token?include_refresh_token=true", nil)
		if tm := tok.Map(t); tm["access_token"] != "at-1" || tm["refresh_token"] != "rt-1" {
			t.Fatalf("token = %s", tok.Body)
		}
		tok = s.Do(t, s.Key, "GET", "/source-connections/"+stripeID+"/token", nil)
		if tm := tok.Map(t); tm["api_key"] != "sk_test_abc123" || tm["token_type"] != "api_key" {
			t.Fatalf("api key token = %s", tok.Body)
		}
		orgID := seeds["organization_id"].(string)
		events, err := s.App.Store.ListAudit(t.Context(), orgID, store.AuditFilter{Action: "credential.read", Limit: 10})
		if err != nil || len(events) != 3 {
			t.Fatalf("audit = %v, %v", events, err)
		}
		if events[0].Action != "credential.read" || events[0].TargetID != stripeID || !strings.HasPrefix(events[0].Actor, "api_key:") || events[0].RemoteAddr == "" {
			t.Fatalf("audit event = %+v", events[0])
		}

		// DELETE answers the deleted object and erases the credential.
		r = s.Do(t, s.Key, "DELETE", "/source-connections/"+id, nil)
		wantStatus(t, r, 200)
		if r.Map(t)["id"] != id {
			t.Fatalf("delete = %s", r.Body)
		}
		wantDetail(t, s.Do(t, s.Key, "GET", "/source-connections/"+id, nil), 404, "Source connection '"+id+"' not found")
		wantStatus(t, s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token", nil), 404)
		if _, err := s.App.Store.GetCredentialForConnection(t.Context(), orgID, id); err == nil {
			t.Fatal("credential survived the delete")
		}
		wantStatus(t, s.Do(t, s.Key, "GET", "/source-connections/not-a-uuid", nil), 404)
	})
}

func TestCrossOrganizationAnswers404(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *testkit.Server) {
		wantStatus(t, s.Do(t, s.Key, "POST", "/collections", map[string]any{"name": "Mine", "readable_id": "mine"}), 200)
		r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Private", "short_name": "asana", "collection": "mine",
			"auth_fields": map[string]any{"access_token": "secret-a"}})
		wantStatus(t, r, 200)
		id := r.Map(t)["id"].(string)
		missing := "01900000-0000-7000-8000-000000000000"
		other := s.NewOrgKey(t, "intruder")

		for _, tc := range []struct{ method, path string }{
			{"GET", "/source-connections/%s"}, {"PATCH", "/source-connections/%s"}, {"DELETE", "/source-connections/%s"},
			{"GET", "/source-connections/%s/token"},
		} {
			var body any
			if tc.method == "PATCH" {
				body = map[string]any{"name": "Taken over"}
			}
			theirs := s.Do(t, other, tc.method, fmt.Sprintf(tc.path, id), body)
			absent := s.Do(t, other, tc.method, fmt.Sprintf(tc.path, missing), body)
			wantStatus(t, theirs, 404)
			wantStatus(t, absent, 404)
			if strings.ReplaceAll(string(theirs.Body), id, "ID") != strings.ReplaceAll(string(absent.Body), missing, "ID") {
				t.Fatalf("%s %s: another org's id answers differently from a missing one: %s vs %s", tc.method, tc.path, theirs.Body, absent.Body)
			}
		}
		wantDetail(t, s.Do(t, other, "GET", "/collections/mine", nil), 404, "Collection 'mine' not found")
		wantDetail(t, s.Do(t, other, "DELETE", "/collections/mine", nil), 404, "Collection 'mine' not found")
		wantDetail(t, s.Do(t, other, "GET", "/source-connections?collection=mine", nil), 404, "Collection 'mine' not found")
		wantDetail(t, s.Do(t, other, "POST", "/source-connections", map[string]any{"name": "Sneaky", "short_name": "asana", "collection": "mine",
			"auth_fields": map[string]any{"access_token": "x"}}), 404, "Collection 'mine' not found")
		var list []any
		s.Do(t, other, "GET", "/source-connections", nil).JSON(t, &list)
		s.Do(t, other, "GET", "/collections", nil).JSON(t, &list)
		if len(list) != 0 {
			t.Fatalf("other org lists %d collections", len(list))
		}
		// The owner still has everything, unchanged.
		g := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil)
		if g.Status != 200 || g.Map(t)["name"] != "Private" {
			t.Fatalf("owner's connection changed: %s", g.Body)
		}
	})
}

func TestPatchCredentialsClearsNeedsReauth(t *testing.T) {
	s := sqliteServer(t)
	r := s.Do(t, s.Key, "POST", "/source-connections", map[string]any{"name": "Reauth Me", "short_name": "asana",
		"auth_fields": map[string]any{"access_token": "old", "refresh_token": "old-r"}})
	wantStatus(t, r, 200)
	id, orgID := r.Map(t)["id"].(string), r.Map(t)["organization_id"].(string)
	if _, err := s.App.Store.UpdateConnection(t.Context(), orgID, id, func(c *store.SourceConnection) (*store.Credential, error) {
		c.Status = store.StatusNeedsReauth
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	g := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t)
	if g["status"] != "needs_reauth" || g["auth"].(map[string]any)["authenticated"] != false {
		t.Fatalf("before: %v", g)
	}
	before, _ := s.App.Store.GetCredentialForConnection(t.Context(), orgID, id)

	r = s.Do(t, s.Key, "PATCH", "/source-connections/"+id, map[string]any{"auth_fields": map[string]any{"access_token": "new", "refresh_token": "new-r"}})
	wantStatus(t, r, 200)
	if m := r.Map(t); m["status"] != "active" || m["auth"].(map[string]any)["authenticated"] != true {
		t.Fatalf("after patch: %s", r.Body)
	}
	after, _ := s.App.Store.GetCredentialForConnection(t.Context(), orgID, id)
	if string(after.Ciphertext) == string(before.Ciphertext) || after.ID == before.ID {
		t.Fatal("credential was not re-encrypted as a new row")
	}
	tok := s.Do(t, s.Key, "GET", "/source-connections/"+id+"/token?include_refresh_token=true", nil).Map(t)
	if tok["access_token"] != "new" || tok["refresh_token"] != "new-r" {
		t.Fatalf("token = %v", tok)
	}
}
