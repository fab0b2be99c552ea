-- +goose Up
-- Search by book name, author, chapter title and chapter text with trigram indexes
-- (pg_trgm, in Debian's postgresql-contrib; a trusted extension since PostgreSQL 13, so
-- the database owner may create it without superuser rights).
--
-- An extension belongs to the database, not to a schema, while every table of ours lives
-- in the connection's search_path (tests give each test its own schema): the extension is
-- installed in public, and its operator classes and functions are named with that schema
-- (public.gin_trgm_ops, public.similarity, OPERATOR(public.<%)), so that they resolve
-- whatever the search_path. (A database that already has pg_trgm in another schema must
-- move it: ALTER EXTENSION pg_trgm SET SCHEMA public.) The advisory lock serialises
-- concurrent migrations of one database (parallel test packages) on CREATE EXTENSION,
-- which is not safe to race.
SELECT pg_advisory_xact_lock(7239001);
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;

CREATE INDEX books_name_trgm ON books USING gin (name public.gin_trgm_ops);
CREATE INDEX books_author_trgm ON books USING gin (author public.gin_trgm_ops);

-- +goose Down
DROP INDEX books_author_trgm;
DROP INDEX books_name_trgm;
-- The extension stays: other schemas of the database may use it.
