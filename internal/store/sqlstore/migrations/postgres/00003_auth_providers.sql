-- +goose Up
CREATE TABLE auth_providers (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    readable_id     TEXT NOT NULL,
    short_name      TEXT NOT NULL,
    masked_client_id TEXT NOT NULL DEFAULT '',
    ciphertext      BYTEA NOT NULL,
    key_id          BIGINT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    modified_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (organization_id, readable_id)
);

ALTER TABLE source_connections ADD COLUMN auth_provider_id TEXT REFERENCES auth_providers(id);
ALTER TABLE source_connections ADD COLUMN auth_provider_config JSONB;

-- +goose Down
ALTER TABLE source_connections DROP COLUMN auth_provider_config;
ALTER TABLE source_connections DROP COLUMN auth_provider_id;
DROP TABLE auth_providers;
