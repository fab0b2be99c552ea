// Package store is the indexer's Postgres access: the embedded schema migrations, the
// idempotent upserts that turn fetched events into rows, and the reads the indexer and
// its tests need. Every write is safe to repeat: delivery is at least once, so applying an
// event a second time, or an older event after a newer one, changes nothing.
//
// A book is identified by its site and the site's id for it, both strings: every row of
// books, chapters and job_history names its site, and every statement keys by (site, id).
// Categories are a site's own.
package store

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/migrate"
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
	return migrate.Up(ctx, pool, Migrations(), logger)
}

// ErrNotFound is returned by the reads when the row does not exist.
var ErrNotFound = errors.New("not found")

// RejectedError reports that one event of a batch holds data Postgres refuses (a number
// out of range, a NUL byte in a text) or an id no site spells: applying it again can
// never succeed. The batch's transaction was rolled back; the other events may be
// applied without it.
type RejectedError struct {
	// Index is the position of the refused event in the slice given to Apply.
	Index int
	Err   error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("event %d rejected: %v", e.Index, e.Err)
}

func (e *RejectedError) Unwrap() error { return e.Err }

// errOutOfRange marks a number that does not fit its column, errBadID an id that is not
// a valid site, book, chapter or category id.
var (
	errOutOfRange = errors.New("value out of range")
	errBadID      = errors.New("invalid id")
)

// rejected reports whether err is caused by the data rather than by the database being
// unavailable: Postgres's data exceptions (class 22) and integrity violations (class 23),
// and values checked before they were sent.
func rejected(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		class := pgErr.Code[:2]
		return class == "22" || class == "23"
	}
	return errors.Is(err, errOutOfRange) || errors.Is(err, errBadID)
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
	Site   string
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
	// Refused lists the events the batch did not apply because they would shrink a
	// stored book sharply (see ShrinkFloor), in the order of the events.
	Refused []Refusal
}

// ShrinkFloor is the share of a book's chapters that a sync must list for its chapter
// list to replace the stored one. A sync that lists no chapter while the book has held
// any, or fewer than ShrinkFloor × the most it has held (fewer than half: 155 or less of
// 312), is taken as the site failing (an error page read as an empty list, a list cut
// short), not as the author deleting chapters: nothing stored is deleted, renumbered or
// recounted, and none of the sync's metadata stays (see below). Its completion is
// recorded in job_history as failed, with the reason (see Refusal.Reason), and reported
// in Result.Refused, for which the indexer publishes a dead letter that an operator can
// replay at once. Otherwise the book is synced again when the refresh scheduler next
// finds it due: the refused sync marked it checked (books.checked_at is the attempt's
// time), so that a site failing for hours is not asked every minute, and left it
// unfinished if it was, so that it is due again after REFRESH_INTERVAL, not
// REFRESH_FINISHED_INTERVAL. A smaller shrink (an author removing a few chapters)
// applies as it always did.
//
// What the book holds is the larger of the chapter total of its last applied sync and
// the number of its chapter refs: pages do not change the first, so every page and the
// completion of one sync are judged against the same number. The most it has held
// (books.chapter_peak, its high-water mark) is the largest of that number as of each
// applied completion and of the chapter totals applied. Judging against the mark rather
// than against what is stored now means a book cannot be worn down by steps that each
// keep more than half (312, then 160, then 81): below half its mark, every sync is
// refused, however many steps it took. A site that really removed that many chapters
// is refused too, every time, until an operator accepts the shrink
// (events.BookShrinkAccepted, which records books.shrink_accepted on a stored book):
// while the book has an acceptance, no sync of it is refused, at its last page or at its
// completion, whatever it lists, none included. The first completion applied after it
// applies as any other (the refs past its end are deleted), sets the mark to its own
// count (the only way the mark goes down) and uses the acceptance up. An acceptance is
// recorded only when it is newer than the last one recorded (books.shrink_accepted_at,
// kept once used), so that one delivered again after its use does not arm the book
// again; the time a sync completed is not compared with it, as a sync that was under
// way when the operator accepted may complete after the acceptance, or on a clock that
// runs behind.
// A forced sync (BookRequested.Force: the admin force-resync and the replay of a dead
// letter) is judged like any other: the flag only makes the fetcher skip its
// recently-synced check, and never reaches the indexer.
//
// A sync publishes its metadata (BookFetched) before its chapter list, so the verdict
// comes after the metadata is written. The metadata a sync's BookFetched replaced is kept
// on the book (books.meta_before, for the job books.meta_job) until the verdict: a
// refused sync puts it back (status and finished, the last chapter and its position,
// the description and the rest, changed_at, the page count seen), an applied one drops
// it. When the metadata of several syncs awaits a verdict, the one kept is the oldest,
// for the newest job: a refusal of that job puts back what the book held before all of
// them.
//
// The refusal is decided where the sync's chapter count is known: at its completion
// (JobEvent completed, Chapters), and at its last table-of-contents page (Page ==
// TotalPages: the highest chapter number it lists), which is the whole list on a site
// that lists a book on one page and arrives before the completion. The pages before the
// last of a paginated list are written as they come (the first chapters are served
// while the walk goes on); they only update the refs at their own positions, and a
// list that lost its tail lists there what is stored. A last page fetched out of turn
// for a reader (no completion follows) is refused the same way, with no dead letter.
const ShrinkFloor = 0.5

// Refusal is a sync's event that Apply did not apply, by the rule of ShrinkFloor.
type Refusal struct {
	// Event is the index of the event in the batch: a completed *events.JobEvent, or the
	// last *events.TOCPageFetched of a sync.
	Event  int
	Site   string
	BookID string
	JobID  string
	// Listed is how many chapters the sync listed; Stored how many the book holds; Peak
	// the most it has held (at least Stored), which the sync was judged against.
	Listed int
	Stored int
	Peak   int
}

// Reason says why the sync was refused, as job_history and the dead letter record it.
func (r Refusal) Reason() string {
	if r.Peak > r.Stored {
		return fmt.Sprintf("shrink refused: the site listed %d chapters, %d stored, %d at the book's peak",
			r.Listed, r.Stored, r.Peak)
	}
	return fmt.Sprintf("shrink refused: the site listed %d chapters, %d stored", r.Listed, r.Stored)
}

// storedSQL is the number of chapters the book $1, $2 holds, by the rule of ShrinkFloor.
const storedSQL = `greatest(
    (SELECT sb.chapter_total FROM books sb WHERE sb.site = $1 AND sb.id = $2),
    (SELECT count(*) FROM chapters sc WHERE sc.site = $1 AND sc.book_id = $2))::int`

// AcceptanceLifetime is how long an operator's acceptance of a shrink waits for the sync
// it is for: one that no applied sync used within it of its recording (the sync died,
// the site refused us meanwhile) lapses, so that the guard is not left off for a book,
// for a later sync reading a broken page to empty it. countsSQL says it in SQL, and
// TestShrinkAcceptanceLapses holds the two together from either side.
const AcceptanceLifetime = time.Hour

// countsSQL reads, as the columns stored and peak, the chapters the book $1, $2 holds
// and the most it has held, by the rule of ShrinkFloor, and, as accepted, whether an
// operator's acceptance of a shrink, recorded within AcceptanceLifetime, awaits its next
// applied sync.
const countsSQL = `SELECT s.stored, greatest(s.stored, pb.chapter_peak) AS peak,
    COALESCE(pb.shrink_accepted AND pb.shrink_armed_at > now() - interval '1 hour', false) AS accepted
FROM (SELECT ` + storedSQL + ` AS stored) s
LEFT JOIN books pb ON pb.site = $1 AND pb.id = $2`

// refusedSQL is the rule of ShrinkFloor in SQL: whether a sync listing listed chapters
// (an integer expression) may not replace the chapters of a book whose counts are the
// row counts (a row with the columns peak and accepted of countsSQL).
func refusedSQL(listed, counts string) string {
	return fmt.Sprintf("(NOT %[2]s.accepted AND %[2]s.peak > 0 AND (%[1]s = 0 OR %[1]s < %[2]s.peak * %[3]s))",
		listed, counts, strconv.FormatFloat(ShrinkFloor, 'f', -1, 64))
}

// refusedForBookSQL is refusedSQL against the counts of the book $1, $2, read once; a
// scalar subquery, which Postgres runs only when it is needed.
func refusedForBookSQL(listed string) string {
	return "(SELECT " + refusedSQL(listed, "c") + " FROM (" + countsSQL + ") c)"
}

// book is a book's identity: its site and the site's id for it.
type book struct {
	site, id string
}

// String spells the book as events.Key does, for errors.
func (b book) String() string { return events.Key(b.site, b.id) }

// bookOf checks a book's identity as events carry it.
func bookOf(site, id string) (book, error) {
	if !events.ValidSiteID(site) || !events.ValidBookID(id) {
		return book{}, fmt.Errorf("book %q of site %q: %w", id, site, errBadID)
	}
	return book{site: site, id: id}, nil
}

// Apply writes evs in order in one transaction: all of them or none. Each event must be
// a pointer to one of the payloads the indexer consumes (*events.BookFetched,
// *events.TOCPageFetched, *events.ChapterFetched, *events.CategoriesFetched,
// *events.JobEvent, *events.BookPurgeRequested, *events.BookShrinkAccepted,
// *events.BooksRead); started and retrying job events write nothing. When Postgres
// refuses the data of one event, or it names a book by an invalid id, the error is a
// *RejectedError naming it.
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
		var touched []book
		seen := make(map[book]bool)
		for i, ev := range evs {
			b, err := w.apply(ctx, i, ev)
			if err != nil {
				return w.fail(ctx, i, err)
			}
			if b != (book{}) && !seen[b] {
				seen[b] = true
				touched = append(touched, b)
			}
		}
		var err error
		res.Books, err = w.settle(ctx, touched)
		res.Changed = w.changed
		res.Refused = w.refused
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

// int32s checks that every value fits Postgres's integer.
func int32s(vals ...int) error {
	for _, v := range vals {
		if v < math.MinInt32 || v > math.MaxInt32 {
			return fmt.Errorf("%d: %w", v, errOutOfRange)
		}
	}
	return nil
}

// chapterID checks a chapter id an event carries.
func chapterID(s string) error {
	if !events.ValidID(s) {
		return fmt.Errorf("chapter id %q: %w", s, errBadID)
	}
	return nil
}

// nullID returns an optional id as stored: NULL when it is not a valid id.
func nullID(s string) *string {
	if !events.ValidID(s) {
		return nil
	}
	return &s
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// volumesJSON encodes a book's volume headers for books.volumes: [] when it has none.
func volumesJSON(vs []events.Volume) (string, error) {
	if len(vs) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(vs)
	if err != nil {
		return "", fmt.Errorf("volumes: %w", err)
	}
	return string(b), nil
}

// metaColumns are the columns of books that a sync's metadata changes, directly or
// through the pages that follow it, and that a refused sync puts back (see ShrinkFloor).
// checked_at is not among them: it records the refused attempt.
var metaColumns = []string{"name", "author", "genre", "status", "finished", "update_text",
	"source_updated_at", "description", "cover_url", "last_chapter_num", "last_chapter_title",
	"last_chapter_url", "last_chapter_id", "source_url", "volumes", "changed_at",
	"toc_pages_seen", "toc_seen_at"}

// metaBeforeSQL builds books.meta_before from the metaColumns of the row b.
func metaBeforeSQL() string {
	var sb strings.Builder
	sb.WriteString("jsonb_build_object(")
	for k, c := range metaColumns {
		if k > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "'%[1]s', b.%[1]s", c)
	}
	sb.WriteString(")")
	return sb.String()
}

// putBook upserts a book's metadata. An event older than the stored one changes nothing;
// changed_at moves only when a metadata field differs. Over the metadata of a book
// already described, the metadata it replaces is kept for the event's job until that
// sync's verdict (see ShrinkFloor); a book without metadata yet keeps nothing, as
// anything its page says is more than it has.
func (w *writer) putBook(ctx context.Context, i int, b book, e *events.BookFetched) error {
	m := e.Book
	volumes, err := volumesJSON(m.Volumes)
	if err != nil {
		return err
	}
	var job *string
	if e.JobID != "" {
		job = &e.JobID
	}
	n, err := w.send(ctx, i, "upsert book "+b.String(), `
INSERT INTO books AS b (site, id, name, author, genre, status, finished, update_text,
    source_updated_at, description, cover_url, last_chapter_title, last_chapter_url,
    last_chapter_id, source_url, volumes, checked_at, changed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb, $17, $17)
ON CONFLICT (site, id) DO UPDATE SET
    meta_before = CASE WHEN $18::text IS NOT NULL AND b.checked_at IS NOT NULL
        THEN COALESCE(b.meta_before, `+metaBeforeSQL()+`) ELSE b.meta_before END,
    meta_job = CASE WHEN $18::text IS NOT NULL AND b.checked_at IS NOT NULL
        THEN $18::text ELSE b.meta_job END,
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
    volumes = EXCLUDED.volumes,
    checked_at = EXCLUDED.checked_at,
    changed_at = CASE
        WHEN (b.name, b.author, b.genre, b.status, b.finished, b.update_text,
              b.source_updated_at, b.description, b.cover_url, b.last_chapter_title,
              b.last_chapter_url, b.last_chapter_id, b.source_url, b.volumes)
          IS DISTINCT FROM
             (EXCLUDED.name, EXCLUDED.author, EXCLUDED.genre, EXCLUDED.status,
              EXCLUDED.finished, EXCLUDED.update_text, EXCLUDED.source_updated_at,
              EXCLUDED.description, EXCLUDED.cover_url, EXCLUDED.last_chapter_title,
              EXCLUDED.last_chapter_url, EXCLUDED.last_chapter_id, EXCLUDED.source_url,
              EXCLUDED.volumes)
        THEN EXCLUDED.checked_at ELSE b.changed_at END,
    updated_at = now()
WHERE b.checked_at IS NULL OR b.checked_at < EXCLUDED.checked_at`,
		b.site, b.id, m.Name, m.Author, m.Genre, m.Status, m.Finished, m.UpdateText, m.UpdatedAt,
		m.Description, m.CoverURL, m.LastChapterTitle, m.LastChapterURL,
		nullID(m.LastChapterID), m.SourceURL, volumes, e.FetchedAt, job)
	if err == nil && n > 0 {
		w.refreshLastChapter(i, b)
	}
	return err
}

// refreshLastChapter sets books.last_chapter_num to the position of the chapter whose id
// is books.last_chapter_id when that ref is stored, else to the chapter total of the last
// completed sync, else leaves it.
func (w *writer) refreshLastChapter(i int, b book) {
	w.exec(i, "last chapter of book "+b.String(), `
WITH n AS (
    SELECT b.site, b.id, COALESCE(
        (SELECT c.num FROM chapters c
          WHERE c.site = b.site AND c.book_id = b.id AND c.chapter_id = b.last_chapter_id
          ORDER BY c.num DESC LIMIT 1),
        b.chapter_total, b.last_chapter_num) AS num
    FROM books b WHERE b.site = $1 AND b.id = $2
)
UPDATE books b SET last_chapter_num = n.num, updated_at = now()
FROM n
WHERE b.site = n.site AND b.id = n.id AND b.last_chapter_num IS DISTINCT FROM n.num`, b.site, b.id)
}

// putTOCPagesSeen records the page count a table-of-contents page reported, unless a
// newer page already did. A book without a row yet gets none: its metadata, published
// first by every sync, creates it. Nor does the last page of a sync refused by the rule
// of ShrinkFloor.
func (w *writer) putTOCPagesSeen(i int, b book, e *events.TOCPageFetched) {
	w.exec(i, "toc pages of book "+b.String(), `
UPDATE books SET toc_pages_seen = $3, toc_seen_at = $4
WHERE site = $1 AND id = $2 AND (toc_seen_at IS NULL OR toc_seen_at <= $4)
  AND (toc_pages_seen, toc_seen_at) IS DISTINCT FROM ($3, $4)
  AND ($5::int IS NULL OR NOT `+refusedForBookSQL("$5::int")+`)`,
		b.site, b.id, int32(e.TotalPages), e.FetchedAt, listedBy(e))
}

// listedBy returns the chapter count of the sync whose last page e is: the highest
// chapter number it lists, or 0 for an empty page 1 of 1. It returns nil for a page
// before the last, or an empty last page after others (which says nothing of the count).
func listedBy(e *events.TOCPageFetched) *int32 {
	if e.Page != e.TotalPages || (len(e.Chapters) == 0 && e.Page != 1) {
		return nil
	}
	var n int32
	for _, c := range e.Chapters {
		n = max(n, int32(c.Number)) // checked by tocRefs.add
	}
	return &n
}

// purgeTexts forgets the chapter texts of a book fetched up to the request's time, so
// that they are fetched again when next read.
func (w *writer) purgeTexts(i int, b book, e *events.BookPurgeRequested) {
	w.exec(i, "purge chapter texts of book "+b.String(), `
UPDATE chapters SET text = NULL, fetched_at = NULL, updated_at = now()
WHERE site = $1 AND book_id = $2 AND text IS NOT NULL AND (fetched_at IS NULL OR fetched_at <= $3)`,
		b.site, b.id, e.RequestedAt)
}

// acceptShrink records an operator's acceptance of a shrink on the book (see
// ShrinkFloor), unless the book is not stored (there is nothing to accept) or holds an
// acceptance as new already: a redelivered acceptance, used up or not, changes nothing.
func (w *writer) acceptShrink(i int, b book, e *events.BookShrinkAccepted) {
	w.exec(i, "accept the shrink of book "+b.String(), `
UPDATE books SET shrink_accepted = true, shrink_accepted_at = $3, shrink_armed_at = now(), updated_at = now()
WHERE site = $1 AND id = $2 AND (shrink_accepted_at IS NULL OR shrink_accepted_at < $3)`,
		b.site, b.id, e.AcceptedAt)
}

// putChapter stores a chapter's text on its ref when the chapter id matches, or inserts
// the ref with its text when the table of contents has not listed it yet. Text for a ref
// that now names another chapter is dropped: it belongs to a chapter that moved.
func (w *writer) putChapter(i int, b book, e *events.ChapterFetched) error {
	if err := int32s(e.Number); err != nil {
		return fmt.Errorf("chapter number: %w", err)
	}
	if err := chapterID(e.ChapterID); err != nil {
		return err
	}
	w.exec(i, fmt.Sprintf("store chapter %d of book %s", e.Number, b), `
INSERT INTO chapters AS c (site, book_id, num, chapter_id, title, url, text, fetched_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (site, book_id, num) DO UPDATE SET
    text = EXCLUDED.text,
    fetched_at = EXCLUDED.fetched_at,
    title = CASE WHEN EXCLUDED.title <> '' THEN EXCLUDED.title ELSE c.title END,
    updated_at = now()
WHERE c.chapter_id = EXCLUDED.chapter_id
  AND (c.fetched_at IS NULL OR c.fetched_at < EXCLUDED.fetched_at)`,
		b.site, b.id, int32(e.Number), e.ChapterID, e.Title, e.URL, e.Text, e.FetchedAt)
	return nil
}

// putCategories replaces a site's categories with a listing of its home page: the ones
// it lists are upserted with their position in it (the last of a repeated id counts),
// the others of the site are deleted; other sites' categories are left alone. Every row
// of a site carries the time of the listing that wrote it (updated_at): a listing older
// than one already applied to the site changes nothing, nor does an empty one (a home
// page that lists no category is taken as misread, not as a site without categories).
func (w *writer) putCategories(i int, e *events.CategoriesFetched) error {
	if !events.ValidSiteID(e.Site) {
		return fmt.Errorf("categories of site %q: %w", e.Site, errBadID)
	}
	last := make(map[events.CategoryID]int, len(e.Categories))
	for k, c := range e.Categories {
		if !events.ValidID(string(c.ID)) {
			return fmt.Errorf("category id %q: %w", c.ID, errBadID)
		}
		last[c.ID] = k
	}
	if len(last) == 0 {
		return nil
	}
	ids := make([]string, 0, len(last))
	names := make([]string, 0, len(last))
	urls := make([]string, 0, len(last))
	positions := make([]int32, 0, len(last))
	for k, c := range e.Categories {
		if last[c.ID] != k {
			continue
		}
		if err := int32s(k); err != nil {
			return fmt.Errorf("category position: %w", err)
		}
		ids = append(ids, string(c.ID))
		names = append(names, c.Name)
		urls = append(urls, c.URL)
		positions = append(positions, int32(k))
	}
	const newer = `EXISTS (SELECT 1 FROM categories n WHERE n.site = $1 AND n.updated_at > $3)`
	w.exec(i, "drop categories of site "+e.Site+" no longer listed", `
DELETE FROM categories
WHERE site = $1 AND id <> ALL($2::text[]) AND NOT `+newer,
		e.Site, ids, e.FetchedAt)
	w.exec(i, "upsert categories of site "+e.Site, `
INSERT INTO categories AS k (site, id, name, url, position, updated_at)
SELECT $1, r.id, r.name, r.url, r.position, $3
FROM unnest($2::text[], $4::text[], $5::text[], $6::int[]) AS r(id, name, url, position)
WHERE NOT `+newer+`
ON CONFLICT (site, id) DO UPDATE SET
    name = EXCLUDED.name, url = EXCLUDED.url, position = EXCLUDED.position,
    updated_at = EXCLUDED.updated_at
WHERE (k.name, k.url, k.position, k.updated_at)
      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.url, EXCLUDED.position, EXCLUDED.updated_at)`,
		e.Site, ids, e.FetchedAt, names, urls, positions)
	return nil
}

// completeSync records a completed sync on the book (creating a nameless row when its
// metadata never arrived), raises its high-water mark (or, when the book has an
// acceptance of a shrink, sets the mark to the sync's count and uses the acceptance up),
// drops the metadata its own BookFetched replaced, drops the refs beyond the new end of
// a book that shrank and refreshes last_chapter_num. A completion older than the stored
// one changes nothing. A completion that would shrink the book sharply (see ShrinkFloor)
// changes nothing either but checked_at (the time of the attempt, on a book with
// metadata), and puts back the metadata its sync replaced: completeSync returns its
// refusal, also added to the batch's.
func (w *writer) completeSync(ctx context.Context, i int, b book, e *events.JobEvent) (*Refusal, error) {
	if err := int32s(e.Chapters, e.TOCPages); err != nil {
		return nil, fmt.Errorf("completed job %s: %w", e.JobID, err)
	}
	// A resync that found the book unchanged read no metadata, but it did check the book.
	var checkedAt *time.Time
	if e.Unchanged {
		checkedAt = &e.At
	}
	var stored, peak, applied int64
	var refused bool
	read := func(rows pgx.Rows) error {
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&stored, &peak, &refused, &n}, func() error { return nil })
		applied = n
		return err
	}
	// The verdict is judged (and the upsert sees it) before anything is written: a
	// completion older than the stored sync is never refused, it is only stale.
	w.query(i, "complete sync of book "+b.String(), read, `
WITH cur AS (
    SELECT c.stored, c.peak, c.accepted,
           EXISTS (SELECT 1 FROM books sb WHERE sb.site = $1 AND sb.id = $2 AND sb.synced_at >= $6::timestamptz) AS stale
    FROM (`+countsSQL+`) c
), verdict AS (
    SELECT stored, peak, accepted, NOT stale AND `+refusedSQL("$3::int", "cur")+` AS refused FROM cur
), up AS (
    INSERT INTO books AS b (site, id, name, chapter_total, chapter_peak, toc_pages, sync_job_id, synced_at, checked_at)
    SELECT $1, $2, '', $3::int, CASE WHEN verdict.accepted THEN $3::int ELSE greatest(verdict.peak, $3::int) END,
        $4::int, $5::text, $6::timestamptz, $7::timestamptz
    FROM verdict WHERE NOT verdict.refused
    ON CONFLICT (site, id) DO UPDATE SET
        chapter_total = EXCLUDED.chapter_total,
        chapter_peak = EXCLUDED.chapter_peak, -- by the verdict: its count when accepted, else the greater
        shrink_accepted = false,
        toc_pages = EXCLUDED.toc_pages,
        sync_job_id = EXCLUDED.sync_job_id,
        synced_at = EXCLUDED.synced_at,
        checked_at = greatest(b.checked_at, EXCLUDED.checked_at),
        meta_before = CASE WHEN b.meta_job = EXCLUDED.sync_job_id THEN NULL ELSE b.meta_before END,
        meta_job = CASE WHEN b.meta_job = EXCLUDED.sync_job_id THEN NULL ELSE b.meta_job END,
        updated_at = now()
    WHERE b.synced_at IS NULL OR b.synced_at < EXCLUDED.synced_at
    RETURNING 1
)
SELECT stored, peak, refused, (SELECT count(*) FROM up) FROM verdict`,
		b.site, b.id, int32(e.Chapters), int32(e.TOCPages), e.JobID, e.At, checkedAt)
	if _, err := w.flush(ctx); err != nil {
		return nil, err
	}
	w.changed[i] += applied
	if refused {
		r := Refusal{Event: i, Site: b.site, BookID: b.id, JobID: e.JobID, Listed: e.Chapters,
			Stored: int(stored), Peak: int(peak)}
		w.refused = append(w.refused, r)
		w.restoreRefused()
		// The attempt is the book's last check; it also makes the sync's metadata, should
		// it come after its completion, older than what the book holds.
		w.exec(i, "record refused sync of book "+b.String(), `
UPDATE books SET checked_at = $3, updated_at = now()
WHERE site = $1 AND id = $2 AND checked_at < $3`, b.site, b.id, e.At)
		return &r, nil
	}
	if applied == 0 {
		return nil, nil
	}
	// Refs a later sync listed (after this one finished) are not this sync's to drop.
	w.exec(i, "trim chapters of book "+b.String(), `
DELETE FROM chapters
WHERE site = $1 AND book_id = $2 AND num > $3 AND (listed_at IS NULL OR listed_at <= $4)`,
		b.site, b.id, int32(e.Chapters), e.At)
	w.refreshLastChapter(i, b)
	return nil, nil
}

// restoreRefused queues, for each refusal found since it last ran, the restore of the
// metadata that the refused job's BookFetched replaced (books.meta_before, when
// books.meta_job is that job): the columns of metaColumns as they were, and nothing kept
// any more. A job refused twice (its last page, then its completion) finds nothing kept
// the second time, which changes nothing.
func (w *writer) restoreRefused() {
	set := make([]string, len(metaColumns))
	for k, c := range metaColumns {
		set[k] = c + " = m." + c
	}
	for _, r := range w.refused[w.restored:] {
		w.exec(r.Event, "restore metadata of book "+events.Key(r.Site, r.BookID)+" before refused job "+r.JobID, `
UPDATE books b SET `+strings.Join(set, ", ")+`, meta_before = NULL, meta_job = NULL, updated_at = now()
FROM jsonb_populate_record(NULL::books,
    (SELECT mb.meta_before FROM books mb WHERE mb.site = $1 AND mb.id = $2)) m
WHERE b.site = $1 AND b.id = $2 AND b.meta_job = $3 AND b.meta_before IS NOT NULL`,
			r.Site, r.BookID, r.JobID)
	}
	w.restored = len(w.refused)
}

// refusedJob is the history of a completed job whose sync was refused: failed, for the
// reason, and dead-lettered (the indexer publishes its dead letter once the batch is
// committed, or has the batch redelivered).
func refusedJob(e *events.JobEvent, r *Refusal) *events.JobEvent {
	f := *e
	f.Kind, f.Error, f.Dead, f.Permanent = events.JobFailed, r.Reason(), true, false
	return &f
}

// recordJob upserts the history row of a finished job. The same job may fail first and
// complete later (or an event be redelivered): the one that finished last wins, and a
// completion wins a tie.
func (w *writer) recordJob(i int, b book, e *events.JobEvent) error {
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
INSERT INTO job_history AS h (job_id, site, book_id, lane, priority, status, attempts,
    fetcher, enqueued_at, started_at, finished_at, duration_ms, chapters, requests, error,
    permanent, dead)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (job_id) DO UPDATE SET
    site = EXCLUDED.site,
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
		e.JobID, b.site, b.id, string(e.Lane), int32(e.Priority), string(e.Kind), int32(attempts),
		e.Fetcher, nullTime(e.EnqueuedAt), nullTime(e.StartedAt), e.At, duration,
		chapters, requests, msg, e.Permanent, e.Dead)
	return nil
}

// bookStatesSQL reads the state of the books whose sites are $1 and ids $2, in that
// order.
const bookStatesSQL = `
SELECT ids.site, ids.id,
       COALESCE(c.total, 0),
       b.chapter_total IS NOT NULL AND COALESCE(c.within, 0) >= b.chapter_total,
       b.checked_at IS NOT NULL
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS ids(site, id, ord)
LEFT JOIN books b ON b.site = ids.site AND b.id = ids.id
LEFT JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE ch.num <= b.chapter_total) AS within
    FROM chapters ch WHERE ch.site = ids.site AND ch.book_id = ids.id
) c ON true
ORDER BY ids.ord`

// bookStatesArgs returns the arguments of bookStatesSQL for books.
func bookStatesArgs(books []book) (sites, ids []string) {
	sites = make([]string, len(books))
	ids = make([]string, len(books))
	for k, b := range books {
		sites[k], ids[k] = b.site, b.id
	}
	return sites, ids
}

// scanBookStates reads the rows of bookStatesSQL and closes them.
func scanBookStates(rows pgx.Rows) ([]BookState, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (BookState, error) {
		var s BookState
		var complete, hasMeta *bool
		err := r.Scan(&s.Site, &s.BookID, &s.Chapters, &complete, &hasMeta)
		s.Complete = complete != nil && *complete
		s.HasMeta = hasMeta != nil && *hasMeta
		return s, err
	})
}

// BookStates reads the current state of the given books of site (ids as in events), in
// that order.
func (s *Store) BookStates(ctx context.Context, site string, bookIDs ...string) ([]BookState, error) {
	books := make([]book, 0, len(bookIDs))
	for _, id := range bookIDs {
		b, err := bookOf(site, id)
		if err != nil {
			return nil, err
		}
		books = append(books, b)
	}
	if len(books) == 0 {
		return nil, nil
	}
	sites, ids := bookStatesArgs(books)
	rows, _ := s.pool.Query(ctx, bookStatesSQL, sites, ids)
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

// addReads adds a gateway's read counts to the books they name, once per batch. The
// counts are keyed by events.Key; a bare key (a version 1 report's) is LegacySite's.
func (w *writer) addReads(ctx context.Context, i int, e *events.BooksRead) error {
	sum := make(map[book]int64, len(e.Reads))
	for key, n := range e.Reads {
		site, id, ok := events.SplitKey(key)
		if !ok {
			return fmt.Errorf("read count of %q: %w", key, errBadID)
		}
		sum[book{site: site, id: id}] += n // "7" and "xsw.7" are one book
	}
	n, err := w.send(ctx, i, "read batch "+e.BatchID,
		`INSERT INTO read_batches (batch_id) VALUES ($1) ON CONFLICT DO NOTHING`, e.BatchID)
	if err != nil || n == 0 {
		return err // n == 0: counted already
	}
	sites := make([]string, 0, len(sum))
	ids := make([]string, 0, len(sum))
	counts := make([]int64, 0, len(sum))
	for b, n := range sum {
		sites, ids, counts = append(sites, b.site), append(ids, b.id), append(counts, n)
	}
	w.exec(i, "add reads of batch "+e.BatchID, `
UPDATE books AS b SET read_count = b.read_count + r.n, read_at = greatest(b.read_at, $4)
FROM unnest($1::text[], $2::text[], $3::bigint[]) AS r(site, id, n)
WHERE b.site = r.site AND b.id = r.id`, sites, ids, counts, e.At)
	return nil
}
