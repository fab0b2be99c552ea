-- +goose Up
-- The page count the newest table-of-contents page reported (TOCPageFetched.TotalPages),
-- and when that page was fetched: known before a sync completes (toc_pages is set only
-- then), it bounds the pages a reader may have fetched out of turn.
ALTER TABLE books ADD COLUMN toc_pages_seen integer;
ALTER TABLE books ADD COLUMN toc_seen_at timestamptz;

-- +goose Down
ALTER TABLE books DROP COLUMN toc_seen_at;
ALTER TABLE books DROP COLUMN toc_pages_seen;
