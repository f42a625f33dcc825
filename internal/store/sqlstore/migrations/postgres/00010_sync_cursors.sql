-- +goose Up
CREATE TABLE sync_cursors (
    source_connection_id TEXT NOT NULL REFERENCES source_connections(id) ON DELETE CASCADE,
    entity_type          TEXT NOT NULL,
    value                TEXT NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_connection_id, entity_type)
);

-- +goose Down
DROP TABLE sync_cursors;
