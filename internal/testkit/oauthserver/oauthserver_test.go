package oauthserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const redirectURI = "http://valetkey.example/oauth/callback"

// client is a minimal OAuth client written against the RFCs with net/http.
type client struct {
	t    testing.TB
	s    *Server
	http *http.Client
	auth string // "header" or "body"
	id   string
	sec  string
}

func newClient(t testing.TB, s *Server) *client {
	return &client{
		t: t, s: s, auth: "header", id: "valetkey-client", sec: "valetkey-secret",
		// Like a browser-less client that must not follow redirects to the
		// (non-existent) redirect_uri host.
		http: &http.Client{
			Timeout: 10 * time.Second,
			CheckRedirect: func(req *http.Request, _ []*http.Request) error {
				if req.URL.Host == "valetkey.example" {
					return http.ErrUseLastResponse
				}
				return nil
			},
		},
	}
}

func randString(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

type authReq struct {
	state, verifier string
	url             string
}

func (c *client) authURL(scope string, pkce bool) authReq {
	ar := authReq{state: randString(c.t)}
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {c.id},
		"redirect_uri":  {redirectURI},
		"state":         {ar.state},
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	if pkce {
		ar.verifier = randString(c.t)
		sum := sha256.Sum256([]byte(ar.verifier))
		q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
		q.Set("code_challenge_method", "S256")
	}
	ar.url = c.s.AuthorizeURL() + "?" + q.Encode()
	return ar
}

// code runs consent (approve) and returns the authorization code.
func (c *client) code(ar authReq) string {
	c.t.Helper()
	loc := c.s.Consent(c.t, c.http, ar.url, true)
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		c.t.Fatalf("redirected to %s, want %s", loc, redirectURI)
	}
	if e := loc.Query().Get("error"); e != "" {
		c.t.Fatalf("authorize error: %s", loc)
	}
	if got := loc.Query().Get("state"); got != ar.state {
		c.t.Fatalf("state = %q, want %q", got, ar.state)
	}
	code := loc.Query().Get("code")
	if code == "" {
		c.t.Fatalf("no code in %s", loc)
	}
	return code
}

type tokenResp struct {
	status int
	raw    string
	m      map[string]any
}

func (r tokenResp) str(k string) string { s, _ := r.m[k].(string); return s }

func (c *client) post(endpoint string, form url.Values) tokenResp {
	return c.postCtx(context.Background(), endpoint, form)
}

func (c *client) postCtx(ctx context.Context, endpoint string, form url.Values) tokenResp {
	c.t.Helper()
	tr, err := c.tryPost(ctx, endpoint, form)
	if err != nil {
		c.t.Fatalf("POST %s: %v", endpoint, err)
	}
	return tr
}

func (c *client) tryPost(ctx context.Context, endpoint string, form url.Values) (tokenResp, error) {
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if c.auth == "body" {
		f.Set("client_id", c.id)
		f.Set("client_secret", c.sec)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(f.Encode()))
	if err != nil {
		return tokenResp{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.auth == "header" {
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.sec))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return tokenResp{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return tokenResp{}, err
	}
	tr := tokenResp{status: resp.StatusCode, raw: string(b)}
	if len(b) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		_ = dec.Decode(&tr.m)
	}
	return tr, nil
}

func (c *client) exchange(ar authReq, code string) tokenResp {
	c.t.Helper()
	f := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {redirectURI},
	}
	if ar.verifier != "" {
		f.Set("code_verifier", ar.verifier)
	}
	return c.post(c.s.TokenURL(), f)
}

func (c *client) refresh(rt string) tokenResp {
	c.t.Helper()
	return c.post(c.s.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func (c *client) revoke(token string) tokenResp {
	c.t.Helper()
	return c.post(c.s.RevokeURL(), url.Values{"token": {token}})
}

// login runs the whole authorization-code flow with PKCE and returns the
// token response, which must be a success.
func (c *client) login() tokenResp {
	c.t.Helper()
	ar := c.authURL("read offline_access", true)
	tr := c.exchange(ar, c.code(ar))
	mustOK(c.t, tr)
	return tr
}

func (c *client) resource(at string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.s.ResourceURL(), nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("GET resource: %v", err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func mustOK(t testing.TB, tr tokenResp) {
	t.Helper()
	if tr.status != http.StatusOK {
		t.Fatalf("status %d, body %s", tr.status, tr.raw)
	}
	if tr.str("access_token") == "" {
		t.Fatalf("no access_token in %s", tr.raw)
	}
}

func mustError(t testing.TB, tr tokenResp, status int, code string) {
	t.Helper()
	if tr.status != status || tr.str("error") != code {
		t.Fatalf("got %d %s, want %d error=%s", tr.status, tr.raw, status, code)
	}
	t.Logf("%d %s", tr.status, tr.raw)
}

func expiresIn(t testing.TB, tr tokenResp) int64 {
	t.Helper()
	n, ok := tr.m["expires_in"].(json.Number)
	if !ok {
		t.Fatalf("expires_in is not a JSON number: %s", tr.raw)
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newServer(t *testing.T, opts Options) (*Server, *client) {
	if opts.RedirectURIs == nil {
		opts.RedirectURIs = []string{redirectURI}
	}
	s := New(t, opts)
	return s, newClient(t, s)
}

func TestRoundTrip(t *testing.T) {
	s, c := newServer(t, Options{})

	ar := c.authURL("read offline_access", true)
	tr := c.exchange(ar, c.code(ar))
	mustOK(t, tr)
	if tr.str("token_type") != "bearer" {
		t.Errorf("token_type = %q", tr.str("token_type"))
	}
	if got := tr.str("scope"); got != "read offline_access" {
		t.Errorf("scope = %q", got)
	}
	if e := expiresIn(t, tr); e < 3599 || e > 3600 {
		t.Errorf("expires_in = %d, want ~3600", e)
	}
	at, rt := tr.str("access_token"), tr.str("refresh_token")
	if rt == "" {
		t.Fatalf("no refresh_token: %s", tr.raw)
	}
	if st, m := c.resource(at); st != http.StatusOK || m["sub"] != Subject || m["client_id"] != "valetkey-client" {
		t.Fatalf("resource: %d %v", st, m)
	}
	if st, _ := c.resource(rt); st != http.StatusUnauthorized {
		t.Fatalf("refresh token accepted as bearer token: %d", st)
	}
	if st, _ := c.resource("garbage"); st != http.StatusUnauthorized {
		t.Fatalf("garbage token: %d", st)
	}

	// Refresh rotates both tokens.
	tr2 := c.refresh(rt)
	mustOK(t, tr2)
	at2, rt2 := tr2.str("access_token"), tr2.str("refresh_token")
	if rt2 == "" || rt2 == rt || at2 == at {
		t.Fatalf("refresh did not rotate: %s", tr2.raw)
	}
	if got := tr2.str("scope"); got != "read offline_access" {
		t.Errorf("refreshed scope = %q", got)
	}
	if st, _ := c.resource(at2); st != http.StatusOK {
		t.Fatalf("new access token: %d", st)
	}
	// fosite's memory store revokes the previous access token on refresh.
	if st, _ := c.resource(at); st != http.StatusUnauthorized {
		t.Fatalf("old access token after refresh: %d", st)
	}

	// Reusing the old refresh token is rejected and revokes the family.
	mustError(t, c.refresh(rt), http.StatusBadRequest, "invalid_grant")
	if st, _ := c.resource(at2); st != http.StatusUnauthorized {
		t.Fatalf("access token after refresh-token reuse: %d", st)
	}
	mustError(t, c.refresh(rt2), http.StatusBadRequest, "invalid_grant")

	// The code is single use.
	mustError(t, c.exchange(ar, "ory_ac_bogus.bogus"), http.StatusBadRequest, "invalid_grant")

	if got := s.TokenRequests("authorization_code"); got != 2 {
		t.Errorf("authorization_code requests = %d, want 2", got)
	}
	if got := s.TokenRequests("refresh_token"); got != 3 {
		t.Errorf("refresh_token requests = %d, want 3", got)
	}
}

func TestRevoke(t *testing.T) {
	s, c := newServer(t, Options{})
	tr := c.login()
	at, rt := tr.str("access_token"), tr.str("refresh_token")

	res := c.revoke(rt)
	if res.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.status, res.raw)
	}
	mustError(t, c.refresh(rt), http.StatusBadRequest, "invalid_grant")
	if st, _ := c.resource(at); st != http.StatusUnauthorized {
		t.Fatalf("access token after revoking its refresh token: %d", st)
	}
	// Revoking again, or an unknown token, is fine (RFC 7009).
	if res := c.revoke(rt); res.status != http.StatusOK {
		t.Fatalf("second revoke: %d %s", res.status, res.raw)
	}
	c.sec = "wrong"
	if res := c.revoke(rt); res.status != http.StatusUnauthorized {
		t.Fatalf("revoke with bad client secret: %d %s", res.status, res.raw)
	}
	if got := s.RevokeRequests(); got != 3 {
		t.Errorf("RevokeRequests = %d, want 3", got)
	}

	// Revoking the access token also kills the refresh token.
	c.sec = "valetkey-secret"
	tr = c.login()
	if res := c.revoke(tr.str("access_token")); res.status != http.StatusOK {
		t.Fatalf("revoke access token: %d %s", res.status, res.raw)
	}
	mustError(t, c.refresh(tr.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
}

func TestDeny(t *testing.T) {
	s, c := newServer(t, Options{})
	ar := c.authURL("read", true)
	loc := s.Consent(t, c.http, ar.url, false)
	q := loc.Query()
	if q.Get("error") != "access_denied" || q.Get("state") != ar.state || q.Get("code") != "" {
		t.Fatalf("deny redirect: %s", loc)
	}
	if !strings.HasPrefix(loc.String(), redirectURI+"?") {
		t.Fatalf("deny redirect target: %s", loc)
	}
	t.Logf("deny: %s", loc)
}

func TestConsentWithNilAndDefaultClient(t *testing.T) {
	s, c := newServer(t, Options{})
	ar := c.authURL("", false)
	// http.DefaultClient would follow redirects; Consent must not.
	loc := s.Consent(t, nil, ar.url, true)
	if loc.Host != "valetkey.example" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect: %s", loc)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	s, c := newServer(t, Options{})

	// Unknown scope: fosite redirects back with error=invalid_scope, before
	// consent; Consent returns that redirect.
	ar := c.authURL("read admin", true)
	loc := s.Consent(t, c.http, ar.url, true)
	if loc.Query().Get("error") != "invalid_scope" || loc.Query().Get("state") != ar.state {
		t.Fatalf("unknown scope: %s", loc)
	}

	// Short state.
	q := url.Values{"response_type": {"code"}, "client_id": {"valetkey-client"}, "redirect_uri": {redirectURI}, "state": {"abc"}}
	loc = s.Consent(t, c.http, s.AuthorizeURL()+"?"+q.Encode(), true)
	if loc.Query().Get("error") != "invalid_state" {
		t.Fatalf("short state: %s", loc)
	}

	// Plain PKCE is rejected (S256 only).
	q.Set("state", randString(t))
	q.Set("code_challenge", randString(t))
	q.Set("code_challenge_method", "plain")
	loc = s.Consent(t, c.http, s.AuthorizeURL()+"?"+q.Encode(), true)
	if loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("plain PKCE: %s", loc)
	}

	// Unregistered redirect URI: no redirect, a JSON error from the AS.
	q = url.Values{"response_type": {"code"}, "client_id": {"valetkey-client"}, "redirect_uri": {"http://evil.example/cb"}, "state": {randString(t)}}
	resp, err := c.http.Get(s.AuthorizeURL() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "invalid_request") {
		t.Fatalf("bad redirect_uri: %d %s", resp.StatusCode, b)
	}

	// SetRedirectURIs registers it.
	s.SetRedirectURIs(redirectURI, "http://evil.example/cb")
	loc = s.Consent(t, c.http, s.AuthorizeURL()+"?"+q.Encode(), true)
	if loc.Host != "evil.example" || loc.Query().Get("code") == "" {
		t.Fatalf("after SetRedirectURIs: %s", loc)
	}
}

func TestPKCE(t *testing.T) {
	_, c := newServer(t, Options{})

	// Wrong verifier.
	ar := c.authURL("read", true)
	code := c.code(ar)
	ar.verifier = randString(t)
	mustError(t, c.exchange(ar, code), http.StatusBadRequest, "invalid_grant")

	// Missing verifier when a challenge was sent.
	ar = c.authURL("read", true)
	code = c.code(ar)
	ar.verifier = ""
	mustError(t, c.exchange(ar, code), http.StatusBadRequest, "invalid_grant")

	// No PKCE at all is allowed, and still yields a refresh token.
	ar = c.authURL("", false)
	tr := c.exchange(ar, c.code(ar))
	mustOK(t, tr)
	if tr.str("refresh_token") == "" {
		t.Fatalf("no refresh token without offline scope: %s", tr.raw)
	}

	// Code reuse.
	ar = c.authURL("read", true)
	code = c.code(ar)
	mustOK(t, c.exchange(ar, code))
	mustError(t, c.exchange(ar, code), http.StatusBadRequest, "invalid_grant")
}

func TestFailTokenRequests(t *testing.T) {
	s, c := newServer(t, Options{})
	rt := c.login().str("refresh_token")

	s.FailTokenRequests(1, http.StatusInternalServerError, `{"error":"server_error"}`)
	tr := c.refresh(rt)
	if tr.status != http.StatusInternalServerError || tr.raw != `{"error":"server_error"}` {
		t.Fatalf("injected failure: %d %s", tr.status, tr.raw)
	}
	// The same refresh token still works: the failure did not touch fosite.
	tr = c.refresh(rt)
	mustOK(t, tr)
	rt = tr.str("refresh_token")

	s.FailTokenRequests(-1, http.StatusBadRequest, `{"error":"invalid_grant","error_description":"injected"}`)
	for range 3 {
		mustError(t, c.refresh(rt), http.StatusBadRequest, "invalid_grant")
	}
	s.FailTokenRequests(0, 0, "")
	mustOK(t, c.refresh(rt))

	if got := s.TokenRequests("refresh_token"); got != 6 {
		t.Errorf("refresh_token requests = %d, want 6", got)
	}
	if got := s.TokenRequests("authorization_code"); got != 1 {
		t.Errorf("authorization_code requests = %d, want 1", got)
	}
	if got := s.TokenRequests("client_credentials"); got != 0 {
		t.Errorf("client_credentials requests = %d, want 0", got)
	}
}

func TestAccessTokenLifespan(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifespan: 90 * time.Second})
	tr := c.login()
	if e := expiresIn(t, tr); e < 89 || e > 90 {
		t.Fatalf("expires_in = %d, want ~90", e)
	}
	rt := tr.str("refresh_token")

	s.SetAccessTokenLifespan(time.Second)
	tr = c.refresh(rt)
	mustOK(t, tr)
	if e := expiresIn(t, tr); e < 0 || e > 1 {
		t.Fatalf("expires_in after SetAccessTokenLifespan(1s) = %d", e)
	}
	if testing.Short() {
		return
	}
	at := tr.str("access_token")
	if st, _ := c.resource(at); st != http.StatusOK {
		t.Fatalf("fresh 1s token: %d", st)
	}
	time.Sleep(2100 * time.Millisecond)
	if st, _ := c.resource(at); st != http.StatusUnauthorized {
		t.Fatalf("expired token: %d", st)
	}
	// The refresh token outlives it.
	mustOK(t, c.refresh(tr.str("refresh_token")))
}

func TestExpiresInAsString(t *testing.T) {
	s, c := newServer(t, Options{})
	s.ExpiresInAsString(true)
	tr := c.login()
	v, ok := tr.m["expires_in"].(string)
	if !ok || (v != "3600" && v != "3599") {
		t.Fatalf("expires_in not a string: %s", tr.raw)
	}
	tr = c.refresh(tr.str("refresh_token"))
	mustOK(t, tr)
	if _, ok := tr.m["expires_in"].(string); !ok {
		t.Fatalf("refresh expires_in not a string: %s", tr.raw)
	}
	s.ExpiresInAsString(false)
	tr = c.refresh(tr.str("refresh_token"))
	mustOK(t, tr)
	expiresIn(t, tr)
}

func TestOmitRefreshTokenOnRefresh(t *testing.T) {
	s, c := newServer(t, Options{})
	tr := c.login()
	at, rt := tr.str("access_token"), tr.str("refresh_token")

	s.OmitRefreshTokenOnRefresh(true)
	var last string
	for range 3 {
		tr = c.refresh(rt)
		mustOK(t, tr)
		if _, ok := tr.m["refresh_token"]; ok {
			t.Fatalf("refresh_token present: %s", tr.raw)
		}
		last = tr.str("access_token")
	}
	for _, tok := range []string{at, last} {
		if st, _ := c.resource(tok); st != http.StatusOK {
			t.Fatalf("access token: %d", st)
		}
	}

	// Back to rotation: the original refresh token is rotated out now.
	s.OmitRefreshTokenOnRefresh(false)
	tr = c.refresh(rt)
	mustOK(t, tr)
	rt2 := tr.str("refresh_token")
	if rt2 == "" || rt2 == rt {
		t.Fatalf("rotation after switching back: %s", tr.raw)
	}
	mustError(t, c.refresh(rt), http.StatusBadRequest, "invalid_grant")

	// Revocation of a non-rotated refresh token works.
	rt = c.login().str("refresh_token")
	s.OmitRefreshTokenOnRefresh(true)
	mustOK(t, c.refresh(rt))
	if res := c.revoke(rt); res.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.status, res.raw)
	}
	mustError(t, c.refresh(rt), http.StatusBadRequest, "invalid_grant")
}

func TestRevokeRefreshTokens(t *testing.T) {
	s, c := newServer(t, Options{})
	a := c.login()
	b := c.login()
	s.RevokeRefreshTokens()
	mustError(t, c.refresh(a.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
	mustError(t, c.refresh(b.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
	if st, _ := c.resource(a.str("access_token")); st != http.StatusOK {
		t.Fatalf("access token after RevokeRefreshTokens: %d", st)
	}
	// New grants are unaffected.
	mustOK(t, c.refresh(c.login().str("refresh_token")))
}

func TestClientAuth(t *testing.T) {
	for _, mode := range []string{"", "header", "body"} {
		t.Run("mode="+mode, func(t *testing.T) {
			_, c := newServer(t, Options{ClientAuth: mode})
			for _, method := range []string{"header", "body"} {
				c.auth = method
				ar := c.authURL("read", true)
				tr := c.exchange(ar, c.code(ar))
				if mode == "" || mode == method {
					mustOK(t, tr)
				} else {
					mustError(t, tr, http.StatusUnauthorized, "invalid_client")
				}
			}
			c.auth = "header"
			if mode == "body" {
				c.auth = "body"
			}
			c.sec = "wrong"
			ar := c.authURL("read", true)
			mustError(t, c.exchange(ar, c.code(ar)), http.StatusUnauthorized, "invalid_client")
		})
	}
}

func TestCustomClient(t *testing.T) {
	s, c := newServer(t, Options{ClientID: "my app", ClientSecret: "s3cr+t/=", Scopes: []string{"repo"}})
	c.id, c.sec = "my app", "s3cr+t/="
	ar := c.authURL("repo", true)
	tr := c.exchange(ar, c.code(ar))
	mustOK(t, tr)
	if st, m := c.resource(tr.str("access_token")); st != http.StatusOK || m["scope"] != "repo" {
		t.Fatalf("resource: %d %v", st, m)
	}
	ar = c.authURL("read", true)
	if loc := s.Consent(t, c.http, ar.url, true); loc.Query().Get("error") != "invalid_scope" {
		t.Fatalf("scope outside Options.Scopes: %s", loc)
	}
}

func TestTokenDelay(t *testing.T) {
	s, c := newServer(t, Options{})
	rt := c.login().str("refresh_token")

	s.SetTokenDelay(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.tryPost(ctx, s.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("delay did not honour cancellation")
	}

	s.SetTokenDelay(50 * time.Millisecond)
	start = time.Now()
	// The cancelled request never reached fosite: the token still works.
	mustOK(t, c.refresh(rt))
	if time.Since(start) < 50*time.Millisecond {
		t.Fatalf("delay not applied")
	}
	if got := s.TokenRequests("refresh_token"); got != 2 {
		t.Errorf("refresh_token requests = %d, want 2", got)
	}
}

func TestDelayedRequestDoesNotBlockCleanup(t *testing.T) {
	s := New(t, Options{RedirectURIs: []string{redirectURI}})
	s.SetTokenDelay(time.Hour)
	go func() {
		// Left hanging on purpose; Cleanup must release it.
		resp, err := http.PostForm(s.TokenURL(), url.Values{"grant_type": {"refresh_token"}})
		if err == nil {
			resp.Body.Close()
		}
	}()
	for s.TokenRequests("refresh_token") == 0 {
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConcurrentRefresh(t *testing.T) {
	_, c := newServer(t, Options{})
	rt := c.login().str("refresh_token")
	type result struct {
		tr  tokenResp
		err error
	}
	results := make(chan result, 4)
	for range 4 {
		go func() {
			tr, err := c.tryPost(context.Background(), c.s.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			results <- result{tr, err}
		}()
	}
	var winner tokenResp
	ok := 0
	for range 4 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.tr.status == http.StatusOK {
			ok++
			winner = r.tr
		} else if r.tr.str("error") != "invalid_grant" {
			t.Fatalf("unexpected: %d %s", r.tr.status, r.tr.raw)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent refreshes succeeded, want exactly 1", ok)
	}
	// The losers presented a used refresh token, so fosite revoked the whole
	// family, the winner's new tokens included.
	mustError(t, c.refresh(winner.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
	if st, _ := c.resource(winner.str("access_token")); st != http.StatusUnauthorized {
		t.Fatalf("winner's access token after reuse detection: %d", st)
	}
}
