package authprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// Store is what the service needs from storage.
type Store interface {
	CreateAuthProvider(ctx context.Context, a store.AuthProvider) error
	GetAuthProvider(ctx context.Context, orgID, readableID string) (store.AuthProvider, error)
	GetAuthProviderByID(ctx context.Context, orgID, id string) (store.AuthProvider, error)
	ListAuthProviders(ctx context.Context, orgID string) ([]store.AuthProvider, error)
	UpdateAuthProvider(ctx context.Context, a store.AuthProvider) error
	DeleteAuthProvider(ctx context.Context, orgID, id string) error
}

// Options configure the service.
type Options struct {
	PipedreamBaseURL, ComposioBaseURL string
	HTTPClient                        *http.Client
	// TokenMargin: Pipedream access tokens are renewed this long before
	// they expire (default 5m); account credentials are cached until their
	// expiry minus the same margin.
	TokenMargin time.Duration
	// Attempts and Backoff bound retries of 5xx and 429 answers (3, 200ms);
	// MaxRetryAfter is the longest Retry-After waited for in place (5s).
	Attempts      int
	Backoff       time.Duration
	MaxRetryAfter time.Duration
	Now           func() time.Time
}

// Service manages provider accounts and reads credentials through them.
type Service struct {
	st     Store
	sealer credential.Sealer
	opt    Options
	h      *httpDoer

	mu      sync.Mutex
	clients map[string]cachedClient // by provider id
	cache   map[string]cachedAccount
}

type cachedClient struct {
	modified time.Time
	c        client
}

type cachedAccount struct {
	acct  Account
	until time.Time
}

// New returns a Service.
func New(st Store, c credential.Cipher, opt Options) *Service {
	if opt.HTTPClient == nil {
		opt.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if opt.TokenMargin == 0 {
		opt.TokenMargin = 5 * time.Minute
	}
	if opt.Attempts == 0 {
		opt.Attempts = 3
	}
	if opt.Backoff == 0 {
		opt.Backoff = 200 * time.Millisecond
	}
	if opt.MaxRetryAfter == 0 {
		opt.MaxRetryAfter = 5 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Service{st: st, sealer: credential.Sealer{C: c}, opt: opt,
		h:       &httpDoer{hc: opt.HTTPClient, attempts: opt.Attempts, backoff: opt.Backoff, maxWait: opt.MaxRetryAfter},
		clients: map[string]cachedClient{}, cache: map[string]cachedAccount{}}
}

// View is a provider account as callers may see it.
type View struct {
	ID, Name, ReadableID, ShortName, MaskedClientID string
	CreatedAt, ModifiedAt                           time.Time
}

func view(a store.AuthProvider) View {
	return View{ID: a.ID, Name: a.Name, ReadableID: a.ReadableID, ShortName: a.ShortName, MaskedClientID: a.MaskedClientID,
		CreatedAt: a.CreatedAt, ModifiedAt: a.ModifiedAt}
}

var readableRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// mask shows the first four characters of an identifier.
func mask(s string) string {
	if len(s) <= 4 {
		return strings.Repeat("*", len(s))
	}
	return s[:4] + strings.Repeat("*", min(len(s)-4, 8))
}

// credentials validates raw auth fields against a kind.
func credentials(k Kind, raw map[string]any) (map[string]vault.Secret, []apperr.FieldError) {
	var errs []apperr.FieldError
	known := map[string]bool{}
	out := map[string]vault.Secret{}
	for _, f := range k.AuthFields {
		known[f.Name] = true
		v, given := raw[f.Name]
		s, isString := v.(string)
		switch {
		case !given:
			errs = append(errs, apperr.Field("missing", fmt.Sprintf("Field '%s' is required", f.Name), "body", "auth_fields", f.Name))
		case !isString:
			errs = append(errs, apperr.Field("string_type", fmt.Sprintf("Field '%s' must be a string", f.Name), "body", "auth_fields", f.Name))
		case strings.TrimSpace(s) == "":
			errs = append(errs, apperr.Field("string_too_short", fmt.Sprintf("Field '%s' must not be empty", f.Name), "body", "auth_fields", f.Name))
		default:
			out[f.Name] = vault.NewSecret(s)
		}
	}
	for name := range raw {
		if !known[name] {
			errs = append(errs, apperr.Field("extra_forbidden", fmt.Sprintf("Unknown field '%s' for %s", name, k.Name), "body", "auth_fields", name))
		}
	}
	return out, errs
}

func (s *Service) newClient(kind string, creds map[string]vault.Secret) client {
	switch kind {
	case Pipedream:
		return &pipedreamClient{h: s.h, base: strings.TrimRight(s.opt.PipedreamBaseURL, "/"), id: creds["client_id"].Reveal(),
			secret: creds["client_secret"], margin: s.opt.TokenMargin, now: s.opt.Now}
	default:
		return &composioClient{h: s.h, base: strings.TrimRight(s.opt.ComposioBaseURL, "/"), key: creds["api_key"]}
	}
}

// CreateInput registers a provider account.
type CreateInput struct {
	Name, ReadableID, ShortName string
	AuthFields                  map[string]any
}

// Create checks the credentials with the provider and stores them sealed.
func (s *Service) Create(ctx context.Context, orgID string, in CreateInput) (View, error) {
	k, ok := KindOf(in.ShortName)
	if !ok {
		return View{}, apperr.Invalid(apperr.Field("enum", "short_name must be 'pipedream' or 'composio'", "body", "short_name"))
	}
	var errs []apperr.FieldError
	if n := utf8.RuneCountInString(strings.TrimSpace(in.Name)); n < 1 || n > 64 {
		errs = append(errs, apperr.Field("string_too_short", "Field 'name' must have 1 to 64 characters", "body", "name"))
	}
	rid := in.ReadableID
	if rid == "" {
		rid = slug(in.Name) + "-" + strings.ToLower(uuid.NewString()[:6])
	} else if len(rid) < 3 || len(rid) > 63 || !readableRE.MatchString(rid) {
		errs = append(errs, apperr.Field("string_pattern_mismatch", "Field 'readable_id' must be 3-63 lowercase letters, digits and single hyphens", "body", "readable_id"))
	}
	creds, ferrs := credentials(k, in.AuthFields)
	errs = append(errs, ferrs...)
	if len(errs) > 0 {
		return View{}, apperr.Invalid(errs...)
	}
	if err := s.newClient(k.ShortName, creds).check(ctx); err != nil {
		return View{}, err
	}
	now := s.opt.Now().UTC().Truncate(time.Microsecond)
	a := store.AuthProvider{ID: uuid.Must(uuid.NewV7()).String(), OrganizationID: orgID, Name: strings.TrimSpace(in.Name), ReadableID: rid,
		ShortName: k.ShortName, MaskedClientID: mask(creds["client_id"].Reveal()), CreatedAt: now, ModifiedAt: now}
	if err := s.seal(&a, creds); err != nil {
		return View{}, err
	}
	if err := s.st.CreateAuthProvider(ctx, a); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return View{}, apperr.Conflict("Auth provider with readable_id '%s' already exists", rid)
		}
		return View{}, err
	}
	return view(a), nil
}

func (s *Service) seal(a *store.AuthProvider, creds map[string]vault.Secret) error {
	ct, keyID, err := s.sealer.SealAD(credential.ADFor(store.TableAuthProviders, a.OrganizationID, a.ID), credential.Payload{Fields: creds})
	a.Ciphertext, a.KeyID = ct, keyID
	return err
}

func slug(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 40 {
		out = strings.Trim(out[:40], "-")
	}
	if out == "" {
		out = "provider"
	}
	return out
}

// Get returns a provider account by readable id (404 names it).
func (s *Service) Get(ctx context.Context, orgID, readableID string) (View, error) {
	a, err := s.row(ctx, orgID, readableID)
	return view(a), err
}

func (s *Service) row(ctx context.Context, orgID, readableID string) (store.AuthProvider, error) {
	a, err := s.st.GetAuthProvider(ctx, orgID, readableID)
	if errors.Is(err, store.ErrNotFound) {
		return a, apperr.NotFound("Auth provider '%s' not found", readableID)
	}
	return a, err
}

// List returns the organization's provider accounts.
func (s *Service) List(ctx context.Context, orgID string) ([]View, error) {
	list, err := s.st.ListAuthProviders(ctx, orgID)
	out := make([]View, 0, len(list))
	for _, a := range list {
		out = append(out, view(a))
	}
	return out, err
}

// Update replaces the credentials (checked again) and optionally the name.
func (s *Service) Update(ctx context.Context, orgID, readableID, name string, authFields map[string]any) (View, error) {
	a, err := s.row(ctx, orgID, readableID)
	if err != nil {
		return View{}, err
	}
	k, _ := KindOf(a.ShortName)
	creds, errs := credentials(k, authFields)
	if len(errs) > 0 {
		return View{}, apperr.Invalid(errs...)
	}
	if err := s.newClient(k.ShortName, creds).check(ctx); err != nil {
		return View{}, err
	}
	if strings.TrimSpace(name) != "" {
		a.Name = strings.TrimSpace(name)
	}
	a.MaskedClientID = mask(creds["client_id"].Reveal())
	a.ModifiedAt = s.opt.Now().UTC().Truncate(time.Microsecond)
	if err := s.seal(&a, creds); err != nil {
		return View{}, err
	}
	if err := s.st.UpdateAuthProvider(ctx, a); err != nil {
		return View{}, err
	}
	s.forget(a.ID)
	return view(a), nil
}

// Delete removes a provider account no connection uses (409 otherwise).
func (s *Service) Delete(ctx context.Context, orgID, readableID string) (View, error) {
	a, err := s.row(ctx, orgID, readableID)
	if err != nil {
		return View{}, err
	}
	if err := s.st.DeleteAuthProvider(ctx, orgID, a.ID); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return View{}, apperr.Conflict("Auth provider '%s' is used by source connections; delete them first", readableID)
		}
		return View{}, err
	}
	s.forget(a.ID)
	return view(a), nil
}

func (s *Service) forget(providerID string) {
	s.mu.Lock()
	delete(s.clients, providerID)
	s.mu.Unlock()
}

// Resolve returns the provider id for a readable id.
func (s *Service) Resolve(ctx context.Context, orgID, readableID string) (store.AuthProvider, error) {
	return s.row(ctx, orgID, readableID)
}

// CheckConfig validates a connection's provider config against the kind;
// it returns the config with defaults filled.
func CheckConfig(kind string, raw map[string]any, loc []any) (map[string]string, []apperr.FieldError) {
	k, _ := KindOf(kind)
	var errs []apperr.FieldError
	out := map[string]string{}
	known := map[string]Field{}
	for _, f := range k.ConfigFields {
		known[f.Name] = f
	}
	for name, v := range raw {
		f, ok := known[name]
		if !ok {
			errs = append(errs, apperr.Field("extra_forbidden", fmt.Sprintf("Unknown config field '%s' for %s", name, k.Name), append(append([]any{}, loc...), name)...))
			continue
		}
		sv, isString := v.(string)
		l := append(append([]any{}, loc...), name)
		switch {
		case !isString:
			errs = append(errs, apperr.Field("string_type", fmt.Sprintf("Config field '%s' must be a string", name), l...))
		case f.Pattern != "" && !regexp.MustCompile(f.Pattern).MatchString(sv):
			errs = append(errs, apperr.Field("string_pattern_mismatch", fmt.Sprintf("Config field '%s' must match %s", name, f.Pattern), l...))
		case len(f.Enum) > 0 && !contains(f.Enum, sv):
			errs = append(errs, apperr.Field("enum", fmt.Sprintf("Config field '%s' must be one of %s", name, strings.Join(f.Enum, ", ")), l...))
		default:
			out[name] = sv
		}
	}
	for _, f := range k.ConfigFields {
		if _, given := raw[f.Name]; given {
			continue
		}
		if f.Default != "" {
			out[f.Name] = f.Default
		} else if f.Required {
			errs = append(errs, apperr.Field("missing", fmt.Sprintf("Config field '%s' is required", f.Name), append(append([]any{}, loc...), f.Name)...))
		}
	}
	return out, errs
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Service) client(ctx context.Context, a store.AuthProvider) (client, error) {
	s.mu.Lock()
	cc, ok := s.clients[a.ID]
	s.mu.Unlock()
	if ok && cc.modified.Equal(a.ModifiedAt) {
		return cc.c, nil
	}
	p, err := s.sealer.OpenAD(a.Ciphertext, credential.ADFor(store.TableAuthProviders, a.OrganizationID, a.ID))
	if err != nil {
		return nil, err
	}
	c := s.newClient(a.ShortName, p.Fields)
	s.mu.Lock()
	s.clients[a.ID] = cachedClient{modified: a.ModifiedAt, c: c}
	s.mu.Unlock()
	return c, nil
}

// Read returns a provider-backed connection's credentials: from memory
// while they are valid (expires_at minus the margin), else from the
// provider. Valetkey never refreshes a provider-held token itself; the
// provider owns it, and a re-read returns what it refreshed.
func (s *Service) Read(ctx context.Context, conn store.SourceConnection, src *catalog.Source, force bool) (Account, error) {
	if !force {
		s.mu.Lock()
		c, ok := s.cache[conn.ID]
		s.mu.Unlock()
		if ok && s.opt.Now().Before(c.until) {
			return c.acct, nil
		}
	}
	a, err := s.st.GetAuthProviderByID(ctx, conn.OrganizationID, conn.AuthProviderID)
	if err != nil {
		return Account{}, err
	}
	cl, err := s.client(ctx, a)
	if err != nil {
		return Account{}, err
	}
	var cfg map[string]string
	_ = json.Unmarshal(conn.AuthProviderConfig, &cfg)
	acct, err := cl.fetch(ctx, src, cfg)
	if err != nil {
		return Account{}, err
	}
	if acct.ExpiresAt != nil && acct.Broken == "" {
		s.mu.Lock()
		s.cache[conn.ID] = cachedAccount{acct: acct, until: acct.ExpiresAt.Add(-s.opt.TokenMargin)}
		s.mu.Unlock()
	}
	return acct, nil
}

// Fetch reads an account for a new connection (no cache) with its config.
func (s *Service) Fetch(ctx context.Context, a store.AuthProvider, src *catalog.Source, cfg map[string]string) (Account, error) {
	cl, err := s.client(ctx, a)
	if err != nil {
		return Account{}, err
	}
	return cl.fetch(ctx, src, cfg)
}

// Forget drops a connection's cached credentials.
func (s *Service) Forget(connectionID string) {
	s.mu.Lock()
	delete(s.cache, connectionID)
	s.mu.Unlock()
}
