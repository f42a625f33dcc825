-- +goose Up
ALTER TABLE source_connections ADD COLUMN schedule_last_fired TIMESTAMPTZ;

-- +goose Down
ALTER TABLE source_connections DROP COLUMN schedule_last_fired;
