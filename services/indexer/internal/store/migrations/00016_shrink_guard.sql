-- +goose Up
-- What the shrink guard (store.ShrinkFloor) needs to keep a stored book whole.
--
-- chapter_peak is the most chapters the book has held: the largest chapter total of a
-- sync applied to it and the largest number of its chapter refs, as of each applied
-- completion. A sync is judged against it, not only against what is stored now, so that
-- a book cannot be worn down by syncs that each list a little more than half of the
-- last. It starts as what each book holds now.
--
-- meta_before is the book's metadata as it was before the metadata of the sync meta_job
-- (a job id) was written: a sync publishes its metadata before its chapter list, so the
-- guard's verdict comes after it. A refused sync puts meta_before back; an applied one
-- drops it. NULL both when no sync's verdict is awaited.
--
-- The backfill reads chapters while it holds books' lock, and locks nothing the indexer
-- holds there (see 00003): it waits for books alone.
ALTER TABLE books ADD COLUMN chapter_peak integer;
ALTER TABLE books ADD COLUMN meta_before jsonb;
ALTER TABLE books ADD COLUMN meta_job text;
UPDATE books b SET chapter_peak = greatest(b.chapter_total,
    (SELECT count(*) FROM chapters c WHERE c.site = b.site AND c.book_id = b.id))::int;

-- +goose Down
ALTER TABLE books DROP COLUMN meta_job;
ALTER TABLE books DROP COLUMN meta_before;
ALTER TABLE books DROP COLUMN chapter_peak;
