-- +goose Up
-- An operator's acceptance of a book's shrink (events.BookShrinkAccepted, see
-- store.ShrinkFloor).
--
-- shrink_accepted is true while the book has an acceptance that no applied sync has used:
-- the shrink guard does not refuse its syncs, and the first completion applied clears it
-- and sets chapter_peak to its own count. shrink_accepted_at is the time of the newest
-- acceptance recorded, kept once it is used: an acceptance no newer than it (a
-- redelivery) changes nothing, so that a used acceptance delivered again does not arm
-- the book again. NULL on a book never accepted. shrink_armed_at is when the indexer
-- recorded it, by the database's clock: an acceptance no sync used within
-- store.AcceptanceLifetime of it lapses, and the guard is back.
--
-- A constant default: adding the columns rewrites no row.
ALTER TABLE books ADD COLUMN shrink_accepted boolean NOT NULL DEFAULT false;
ALTER TABLE books ADD COLUMN shrink_accepted_at timestamptz;
ALTER TABLE books ADD COLUMN shrink_armed_at timestamptz;

-- +goose Down
ALTER TABLE books DROP COLUMN shrink_armed_at;
ALTER TABLE books DROP COLUMN shrink_accepted_at;
ALTER TABLE books DROP COLUMN shrink_accepted;
