package authprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/retryafter"
	"github.com/valetkey/valetkey/internal/vault"
)

// pipedreamFields maps Pipedream's credential names onto Valetkey's.
var pipedreamFields = map[string]string{
	"oauth_access_token":  "access_token",
	"oauth_refresh_token": "refresh_token",
	"oauth_client_id":     "client_id",
	"oauth_client_secret": "client_secret",
	"api_key":             "api_key",
}

// pipedreamClient talks to Pipedream Connect with the team's Pipedream
// OAuth client (client_credentials); its access token is cached and renewed
// margin before it expires, one renewal at a time.
type pipedreamClient struct {
	h      *httpDoer
	base   string
	id     string
	secret vault.Secret
	margin time.Duration
	now    func() time.Time

	sf    singleflight.Group
	mu    sync.Mutex
	token vault.Secret
	exp   time.Time
}

var errClientRejected = apperr.BadRequest("Failed to refresh token: Pipedream rejected Valetkey's Pipedream OAuth client credentials (the Valetkey → Pipedream client, not the source app's)")

func (p *pipedreamClient) accessToken(ctx context.Context, forceNew bool) (vault.Secret, error) {
	p.mu.Lock()
	tok, exp := p.token, p.exp
	p.mu.Unlock()
	if !forceNew && !tok.IsZero() && p.now().Add(p.margin).Before(exp) {
		return tok, nil
	}
	v, err, _ := p.sf.Do("token", func() (any, error) {
		p.mu.Lock()
		if !forceNew && !p.token.IsZero() && p.now().Add(p.margin).Before(p.exp) {
			t := p.token
			p.mu.Unlock()
			return t, nil
		}
		p.mu.Unlock()
		t, exp, err := p.requestToken(context.WithoutCancel(ctx))
		if err != nil {
			return vault.Secret{}, err
		}
		p.mu.Lock()
		p.token, p.exp = t, exp
		p.mu.Unlock()
		return t, nil
	})
	if err != nil {
		return vault.Secret{}, err
	}
	return v.(vault.Secret), nil
}

func (p *pipedreamClient) requestToken(ctx context.Context) (vault.Secret, time.Time, error) {
	body, _ := json.Marshal(map[string]string{"grant_type": "client_credentials", "client_id": p.id, "client_secret": p.secret.Reveal()})
	sent := p.now()
	resp, err := p.h.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/v1/oauth/token", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
	if err != nil {
		return vault.Secret{}, time.Time{}, err
	}
	if resp.status == http.StatusUnauthorized || resp.status == http.StatusBadRequest || resp.status == http.StatusForbidden {
		return vault.Secret{}, time.Time{}, errClientRejected
	}
	if resp.status != http.StatusOK {
		return vault.Secret{}, time.Time{}, unavailable("Pipedream", resp)
	}
	var t struct {
		AccessToken string  `json:"access_token"`
		ExpiresIn   float64 `json:"expires_in"`
	}
	if err := json.Unmarshal(resp.body, &t); err != nil || t.AccessToken == "" {
		return vault.Secret{}, time.Time{}, &apperr.Error{Kind: apperr.KindBadGateway, Msg: "Pipedream answered the token request without an access token"}
	}
	if t.ExpiresIn <= 0 {
		t.ExpiresIn = 3600
	}
	return vault.NewSecret(t.AccessToken), sent.Add(time.Duration(t.ExpiresIn * float64(time.Second))), nil
}

func (p *pipedreamClient) check(ctx context.Context) error {
	_, err := p.accessToken(ctx, true)
	if err == errClientRejected {
		return apperr.Invalid(apperr.Field("value_error", "Invalid Pipedream client credentials", "body", "auth_fields"))
	}
	return err
}

// pdAccount is Pipedream's account object.
type pdAccount struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	ExternalID  string         `json:"external_id"`
	Healthy     *bool          `json:"healthy"`
	Dead        *bool          `json:"dead"`
	Error       *string        `json:"error"`
	ExpiresAt   *time.Time     `json:"expires_at"`
	Credentials map[string]any `json:"credentials"`
	App         struct {
		NameSlug string `json:"name_slug"`
		Name     string `json:"name"`
	} `json:"app"`
}

func (p *pipedreamClient) fetch(ctx context.Context, src *catalog.Source, cfg map[string]string) (Account, error) {
	project, account := cfg["project_id"], cfg["account_id"]
	env := cfg["environment"]
	if env == "" {
		env = "production"
	}
	u := p.base + "/v1/connect/" + url.PathEscape(project) + "/accounts/" + url.PathEscape(account) + "?include_credentials=true"
	var resp *answer
	for attempt := 0; attempt < 2; attempt++ {
		tok, err := p.accessToken(ctx, attempt > 0)
		if err != nil {
			return Account{}, err
		}
		resp, err = p.h.do(ctx, func() (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+tok.Reveal())
				req.Header.Set("x-pd-environment", env)
			}
			return req, err
		})
		if err != nil {
			return Account{}, err
		}
		if resp.status != http.StatusUnauthorized {
			break
		}
	}
	switch {
	case resp.status == http.StatusNotFound:
		return Account{}, apperr.NotFound("Account %s not found in project %s", account, project)
	case resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden:
		return Account{}, errClientRejected
	case resp.status != http.StatusOK:
		return Account{}, unavailable("Pipedream", resp)
	}
	var a pdAccount
	if err := decodeMaybeWrapped(resp.body, &a); err != nil || a.ID == "" {
		return Account{}, &apperr.Error{Kind: apperr.KindBadGateway, Msg: "Pipedream answered with an account Valetkey cannot read"}
	}
	want := src.PipedreamSlug
	if want == "" {
		want = src.ShortName
	}
	if a.App.NameSlug != want {
		return Account{}, apperr.BadRequest("Account %s is not for app '%s'", account, src.ShortName)
	}
	if len(a.Credentials) == 0 {
		return Account{}, apperr.BadRequest("Credentials not available. Pipedream only exposes credentials for accounts created with custom OAuth clients, not default Pipedream OAuth.")
	}
	out := Account{Fields: map[string]vault.Secret{}, ExpiresAt: a.ExpiresAt}
	for k, v := range a.Credentials {
		s, ok := v.(string)
		if !ok || s == "" {
			continue
		}
		if mapped, ok := pipedreamFields[k]; ok {
			out.Fields[mapped] = vault.NewSecret(s)
		} else if hasCredentialField(src, k) {
			out.Fields[k] = vault.NewSecret(s)
		}
	}
	if a.Dead != nil && *a.Dead {
		out.Broken = "Pipedream reports account " + account + " as dead"
	} else if a.Healthy != nil && !*a.Healthy {
		out.Broken = "Pipedream reports account " + account + " as unhealthy"
	}
	if out.Broken != "" && a.Error != nil && *a.Error != "" {
		out.Broken += ": " + *a.Error
	}
	return out, nil
}

// decodeMaybeWrapped decodes an object that may come as {"data": {...}}.
func decodeMaybeWrapped(body []byte, v any) error {
	var w struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &w); err == nil && len(w.Data) > 0 && w.Data[0] == '{' {
		return json.Unmarshal(w.Data, v)
	}
	return json.Unmarshal(body, v)
}

func hasCredentialField(src *catalog.Source, name string) bool {
	for _, m := range src.Auth {
		for _, f := range m.CredentialFields() {
			if f.Name == name {
				return true
			}
		}
	}
	return false
}

// answer is a provider's HTTP answer, read whole.
type answer struct {
	status     int
	body       []byte
	retryAfter time.Duration
}

// httpDoer sends requests with bounded retries: 5xx and transport errors
// are retried with backoff; 429 waits Retry-After when it is short.
type httpDoer struct {
	hc       *http.Client
	attempts int
	backoff  time.Duration
	maxWait  time.Duration
}

func (h *httpDoer) do(ctx context.Context, build func() (*http.Request, error)) (*answer, error) {
	delay := h.backoff
	var last *answer
	for attempt := 1; ; attempt++ {
		req, err := build()
		if err != nil {
			return nil, err
		}
		resp, err := h.hc.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if rerr == nil {
				last = &answer{status: resp.StatusCode, body: b, retryAfter: retryafter.FromHeader(resp.Header)}
			}
		}
		retryable := last == nil || err != nil || last.status >= 500 || last.status == http.StatusTooManyRequests
		if !retryable {
			return last, nil
		}
		if attempt >= h.attempts {
			if last == nil || err != nil {
				return nil, &apperr.Error{Kind: apperr.KindUnavailable, Msg: "The auth provider is unreachable; retry later", RetryAfter: 5 * time.Second}
			}
			return last, nil
		}
		wait := delay
		if last != nil && last.status == http.StatusTooManyRequests && last.retryAfter > 0 {
			if last.retryAfter > h.maxWait {
				return last, nil // too long to wait here: the caller answers 429/503 with it
			}
			wait = last.retryAfter
		}
		select {
		case <-ctx.Done():
			return nil, &apperr.Error{Kind: apperr.KindUnavailable, Msg: "The auth provider did not answer in time", RetryAfter: 5 * time.Second, Err: ctx.Err()}
		case <-time.After(wait):
		}
		delay *= 2
		last = nil
	}
}

// unavailable turns a failed provider answer into 429 or 503 with Retry-After.
func unavailable(provider string, a *answer) error {
	retry := a.retryAfter
	if retry <= 0 {
		retry = 5 * time.Second
	}
	if a.status == http.StatusTooManyRequests {
		return &apperr.Error{Kind: apperr.KindTooManyRequests, Msg: provider + " is rate limiting Valetkey; retry later", RetryAfter: retry}
	}
	return &apperr.Error{Kind: apperr.KindUnavailable, Msg: fmt.Sprintf("%s answered HTTP %d; retry later", provider, a.status), RetryAfter: retry}
}
