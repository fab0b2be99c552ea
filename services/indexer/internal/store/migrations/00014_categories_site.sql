-- +goose Up
-- Each site has its own categories, under its own ids (numbers on m.xsw.tw, slugs
-- elsewhere), listed in the order of the site's home page (position, from 0). Rows
-- written before sites had names become site 'xsw', in the order they were read until
-- now (by numeric id). The site then has no default: every insert names it.
ALTER TABLE categories ADD COLUMN site text COLLATE "C" NOT NULL DEFAULT 'xsw';
ALTER TABLE categories ALTER COLUMN site DROP DEFAULT;
ALTER TABLE categories ADD COLUMN position integer NOT NULL DEFAULT 0;
UPDATE categories AS k SET position = r.position
FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1)::integer AS position FROM categories) AS r
WHERE k.id = r.id;
ALTER TABLE categories
    DROP CONSTRAINT categories_pkey,
    ALTER COLUMN id TYPE text COLLATE "C" USING id::text;
ALTER TABLE categories ADD CONSTRAINT categories_pkey PRIMARY KEY (site, id);

-- +goose Down
-- Best effort: only m.xsw.tw's categories, with numeric ids, go back. With categories of
-- another site it refuses, and changes nothing: delete them first.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM categories WHERE site <> 'xsw' OR id !~ '^[0-9]+$') THEN
        RAISE EXCEPTION 'categories holds categories of sites other than xsw, or ids that are not numbers: delete them before migrating below 00014';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE categories
    DROP CONSTRAINT categories_pkey,
    ALTER COLUMN id TYPE integer USING id::integer,
    DROP COLUMN position,
    DROP COLUMN site;
ALTER TABLE categories ADD CONSTRAINT categories_pkey PRIMARY KEY (id);
