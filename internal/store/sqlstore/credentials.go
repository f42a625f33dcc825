package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valetkey/valetkey/internal/store"
)

const credentialCols = `id, organization_id, source_connection_id, kind, ciphertext, key_id, version, expires_at, created_at, updated_at, refreshable`

func scanCredential(sc scanner) (store.Credential, error) {
	var c store.Credential
	var conn sql.NullString
	var exp sql.NullTime
	var keyID int64
	var refreshable int
	err := sc.Scan(&c.ID, &c.OrganizationID, &conn, &c.Kind, &c.Ciphertext, &keyID, &c.Version, &exp, &c.CreatedAt, &c.UpdatedAt, &refreshable)
	c.Refreshable = refreshable != 0
	c.SourceConnectionID = conn.String
	c.KeyID = uint32(keyID)
	c.ExpiresAt = timePtr(exp)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

func (s *Store) insertCredential(ctx context.Context, q querier, c store.Credential) error {
	_, err := s.exec(ctx, q, `INSERT INTO credentials (`+credentialCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.OrganizationID, nullString(c.SourceConnectionID), c.Kind, c.Ciphertext, int64(c.KeyID), c.Version,
		utcPtr(c.ExpiresAt), utc(c.CreatedAt), utc(c.UpdatedAt), boolInt(c.Refreshable))
	return s.wrap(err, "create credential")
}

// GetCredentialForConnection returns the credential a connection owns.
func (s *Store) GetCredentialForConnection(ctx context.Context, orgID, connectionID string) (store.Credential, error) {
	c, err := scanCredential(s.queryRow(ctx, s.db, `SELECT `+credentialCols+` FROM credentials WHERE organization_id = ? AND source_connection_id = ?`, orgID, connectionID))
	return c, s.wrap(err, "credential")
}

// GetCredential returns a credential by id.
func (s *Store) GetCredential(ctx context.Context, id string) (store.Credential, error) {
	c, err := scanCredential(s.queryRow(ctx, s.db, `SELECT `+credentialCols+` FROM credentials WHERE id = ?`, id))
	return c, s.wrap(err, "credential")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TryLease takes the refresh lease if the row is at version and unleased
// (or its lease has lapsed), and returns the leased row.
func (s *Store) TryLease(ctx context.Context, id string, version int64, owner string, now, until time.Time) (store.Credential, bool, error) {
	c, err := scanCredential(s.queryRow(ctx, s.w, `UPDATE credentials SET lease_owner = ?, lease_expires_at = ?
		WHERE id = ? AND version = ? AND (lease_owner IS NULL OR lease_expires_at < ?)
		RETURNING `+credentialCols, owner, utc(until), id, version, utc(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Credential{}, false, nil
	}
	if err != nil {
		return store.Credential{}, false, s.wrap(err, "lease credential")
	}
	return c, true, nil
}

// ReleaseLease gives the lease back.
func (s *Store) ReleaseLease(ctx context.Context, id, owner string) error {
	_, err := s.exec(ctx, s.w, `UPDATE credentials SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?`, id, owner)
	return s.wrap(err, "release lease")
}

// saveRefreshed is the fenced write of a refreshed credential.
const saveRefreshed = `UPDATE credentials SET ciphertext = ?, key_id = ?, expires_at = ?, refreshable = ?, updated_at = ?,
	version = version + 1, lease_owner = NULL, lease_expires_at = NULL
	WHERE id = ? AND version = ? AND lease_owner = ?`

// SaveRefreshed writes the refreshed credential under the version fence,
// and its audit event.
func (s *Store) SaveRefreshed(ctx context.Context, c store.Credential, version int64, owner string, ev store.AuditEvent) (bool, error) {
	args := []any{c.Ciphertext, int64(c.KeyID), utcPtr(c.ExpiresAt), boolInt(c.Refreshable), utc(c.UpdatedAt), c.ID, version, owner}
	if s.f.name == "postgres" {
		// One statement, so one commit to wait for (a WAL flush) rather than
		// the save's and then the audit batch's: the event is inserted once
		// per row the fenced update wrote, so not at all when fenced out.
		res, err := s.exec(ctx, s.w, `WITH saved AS (`+saveRefreshed+` RETURNING 1) `+
			auditInsert+`SELECT `+strings.Trim(auditValues, "()")+` FROM saved`, append(args, auditArgs(ev)...)...)
		if err != nil {
			return false, s.wrap(err, "save refreshed credential")
		}
		n, err := res.RowsAffected()
		return n == 1, s.wrap(err, "save refreshed credential")
	}
	// SQLite has no data-modifying WITH, and its commits do not wait for the
	// disk: a transaction would only add work on the one writer, while the
	// audit group commit shares one INSERT between concurrent refreshes.
	res, err := s.exec(ctx, s.w, saveRefreshed, args...)
	if err != nil {
		return false, s.wrap(err, "save refreshed credential")
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return false, s.wrap(err, "save refreshed credential") // fenced out: nothing to record
	}
	return true, s.audit.append(ctx, ev)
}

// MarkNeedsReauth flags the connection and releases the lease in one transaction.
func (s *Store) MarkNeedsReauth(ctx context.Context, orgID, connectionID, credentialID, owner string, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE source_connections SET status = ?, modified_at = ? WHERE organization_id = ? AND id = ?`,
			store.StatusNeedsReauth, utc(at), orgID, connectionID); err != nil {
			return s.wrap(err, "mark needs_reauth")
		}
		_, err := s.exec(ctx, tx, `UPDATE credentials SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?`, credentialID, owner)
		return s.wrap(err, "mark needs_reauth")
	})
}

// ListRefreshCandidates finds refreshable credentials that expire soon,
// soonest first, through the expiry index. The status is a literal, not a
// parameter: Postgres's generic plan for a cached statement otherwise
// guesses that "status <> $3" keeps almost no row and scans every
// connection (400 ms with 100,000 stored, against 2 ms).
func (s *Store) ListRefreshCandidates(ctx context.Context, before, now time.Time, limit int) ([]store.RefreshCandidate, error) {
	rows, err := s.query(ctx, s.db, `SELECT cr.id, cr.organization_id, cr.source_connection_id, cr.expires_at
		FROM credentials cr JOIN source_connections sc ON sc.id = cr.source_connection_id
		WHERE cr.refreshable = 1 AND cr.expires_at IS NOT NULL AND cr.expires_at < ?
		  AND (cr.lease_owner IS NULL OR cr.lease_expires_at < ?) AND sc.status <> '`+store.StatusNeedsReauth+`'
		ORDER BY cr.expires_at LIMIT ?`, utc(before), utc(now), limit)
	return collect(s, rows, err, "list refresh candidates", func(sc scanner) (store.RefreshCandidate, error) {
		var c store.RefreshCandidate
		err := sc.Scan(&c.CredentialID, &c.OrganizationID, &c.SourceConnectionID, &c.ExpiresAt)
		c.ExpiresAt = c.ExpiresAt.UTC()
		return c, err
	})
}

func sealedTable(table string) error {
	for _, t := range store.SealedTables {
		if t == table {
			return nil
		}
	}
	return fmt.Errorf("store: %q is not a sealed table", table)
}

// ListSealed pages through a table's ciphertexts.
func (s *Store) ListSealed(ctx context.Context, table, afterID string, limit int) ([]store.SealedRow, error) {
	if err := sealedTable(table); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, s.db, `SELECT id, organization_id, ciphertext FROM `+table+` WHERE id > ? AND ciphertext IS NOT NULL ORDER BY id LIMIT ?`, afterID, limit)
	return collect(s, rows, err, "list "+table, func(sc scanner) (store.SealedRow, error) {
		r := store.SealedRow{Table: table}
		return r, sc.Scan(&r.ID, &r.OrganizationID, &r.Ciphertext)
	})
}

// ReplaceSealed swaps a ciphertext if it is still old.
func (s *Store) ReplaceSealed(ctx context.Context, table, id string, old, new []byte, keyID uint32) (bool, error) {
	if err := sealedTable(table); err != nil {
		return false, err
	}
	res, err := s.exec(ctx, s.w, `UPDATE `+table+` SET ciphertext = ?, key_id = ? WHERE id = ? AND ciphertext = ?`, new, int64(keyID), id, old)
	if err != nil {
		return false, s.wrap(err, "replace ciphertext")
	}
	n, err := res.RowsAffected()
	return n == 1, s.wrap(err, "replace ciphertext")
}

// CountSealedByKey counts ciphertexts per sealing key across sealed tables.
func (s *Store) CountSealedByKey(ctx context.Context) (map[uint32]int, error) {
	out := map[uint32]int{}
	for _, table := range store.SealedTables {
		rows, err := s.query(ctx, s.db, `SELECT key_id, COUNT(*) FROM `+table+` GROUP BY key_id`)
		counts, err := collect(s, rows, err, "count "+table, func(sc scanner) ([2]int64, error) {
			var kv [2]int64
			return kv, sc.Scan(&kv[0], &kv[1])
		})
		if err != nil {
			return nil, err
		}
		for _, kv := range counts {
			out[uint32(kv[0])] += int(kv[1])
		}
	}
	return out, nil
}

// AppendAudit records an audit event; it returns once the event is
// committed (group commit with concurrent appends, see auditBatcher).
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) error {
	return s.audit.append(ctx, e)
}

func scanAudit(sc scanner) (store.AuditEvent, error) {
	var e store.AuditEvent
	err := sc.Scan(&e.ID, &e.OrganizationID, &e.Actor, &e.Action, &e.TargetType, &e.TargetID, &e.RemoteAddr, &e.CreatedAt)
	e.CreatedAt = e.CreatedAt.UTC()
	return e, err
}

// PruneAudit deletes audit events older than before, in every organization.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, s.w, `DELETE FROM audit_log WHERE created_at < ?`, utc(before))
	if err != nil {
		return 0, s.wrap(err, "prune audit")
	}
	n, err := res.RowsAffected()
	return int(n), s.wrap(err, "prune audit")
}

// ListAudit returns an organization's newest matching audit events first.
func (s *Store) ListAudit(ctx context.Context, orgID string, f store.AuditFilter) ([]store.AuditEvent, error) {
	q := `SELECT id, organization_id, actor, action, target_type, target_id, remote_addr, created_at FROM audit_log WHERE organization_id = ?`
	args := []any{orgID}
	for col, v := range map[string]string{"action": f.Action, "target_id": f.TargetID, "actor": f.Actor} {
		if v != "" {
			q += ` AND ` + col + ` = ?`
			args = append(args, v)
		}
	}
	if !f.Since.IsZero() {
		q += ` AND created_at >= ?`
		args = append(args, utc(f.Since))
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := s.query(ctx, s.db, q+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, f.Limit)...)
	return collect(s, rows, err, "list audit", scanAudit)
}
