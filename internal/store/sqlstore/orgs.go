package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/valetkey/valetkey/internal/store"
)

// CreateOrganization inserts an organization.
func (s *Store) CreateOrganization(ctx context.Context, o store.Organization) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)`,
		o.ID, o.Name, utc(o.CreatedAt))
	return s.wrap(err, "create organization")
}

// GetOrganization finds an organization by id or by name.
func (s *Store) GetOrganization(ctx context.Context, idOrName string) (store.Organization, error) {
	o, err := scanOrganization(s.queryRow(ctx, s.db, `SELECT id, name, created_at, display_name, accent_color, logo_url FROM organizations WHERE id = ? OR name = ? ORDER BY created_at LIMIT 1`,
		idOrName, idOrName))
	return o, s.wrap(err, "organization")
}

func scanOrganization(sc scanner) (store.Organization, error) {
	var o store.Organization
	err := sc.Scan(&o.ID, &o.Name, &o.CreatedAt, &o.Branding.DisplayName, &o.Branding.AccentColor, &o.Branding.LogoURL)
	o.CreatedAt = o.CreatedAt.UTC()
	return o, err
}

// SetBranding replaces an organization's white-label settings.
func (s *Store) SetBranding(ctx context.Context, orgID string, b store.Branding) error {
	res, err := s.exec(ctx, s.w, `UPDATE organizations SET display_name = ?, accent_color = ?, logo_url = ? WHERE id = ?`,
		b.DisplayName, b.AccentColor, b.LogoURL, orgID)
	if err != nil {
		return s.wrap(err, "set branding")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ListOrganizations lists every organization, oldest first.
func (s *Store) ListOrganizations(ctx context.Context) ([]store.Organization, error) {
	rows, err := s.query(ctx, s.db, `SELECT id, name, created_at, display_name, accent_color, logo_url FROM organizations ORDER BY created_at, id`)
	return collect(s, rows, err, "list organizations", scanOrganization)
}

// CountOrganizations counts organizations.
func (s *Store) CountOrganizations(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM organizations`).Scan(&n)
	return n, s.wrap(err, "count organizations")
}

const apiKeyCols = `id, organization_id, name, prefix, key_hash, created_at, last_used_at, revoked_at`

func scanAPIKey(sc scanner) (store.APIKey, error) {
	var k store.APIKey
	var used, revoked sql.NullTime
	err := sc.Scan(&k.ID, &k.OrganizationID, &k.Name, &k.Prefix, &k.Hash, &k.CreatedAt, &used, &revoked)
	k.CreatedAt = k.CreatedAt.UTC()
	k.LastUsedAt, k.RevokedAt = timePtr(used), timePtr(revoked)
	return k, err
}

// CreateAPIKey stores a key's hash.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO api_keys (`+apiKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)`,
		k.ID, k.OrganizationID, k.Name, k.Prefix, k.Hash, utc(k.CreatedAt))
	return s.wrap(err, "create api key")
}

// APIKeyByHash finds an unrevoked key by the hash of its value.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error) {
	k, err := scanAPIKey(s.queryRow(ctx, s.db, `SELECT `+apiKeyCols+` FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`, hash))
	return k, s.wrap(err, "api key")
}

// ListAPIKeys lists an organization's keys, revoked ones included.
func (s *Store) ListAPIKeys(ctx context.Context, orgID string) ([]store.APIKey, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+apiKeyCols+` FROM api_keys WHERE organization_id = ? ORDER BY created_at, id`, orgID)
	return collect(s, rows, err, "list api keys", scanAPIKey)
}

// RevokeAPIKey marks a key revoked.
func (s *Store) RevokeAPIKey(ctx context.Context, orgID, id string, at time.Time) error {
	res, err := s.exec(ctx, s.w, `UPDATE api_keys SET revoked_at = ? WHERE organization_id = ? AND id = ? AND revoked_at IS NULL`,
		utc(at), orgID, id)
	if err != nil {
		return s.wrap(err, "revoke api key")
	}
	return checkAffected(res, "api key")
}

// TouchAPIKey records when a key was last used.
func (s *Store) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, s.w, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, utc(at), id)
	return s.wrap(err, "touch api key")
}
