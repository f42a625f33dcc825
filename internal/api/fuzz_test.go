package api_test

// Fuzz targets for every request decoder of the HTTP API and for the OAuth
// callback's parameters. Each drives the real router in process (no
// network) against one Valetkey per fuzz process (fuzzenv_test.go), on a
// SQLite file or, with VALETKEY_FUZZ_BACKEND=postgres, on Postgres.
//
//	go test -run='^$' -fuzz='^FuzzNativeRequests$' -fuzztime=60s ./internal/api/
//
// Routes that decode a body or user-controlled path and query parameters:
//
// Native dialect (FuzzNativeRequests), X-API-Key:
//
//	POST   /collections                                  body {name, readable_id}
//	GET    /collections                                  ?skip&limit
//	GET    /collections/{readable_id}                    path
//	DELETE /collections/{readable_id}                    path
//	GET    /sources/{short_name}                         path
//	POST   /source-connections                           body (seeds' and SDK shapes, schedule cron, redirect_url, auth provider)
//	GET    /source-connections                           ?collection&skip&limit
//	GET    /source-connections/{id}                      path (UUID)
//	PATCH  /source-connections/{id}                      path, body
//	DELETE /source-connections/{id}                      path
//	GET    /source-connections/{id}/token                path, ?include_refresh_token
//	PUT    /oauth-apps/{short_name}                      path, body {client_id, client_secret, scopes, redirect_url_allowlist}
//	DELETE /oauth-apps/{short_name}                      path
//	POST   /source-connections/{id}/run                  path, ?force_full_sync, body {access_token}
//	GET    /source-connections/{id}/jobs                 path, ?limit
//	GET    /source-connections/{id}/jobs/{job_id}        path
//	POST   /source-connections/{id}/jobs/{job_id}/cancel path
//	POST   /collections/{readable_id}/refresh_all        path
//	GET    /collections/{readable_id}/search             path, ?query&limit
//	POST   /collections/{readable_id}/search             path, body (SDK search request)
//	POST   /webhooks                                     body {url, events}
//	DELETE /webhooks/{id}                                path
//	GET    /webhooks/{id}/deliveries                     path, ?limit
//	GET    /audit                                        ?action&target_id&actor&since&limit
//	POST   /auth-providers                               body {name, readable_id, short_name, auth_fields}
//	GET    /auth-providers/{readable_id}                 path
//	PUT    /auth-providers/{readable_id}                 path, body {name, auth_fields}
//	DELETE /auth-providers/{readable_id}                 path
//	POST   /source-connections/{id}/execute              path, body {entity, action, params}
//	GET    /source-connections/{id}/entities             path
//	POST   /connect/sessions                             body {collection, external_user_id, allowed_sources, redirect_url, allowed_origin}
//	PUT    /organization/branding                        body {display_name, accent_color, logo_url}
//	GET    /oauth-apps, /webhooks, /auth-providers, /organization/branding (no input but the key: leak checks)
//	GET    /connect/oauth/{code}                         path (browser, no key)
//	GET    /embedded-widget                              ?allowedOrigin&workspaceId (browser, no key)
//
// Embedded dialect (FuzzEmbeddedRequests), Authorization: Bearer:
//
//	POST   /api/v1/account/applications/token                   body {client_id, client_secret} (no token)
//	POST   /api/v1/embedded/widget_token                        body {externalUserId, organizationId, allowedOrigin}
//	GET    /api/v1/workspaces
//	PUT    /api/v1/oauth/credentials                            body {connector_type, configuration}
//	GET    /api/v1/oauth/credentials/spec                       ?connector_type
//	POST   /api/v1/integrations/connectors/oauth/initiate       body {external_user_id, connector_type, redirect_url, oauth_input_configuration}
//	POST   /api/v1/integrations/connectors                      body {external_user_id, connector_type, name, server_side_oauth_secret_id}
//	POST   /api/v1/connectors/sources/{id}/execute              path, body {entity, action, params}
//	GET    /api/v1/connectors/sources/{id}/entities             path
//	POST   /api/v1/integrations/templates/sources               body {name, connector_type, partial_default_config}
//	GET    /api/v1/integrations/templates/sources
//	DELETE /api/v1/integrations/templates/sources/{id}          path
//	POST   /api/v1/integrations/sources                         body {workspace_id, source_config_template_id, connection_configuration, name}
//	GET    /api/v1/integrations/sources                         ?workspace_id
//	GET    /api/v1/integrations/sources/{id}                    path
//	DELETE /api/v1/integrations/sources/{id}                    path
//	GET    /api/v1/embedded/widget/session                      (widget token)
//	GET    /api/v1/embedded/widget/connections                  (widget token)
//	POST   /api/v1/embedded/widget/connections                  body {short_name, name, auth_fields, config}
//	POST   /api/v1/embedded/widget/connections/{id}/reconnect   path, body {auth_fields}
//
// OAuth callback (FuzzOAuthCallback): GET /oauth/callback with code, state,
// error, error_description, iss and any other parameter, for unknown states
// and for valid pending states of the browser flow (with and without a
// redirect URL) and of the embedded server-side flow.
//
// Invariants for every input: no panic and no 500 (a 502/503 only on routes
// that call a provider); every answer of a JSON route is JSON, and every
// error is {"detail": "message"} or, for 422, {"detail": [{loc, msg, type}]}
// with a location naming the field; no seeded secret (client secrets,
// tokens, API keys, webhook secrets) in any answer but /token's; a request
// that failed leaves nothing behind.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/connection"
	"github.com/valetkey/valetkey/internal/testkit"
)

// fuzzRoute is one operation of the route tables. Path placeholders
// ({conn}, {job}...) name fixtures; the fuzzed param replaces the last one.
type fuzzRoute struct {
	method, path string
	auth         string   // "key", "operator", "scoped" or "none"
	query        string   // seed query
	bodies       []string // seed bodies (also for routes without one: they must ignore it)
	upstream     bool     // calls a provider: may answer 502/503
	secretOK     bool     // returns a credential to its owner when it succeeds
	page         bool     // a browser route: HTML or a redirect, not JSON
}

// The route tables: add new routes at the end (committed inputs under
// testdata/fuzz select a route by its index).
var nativeRoutes = []fuzzRoute{
	{method: "POST", path: "/collections", auth: "key", bodies: []string{`{"name": "Product Docs"}`, `{"name": "Finance Data", "readable_id": "finance-data"}`, `{"name": ""}`, `{"name": "x", "readable_id": "UPPER case!"}`}},
	{method: "GET", path: "/collections", auth: "key", query: "skip=0&limit=10"},
	{method: "GET", path: "/collections/{coll}", auth: "key"},
	{method: "DELETE", path: "/collections/{coll}", auth: "key"},
	{method: "GET", path: "/sources/{source}", auth: "key"},
	{method: "POST", path: "/source-connections", auth: "key", upstream: true, bodies: []string{
		`{"name": "Asana", "short_name": "asana", "collection": "fuzz", "auth_fields": {"access_token": "at-1", "refresh_token": "rt-1"}}`,
		`{"name": "Asana SDK", "short_name": "asana", "readable_collection_id": "fuzz", "authentication": {"access_token": "at-1", "refresh_token": "rt-1", "expires_at": "2026-12-01T00:00:00Z"}}`,
		`{"name": "Stripe", "short_name": "stripe", "authentication": {"credentials": {"api_key": "sk_live_abc"}}}`,
		`{"name": "Test OAuth", "short_name": "testoauth", "redirect_url": "https://app.example.com/oauth/done?user=42"}`,
		`{"name": "Test OAuth", "short_name": "testoauth", "authentication": {"redirect_uri": "https://app.example.com/oauth/done", "client_id": "c", "client_secret": "s"}}`,
		`{"name": "Team Notion", "short_name": "notion", "auth_provider": "fuzz-pipedream", "auth_provider_config": {"project_id": "proj_Fuzz123", "account_id": "apn_fuzz"}}`,
		`{"name": "Scheduled", "short_name": "github", "collection": "fuzz", "auth_fields": {"access_token": "gho_x"}, "schedule": {"cron": "*/15 * * * *"}, "sync_immediately": false}`,
		`{"name": "Slack", "short_name": "slack", "authentication": {"access_token": "xoxb-1", "expires_in": 3600}, "config": {"x": 1}}`,
	}},
	{method: "GET", path: "/source-connections", auth: "key", query: "collection=fuzz&skip=0&limit=5"},
	{method: "GET", path: "/source-connections/{conn}", auth: "key"},
	{method: "PATCH", path: "/source-connections/{conn}", auth: "key", bodies: []string{`{"name": "Renamed Connection", "description": "d"}`,
		`{"auth_fields": {"access_token": "new-at"}}`, `{"schedule": {"cron": "@hourly"}}`, `{"authentication": {"access_token": "a", "expires_at": "soon"}}`}},
	{method: "DELETE", path: "/source-connections/{keyConn}", auth: "key"},
	{method: "GET", path: "/source-connections/{conn}/token", auth: "key", query: "include_refresh_token=true", upstream: true, secretOK: true},
	{method: "PUT", path: "/oauth-apps/{app}", auth: "key", bodies: []string{`{"client_id": "cid", "client_secret": "csecret", "scopes": ["read"], "redirect_url_allowlist": ["https://app.example.com/oauth/done"]}`,
		`{"client_id": "cid", "client_secret": "csecret", "redirect_url_allowlist": ["javascript:alert(1)"]}`}},
	{method: "DELETE", path: "/oauth-apps/{app}", auth: "key"},
	{method: "POST", path: "/source-connections/{conn}/run", auth: "key", query: "force_full_sync=true", upstream: true, bodies: []string{"", `{"access_token": "one-off"}`}},
	{method: "GET", path: "/source-connections/{conn}/jobs", auth: "key", query: "limit=5"},
	{method: "GET", path: "/source-connections/{conn}/jobs/{job}", auth: "key"},
	{method: "POST", path: "/source-connections/{conn}/jobs/{job}/cancel", auth: "key"},
	{method: "POST", path: "/collections/{coll}/refresh_all", auth: "key", upstream: true},
	{method: "GET", path: "/collections/{coll}/search", auth: "key", query: "query=ada&limit=10"},
	{method: "POST", path: "/collections/{coll}/search", auth: "key", bodies: []string{`{"query": "ada", "limit": 10, "retrieval_strategy": "hybrid", "rerank": true}`}},
	{method: "POST", path: "/webhooks", auth: "key", bodies: []string{`{"url": "https://app.example.com/hooks/valetkey", "events": ["sync.completed", "sync.failed"]}`,
		`{"url": "http://169.254.169.254/latest", "events": ["sync.completed"]}`}},
	{method: "DELETE", path: "/webhooks/{webhook}", auth: "key"},
	{method: "GET", path: "/webhooks/{webhook}/deliveries", auth: "key", query: "limit=10"},
	{method: "GET", path: "/audit", auth: "key", query: "action=credential.read&actor=x&since=2024-01-01T00:00:00Z&limit=10"},
	{method: "POST", path: "/auth-providers", auth: "key", upstream: true, bodies: []string{`{"name": "My Pipedream", "short_name": "pipedream", "auth_fields": {"client_id": "pd-client-id-fuzz", "client_secret": "wrong"}}`,
		`{"name": "My Composio", "short_name": "composio", "auth_fields": {"api_key": "ak_x"}}`}},
	{method: "GET", path: "/auth-providers/{provider}", auth: "key"},
	{method: "PUT", path: "/auth-providers/{provider}", auth: "key", upstream: true, bodies: []string{`{"name": "Renamed", "auth_fields": {"client_id": "pd-client-id-fuzz", "client_secret": "nope"}}`}},
	{method: "DELETE", path: "/auth-providers/{provider}", auth: "key"},
	{method: "POST", path: "/source-connections/{conn}/execute", auth: "key", upstream: true, bodies: []string{`{"entity": "me", "action": "get"}`,
		`{"entity": "me", "action": "get", "params": {"id": "x", "cursor": "abc"}}`, `{"entity": "contacts", "action": "list", "params": {"limit": 10}}`}},
	{method: "GET", path: "/source-connections/{conn}/entities", auth: "key"},
	{method: "POST", path: "/connect/sessions", auth: "key", bodies: []string{`{"external_user_id": "user_42", "collection": "fuzz", "allowed_sources": ["testoauth", "stripe"], "allowed_origin": "https://app.example.com", "redirect_url": "https://app.example.com/oauth/done"}`, `{}`}},
	{method: "PUT", path: "/organization/branding", auth: "key", bodies: []string{`{"display_name": "Acme CRM", "accent_color": "#0a7cff", "logo_url": "https://acme.example/logo.svg"}`,
		`{"logo_url": "data:image/png;base64,iVBORw0KGgo="}`}},
	{method: "GET", path: "/connect/oauth/{code}", auth: "none", page: true},
	{method: "GET", path: "/embedded-widget", auth: "none", page: true, query: "workspaceId=x&allowedOrigin=https://app.example.com"},
	{method: "GET", path: "/oauth-apps", auth: "key"},
	{method: "GET", path: "/webhooks", auth: "key"},
	{method: "GET", path: "/auth-providers", auth: "key"},
	{method: "GET", path: "/organization/branding", auth: "key"},
}

var embeddedRoutes = []fuzzRoute{
	{method: "POST", path: "/api/v1/account/applications/token", auth: "none", bodies: []string{`{"client_id": "vkc_x", "client_secret": "vks_y"}`}},
	{method: "POST", path: "/api/v1/embedded/widget_token", auth: "operator", bodies: []string{`{"externalUserId": "user_12345", "allowedOrigin": "https://yourapp.com"}`,
		`{"externalUserId": "user_12345", "organizationId": "00000000-0000-0000-0000-000000000000", "allowedOrigin": "https://yourapp.com/path"}`}},
	{method: "GET", path: "/api/v1/workspaces", auth: "operator"},
	{method: "PUT", path: "/api/v1/oauth/credentials", auth: "operator", bodies: []string{`{"connector_type": "TestOAuth", "configuration": {"client_id": "valetkey-client", "client_secret": "other"}}`,
		`{"connector_type": "stripe", "configuration": {"client_id": 1}}`}},
	{method: "GET", path: "/api/v1/oauth/credentials/spec", auth: "operator", query: "connector_type=testoauth"},
	{method: "POST", path: "/api/v1/integrations/connectors/oauth/initiate", auth: "operator", bodies: []string{`{"external_user_id": "user_12345", "connector_type": "testoauth", "redirect_url": "https://app.example.com/oauth/done"}`,
		`{"external_user_id": "user_12345", "connector_type": "hubspot", "redirect_url": "https://yourapp.com/oauth/callback", "oauth_input_configuration": {"x": 1}}`}},
	{method: "POST", path: "/api/v1/integrations/connectors", auth: "operator", bodies: []string{`{"external_user_id": "fuzz-user", "connector_type": "testoauth", "server_side_oauth_secret_id": "sec_abc"}`}},
	{method: "POST", path: "/api/v1/connectors/sources/{wsConn}/execute", auth: "operator", upstream: true, bodies: []string{`{"entity": "me", "action": "get"}`, `{"entity": "contacts", "action": "list", "params": {"limit": 10}}`}},
	{method: "GET", path: "/api/v1/connectors/sources/{wsConn}/entities", auth: "scoped"},
	{method: "POST", path: "/api/v1/integrations/templates/sources", auth: "operator", bodies: []string{`{"name": "Stripe for users", "connector_type": "Stripe", "partial_default_config": {}}`,
		`{"name": "Zendesk", "connector_type": "zendesk", "partial_default_config": {"subdomain": "acme", "nope": 1}}`}},
	{method: "GET", path: "/api/v1/integrations/templates/sources", auth: "operator"},
	{method: "DELETE", path: "/api/v1/integrations/templates/sources/{template}", auth: "operator"},
	{method: "POST", path: "/api/v1/integrations/sources", auth: "scoped", bodies: []string{`{"workspace_id": "{{workspace}}", "source_config_template_id": "{{template}}", "connection_configuration": {"api_key": "sk_test_abc"}, "name": "My Stripe"}`}},
	{method: "GET", path: "/api/v1/integrations/sources", auth: "operator", query: "workspace_id={{workspace}}"},
	{method: "GET", path: "/api/v1/integrations/sources/{wsConn}", auth: "scoped"},
	{method: "DELETE", path: "/api/v1/integrations/sources/{keyConn}", auth: "operator"},
	{method: "GET", path: "/api/v1/embedded/widget/session", auth: "scoped"},
	{method: "GET", path: "/api/v1/embedded/widget/connections", auth: "scoped"},
	{method: "POST", path: "/api/v1/embedded/widget/connections", auth: "scoped", bodies: []string{`{"short_name": "stripe", "name": "My Stripe", "auth_fields": {"api_key": "sk_test_abc"}}`,
		`{"short_name": "testoauth"}`}},
	{method: "POST", path: "/api/v1/embedded/widget/connections/{wsConn}/reconnect", auth: "scoped", bodies: []string{`{}`, `{"auth_fields": {"access_token": "x"}}`}},
}

// escapeTarget percent-encodes what cannot appear in a request target as
// sent on the wire (controls, space, non-ASCII, '#', and '?' unless query
// is set), keeping everything else, '/' and '%' included, as it is.
func escapeTarget(s string, query bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '#' || (c == '?' && !query) {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// fill replaces fixture placeholders in s.
func (e *fuzzEnv) fill(s string) string {
	return strings.NewReplacer("{{workspace}}", e.fx.workspace, "{{template}}", e.fx.template, "{coll}", e.fx.coll, "{conn}", e.fx.conn,
		"{keyConn}", e.fx.keyConn, "{job}", e.fx.job, "{provider}", e.fx.provider, "{webhook}", e.fx.webhook, "{app}", e.fx.app,
		"{source}", "testoauth", "{template}", e.fx.template, "{wsConn}", e.fx.wsConn, "{code}", "").Replace(s)
}

// target builds the request URI: fixtures in the path, param (when not
// empty) in place of the last placeholder. ok is false for a URI no client
// could send.
func (e *fuzzEnv) target(r fuzzRoute, param, query string) (string, bool) {
	path := r.path
	if i := strings.LastIndexByte(path, '{'); i >= 0 && param != "" {
		j := strings.IndexByte(path[i:], '}')
		path = path[:i] + escapeTarget(param, false) + path[i+j+1:]
	}
	t := e.fill(path)
	if query != "" {
		t += "?" + escapeTarget(e.fill(query), true)
	}
	if _, err := url.ParseRequestURI(t); err != nil {
		return "", false
	}
	return t, true
}

// header sets the credentials and content type of a fuzzed request.
// variant bits 0-1 pick the content type, bits 2-3 the credential (0: the
// route's own).
func (e *fuzzEnv) header(r fuzzRoute, variant uint8) http.Header {
	h := http.Header{}
	switch variant & 3 {
	case 0:
		h.Set("Content-Type", "application/json")
	case 1:
		h.Set("Content-Type", "application/json; charset=utf-8")
	case 2:
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	auth := r.auth
	switch variant >> 2 & 3 {
	case 1:
		auth = "operator"
	case 2:
		auth = "scoped"
	case 3:
		auth = "key"
	}
	switch auth {
	case "key":
		if strings.HasPrefix(r.path, "/api/v1/") {
			h.Set("Authorization", "Bearer "+e.key)
		} else {
			h.Set("X-API-Key", e.key)
		}
	case "operator":
		h.Set("Authorization", "Bearer "+e.fx.operator)
	case "scoped":
		h.Set("Authorization", "Bearer "+e.fx.scoped)
	}
	return h
}

// errorShape checks an error body: {"detail": "message"} or, for 422,
// {"detail": [{loc, msg, type}]} whose loc names where the problem is.
func errorShape(status int, body []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("error body is not a JSON object: %v", err)
	}
	if len(m) != 1 || m["detail"] == nil {
		return fmt.Errorf("error body has keys other than detail")
	}
	if status != http.StatusUnprocessableEntity {
		var s string
		if err := json.Unmarshal(m["detail"], &s); err != nil || strings.TrimSpace(s) == "" {
			return fmt.Errorf("detail is not a message")
		}
		return nil
	}
	var list []struct {
		Loc  []any   `json:"loc"`
		Msg  *string `json:"msg"`
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(m["detail"], &list); err != nil || len(list) == 0 {
		return fmt.Errorf("422 detail is not a list of field errors")
	}
	for _, d := range list {
		if len(d.Loc) == 0 || d.Msg == nil || *d.Msg == "" || d.Type == nil || *d.Type == "" {
			return fmt.Errorf("field error without loc, msg or type: %+v", d)
		}
		switch d.Loc[0] {
		case "body", "query", "path", "header":
		default:
			return fmt.Errorf("field error loc %v does not start with body, query, path or header", d.Loc)
		}
	}
	return nil
}

// leaks returns the seeded secrets found in the answer.
func (e *fuzzEnv) leaks(header http.Header, body []byte) []string {
	var found []string
	for _, s := range e.secrets {
		if bytes.Contains(body, []byte(s)) {
			found = append(found, s)
			continue
		}
		for _, vs := range header {
			for _, v := range vs {
				if strings.Contains(v, s) {
					found = append(found, s)
				}
			}
		}
	}
	return found
}

// fuzzRequest sends one fuzzed request to a route and checks the
// invariants; then puts the store back as it was.
func (e *fuzzEnv) fuzzRequest(t *testing.T, routes []fuzzRoute, route, variant uint8, param, query string, body []byte) {
	r := routes[int(route)%len(routes)]
	target, ok := e.target(r, param, query)
	if !ok {
		return
	}
	body = bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("{{workspace}}"), []byte(e.fx.workspace)), []byte("{{template}}"), []byte(e.fx.template))
	what := fmt.Sprintf("%s %s (body %q)", r.method, target, body)
	defer watchdog(what)()
	rec := e.do(t, r.method, target, body, e.header(r, variant))
	status, out := rec.Code, rec.Body.Bytes()
	if status >= 500 && !(r.upstream && (status == http.StatusBadGateway || status == http.StatusServiceUnavailable)) {
		t.Fatalf("%s answered %d: %s\nlog: %s", what, status, out, e.logTail())
	}
	if found := e.leaks(rec.Header(), out); len(found) > 0 && !(r.secretOK && status == http.StatusOK) {
		t.Fatalf("%s answered %d with seeded secrets %q", what, status, found)
	}
	switch {
	case r.page:
		// The flow's pages come from one template: fuzzed text adds no tag.
		if strings.HasPrefix(r.path, connection.AuthorizePath) && strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") &&
			bytes.Count(out, []byte("<")) != e.pageTags {
			t.Fatalf("%s: the page has %d '<', the template %d: input reflected unescaped?\n%s", what, bytes.Count(out, []byte("<")), e.pageTags, out)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); r.path == "/embedded-widget" && status == http.StatusOK && csp == "" {
			t.Fatalf("%s: no Content-Security-Policy", what)
		}
	case status == http.StatusNoContent || (status >= 300 && status < 400):
	case !json.Valid(out):
		t.Fatalf("%s answered %d with a body that is not JSON: %q", what, status, out)
	case status >= 400:
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s answered %d as %q", what, status, ct)
		}
		if err := errorShape(status, out); err != nil {
			t.Fatalf("%s answered %d: %v: %s", what, status, err, out)
		}
	}
	if r.method == http.MethodGet && !r.secretOK {
		return
	}
	// A credential replaced through a fixture makes it unusable for the
	// next inputs: rebuild it.
	if status < 300 && (r.method == http.MethodPatch || strings.HasSuffix(r.path, "/reconnect")) {
		for _, id := range []*string{&e.fx.conn, &e.fx.wsConn} {
			if strings.Contains(target, *id) {
				_, _ = e.s.App.Connections.Delete(context.Background(), e.org, *id)
			}
		}
	}
	if removed := e.ensure(t); removed > 0 && status >= 400 {
		t.Fatalf("%s failed with %d but left %d objects behind: %s", what, status, removed, out)
	}
}

// addSeeds adds each route's seed bodies and a few broken ones.
func addSeeds(f *testing.F, routes []fuzzRoute) {
	broken := []string{``, `{`, `null`, `[]`, `"x"`, `{"name": 1}`, `{"unknown": true}`, `{"name": "\u0000"}`}
	for i, r := range routes {
		bodies := r.bodies
		if len(bodies) == 0 {
			bodies = []string{""}
		}
		for _, b := range bodies {
			f.Add(uint8(i), uint8(0), "", r.query, []byte(b))
			for _, v := range fieldVariants(b) {
				f.Add(uint8(i), uint8(0), "", r.query, v)
			}
		}
		for j, b := range broken {
			f.Add(uint8(i), uint8(j%3), "", "", []byte(b))
		}
		f.Add(uint8(i), uint8(0), "../nope", "limit=0&skip=-1", []byte(bodies[0]))
		f.Add(uint8(i), uint8(12), "%2e%2e", "limit=abc", []byte(bodies[0]))
	}
}

// fieldVariants are copies of a JSON object body with each field, and each
// field of an object field, left out or replaced by a value of another
// kind: the missing and mistyped fields a decoder must answer with a 422.
func fieldVariants(body string) [][]byte {
	var obj map[string]any
	if json.Unmarshal([]byte(body), &obj) != nil {
		return nil
	}
	others := []any{nil, "", 1e30, []any{"x"}}
	var out [][]byte
	add := func(v map[string]any) {
		b, _ := json.Marshal(v)
		out = append(out, b)
	}
	var walk func(root, cur map[string]any)
	walk = func(root, cur map[string]any) {
		for _, k := range slices.Sorted(maps.Keys(cur)) {
			old := cur[k]
			delete(cur, k)
			add(root)
			for _, o := range others {
				cur[k] = o
				add(root)
			}
			cur[k] = old
			if sub, ok := old.(map[string]any); ok && len(sub) > 0 {
				walk(root, sub)
			}
		}
	}
	walk(obj, obj)
	return out
}

// FuzzNativeRequests posts arbitrary bodies, path parameters and queries to
// every route of the native dialect with a valid API key.
func FuzzNativeRequests(f *testing.F) {
	e := newFuzzEnv(f)
	addSeeds(f, nativeRoutes)
	f.Fuzz(func(t *testing.T, route, variant uint8, param, query string, body []byte) {
		e.fuzzRequest(t, nativeRoutes, route, variant, param, query, body)
	})
}

// FuzzEmbeddedRequests does the same for the embedded dialect, with
// operator and widget tokens.
func FuzzEmbeddedRequests(f *testing.F) {
	e := newFuzzEnv(f)
	addSeeds(f, embeddedRoutes)
	f.Fuzz(func(t *testing.T, route, variant uint8, param, query string, body []byte) {
		e.fuzzRequest(t, embeddedRoutes, route, variant, param, query, body)
	})
}

// FuzzOAuthCallback sends arbitrary code, state, error, error_description,
// iss and other parameters to the OAuth callback. flow (mode&3) picks the
// state: 0 the fuzzed one; 1 a valid pending state of the browser flow with
// a redirect URL; 2 the same without one (the callback answers a page); 3
// a valid state of the embedded server-side flow. With mode&4 the provider
// has issued a real code, sent unless code is set.
//
// Invariants: never a 5xx or a panic; a redirect goes only to the flow's
// allowlisted redirect URL; success (status=success, a secret_id, an
// activated connection) only for the valid state with the real code and
// no error; pages never carry the input unescaped; no seeded secret in
// any answer.
func FuzzOAuthCallback(f *testing.F) {
	e := newFuzzEnv(f)
	ctx := context.Background()
	m := e.call(f, e.key, "POST", "/source-connections", map[string]any{"name": "Pending OAuth", "short_name": "testoauth", "collection": e.fx.coll}, 200)
	pending, _ := m["id"].(string)
	tags := e.pageTags
	for _, s := range []struct {
		mode                                 uint8
		code, state, errCode, errDesc, extra string
	}{
		{0, "abc", "unknown", "", "", ""},
		{1, "garbage-code", "", "", "", ""},
		{1, "", "", "access_denied", "The user said <b>no</b>", ""},
		{2, "", "", "server_error", "<script>alert(1)</script>", "iss=https%3A%2F%2Fevil.example"},
		{3, "x", "", "", "", "iss=https://as.example"},
		{5, "", "", "", "", ""},
		{6, "", "", "", "", "iss=https%3A%2F%2Fas.example&extra=1"},
		{7, "", "", "", "", ""},
		{5, "", "", "access_denied", "", ""},
		{7, "ory_ac_forged", "", "", "", ""},
		{0, "", "", "", "", "state=a&state=b&code=c"},
	} {
		f.Add(s.mode, s.code, s.state, s.errCode, s.errDesc, s.extra)
	}
	f.Fuzz(func(t *testing.T, mode uint8, code, state, errCode, errDesc, extra string) {
		flow, real := mode&3, mode&4 != 0
		valid, realCode := "", ""
		var authorize string
		switch flow {
		case 1, 2:
			redirect := fuzzRedirect
			if flow == 2 {
				redirect = ""
			}
			v, err := e.s.App.Connections.Reauthorize(ctx, e.org, pending, redirect)
			if err != nil {
				t.Fatal(err)
			}
			rec := e.do(t, "GET", strings.TrimPrefix(v.AuthURL, e.s.URL), nil, nil)
			if rec.Code != http.StatusFound {
				t.Fatalf("auth url: %d %s", rec.Code, rec.Body)
			}
			authorize = rec.Header().Get("Location")
		case 3:
			u, err := e.s.App.Connections.InitiateServerSide(ctx, e.org, e.fx.workspace, "testoauth", fuzzRedirect, nil)
			if err != nil {
				t.Fatal(err)
			}
			authorize = u
		}
		if authorize != "" {
			u, err := url.Parse(authorize)
			if err != nil {
				t.Fatal(err)
			}
			valid = u.Query().Get("state")
			if real {
				cb := e.as.Consent(t, testkit.NoRedirectClient(), authorize, true)
				realCode = cb.Query().Get("code")
				if code == "" {
					code = realCode
				}
			}
		}
		if state == "" {
			state = valid
		}
		q := url.Values{}
		for k, v := range map[string]string{"state": state, "code": code, "error": errCode, "error_description": errDesc} {
			if v != "" {
				q.Set(k, v)
			}
		}
		raw := q.Encode()
		if extra != "" {
			raw += "&" + escapeTarget(extra, true)
		}
		target := connection.CallbackPath + "?" + raw
		sent, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		got := sent.Query()
		expectSuccess := valid != "" && realCode != "" && got.Get("state") == valid && got.Get("code") == realCode && got.Get("error") == ""
		before, err := e.s.App.Connections.Get(ctx, e.org, pending)
		if err != nil {
			t.Fatal(err)
		}
		count := e.connections(t)

		what := fmt.Sprintf("flow %d, GET %s", flow, target)
		defer watchdog(what)()
		rec := e.do(t, "GET", target, nil, nil)
		status, out, loc := rec.Code, rec.Body.Bytes(), rec.Header().Get("Location")
		if status != http.StatusFound && status != http.StatusOK && status != http.StatusBadRequest {
			t.Fatalf("%s answered %d: %s", what, status, out)
		}
		if found := e.leaks(rec.Header(), out); len(found) > 0 {
			t.Fatalf("%s answered with seeded secrets %q", what, found)
		}
		success := false
		if status == http.StatusFound {
			if !strings.HasPrefix(loc, fuzzRedirect+"?") || (flow != 1 && flow != 3) {
				t.Fatalf("%s redirected to %q", what, loc)
			}
			lu, err := url.Parse(loc)
			if err != nil {
				t.Fatalf("%s redirected to %q: %v", what, loc, err)
			}
			lq := lu.Query()
			success = lq.Get("status") == "success" || lq.Get("secret_id") != ""
			if lq.Get("secret_id") != "" && flow != 3 || lq.Get("status") == "success" && flow == 3 {
				t.Fatalf("%s: %q is not this flow's outcome", what, loc)
			}
		} else {
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || rec.Header().Get("Content-Security-Policy") == "" {
				t.Fatalf("%s answered %d as %q without CSP", what, status, ct)
			}
			if n := bytes.Count(out, []byte("<")); n != tags {
				t.Fatalf("%s: the page has %d '<' (the page has %d): input reflected unescaped?\n%s", what, n, tags, out)
			}
			success = status == http.StatusOK
		}
		if success != expectSuccess {
			t.Fatalf("%s: success = %v, want %v (%d %q)", what, success, expectSuccess, status, loc)
		}
		after, err := e.s.App.Connections.Get(ctx, e.org, pending)
		if err != nil {
			t.Fatal(err)
		}
		changed := after.Status != before.Status || !equalTime(after.AuthenticatedAt, before.AuthenticatedAt)
		if changed && !(expectSuccess && flow != 3) {
			t.Fatalf("%s changed the pending connection (%s → %s)", what, before.Status, after.Status)
		}
		if n := e.connections(t); n != count {
			t.Fatalf("%s: %d connections before, %d after", what, count, n)
		}
	})
}

// inputTimeout bounds one input: a request that hangs is a bug too.
const inputTimeout = 30 * time.Second

// watchdog crashes the fuzz process, with every goroutine's stack, when an
// input runs longer than inputTimeout (the fuzzer then keeps the input).
// Call the returned func when the input is done.
func watchdog(what string) func() {
	timer := time.AfterFunc(inputTimeout, func() {
		buf := make([]byte, 8<<20)
		n := runtime.Stack(buf, true)
		fmt.Fprintf(os.Stderr, "%s did not finish in %s\n%s\n", what, inputTimeout, buf[:n])
		panic("fuzz input hung: " + what)
	})
	return func() { timer.Stop() }
}

// logTail is the end of the server's log, for a failure message.
func (e *fuzzEnv) logTail() string {
	l := e.s.Logs.String()
	return l[max(0, len(l)-1500):]
}

func (e *fuzzEnv) connections(t *testing.T) int {
	list, err := e.s.App.Connections.List(context.Background(), e.org, "", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func equalTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
