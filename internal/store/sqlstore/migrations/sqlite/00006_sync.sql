-- +goose Up
CREATE TABLE sync_jobs (
    id                   TEXT PRIMARY KEY,
    organization_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    source_connection_id TEXT NOT NULL REFERENCES source_connections(id) ON DELETE CASCADE,
    status               TEXT NOT NULL,
    force_full_sync      INTEGER NOT NULL DEFAULT 0,
    ciphertext           BLOB,
    key_id               INTEGER NOT NULL DEFAULT 0,
    entities_inserted    INTEGER NOT NULL DEFAULT 0,
    entities_updated     INTEGER NOT NULL DEFAULT 0,
    entities_deleted     INTEGER NOT NULL DEFAULT 0,
    entities_kept        INTEGER NOT NULL DEFAULT 0,
    entities_failed      INTEGER NOT NULL DEFAULT 0,
    error                TEXT NOT NULL DEFAULT '',
    error_category       TEXT NOT NULL DEFAULT '',
    created_at           TIMESTAMP NOT NULL,
    started_at           TIMESTAMP,
    completed_at         TIMESTAMP
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
    updated_at           TIMESTAMP NOT NULL,
    UNIQUE (source_connection_id, entity_type, upstream_id)
);
CREATE INDEX records_collection ON records (organization_id, collection_id);

CREATE VIRTUAL TABLE records_fts USING fts5(title, body, content='records', content_rowid='rowid');
-- +goose StatementBegin
CREATE TRIGGER records_ai AFTER INSERT ON records BEGIN
  INSERT INTO records_fts(rowid, title, body) VALUES (new.rowid, new.title, new.body);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER records_ad AFTER DELETE ON records BEGIN
  INSERT INTO records_fts(records_fts, rowid, title, body) VALUES ('delete', old.rowid, old.title, old.body);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER records_au AFTER UPDATE OF title, body ON records BEGIN
  INSERT INTO records_fts(records_fts, rowid, title, body) VALUES ('delete', old.rowid, old.title, old.body);
  INSERT INTO records_fts(rowid, title, body) VALUES (new.rowid, new.title, new.body);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER records_au;
DROP TRIGGER records_ad;
DROP TRIGGER records_ai;
DROP TABLE records_fts;
DROP TABLE records;
DROP TABLE sync_jobs;
