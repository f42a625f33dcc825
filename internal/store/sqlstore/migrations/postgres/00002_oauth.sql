-- +goose Up
CREATE TABLE oauth_apps (
    id                     TEXT PRIMARY KEY,
    organization_id        TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    short_name             TEXT NOT NULL,
    client_id              TEXT NOT NULL,
    ciphertext             BYTEA NOT NULL,
    key_id                 BIGINT NOT NULL,
    scopes                 JSONB NOT NULL DEFAULT '[]',
    redirect_url_allowlist JSONB NOT NULL DEFAULT '[]',
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    UNIQUE (organization_id, short_name)
);

CREATE TABLE oauth_sessions (
    id                   TEXT PRIMARY KEY,
    organization_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    source_connection_id TEXT REFERENCES source_connections(id) ON DELETE CASCADE,
    short_name           TEXT NOT NULL,
    code_hash            BYTEA NOT NULL UNIQUE,
    state_hash           BYTEA NOT NULL UNIQUE,
    ciphertext           BYTEA NOT NULL,
    key_id               BIGINT NOT NULL,
    redirect_url         TEXT NOT NULL DEFAULT '',
    created_at           TIMESTAMPTZ NOT NULL,
    expires_at           TIMESTAMPTZ NOT NULL,
    code_used_at         TIMESTAMPTZ,
    state_used_at        TIMESTAMPTZ
);
CREATE INDEX oauth_sessions_expiry ON oauth_sessions (expires_at);

ALTER TABLE credentials ADD COLUMN refreshable INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE credentials DROP COLUMN refreshable;
DROP TABLE oauth_sessions;
DROP TABLE oauth_apps;
