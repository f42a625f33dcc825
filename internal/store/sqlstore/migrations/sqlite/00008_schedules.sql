-- +goose Up
ALTER TABLE source_connections ADD COLUMN schedule_last_fired TIMESTAMP;

-- +goose Down
ALTER TABLE source_connections DROP COLUMN schedule_last_fired;
