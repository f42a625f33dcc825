package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/valetkey/valetkey/internal/store"
)

const authProviderCols = `id, organization_id, name, readable_id, short_name, masked_client_id, ciphertext, key_id, created_at, modified_at`

func scanAuthProvider(sc scanner) (store.AuthProvider, error) {
	var a store.AuthProvider
	var keyID int64
	err := sc.Scan(&a.ID, &a.OrganizationID, &a.Name, &a.ReadableID, &a.ShortName, &a.MaskedClientID, &a.Ciphertext, &keyID, &a.CreatedAt, &a.ModifiedAt)
	a.KeyID = uint32(keyID)
	a.CreatedAt, a.ModifiedAt = a.CreatedAt.UTC(), a.ModifiedAt.UTC()
	return a, err
}

// CreateAuthProvider stores a provider; a taken readable id is ErrAlreadyExists.
func (s *Store) CreateAuthProvider(ctx context.Context, a store.AuthProvider) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO auth_providers (`+authProviderCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.OrganizationID, a.Name, a.ReadableID, a.ShortName, a.MaskedClientID, a.Ciphertext, int64(a.KeyID), utc(a.CreatedAt), utc(a.ModifiedAt))
	return s.wrap(err, "auth provider")
}

// GetAuthProvider finds a provider by readable id.
func (s *Store) GetAuthProvider(ctx context.Context, orgID, readableID string) (store.AuthProvider, error) {
	a, err := scanAuthProvider(s.queryRow(ctx, s.db, `SELECT `+authProviderCols+` FROM auth_providers WHERE organization_id = ? AND readable_id = ?`, orgID, readableID))
	return a, s.wrap(err, "auth provider")
}

// GetAuthProviderByID finds a provider by id.
func (s *Store) GetAuthProviderByID(ctx context.Context, orgID, id string) (store.AuthProvider, error) {
	a, err := scanAuthProvider(s.queryRow(ctx, s.db, `SELECT `+authProviderCols+` FROM auth_providers WHERE organization_id = ? AND id = ?`, orgID, id))
	return a, s.wrap(err, "auth provider")
}

// ListAuthProviders lists an organization's providers, oldest first.
func (s *Store) ListAuthProviders(ctx context.Context, orgID string) ([]store.AuthProvider, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+authProviderCols+` FROM auth_providers WHERE organization_id = ? ORDER BY created_at, id`, orgID)
	return collect(s, rows, err, "list auth providers", scanAuthProvider)
}

// UpdateAuthProvider saves name, credentials and modified time.
func (s *Store) UpdateAuthProvider(ctx context.Context, a store.AuthProvider) error {
	res, err := s.exec(ctx, s.w, `UPDATE auth_providers SET name = ?, masked_client_id = ?, ciphertext = ?, key_id = ?, modified_at = ?
		WHERE organization_id = ? AND id = ?`, a.Name, a.MaskedClientID, a.Ciphertext, int64(a.KeyID), utc(a.ModifiedAt), a.OrganizationID, a.ID)
	if err != nil {
		return s.wrap(err, "update auth provider")
	}
	return checkAffected(res, "auth provider")
}

// DeleteAuthProvider removes a provider no connection uses.
func (s *Store) DeleteAuthProvider(ctx context.Context, orgID, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM source_connections WHERE organization_id = ? AND auth_provider_id = ?`, orgID, id).Scan(&n); err != nil {
			return s.wrap(err, "delete auth provider")
		}
		if n > 0 {
			return fmt.Errorf("auth provider is used by %d connection(s): %w", n, store.ErrConflict)
		}
		res, err := s.exec(ctx, tx, `DELETE FROM auth_providers WHERE organization_id = ? AND id = ?`, orgID, id)
		if err != nil {
			return s.wrap(err, "delete auth provider")
		}
		return checkAffected(res, "auth provider")
	})
}
