package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xswtw/xsw/events"
)

// Book is a row of books.
type Book struct {
	Site             string     `db:"site"`
	ID               string     `db:"id"`
	Name             string     `db:"name"`
	Author           string     `db:"author"`
	Genre            string     `db:"genre"`
	Status           string     `db:"status"`
	Finished         bool       `db:"finished"`
	UpdateText       string     `db:"update_text"`
	SourceUpdatedAt  *time.Time `db:"source_updated_at"`
	Description      string     `db:"description"`
	CoverURL         string     `db:"cover_url"`
	LastChapterNum   *int       `db:"last_chapter_num"`
	LastChapterTitle string     `db:"last_chapter_title"`
	LastChapterURL   string     `db:"last_chapter_url"`
	LastChapterID    *string    `db:"last_chapter_id"`
	SourceURL        string     `db:"source_url"`
	TOCPages         *int       `db:"toc_pages"`
	TOCPagesSeen     *int       `db:"toc_pages_seen"`
	ChapterTotal     *int       `db:"chapter_total"`
	ChapterPeak      *int       `db:"chapter_peak"` // the most it has held (ShrinkFloor)
	// ShrinkAccepted is true while an operator's acceptance of a shrink awaits the book's
	// next applied sync; ShrinkAcceptedAt is the time of the newest acceptance recorded.
	ShrinkAccepted   bool       `db:"shrink_accepted"`
	ShrinkAcceptedAt *time.Time `db:"shrink_accepted_at"`
	SyncJobID        *string    `db:"sync_job_id"`
	SyncedAt         *time.Time `db:"synced_at"`
	CheckedAt        *time.Time `db:"checked_at"`
	ChangedAt        *time.Time `db:"changed_at"`
	CreatedAt        time.Time  `db:"created_at"`
	UpdatedAt        time.Time  `db:"updated_at"`
	// Volumes are the volume headers of the book's chapter list; none on most sites.
	Volumes []events.Volume `db:"volumes"`
}

// Chapter is a row of chapters.
type Chapter struct {
	Site      string     `db:"site"`
	BookID    string     `db:"book_id"`
	Num       int        `db:"num"`
	ChapterID string     `db:"chapter_id"`
	Title     string     `db:"title"`
	URL       string     `db:"url"`
	TitleNum  *int       `db:"title_num"`
	Text      *string    `db:"text"`
	FetchedAt *time.Time `db:"fetched_at"`
	ListedAt  *time.Time `db:"listed_at"`
	TOCPage   *int       `db:"toc_page"`
	CreatedAt time.Time  `db:"created_at"`
	UpdatedAt time.Time  `db:"updated_at"`
}

// Job is a row of job_history.
type Job struct {
	JobID      string     `db:"job_id"`
	Site       string     `db:"site"`
	BookID     string     `db:"book_id"`
	Lane       string     `db:"lane"`
	Priority   int        `db:"priority"`
	Status     string     `db:"status"`
	Attempts   int        `db:"attempts"`
	Fetcher    string     `db:"fetcher"`
	EnqueuedAt *time.Time `db:"enqueued_at"`
	StartedAt  *time.Time `db:"started_at"`
	FinishedAt time.Time  `db:"finished_at"`
	DurationMS *int64     `db:"duration_ms"`
	Chapters   *int       `db:"chapters"`
	Requests   *int       `db:"requests"`
	Error      string     `db:"error"`
	Permanent  bool       `db:"permanent"`
	Dead       bool       `db:"dead"`
}

const (
	bookColumns = `site, id, name, author, genre, status, finished, update_text,
source_updated_at, description, cover_url, last_chapter_num, last_chapter_title,
last_chapter_url, last_chapter_id, source_url, volumes, toc_pages, toc_pages_seen, chapter_total, chapter_peak,
shrink_accepted, shrink_accepted_at, sync_job_id, synced_at, checked_at, changed_at, created_at, updated_at`
	chapterColumns = `site, book_id, num, chapter_id, title, url, title_num, text,
fetched_at, listed_at, toc_page, created_at, updated_at`
	jobColumns = `job_id, site, book_id, lane, priority, status, attempts, fetcher,
enqueued_at, started_at, finished_at, duration_ms, chapters, requests, error, permanent, dead`
)

// Book reads one book of site; ErrNotFound when it is not stored.
func (s *Store) Book(ctx context.Context, site, id string) (Book, error) {
	key := events.Key(site, id)
	rows, _ := s.pool.Query(ctx, `SELECT `+bookColumns+` FROM books WHERE site = $1 AND id = $2`, site, id)
	b, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Book])
	if errors.Is(err, pgx.ErrNoRows) {
		return Book{}, fmt.Errorf("book %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Book{}, fmt.Errorf("read book %s: %w", key, err)
	}
	return b, nil
}

// Chapters reads every chapter ref of a book of site in order.
func (s *Store) Chapters(ctx context.Context, site, id string) ([]Chapter, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+chapterColumns+` FROM chapters WHERE site = $1 AND book_id = $2 ORDER BY num`, site, id)
	cs, err := pgx.CollectRows(rows, pgx.RowToStructByName[Chapter])
	if err != nil {
		return nil, fmt.Errorf("read chapters of book %s: %w", events.Key(site, id), err)
	}
	return cs, nil
}

// Job reads the history row of a job; ErrNotFound when it is not stored. Job ids name
// their book's site (events.JobID), so a job id is enough.
func (s *Store) Job(ctx context.Context, jobID string) (Job, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM job_history WHERE job_id = $1`, jobID)
	j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("job %s: %w", jobID, ErrNotFound)
	}
	if err != nil {
		return Job{}, fmt.Errorf("read job %s: %w", jobID, err)
	}
	return j, nil
}

// Categories reads the categories of site in the order of its home page.
func (s *Store) Categories(ctx context.Context, site string) ([]events.Category, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, name, url FROM categories WHERE site = $1 ORDER BY position, id`, site)
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (events.Category, error) {
		var c events.Category
		err := r.Scan(&c.ID, &c.Name, &c.URL)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read categories of site %s: %w", site, err)
	}
	return cs, nil
}
