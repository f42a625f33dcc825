package sqlstore

import (
	"context"
	"database/sql"

	"github.com/valetkey/valetkey/internal/store"
)

const collectionCols = `id, organization_id, name, readable_id, created_at, modified_at`

func scanCollection(sc scanner) (store.Collection, error) {
	var c store.Collection
	err := sc.Scan(&c.ID, &c.OrganizationID, &c.Name, &c.ReadableID, &c.CreatedAt, &c.ModifiedAt)
	c.CreatedAt, c.ModifiedAt = c.CreatedAt.UTC(), c.ModifiedAt.UTC()
	return c, err
}

// CreateCollection inserts a collection; a readable id taken in the
// organization is ErrAlreadyExists.
func (s *Store) CreateCollection(ctx context.Context, c store.Collection) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO collections (`+collectionCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		c.ID, c.OrganizationID, c.Name, c.ReadableID, utc(c.CreatedAt), utc(c.ModifiedAt))
	return s.wrap(err, "collection")
}

// GetCollection finds a collection by readable id.
func (s *Store) GetCollection(ctx context.Context, orgID, readableID string) (store.Collection, error) {
	c, err := scanCollection(s.queryRow(ctx, s.db, `SELECT `+collectionCols+` FROM collections WHERE organization_id = ? AND readable_id = ?`, orgID, readableID))
	return c, s.wrap(err, "collection")
}

// GetCollectionByID finds a collection by id.
func (s *Store) GetCollectionByID(ctx context.Context, orgID, id string) (store.Collection, error) {
	c, err := scanCollection(s.queryRow(ctx, s.db, `SELECT `+collectionCols+` FROM collections WHERE organization_id = ? AND id = ?`, orgID, id))
	return c, s.wrap(err, "collection")
}

// ListCollections pages through an organization's collections, oldest first.
func (s *Store) ListCollections(ctx context.Context, orgID string, skip, limit int) ([]store.Collection, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+collectionCols+` FROM collections WHERE organization_id = ? ORDER BY created_at, id LIMIT ? OFFSET ?`,
		orgID, limit, skip)
	return collect(s, rows, err, "list collections", scanCollection)
}

// DeleteCollection removes a collection with its connections and credentials.
func (s *Store) DeleteCollection(ctx context.Context, orgID, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM credentials WHERE organization_id = ? AND source_connection_id IN
			(SELECT id FROM source_connections WHERE organization_id = ? AND collection_id = ?)`, orgID, orgID, id); err != nil {
			return s.wrap(err, "delete collection credentials")
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM source_connections WHERE organization_id = ? AND collection_id = ?`, orgID, id); err != nil {
			return s.wrap(err, "delete collection connections")
		}
		res, err := s.exec(ctx, tx, `DELETE FROM collections WHERE organization_id = ? AND id = ?`, orgID, id)
		if err != nil {
			return s.wrap(err, "delete collection")
		}
		return checkAffected(res, "collection")
	})
}
