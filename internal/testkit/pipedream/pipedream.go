// Package pipedream emulates the two Pipedream Connect REST endpoints that
// Valetkey calls: the OAuth client-credentials token endpoint and "retrieve
// an account" with its credentials. It runs on an httptest server and adds
// knobs a test needs (forced failures, delays, counters).
//
// # What Pipedream publishes, and what this emulator does
//
// Sources checked (stored copies, looked up while writing this package):
//
//   - https://pipedream.com/docs/connect/api-reference/authentication
//   - https://pipedream.com/docs/connect/api-reference/create-oauth-token
//   - https://pipedream.com/docs/rest-api/api-reference/oauth/get-a-new-access-token
//   - https://pipedream.com/docs/connect/api-reference/retrieve-account
//   - https://pipedream.com/docs/connect/api-reference/list-accounts
//   - https://pipedream.com/docs/connect/api-reference/rate-limits
//   - https://pipedream.com/docs/connect/managed-auth/troubleshooting
//   - https://pipedream.com/docs/connect/managed-auth/oauth-clients
//   - github.com/PipedreamHQ/pipedream-sdk-typescript (Fern-generated from the
//     OpenAPI spec at https://api.pipedream.com/api-docs/swagger.json):
//     src/api/resources/accounts/client/Client.ts, tests/wire/accounts.test.ts,
//     tests/wire/oauthTokens.test.ts, src/api/types/CreateOAuthTokenResponse.ts,
//     src/api/types/ErrorResponse.ts, src/api/types/TooManyRequestsErrorBody.ts,
//     MIGRATE.md
//   - github.com/PipedreamHQ/pipedream-sdk-python: src/pipedream/accounts/raw_client.py,
//     src/pipedream/oauth_tokens/raw_client.py, src/pipedream/types/account.py,
//     src/pipedream/types/account_credentials.py
//   - github.com/PipedreamHQ/pipedream: docs-v2/pages/connect/api.mdx (the
//     older hand-written reference), packages/sdk/src/server/index.ts (the v1
//     SDK: simple-oauth2 ClientCredentials with tokenPath "/v1/oauth/token"),
//     pull request #12685 (early SDK treating {"error":"record not found"} as
//     "no such account"), issue #18245 (a real curl of the token endpoint).
//
// Token endpoint, POST {base}/v1/oauth/token:
//
//   - Pipedream documents a JSON body {"grant_type":"client_credentials",
//     "client_id":…,"client_secret":…[,"scope":…]}; the current SDKs send
//     exactly that. The v1 TypeScript SDK used simple-oauth2, i.e. a
//     form-encoded body with the client credentials in an HTTP Basic header.
//     The emulator accepts all three: JSON body, form body, Basic header.
//   - 200 body: {"access_token":"…","token_type":"Bearer","expires_in":3600,
//     "created_at":1645142400}. The OpenAPI spec marks access_token,
//     token_type and expires_in as required; the REST API page adds
//     created_at (Unix seconds). Tokens live one hour. The emulator also
//     echoes "scope" when the request carried one.
//   - Bad client credentials: the troubleshooting page shows "401
//     Unauthorized". No published body. The created_at field is the
//     signature of a Doorkeeper (Rails) token endpoint, so the emulator answers
//     Doorkeeper's invalid_client body:
//     {"error":"invalid_client","error_description":"Client authentication
//     failed due to unknown client, no client authentication included, or
//     unsupported authentication method."}. A missing grant_type answers 400
//     invalid_request, another grant type 400 unsupported_grant_type.
//
// Retrieve account, GET {base}/v1/connect/{project_id}/accounts/{account_id}:
//
//   - Headers: Authorization: Bearer <access token>; x-pd-environment:
//     development|production (required by the spec; the SDKs default to
//     production, and so does the emulator when it is missing).
//   - Query: include_credentials=true (the SDKs send "true"; older docs used
//     "1", which the emulator accepts too). Credentials are returned only for
//     accounts on the customer's own OAuth client ("BYOA") or key-based apps;
//     for accounts made with Pipedream's default OAuth client the
//     credentials field is absent even with include_credentials=true.
//   - 200 body: the account object itself, NOT wrapped: {"id":"apn_…",
//     "name":…|null,"external_id":…,"healthy":true,"dead":false,
//     "app":{"id":…,"name_slug":…,"name":…,"auth_type":"oauth"|"keys"|"none",
//     "description":…,"img_src":…,"custom_fields_json":"[]","categories":[…]},
//     "created_at":…,"updated_at":…,"credentials":{"oauth_client_id":…,
//     "oauth_access_token":…,"oauth_refresh_token":…,"oauth_uid":…,…},
//     "expires_at":…|null,"error":…|null,"last_refreshed_at":…|null,
//     "next_refresh_at":…|null}. Both current SDKs parse the 200 body straight
//     into Account; the older docs-v2 reference showed it wrapped in
//     {"data":{…}} (the list endpoint is wrapped: {"data":[…],"page_info":…}).
//   - Errors use the Connect envelope {"error":"<message>"} (ErrorResponse in
//     the TypeScript SDK; TooManyRequestsErrorBody is {"error"?: string}).
//     Unknown account: 404 {"error":"record not found"}. Bad or expired
//     token: 401 {"error":"invalid or expired access token"} (neither status
//     nor text is published; 401 is what the SDKs' error handling expects).
//     Rate limit: 429 with the same envelope. Forced failures
//     ([Emulator.FailAccountReads]) answer {"error":"<HTTP status text>"},
//     e.g. {"error":"Too Many Requests"}, with Retry-After when asked to
//     (Pipedream documents neither the message nor the header). Account
//     endpoints are limited to 2,000 requests per 5 minutes per project.
//
// The emulator's own conventions, where Pipedream is silent: an account in
// another project or environment answers the same 404 as an unknown one; an
// x-pd-environment other than development/production answers 400
// {"error":"invalid x-pd-environment header"}; unknown paths answer 404
// {"error":"not found"}.
package pipedream

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Environments accepted in the x-pd-environment header.
const (
	envProduction  = "production"
	envDevelopment = "development"
)

// Account is a connected account held by the emulator.
type Account struct {
	// ID is the account ID, "apn_…" at Pipedream. Required.
	ID string
	// Name is the account's custom name; empty is rendered as null.
	Name string
	// ExternalID is the end user's ID in the customer's system.
	ExternalID string
	// AppSlug is the app's name slug (app.name_slug), e.g. "github". The
	// emulator derives app.id from it: "oa_<slug>" for OAuth apps,
	// "app_<slug>" for key-based ones. app.auth_type is "keys" when
	// Credentials has no oauth_access_token, else "oauth" (also for nil
	// Credentials).
	AppSlug string
	// AppName is the app's display name (app.name); defaults to AppSlug.
	AppName string
	// Healthy and Dead are returned as is.
	Healthy, Dead bool
	// Environment is "production" (the default when empty) or
	// "development". The account is visible only to reads whose
	// x-pd-environment header matches; a missing header means production.
	Environment string
	// Credentials are returned under "credentials" when the read asks for
	// include_credentials=true. nil models an account made with Pipedream's
	// default OAuth client: credentials are then omitted even when asked for.
	Credentials map[string]any
	// ExpiresAt is the credentials' expiry (expires_at); nil is rendered as
	// null.
	ExpiresAt *time.Time
	// Error is the account's error message; empty is rendered as null.
	Error string
}

// Emulator is a running Pipedream Connect emulator. All methods are safe for
// concurrent use.
type Emulator struct {
	// URL is the base URL to use in place of https://api.pipedream.com.
	URL string

	t            testing.TB
	clientID     string
	clientSecret string
	srv          *httptest.Server
	done         chan struct{}

	tokenRequests   atomic.Int64
	accountRequests atomic.Int64

	mu           sync.Mutex
	lifetime     time.Duration
	rejectClient bool
	delay        time.Duration
	failLeft     int // >0: that many more failures; <0: fail until reset
	failStatus   int
	failRetry    string
	lastEnv      string
	tokens       map[string]time.Time // access token -> expiry
	projects     map[string]map[string]*storedAccount
}

type storedAccount struct {
	Account
	createdAt, updatedAt time.Time
}

// New starts an emulator that knows one OAuth client (clientID,
// clientSecret). The server is closed by t.Cleanup.
func New(t testing.TB, clientID, clientSecret string) *Emulator {
	t.Helper()
	e := &Emulator{
		t:            t,
		clientID:     clientID,
		clientSecret: clientSecret,
		done:         make(chan struct{}),
		lifetime:     time.Hour,
		tokens:       map[string]time.Time{},
		projects:     map[string]map[string]*storedAccount{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/oauth/token", e.handleToken)
	mux.HandleFunc("/v1/connect/{project_id}/accounts/{account_id}", e.handleAccount)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found"})
	})
	e.srv = httptest.NewServer(mux)
	e.URL = e.srv.URL
	t.Cleanup(func() {
		close(e.done) // release handlers sleeping in SetDelay
		e.srv.Close()
	})
	return e
}

// AddAccount adds an account to the project, replacing any account with the
// same ID there. The Credentials map is copied.
func (e *Emulator) AddAccount(projectID string, a Account) {
	if a.ID == "" {
		e.t.Errorf("pipedream: AddAccount: empty account ID")
		return
	}
	if a.Environment == "" {
		a.Environment = envProduction
	}
	if a.Environment != envProduction && a.Environment != envDevelopment {
		e.t.Errorf("pipedream: AddAccount %s: environment %q is neither production nor development", a.ID, a.Environment)
		return
	}
	if a.AppName == "" {
		a.AppName = a.AppSlug
	}
	a.Credentials = maps.Clone(a.Credentials)
	if a.ExpiresAt != nil {
		at := *a.ExpiresAt
		a.ExpiresAt = &at
	}
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.projects[projectID]
	if p == nil {
		p = map[string]*storedAccount{}
		e.projects[projectID] = p
	}
	p[a.ID] = &storedAccount{Account: a, createdAt: now, updatedAt: now}
}

// SetCredentials replaces the credentials of an existing account, as when
// Pipedream has refreshed the source's token; nil turns the account into one
// on Pipedream's default OAuth client (credentials omitted). The map is
// copied. The account's updated_at moves to now.
func (e *Emulator) SetCredentials(projectID, accountID string, creds map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.projects[projectID][accountID]
	if a == nil {
		e.t.Errorf("pipedream: SetCredentials: no account %s in project %s", accountID, projectID)
		return
	}
	a.Credentials = maps.Clone(creds)
	a.updatedAt = time.Now()
}

// SetTokenLifetime sets the lifetime of access tokens issued from now on
// (expires_in, and when the emulator starts rejecting them). Default one
// hour. expires_in is the lifetime in whole seconds, at least 1.
func (e *Emulator) SetTokenLifetime(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lifetime = d
}

// RejectClient makes the token endpoint answer 401 invalid_client, as
// Pipedream does for bad client credentials, even for the right ones.
func (e *Emulator) RejectClient(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rejectClient = on
}

// FailAccountReads makes the next n account reads answer status with the
// Connect error body {"error":"<status text>"}, and a Retry-After header when
// retryAfter is not empty (typically status 429, or 5xx). n < 0 fails every
// read until FailAccountReads(0, …) resets it. Forced failures happen before
// the token is checked and still count in AccountRequests and
// LastEnvironment.
func (e *Emulator) FailAccountReads(n int, status int, retryAfter string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failLeft = n
	e.failStatus = status
	e.failRetry = retryAfter
}

// SetDelay delays every request (token and account) by d before it is
// answered. A request whose context ends during the delay gets no answer.
func (e *Emulator) SetDelay(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.delay = d
}

// TokenRequests is the number of requests received by the token endpoint,
// successful or not.
func (e *Emulator) TokenRequests() int64 { return e.tokenRequests.Load() }

// AccountRequests is the number of account reads received, successful or
// not.
func (e *Emulator) AccountRequests() int64 { return e.accountRequests.Load() }

// LastEnvironment is the raw x-pd-environment header of the last account
// read ("" when it had none).
func (e *Emulator) LastEnvironment() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastEnv
}

// wait applies the configured delay; it reports false when the request
// should not be answered (client gone or emulator closing).
func (e *Emulator) wait(ctx context.Context) bool {
	e.mu.Lock()
	d := e.delay
	e.mu.Unlock()
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	case <-e.done:
		return false
	}
}

const invalidClientDescription = "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."

func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed"})
		return
	}
	e.tokenRequests.Add(1)
	if !e.wait(r.Context()) {
		return
	}
	params, err := tokenParams(r)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.")
		return
	}
	id, secret := params.Get("client_id"), params.Get("client_secret")
	if bu, bp, ok := r.BasicAuth(); ok {
		// RFC 6749 §2.3.1: Basic credentials are form-encoded.
		if u, err := url.QueryUnescape(bu); err == nil {
			bu = u
		}
		if p, err := url.QueryUnescape(bp); err == nil {
			bp = p
		}
		id, secret = bu, bp
	}
	switch gt := params.Get("grant_type"); {
	case gt == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.")
		return
	case gt != "client_credentials":
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
		return
	}
	e.mu.Lock()
	reject := e.rejectClient
	lifetime := e.lifetime
	e.mu.Unlock()
	if reject || !equal(id, e.clientID) || !equal(secret, e.clientSecret) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="Doorkeeper", error="invalid_client", error_description="`+invalidClientDescription+`"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", invalidClientDescription)
		return
	}
	token := randomToken()
	now := time.Now()
	e.mu.Lock()
	e.tokens[token] = now.Add(lifetime)
	e.mu.Unlock()
	expiresIn := int64(lifetime / time.Second)
	if expiresIn < 1 {
		expiresIn = 1
	}
	body := map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   expiresIn,
		"created_at":   now.Unix(),
	}
	if s := params.Get("scope"); s != "" {
		body["scope"] = s
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, body)
}

// tokenParams reads the token request's parameters from a JSON or a
// form-encoded body.
func tokenParams(r *http.Request) (url.Values, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" || strings.HasSuffix(ct, "+json") {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		v := url.Values{}
		for k, x := range m {
			if s, ok := x.(string); ok {
				v.Set(k, s)
			}
		}
		return v, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

func (e *Emulator) handleAccount(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed"})
		return
	}
	e.accountRequests.Add(1)
	envHeader := r.Header.Get("x-pd-environment")
	e.mu.Lock()
	e.lastEnv = envHeader
	e.mu.Unlock()
	if !e.wait(r.Context()) {
		return
	}

	e.mu.Lock()
	fail := e.failLeft != 0
	status, retry := e.failStatus, e.failRetry
	if e.failLeft > 0 {
		e.failLeft--
	}
	e.mu.Unlock()
	if fail {
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		writeJSON(w, status, map[string]any{"error": http.StatusText(status)})
		return
	}

	if !e.validBearer(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid or expired access token"})
		return
	}

	env := strings.TrimSpace(envHeader)
	if env == "" {
		env = envProduction
	}
	if env != envProduction && env != envDevelopment {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid x-pd-environment header"})
		return
	}

	includeCreds := false
	switch strings.ToLower(r.URL.Query().Get("include_credentials")) {
	case "true", "1":
		includeCreds = true
	}

	e.mu.Lock()
	a := e.projects[r.PathValue("project_id")][r.PathValue("account_id")]
	var body map[string]any
	if a != nil && a.Environment == env {
		body = renderAccount(a, includeCreds)
	}
	e.mu.Unlock()
	if body == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "record not found"})
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (e *Emulator) validBearer(h string) bool {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	tok = strings.TrimSpace(tok)
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.tokens[tok]
	return ok && time.Now().Before(exp)
}

const timeFormat = "2006-01-02T15:04:05.000Z"

func renderAccount(a *storedAccount, includeCreds bool) map[string]any {
	authType := "oauth"
	if a.Credentials != nil {
		if _, ok := a.Credentials["oauth_access_token"]; !ok {
			authType = "keys"
		}
	}
	appID := "app_" + a.AppSlug
	if authType == "oauth" {
		appID = "oa_" + a.AppSlug
	}
	body := map[string]any{
		"id":          a.ID,
		"name":        nullable(a.Name),
		"external_id": a.ExternalID,
		"healthy":     a.Healthy,
		"dead":        a.Dead,
		"app": map[string]any{
			"id":                 appID,
			"name_slug":          a.AppSlug,
			"name":               a.AppName,
			"auth_type":          authType,
			"description":        a.AppName + " (emulated by Valetkey tests)",
			"img_src":            "https://assets.pipedream.net/s.v0/" + appID + "/logo/orig",
			"custom_fields_json": "[]",
			"categories":         []string{},
		},
		"created_at":        a.createdAt.UTC().Format(timeFormat),
		"updated_at":        a.updatedAt.UTC().Format(timeFormat),
		"expires_at":        nil,
		"error":             nullable(a.Error),
		"last_refreshed_at": nil,
		"next_refresh_at":   nil,
	}
	if a.ExpiresAt != nil {
		body["expires_at"] = a.ExpiresAt.UTC().Format(timeFormat)
	}
	if includeCreds && a.Credentials != nil {
		body["credentials"] = maps.Clone(a.Credentials)
	}
	return body
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
