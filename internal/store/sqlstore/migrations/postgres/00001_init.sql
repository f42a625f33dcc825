-- +goose Up
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    prefix          TEXT NOT NULL,
    key_hash        BYTEA NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL,
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX api_keys_org ON api_keys (organization_id);

CREATE TABLE collections (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    readable_id     TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    modified_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (organization_id, readable_id)
);

CREATE TABLE source_connections (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    collection_id    TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    short_name       TEXT NOT NULL,
    status           TEXT NOT NULL,
    auth_method      TEXT NOT NULL,
    config           JSONB NOT NULL DEFAULT '{}',
    schedule         JSONB,
    authenticated_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    modified_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX source_connections_org ON source_connections (organization_id, collection_id, created_at);

CREATE TABLE credentials (
    id                   TEXT PRIMARY KEY,
    organization_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    source_connection_id TEXT UNIQUE REFERENCES source_connections(id) ON DELETE CASCADE,
    kind                 TEXT NOT NULL,
    ciphertext           BYTEA NOT NULL,
    key_id               BIGINT NOT NULL,
    version              BIGINT NOT NULL,
    expires_at           TIMESTAMPTZ,
    lease_owner          TEXT,
    lease_expires_at     TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX credentials_key ON credentials (key_id);
CREATE INDEX credentials_expiry ON credentials (expires_at);

CREATE TABLE audit_log (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    target_type     TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    remote_addr     TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (organization_id, created_at);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE credentials;
DROP TABLE source_connections;
DROP TABLE collections;
DROP TABLE api_keys;
DROP TABLE organizations;
