// Package connection holds the domain rules of source connections and their
// collections: validation of credentials and config against the catalog,
// creation, updates, deletion and handing a credential back to its owner.
// Both API dialects call it; no rule lives in a handler.
package connection

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/audit"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/oauth"
	"github.com/valetkey/valetkey/internal/oauthapp"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// Authentication methods as clients see them.
const (
	MethodDirect       = "direct"
	MethodOAuthToken   = "oauth_token"
	MethodOAuthBrowser = "oauth_browser"
	MethodOAuthBYOC    = "oauth_byoc"
	MethodAuthProvider = "auth_provider"
)

// Store is what the connection service needs from storage.
type Store interface {
	CreateCollection(ctx context.Context, c store.Collection) error
	GetCollection(ctx context.Context, orgID, readableID string) (store.Collection, error)
	ListCollections(ctx context.Context, orgID string, skip, limit int) ([]store.Collection, error)
	DeleteCollection(ctx context.Context, orgID, id string) error
	CreateConnection(ctx context.Context, c store.SourceConnection, cred *store.Credential) error
	GetConnection(ctx context.Context, orgID, id string) (store.SourceConnection, error)
	ListConnections(ctx context.Context, orgID string, f store.ConnectionFilter) ([]store.SourceConnection, error)
	UpdateConnection(ctx context.Context, orgID, id string, update func(c *store.SourceConnection) (*store.Credential, error)) (store.SourceConnection, error)
	DeleteConnection(ctx context.Context, orgID, id string) error
	GetCredentialForConnection(ctx context.Context, orgID, connectionID string) (store.Credential, error)
	AppendAudit(ctx context.Context, e store.AuditEvent) error
	ListOAuthApps(ctx context.Context, orgID string) ([]store.OAuthApp, error)
	CreateOAuthSession(ctx context.Context, s store.OAuthSession) error
	UseSessionCode(ctx context.Context, codeHash []byte, now time.Time) (store.OAuthSession, error)
	UseSessionState(ctx context.Context, stateHash []byte, now time.Time) (store.OAuthSession, error)
	CreateOAuthSecret(ctx context.Context, s store.OAuthSecret) error
	UseOAuthSecret(ctx context.Context, orgID, workspaceID, shortName, id string, now time.Time) (store.OAuthSecret, error)
	CreateSourceTemplate(ctx context.Context, t store.SourceTemplate) error
	GetSourceTemplate(ctx context.Context, orgID, id string) (store.SourceTemplate, error)
	ListSourceTemplates(ctx context.Context, orgID string) ([]store.SourceTemplate, error)
	DeleteSourceTemplate(ctx context.Context, orgID, id string) error
	SyncJobStats(ctx context.Context, orgID, connectionID string) (store.JobStats, error)
}

// Apps finds the organization's OAuth app for a source.
type Apps interface {
	For(ctx context.Context, orgID, shortName string) (oauthapp.Registration, error)
}

// Refresher hands out fresh credentials and revokes them.
type Refresher interface {
	GetFor(ctx context.Context, conn store.SourceConnection, o refresh.GetOptions) (refresh.Fresh, error)
	Revoke(ctx context.Context, conn store.SourceConnection, cred store.Credential) error
}

// Options are the service's collaborators.
type Options struct {
	Apps    Apps
	Refresh Refresher
	// PublicURL returns where browsers and providers reach Valetkey (known
	// once the server listens).
	PublicURL func() string
	// HTTPClient talks to token endpoints for code exchange.
	HTTPClient *http.Client
	Log        *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Providers reads credentials held by auth providers.
	Providers Providers
	// Events hears of connections created and needing re-authorization.
	Events Events
}

// Events receives what happened (webhooks).
type Events interface {
	Emit(ctx context.Context, orgID, event string, data map[string]any)
}

// audit records a credential event; a failure to record is logged, since
// the change itself has happened.
func (s *Service) audit(ctx context.Context, orgID, action, connectionID string) {
	if err := audit.Record(ctx, s.st, orgID, action, connectionID, "connection"); err != nil {
		s.opt.Log.ErrorContext(ctx, "audit record failed", "action", action, "error", err.Error())
	}
}

func (s *Service) emit(ctx context.Context, orgID, event string, c store.SourceConnection) {
	if s.opt.Events != nil {
		s.opt.Events.Emit(context.WithoutCancel(ctx), orgID, event, map[string]any{"source_connection_id": c.ID, "short_name": c.ShortName,
			"status": c.Status, "readable_collection_id": c.CollectionRID})
	}
}

// Service implements source connections and collections.
type Service struct {
	tokenReads atomic.Int64
	st         Store
	catalog    *catalog.Catalog
	sealer     credential.Sealer
	opt        Options
	now        func() time.Time
}

// New returns a Service.
func New(st Store, cat *catalog.Catalog, c credential.Cipher, opt Options) *Service {
	if opt.HTTPClient == nil {
		opt.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	now := nowMicro
	if opt.Now != nil {
		clock := opt.Now
		now = func() time.Time { return clock().UTC().Truncate(time.Microsecond) }
	}
	return &Service{st: st, catalog: cat, sealer: credential.Sealer{C: c}, opt: opt, now: now}
}

// Catalog returns the source catalog.
func (s *Service) Catalog() *catalog.Catalog { return s.catalog }

// Source looks up a source, answering 404 with the seeds' message.
func (s *Service) Source(shortName string) (*catalog.Source, error) {
	src, err := s.catalog.Get(shortName)
	if err != nil {
		return nil, apperr.NotFound("Source '%s' not found", shortName)
	}
	return src, nil
}

// Credentials are injected credential fields as decoded from a request, with
// where in the request they came from (for error locations).
type Credentials struct {
	Raw map[string]any
	Loc []any
	// ExpiresAt is the access token's expiry, when the caller knows it.
	ExpiresAt *time.Time
	// Direct says the caller gave a plain field set (the SDK's credentials
	// shape) rather than OAuth tokens: the connection's method is "direct"
	// whatever the fields are.
	Direct bool
}

// CreateInput is a new connection in either API dialect.
type CreateInput struct {
	Name        string
	Description string
	ShortName   string
	// Collection is the readable id of an existing collection; empty creates
	// one for the connection.
	Collection    string
	CollectionLoc []any
	Config        map[string]any
	ConfigLoc     []any
	Schedule      json.RawMessage
	Credentials   *Credentials
	// RedirectURL is where the browser returns after the OAuth flow; it must
	// be on the organization's allowlist.
	RedirectURL    string
	RedirectURLLoc []any
	// Client is a one-connection OAuth client (bring your own client).
	Client *oauth.Client
	// AuthProvider is the readable id of an auth provider that holds the
	// account; AuthProviderConfig says which account.
	AuthProvider          string
	AuthProviderConfig    map[string]any
	AuthProviderConfigLoc []any
	// WorkspaceID puts the connection in an end user's workspace (embedded
	// API); with no Collection it goes to the workspace's collection.
	WorkspaceID string
}

// View is a connection with what a response shows about its credential.
type View struct {
	store.SourceConnection
	Authenticated bool
	ExpiresAt     *time.Time
	// For a connection just created for the browser flow:
	AuthURL        string
	AuthURLExpires *time.Time
	RedirectURL    string
	// Sync summarises the connection's sync jobs (filled on reads).
	Sync store.JobStats
}

// Create validates and stores a connection with its credential.
func (s *Service) Create(ctx context.Context, orgID string, in CreateInput) (View, error) {
	src, err := s.Source(in.ShortName)
	if err != nil {
		return View{}, err
	}
	var errs []apperr.FieldError
	errs = append(errs, checkName(in.Name, []any{"body", "name"})...)
	errs = append(errs, checkDescription(in.Description)...)
	errs = append(errs, checkSchedule(in.Schedule)...)
	config, cerrs := checkConfig(src, in.Config, in.ConfigLoc, false)
	errs = append(errs, cerrs...)

	if in.AuthProvider != "" {
		return s.createProviderBacked(ctx, orgID, src, in, config, errs)
	}
	var method catalog.AuthMethod
	var fields map[string]vault.Secret
	if in.Credentials == nil || in.Credentials.Raw == nil {
		if m, ok := src.Method(catalog.AuthOAuth2); ok {
			if len(errs) > 0 {
				return View{}, apperr.Invalid(errs...)
			}
			return s.startBrowserFlow(ctx, orgID, src, m, in, config)
		}
		loc := []any{"body", "auth_fields"}
		if in.Credentials != nil {
			loc = in.Credentials.Loc
		}
		_, _, ferrs := chooseMethod(src, map[string]any{}, loc)
		errs = append(errs, ferrs...)
	} else {
		var ferrs []apperr.FieldError
		method, fields, ferrs = chooseMethod(src, in.Credentials.Raw, in.Credentials.Loc)
		errs = append(errs, ferrs...)
	}
	if len(errs) > 0 {
		return View{}, apperr.Invalid(errs...)
	}

	coll, err := s.collectionFor(ctx, orgID, in)
	if err != nil {
		return View{}, err
	}
	now := s.now().UTC()
	cfg, _ := json.Marshal(config)
	conn := store.SourceConnection{
		ID: newID(), OrganizationID: orgID, CollectionID: coll.ID, CollectionRID: coll.ReadableID,
		Name: in.Name, Description: in.Description, ShortName: src.ShortName,
		Status: store.StatusActive, AuthMethod: methodName(method, in.Credentials), Config: cfg, Schedule: in.Schedule,
		AuthenticatedAt: &now, CreatedAt: now, ModifiedAt: now, WorkspaceID: in.WorkspaceID,
	}
	cred, err := s.newCredential(orgID, conn.ID, method, credential.Payload{Fields: fields}, in.Credentials.ExpiresAt) // non-nil: checked above
	if err != nil {
		return View{}, err
	}
	if err := s.st.CreateConnection(ctx, conn, cred); err != nil {
		return View{}, err
	}
	s.emit(ctx, orgID, "source_connection.created", conn)
	s.audit(ctx, orgID, "credential.create", conn.ID)
	return View{SourceConnection: conn, Authenticated: true, ExpiresAt: cred.ExpiresAt}, nil
}

func methodName(m catalog.AuthMethod, c *Credentials) string {
	if m.Type == catalog.AuthOAuth2 && !c.Direct {
		return MethodOAuthToken
	}
	return MethodDirect
}

func (s *Service) newCredential(orgID, connID string, m catalog.AuthMethod, p credential.Payload, exp *time.Time) (*store.Credential, error) {
	now := s.now().UTC()
	c := &store.Credential{ID: newID(), OrganizationID: orgID, SourceConnectionID: connID, Kind: m.Type, Version: 1, CreatedAt: now, UpdatedAt: now}
	if m.Type == catalog.AuthOAuth2 {
		if p.TokenType == "" {
			p.TokenType = "Bearer"
		}
		c.ExpiresAt = exp
		c.Refreshable = !p.Fields["refresh_token"].IsZero()
	}
	ct, keyID, err := s.sealer.Seal(orgID, c.ID, p)
	if err != nil {
		return nil, err
	}
	c.Ciphertext, c.KeyID = ct, keyID
	return c, nil
}

func checkName(name string, loc []any) []apperr.FieldError {
	n := utf8.RuneCountInString(strings.TrimSpace(name))
	switch {
	case name == "":
		return []apperr.FieldError{apperr.Field("missing", "Field 'name' is required", loc...)}
	case n < 4:
		return []apperr.FieldError{apperr.Field("string_too_short", "Field 'name' must have at least 4 characters", loc...)}
	case n > 42:
		return []apperr.FieldError{apperr.Field("string_too_long", "Field 'name' must have at most 42 characters", loc...)}
	}
	return nil
}

func checkDescription(d string) []apperr.FieldError {
	if utf8.RuneCountInString(d) > 255 {
		return []apperr.FieldError{apperr.Field("string_too_long", "Field 'description' must have at most 255 characters", "body", "description")}
	}
	return nil
}

func (s *Service) collectionFor(ctx context.Context, orgID string, in CreateInput) (store.Collection, error) {
	if in.Collection == "" && in.WorkspaceID != "" {
		return s.workspaceCollection(ctx, orgID, in.WorkspaceID)
	}
	if in.Collection != "" {
		c, err := s.st.GetCollection(ctx, orgID, in.Collection)
		if errors.Is(err, store.ErrNotFound) {
			return c, apperr.NotFound("Collection '%s' not found", in.Collection)
		}
		return c, err
	}
	return s.CreateCollection(ctx, orgID, in.Name, "")
}

// Get returns a connection.
func (s *Service) Get(ctx context.Context, orgID, id string) (View, error) {
	c, err := s.st.GetConnection(ctx, orgID, id)
	if err != nil {
		return View{}, notFoundConn(err, id)
	}
	return s.view(ctx, c)
}

func (s *Service) view(ctx context.Context, c store.SourceConnection) (View, error) {
	v := View{SourceConnection: c}
	st, err := s.st.SyncJobStats(ctx, c.OrganizationID, c.ID)
	if err != nil {
		return v, err
	}
	v.Sync = st
	cred, err := s.st.GetCredentialForConnection(ctx, c.OrganizationID, c.ID)
	switch {
	case err == nil:
		v.Authenticated = c.Status != store.StatusPendingAuth && c.Status != store.StatusNeedsReauth
		v.ExpiresAt = cred.ExpiresAt
	case errors.Is(err, store.ErrNotFound):
		v.Authenticated = c.AuthProviderID != "" && c.Status != store.StatusNeedsReauth
	default:
		return v, err
	}
	return v, nil
}

func notFoundConn(err error, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound("Source connection '%s' not found", id)
	}
	return err
}

// List returns connections, optionally of one collection (readable id).
func (s *Service) List(ctx context.Context, orgID, collection string, skip, limit int) ([]View, error) {
	return s.ListIn(ctx, orgID, collection, "", skip, limit)
}

// ListIn is List, optionally limited to a workspace.
func (s *Service) ListIn(ctx context.Context, orgID, collection, workspaceID string, skip, limit int) ([]View, error) {
	f := store.ConnectionFilter{Skip: skip, Limit: limit, WorkspaceID: workspaceID}
	if collection != "" {
		c, err := s.st.GetCollection(ctx, orgID, collection)
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.NotFound("Collection '%s' not found", collection)
		} else if err != nil {
			return nil, err
		}
		f.CollectionID = c.ID
	}
	list, err := s.st.ListConnections(ctx, orgID, f)
	if err != nil {
		return nil, err
	}
	out := make([]View, 0, len(list))
	for _, c := range list {
		v, err := s.view(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// UpdateInput changes a connection; nil fields stay as they are.
type UpdateInput struct {
	Name        *string
	Description *string
	Config      map[string]any
	ConfigLoc   []any
	Schedule    json.RawMessage
	Credentials *Credentials
}

// Update changes a connection. New credentials are validated, sealed and
// replace the old ones in the same transaction; they make the connection
// active again (clearing needs_reauth).
func (s *Service) Update(ctx context.Context, orgID, id string, in UpdateInput) (View, error) {
	if in.Name == nil && in.Description == nil && in.Config == nil && in.Schedule == nil && in.Credentials == nil {
		return View{}, apperr.Invalid(apperr.Field("missing", "At least one field must be given to update", "body"))
	}
	var expiresAt *time.Time
	updated, err := s.st.UpdateConnection(ctx, orgID, id, func(c *store.SourceConnection) (*store.Credential, error) {
		src, err := s.Source(c.ShortName)
		if err != nil {
			return nil, err
		}
		var errs []apperr.FieldError
		if in.Name != nil {
			errs = append(errs, checkName(*in.Name, []any{"body", "name"})...)
			c.Name = *in.Name
		}
		if in.Description != nil {
			errs = append(errs, checkDescription(*in.Description)...)
			c.Description = *in.Description
		}
		if in.Config != nil {
			merged := map[string]any{}
			_ = json.Unmarshal(c.Config, &merged)
			given, cerrs := checkConfig(src, in.Config, in.ConfigLoc, true)
			errs = append(errs, cerrs...)
			for k, v := range given {
				merged[k] = v
			}
			c.Config, _ = json.Marshal(merged)
		}
		if in.Schedule != nil {
			errs = append(errs, checkSchedule(in.Schedule)...)
			c.Schedule = in.Schedule
		}
		var cred *store.Credential
		if in.Credentials != nil {
			m, fields, ferrs := chooseMethod(src, in.Credentials.Raw, in.Credentials.Loc)
			errs = append(errs, ferrs...)
			if len(errs) == 0 {
				if cred, err = s.newCredential(orgID, c.ID, m, credential.Payload{Fields: fields}, in.Credentials.ExpiresAt); err != nil {
					return nil, err
				}
				now := s.now().UTC()
				c.AuthMethod, c.Status, c.AuthenticatedAt = methodName(m, in.Credentials), store.StatusActive, &now
				expiresAt = cred.ExpiresAt
			}
		}
		if len(errs) > 0 {
			return nil, apperr.Invalid(errs...)
		}
		c.ModifiedAt = s.now().UTC()
		return cred, nil
	})
	if err != nil {
		return View{}, notFoundConn(err, id)
	}
	if in.Credentials != nil {
		s.audit(ctx, orgID, "credential.replace", id)
	}
	v, err := s.view(ctx, updated)
	if expiresAt != nil {
		v.ExpiresAt = expiresAt
	}
	return v, err
}

// Delete removes a connection and erases its credential; it returns what was
// deleted.
func (s *Service) Delete(ctx context.Context, orgID, id string) (View, error) {
	v, err := s.Get(ctx, orgID, id)
	if err != nil {
		return v, err
	}
	if cred, err := s.st.GetCredentialForConnection(ctx, orgID, id); err == nil && s.opt.Refresh != nil {
		_ = s.opt.Refresh.Revoke(ctx, v.SourceConnection, cred) // best effort; logged by the engine
	}
	if err := s.st.DeleteConnection(ctx, orgID, id); err != nil {
		return v, notFoundConn(err, id)
	}
	if s.opt.Providers != nil {
		s.opt.Providers.Forget(id)
	}
	s.audit(ctx, orgID, "credential.delete", id)
	return v, nil
}

// Token is a credential handed back to its owner.
type Token struct {
	Fields    map[string]vault.Secret
	TokenType string
	ExpiresAt *time.Time
}

// Audit names who asks, for the audit trail.
type Audit struct {
	Actor      string
	RemoteAddr string
}

// Token decrypts a connection's credential for its owner and records the
// access (never the value) in the audit log. The refresh token is included
// only when asked for.
func (s *Service) Token(ctx context.Context, orgID, id string, includeRefresh bool, who Audit) (Token, error) {
	f, err := s.Fresh(ctx, orgID, id, refresh.GetOptions{}) // 404s a missing or foreign connection
	if err != nil {
		return Token{}, err
	}
	p := f.Payload
	if !includeRefresh {
		// A copy without it: the payload may be shared (callers that joined
		// one refresh, an auth provider's cached account) and is never changed.
		p.Fields = maps.Clone(p.Fields)
		delete(p.Fields, "refresh_token")
	}
	if err := audit.Record(audit.WithActor(ctx, audit.Actor{Name: who.Actor, RemoteAddr: who.RemoteAddr}), s.st, orgID, "credential.read", id, "connection"); err != nil {
		return Token{}, fmt.Errorf("audit: %w", err) // a read that cannot be audited is refused
	}
	s.tokenReads.Add(1)
	tt := p.TokenType
	if tt == "" {
		tt = f.Kind
	}
	return Token{Fields: p.Fields, TokenType: tt, ExpiresAt: f.ExpiresAt}, nil
}

// TokenReads counts credentials handed back through Token (for metrics).
func (s *Service) TokenReads() int64 { return s.tokenReads.Load() }

// Fresh returns the connection's credential, refreshed first when due. It
// is what every consumer of a credential (the token route, jobs, execute)
// calls.
func (s *Service) Fresh(ctx context.Context, orgID, id string, o refresh.GetOptions) (refresh.Fresh, error) {
	conn, err := s.Conn(ctx, orgID, id)
	if err != nil {
		return refresh.Fresh{}, err
	}
	return s.FreshFor(ctx, conn, o)
}

// Conn reads a connection, nothing more (Get adds its sync and credential
// summary): for callers that go on to use its credential with FreshFor.
func (s *Service) Conn(ctx context.Context, orgID, id string) (store.SourceConnection, error) {
	conn, err := s.st.GetConnection(ctx, orgID, id)
	if err != nil {
		return conn, notFoundConn(err, id)
	}
	return conn, nil
}

// FreshFor is Fresh for a connection the caller has just read.
func (s *Service) FreshFor(ctx context.Context, conn store.SourceConnection, o refresh.GetOptions) (refresh.Fresh, error) {
	id := conn.ID
	if conn.AuthProviderID != "" {
		return s.freshFromProvider(ctx, conn, o.Force)
	}
	f, err := s.opt.Refresh.GetFor(ctx, conn, o)
	if errors.Is(err, store.ErrNotFound) {
		return f, apperr.BadRequest("Source connection '%s' has no credential yet: complete its authorization first", id)
	}
	return f, err
}

// nowMicro is the clock: UTC at the precision both databases keep, so what a
// write returns equals what a later read returns.
func nowMicro() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// randomSuffix returns n characters of [a-z0-9].
func randomSuffix(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
