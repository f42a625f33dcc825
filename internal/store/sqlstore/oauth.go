package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/valetkey/valetkey/internal/store"
)

const oauthAppCols = `id, organization_id, short_name, client_id, ciphertext, key_id, scopes, redirect_url_allowlist, created_at, updated_at`

func scanOAuthApp(sc scanner) (store.OAuthApp, error) {
	var a store.OAuthApp
	var keyID int64
	var scopes, allow []byte
	err := sc.Scan(&a.ID, &a.OrganizationID, &a.ShortName, &a.ClientID, &a.Ciphertext, &keyID, &scopes, &allow, &a.CreatedAt, &a.UpdatedAt)
	a.KeyID = uint32(keyID)
	_ = json.Unmarshal(scopes, &a.Scopes)
	_ = json.Unmarshal(allow, &a.RedirectURLAllowlist)
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, err
}

func jsonList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// PutOAuthApp creates or replaces the organization's app for a source. On
// replace the row keeps its id and created_at; the caller must have sealed
// Ciphertext for the id it passes, so a replace of an existing app is done
// by the caller reading it first (see oauthapp).
func (s *Store) PutOAuthApp(ctx context.Context, a store.OAuthApp) (store.OAuthApp, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE oauth_apps SET client_id = ?, ciphertext = ?, key_id = ?, scopes = ?, redirect_url_allowlist = ?, updated_at = ?
			WHERE organization_id = ? AND short_name = ? AND id = ?`,
			a.ClientID, a.Ciphertext, int64(a.KeyID), jsonList(a.Scopes), jsonList(a.RedirectURLAllowlist), utc(a.UpdatedAt),
			a.OrganizationID, a.ShortName, a.ID)
		if err != nil {
			return s.wrap(err, "update oauth app")
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		_, err = s.exec(ctx, tx, `INSERT INTO oauth_apps (`+oauthAppCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.OrganizationID, a.ShortName, a.ClientID, a.Ciphertext, int64(a.KeyID), jsonList(a.Scopes), jsonList(a.RedirectURLAllowlist),
			utc(a.CreatedAt), utc(a.UpdatedAt))
		return s.wrap(err, "oauth app")
	})
	if err != nil {
		return store.OAuthApp{}, err
	}
	return s.GetOAuthApp(ctx, a.OrganizationID, a.ShortName)
}

// GetOAuthApp returns the organization's app for a source.
func (s *Store) GetOAuthApp(ctx context.Context, orgID, shortName string) (store.OAuthApp, error) {
	a, err := scanOAuthApp(s.queryRow(ctx, s.db, `SELECT `+oauthAppCols+` FROM oauth_apps WHERE organization_id = ? AND short_name = ?`, orgID, shortName))
	return a, s.wrap(err, "oauth app")
}

// ListOAuthApps lists the organization's apps by source.
func (s *Store) ListOAuthApps(ctx context.Context, orgID string) ([]store.OAuthApp, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+oauthAppCols+` FROM oauth_apps WHERE organization_id = ? ORDER BY short_name`, orgID)
	return collect(s, rows, err, "list oauth apps", scanOAuthApp)
}

// DeleteOAuthApp removes the organization's app for a source.
func (s *Store) DeleteOAuthApp(ctx context.Context, orgID, shortName string) error {
	res, err := s.exec(ctx, s.w, `DELETE FROM oauth_apps WHERE organization_id = ? AND short_name = ?`, orgID, shortName)
	if err != nil {
		return s.wrap(err, "delete oauth app")
	}
	return checkAffected(res, "oauth app")
}

const sessionCols = `id, organization_id, source_connection_id, short_name, code_hash, state_hash, ciphertext, key_id, redirect_url,
	created_at, expires_at, code_used_at, state_used_at, workspace_id`

func scanSession(sc scanner) (store.OAuthSession, error) {
	var o store.OAuthSession
	var conn sql.NullString
	var keyID int64
	var codeUsed, stateUsed sql.NullTime
	var ws sql.NullString
	err := sc.Scan(&o.ID, &o.OrganizationID, &conn, &o.ShortName, &o.CodeHash, &o.StateHash, &o.Ciphertext, &keyID, &o.RedirectURL,
		&o.CreatedAt, &o.ExpiresAt, &codeUsed, &stateUsed, &ws)
	o.WorkspaceID = ws.String
	o.SourceConnectionID, o.KeyID = conn.String, uint32(keyID)
	o.CreatedAt, o.ExpiresAt = o.CreatedAt.UTC(), o.ExpiresAt.UTC()
	o.CodeUsedAt, o.StateUsedAt = timePtr(codeUsed), timePtr(stateUsed)
	return o, err
}

// CreateOAuthSession stores a pending authorization.
func (s *Store) CreateOAuthSession(ctx context.Context, o store.OAuthSession) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO oauth_sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)`,
		o.ID, o.OrganizationID, nullString(o.SourceConnectionID), o.ShortName, o.CodeHash, o.StateHash, o.Ciphertext, int64(o.KeyID),
		o.RedirectURL, utc(o.CreatedAt), utc(o.ExpiresAt), nullString(o.WorkspaceID))
	return s.wrap(err, "create oauth session")
}

// useSession marks one single-use column of a session and returns the session.
func (s *Store) useSession(ctx context.Context, col, hashCol string, hash []byte, now time.Time) (store.OAuthSession, error) {
	var out store.OAuthSession
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE oauth_sessions SET `+col+` = ? WHERE `+hashCol+` = ? AND `+col+` IS NULL AND expires_at > ?`, utc(now), hash, utc(now))
		if err != nil {
			return s.wrap(err, "use oauth session")
		}
		if err := checkAffected(res, "oauth session"); err != nil {
			return err
		}
		out, err = scanSession(s.queryRow(ctx, tx, `SELECT `+sessionCols+` FROM oauth_sessions WHERE `+hashCol+` = ?`, hash))
		return s.wrap(err, "oauth session")
	})
	return out, err
}

// UseSessionCode consumes the auth-URL code.
func (s *Store) UseSessionCode(ctx context.Context, codeHash []byte, now time.Time) (store.OAuthSession, error) {
	return s.useSession(ctx, "code_used_at", "code_hash", codeHash, now)
}

// UseSessionState consumes the state.
func (s *Store) UseSessionState(ctx context.Context, stateHash []byte, now time.Time) (store.OAuthSession, error) {
	return s.useSession(ctx, "state_used_at", "state_hash", stateHash, now)
}
