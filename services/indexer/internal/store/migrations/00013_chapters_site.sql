-- +goose Up
-- Chapter refs and texts are a book's, and a book is (site, book id) (see 00012): rows
-- written before sites had names become site 'xsw', the ids their decimal spelling. The
-- site then has no default: every insert names it. The indexes by chapter id and by
-- source page are replaced by the same ones under the site; they are dropped before the
-- rewrite so that it does not rebuild them. Ids compare byte by byte, as in 00012.
ALTER TABLE chapters ADD COLUMN site text COLLATE "C" NOT NULL DEFAULT 'xsw';
ALTER TABLE chapters ALTER COLUMN site DROP DEFAULT;
DROP INDEX chapters_book_chapter_id;
DROP INDEX chapters_book_toc_page;
ALTER TABLE chapters
    DROP CONSTRAINT chapters_pkey,
    ALTER COLUMN book_id TYPE text COLLATE "C" USING book_id::text,
    ALTER COLUMN chapter_id TYPE text COLLATE "C" USING chapter_id::text;
ALTER TABLE chapters ADD CONSTRAINT chapters_pkey PRIMARY KEY (site, book_id, num);
CREATE INDEX chapters_site_book_chapter_id ON chapters (site, book_id, chapter_id);
CREATE INDEX chapters_site_book_toc_page ON chapters (site, book_id, toc_page);

-- +goose Down
-- Best effort: only chapters of m.xsw.tw's books, with numeric ids, go back. With
-- chapters of another site it refuses, and changes nothing: delete them first.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM chapters
               WHERE site <> 'xsw' OR book_id !~ '^[0-9]+$' OR chapter_id !~ '^[0-9]+$') THEN
        RAISE EXCEPTION 'chapters holds chapters of sites other than xsw, or ids that are not numbers: delete them before migrating below 00013';
    END IF;
END
$$;
-- +goose StatementEnd
DROP INDEX chapters_site_book_toc_page;
DROP INDEX chapters_site_book_chapter_id;
ALTER TABLE chapters
    DROP CONSTRAINT chapters_pkey,
    ALTER COLUMN book_id TYPE bigint USING book_id::bigint,
    ALTER COLUMN chapter_id TYPE bigint USING chapter_id::bigint,
    DROP COLUMN site;
ALTER TABLE chapters ADD CONSTRAINT chapters_pkey PRIMARY KEY (book_id, num);
CREATE INDEX chapters_book_chapter_id ON chapters (book_id, chapter_id);
CREATE INDEX chapters_book_toc_page ON chapters (book_id, toc_page);
