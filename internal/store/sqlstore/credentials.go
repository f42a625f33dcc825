package sqlstore

import (
	"context"
	"database/sql"

	"github.com/valetkey/valetkey/internal/store"
)

const credentialCols = `id, organization_id, source_connection_id, kind, ciphertext, key_id, version, expires_at, created_at, updated_at`

func scanCredential(sc scanner) (store.Credential, error) {
	var c store.Credential
	var conn sql.NullString
	var exp sql.NullTime
	var keyID int64
	err := sc.Scan(&c.ID, &c.OrganizationID, &conn, &c.Kind, &c.Ciphertext, &keyID, &c.Version, &exp, &c.CreatedAt, &c.UpdatedAt)
	c.SourceConnectionID = conn.String
	c.KeyID = uint32(keyID)
	c.ExpiresAt = timePtr(exp)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

func (s *Store) insertCredential(ctx context.Context, q querier, c store.Credential) error {
	_, err := s.exec(ctx, q, `INSERT INTO credentials (`+credentialCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.OrganizationID, nullString(c.SourceConnectionID), c.Kind, c.Ciphertext, int64(c.KeyID), c.Version,
		utcPtr(c.ExpiresAt), utc(c.CreatedAt), utc(c.UpdatedAt))
	return s.wrap(err, "create credential")
}

// GetCredentialForConnection returns the credential a connection owns.
func (s *Store) GetCredentialForConnection(ctx context.Context, orgID, connectionID string) (store.Credential, error) {
	c, err := scanCredential(s.queryRow(ctx, s.db, `SELECT `+credentialCols+` FROM credentials WHERE organization_id = ? AND source_connection_id = ?`, orgID, connectionID))
	return c, s.wrap(err, "credential")
}

// ListCredentials pages through every credential by id.
func (s *Store) ListCredentials(ctx context.Context, afterID string, limit int) ([]store.Credential, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+credentialCols+` FROM credentials WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
	return collect(s, rows, err, "list credentials", scanCredential)
}

// ReplaceCiphertext swaps the ciphertext if it is still old.
func (s *Store) ReplaceCiphertext(ctx context.Context, id string, old, new []byte, keyID uint32) (bool, error) {
	res, err := s.exec(ctx, s.db, `UPDATE credentials SET ciphertext = ?, key_id = ? WHERE id = ? AND ciphertext = ?`, new, int64(keyID), id, old)
	if err != nil {
		return false, s.wrap(err, "replace ciphertext")
	}
	n, err := res.RowsAffected()
	return n == 1, s.wrap(err, "replace ciphertext")
}

// CountCredentialsByKey counts credentials per sealing key.
func (s *Store) CountCredentialsByKey(ctx context.Context) (map[uint32]int, error) {
	rows, err := s.query(ctx, s.db, `SELECT key_id, COUNT(*) FROM credentials GROUP BY key_id`)
	if err != nil {
		return nil, s.wrap(err, "count credentials")
	}
	defer rows.Close()
	out := map[uint32]int{}
	for rows.Next() {
		var k int64
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, s.wrap(err, "count credentials")
		}
		out[uint32(k)] = n
	}
	return out, s.wrap(rows.Err(), "count credentials")
}

// AppendAudit records an audit event.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO audit_log (id, organization_id, actor, action, target_type, target_id, remote_addr, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, e.OrganizationID, e.Actor, e.Action, e.TargetType, e.TargetID, e.RemoteAddr, utc(e.CreatedAt))
	return s.wrap(err, "append audit")
}

func scanAudit(sc scanner) (store.AuditEvent, error) {
	var e store.AuditEvent
	err := sc.Scan(&e.ID, &e.OrganizationID, &e.Actor, &e.Action, &e.TargetType, &e.TargetID, &e.RemoteAddr, &e.CreatedAt)
	e.CreatedAt = e.CreatedAt.UTC()
	return e, err
}

// ListAudit returns an organization's newest audit events first.
func (s *Store) ListAudit(ctx context.Context, orgID string, limit int) ([]store.AuditEvent, error) {
	rows, err := s.query(ctx, s.db, `SELECT id, organization_id, actor, action, target_type, target_id, remote_addr, created_at
		FROM audit_log WHERE organization_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`, orgID, limit)
	return collect(s, rows, err, "list audit", scanAudit)
}
