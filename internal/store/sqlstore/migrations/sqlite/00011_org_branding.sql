-- +goose Up
-- White-label settings the Connect widget shows: display name, accent colour, logo.
ALTER TABLE organizations ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE organizations ADD COLUMN accent_color TEXT NOT NULL DEFAULT '';
ALTER TABLE organizations ADD COLUMN logo_url TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE organizations DROP COLUMN logo_url;
ALTER TABLE organizations DROP COLUMN accent_color;
ALTER TABLE organizations DROP COLUMN display_name;
