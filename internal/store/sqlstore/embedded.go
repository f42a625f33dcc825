package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/valetkey/valetkey/internal/store"
)

const applicationCols = `id, organization_id, name, client_id, secret_hash, created_at, revoked_at`

func scanApplication(sc scanner) (store.Application, error) {
	var a store.Application
	var revoked sql.NullTime
	err := sc.Scan(&a.ID, &a.OrganizationID, &a.Name, &a.ClientID, &a.SecretHash, &a.CreatedAt, &revoked)
	a.CreatedAt, a.RevokedAt = a.CreatedAt.UTC(), timePtr(revoked)
	return a, err
}

// CreateApplication stores an application (secret hash only).
func (s *Store) CreateApplication(ctx context.Context, a store.Application) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO applications (`+applicationCols+`) VALUES (?, ?, ?, ?, ?, ?, NULL)`,
		a.ID, a.OrganizationID, a.Name, a.ClientID, a.SecretHash, utc(a.CreatedAt))
	return s.wrap(err, "application")
}

// ApplicationByClientID finds an unrevoked application.
func (s *Store) ApplicationByClientID(ctx context.Context, clientID string) (store.Application, error) {
	a, err := scanApplication(s.queryRow(ctx, s.db, `SELECT `+applicationCols+` FROM applications WHERE client_id = ? AND revoked_at IS NULL`, clientID))
	return a, s.wrap(err, "application")
}

// ListApplications lists an organization's applications.
func (s *Store) ListApplications(ctx context.Context, orgID string) ([]store.Application, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+applicationCols+` FROM applications WHERE organization_id = ? ORDER BY created_at, id`, orgID)
	return collect(s, rows, err, "list applications", scanApplication)
}

const workspaceCols = `id, organization_id, external_user_id, created_at`

func scanWorkspace(sc scanner) (store.Workspace, error) {
	var w store.Workspace
	err := sc.Scan(&w.ID, &w.OrganizationID, &w.ExternalUserID, &w.CreatedAt)
	w.CreatedAt = w.CreatedAt.UTC()
	return w, err
}

// EnsureWorkspace creates the workspace if absent and returns it.
func (s *Store) EnsureWorkspace(ctx context.Context, orgID, externalUserID, id string, at time.Time) (store.Workspace, error) {
	if _, err := s.exec(ctx, s.w, `INSERT INTO workspaces (`+workspaceCols+`) VALUES (?, ?, ?, ?)
		ON CONFLICT (organization_id, external_user_id) DO NOTHING`, id, orgID, externalUserID, utc(at)); err != nil {
		return store.Workspace{}, s.wrap(err, "workspace")
	}
	return s.GetWorkspaceByExternal(ctx, orgID, externalUserID)
}

// GetWorkspace finds a workspace by id.
func (s *Store) GetWorkspace(ctx context.Context, orgID, id string) (store.Workspace, error) {
	w, err := scanWorkspace(s.queryRow(ctx, s.db, `SELECT `+workspaceCols+` FROM workspaces WHERE organization_id = ? AND id = ?`, orgID, id))
	return w, s.wrap(err, "workspace")
}

// GetWorkspaceByExternal finds a workspace by external user id.
func (s *Store) GetWorkspaceByExternal(ctx context.Context, orgID, externalUserID string) (store.Workspace, error) {
	w, err := scanWorkspace(s.queryRow(ctx, s.db, `SELECT `+workspaceCols+` FROM workspaces WHERE organization_id = ? AND external_user_id = ?`, orgID, externalUserID))
	return w, s.wrap(err, "workspace")
}

// ListWorkspaces lists an organization's workspaces.
func (s *Store) ListWorkspaces(ctx context.Context, orgID string) ([]store.Workspace, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+workspaceCols+` FROM workspaces WHERE organization_id = ? ORDER BY created_at, id`, orgID)
	return collect(s, rows, err, "list workspaces", scanWorkspace)
}

const signingKeyCols = `id, ciphertext, key_id, public_key, created_at, retired_at`

// CreateSigningKey stores a signing key.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO signing_keys (`+signingKeyCols+`) VALUES (?, ?, ?, ?, ?, NULL)`,
		k.ID, k.Ciphertext, int64(k.KeyID), k.PublicKey, utc(k.CreatedAt))
	return s.wrap(err, "signing key")
}

// ListSigningKeys lists every signing key, newest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+signingKeyCols+` FROM signing_keys ORDER BY created_at DESC, id`)
	return collect(s, rows, err, "list signing keys", func(sc scanner) (store.SigningKey, error) {
		var k store.SigningKey
		var keyID int64
		var retired sql.NullTime
		err := sc.Scan(&k.ID, &k.Ciphertext, &keyID, &k.PublicKey, &k.CreatedAt, &retired)
		k.KeyID, k.CreatedAt, k.RetiredAt = uint32(keyID), k.CreatedAt.UTC(), timePtr(retired)
		return k, err
	})
}

// RetireSigningKey stops a key from signing (it still verifies until removed).
func (s *Store) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.exec(ctx, s.w, `UPDATE signing_keys SET retired_at = ? WHERE id = ? AND retired_at IS NULL`, utc(at), id)
	if err != nil {
		return s.wrap(err, "retire signing key")
	}
	return checkAffected(res, "signing key")
}

const oauthSecretCols = `id, organization_id, workspace_id, short_name, ciphertext, key_id, created_at, expires_at, used_at`

// CreateOAuthSecret stores a server-side OAuth result.
func (s *Store) CreateOAuthSecret(ctx context.Context, o store.OAuthSecret) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO oauth_secrets (`+oauthSecretCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
		o.ID, o.OrganizationID, o.WorkspaceID, o.ShortName, o.Ciphertext, int64(o.KeyID), utc(o.CreatedAt), utc(o.ExpiresAt))
	return s.wrap(err, "oauth secret")
}

// UseOAuthSecret consumes a secret once.
func (s *Store) UseOAuthSecret(ctx context.Context, orgID, workspaceID, shortName, id string, now time.Time) (store.OAuthSecret, error) {
	var out store.OAuthSecret
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE oauth_secrets SET used_at = ?
			WHERE organization_id = ? AND workspace_id = ? AND short_name = ? AND id = ? AND used_at IS NULL AND expires_at > ?`,
			utc(now), orgID, workspaceID, shortName, id, utc(now))
		if err != nil {
			return s.wrap(err, "use oauth secret")
		}
		if err := checkAffected(res, "oauth secret"); err != nil {
			return err
		}
		var keyID int64
		var used sql.NullTime
		err = s.queryRow(ctx, tx, `SELECT `+oauthSecretCols+` FROM oauth_secrets WHERE id = ?`, id).Scan(&out.ID, &out.OrganizationID,
			&out.WorkspaceID, &out.ShortName, &out.Ciphertext, &keyID, &out.CreatedAt, &out.ExpiresAt, &used)
		out.KeyID, out.UsedAt = uint32(keyID), timePtr(used)
		out.CreatedAt, out.ExpiresAt = out.CreatedAt.UTC(), out.ExpiresAt.UTC()
		return s.wrap(err, "oauth secret")
	})
	return out, err
}
