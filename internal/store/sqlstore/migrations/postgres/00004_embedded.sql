-- +goose Up
CREATE TABLE applications (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    client_id       TEXT NOT NULL UNIQUE,
    secret_hash     BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ
);

CREATE TABLE workspaces (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    external_user_id TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (organization_id, external_user_id)
);

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL DEFAULT '',
    ciphertext  BYTEA NOT NULL,
    key_id      BIGINT NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    retired_at  TIMESTAMPTZ
);

CREATE TABLE oauth_secrets (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    short_name      TEXT NOT NULL,
    ciphertext      BYTEA NOT NULL,
    key_id          BIGINT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    used_at         TIMESTAMPTZ
);

ALTER TABLE source_connections ADD COLUMN workspace_id TEXT REFERENCES workspaces(id);
ALTER TABLE oauth_sessions ADD COLUMN workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE;

-- +goose Down
ALTER TABLE oauth_sessions DROP COLUMN workspace_id;
ALTER TABLE source_connections DROP COLUMN workspace_id;
DROP TABLE oauth_secrets;
DROP TABLE signing_keys;
DROP TABLE workspaces;
DROP TABLE applications;
