// Package tenant manages organizations and their API keys: creation,
// bootstrap on first start, and authentication of a presented key.
package tenant

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// KeyPrefix starts every generated API key, so a leaked key is recognisable
// by secret scanners.
const KeyPrefix = "vk_"

// DefaultOrgName is the organization created on first start.
const DefaultOrgName = "default"

// Store is what tenant needs from storage.
type Store interface {
	CreateOrganization(ctx context.Context, o store.Organization) error
	GetOrganization(ctx context.Context, idOrName string) (store.Organization, error)
	ListOrganizations(ctx context.Context) ([]store.Organization, error)
	CountOrganizations(ctx context.Context) (int, error)
	SetBranding(ctx context.Context, orgID string, b store.Branding) error
	CreateAPIKey(ctx context.Context, k store.APIKey) error
	APIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error)
	ListAPIKeys(ctx context.Context, orgID string) ([]store.APIKey, error)
	RevokeAPIKey(ctx context.Context, orgID, id string, at time.Time) error
}

// Service manages tenants.
type Service struct {
	st    Store
	now   func() time.Time
	cache *keyCache // nil: every request looks its key up
}

// New returns a Service.
func New(st Store) *Service {
	return &Service{st: st, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
}

// CacheKeys makes Authenticate remember a key it found for ttl (at most max
// keys), so repeated requests with one key skip the lookup. A key revoked
// on another replica keeps working here for up to ttl. ttl 0 turns it off.
func (s *Service) CacheKeys(ttl time.Duration, max int) {
	if ttl <= 0 || max <= 0 {
		s.cache = nil
		return
	}
	s.cache = newKeyCache(ttl, max, time.Now)
}

// Principal is an authenticated caller.
type Principal struct {
	OrganizationID string
	APIKeyID       string
}

// Actor names the principal in audit records.
func (p Principal) Actor() string { return "api_key:" + p.APIKeyID }

// NewKey returns a fresh API key: the prefix and 256 random bits in base62.
func NewKey() vault.Secret {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b strings.Builder
	b.WriteString(KeyPrefix)
	max := big.NewInt(int64(len(alphabet)))
	for i := 0; i < 43; i++ { // 62^43 > 2^256
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("tenant: crypto/rand failed")
		}
		b.WriteByte(alphabet[n.Int64()])
	}
	return vault.NewSecret(b.String())
}

func hashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// CreateOrganization creates an organization with a unique name.
func (s *Service) CreateOrganization(ctx context.Context, name string) (store.Organization, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return store.Organization{}, apperr.Invalid(apperr.Field("missing", "Field required", "name"))
	}
	o := store.Organization{ID: uuid.Must(uuid.NewV7()).String(), Name: name, CreatedAt: s.now().UTC()}
	if err := s.st.CreateOrganization(ctx, o); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return o, apperr.Conflict("Organization '%s' already exists", name)
		}
		return o, err
	}
	return o, nil
}

// Organization finds an organization by id or name.
func (s *Service) Organization(ctx context.Context, idOrName string) (store.Organization, error) {
	o, err := s.st.GetOrganization(ctx, idOrName)
	if errors.Is(err, store.ErrNotFound) {
		return o, apperr.NotFound("Organization '%s' not found", idOrName)
	}
	return o, err
}

// ListOrganizations lists every organization.
func (s *Service) ListOrganizations(ctx context.Context) ([]store.Organization, error) {
	return s.st.ListOrganizations(ctx)
}

// CreateAPIKey issues a key for an organization. value, when not empty, is
// used instead of a generated key (bootstrap from configuration).
func (s *Service) CreateAPIKey(ctx context.Context, orgID, name string, value vault.Secret) (store.APIKey, vault.Secret, error) {
	if value.IsZero() {
		value = NewKey()
	} else if len(value.Reveal()) < 32 {
		return store.APIKey{}, vault.Secret{}, apperr.BadRequest("an API key must be at least 32 characters")
	}
	k := store.APIKey{
		ID: uuid.Must(uuid.NewV7()).String(), OrganizationID: orgID, Name: name,
		Prefix: value.Reveal()[:8], Hash: hashKey(value.Reveal()), CreatedAt: s.now().UTC(),
	}
	if err := s.st.CreateAPIKey(ctx, k); err != nil {
		return k, vault.Secret{}, fmt.Errorf("create api key: %w", err)
	}
	return k, value, nil
}

// ListAPIKeys lists an organization's keys (hashes only).
func (s *Service) ListAPIKeys(ctx context.Context, orgID string) ([]store.APIKey, error) {
	return s.st.ListAPIKeys(ctx, orgID)
}

// RevokeAPIKey revokes a key of the organization.
func (s *Service) RevokeAPIKey(ctx context.Context, orgID, id string) error {
	err := s.st.RevokeAPIKey(ctx, orgID, id, s.now())
	s.cache.forget(id) // whatever the outcome: a cached key is never kept past a revocation here
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound("API key '%s' not found", id)
	}
	return err
}

// Bootstrap creates the default organization and its first API key when the
// database has no organization. It returns the key (generated unless given)
// and true when it did so.
func (s *Service) Bootstrap(ctx context.Context, given vault.Secret) (vault.Secret, bool, error) {
	n, err := s.st.CountOrganizations(ctx)
	if err != nil || n > 0 {
		return vault.Secret{}, false, err
	}
	o, err := s.CreateOrganization(ctx, DefaultOrgName)
	if err != nil {
		return vault.Secret{}, false, err
	}
	_, key, err := s.CreateAPIKey(ctx, o.ID, "bootstrap", given)
	return key, err == nil, err
}

// Authenticate resolves a presented API key to its organization.
func (s *Service) Authenticate(ctx context.Context, presented string) (Principal, error) {
	if presented == "" {
		return Principal{}, apperr.Unauthorized("Missing API key: send X-API-Key or Authorization: Bearer")
	}
	h := hashKey(presented)
	if p, ok := s.cache.get([32]byte(h)); ok {
		return p, nil
	}
	k, err := s.st.APIKeyByHash(ctx, h)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, apperr.Unauthorized("Invalid API key")
		}
		return Principal{}, err
	}
	// The lookup is by hash; compare again in constant time so that the
	// decision never depends on a byte-by-byte comparison.
	if subtle.ConstantTimeCompare(k.Hash, h) != 1 {
		return Principal{}, apperr.Unauthorized("Invalid API key")
	}
	p := Principal{OrganizationID: k.OrganizationID, APIKeyID: k.ID}
	s.cache.put([32]byte(h), p)
	return p, nil
}
