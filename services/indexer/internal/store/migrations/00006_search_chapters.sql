-- +goose Up
-- Trigram indexes of chapter titles and texts (see 00005; a separate migration so that it
-- locks one table only).
CREATE INDEX chapters_title_trgm ON chapters USING gin (title public.gin_trgm_ops);
CREATE INDEX chapters_text_trgm ON chapters USING gin (text public.gin_trgm_ops) WHERE text IS NOT NULL;

-- +goose Down
DROP INDEX chapters_text_trgm;
DROP INDEX chapters_title_trgm;
