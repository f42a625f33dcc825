// Package embedded holds the rules of the Airbyte-style embedded API that
// are not about connections: applications and operator tokens, end-user
// workspaces, widget tokens, and who a bearer token is.
package embedded

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/jwtauth"
	"github.com/valetkey/valetkey/internal/oauth"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/tenant"
	"github.com/valetkey/valetkey/internal/vault"
)

// Token lifetimes.
const (
	OperatorTTL = 15 * time.Minute
	ScopedTTL   = 20 * time.Minute
)

// Store is what the service needs from storage.
type Store interface {
	CreateApplication(ctx context.Context, a store.Application) error
	ApplicationByClientID(ctx context.Context, clientID string) (store.Application, error)
	EnsureWorkspace(ctx context.Context, orgID, externalUserID, id string, at time.Time) (store.Workspace, error)
	GetWorkspace(ctx context.Context, orgID, id string) (store.Workspace, error)
	GetWorkspaceByExternal(ctx context.Context, orgID, externalUserID string) (store.Workspace, error)
	ListWorkspaces(ctx context.Context, orgID string) ([]store.Workspace, error)
}

// Service implements the embedded API's own rules.
type Service struct {
	st        Store
	tenants   *tenant.Service
	issuer    *jwtauth.Issuer
	publicURL func() string
	now       func() time.Time
}

// New returns a Service.
func New(st Store, tenants *tenant.Service, issuer *jwtauth.Issuer, publicURL func() string, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, tenants: tenants, issuer: issuer, publicURL: publicURL, now: now}
}

// Caller is who a bearer token is.
type Caller struct {
	OrganizationID string
	// Subject names the operator (api key or application id) or, for a
	// scoped token, the one who minted it.
	Subject string
	// WorkspaceID and AllowedOrigin are set for scoped (end-user) tokens.
	WorkspaceID   string
	AllowedOrigin string
	ExternalUser  string
	// Connect narrows a Connect-session token (collection, sources,
	// redirect); zero for widget tokens of the embedded API.
	Connect jwtauth.ConnectScope
	// ExpiresAt is when a scoped token stops working.
	ExpiresAt time.Time
}

// AllowSource answers 403 when the caller's session does not offer a source.
func (c Caller) AllowSource(shortName string) error {
	if !c.SourceAllowed(shortName) {
		return apperr.Forbidden("Source '" + shortName + "' is not offered in this session")
	}
	return nil
}

// SourceAllowed reports whether the caller may connect a source.
func (c Caller) SourceAllowed(shortName string) bool {
	if len(c.Connect.AllowedSources) == 0 {
		return true
	}
	for _, s := range c.Connect.AllowedSources {
		if s == shortName {
			return true
		}
	}
	return false
}

// Scoped reports whether the caller is an end user limited to one workspace.
func (c Caller) Scoped() bool { return c.WorkspaceID != "" }

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// CreateApplication issues a client id/secret pair; the secret is shown once.
func (s *Service) CreateApplication(ctx context.Context, orgID, name string) (store.Application, vault.Secret, error) {
	secret := vault.NewSecret("vks_" + oauth.RandomToken(32))
	a := store.Application{ID: uuid.Must(uuid.NewV7()).String(), OrganizationID: orgID, Name: name,
		ClientID: "vkc_" + oauth.RandomToken(16), SecretHash: hash(secret.Reveal()), CreatedAt: s.now().UTC()}
	return a, secret, s.st.CreateApplication(ctx, a)
}

// OperatorToken exchanges application credentials for a 15-minute operator JWT.
func (s *Service) OperatorToken(ctx context.Context, clientID string, clientSecret vault.Secret) (string, time.Duration, error) {
	a, err := s.st.ApplicationByClientID(ctx, clientID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", 0, apperr.Unauthorized("Invalid client credentials")
		}
		return "", 0, err
	}
	if subtle.ConstantTimeCompare(a.SecretHash, hash(clientSecret.Reveal())) != 1 {
		return "", 0, apperr.Unauthorized("Invalid client credentials")
	}
	tok, _, err := s.issuer.Sign(ctx, jwtauth.Claims{Type: jwtauth.TypeOperator, Organization: a.OrganizationID,
		RegisteredClaims: jwtRegistered("application:" + a.ID)}, OperatorTTL)
	return tok, OperatorTTL, err
}

// Authenticate resolves a bearer value: an organization API key, an
// operator JWT, or a workspace-scoped JWT.
func (s *Service) Authenticate(ctx context.Context, bearer string) (Caller, error) {
	if bearer == "" {
		return Caller{}, apperr.Unauthorized("Missing bearer token")
	}
	if strings.HasPrefix(bearer, tenant.KeyPrefix) {
		p, err := s.tenants.Authenticate(ctx, bearer)
		if err != nil {
			return Caller{}, err
		}
		return Caller{OrganizationID: p.OrganizationID, Subject: p.Actor()}, nil
	}
	c, err := s.issuer.Verify(ctx, bearer)
	if err != nil {
		if !errors.Is(err, jwtauth.ErrInvalid) {
			return Caller{}, err // the keys could not be read (database down): not the token's fault
		}
		return Caller{}, apperr.Unauthorized("Invalid or expired token")
	}
	out := Caller{OrganizationID: c.Organization, Subject: c.Subject}
	if c.Type == jwtauth.TypeEmbedded {
		out.WorkspaceID, out.AllowedOrigin = c.WorkspaceScope.WorkspaceID, c.AllowedOrigin
		if c.Act != nil {
			out.ExternalUser = c.Act.Sub
		}
		if c.Connect != nil {
			out.Connect = *c.Connect
		}
		if c.ExpiresAt != nil {
			out.ExpiresAt = c.ExpiresAt.Time
		}
		// The workspace must still exist in the token's organization. A
		// database that cannot answer says nothing about the token.
		if _, err := s.st.GetWorkspace(ctx, c.Organization, out.WorkspaceID); err != nil {
			if errors.Is(err, store.ErrUnavailable) {
				return Caller{}, err
			}
			return Caller{}, apperr.Unauthorized("Invalid or expired token")
		}
	}
	return out, nil
}

// Workspace returns the organization's workspace for an external user id,
// creating it on first use.
func (s *Service) Workspace(ctx context.Context, orgID, externalUserID string) (store.Workspace, error) {
	externalUserID = strings.TrimSpace(externalUserID)
	if externalUserID == "" || len(externalUserID) > 255 {
		return store.Workspace{}, apperr.Invalid(apperr.Field("missing", "external_user_id is required (at most 255 characters)", "body", "external_user_id"))
	}
	return s.st.EnsureWorkspace(ctx, orgID, externalUserID, uuid.Must(uuid.NewV7()).String(), s.now().UTC())
}

// ExistingWorkspace finds a workspace by external user id without creating it.
func (s *Service) ExistingWorkspace(ctx context.Context, orgID, externalUserID string) (store.Workspace, error) {
	w, err := s.st.GetWorkspaceByExternal(ctx, orgID, externalUserID)
	if errors.Is(err, store.ErrNotFound) {
		return w, apperr.NotFound("Workspace not found")
	}
	return w, err
}

// GetWorkspace finds a workspace by id in the organization.
func (s *Service) GetWorkspace(ctx context.Context, orgID, id string) (store.Workspace, error) {
	w, err := s.st.GetWorkspace(ctx, orgID, id)
	if errors.Is(err, store.ErrNotFound) {
		return w, apperr.NotFound("Workspace not found")
	}
	return w, err
}

// ListWorkspaces lists the organization's workspaces.
func (s *Service) ListWorkspaces(ctx context.Context, orgID string) ([]store.Workspace, error) {
	return s.st.ListWorkspaces(ctx, orgID)
}

// WidgetToken mints a workspace-scoped token for an end user and wraps it
// as the seeds describe: base64(JSON {"token": <JWT>, "widgetUrl": ...}).
// allowedOrigin may be any string (the seeds allow it when the widget is
// not used); the widget is embeddable only by a real origin.
func (s *Service) WidgetToken(ctx context.Context, caller Caller, externalUserID, organizationID, allowedOrigin string) (string, error) {
	if organizationID != "" && organizationID != caller.OrganizationID {
		return "", apperr.NotFound("Organization '%s' not found", organizationID)
	}
	if allowedOrigin == "" {
		return "", apperr.Invalid(apperr.Field("missing", "allowedOrigin is required", "body", "allowedOrigin"))
	}
	w, err := s.Workspace(ctx, caller.OrganizationID, externalUserID)
	if err != nil {
		return "", err
	}
	sess, err := s.mint(ctx, caller, w, allowedOrigin, nil)
	return sess.Token, err
}

// Session is a minted widget session.
type Session struct {
	// Token is base64(JSON {"token": <JWT>, "widgetUrl": ...}), the value
	// the widget and embed.js take.
	Token string
	// URL opens the widget as a page of its own; it carries the token in
	// its fragment (never sent to a server), which the page moves to memory.
	URL       string
	WidgetURL string
	ExpiresAt time.Time
}

func (s *Service) mint(ctx context.Context, caller Caller, w store.Workspace, allowedOrigin string, scope *jwtauth.ConnectScope) (Session, error) {
	jwt, exp, err := s.issuer.Sign(ctx, jwtauth.Claims{Type: jwtauth.TypeEmbedded, Organization: caller.OrganizationID,
		Roles: []string{jwtauth.RoleEndUser}, Act: &jwtauth.Actor{Sub: w.ExternalUserID},
		WorkspaceScope: &jwtauth.WorkspaceScope{WorkspaceID: w.ID}, AllowedOrigin: allowedOrigin, Connect: scope,
		RegisteredClaims: jwtRegistered(caller.Subject)}, ScopedTTL)
	if err != nil {
		return Session{}, err
	}
	q := url.Values{"workspaceId": {w.ID}}
	if allowedOrigin != "" {
		q.Set("allowedOrigin", allowedOrigin)
	}
	widgetURL := s.publicURL() + "/embedded-widget?" + q.Encode()
	inner, _ := json.Marshal(map[string]string{"token": jwt, "widgetUrl": widgetURL})
	tok := base64.StdEncoding.EncodeToString(inner)
	return Session{Token: tok, URL: widgetURL + "#token=" + url.QueryEscape(tok), WidgetURL: widgetURL, ExpiresAt: exp}, nil
}

// SessionInput is a Connect session of the native API.
type SessionInput struct {
	Collection     string
	ExternalUserID string
	AllowedSources []string
	RedirectURL    string
	AllowedOrigin  string
}

// Checks are the rules a Connect session's fields must pass that belong to
// other services: the collection exists, the sources are in the catalog,
// the redirect URL is allowed.
type Checks interface {
	CheckCollection(ctx context.Context, orgID, readableID string, loc ...any) error
	CheckSource(shortName string, loc ...any) error
	CheckRedirect(ctx context.Context, orgID, redirectURL string, loc ...any) error
}

// ConnectSession mints a short-lived widget session for the native API: one
// end user's workspace (a new anonymous one when no external user is
// named), optionally one collection and a subset of sources.
func (s *Service) ConnectSession(ctx context.Context, caller Caller, in SessionInput, checks Checks) (Session, error) {
	var errs []apperr.FieldError
	add := func(err error) error {
		if ae, ok := apperr.As(err); ok && ae.Kind == apperr.KindValidation {
			errs = append(errs, ae.Fields...)
			return nil
		}
		return err
	}
	if in.AllowedOrigin != "" && !IsOrigin(in.AllowedOrigin) {
		errs = append(errs, apperr.Field("value_error", "allowed_origin must be an origin like https://app.example.com (scheme, host and optional port only)", "body", "allowed_origin"))
	}
	if len(in.AllowedSources) > 200 {
		errs = append(errs, apperr.Field("too_long", "allowed_sources may name at most 200 sources", "body", "allowed_sources"))
	}
	for i, short := range in.AllowedSources {
		if err := add(checks.CheckSource(short, "body", "allowed_sources", i)); err != nil {
			return Session{}, err
		}
	}
	if in.Collection != "" {
		if err := add(checks.CheckCollection(ctx, caller.OrganizationID, in.Collection, "body", "collection")); err != nil {
			return Session{}, err
		}
	}
	if in.RedirectURL != "" {
		if err := add(checks.CheckRedirect(ctx, caller.OrganizationID, in.RedirectURL, "body", "redirect_url")); err != nil {
			return Session{}, err
		}
	}
	if len(errs) > 0 {
		return Session{}, apperr.Invalid(errs...)
	}
	ext := in.ExternalUserID
	if ext == "" {
		ext = "anonymous-" + uuid.NewString()
	}
	w, err := s.Workspace(ctx, caller.OrganizationID, ext)
	if err != nil {
		return Session{}, err
	}
	return s.mint(ctx, caller, w, in.AllowedOrigin, &jwtauth.ConnectScope{Collection: in.Collection, AllowedSources: in.AllowedSources, RedirectURL: in.RedirectURL})
}

// PublicOrigin is the origin of Valetkey's own pages (the widget), from
// which scoped tokens may always be used.
func (s *Service) PublicOrigin() string {
	u, err := url.Parse(s.publicURL())
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// IsOrigin reports whether s is a serialized web origin: http(s), a host,
// an optional port, nothing else.
func IsOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery && s == u.Scheme+"://"+u.Host &&
		!strings.ContainsAny(s, " ;,'\"\\\r\n")
}
