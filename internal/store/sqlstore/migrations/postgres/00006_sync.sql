-- +goose Up
CREATE TABLE sync_jobs (
    id                   TEXT PRIMARY KEY,
    organization_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    source_connection_id TEXT NOT NULL REFERENCES source_connections(id) ON DELETE CASCADE,
    status               TEXT NOT NULL,
    force_full_sync      INTEGER NOT NULL DEFAULT 0,
    ciphertext           BYTEA,
    key_id               BIGINT NOT NULL DEFAULT 0,
    entities_inserted    INTEGER NOT NULL DEFAULT 0,
    entities_updated     INTEGER NOT NULL DEFAULT 0,
    entities_deleted     INTEGER NOT NULL DEFAULT 0,
    entities_kept        INTEGER NOT NULL DEFAULT 0,
    entities_failed      INTEGER NOT NULL DEFAULT 0,
    error                TEXT NOT NULL DEFAULT '',
    error_category       TEXT NOT NULL DEFAULT '',
    created_at           TIMESTAMPTZ NOT NULL,
    started_at           TIMESTAMPTZ,
    completed_at         TIMESTAMPTZ
);
CREATE INDEX sync_jobs_connection ON sync_jobs (organization_id, source_connection_id, created_at);
-- At most one active job per connection, enforced by the database across replicas.
CREATE UNIQUE INDEX sync_jobs_one_active ON sync_jobs (source_connection_id) WHERE status IN ('created', 'pending', 'running', 'cancelling');

CREATE TABLE records (
    id                   TEXT PRIMARY KEY,
    organization_id      TEXT NOT NULL,
    collection_id        TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    source_connection_id TEXT NOT NULL REFERENCES source_connections(id) ON DELETE CASCADE,
    source               TEXT NOT NULL,
    entity_type          TEXT NOT NULL,
    upstream_id          TEXT NOT NULL,
    title                TEXT NOT NULL DEFAULT '',
    body                 TEXT NOT NULL,
    content_hash         TEXT NOT NULL,
    seen_job_id          TEXT NOT NULL DEFAULT '',
    updated_at           TIMESTAMPTZ NOT NULL,
    search               tsvector GENERATED ALWAYS AS (setweight(to_tsvector('simple', title), 'A') || to_tsvector('simple', body)) STORED,
    UNIQUE (source_connection_id, entity_type, upstream_id)
);
CREATE INDEX records_collection ON records (organization_id, collection_id);
CREATE INDEX records_search ON records USING GIN (search);

-- +goose Down
DROP TABLE records;
DROP TABLE sync_jobs;
