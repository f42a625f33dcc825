-- +goose Up
-- Retention deletes by age across organizations.
CREATE INDEX audit_log_created_at ON audit_log (created_at);

-- +goose Down
DROP INDEX audit_log_created_at;
