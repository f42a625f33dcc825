// Package oauthapp keeps each organization's own OAuth clients, one per
// source (white label): registration, the redirect-URL allowlist, and the
// client a flow or a refresh must use.
package oauthapp

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/oauth"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// Store is what the service needs from storage.
type Store interface {
	PutOAuthApp(ctx context.Context, a store.OAuthApp) (store.OAuthApp, error)
	GetOAuthApp(ctx context.Context, orgID, shortName string) (store.OAuthApp, error)
	ListOAuthApps(ctx context.Context, orgID string) ([]store.OAuthApp, error)
	DeleteOAuthApp(ctx context.Context, orgID, shortName string) error
}

// Service manages OAuth apps.
type Service struct {
	st      Store
	catalog *catalog.Catalog
	sealer  credential.Sealer
}

// New returns a Service.
func New(st Store, cat *catalog.Catalog, c credential.Cipher) *Service {
	return &Service{st: st, catalog: cat, sealer: credential.Sealer{C: c}}
}

// Input registers or replaces an app.
type Input struct {
	ClientID             string
	ClientSecret         vault.Secret
	Scopes               []string
	RedirectURLAllowlist []string
}

// App is a registered app as callers may see it (no secret).
type App struct {
	ShortName            string
	ClientID             string
	Scopes               []string
	RedirectURLAllowlist []string
	CreatedAt, UpdatedAt time.Time
}

func view(a store.OAuthApp) App {
	return App{ShortName: a.ShortName, ClientID: a.ClientID, Scopes: nonNil(a.Scopes), RedirectURLAllowlist: nonNil(a.RedirectURLAllowlist),
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// oauthSource returns the source and its oauth2 method, or a 404.
func (s *Service) oauthSource(shortName string) (*catalog.Source, catalog.AuthMethod, error) {
	src, err := s.catalog.Get(shortName)
	if err != nil {
		return nil, catalog.AuthMethod{}, apperr.NotFound("Source '%s' not found", shortName)
	}
	m, ok := src.Method(catalog.AuthOAuth2)
	if !ok {
		return nil, m, apperr.BadRequest("Source '%s' does not use OAuth2", shortName)
	}
	return src, m, nil
}

// Put registers the organization's app for a source, replacing any previous one.
func (s *Service) Put(ctx context.Context, orgID, shortName string, in Input) (App, error) {
	if _, _, err := s.oauthSource(shortName); err != nil {
		return App{}, err
	}
	var errs []apperr.FieldError
	if strings.TrimSpace(in.ClientID) == "" {
		errs = append(errs, apperr.Field("missing", "Field 'client_id' is required", "body", "client_id"))
	}
	if in.ClientSecret.IsZero() {
		errs = append(errs, apperr.Field("missing", "Field 'client_secret' is required", "body", "client_secret"))
	}
	for i, u := range in.RedirectURLAllowlist {
		if _, err := parseAbsolute(u); err != nil {
			errs = append(errs, apperr.Field("url_parsing", "Each allowlist entry must be an absolute http(s) URL without query or fragment", "body", "redirect_url_allowlist", i))
		}
	}
	if len(errs) > 0 {
		return App{}, apperr.Invalid(errs...)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := store.OAuthApp{ID: uuid.Must(uuid.NewV7()).String(), OrganizationID: orgID, ShortName: shortName, ClientID: in.ClientID,
		Scopes: in.Scopes, RedirectURLAllowlist: in.RedirectURLAllowlist, CreatedAt: now, UpdatedAt: now}
	if old, err := s.st.GetOAuthApp(ctx, orgID, shortName); err == nil {
		a.ID, a.CreatedAt = old.ID, old.CreatedAt
	} else if !errors.Is(err, store.ErrNotFound) {
		return App{}, err
	}
	ct, keyID, err := s.sealer.SealAD(credential.ADFor(store.TableOAuthApps, orgID, a.ID),
		credential.Payload{Fields: map[string]vault.Secret{"client_secret": in.ClientSecret}})
	if err != nil {
		return App{}, err
	}
	a.Ciphertext, a.KeyID = ct, keyID
	saved, err := s.st.PutOAuthApp(ctx, a)
	if err != nil {
		return App{}, err
	}
	return view(saved), nil
}

// List returns the organization's apps.
func (s *Service) List(ctx context.Context, orgID string) ([]App, error) {
	apps, err := s.st.ListOAuthApps(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := make([]App, 0, len(apps))
	for _, a := range apps {
		out = append(out, view(a))
	}
	return out, nil
}

// Delete removes the organization's app for a source.
func (s *Service) Delete(ctx context.Context, orgID, shortName string) error {
	err := s.st.DeleteOAuthApp(ctx, orgID, shortName)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound("No OAuth app registered for source '%s'", shortName)
	}
	return err
}

// Registration is what a flow needs: the client, its scopes and the allowlist.
type Registration struct {
	Client               oauth.Client
	Scopes               []string
	RedirectURLAllowlist []string
}

// For returns the organization's registration for a source, or a 400 saying
// none is configured.
func (s *Service) For(ctx context.Context, orgID, shortName string) (Registration, error) {
	a, err := s.st.GetOAuthApp(ctx, orgID, shortName)
	if errors.Is(err, store.ErrNotFound) {
		return Registration{}, apperr.BadRequest("No OAuth client configured for source '%s'", shortName)
	} else if err != nil {
		return Registration{}, err
	}
	p, err := s.sealer.OpenAD(a.Ciphertext, credential.ADFor(store.TableOAuthApps, orgID, a.ID))
	if err != nil {
		return Registration{}, err
	}
	return Registration{Client: oauth.Client{ID: a.ClientID, Secret: p.Fields["client_secret"]}, Scopes: a.Scopes,
		RedirectURLAllowlist: a.RedirectURLAllowlist}, nil
}

func parseAbsolute(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("not an absolute http(s) URL")
	}
	return u, nil
}

// Allowed reports whether redirect matches an allowlist entry exactly in
// scheme, host and port, and falls under its path (segment-wise prefix).
// A redirect URL may carry its own query; it may not carry user info or a
// fragment, and no entry means nothing is allowed.
func Allowed(allowlist []string, redirect string) bool {
	r, err := url.Parse(redirect)
	if err != nil || r.User != nil || r.Fragment != "" || r.Host == "" || (r.Scheme != "https" && r.Scheme != "http") {
		return false
	}
	// No dot segments (plain or percent-encoded): they would climb out of the prefix.
	for _, seg := range strings.Split(r.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	for _, entry := range allowlist {
		a, err := parseAbsolute(entry)
		if err != nil {
			continue
		}
		if !strings.EqualFold(a.Scheme, r.Scheme) || !sameHost(a.Hostname(), r.Hostname()) || port(a) != port(r) {
			continue
		}
		ap, rp := a.EscapedPath(), r.EscapedPath()
		if ap == "" || ap == "/" || rp == ap || strings.HasPrefix(rp, strings.TrimSuffix(ap, "/")+"/") {
			return true
		}
	}
	return false
}

// sameHost compares host names byte for byte but for ASCII case:
// strings.EqualFold would also fold non-ASCII letters (the Kelvin sign
// matches k) and take any two invalid UTF-8 bytes as equal.
func sameHost(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}
