-- +goose Up
-- Books, as their home pages describe them. id is the site's numeric book id.
CREATE TABLE books (
    id                 bigint PRIMARY KEY,
    name               text NOT NULL,
    author             text NOT NULL DEFAULT '',
    genre              text NOT NULL DEFAULT '',
    status             text NOT NULL DEFAULT '',
    finished           boolean NOT NULL DEFAULT false,
    update_text        text NOT NULL DEFAULT '',      -- the site's own update-time text
    source_updated_at  timestamptz,                    -- update_text parsed (Taiwan time)
    description        text NOT NULL DEFAULT '',
    cover_url          text NOT NULL DEFAULT '',
    last_chapter_num   integer,                        -- position of the newest chapter, once the TOC is known
    last_chapter_title text NOT NULL DEFAULT '',
    last_chapter_url   text NOT NULL DEFAULT '',
    last_chapter_id    bigint,
    source_url         text NOT NULL DEFAULT '',
    toc_pages          integer,                        -- table-of-contents pages of the last completed sync
    chapter_total      integer,                        -- chapters the last completed sync published
    sync_job_id        text,                           -- job of the last completed sync
    synced_at          timestamptz,                    -- when the last sync completed
    checked_at         timestamptz,                    -- when the home page was last read
    changed_at         timestamptz,                    -- when the metadata last changed
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Chapter references, numbered by position in the whole table of contents, and their
-- text once a reader opened them.
CREATE TABLE chapters (
    book_id    bigint  NOT NULL,
    num        integer NOT NULL CHECK (num > 0),
    chapter_id bigint  NOT NULL,
    title      text    NOT NULL,
    url        text    NOT NULL,
    title_num  integer,                                -- number written in the title (cross-check only)
    text       text,                                   -- NULL until fetched
    fetched_at timestamptz,                            -- when text was fetched
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (book_id, num)
);
CREATE INDEX chapters_book_chapter_id ON chapters (book_id, chapter_id);

CREATE TABLE categories (
    id         integer PRIMARY KEY,
    name       text NOT NULL,
    url        text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Finished sync jobs: completed, failed for good, or skipped.
CREATE TABLE job_history (
    job_id      text PRIMARY KEY,
    book_id     bigint NOT NULL,
    lane        text NOT NULL,
    priority    integer NOT NULL DEFAULT 0,
    status      text NOT NULL CHECK (status IN ('completed', 'failed', 'skipped')),
    attempts    integer NOT NULL DEFAULT 1,
    fetcher     text NOT NULL DEFAULT '',
    enqueued_at timestamptz,
    started_at  timestamptz,
    finished_at timestamptz NOT NULL,
    duration_ms bigint,
    chapters    integer,
    requests    integer,
    error       text NOT NULL DEFAULT '',
    permanent   boolean NOT NULL DEFAULT false,
    dead        boolean NOT NULL DEFAULT false
);
CREATE INDEX job_history_finished ON job_history (finished_at);
CREATE INDEX job_history_status ON job_history (status, finished_at DESC);

-- +goose Down
DROP TABLE job_history;
DROP TABLE categories;
DROP TABLE chapters;
DROP TABLE books;
