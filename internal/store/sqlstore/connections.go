package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/valetkey/valetkey/internal/store"
)

const connectionCols = `sc.id, sc.organization_id, sc.collection_id, c.readable_id, sc.name, sc.description, sc.short_name,
	sc.status, sc.auth_method, sc.config, sc.schedule, sc.authenticated_at, sc.created_at, sc.modified_at,
	sc.auth_provider_id, ap.readable_id, sc.auth_provider_config, sc.workspace_id`

const connectionFrom = ` FROM source_connections sc JOIN collections c ON c.id = sc.collection_id
	LEFT JOIN auth_providers ap ON ap.id = sc.auth_provider_id `

func scanConnection(sc scanner) (store.SourceConnection, error) {
	var c store.SourceConnection
	var config, schedule []byte
	var authAt sql.NullTime
	var apID, apRID sql.NullString
	var apConfig []byte
	var ws sql.NullString
	err := sc.Scan(&c.ID, &c.OrganizationID, &c.CollectionID, &c.CollectionRID, &c.Name, &c.Description, &c.ShortName,
		&c.Status, &c.AuthMethod, &config, &schedule, &authAt, &c.CreatedAt, &c.ModifiedAt, &apID, &apRID, &apConfig, &ws)
	c.WorkspaceID = ws.String
	c.AuthProviderID, c.AuthProviderRID = apID.String, apRID.String
	if len(apConfig) > 0 {
		c.AuthProviderConfig = json.RawMessage(apConfig)
	}
	c.Config = json.RawMessage(config)
	if len(schedule) > 0 {
		c.Schedule = json.RawMessage(schedule)
	}
	c.AuthenticatedAt = timePtr(authAt)
	c.CreatedAt, c.ModifiedAt = c.CreatedAt.UTC(), c.ModifiedAt.UTC()
	return c, err
}

func rawOrNil(r json.RawMessage) any {
	if len(r) == 0 {
		return nil
	}
	return string(r)
}

func rawOrEmptyObject(r json.RawMessage) string {
	if len(r) == 0 {
		return "{}"
	}
	return string(r)
}

// CreateConnection stores a connection and its credential in one transaction.
func (s *Store) CreateConnection(ctx context.Context, c store.SourceConnection, cred *store.Credential) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO source_connections (id, organization_id, collection_id, name, description, short_name,
			status, auth_method, config, schedule, authenticated_at, created_at, modified_at, auth_provider_id, auth_provider_config, workspace_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.OrganizationID, c.CollectionID, c.Name, c.Description, c.ShortName, c.Status, c.AuthMethod,
			rawOrEmptyObject(c.Config), rawOrNil(c.Schedule), utcPtr(c.AuthenticatedAt), utc(c.CreatedAt), utc(c.ModifiedAt),
			nullString(c.AuthProviderID), rawOrNil(c.AuthProviderConfig), nullString(c.WorkspaceID))
		if err != nil {
			return s.wrap(err, "create connection")
		}
		if cred != nil {
			return s.insertCredential(ctx, tx, *cred)
		}
		return nil
	})
}

// GetConnection finds a connection by id.
func (s *Store) GetConnection(ctx context.Context, orgID, id string) (store.SourceConnection, error) {
	c, err := scanConnection(s.queryRow(ctx, s.db, `SELECT `+connectionCols+connectionFrom+`WHERE sc.organization_id = ? AND sc.id = ?`, orgID, id))
	return c, s.wrap(err, "source connection")
}

// ListConnections pages through an organization's connections, oldest first.
func (s *Store) ListConnections(ctx context.Context, orgID string, f store.ConnectionFilter) ([]store.SourceConnection, error) {
	q := `SELECT ` + connectionCols + connectionFrom + `WHERE sc.organization_id = ?`
	args := []any{orgID}
	if f.CollectionID != "" {
		q += ` AND sc.collection_id = ?`
		args = append(args, f.CollectionID)
	}
	if f.WorkspaceID != "" {
		q += ` AND sc.workspace_id = ?`
		args = append(args, f.WorkspaceID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY sc.created_at, sc.id LIMIT ? OFFSET ?`
	args = append(args, limit, f.Skip)
	rows, err := s.query(ctx, s.db, q, args...)
	return collect(s, rows, err, "list connections", scanConnection)
}

// UpdateConnection is a read-modify-write of one connection (and optionally
// its credential) in one transaction.
func (s *Store) UpdateConnection(ctx context.Context, orgID, id string, update func(c *store.SourceConnection) (*store.Credential, error)) (store.SourceConnection, error) {
	var out store.SourceConnection
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := scanConnection(s.queryRow(ctx, tx, `SELECT `+connectionCols+connectionFrom+`WHERE sc.organization_id = ? AND sc.id = ?`+s.f.forUpdate, orgID, id))
		if err != nil {
			return s.wrap(err, "source connection")
		}
		cred, err := update(&c)
		if err != nil {
			return err
		}
		if c.ID != id || c.OrganizationID != orgID {
			return fmt.Errorf("store: update connection: id and organization cannot change: %w", store.ErrConflict)
		}
		_, err = s.exec(ctx, tx, `UPDATE source_connections SET collection_id = ?, name = ?, description = ?, status = ?, auth_method = ?,
			config = ?, schedule = ?, authenticated_at = ?, modified_at = ?, auth_provider_id = ?, auth_provider_config = ?
			WHERE organization_id = ? AND id = ?`,
			c.CollectionID, c.Name, c.Description, c.Status, c.AuthMethod, rawOrEmptyObject(c.Config), rawOrNil(c.Schedule),
			utcPtr(c.AuthenticatedAt), utc(c.ModifiedAt), nullString(c.AuthProviderID), rawOrNil(c.AuthProviderConfig), orgID, id)
		if err != nil {
			return s.wrap(err, "update connection")
		}
		if cred != nil {
			if _, err := s.exec(ctx, tx, `DELETE FROM credentials WHERE organization_id = ? AND source_connection_id = ?`, orgID, id); err != nil {
				return s.wrap(err, "replace credential")
			}
			if err := s.insertCredential(ctx, tx, *cred); err != nil {
				return err
			}
		}
		out = c
		return nil
	})
	return out, err
}

// DeleteConnection removes a connection and erases its credential.
func (s *Store) DeleteConnection(ctx context.Context, orgID, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM credentials WHERE organization_id = ? AND source_connection_id = ?`, orgID, id); err != nil {
			return s.wrap(err, "delete credential")
		}
		res, err := s.exec(ctx, tx, `DELETE FROM source_connections WHERE organization_id = ? AND id = ?`, orgID, id)
		if err != nil {
			return s.wrap(err, "delete connection")
		}
		return checkAffected(res, "source connection")
	})
}

// ListScheduledConnections pages through connections with a schedule.
func (s *Store) ListScheduledConnections(ctx context.Context, afterID string, limit int) ([]store.SourceConnection, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+connectionCols+connectionFrom+`WHERE sc.schedule IS NOT NULL AND sc.id > ? ORDER BY sc.id LIMIT ?`, afterID, limit)
	return collect(s, rows, err, "list scheduled connections", scanConnection)
}

// ClaimScheduleTick is a compare-and-set on the last fired minute.
func (s *Store) ClaimScheduleTick(ctx context.Context, connectionID string, minute time.Time) (bool, error) {
	res, err := s.exec(ctx, s.w, `UPDATE source_connections SET schedule_last_fired = ?
		WHERE id = ? AND (schedule_last_fired IS NULL OR schedule_last_fired < ?)`, utc(minute), connectionID, utc(minute))
	if err != nil {
		return false, s.wrap(err, "claim schedule tick")
	}
	n, err := res.RowsAffected()
	return n == 1, s.wrap(err, "claim schedule tick")
}
