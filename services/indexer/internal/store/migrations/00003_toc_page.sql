-- +goose Up
-- The table-of-contents page of the source that listed a chapter ref (TOCPageFetched.Page),
-- NULL for refs written before this column or inserted with their text alone. The
-- gateway learns from it how many chapters a source page holds (the refs on page 1), so
-- that a reader's page of a book still syncing can be fetched out of turn.
--
-- Each migration of this series locks one table only: the indexer may be writing both
-- (books, then chapters, or the other way round) while it runs, and a migration holding
-- one table's lock while waiting for the other's could deadlock with it.
ALTER TABLE chapters ADD COLUMN toc_page integer;
CREATE INDEX chapters_book_toc_page ON chapters (book_id, toc_page);

-- +goose Down
DROP INDEX chapters_book_toc_page;
ALTER TABLE chapters DROP COLUMN toc_page;
