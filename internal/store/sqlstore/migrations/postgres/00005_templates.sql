-- +goose Up
CREATE TABLE source_templates (
    id                     TEXT PRIMARY KEY,
    organization_id        TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    short_name             TEXT NOT NULL,
    partial_default_config JSONB NOT NULL DEFAULT '{}',
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX source_templates_org ON source_templates (organization_id, created_at);

-- +goose Down
DROP TABLE source_templates;
