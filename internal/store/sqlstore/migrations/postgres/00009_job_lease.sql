-- +goose Up
ALTER TABLE sync_jobs ADD COLUMN worker TEXT;
ALTER TABLE sync_jobs ADD COLUMN heartbeat_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE sync_jobs DROP COLUMN heartbeat_at;
ALTER TABLE sync_jobs DROP COLUMN worker;
