-- +goose Up
-- A job syncs one book, and a book is (site, book id) (see 00012): rows written before
-- sites had names become site 'xsw', the book ids their decimal spelling. The site then
-- has no default: every insert names it. Job ids stay the key: since sites, they name
-- the site too (events.JobID).
ALTER TABLE job_history ADD COLUMN site text COLLATE "C" NOT NULL DEFAULT 'xsw';
ALTER TABLE job_history ALTER COLUMN site DROP DEFAULT;
ALTER TABLE job_history ALTER COLUMN book_id TYPE text COLLATE "C" USING book_id::text;
CREATE INDEX job_history_site_book ON job_history (site, book_id);

-- +goose Down
-- Best effort: only the history of m.xsw.tw's books, with numeric ids, goes back. With
-- jobs of another site it refuses, and changes nothing: delete them (or prune the
-- history) first.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM job_history WHERE site <> 'xsw' OR book_id !~ '^[0-9]+$') THEN
        RAISE EXCEPTION 'job_history holds jobs of sites other than xsw, or book ids that are not numbers: delete them before migrating below 00015';
    END IF;
END
$$;
-- +goose StatementEnd
DROP INDEX job_history_site_book;
ALTER TABLE job_history
    ALTER COLUMN book_id TYPE bigint USING book_id::bigint,
    DROP COLUMN site;
