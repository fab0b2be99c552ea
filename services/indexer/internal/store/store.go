// Package store is the indexer's Postgres access: the embedded schema migrations, the
// idempotent upserts that turn fetched events into rows, and the reads the indexer and
// its tests need. Every write is safe to repeat: delivery is at least once, so applying an
// event a second time, or an older event after a newer one, changes nothing.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/database"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the numbered SQL migrations of the schema, in goose's format.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations") // a valid constant path: never fails
	return sub
}

// Migrate applies every migration the database behind pool has not seen.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	return database.Migrate(ctx, pool, Migrations(), logger)
}

// ErrNotFound is returned by the reads when the row does not exist.
var ErrNotFound = errors.New("not found")

// RejectedError reports that one event of a batch holds data Postgres refuses (a number
// out of range, a NUL byte in a text): applying it again can never succeed. The batch's
// transaction was rolled back; the other events may be applied without it.
type RejectedError struct {
	// Index is the position of the refused event in the slice given to Apply.
	Index int
	Err   error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("event %d rejected: %v", e.Index, e.Err)
}

func (e *RejectedError) Unwrap() error { return e.Err }

// errOutOfRange marks a number that does not fit its column.
var errOutOfRange = errors.New("value out of range")

// rejected reports whether err is caused by the data rather than by the database being
// unavailable: Postgres's data exceptions (class 22) and integrity violations (class 23),
// and values checked before they were sent.
func rejected(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		class := pgErr.Code[:2]
		return class == "22" || class == "23"
	}
	return errors.Is(err, errOutOfRange)
}

// Store writes and reads the book tables. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// BookState is what a committed batch left of one book, as BookIndexed announces it.
type BookState struct {
	BookID string
	// Chapters is how many chapter refs are stored.
	Chapters int
	// Complete is true when every chapter of the last completed sync is stored: the sync
	// is complete when its refs 1..chapter_total are all there, whatever order the
	// completion and the pages arrived in.
	Complete bool
	// HasMeta is true once the book's home page was stored.
	HasMeta bool
}

// Result is what Apply did.
type Result struct {
	// Changed[i] counts the rows event i inserted, updated or deleted; 0 means it was
	// already known, or older than what is stored.
	Changed []int64
	// Books holds the state after the batch of every book the batch wrote about (metadata,
	// TOC pages, chapter text, sync completion, purged texts), in the order they were
	// first touched.
	Books []BookState
}

// Apply writes evs in order in one transaction: all of them or none. Each event must be
// a pointer to one of the payloads the indexer consumes (*events.BookFetched,
// *events.TOCPageFetched, *events.ChapterFetched, *events.CategoriesFetched,
// *events.JobEvent, *events.BookPurgeRequested); started and retrying job events write
// nothing. When Postgres refuses the data of one event the error is a *RejectedError
// naming it.
//
// The statements are pipelined and a book's table-of-contents pages are written
// together (see writer), with the rows and counts that writing each event's statements
// in turn would leave.
func (s *Store) Apply(ctx context.Context, evs []events.Payload) (Result, error) {
	res, err := s.apply(ctx, evs, true)
	if _, ok := errors.AsType[*RejectedError](err); ok {
		// Pages written together fail together: write each page on its own to name the
		// event Postgres refuses.
		return s.apply(ctx, evs, false)
	}
	return res, err
}

// apply is Apply, merging each book's pages into one statement when merge is set.
func (s *Store) apply(ctx context.Context, evs []events.Payload, merge bool) (Result, error) {
	var res Result
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		w := newWriter(tx, len(evs), merge)
		var touched []int64
		seen := make(map[int64]bool)
		for i, ev := range evs {
			book, err := w.apply(ctx, i, ev)
			if err != nil {
				return w.fail(ctx, i, err)
			}
			if book != 0 && !seen[book] {
				seen[book] = true
				touched = append(touched, book)
			}
		}
		var err error
		res.Books, err = w.settle(ctx, touched)
		res.Changed = w.changed
		return err
	})
	if ee, ok := errors.AsType[*eventError](err); ok {
		switch {
		case ee.event < 0:
			return Result{}, ee.err
		case rejected(ee.err):
			return Result{}, &RejectedError{Index: ee.event, Err: ee.err}
		}
		return Result{}, fmt.Errorf("apply event %d (%T): %w", ee.event, evs[ee.event], ee.err)
	}
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

func bookID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("book id %q: %w", s, errOutOfRange)
	}
	return id, nil
}

// int32s checks that every value fits Postgres's integer.
func int32s(vals ...int) error {
	for _, v := range vals {
		if v < math.MinInt32 || v > math.MaxInt32 {
			return fmt.Errorf("%d: %w", v, errOutOfRange)
		}
	}
	return nil
}

// nullID parses an optional chapter id; anything but digits is stored as NULL.
func nullID(s string) *int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return &v
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// putBook upserts a book's metadata. An event older than the stored one changes nothing;
// changed_at moves only when a metadata field differs.
func (w *writer) putBook(ctx context.Context, i int, id int64, e *events.BookFetched) error {
	m := e.Book
	n, err := w.send(ctx, i, fmt.Sprintf("upsert book %d", id), `
INSERT INTO books AS b (id, name, author, genre, status, finished, update_text,
    source_updated_at, description, cover_url, last_chapter_title, last_chapter_url,
    last_chapter_id, source_url, checked_at, changed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name,
    author = EXCLUDED.author,
    genre = EXCLUDED.genre,
    status = EXCLUDED.status,
    finished = EXCLUDED.finished,
    update_text = EXCLUDED.update_text,
    source_updated_at = EXCLUDED.source_updated_at,
    description = EXCLUDED.description,
    cover_url = EXCLUDED.cover_url,
    last_chapter_title = EXCLUDED.last_chapter_title,
    last_chapter_url = EXCLUDED.last_chapter_url,
    last_chapter_id = EXCLUDED.last_chapter_id,
    source_url = EXCLUDED.source_url,
    checked_at = EXCLUDED.checked_at,
    changed_at = CASE
        WHEN (b.name, b.author, b.genre, b.status, b.finished, b.update_text,
              b.source_updated_at, b.description, b.cover_url, b.last_chapter_title,
              b.last_chapter_url, b.last_chapter_id, b.source_url)
          IS DISTINCT FROM
             (EXCLUDED.name, EXCLUDED.author, EXCLUDED.genre, EXCLUDED.status,
              EXCLUDED.finished, EXCLUDED.update_text, EXCLUDED.source_updated_at,
              EXCLUDED.description, EXCLUDED.cover_url, EXCLUDED.last_chapter_title,
              EXCLUDED.last_chapter_url, EXCLUDED.last_chapter_id, EXCLUDED.source_url)
        THEN EXCLUDED.checked_at ELSE b.changed_at END,
    updated_at = now()
WHERE b.checked_at IS NULL OR b.checked_at < EXCLUDED.checked_at`,
		id, m.Name, m.Author, m.Genre, m.Status, m.Finished, m.UpdateText, m.UpdatedAt,
		m.Description, m.CoverURL, m.LastChapterTitle, m.LastChapterURL,
		nullID(m.LastChapterID), m.SourceURL, e.FetchedAt)
	if err == nil && n > 0 {
		w.refreshLastChapter(i, id)
	}
	return err
}

// refreshLastChapter sets books.last_chapter_num to the position of the chapter whose id
// is books.last_chapter_id when that ref is stored, else to the chapter total of the last
// completed sync, else leaves it.
func (w *writer) refreshLastChapter(i int, id int64) {
	w.exec(i, fmt.Sprintf("last chapter of book %d", id), `
WITH n AS (
    SELECT b.id, COALESCE(
        (SELECT c.num FROM chapters c
          WHERE c.book_id = b.id AND c.chapter_id = b.last_chapter_id
          ORDER BY c.num DESC LIMIT 1),
        b.chapter_total, b.last_chapter_num) AS num
    FROM books b WHERE b.id = $1
)
UPDATE books b SET last_chapter_num = n.num, updated_at = now()
FROM n
WHERE b.id = n.id AND b.last_chapter_num IS DISTINCT FROM n.num`, id)
}

// putTOCPagesSeen records the page count a table-of-contents page reported, unless a
// newer page already did. A book without a row yet gets none: its metadata, published
// first by every sync, creates it.
func (w *writer) putTOCPagesSeen(i int, id int64, e *events.TOCPageFetched) {
	w.exec(i, fmt.Sprintf("toc pages of book %d", id), `
UPDATE books SET toc_pages_seen = $2, toc_seen_at = $3
WHERE id = $1 AND (toc_seen_at IS NULL OR toc_seen_at <= $3)
  AND (toc_pages_seen, toc_seen_at) IS DISTINCT FROM ($2, $3)`, id, int32(e.TotalPages), e.FetchedAt)
}

// purgeTexts forgets the chapter texts of a book fetched up to the request's time, so
// that they are fetched again when next read.
func (w *writer) purgeTexts(i int, id int64, e *events.BookPurgeRequested) {
	w.exec(i, fmt.Sprintf("purge chapter texts of book %d", id), `
UPDATE chapters SET text = NULL, fetched_at = NULL, updated_at = now()
WHERE book_id = $1 AND text IS NOT NULL AND (fetched_at IS NULL OR fetched_at <= $2)`, id, e.RequestedAt)
}

// putChapter stores a chapter's text on its ref when the chapter id matches, or inserts
// the ref with its text when the table of contents has not listed it yet. Text for a ref
// that now names another chapter is dropped: it belongs to a chapter that moved.
func (w *writer) putChapter(i int, id int64, e *events.ChapterFetched) error {
	if err := int32s(e.Number); err != nil {
		return fmt.Errorf("chapter number: %w", err)
	}
	cid, err := strconv.ParseInt(e.ChapterID, 10, 64)
	if err != nil {
		return fmt.Errorf("chapter id %q: %w", e.ChapterID, errOutOfRange)
	}
	w.exec(i, fmt.Sprintf("store chapter %d of book %d", e.Number, id), `
INSERT INTO chapters AS c (book_id, num, chapter_id, title, url, text, fetched_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (book_id, num) DO UPDATE SET
    text = EXCLUDED.text,
    fetched_at = EXCLUDED.fetched_at,
    title = CASE WHEN EXCLUDED.title <> '' THEN EXCLUDED.title ELSE c.title END,
    updated_at = now()
WHERE c.chapter_id = EXCLUDED.chapter_id
  AND (c.fetched_at IS NULL OR c.fetched_at < EXCLUDED.fetched_at)`,
		id, int32(e.Number), cid, e.Title, e.URL, e.Text, e.FetchedAt)
	return nil
}

// putCategories upserts the site's categories in one statement; an older listing does
// not overwrite a newer one.
func (w *writer) putCategories(i int, e *events.CategoriesFetched) error {
	last := make(map[int]int, len(e.Categories))
	for k, c := range e.Categories {
		last[c.ID] = k
	}
	ids := make([]int32, 0, len(last))
	names := make([]string, 0, len(last))
	urls := make([]string, 0, len(last))
	for k, c := range e.Categories {
		if last[c.ID] != k {
			continue
		}
		if err := int32s(c.ID); err != nil {
			return fmt.Errorf("category id: %w", err)
		}
		ids = append(ids, int32(c.ID))
		names = append(names, c.Name)
		urls = append(urls, c.URL)
	}
	if len(ids) == 0 {
		return nil
	}
	w.exec(i, "upsert categories", `
INSERT INTO categories AS k (id, name, url, updated_at)
SELECT r.id, r.name, r.url, $4
FROM unnest($1::int[], $2::text[], $3::text[]) AS r(id, name, url)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, url = EXCLUDED.url, updated_at = EXCLUDED.updated_at
WHERE k.updated_at <= EXCLUDED.updated_at
  AND (k.name, k.url) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.url)`,
		ids, names, urls, e.FetchedAt)
	return nil
}

// completeSync records a completed sync on the book (creating a nameless row when its
// metadata never arrived), drops the refs beyond the new end of a book that shrank and
// refreshes last_chapter_num. A completion older than the stored one changes nothing.
func (w *writer) completeSync(ctx context.Context, i int, id int64, e *events.JobEvent) error {
	if err := int32s(e.Chapters, e.TOCPages); err != nil {
		return fmt.Errorf("completed job %s: %w", e.JobID, err)
	}
	// A resync that found the book unchanged read no metadata, but it did check the book.
	var checkedAt *time.Time
	if e.Unchanged {
		checkedAt = &e.At
	}
	n, err := w.send(ctx, i, fmt.Sprintf("complete sync of book %d", id), `
INSERT INTO books AS b (id, name, chapter_total, toc_pages, sync_job_id, synced_at, checked_at)
VALUES ($1, '', $2, $3, $4, $5, $6)
ON CONFLICT (id) DO UPDATE SET
    chapter_total = EXCLUDED.chapter_total,
    toc_pages = EXCLUDED.toc_pages,
    sync_job_id = EXCLUDED.sync_job_id,
    synced_at = EXCLUDED.synced_at,
    checked_at = greatest(b.checked_at, EXCLUDED.checked_at),
    updated_at = now()
WHERE b.synced_at IS NULL OR b.synced_at < EXCLUDED.synced_at`,
		id, int32(e.Chapters), int32(e.TOCPages), e.JobID, e.At, checkedAt)
	if err != nil || n == 0 {
		return err
	}
	// Refs a later sync listed (after this one finished) are not this sync's to drop.
	w.exec(i, fmt.Sprintf("trim chapters of book %d", id), `
DELETE FROM chapters
WHERE book_id = $1 AND num > $2 AND (listed_at IS NULL OR listed_at <= $3)`,
		id, int32(e.Chapters), e.At)
	w.refreshLastChapter(i, id)
	return nil
}

// recordJob upserts the history row of a finished job. The same job may fail first and
// complete later (or an event be redelivered): the one that finished last wins, and a
// completion wins a tie.
func (w *writer) recordJob(i int, id int64, e *events.JobEvent) error {
	if err := int32s(e.Priority, e.Attempt, e.Chapters, e.Requests); err != nil {
		return fmt.Errorf("job %s: %w", e.JobID, err)
	}
	attempts := max(e.Attempt, 1)
	var duration *int64
	if !e.StartedAt.IsZero() && !e.At.Before(e.StartedAt) {
		ms := e.At.Sub(e.StartedAt).Milliseconds()
		duration = &ms
	}
	var chapters, requests *int32
	if e.Kind == events.JobCompleted || e.Chapters != 0 {
		v := int32(e.Chapters)
		chapters = &v
	}
	if e.Kind == events.JobCompleted || e.Requests != 0 {
		v := int32(e.Requests)
		requests = &v
	}
	msg := e.Error
	if msg == "" {
		msg = e.Reason
	}
	w.exec(i, "record job "+e.JobID, `
INSERT INTO job_history AS h (job_id, book_id, lane, priority, status, attempts, fetcher,
    enqueued_at, started_at, finished_at, duration_ms, chapters, requests, error,
    permanent, dead)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (job_id) DO UPDATE SET
    book_id = EXCLUDED.book_id,
    lane = EXCLUDED.lane,
    priority = EXCLUDED.priority,
    status = EXCLUDED.status,
    attempts = EXCLUDED.attempts,
    fetcher = EXCLUDED.fetcher,
    enqueued_at = EXCLUDED.enqueued_at,
    started_at = EXCLUDED.started_at,
    finished_at = EXCLUDED.finished_at,
    duration_ms = EXCLUDED.duration_ms,
    chapters = EXCLUDED.chapters,
    requests = EXCLUDED.requests,
    error = EXCLUDED.error,
    permanent = EXCLUDED.permanent,
    dead = EXCLUDED.dead
WHERE h.finished_at < EXCLUDED.finished_at
   OR (h.finished_at = EXCLUDED.finished_at
       AND h.status <> 'completed' AND EXCLUDED.status = 'completed')`,
		e.JobID, id, string(e.Lane), int32(e.Priority), string(e.Kind), int32(attempts),
		e.Fetcher, nullTime(e.EnqueuedAt), nullTime(e.StartedAt), e.At, duration,
		chapters, requests, msg, e.Permanent, e.Dead)
	return nil
}

// bookStatesSQL reads the state of the books whose ids are $1, in that order.
const bookStatesSQL = `
SELECT ids.id::text,
       COALESCE(c.total, 0),
       b.chapter_total IS NOT NULL AND COALESCE(c.within, 0) >= b.chapter_total,
       b.checked_at IS NOT NULL
FROM unnest($1::bigint[]) WITH ORDINALITY AS ids(id, ord)
LEFT JOIN books b ON b.id = ids.id
LEFT JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE ch.num <= b.chapter_total) AS within
    FROM chapters ch WHERE ch.book_id = ids.id
) c ON true
ORDER BY ids.ord`

// scanBookStates reads the rows of bookStatesSQL and closes them.
func scanBookStates(rows pgx.Rows) ([]BookState, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (BookState, error) {
		var s BookState
		var complete, hasMeta *bool
		err := r.Scan(&s.BookID, &s.Chapters, &complete, &hasMeta)
		s.Complete = complete != nil && *complete
		s.HasMeta = hasMeta != nil && *hasMeta
		return s, err
	})
}

// BookStates reads the current state of the given books (ids as in events).
func (s *Store) BookStates(ctx context.Context, bookIDs ...string) ([]BookState, error) {
	ids := make([]int64, 0, len(bookIDs))
	for _, b := range bookIDs {
		id, err := bookID(b)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, _ := s.pool.Query(ctx, bookStatesSQL, ids)
	states, err := scanBookStates(rows)
	if err != nil {
		return nil, fmt.Errorf("book states: %w", err)
	}
	return states, nil
}

// PruneHistory deletes the job history rows that finished before olderThan and reports
// how many it deleted.
func (s *Store) PruneHistory(ctx context.Context, olderThan time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM job_history WHERE finished_at < $1`, olderThan)
	if err != nil {
		return 0, fmt.Errorf("prune job history before %s: %w", olderThan.Format(time.RFC3339), err)
	}
	// The read-count batch ids only guard against redelivery, which happens within
	// minutes: they go with the history.
	if _, err := s.pool.Exec(ctx, `DELETE FROM read_batches WHERE applied_at < $1`, olderThan); err != nil {
		return 0, fmt.Errorf("prune read batches before %s: %w", olderThan.Format(time.RFC3339), err)
	}
	return tag.RowsAffected(), nil
}

// addReads adds a gateway's read counts to the books they name, once per batch.
func (w *writer) addReads(ctx context.Context, i int, e *events.BooksRead) error {
	n, err := w.send(ctx, i, "read batch "+e.BatchID,
		`INSERT INTO read_batches (batch_id) VALUES ($1) ON CONFLICT DO NOTHING`, e.BatchID)
	if err != nil || n == 0 {
		return err // n == 0: counted already
	}
	ids := make([]int64, 0, len(e.Reads))
	counts := make([]int64, 0, len(e.Reads))
	for id, n := range e.Reads {
		v, err := bookID(id)
		if err != nil {
			return err
		}
		ids, counts = append(ids, v), append(counts, n)
	}
	w.exec(i, "add reads of batch "+e.BatchID, `
UPDATE books AS b SET read_count = b.read_count + r.n, read_at = greatest(b.read_at, $3)
FROM unnest($1::bigint[], $2::bigint[]) AS r(id, n)
WHERE b.id = r.id`, ids, counts, e.At)
	return nil
}
