package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/testkit"
)

// bearer sends a request with Authorization: Bearer.
func bearer(t *testing.T, s *testkit.Server, tok, method, path string, body any, extra ...string) testkit.Response {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + tok}}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	return s.DoWith(t, "", method, path, body, h)
}

// operatorToken creates an application and exchanges it for an operator JWT.
func operatorToken(t *testing.T, s *testkit.Server) string {
	t.Helper()
	o, _ := s.App.Tenants.Organization(t.Context(), "default")
	a, secret, err := s.App.Embedded.CreateApplication(t.Context(), o.ID, "backend")
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, s.Do(t, "", "POST", "/api/v1/account/applications/token", map[string]any{"client_id": a.ClientID, "client_secret": "wrong"}), 401)
	r := s.Do(t, "", "POST", "/api/v1/account/applications/token", map[string]any{"client_id": a.ClientID, "client_secret": secret.Reveal()})
	wantStatus(t, r, 200)
	m := r.Map(t)
	if m["token_type"] != "Bearer" || m["expires_in"] != float64(900) {
		t.Fatalf("token = %v", m)
	}
	return m["access_token"].(string)
}

// TestEmbeddedServerSideOAuthFlow runs seed 003's flow (initiate → consent →
// callback with secret_id → create connector → execute) against Valetkey.
func TestEmbeddedServerSideOAuthFlow(t *testing.T) {
	e := testkit.NewOAuthEnv(t, testkit.SQLiteURL(t))
	s := e.S
	op := operatorToken(t, s)

	// Part 1: OAuth overrides (case-insensitive connector type).
	r := bearer(t, s, op, "PUT", "/api/v1/oauth/credentials", map[string]any{"connector_type": "TestOAuth",
		"configuration": map[string]any{"client_id": "valetkey-client", "client_secret": "valetkey-secret"}})
	wantStatus(t, r, 200)
	cred := r.Map(t)
	for k, want := range map[string]any{"scope_type": "organization", "connector_type": "source"} {
		if cred[k] != want {
			t.Errorf("%s = %v", k, cred[k])
		}
	}
	for _, k := range []string{"id", "scope_id", "connector_definition_id", "created_at", "updated_at"} {
		if cred[k] == nil || cred[k] == "" {
			t.Errorf("credentials response lacks %s: %v", k, cred)
		}
	}
	wantLocs(t, bearer(t, s, op, "PUT", "/api/v1/oauth/credentials", map[string]any{"connector_type": "testoauth", "configuration": map[string]any{"client_id": "x", "extra": 1}}),
		"body.configuration.client_secret", "body.configuration.extra")
	wantDetail(t, bearer(t, s, op, "PUT", "/api/v1/oauth/credentials", map[string]any{"connector_type": "nope", "configuration": map[string]any{}}), 404, "Source 'nope' not found")
	spec := bearer(t, s, op, "GET", "/api/v1/oauth/credentials/spec?connector_type=testoauth", nil).Map(t)
	if spec["type"] != "object" || spec["properties"].(map[string]any)["client_secret"] == nil {
		t.Fatalf("spec = %v", spec)
	}

	// Part 2: initiate (no OAuth app for a connector → a 400 saying to configure it).
	wantDetail(t, bearer(t, s, op, "POST", "/api/v1/integrations/connectors/oauth/initiate", map[string]any{"external_user_id": "user_12345",
		"connector_type": "hubspot", "redirect_url": "https://yourapp.com/cb"}), 400,
		"No OAuth credentials configured for connector 'hubspot': set them with PUT /api/v1/oauth/credentials")
	redirect := "https://yourapp.com/oauth/callback?user_id=1&connector_type=hubspot"
	r = bearer(t, s, op, "POST", "/api/v1/integrations/connectors/oauth/initiate", map[string]any{"external_user_id": "user_12345",
		"connector_type": "testoauth", "redirect_url": redirect})
	wantStatus(t, r, 200)
	consent := r.Map(t)["consent_url"].(string)
	if !strings.HasPrefix(consent, e.AS.AuthorizeURL()) {
		t.Fatalf("consent_url = %s", consent)
	}
	callback := e.AS.Consent(t, e.Browser, consent, true)
	resp := e.Get(t, callback.String())
	back, _ := url.Parse(resp.Header.Get("Location"))
	secretID := back.Query().Get("secret_id")
	if resp.StatusCode != http.StatusFound || back.Host != "yourapp.com" || back.Query().Get("user_id") != "1" ||
		back.Query().Get("connector_type") != "hubspot" || secretID == "" {
		t.Fatalf("redirect = %d %s", resp.StatusCode, back)
	}

	// Part 3: create the connector.
	create := func(user, connector, secret string) testkit.Response {
		return bearer(t, s, op, "POST", "/api/v1/integrations/connectors", map[string]any{"external_user_id": user, "connector_type": connector,
			"server_side_oauth_secret_id": secret})
	}
	wantDetail(t, create("nobody", "testoauth", secretID), 404, "Workspace not found")
	wantDetail(t, create("user_12345", "testoauth", "sec_unknown"), 400, "Invalid secret_id")
	wantDetail(t, create("user_12345", "asana", secretID), 400, "Invalid secret_id") // another connector
	operatorOther := bearer(t, s, op, "POST", "/api/v1/embedded/widget_token", map[string]any{"externalUserId": "someone-else", "allowedOrigin": "https://a"})
	wantStatus(t, operatorOther, 200)                                                      // creates that user's workspace
	wantDetail(t, create("someone-else", "testoauth", secretID), 400, "Invalid secret_id") // another workspace
	r = create("user_12345", "testoauth", secretID)
	wantStatus(t, r, 201)
	c := r.Map(t)
	tmpl := c["source_template"].(map[string]any)
	if c["id"] == nil || c["name"] == "" || tmpl["connector_type"] != "testoauth" || tmpl["id"] == nil || c["replication_config"] == nil {
		t.Fatalf("connector = %v", c)
	}
	wantDetail(t, create("user_12345", "testoauth", secretID), 400, "Invalid secret_id")
	id := c["id"].(string)

	// Part 4: execute with the stored tokens.
	r = bearer(t, s, op, "POST", "/api/v1/connectors/sources/"+id+"/execute", map[string]any{"entity": "me", "action": "get"})
	wantStatus(t, r, 200)
	res := r.Map(t)
	if res["result"].(map[string]any)["client_id"] != "valetkey-client" || res["connector_metadata"] == nil {
		t.Fatalf("execute = %v", res)
	}
	wantDetail(t, bearer(t, s, op, "POST", "/api/v1/connectors/sources/"+id+"/execute", map[string]any{"entity": "nope", "action": "get"}), 404,
		"Entity 'nope' not found for source 'testoauth'; available: me")
	wantDetail(t, bearer(t, s, op, "POST", "/api/v1/connectors/sources/"+id+"/execute", map[string]any{"entity": "me", "action": "list"}), 404,
		"Action 'list' not found for entity 'me'; available: get")
	wantLocs(t, bearer(t, s, op, "POST", "/api/v1/connectors/sources/"+id+"/execute", map[string]any{"entity": "me", "action": "get", "params": map[string]any{"x": 1}}),
		"body.params.x")
	// The same engine in the native dialect; the connection is visible there too.
	r = s.Do(t, s.Key, "POST", "/source-connections/"+id+"/execute", map[string]any{"entity": "me", "action": "get"})
	wantStatus(t, r, 200)
	var ents map[string][]string
	s.Do(t, s.Key, "GET", "/source-connections/"+id+"/entities", nil).JSON(t, &ents)
	if len(ents["me"]) != 1 {
		t.Fatalf("entities = %v", ents)
	}

	// Declined consent appends error=access_denied instead.
	r = bearer(t, s, op, "POST", "/api/v1/integrations/connectors/oauth/initiate", map[string]any{"external_user_id": "user_12345",
		"connector_type": "testoauth", "redirect_url": "https://yourapp.com/cb"})
	resp = e.Get(t, e.AS.Consent(t, e.Browser, r.Map(t)["consent_url"].(string), false).String())
	if back, _ := url.Parse(resp.Header.Get("Location")); back.Query().Get("error") != "access_denied" || back.Query().Get("secret_id") != "" {
		t.Fatalf("declined = %s", back)
	}
	wantLocs(t, bearer(t, s, op, "POST", "/api/v1/integrations/connectors/oauth/initiate", map[string]any{"external_user_id": "u",
		"connector_type": "testoauth", "redirect_url": "javascript:alert(1)"}), "body.redirect_url")
	if strings.Contains(s.Logs.String(), secretID) {
		t.Error("secret_id in logs")
	}
}

func TestEmbeddedTokensAndScoping(t *testing.T) {
	e := testkit.NewOAuthEnv(t, testkit.SQLiteURL(t))
	s := e.S
	op := operatorToken(t, s)
	o, _ := s.App.Tenants.Organization(t.Context(), "default")

	// API keys work as operator tokens too.
	wantStatus(t, bearer(t, s, s.Key, "GET", "/api/v1/workspaces", nil), 200)
	wantStatus(t, s.Do(t, "", "GET", "/api/v1/workspaces", nil), 401)

	widget := func(user string) (string, map[string]any) {
		r := bearer(t, s, op, "POST", "/api/v1/embedded/widget_token", map[string]any{"externalUserId": user, "organizationId": o.ID,
			"allowedOrigin": "https://app.example.com"})
		wantStatus(t, r, 200)
		raw, err := base64.StdEncoding.DecodeString(r.Map(t)["token"].(string))
		if err != nil {
			t.Fatal(err)
		}
		var inner map[string]string
		if err := json.Unmarshal(raw, &inner); err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(inner["token"], ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		_ = json.Unmarshal(payload, &claims)
		if !strings.HasPrefix(inner["widgetUrl"], s.URL+"/embedded-widget?") || !strings.Contains(inner["widgetUrl"], "allowedOrigin=https%3A%2F%2Fapp.example.com") {
			t.Fatalf("widgetUrl = %s", inner["widgetUrl"])
		}
		return inner["token"], claims
	}
	alice, claims := widget("alice")
	if ws, _ := claims["io.valetkey.auth.workspace_scope"].(map[string]any)["workspaceId"].(string); ws == "" {
		t.Fatalf("no workspace scope: %v", claims)
	}
	if claims["act"].(map[string]any)["sub"] != "alice" || claims["roles"].([]any)[0] != "EMBEDDED_END_USER" || claims["iss"] != s.URL ||
		claims["aud"] == nil || claims["jti"] == nil || claims["iat"] == nil || claims["typ"] != "io.valetkey.auth.embedded_v1" {
		t.Fatalf("claims = %v", claims)
	}
	if exp := int64(claims["exp"].(float64)) - int64(claims["iat"].(float64)); exp != 20*60 {
		t.Fatalf("scoped token lifetime = %ds", exp)
	}
	wantDetail(t, bearer(t, s, op, "POST", "/api/v1/embedded/widget_token", map[string]any{"externalUserId": "x", "organizationId": "another-org",
		"allowedOrigin": "https://a"}), 404, "Organization 'another-org' not found")

	// Scoped tokens: no operator route, only their own workspace.
	wantDetail(t, bearer(t, s, alice, "GET", "/api/v1/workspaces", nil), 403, "This route needs an operator token")
	wantDetail(t, bearer(t, s, alice, "POST", "/api/v1/embedded/widget_token", map[string]any{"externalUserId": "bob", "allowedOrigin": "https://a"}), 403,
		"This route needs an operator token")
	wantStatus(t, bearer(t, s, op, "PUT", "/api/v1/oauth/credentials", map[string]any{"connector_type": "testoauth",
		"configuration": map[string]any{"client_id": "valetkey-client", "client_secret": "valetkey-secret"}}), 200)
	wantStatus(t, bearer(t, s, alice, "POST", "/api/v1/integrations/connectors/oauth/initiate", map[string]any{"external_user_id": "alice",
		"connector_type": "testoauth", "redirect_url": "https://yourapp.com/cb"}), 200)
	wantDetail(t, bearer(t, s, alice, "POST", "/api/v1/integrations/connectors/oauth/initiate", map[string]any{"external_user_id": "bob",
		"connector_type": "testoauth", "redirect_url": "https://yourapp.com/cb"}), 404, "Workspace not found")

	// A connection in Bob's workspace is invisible to Alice.
	bob, _ := widget("bob")
	r := bearer(t, s, bob, "POST", "/api/v1/integrations/connectors/oauth/initiate", map[string]any{"external_user_id": "bob",
		"connector_type": "testoauth", "redirect_url": "https://yourapp.com/cb"})
	resp := e.Get(t, e.AS.Consent(t, e.Browser, r.Map(t)["consent_url"].(string), true).String())
	back, _ := url.Parse(resp.Header.Get("Location"))
	r = bearer(t, s, bob, "POST", "/api/v1/integrations/connectors", map[string]any{"external_user_id": "bob", "connector_type": "testoauth",
		"server_side_oauth_secret_id": back.Query().Get("secret_id")})
	wantStatus(t, r, 201)
	bobConn := r.Map(t)["id"].(string)
	wantStatus(t, bearer(t, s, bob, "POST", "/api/v1/connectors/sources/"+bobConn+"/execute", map[string]any{"entity": "me", "action": "get"}), 200)
	wantDetail(t, bearer(t, s, alice, "POST", "/api/v1/connectors/sources/"+bobConn+"/execute", map[string]any{"entity": "me", "action": "get"}), 404,
		"Source connection '"+bobConn+"' not found")
	// Another organization's operator sees nothing either.
	otherKey := s.NewOrgKey(t, "other")
	wantStatus(t, bearer(t, s, otherKey, "POST", "/api/v1/connectors/sources/"+bobConn+"/execute", map[string]any{"entity": "me", "action": "get"}), 404)

	// CORS: only the token's allowed origin.
	r = bearer(t, s, alice, "POST", "/api/v1/integrations/connectors/oauth/initiate", map[string]any{"external_user_id": "alice",
		"connector_type": "testoauth", "redirect_url": "https://yourapp.com/cb"}, "Origin", "https://app.example.com")
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("allowed origin: %d %q", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}
	r = bearer(t, s, alice, "GET", "/api/v1/oauth/credentials/spec?connector_type=testoauth", nil, "Origin", "https://evil.example.com")
	wantDetail(t, r, 403, "Origin not allowed for this token")

	// Expired and tampered tokens are refused; the JWKS is public.
	e.Clock.Advance(21 * time.Minute)
	wantDetail(t, bearer(t, s, alice, "GET", "/api/v1/oauth/credentials/spec?connector_type=testoauth", nil), 401, "Invalid or expired token")
	wantDetail(t, bearer(t, s, op, "GET", "/api/v1/workspaces", nil), 401, "Invalid or expired token")
	jwks := s.Do(t, "", "GET", "/.well-known/jwks.json", nil)
	wantStatus(t, jwks, 200)
	if keys := jwks.Map(t)["keys"].([]any); len(keys) != 1 || keys[0].(map[string]any)["kty"] != "OKP" {
		t.Fatalf("jwks = %s", jwks.Body)
	}
	var list map[string][]map[string]any
	bearer(t, s, s.Key, "GET", "/api/v1/workspaces", nil).JSON(t, &list)
	if len(list["data"]) != 2 {
		t.Fatalf("workspaces = %v", list)
	}
}

// TestEmbeddedTemplatesAndSources follows seed 004: a template with
// defaults, a widget token decoded for its scoped JWT, and a source created
// with it in the user's workspace.
func TestEmbeddedTemplatesAndSources(t *testing.T) {
	s := testkit.NewServer(t, testkit.SQLiteURL(t))
	op := operatorToken(t, s)
	o, _ := s.App.Tenants.Organization(t.Context(), "default")

	r := bearer(t, s, op, "POST", "/api/v1/integrations/templates/sources", map[string]any{"name": "Zendesk for customers", "connector_type": "Zendesk",
		"partial_default_config": map[string]any{"subdomain": "acme"}})
	wantStatus(t, r, 200)
	tmpl := r.Map(t)["id"].(string)
	bare := bearer(t, s, op, "POST", "/api/v1/integrations/templates/sources", map[string]any{"name": "Bare Zendesk", "connector_type": "zendesk"}).Map(t)["id"].(string)
	wantLocs(t, bearer(t, s, op, "POST", "/api/v1/integrations/templates/sources", map[string]any{"name": "Bad", "connector_type": "zendesk",
		"partial_default_config": map[string]any{"colour": "red"}}), "body.partial_default_config.colour")

	// The widget token, decoded as the seed's custom implementation does.
	r = bearer(t, s, op, "POST", "/api/v1/embedded/widget_token", map[string]any{"externalUserId": "cust-1", "organizationId": o.ID, "allowedOrigin": "https://app.example.com"})
	raw, _ := base64.StdEncoding.DecodeString(r.Map(t)["token"].(string))
	var inner map[string]string
	_ = json.Unmarshal(raw, &inner)
	scoped := inner["token"]
	wsURL, _ := url.Parse(inner["widgetUrl"])
	ws := wsURL.Query().Get("workspaceId")

	create := func(tok, workspace, template string, cfg map[string]any) testkit.Response {
		return bearer(t, s, tok, "POST", "/api/v1/integrations/sources", map[string]any{"workspace_id": workspace,
			"source_config_template_id": template, "connection_configuration": cfg})
	}
	wantLocs(t, create(scoped, ws, bare, map[string]any{}), "body.connection_configuration.subdomain", "body.connection_configuration.access_token")
	wantLocs(t, create(scoped, ws, tmpl, map[string]any{}), "body.connection_configuration.access_token")
	wantDetail(t, create(scoped, "01900000-0000-7000-8000-000000000000", tmpl, map[string]any{"access_token": "x"}), 404, "Workspace not found")
	wantDetail(t, create(scoped, ws, "01900000-0000-7000-8000-000000000000", map[string]any{"access_token": "x"}), 404,
		"Source template '01900000-0000-7000-8000-000000000000' not found")
	r = create(scoped, ws, tmpl, map[string]any{"access_token": "zd-token"})
	wantStatus(t, r, 200)
	src := r.Map(t)
	id := src["id"].(string)
	if src["workspace_id"] != ws || src["source_template"].(map[string]any)["connector_type"] != "zendesk" {
		t.Fatalf("source = %v", src)
	}
	// The same connection in the native API, with the template's default merged.
	g := s.Do(t, s.Key, "GET", "/source-connections/"+id, nil).Map(t)
	if g["config"].(map[string]any)["subdomain"] != "acme" || g["short_name"] != "zendesk" {
		t.Fatalf("native view = %v", g)
	}
	var list map[string][]map[string]any
	bearer(t, s, scoped, "GET", "/api/v1/integrations/sources", nil).JSON(t, &list)
	if len(list["data"]) != 1 {
		t.Fatalf("list = %v", list)
	}
	bearer(t, s, op, "GET", "/api/v1/integrations/sources?workspace_id="+ws, nil).JSON(t, &list)
	if len(list["data"]) != 1 {
		t.Fatalf("operator list = %v", list)
	}
	// Another user's token sees none of it.
	r = bearer(t, s, op, "POST", "/api/v1/embedded/widget_token", map[string]any{"externalUserId": "cust-2", "allowedOrigin": "https://app.example.com"})
	raw, _ = base64.StdEncoding.DecodeString(r.Map(t)["token"].(string))
	_ = json.Unmarshal(raw, &inner)
	other := inner["token"]
	wantStatus(t, bearer(t, s, other, "GET", "/api/v1/integrations/sources/"+id, nil), 404)
	wantStatus(t, bearer(t, s, other, "DELETE", "/api/v1/integrations/sources/"+id, nil), 404)
	wantDetail(t, bearer(t, s, other, "GET", "/api/v1/integrations/sources?workspace_id="+ws, nil), 404, "Workspace not found")
	wantDetail(t, bearer(t, s, scoped, "POST", "/api/v1/integrations/templates/sources", map[string]any{"name": "x", "connector_type": "zendesk"}), 403,
		"This route needs an operator token")
	wantStatus(t, bearer(t, s, scoped, "GET", "/api/v1/integrations/sources/"+id, nil), 200)
	wantStatus(t, bearer(t, s, scoped, "DELETE", "/api/v1/integrations/sources/"+id, nil), 204)
	wantStatus(t, s.Do(t, s.Key, "GET", "/source-connections/"+id, nil), 404)
	wantStatus(t, bearer(t, s, op, "DELETE", "/api/v1/integrations/templates/sources/"+bare, nil), 204)
}
