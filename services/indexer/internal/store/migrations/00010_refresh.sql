-- +goose Up
-- Popularity, counted by the gateways and folded in by the indexer, and what the refresh
-- scheduler looks for: books checked longest ago.
ALTER TABLE books ADD COLUMN read_count bigint NOT NULL DEFAULT 0;
ALTER TABLE books ADD COLUMN read_at timestamptz;
CREATE INDEX books_refresh_due ON books (finished, checked_at);

-- +goose Down
DROP INDEX books_refresh_due;
ALTER TABLE books DROP COLUMN read_at;
ALTER TABLE books DROP COLUMN read_count;
