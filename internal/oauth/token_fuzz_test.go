package oauth

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/vault"
)

// answer is a RoundTripper that gives one fixed token endpoint answer.
type answer struct {
	status      int
	contentType string
	retryAfter  string
	body        []byte
}

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{}
	if a.contentType != "" {
		h.Set("Content-Type", a.contentType)
	}
	if a.retryAfter != "" {
		h.Set("Retry-After", a.retryAfter)
	}
	return &http.Response{StatusCode: a.status, Header: h, Body: io.NopCloser(strings.NewReader(string(a.body))), Request: r}, nil
}

// longest is the lifetime past which a provider's expires_in or
// Retry-After may be capped (but never wrapped into a shorter one).
const longest = 100 * 365 * 24 * time.Hour

// FuzzTokenResponse decodes arbitrary token endpoint answers (status,
// content type, Retry-After, body): never a panic; success only for a 200
// with an access token; a lifetime or Retry-After the provider gives in
// seconds is never turned into a shorter or negative one.
func FuzzTokenResponse(f *testing.F) {
	for _, s := range []struct {
		status          int
		ct, retry, body string
	}{
		{200, "application/json", "", `{"access_token": "at", "refresh_token": "rt", "token_type": "bearer", "expires_in": 3600, "scope": "read"}`},
		{200, "application/json", "", `{"access_token": "at", "expires_in": "3600"}`},
		{200, "application/x-www-form-urlencoded", "", `access_token=at&token_type=bearer&expires_in=28800&refresh_token=rt`},
		{200, "application/json", "", `{"access_token": "at", "expires_in": 1e30}`},
		{200, "application/json", "", `{"access_token": "at", "expires_in": 18446744074}`},
		{200, "application/json", "", `{"access_token": "", "expires_in": 1}`},
		{400, "application/json", "", `{"error": "invalid_grant", "error_description": "Token has been revoked"}`},
		{429, "application/json", "120", `{"error": "slow_down"}`},
		{429, "", "Wed, 21 Oct 2015 07:28:00 GMT", ``},
		{503, "text/html", "99999999999", `<html>down</html>`},
	} {
		f.Add(s.status, s.ct, s.retry, []byte(s.body))
	}
	e := Endpoint{TokenURL: "https://as.example/token", ClientAuth: "header"}
	c := Client{ID: "client", Secret: vault.NewSecret("secret")}
	f.Fuzz(func(t *testing.T, status int, ct, retry string, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		retry = strings.Trim(retry, " \t") // as the HTTP parser hands it on
		hc := &http.Client{Transport: answer{status: status, contentType: ct, retryAfter: retry, body: body}}
		tok, err := Exchange(context.Background(), hc, e, c, "code", "https://vk.example/oauth/callback", "")
		if err != nil {
			oe, ok := AsError(err)
			if !ok {
				t.Fatalf("error %T is not an *oauth.Error: %v", err, err)
			}
			if n, perr := strconv.Atoi(retry); perr == nil && n > 0 && oe.RetryAfter < min(time.Duration(min(n, math.MaxInt32))*time.Second, longest) {
				t.Fatalf("Retry-After %q became %v", retry, oe.RetryAfter)
			}
			return
		}
		if status != http.StatusOK || tok.AccessToken.IsZero() {
			t.Fatalf("status %d body %q gave a token", status, body)
		}
		if tok.ExpiresIn < 0 {
			t.Fatalf("negative lifetime %v from %q", tok.ExpiresIn, body)
		}
		sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		if at := tok.ExpiresAt(sent); at != nil && !at.After(sent) {
			t.Fatalf("expires at %v, not after %v (%q)", at, sent, body)
		}
		if n, ok := parseExpiresIn(expiresIn(body, ct)); ok && n >= 1 && tok.ExpiresIn != 0 && tok.ExpiresIn < min(time.Duration(min(n, math.MaxInt32))*time.Second, longest) {
			t.Fatalf("expires_in %d became %v", n, tok.ExpiresIn)
		}
	})
}

// expiresIn finds the raw expires_in of an answer the way the decoder does.
func expiresIn(body []byte, ct string) json.RawMessage {
	var raw struct {
		ExpiresIn json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &raw); err == nil {
		return raw.ExpiresIn
	}
	if strings.Contains(ct, "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(string(body)); err == nil && v.Get("expires_in") != "" {
			return []byte(strconv.Quote(v.Get("expires_in")))
		}
	}
	return nil
}
