package sqlstore

import (
	"context"
	"encoding/json"

	"github.com/valetkey/valetkey/internal/store"
)

const templateCols = `id, organization_id, name, short_name, partial_default_config, created_at, updated_at`

func scanTemplate(sc scanner) (store.SourceTemplate, error) {
	var t store.SourceTemplate
	var cfg []byte
	err := sc.Scan(&t.ID, &t.OrganizationID, &t.Name, &t.ShortName, &cfg, &t.CreatedAt, &t.UpdatedAt)
	t.PartialDefaultConfig = json.RawMessage(cfg)
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return t, err
}

// CreateSourceTemplate stores a template.
func (s *Store) CreateSourceTemplate(ctx context.Context, t store.SourceTemplate) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO source_templates (`+templateCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.OrganizationID, t.Name, t.ShortName, rawOrEmptyObject(t.PartialDefaultConfig), utc(t.CreatedAt), utc(t.UpdatedAt))
	return s.wrap(err, "source template")
}

// GetSourceTemplate finds a template by id.
func (s *Store) GetSourceTemplate(ctx context.Context, orgID, id string) (store.SourceTemplate, error) {
	t, err := scanTemplate(s.queryRow(ctx, s.db, `SELECT `+templateCols+` FROM source_templates WHERE organization_id = ? AND id = ?`, orgID, id))
	return t, s.wrap(err, "source template")
}

// ListSourceTemplates lists an organization's templates.
func (s *Store) ListSourceTemplates(ctx context.Context, orgID string) ([]store.SourceTemplate, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+templateCols+` FROM source_templates WHERE organization_id = ? ORDER BY created_at, id`, orgID)
	return collect(s, rows, err, "list source templates", scanTemplate)
}

// DeleteSourceTemplate removes a template.
func (s *Store) DeleteSourceTemplate(ctx context.Context, orgID, id string) error {
	res, err := s.exec(ctx, s.w, `DELETE FROM source_templates WHERE organization_id = ? AND id = ?`, orgID, id)
	if err != nil {
		return s.wrap(err, "delete source template")
	}
	return checkAffected(res, "source template")
}
