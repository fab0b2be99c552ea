// Package catalog reads what the indexer stored in Postgres: books, chapter references and
// texts, categories and the job history. A book is named by its site and the site's id
// for it, both text, everywhere. The gateway only reads these tables, except for clearing
// the job history on an administrator's request.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/events"
)

// ErrNotFound is returned when the asked-for book or chapter is not stored.
var ErrNotFound = errors.New("not stored")

// Sync states of a book, as the API reports them.
const (
	SyncComplete = "complete" // every chapter of the last completed sync is stored
	SyncPartial  = "partial"  // some chapters are stored, the table of contents is not known to be whole
	SyncNone     = "none"     // no chapter is stored
)

// Catalog runs the gateway's queries on a pool.
type Catalog struct {
	pool *pgxpool.Pool
}

// New returns a catalog over pool.
func New(pool *pgxpool.Pool) *Catalog { return &Catalog{pool: pool} }

// Ping reports whether Postgres answers.
func (c *Catalog) Ping(ctx context.Context) error { return c.pool.Ping(ctx) }

// Book is a stored book. The indexer may hold a row for a book whose metadata never
// arrived (a completed sync seen first): HasMeta tells.
type Book struct {
	Site             string
	ID               string
	HasMeta          bool // the book's home page was stored
	Name             string
	Author           string
	Genre            string
	Status           string
	Finished         bool
	UpdateText       string
	Description      string
	CoverURL         string
	LastChapterNum   *int
	LastChapterTitle string
	LastChapterURL   string
	// Volumes are the book's volume headers, in order (none on a site without volumes).
	Volumes      []Volume
	ChapterTotal *int // chapters the last completed sync published
	ChapterCount int  // chapter references stored now
	complete     bool // refs 1..ChapterTotal are all stored
	SyncedAt     *time.Time
	CheckedAt    *time.Time
	ChangedAt    *time.Time
}

// SyncStatus reports how much of the book's table of contents is stored. A book is
// complete, as the indexer announces it, when a sync completed and its chapters
// 1..ChapterTotal are all stored, whatever order the events arrived in.
func (b Book) SyncStatus() string { return syncStatus(b.complete, b.ChapterCount) }

// KnownLength reports the number of chapters of a completely stored book (that of its
// last completed sync); ok is false while the book is not complete.
func (b Book) KnownLength() (n int, ok bool) {
	if !b.complete || b.ChapterTotal == nil {
		return 0, false
	}
	return *b.ChapterTotal, true
}

// Volume is a volume header of a book's chapter list: its title and the number of its
// first chapter.
type Volume struct {
	Title        string `json:"title"`
	FirstChapter int    `json:"first_chapter"`
}

func syncStatus(complete bool, chapters int) string {
	switch {
	case complete:
		return SyncComplete
	case chapters > 0:
		return SyncPartial
	}
	return SyncNone
}

// Book returns the stored book, or ErrNotFound.
func (c *Catalog) Book(ctx context.Context, site, bookID string) (Book, error) {
	b := Book{Site: site, ID: bookID}
	err := c.pool.QueryRow(ctx, `
		SELECT name, author, genre, status, finished, update_text, description, cover_url,
		       last_chapter_num, last_chapter_title, last_chapter_url, volumes, chapter_total,
		       synced_at, checked_at, changed_at, c.total,
		       b.chapter_total IS NOT NULL AND c.within >= b.chapter_total
		FROM books b, LATERAL (
			SELECT count(*) AS total, count(*) FILTER (WHERE num <= b.chapter_total) AS within
			FROM chapters WHERE site = b.site AND book_id = b.id
		) c
		WHERE b.site = $1 AND b.id = $2`, site, bookID).Scan(
		&b.Name, &b.Author, &b.Genre, &b.Status, &b.Finished, &b.UpdateText, &b.Description, &b.CoverURL,
		&b.LastChapterNum, &b.LastChapterTitle, &b.LastChapterURL, &b.Volumes, &b.ChapterTotal,
		&b.SyncedAt, &b.CheckedAt, &b.ChangedAt, &b.ChapterCount, &b.complete)
	if errors.Is(err, pgx.ErrNoRows) {
		return Book{}, fmt.Errorf("book %s of site %s: %w", bookID, site, ErrNotFound)
	}
	if err != nil {
		return Book{}, fmt.Errorf("read book %s of site %s: %w", bookID, site, err)
	}
	if b.Volumes == nil {
		b.Volumes = []Volume{}
	}
	b.HasMeta = b.CheckedAt != nil
	return b, nil
}

// ChapterRef is a stored table-of-contents entry.
type ChapterRef struct {
	Number    int
	ChapterID string
	Title     string
	URL       string
}

// ChapterPage is one page of a book's stored table of contents.
type ChapterPage struct {
	Chapters []ChapterRef
	// Total is how many chapter references the book has stored.
	Total int
	// SyncStatus is the book's sync state (SyncComplete, SyncPartial, SyncNone).
	SyncStatus string
}

// Chapters returns the stored chapter references of the book numbered offset+1 to
// offset+limit (limit 0: every one from offset+1), ordered by number, with the book's
// totals. Numbers are positions in the whole table of contents, so a page of a book
// still syncing holds the chapters that belong there, or fewer, never later ones. A book
// with no stored chapter is not an error: its page is empty with SyncStatus SyncNone (or
// SyncComplete when a completed sync found none).
func (c *Catalog) Chapters(ctx context.Context, site, bookID string, offset, limit int) (ChapterPage, error) {
	var complete bool
	var p ChapterPage
	err := c.pool.QueryRow(ctx, `
		SELECT c.total, t.chapter_total IS NOT NULL AND c.within >= t.chapter_total
		FROM (SELECT (SELECT chapter_total FROM books WHERE site = $1 AND id = $2) AS chapter_total) t, LATERAL (
			SELECT count(*) AS total, count(*) FILTER (WHERE num <= t.chapter_total) AS within
			FROM chapters WHERE site = $1 AND book_id = $2
		) c`, site, bookID).Scan(&p.Total, &complete)
	if err != nil {
		return ChapterPage{}, fmt.Errorf("count chapters of book %s of site %s: %w", bookID, site, err)
	}
	p.SyncStatus = syncStatus(complete, p.Total)
	if p.Total == 0 {
		p.Chapters = []ChapterRef{}
		return p, nil
	}
	var last *int
	if limit > 0 {
		n := offset + limit
		last = &n
	}
	rows, err := c.pool.Query(ctx, `
		SELECT num, chapter_id, title, url FROM chapters
		WHERE site = $1 AND book_id = $2 AND num > $3 AND ($4::int IS NULL OR num <= $4)
		ORDER BY num`, site, bookID, offset, last)
	if err != nil {
		return ChapterPage{}, fmt.Errorf("list chapters of book %s of site %s: %w", bookID, site, err)
	}
	p.Chapters, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChapterRef, error) {
		var ch ChapterRef
		err := r.Scan(&ch.Number, &ch.ChapterID, &ch.Title, &ch.URL)
		return ch, err
	})
	if err != nil {
		return ChapterPage{}, fmt.Errorf("list chapters of book %s of site %s: %w", bookID, site, err)
	}
	return p, nil
}

// Chapter is a stored chapter reference with its text once fetched.
type Chapter struct {
	ChapterRef
	Text    string
	HasText bool
}

// Chapter returns the stored chapter num of the book, or ErrNotFound.
func (c *Catalog) Chapter(ctx context.Context, site, bookID string, num int) (Chapter, error) {
	ch := Chapter{ChapterRef: ChapterRef{Number: num}}
	var text *string
	err := c.pool.QueryRow(ctx, `
		SELECT chapter_id, title, url, text FROM chapters WHERE site = $1 AND book_id = $2 AND num = $3`,
		site, bookID, num).Scan(&ch.ChapterID, &ch.Title, &ch.URL, &text)
	if errors.Is(err, pgx.ErrNoRows) {
		return Chapter{}, fmt.Errorf("chapter %d of book %s of site %s: %w", num, bookID, site, ErrNotFound)
	}
	if err != nil {
		return Chapter{}, fmt.Errorf("read chapter %d of book %s of site %s: %w", num, bookID, site, err)
	}
	if text != nil {
		ch.Text, ch.HasText = *text, true
	}
	return ch, nil
}

// Category is a stored category of a site.
type Category struct {
	ID   string
	Name string
	URL  string
}

// Categories returns the stored categories of site in the order of its home page.
func (c *Catalog) Categories(ctx context.Context, site string) ([]Category, error) {
	rows, err := c.pool.Query(ctx, `SELECT id, name, url FROM categories WHERE site = $1 ORDER BY position, id`, site)
	if err != nil {
		return nil, fmt.Errorf("list categories of site %s: %w", site, err)
	}
	cats, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Category])
	if err != nil {
		return nil, fmt.Errorf("list categories of site %s: %w", site, err)
	}
	return cats, nil
}

// Counts sizes what is stored.
type Counts struct {
	Books            int64
	Chapters         int64
	ChaptersWithText int64
}

// Counts counts the stored books, chapters and fetched chapter texts.
func (c *Catalog) Counts(ctx context.Context) (Counts, error) {
	var n Counts
	err := c.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM books),
		       (SELECT count(*) FROM chapters),
		       (SELECT count(*) FROM chapters WHERE text IS NOT NULL)`).Scan(&n.Books, &n.Chapters, &n.ChaptersWithText)
	if err != nil {
		return Counts{}, fmt.Errorf("count stored books: %w", err)
	}
	return n, nil
}

// Estimates sizes what is stored cheaply, for the public health answer: a table of
// fewer than EstimateSample rows is counted exactly (at most that many rows are read);
// a larger one is estimated from the statistics Postgres keeps (autovacuum's ANALYZE:
// pg_class.reltuples scaled to the table's current size, the fraction of chapters with a
// text, the frequency of completed jobs), and never below what the sample counted. The
// exact counts are Counts and History, for the administrators.
type Estimates struct {
	Books            int64
	Chapters         int64
	ChaptersWithText int64
	CompletedJobs    int64
}

// EstimateSample is the number of rows of each table Estimates may read.
const EstimateSample = 1000

// Estimates estimates what is stored (see Estimates), reading at most EstimateSample rows
// of each table and the planner's statistics.
func (c *Catalog) Estimates(ctx context.Context) (Estimates, error) {
	var sample Estimates
	var books, chapters, jobs int64
	err := c.pool.QueryRow(ctx, `
		SELECT b.n, c.n, c.texts, j.n, j.completed
		FROM (SELECT count(*) AS n FROM (SELECT FROM books LIMIT $1) s) b,
		     (SELECT count(*) AS n, count(*) FILTER (WHERE has_text) AS texts
		      FROM (SELECT text IS NOT NULL AS has_text FROM chapters LIMIT $1) s) c,
		     (SELECT count(*) AS n, count(*) FILTER (WHERE completed) AS completed
		      FROM (SELECT status = 'completed' AS completed FROM job_history LIMIT $1) s) j`,
		EstimateSample).Scan(&books, &chapters, &sample.ChaptersWithText, &jobs, &sample.CompletedJobs)
	if err != nil {
		return Estimates{}, fmt.Errorf("sample stored books: %w", err)
	}
	sample.Books, sample.Chapters = books, chapters
	if books < EstimateSample && chapters < EstimateSample && jobs < EstimateSample {
		return sample, nil // exact
	}
	// rows is NULL for a table never analyzed; fraction is NULL without statistics.
	rows, err := c.pool.Query(ctx, `
		SELECT c.relname,
		       CASE WHEN c.reltuples < 0 THEN NULL
		            WHEN c.relpages = 0 THEN c.reltuples
		            ELSE c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::bigint)
		       END::float8,
		       CASE c.relname
		            WHEN 'chapters' THEN (SELECT 1 - s.null_frac FROM pg_stats s
		                                  WHERE s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = 'text')
		            WHEN 'job_history' THEN (SELECT COALESCE(sum(m.freq), 0) FROM pg_stats s,
		                                         unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS m(val, freq)
		                                     WHERE s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = 'status'
		                                       AND m.val = 'completed')
		       END::float8
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid IN ('books'::regclass, 'chapters'::regclass, 'job_history'::regclass)`)
	if err != nil {
		return Estimates{}, fmt.Errorf("estimate stored books: %w", err)
	}
	est := sample
	// estimate sets out to n rows (times frac, when given), never below what was sampled;
	// without statistics (n nil) the sample stands.
	estimate := func(n, frac *float64, sampled int64, out *int64) {
		if n == nil {
			return
		}
		v := *n
		if frac != nil {
			v *= *frac
		}
		*out = max(int64(v+0.5), sampled)
	}
	for rows.Next() {
		var name string
		var n, frac *float64
		if err := rows.Scan(&name, &n, &frac); err != nil {
			rows.Close()
			return Estimates{}, fmt.Errorf("estimate stored books: %w", err)
		}
		switch name {
		case "books":
			if books >= EstimateSample {
				estimate(n, nil, sample.Books, &est.Books)
			}
		case "chapters":
			if chapters >= EstimateSample {
				estimate(n, nil, sample.Chapters, &est.Chapters)
				if frac != nil {
					estimate(n, frac, sample.ChaptersWithText, &est.ChaptersWithText)
				}
			}
		case "job_history":
			if jobs >= EstimateSample && frac != nil {
				estimate(n, frac, sample.CompletedJobs, &est.CompletedJobs)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return Estimates{}, fmt.Errorf("estimate stored books: %w", err)
	}
	return est, nil
}

// Failure is a failed sync job.
type Failure struct {
	Site      string
	BookID    string
	FailedAt  time.Time
	Error     string
	Permanent bool
}

// PermanentFailure returns the book's last finished job when it failed for good (the site
// said the book does not exist, or its page cannot be read), or ErrNotFound when the last
// job did not fail that way (or there was none).
func (c *Catalog) PermanentFailure(ctx context.Context, site, bookID string) (Failure, error) {
	f := Failure{Site: site, BookID: bookID}
	var status string
	err := c.pool.QueryRow(ctx, `
		SELECT status, finished_at, error, permanent FROM job_history
		WHERE site = $1 AND book_id = $2 ORDER BY finished_at DESC LIMIT 1`, site, bookID).Scan(&status, &f.FailedAt, &f.Error, &f.Permanent)
	if errors.Is(err, pgx.ErrNoRows) {
		return Failure{}, fmt.Errorf("failure of book %s of site %s: %w", bookID, site, ErrNotFound)
	}
	if err != nil {
		return Failure{}, fmt.Errorf("read job history of book %s of site %s: %w", bookID, site, err)
	}
	if status != "failed" || !f.Permanent {
		return Failure{}, fmt.Errorf("failure of book %s of site %s: %w", bookID, site, ErrNotFound)
	}
	return f, nil
}

// History sums up the job history.
type History struct {
	Completed int64
	Failed    int64
	// Recent holds the latest failure of each book that failed, newest first.
	Recent []Failure
}

// History counts completed and failed jobs and lists the latest failure of at most limit
// books, newest first.
func (c *Catalog) History(ctx context.Context, limit int) (History, error) {
	var h History
	err := c.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed')
		FROM job_history`).Scan(&h.Completed, &h.Failed)
	if err != nil {
		return History{}, fmt.Errorf("count job history: %w", err)
	}
	rows, err := c.pool.Query(ctx, `
		SELECT site, book_id, finished_at, error, permanent FROM (
			SELECT DISTINCT ON (site, book_id) site, book_id, finished_at, error, permanent
			FROM job_history WHERE status = 'failed'
			ORDER BY site, book_id, finished_at DESC
		) latest ORDER BY finished_at DESC, site, book_id LIMIT $1`, limit)
	if err != nil {
		return History{}, fmt.Errorf("list failed jobs: %w", err)
	}
	h.Recent, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Failure])
	if err != nil {
		return History{}, fmt.Errorf("list failed jobs: %w", err)
	}
	return h, nil
}

// ClearHistory deletes the whole job history and reports how many jobs it deleted.
func (c *Catalog) ClearHistory(ctx context.Context) (int64, error) {
	tag, err := c.pool.Exec(ctx, `DELETE FROM job_history`)
	if err != nil {
		return 0, fmt.Errorf("clear job history: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Known reads what the database holds of a book for an incremental resync: its stored
// chapter refs and the newest chapter its home page named. It is nil for a book not
// stored, or stored without a newest chapter.
func (c *Catalog) Known(ctx context.Context, site, bookID string) (*events.KnownBook, error) {
	var chapters int
	var last *string
	err := c.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM chapters c WHERE c.site = b.site AND c.book_id = b.id), b.last_chapter_id
		FROM books b WHERE b.site = $1 AND b.id = $2`, site, bookID).Scan(&chapters, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("known state of book %s of site %s: %w", bookID, site, err)
	}
	if last == nil || *last == "" {
		return nil, nil
	}
	return &events.KnownBook{Chapters: chapters, LastChapterID: *last}, nil
}

// Freshness says how current the stored books are.
type Freshness struct {
	Unfinished      int64      `json:"unfinished_books"`
	Finished        int64      `json:"finished_books"`
	CheckedLastHour int64      `json:"checked_last_hour"`
	ChangedLastDay  int64      `json:"changed_last_day"`
	OldestCheck     *time.Time `json:"oldest_check"`
	NewestCheck     *time.Time `json:"newest_check"`
	Reads           int64      `json:"reads"`
}

// Freshness counts books by status and by when they were last checked and changed.
func (c *Catalog) Freshness(ctx context.Context) (Freshness, error) {
	var f Freshness
	err := c.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE NOT finished), count(*) FILTER (WHERE finished),
		       count(*) FILTER (WHERE checked_at > now() - interval '1 hour'),
		       count(*) FILTER (WHERE changed_at > now() - interval '1 day'),
		       min(checked_at), max(checked_at), coalesce(sum(read_count), 0)::bigint
		FROM books WHERE name <> ''`).Scan(&f.Unfinished, &f.Finished, &f.CheckedLastHour, &f.ChangedLastDay,
		&f.OldestCheck, &f.NewestCheck, &f.Reads)
	if err != nil {
		return f, fmt.Errorf("freshness: %w", err)
	}
	return f, nil
}
