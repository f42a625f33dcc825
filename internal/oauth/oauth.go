// Package oauth speaks the OAuth 2.0 client side on the wire: authorization
// URLs with PKCE, the authorization-code exchange, the refresh request (done
// here rather than by golang.org/x/oauth2 so that a rotated refresh token is
// never lost) and RFC 7009 revocation. Errors carry the provider's error code,
// description and HTTP status so callers can tell invalid_grant from an outage.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/retryafter"
	"github.com/valetkey/valetkey/internal/vault"
)

// Client is an OAuth client registration.
type Client struct {
	ID     string
	Secret vault.Secret
}

// Endpoint is what the protocol needs of a source's oauth2 method, with its
// URL placeholders already filled from the connection's config.
type Endpoint struct {
	AuthorizeURL    string
	TokenURL        string
	RevokeURL       string
	ClientAuth      string // header | body
	ScopeSeparator  string
	PKCE            bool
	AuthorizeParams map[string]string
}

// EndpointFor builds the Endpoint of a catalog method, replacing {name}
// placeholders with config values.
func EndpointFor(m catalog.AuthMethod, config map[string]any) Endpoint {
	fill := func(u string) string {
		for k, v := range config {
			if s, ok := v.(string); ok {
				u = strings.ReplaceAll(u, "{"+k+"}", url.PathEscape(s))
			}
		}
		return u
	}
	return Endpoint{AuthorizeURL: fill(m.AuthorizeURL), TokenURL: fill(m.TokenURL), RevokeURL: fill(m.RevokeURL),
		ClientAuth: m.ClientAuth, ScopeSeparator: m.ScopeSeparator, PKCE: m.PKCE, AuthorizeParams: m.AuthorizeParams}
}

// NewVerifier returns a PKCE code verifier (RFC 7636, 256 bits).
func NewVerifier() string { return oauth2.GenerateVerifier() }

// RandomToken returns n random bytes, base64url without padding.
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("oauth: crypto/rand failed")
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash is the stored form of a state or one-time code.
func Hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// AuthCodeURL is the provider's authorization URL for one flow.
func AuthCodeURL(e Endpoint, c Client, redirectURI, state, verifier string, scopes []string) string {
	cfg := oauth2.Config{ClientID: c.ID, Endpoint: oauth2.Endpoint{AuthURL: e.AuthorizeURL}, RedirectURL: redirectURI}
	var opts []oauth2.AuthCodeOption
	if len(scopes) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("scope", strings.Join(scopes, e.ScopeSeparator)))
	}
	if e.PKCE && verifier != "" {
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	for k, v := range e.AuthorizeParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return cfg.AuthCodeURL(state, opts...)
}

// Token is a token endpoint's successful answer.
type Token struct {
	AccessToken  vault.Secret
	RefreshToken vault.Secret // zero when the provider sent none
	TokenType    string
	Scope        string
	// ExpiresIn is the provider's expires_in; 0 when it gave none.
	ExpiresIn time.Duration
}

// ExpiresAt is when the token expires counting from sent, the time the
// request was sent (by the caller's clock); nil when unknown.
func (t *Token) ExpiresAt(sent time.Time) *time.Time {
	if t.ExpiresIn <= 0 {
		return nil
	}
	at := sent.Add(t.ExpiresIn).UTC().Truncate(time.Microsecond)
	return &at
}

// Error is a token or revocation endpoint's failure. Code and Description
// come from the provider's RFC 6749 error body when it sent one.
type Error struct {
	Status      int
	Code        string
	Description string
	RetryAfter  time.Duration
	Err         error // transport failure, when there was no answer
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil:
		return "oauth: request failed: " + e.Err.Error()
	case e.Code != "":
		return fmt.Sprintf("oauth: %s: %s (HTTP %d)", e.Code, e.Description, e.Status)
	default:
		return fmt.Sprintf("oauth: HTTP %d", e.Status)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help: the grant or client was
// refused (invalid_grant, unauthorized_client, invalid_client), or another
// 4xx that is not a rate limit.
func (e *Error) Permanent() bool {
	switch e.Code {
	case "invalid_grant", "unauthorized_client", "invalid_client":
		return true
	}
	if e.Err != nil {
		return false
	}
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests && e.Status != http.StatusRequestTimeout
}

// AsError extracts an *Error.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Exchange trades an authorization code for tokens.
func Exchange(ctx context.Context, hc *http.Client, e Endpoint, c Client, code, redirectURI, verifier string) (*Token, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	return tokenRequest(ctx, hc, e, c, form)
}

// Refresh asks for a new access token with a refresh token. When the provider
// does not return a new refresh token, the returned Token carries the one
// that was used, so the caller always stores a usable refresh token.
func Refresh(ctx context.Context, hc *http.Client, e Endpoint, c Client, refreshToken vault.Secret) (*Token, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken.Reveal()}}
	t, err := tokenRequest(ctx, hc, e, c, form)
	if err != nil {
		return nil, err
	}
	if t.RefreshToken.IsZero() {
		t.RefreshToken = refreshToken
	}
	return t, nil
}

// maxBody caps what is read from a provider.
const maxBody = 1 << 20

func tokenRequest(ctx context.Context, hc *http.Client, e Endpoint, c Client, form url.Values) (*Token, error) {
	if e.ClientAuth != "header" {
		form.Set("client_id", c.ID)
		if !c.Secret.IsZero() {
			form.Set("client_secret", c.Secret.Reveal())
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &Error{Err: fmt.Errorf("bad token URL")}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if e.ClientAuth == "header" {
		// RFC 6749 2.3.1: form-encode id and secret before Basic.
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret.Reveal()))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &Error{Err: scrub(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, &Error{Status: resp.StatusCode, Err: fmt.Errorf("reading answer: %w", err)}
	}
	var raw struct {
		AccessToken  string          `json:"access_token"`
		RefreshToken string          `json:"refresh_token"`
		TokenType    string          `json:"token_type"`
		Scope        string          `json:"scope"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
		Error        string          `json:"error"`
		Description  string          `json:"error_description"`
	}
	jsonErr := json.Unmarshal(body, &raw)
	if jsonErr != nil && strings.Contains(resp.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		// Some providers (GitHub without Accept) answer form-encoded.
		if v, err := url.ParseQuery(string(body)); err == nil {
			raw.AccessToken, raw.RefreshToken, raw.TokenType, raw.Scope = v.Get("access_token"), v.Get("refresh_token"), v.Get("token_type"), v.Get("scope")
			raw.Error, raw.Description = v.Get("error"), v.Get("error_description")
			if ei := v.Get("expires_in"); ei != "" {
				raw.ExpiresIn = json.RawMessage(strconv.Quote(ei))
			}
			jsonErr = nil
		}
	}
	if resp.StatusCode != http.StatusOK || raw.Error != "" || raw.AccessToken == "" {
		e := &Error{Status: resp.StatusCode, Code: raw.Error, Description: raw.Description, RetryAfter: retryafter.FromHeader(resp.Header)}
		if e.Code == "" && resp.StatusCode == http.StatusOK {
			e.Status = http.StatusBadGateway
			e.Description = "token endpoint answered 200 without an access_token"
		}
		return nil, e
	}
	t := &Token{AccessToken: vault.NewSecret(raw.AccessToken), RefreshToken: vault.NewSecret(raw.RefreshToken), TokenType: raw.TokenType, Scope: raw.Scope}
	if secs, ok := parseExpiresIn(raw.ExpiresIn); ok {
		t.ExpiresIn = time.Duration(secs) * time.Second
	}
	return t, nil
}

// parseExpiresIn accepts a JSON number or a numeric string (capped at
// retryafter.MaxSeconds, past which a time.Duration would wrap).
func parseExpiresIn(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false
	}
	s := strings.Trim(string(raw), `"`)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) { // also refuses NaN
		return 0, false
	}
	return int64(min(f, float64(retryafter.MaxSeconds))), true
}

// scrub drops the request URL from transport errors: a token URL has no
// secret, but a query-string credential elsewhere might, so errors never carry URLs.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// Revoke asks the provider to revoke a token (RFC 7009). hint is
// "refresh_token" or "access_token".
func Revoke(ctx context.Context, hc *http.Client, e Endpoint, c Client, token vault.Secret, hint string) error {
	form := url.Values{"token": {token.Reveal()}, "token_type_hint": {hint}}
	if e.ClientAuth != "header" {
		form.Set("client_id", c.ID)
		if !c.Secret.IsZero() {
			form.Set("client_secret", c.Secret.Reveal())
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.RevokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return &Error{Err: fmt.Errorf("bad revocation URL")}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if e.ClientAuth == "header" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret.Reveal()))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &Error{Err: scrub(err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode != http.StatusOK {
		return &Error{Status: resp.StatusCode}
	}
	return nil
}
