package api_test

// fuzzenv_test.go: the environment the HTTP fuzz targets (fuzz_test.go) run
// against: one whole Valetkey per fuzz process (real SQLite file, vault,
// catalog, job queue) with a real authorization server, Pipedream and
// Composio emulators, and fixtures whose ids the route table fills in. Each
// input is one request through the in-process handler; what a successful
// request created or destroyed is put back afterwards, so the store does
// not grow with the number of inputs.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/connection"
	"github.com/valetkey/valetkey/internal/oauthapp"
	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/testkit/composio"
	"github.com/valetkey/valetkey/internal/testkit/oauthserver"
	"github.com/valetkey/valetkey/internal/testkit/pipedream"
	"github.com/valetkey/valetkey/internal/vault"
)

// canary marks a seeded secret; no response may carry one (but the route
// whose job is to return it).
func canary(name string) string { return "FUZZCANARY" + name + "X3K8" }

// fuzzRedirect is the allowlisted redirect URL of the fixture OAuth app.
const fuzzRedirect = "https://app.example.com/oauth/done"

// fuzzOrigin is the allowed origin of the fixture widget token.
const fuzzOrigin = "https://app.example.com"

// fixtures are the objects whose ids fill a route's placeholders.
type fixtures struct {
	coll      string // collection readable id
	conn      string // active testoauth connection (real tokens)
	keyConn   string // stripe connection with an injected API key
	job       string // a sync job of conn
	provider  string // pipedream auth provider readable id
	webhook   string // webhook subscription id
	app       string // OAuth app short name
	template  string // embedded source template id
	workspace string // the widget token's workspace
	wsConn    string // active testoauth connection in that workspace
	operator  string // operator JWT
	scoped    string // workspace-scoped widget JWT
	minted    time.Time
}

type fuzzEnv struct {
	s   *testkit.Server
	as  *oauthserver.Server
	h   http.Handler
	key string // the organization's API key
	org string
	fx  fixtures
	// secrets are seeded values no response may show.
	secrets []string
	// The fixture OAuth app's client (the authorization server's).
	appSecret   vault.Secret
	appClientID string
	// pageTags is how many '<' the flow's error page has: fuzzed text
	// shown on it must add none.
	pageTags int
}

// guardNetwork makes every client that uses http.DefaultTransport (the
// token, execute, revocation and auth provider clients all do) refuse any
// address but loopback, so that fuzzed inputs naming real providers never
// leave the machine. It is restored when the fuzz target ends. (Webhook
// deliveries have their own transport: a subscription a request creates is
// deleted before the next input.)
func guardNetwork(tb testing.TB) {
	orig := http.DefaultTransport
	tr := orig.(*http.Transport).Clone()
	var d net.Dialer
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return nil, errors.New("fuzz: no network beyond loopback")
		}
		return d.DialContext(ctx, network, addr)
	}
	http.DefaultTransport = tr
	tb.Cleanup(func() { http.DefaultTransport = orig })
}

// FuzzBackendEnv names the variable that runs the HTTP fuzz targets on
// Postgres ("postgres", with VALETKEY_TEST_POSTGRES_URL) instead of a
// SQLite file: Postgres refuses text SQLite stores (NUL, invalid UTF-8).
const FuzzBackendEnv = "VALETKEY_FUZZ_BACKEND"

func fuzzDatabaseURL(tb testing.TB) string {
	switch b := os.Getenv(FuzzBackendEnv); b {
	case "", "sqlite":
		return testkit.SQLiteURL(tb)
	case "postgres":
		return testkit.PostgresURL(tb)
	default:
		tb.Fatalf("%s=%q: want sqlite or postgres", FuzzBackendEnv, b)
		return ""
	}
}

func newFuzzEnv(tb testing.TB) *fuzzEnv {
	tb.Helper()
	guardNetwork(tb)
	appSecret := canary("AppSecret")
	as := oauthserver.New(tb, oauthserver.Options{ClientAuth: "header", ClientSecret: appSecret, Scopes: []string{"read", "write"}})
	pd := pipedream.New(tb, "pd-client-id-fuzz", canary("PipedreamSecret"))
	exp := time.Now().Add(24 * time.Hour).UTC()
	pd.AddAccount("proj_Fuzz123", pipedream.Account{ID: "apn_fuzz", AppSlug: "notion", Healthy: true, ExpiresAt: &exp,
		Credentials: map[string]any{"oauth_access_token": canary("PdAccess"), "oauth_refresh_token": canary("PdRefresh"),
			"oauth_client_id": "notion-client", "oauth_client_secret": canary("PdClientSecret")}})
	cp := composio.New(tb, "ak_"+canary("ComposioKey"))
	dir := testkit.WriteCatalogDir(tb, testkit.OAuthSource{ShortName: "testoauth", AuthorizeURL: as.AuthorizeURL(), TokenURL: as.TokenURL(),
		RevokeURL: as.RevokeURL(), PKCE: true, Scopes: []string{"read"}, APIBaseURL: as.URL})
	s := testkit.NewServer(tb, fuzzDatabaseURL(tb), func(c *config.Config) {
		c.CatalogDir = dir
		c.PipedreamBaseURL, c.ComposioBaseURL = pd.URL, cp.URL
		c.LogLevel = "warn"
		c.AllowPrivateTargets = false // fuzzed webhook URLs meet the production check
		c.RefreshRequestTimeout = time.Second
		c.Refresh.Backoff, c.Refresh.Attempts = time.Millisecond, 2
		c.Providers.Backoff, c.Providers.Attempts = time.Millisecond, 2
	})
	as.SetRedirectURIs(s.URL + connection.CallbackPath)
	o, err := s.App.Tenants.Organization(context.Background(), "default")
	if err != nil {
		tb.Fatal(err)
	}
	e := &fuzzEnv{s: s, as: as, h: s.Config.Handler, key: s.Key, org: o.ID, appClientID: "valetkey-client", appSecret: vault.NewSecret(appSecret),
		secrets: []string{appSecret, canary("PipedreamSecret"), canary("PdAccess"), canary("PdRefresh"), canary("PdClientSecret"),
			canary("ComposioKey"), canary("StripeKey"), s.Key}}
	e.fx.app = "testoauth"
	e.putApp(tb)
	e.ensure(tb)
	page := e.do(tb, "GET", connection.CallbackPath+"?state=unknown-state", nil, nil)
	if e.pageTags = bytes.Count(page.Body.Bytes(), []byte("<")); page.Code != http.StatusBadRequest || e.pageTags == 0 {
		tb.Fatalf("callback with an unknown state: %d %s", page.Code, page.Body)
	}
	return e
}

// do sends one request through the handler (no network) and returns the
// recorded answer. target is a request URI ("/path?query").
func (e *fuzzEnv) do(tb testing.TB, method, target string, body []byte, h http.Header) *httptest.ResponseRecorder {
	tb.Helper()
	req, err := http.NewRequest(method, "http://valetkey.test"+target, bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("%s %s: %v", method, target, err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.RemoteAddr = "192.0.2.7:40000"
	for k, v := range h {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// call is do with the API key and a JSON body, for fixtures: it fails
// unless the answer has the wanted status.
func (e *fuzzEnv) call(tb testing.TB, auth, method, target string, body any, want int) map[string]any {
	tb.Helper()
	var b []byte
	h := http.Header{}
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			tb.Fatal(err)
		}
		h.Set("Content-Type", "application/json")
	}
	switch {
	case auth == e.key:
		h.Set("X-API-Key", auth)
	case auth != "":
		h.Set("Authorization", "Bearer "+auth)
	}
	rec := e.do(tb, method, target, b, h)
	if rec.Code != want {
		tb.Fatalf("fixture %s %s: %d, want %d: %s", method, target, rec.Code, want, rec.Body)
	}
	m := map[string]any{}
	if rec.Body.Len() > 0 {
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
	}
	return m
}

func (e *fuzzEnv) putApp(tb testing.TB) {
	tb.Helper()
	if _, err := e.s.App.Apps.Put(context.Background(), e.org, e.fx.app, oauthapp.Input{ClientID: e.appClientID, ClientSecret: e.appSecret,
		RedirectURLAllowlist: []string{fuzzRedirect}}); err != nil {
		tb.Fatal(err)
	}
}

// consent follows a Valetkey auth URL (or a provider authorize URL) through
// the provider's consent and returns the callback URL the provider sends
// the browser to, as a request URI on Valetkey.
func (e *fuzzEnv) consent(tb testing.TB, authURL string) string {
	tb.Helper()
	if !strings.HasPrefix(authURL, e.as.URL) {
		rec := e.do(tb, "GET", strings.TrimPrefix(authURL, e.s.URL), nil, nil)
		if rec.Code != http.StatusFound {
			tb.Fatalf("auth url: %d %s", rec.Code, rec.Body)
		}
		authURL = rec.Header().Get("Location")
	}
	cb := e.as.Consent(tb, testkit.NoRedirectClient(), authURL, true)
	return cb.RequestURI()
}

// browserConnection creates a testoauth connection through the whole
// browser flow (real tokens from the authorization server).
func (e *fuzzEnv) browserConnection(tb testing.TB, coll string) string {
	tb.Helper()
	m := e.call(tb, e.key, "POST", "/source-connections", map[string]any{"name": "Fuzz OAuth", "short_name": "testoauth", "collection": coll,
		"redirect_url": fuzzRedirect}, 200)
	id, _ := m["id"].(string)
	auth, _ := m["auth"].(map[string]any)
	authURL, _ := auth["auth_url"].(string)
	rec := e.do(tb, "GET", e.consent(tb, authURL), nil, nil)
	if rec.Code != http.StatusFound || !strings.Contains(rec.Header().Get("Location"), "status=success") {
		tb.Fatalf("callback: %d %s %s", rec.Code, rec.Header(), rec.Body)
	}
	return id
}

// workspaceConnection creates a testoauth connection in the fixture
// workspace through the server-side flow (initiate, consent, secret_id).
func (e *fuzzEnv) workspaceConnection(tb testing.TB) string {
	tb.Helper()
	m := e.call(tb, e.fx.operator, "POST", "/api/v1/integrations/connectors/oauth/initiate", map[string]any{"external_user_id": "fuzz-user",
		"connector_type": "testoauth", "redirect_url": fuzzRedirect}, 200)
	consentURL, _ := m["consent_url"].(string)
	rec := e.do(tb, "GET", e.consent(tb, consentURL), nil, nil)
	loc, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || err != nil || loc.Query().Get("secret_id") == "" {
		tb.Fatalf("server-side callback: %d %s", rec.Code, rec.Header())
	}
	m = e.call(tb, e.fx.operator, "POST", "/api/v1/integrations/connectors", map[string]any{"external_user_id": "fuzz-user",
		"connector_type": "testoauth", "server_side_oauth_secret_id": loc.Query().Get("secret_id")}, 201)
	id, _ := m["id"].(string)
	return id
}

// mintTokens refreshes the operator and widget JWTs (they live 15 and 20
// minutes; a long local fuzz run outlives them).
func (e *fuzzEnv) mintTokens(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	a, secret, err := e.s.App.Embedded.CreateApplication(ctx, e.org, "fuzz")
	if err != nil {
		tb.Fatal(err)
	}
	e.secrets = append(e.secrets, secret.Reveal())
	m := e.call(tb, "", "POST", "/api/v1/account/applications/token", map[string]any{"client_id": a.ClientID, "client_secret": secret.Reveal()}, 200)
	e.fx.operator, _ = m["access_token"].(string)
	m = e.call(tb, e.key, "POST", "/connect/sessions", map[string]any{"external_user_id": "fuzz-user", "allowed_origin": fuzzOrigin,
		"redirect_url": fuzzRedirect}, 200)
	raw, _ := base64.StdEncoding.DecodeString(fmt.Sprint(m["token"]))
	var inner map[string]string
	if err := json.Unmarshal(raw, &inner); err != nil || inner["token"] == "" {
		tb.Fatalf("connect session token: %v %s", err, raw)
	}
	e.fx.scoped = inner["token"]
	m = e.call(tb, e.fx.scoped, "GET", "/api/v1/embedded/widget/session", nil, 200)
	e.fx.workspace, _ = m["workspace_id"].(string)
	e.fx.minted = time.Now()
}

// ensure (re)creates every fixture that is missing and removes everything
// else a fuzzed request may have created, so that the store stays the size
// it started at whatever the inputs. It returns how many objects it removed.
func (e *fuzzEnv) ensure(tb testing.TB) (removed int) {
	tb.Helper()
	ctx := context.Background()
	if time.Since(e.fx.minted) > 5*time.Minute {
		e.mintTokens(tb)
	}
	if apps, err := e.s.App.Apps.List(ctx, e.org); err != nil {
		tb.Fatal(err)
	} else {
		for _, a := range apps {
			if a.ShortName != e.fx.app {
				_ = e.s.App.Apps.Delete(ctx, e.org, a.ShortName)
				removed++
			}
		}
		// A fuzzed PUT may have replaced the fixture app's client or allowlist.
		e.putApp(tb)
	}
	if _, err := e.s.App.Connections.GetCollection(ctx, e.org, "fuzz"); err != nil {
		if _, err := e.s.App.Connections.CreateCollection(ctx, e.org, "Fuzz", "fuzz"); err != nil {
			tb.Fatal(err)
		}
	}
	e.fx.coll = "fuzz"
	if e.fx.conn == "" || !e.active(e.fx.conn) {
		if e.fx.conn != "" {
			_, _ = e.s.App.Connections.Delete(ctx, e.org, e.fx.conn)
		}
		e.fx.conn = e.browserConnection(tb, e.fx.coll)
		m := e.call(tb, e.key, "POST", "/source-connections/"+e.fx.conn+"/run", nil, 200)
		e.fx.job, _ = m["id"].(string)
	}
	if e.fx.keyConn == "" || !e.active(e.fx.keyConn) {
		if e.fx.keyConn != "" {
			_, _ = e.s.App.Connections.Delete(ctx, e.org, e.fx.keyConn)
		}
		m := e.call(tb, e.key, "POST", "/source-connections", map[string]any{"name": "Fuzz Stripe", "short_name": "stripe", "collection": e.fx.coll,
			"auth_fields": map[string]any{"api_key": "sk_test_" + canary("StripeKey")}}, 200)
		e.fx.keyConn, _ = m["id"].(string)
	}
	if e.fx.wsConn == "" || !e.active(e.fx.wsConn) {
		if e.fx.wsConn != "" {
			_, _ = e.s.App.Connections.Delete(ctx, e.org, e.fx.wsConn)
		}
		e.fx.wsConn = e.workspaceConnection(tb)
	}
	// (A request can replace its credentials only with valid ones.)
	if _, err := e.s.App.Providers.Get(ctx, e.org, "fuzz-pipedream"); err != nil {
		e.call(tb, e.key, "POST", "/auth-providers", map[string]any{"name": "Fuzz Pipedream", "readable_id": "fuzz-pipedream", "short_name": "pipedream",
			"auth_fields": map[string]any{"client_id": "pd-client-id-fuzz", "client_secret": canary("PipedreamSecret")}}, 200)
	}
	e.fx.provider = "fuzz-pipedream"
	hooks, err := e.s.App.Webhooks.List(ctx, e.org)
	if err != nil {
		tb.Fatal(err)
	}
	found := false
	for _, h := range hooks {
		if h.ID == e.fx.webhook {
			found = true
			continue
		}
		_ = e.s.App.Webhooks.Delete(ctx, e.org, h.ID)
		removed++
	}
	if !found {
		// An event no fixture causes, at a reserved name (RFC 6761) that
		// resolves nowhere, should a delivery ever be attempted.
		w, secret, err := e.s.App.Webhooks.Create(ctx, e.org, "https://hooks.invalid/valetkey", []string{"source_connection.needs_reauth"})
		if err != nil {
			tb.Fatal(err)
		}
		e.fx.webhook = w.ID
		e.secrets = append(e.secrets, secret.Reveal())
	}
	tmpls, err := e.s.App.Connections.ListTemplates(ctx, e.org)
	if err != nil {
		tb.Fatal(err)
	}
	found = false
	for _, t := range tmpls {
		if t.ID == e.fx.template {
			found = true
			continue
		}
		_ = e.s.App.Connections.DeleteTemplate(ctx, e.org, t.ID)
		removed++
	}
	if !found {
		t, err := e.s.App.Connections.CreateTemplate(ctx, e.org, "Fuzz Stripe", "stripe", nil)
		if err != nil {
			tb.Fatal(err)
		}
		e.fx.template = t.ID
	}
	// Last: connections and collections a request created.
	keep := []string{e.fx.conn, e.fx.keyConn, e.fx.wsConn}
	list, err := e.s.App.Connections.List(ctx, e.org, "", 0, 1000)
	if err != nil {
		tb.Fatal(err)
	}
	for _, v := range list {
		if !slices.Contains(keep, v.ID) {
			if _, err := e.s.App.Connections.Delete(ctx, e.org, v.ID); err != nil {
				tb.Fatalf("cleanup: delete connection %s: %v", v.ID, err)
			}
			removed++
		}
	}
	colls, err := e.s.App.Connections.ListCollections(ctx, e.org, 0, 1000)
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range colls {
		if c.ReadableID != e.fx.coll && !strings.HasPrefix(c.ReadableID, "ws-") {
			_, _ = e.s.App.Connections.DeleteCollection(ctx, e.org, c.ReadableID)
			removed++
		}
	}
	provs, err := e.s.App.Providers.List(ctx, e.org)
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range provs {
		if p.ReadableID != e.fx.provider {
			_, _ = e.s.App.Providers.Delete(ctx, e.org, p.ReadableID)
			removed++
		}
	}
	return removed
}

// active reports whether a fixture connection still exists unchanged
// enough to serve: active, with its credential.
func (e *fuzzEnv) active(id string) bool {
	v, err := e.s.App.Connections.Get(context.Background(), e.org, id)
	return err == nil && v.Status == "active" && v.Authenticated
}
