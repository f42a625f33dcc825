// Package oauthserver runs a real OAuth 2.0 authorization server for tests.
//
// The server is built with github.com/ory/fosite (compose.Compose, HMAC token
// strategy, fosite's in-memory storage), so the authorize, token, revocation
// and introspection logic is fosite's own, including its error bodies. Around
// fosite the package adds what a test needs: a consent screen driven like a
// browser would drive it ([Server.Consent]), a protected resource
// ([Server.ResourceURL]), request counters and fault knobs.
//
// Grants offered to the single confidential client: authorization_code (PKCE
// S256 enforced when a code_challenge is sent, PKCE optional otherwise; the
// "plain" method is rejected) and refresh_token (rotating by default).
//
// Behaviour worth knowing on the client side:
//
//   - Every successful authorization-code exchange returns a refresh token,
//     whatever scopes were requested (fosite's RefreshTokenScopes is set to
//     the empty list). Consent grants exactly the requested scopes; nothing
//     extra such as "offline" is added.
//   - state is required and must be at least 8 characters (fosite's
//     MinParameterEntropy), else the AS answers error=invalid_state.
//   - redirect_uri must equal a registered URI (simple string comparison);
//     for http://127.0.0.1 and http://[::1] URIs any port is accepted
//     (RFC 8252). Plain-http redirect URIs are allowed on any host.
//   - A refresh rotates: the response carries a new refresh token, the old
//     refresh token becomes inactive and the access token issued with it is
//     revoked at once. Presenting an already-used refresh token again is
//     treated as token theft: it answers invalid_grant and revokes the whole
//     token family (the current refresh token and its access token too).
//   - Revoking a refresh token or an access token at [Server.RevokeURL]
//     revokes both tokens of that grant.
//   - Tokens look like "ory_at_…", "ory_rt_…" and codes like "ory_ac_…".
package oauthserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/storage"
)

// Subject is the resource owner ("sub") every token is issued for; it is what
// [Server.ResourceURL] answers for a valid access token.
const Subject = "valetkey-test-user"

// Options configures a [Server]. The zero value is usable.
type Options struct {
	// ClientID and ClientSecret identify the one confidential client the
	// server knows. They default to "valetkey-client" and "valetkey-secret".
	// In an HTTP Basic header fosite form-decodes both (RFC 6749 §2.3.1), so a
	// client must form-encode them there.
	ClientID, ClientSecret string
	// RedirectURIs are the client's registered redirect URIs, matched
	// exactly (see the package doc for the loopback exception). They may
	// also be set, or replaced, later with [Server.SetRedirectURIs].
	RedirectURIs []string
	// Scopes are the scopes the client may request (exact match). Default
	// {"read", "write", "offline_access", "offline"}.
	Scopes []string
	// AccessTokenLifespan is the lifetime of issued access tokens. Default 1h.
	AccessTokenLifespan time.Duration
	// RefreshTokenLifespan is the lifetime of issued refresh tokens. Default
	// 720h; -1 makes refresh tokens never expire (fosite's convention).
	RefreshTokenLifespan time.Duration
	// ClientAuth restricts how the client authenticates at the token and
	// revocation endpoints: "header" (client_secret_basic) or "body"
	// (client_secret_post). The default "" accepts both.
	ClientAuth string
}

// Server is a running authorization server. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the base URL of the underlying httptest.Server, e.g.
	// "http://127.0.0.1:41234", without a trailing slash.
	URL string

	srv      *httptest.Server
	provider fosite.OAuth2Provider
	store    *memStore
	config   *fosite.Config
	closed   chan struct{}

	clientID, clientSecret string
	scopes                 []string
	authMethod             string // "", "client_secret_basic" or "client_secret_post"

	// fositeMu serialises every call into fosite and every direct access to
	// the memory store or the fosite config. fosite's MemoryStore is not
	// fully race-free (RevokeRefreshToken writes a map under the wrong
	// mutex), and the fault knobs mutate the config.
	fositeMu sync.Mutex

	// mu guards the knobs below.
	mu               sync.Mutex
	redirectURIs     []string
	tokenDelay       time.Duration
	failRemaining    int // <0: fail until reset
	failStatus       int
	failBody         string
	expiresAsString  bool
	omitRefreshToken bool

	tokenCounts    sync.Map // grant_type -> *atomic.Int64
	revokeRequests atomic.Int64
}

// New starts an authorization server on a loopback httptest.Server; t.Cleanup
// closes it. Invalid options fail the test.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID = "valetkey-client"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "valetkey-secret"
	}
	if opts.Scopes == nil {
		opts.Scopes = []string{"read", "write", "offline_access", "offline"}
	}
	if opts.AccessTokenLifespan == 0 {
		opts.AccessTokenLifespan = time.Hour
	}
	if opts.RefreshTokenLifespan == 0 {
		opts.RefreshTokenLifespan = 720 * time.Hour
	}
	var method string
	switch opts.ClientAuth {
	case "":
	case "header":
		method = "client_secret_basic"
	case "body":
		method = "client_secret_post"
	default:
		t.Fatalf("oauthserver: unknown ClientAuth %q (want \"header\", \"body\" or \"\")", opts.ClientAuth)
	}

	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatalf("oauthserver: global secret: %v", err)
	}

	s := &Server{
		closed:       make(chan struct{}),
		clientID:     opts.ClientID,
		clientSecret: opts.ClientSecret,
		scopes:       append([]string(nil), opts.Scopes...),
		authMethod:   method,
		redirectURIs: append([]string(nil), opts.RedirectURIs...),
	}
	s.store = &memStore{MemoryStore: storage.NewMemoryStore(), srv: s}
	s.config = &fosite.Config{
		AccessTokenLifespan:   opts.AccessTokenLifespan,
		RefreshTokenLifespan:  opts.RefreshTokenLifespan,
		AuthorizeCodeLifespan: 10 * time.Minute,
		GlobalSecret:          secret,
		// Empty (not nil): every code exchange yields a refresh token and the
		// refresh grant does not require an "offline" scope.
		RefreshTokenScopes:  []string{},
		ScopeStrategy:       fosite.ExactScopeStrategy,
		ClientSecretsHasher: plainHasher{},
		// Test redirect URIs often use plain http on made-up hosts.
		RedirectSecureChecker: func(context.Context, *url.URL) bool { return true },
	}
	s.provider = compose.Compose(
		s.config,
		s.store,
		&compose.CommonStrategy{CoreStrategy: compose.NewOAuth2HMACStrategy(s.config)},
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2PKCEFactory,
	)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/auth", s.handleAuthorize)
	mux.HandleFunc("GET /oauth2/consent", s.handleConsentPage)
	mux.HandleFunc("POST /oauth2/consent", s.handleConsentDecision)
	mux.HandleFunc("/oauth2/token", s.handleToken)
	mux.HandleFunc("/oauth2/revoke", s.handleRevoke)
	mux.HandleFunc("/api/me", s.handleResource)

	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	s.config.TokenURL = s.TokenURL()
	t.Cleanup(func() {
		close(s.closed) // releases handlers sleeping in SetTokenDelay
		s.srv.Close()
	})
	return s
}

// AuthorizeURL returns the authorization endpoint, URL + "/oauth2/auth".
func (s *Server) AuthorizeURL() string { return s.URL + "/oauth2/auth" }

// TokenURL returns the token endpoint, URL + "/oauth2/token".
func (s *Server) TokenURL() string { return s.URL + "/oauth2/token" }

// RevokeURL returns the RFC 7009 revocation endpoint, URL + "/oauth2/revoke"
// (fosite's revocation handler; the client must authenticate as at the token
// endpoint, and unknown or already revoked tokens answer 200).
func (s *Server) RevokeURL() string { return s.URL + "/oauth2/revoke" }

// ResourceURL returns a protected resource, URL + "/api/me". A request with
// "Authorization: Bearer <access token>" gets 200 and a JSON object
// {"sub", "client_id", "scope"} while fosite's introspection finds the access
// token valid (not expired, not revoked); anything else, a refresh token
// included, gets 401 with WWW-Authenticate: Bearer error="invalid_token".
func (s *Server) ResourceURL() string { return s.URL + "/api/me" }

// SetRedirectURIs replaces the client's registered redirect URIs. It affects
// authorization requests that start after the call.
func (s *Server) SetRedirectURIs(uris ...string) {
	s.mu.Lock()
	s.redirectURIs = append([]string(nil), uris...)
	s.mu.Unlock()
}

// TokenRequests returns how many requests with the given grant_type reached
// the token endpoint, counting failed ones and those answered by
// [Server.FailTokenRequests]. A request without grant_type counts under "".
func (s *Server) TokenRequests(grantType string) int64 {
	if v, ok := s.tokenCounts.Load(grantType); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// RevokeRequests returns how many requests reached the revocation endpoint.
func (s *Server) RevokeRequests() int64 { return s.revokeRequests.Load() }

// SetTokenDelay makes the token endpoint wait d before answering (0 turns it
// off). The wait ends early, without an answer, when the request's context is
// cancelled (client gave up) or the server shuts down.
func (s *Server) SetTokenDelay(d time.Duration) {
	s.mu.Lock()
	s.tokenDelay = d
	s.mu.Unlock()
}

// FailTokenRequests makes the next n token requests answer status with body
// (sent as application/json) without reaching fosite, so no server state
// changes: a refresh token presented in a failed request stays valid. n < 0
// fails every request until FailTokenRequests(0, ...) resets it. status 0
// means 500. Typical bodies: `{"error":"server_error"}` or
// `{"error":"invalid_grant","error_description":"..."}`.
func (s *Server) FailTokenRequests(n int, status int, body string) {
	if status == 0 {
		status = http.StatusInternalServerError
	}
	s.mu.Lock()
	s.failRemaining, s.failStatus, s.failBody = n, status, body
	s.mu.Unlock()
}

// SetAccessTokenLifespan changes the lifetime of access tokens issued after
// the call (by code exchange or refresh). 0 means fosite's default, 1h.
// fosite rounds the expiry to the second, so expires_in for a 1s lifespan
// is 0 or 1.
func (s *Server) SetAccessTokenLifespan(d time.Duration) {
	s.fositeMu.Lock()
	s.config.AccessTokenLifespan = d
	s.fositeMu.Unlock()
}

// RevokeRefreshTokens invalidates every refresh token issued so far (as when
// a user revokes the app at the provider). Presenting one afterwards gets
// fosite's real answer: 400 {"error":"invalid_grant", "error_description":
// "... The refresh token is malformed or not valid."}. Access tokens are left
// alone; tokens issued later are unaffected.
func (s *Server) RevokeRefreshTokens() {
	s.fositeMu.Lock()
	defer s.fositeMu.Unlock()
	sigs := make([]string, 0, len(s.store.RefreshTokens))
	for sig := range s.store.RefreshTokens {
		sigs = append(sigs, sig)
	}
	for _, sig := range sigs {
		_ = s.store.DeleteRefreshTokenSession(context.Background(), sig)
	}
}

// ExpiresInAsString makes successful token responses carry expires_in as a
// JSON string ("3600") instead of a number, as some providers do. The token
// response body is rewritten after fosite produced it.
func (s *Server) ExpiresInAsString(on bool) {
	s.mu.Lock()
	s.expiresAsString = on
	s.mu.Unlock()
}

// OmitRefreshTokenOnRefresh switches refresh responses to a provider that
// does not rotate refresh tokens: while on, a refresh_token grant answers
// without refresh_token and the presented refresh token stays valid (and
// revocable) for further refreshes; earlier access tokens also stay valid
// until they expire (revoking the grant revokes the refresh token and only the
// newest access token). fosite cannot be configured this way, so it is done
// in the storage wrapper (the refresh token fosite generates is neither stored
// nor returned, the old one is not rotated out) plus response rewriting. The
// code exchange still returns a refresh token.
func (s *Server) OmitRefreshTokenOnRefresh(on bool) {
	s.mu.Lock()
	s.omitRefreshToken = on
	s.mu.Unlock()
}

// Consent drives the consent screen the way a browser would and returns where
// the AS finally redirects: the client's redirect_uri with code and state
// when approve is true, or with error=access_denied and state when it is
// false. The redirect is not followed.
//
// It GETs authorizeURL, following redirects itself while they stay on the
// AS's host, until the AS's HTML consent page; parses its form (hidden fields
// carry the authorization request) and POSTs the approve or deny button. If
// the AS redirects off its host before the consent page (an authorization
// error with a valid redirect_uri, e.g. error=invalid_scope), that Location is
// returned as is. c may be nil (http.DefaultClient); its CheckRedirect is
// ignored, its Transport and Jar are used. Unexpected answers fail the test,
// so call Consent from the test's goroutine.
func (s *Server) Consent(t testing.TB, c *http.Client, authorizeURL string, approve bool) *url.URL {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	base, err := url.Parse(s.URL)
	if err != nil {
		t.Fatalf("oauthserver: parse server URL: %v", err)
	}
	cur, err := url.Parse(authorizeURL)
	if err != nil {
		t.Fatalf("oauthserver: parse authorize URL %q: %v", authorizeURL, err)
	}

	var page []byte
	for hops := 0; ; hops++ {
		if hops > 10 {
			t.Fatalf("oauthserver: too many redirects from %s", authorizeURL)
		}
		if cur.Host != base.Host {
			return cur
		}
		resp, err := cc.Get(cur.String())
		if err != nil {
			t.Fatalf("oauthserver: GET %s: %v", cur, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if isRedirect(resp.StatusCode) {
			loc, err := resp.Location()
			if err != nil {
				t.Fatalf("oauthserver: GET %s: %d without usable Location: %v", cur, resp.StatusCode, err)
			}
			cur = loc
			continue
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("oauthserver: GET %s: status %d, body %s", cur, resp.StatusCode, body)
		}
		page = body
		break
	}

	action, fields, err := parseConsentForm(page)
	if err != nil {
		t.Fatalf("oauthserver: consent page at %s: %v\n%s", cur, err, page)
	}
	target, err := cur.Parse(action)
	if err != nil {
		t.Fatalf("oauthserver: consent form action %q: %v", action, err)
	}
	if approve {
		fields.Set("decision", "approve")
	} else {
		fields.Set("decision", "deny")
	}
	resp, err := cc.PostForm(target.String(), fields)
	if err != nil {
		t.Fatalf("oauthserver: POST %s: %v", target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !isRedirect(resp.StatusCode) {
		t.Fatalf("oauthserver: POST %s: status %d (want a redirect), body %s", target, resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("oauthserver: POST %s: %d without usable Location: %v", target, resp.StatusCode, err)
	}
	return loc
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

var (
	formRe   = regexp.MustCompile(`(?is)<form\b[^>]*\baction="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRe = regexp.MustCompile(`(?is)<input\b[^>]*\btype="hidden"[^>]*>`)
	nameRe   = regexp.MustCompile(`(?is)\bname="([^"]*)"`)
	valueRe  = regexp.MustCompile(`(?is)\bvalue="([^"]*)"`)
)

// parseConsentForm extracts the form action and hidden fields of the consent
// page this package renders.
func parseConsentForm(page []byte) (string, url.Values, error) {
	m := formRe.FindSubmatch(page)
	if m == nil {
		return "", nil, errors.New("no form found")
	}
	fields := url.Values{}
	for _, in := range hiddenRe.FindAll(m[2], -1) {
		n := nameRe.FindSubmatch(in)
		if n == nil {
			continue
		}
		var v string
		if vm := valueRe.FindSubmatch(in); vm != nil {
			v = html.UnescapeString(string(vm[1]))
		}
		fields.Add(html.UnescapeString(string(n[1])), v)
	}
	return html.UnescapeString(string(m[1])), fields, nil
}

// ---- HTTP handlers ----

func newSession() *fosite.DefaultSession {
	return &fosite.DefaultSession{Subject: Subject, Username: Subject}
}

// handleAuthorize validates the authorization request with fosite and sends
// the user agent on to the consent page (as a login/consent app would).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.fositeMu.Lock()
	defer s.fositeMu.Unlock()
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	http.Redirect(w, r, "/oauth2/consent?"+r.URL.RawQuery, http.StatusFound)
}

var consentTmpl = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Authorize {{.ClientID}}</title></head>
<body>
<h1>{{.ClientID}} asks for access</h1>
<p>Signed in as {{.Subject}}. Requested scopes: {{range .Scopes}}<code>{{.}}</code> {{else}}(none){{end}}</p>
<form method="post" action="/oauth2/consent">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body>
</html>
`))

type hiddenField struct{ Name, Value string }

// handleConsentPage shows the consent form for a (re-validated) authorization
// request; the request's parameters travel in hidden fields.
func (s *Server) handleConsentPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.fositeMu.Lock()
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		s.fositeMu.Unlock()
		return
	}
	s.fositeMu.Unlock()

	var fields []hiddenField
	for name, values := range r.URL.Query() {
		for _, v := range values {
			fields = append(fields, hiddenField{name, v})
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = consentTmpl.Execute(w, struct {
		ClientID, Subject string
		Scopes            []string
		Fields            []hiddenField
	}{ar.GetClient().GetID(), Subject, ar.GetRequestedScopes(), fields})
}

// handleConsentDecision handles the consent form: approve grants every
// requested scope and audience and lets fosite issue the code; deny answers
// fosite's access_denied error on the redirect URI.
func (s *Server) handleConsentDecision(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.fositeMu.Lock()
	defer s.fositeMu.Unlock()
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	switch r.PostForm.Get("decision") {
	case "approve":
		for _, scope := range ar.GetRequestedScopes() {
			ar.GrantScope(scope)
		}
		for _, aud := range ar.GetRequestedAudience() {
			ar.GrantAudience(aud)
		}
		resp, err := s.provider.NewAuthorizeResponse(ctx, ar, newSession())
		if err != nil {
			s.provider.WriteAuthorizeError(ctx, w, ar, err)
			return
		}
		s.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
	case "deny":
		s.provider.WriteAuthorizeError(ctx, w, ar,
			fosite.ErrAccessDenied.WithHint("The resource owner denied the request."))
	default:
		http.Error(w, `decision must be "approve" or "deny"`, http.StatusBadRequest)
	}
}

type nonRotatingKey struct{}

func isNonRotating(ctx context.Context) bool {
	v, _ := ctx.Value(nonRotatingKey{}).(bool)
	return v
}

func (s *Server) countToken(grant string) {
	v, ok := s.tokenCounts.Load(grant)
	if !ok {
		v, _ = s.tokenCounts.LoadOrStore(grant, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	// ParseForm reads an urlencoded body into r.PostForm; fosite's own
	// ParseMultipartForm later reuses it.
	_ = r.ParseForm()
	grant := r.PostForm.Get("grant_type")
	s.countToken(grant)

	s.mu.Lock()
	delay := s.tokenDelay
	s.mu.Unlock()
	if delay > 0 {
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			return
		case <-s.closed:
			timer.Stop()
			return
		}
	}

	s.mu.Lock()
	var fail bool
	var failStatus int
	var failBody string
	if s.failRemaining != 0 {
		fail, failStatus, failBody = true, s.failStatus, s.failBody
		if s.failRemaining > 0 {
			s.failRemaining--
		}
	}
	expiresAsString := s.expiresAsString
	nonRotating := grant == "refresh_token" && s.omitRefreshToken
	s.mu.Unlock()

	if fail {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		w.WriteHeader(failStatus)
		_, _ = io.WriteString(w, failBody)
		return
	}

	ctx := context.WithValue(r.Context(), nonRotatingKey{}, nonRotating)
	rec := httptest.NewRecorder()
	s.fositeMu.Lock()
	ar, err := s.provider.NewAccessRequest(ctx, r, newSession())
	if err != nil {
		s.provider.WriteAccessError(ctx, rec, ar, err)
	} else if resp, err := s.provider.NewAccessResponse(ctx, ar); err != nil {
		s.provider.WriteAccessError(ctx, rec, ar, err)
	} else {
		s.provider.WriteAccessResponse(ctx, rec, ar, resp)
	}
	s.fositeMu.Unlock()

	body := rec.Body.Bytes()
	if rec.Code == http.StatusOK && (expiresAsString || nonRotating) {
		body = rewriteTokenResponse(body, expiresAsString, nonRotating)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// rewriteTokenResponse turns expires_in into a string and/or drops
// refresh_token. A body that is not a JSON object is returned unchanged.
func rewriteTokenResponse(body []byte, expiresAsString, dropRefresh bool) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return body
	}
	if expiresAsString {
		if n, ok := m["expires_in"].(json.Number); ok {
			m["expires_in"] = n.String()
		}
	}
	if dropRefresh {
		delete(m, "refresh_token")
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	s.revokeRequests.Add(1)
	ctx := r.Context()
	s.fositeMu.Lock()
	err := s.provider.NewRevocationRequest(ctx, r)
	s.fositeMu.Unlock()
	s.provider.WriteRevocationResponse(ctx, w, err)
}

func (s *Server) handleResource(w http.ResponseWriter, r *http.Request) {
	unauthorized := func() {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_token"}`)
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		unauthorized()
		return
	}
	s.fositeMu.Lock()
	use, ar, err := s.provider.IntrospectToken(r.Context(), token, fosite.AccessToken, newSession())
	s.fositeMu.Unlock()
	if err != nil || use != fosite.AccessToken {
		unauthorized()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"sub":       ar.GetSession().GetSubject(),
		"client_id": ar.GetClient().GetID(),
		"scope":     strings.Join(ar.GetGrantedScopes(), " "),
	})
}

// ---- storage ----

// memStore is fosite's MemoryStore with the client served from the Server's
// current settings and the non-rotating refresh mode. All calls happen under
// Server.fositeMu.
type memStore struct {
	*storage.MemoryStore
	srv *Server
}

// GetClient returns the configured client, built fresh so that
// SetRedirectURIs takes effect.
func (m *memStore) GetClient(_ context.Context, id string) (fosite.Client, error) {
	s := m.srv
	if id != s.clientID {
		return nil, fosite.ErrNotFound
	}
	s.mu.Lock()
	redirects := append([]string(nil), s.redirectURIs...)
	s.mu.Unlock()
	c := &fosite.DefaultClient{
		ID:            s.clientID,
		Secret:        []byte(s.clientSecret),
		RedirectURIs:  redirects,
		GrantTypes:    []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"},
		Scopes:        append([]string(nil), s.scopes...),
	}
	if s.authMethod != "" {
		return &fosite.DefaultOpenIDConnectClient{DefaultClient: c, TokenEndpointAuthMethod: s.authMethod}, nil
	}
	return c, nil
}

// RotateRefreshToken keeps the presented refresh token (and its access token)
// alive when the request is in non-rotating mode.
func (m *memStore) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	if isNonRotating(ctx) {
		return nil
	}
	return m.MemoryStore.RotateRefreshToken(ctx, requestID, signature)
}

// CreateRefreshTokenSession does not store the refresh token generated by a
// non-rotating refresh; it is stripped from the response, and not storing it
// keeps the old token the one that revocation by request ID finds.
func (m *memStore) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	if isNonRotating(ctx) {
		return nil
	}
	return m.MemoryStore.CreateRefreshTokenSession(ctx, signature, accessSignature, req)
}

// plainHasher compares client secrets in constant time without bcrypt (fosite's
// default costs ~250ms per client authentication).
type plainHasher struct{}

func (plainHasher) Compare(_ context.Context, hash, data []byte) error {
	if subtle.ConstantTimeCompare(hash, data) != 1 {
		return fmt.Errorf("client secret mismatch")
	}
	return nil
}

func (plainHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return append([]byte(nil), data...), nil
}

// RefreshTokenActive reports whether the server would still accept a
// refresh token, by introspection: unlike presenting a used token at the
// token endpoint, asking does not revoke the token family.
func (s *Server) RefreshTokenActive(token string) bool {
	s.fositeMu.Lock()
	defer s.fositeMu.Unlock()
	use, _, err := s.provider.IntrospectToken(context.Background(), token, fosite.RefreshToken, newSession())
	return err == nil && use == fosite.RefreshToken
}

// AccessTokenActive reports whether an access token is currently valid.
func (s *Server) AccessTokenActive(token string) bool {
	s.fositeMu.Lock()
	defer s.fositeMu.Unlock()
	use, _, err := s.provider.IntrospectToken(context.Background(), token, fosite.AccessToken, newSession())
	return err == nil && use == fosite.AccessToken
}
