-- +goose Up
-- A book is identified by its site and the site's id for it (events.Key): books of
-- several sites share the table, and a site's ids are strings (czbooks.net's are opaque,
-- "cr382b"; an id with leading zeros is not the number without them). Every row written
-- before sites had names is m.xsw.tw's: it becomes site 'xsw' (events.LegacySite), its
-- numeric ids become their decimal spelling, nothing else changes. The site then has no
-- default: every insert names it.
--
-- Like every migration of this series, it locks one table only (see 00003). Changing the
-- column types rewrites the table once, with its indexes; the old primary key is dropped
-- first so that it is not rebuilt only to be dropped.
--
-- Ids and sites are ASCII (events.ValidID): they are compared byte by byte (COLLATE "C"),
-- which keeps the keys as cheap to compare as the numbers were, whatever the database's
-- locale; they sort as their bytes do.
--
-- volumes holds the book's volume headers (events.BookMeta.Volumes), [] for a site that
-- has none.
ALTER TABLE books ADD COLUMN site text COLLATE "C" NOT NULL DEFAULT 'xsw';
ALTER TABLE books ALTER COLUMN site DROP DEFAULT;
ALTER TABLE books
    DROP CONSTRAINT books_pkey,
    ALTER COLUMN id TYPE text COLLATE "C" USING id::text,
    ALTER COLUMN last_chapter_id TYPE text COLLATE "C" USING last_chapter_id::text,
    ADD COLUMN volumes jsonb NOT NULL DEFAULT '[]';
ALTER TABLE books ADD CONSTRAINT books_pkey PRIMARY KEY (site, id);

-- +goose Down
-- Best effort: only a database holding m.xsw.tw's books alone (numeric ids) goes back.
-- With books of another site it refuses, and changes nothing: delete them first. The
-- volumes are dropped.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM books WHERE site <> 'xsw' OR id !~ '^[0-9]+$') THEN
        RAISE EXCEPTION 'books holds books of sites other than xsw, or ids that are not numbers: delete them before migrating below 00012';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE books
    DROP CONSTRAINT books_pkey,
    DROP COLUMN volumes,
    ALTER COLUMN id TYPE bigint USING id::bigint,
    ALTER COLUMN last_chapter_id TYPE bigint
        USING CASE WHEN last_chapter_id ~ '^[0-9]{1,18}$' THEN last_chapter_id::bigint END,
    DROP COLUMN site;
ALTER TABLE books ADD CONSTRAINT books_pkey PRIMARY KEY (id);
