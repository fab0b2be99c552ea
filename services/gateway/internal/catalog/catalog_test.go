package catalog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

func TestBook(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.Pool(t)
	c := catalog.New(pool)
	ctx := t.Context()
	testdb.InsertBook(t, pool, "1721851", "萬古神帝", false)
	testdb.InsertChapters(t, pool, "1721851", 3)
	testdb.Exec(t, pool, `UPDATE books SET last_chapter_num = 3, volumes = '[{"title":"第一卷","first_chapter":1}]' WHERE id = '1721851'`)
	testdb.InsertBook(t, pool, "42", "Done", true)
	testdb.InsertChapters(t, pool, "42", 0) // a completed sync that found no chapter
	testdb.InsertBook(t, pool, "43", "Pages still coming", true)
	testdb.InsertChapters(t, pool, "43", 3)
	testdb.Exec(t, pool, `UPDATE books SET chapter_total = 5 WHERE id = '43'`)
	// A completion seen before the book's home page: the indexer keeps a nameless row.
	testdb.Exec(t, pool, `INSERT INTO books (site, id, name, chapter_total, synced_at) VALUES ('xsw', '44', '', 0, now())`)
	// Another site's book under the same id: another book.
	testdb.InsertSiteBook(t, pool, "toy", "1721851", "玩具書", false)

	b, err := c.Book(ctx, "xsw", "1721851")
	if err != nil {
		t.Fatal(err)
	}
	if b.Site != "xsw" || b.Name != "萬古神帝" || b.Genre != "玄幻小說" || b.ChapterCount != 3 || b.LastChapterNum == nil || *b.LastChapterNum != 3 ||
		len(b.Volumes) != 1 || b.Volumes[0] != (catalog.Volume{Title: "第一卷", FirstChapter: 1}) {
		t.Errorf("Book = %+v", b)
	}
	toy, err := c.Book(ctx, "toy", "1721851")
	if err != nil || toy.Site != "toy" || toy.Name != "玩具書" || toy.ChapterCount != 0 || toy.Volumes == nil || len(toy.Volumes) != 0 {
		t.Errorf("the other site's book = %+v, %v; want its own row, no chapters, no volumes", toy, err)
	}
	if got := b.SyncStatus(); got != catalog.SyncPartial {
		t.Errorf("SyncStatus = %q, want partial", got)
	}
	done, err := c.Book(ctx, "xsw", "42")
	if err != nil {
		t.Fatal(err)
	}
	if done.SyncStatus() != catalog.SyncComplete || done.LastChapterNum != nil {
		t.Errorf("synced book: status %q last %v", done.SyncStatus(), done.LastChapterNum)
	}
	if n, ok := done.KnownLength(); !ok || n != 0 {
		t.Errorf("KnownLength of a complete book = %d, %v", n, ok)
	}
	coming, err := c.Book(ctx, "xsw", "43")
	if err != nil {
		t.Fatal(err)
	}
	if coming.SyncStatus() != catalog.SyncPartial || coming.ChapterCount != 3 {
		t.Errorf("completed sync with pages missing: status %q, %d chapters", coming.SyncStatus(), coming.ChapterCount)
	}
	if _, ok := coming.KnownLength(); ok {
		t.Error("KnownLength of an incomplete book is known")
	}
	if !b.HasMeta || !done.HasMeta {
		t.Error("books with metadata report HasMeta false")
	}
	nameless, err := c.Book(ctx, "xsw", "44")
	if err != nil || nameless.HasMeta {
		t.Errorf("nameless row: %+v, %v; want HasMeta false", nameless, err)
	}
	for _, id := range []string{"7", "01721851"} {
		if _, err := c.Book(ctx, "xsw", id); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("unknown book %s: err = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := c.Book(ctx, "toy", "42"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("xsw's book 42 read as toy's: err = %v, want ErrNotFound", err)
	}
}

func TestChapters(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.Pool(t)
	c := catalog.New(pool)
	testdb.InsertBook(t, pool, "1", "One", true)
	testdb.InsertChapters(t, pool, "1", 45)
	testdb.InsertChapters(t, pool, "2", 5) // chapters stored before the book's metadata
	testdb.InsertSiteChapters(t, pool, "toy", "1", 7)

	tests := []struct {
		name          string
		site          string
		book          string
		offset, limit int
		wantFirst     int
		wantLen       int
		wantTotal     int
		wantStatus    string
	}{
		{"first page", "xsw", "1", 0, 20, 1, 20, 45, catalog.SyncComplete},
		{"last page", "xsw", "1", 40, 20, 41, 5, 45, catalog.SyncComplete},
		{"beyond", "xsw", "1", 60, 20, 0, 0, 45, catalog.SyncComplete},
		{"all", "xsw", "1", 0, 0, 1, 45, 45, catalog.SyncComplete},
		{"no book row", "xsw", "2", 0, 20, 1, 5, 5, catalog.SyncPartial},
		{"unknown", "xsw", "3", 0, 20, 0, 0, 0, catalog.SyncNone},
		{"same id, other site", "toy", "1", 0, 0, 1, 7, 7, catalog.SyncPartial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := c.Chapters(t.Context(), tt.site, tt.book, tt.offset, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Chapters) != tt.wantLen || p.Total != tt.wantTotal || p.SyncStatus != tt.wantStatus {
				t.Fatalf("got %d chapters, total %d, status %q; want %d, %d, %q",
					len(p.Chapters), p.Total, p.SyncStatus, tt.wantLen, tt.wantTotal, tt.wantStatus)
			}
			if p.Chapters == nil {
				t.Error("Chapters is nil, want an empty slice")
			}
			for i, ch := range p.Chapters {
				if ch.Number != tt.wantFirst+i {
					t.Fatalf("chapter %d has number %d, want %d", i, ch.Number, tt.wantFirst+i)
				}
			}
		})
	}
}

func TestChapter(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.Pool(t)
	c := catalog.New(pool)
	ctx := t.Context()
	testdb.InsertChapters(t, pool, "1", 2)
	testdb.InsertSiteChapters(t, pool, "toy", "1", 2)
	testdb.Exec(t, pool, `UPDATE chapters SET text = '第一段。' WHERE site = 'xsw' AND book_id = '1' AND num = 2`)

	ch, err := c.Chapter(ctx, "xsw", "1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if ch.HasText || ch.ChapterID != "1001" || ch.Title != "第1章" {
		t.Errorf("chapter 1 = %+v", ch)
	}
	ch, err = c.Chapter(ctx, "xsw", "1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.HasText || ch.Text != "第一段。" {
		t.Errorf("chapter 2 = %+v", ch)
	}
	if ch, err := c.Chapter(ctx, "toy", "1", 2); err != nil || ch.HasText || ch.URL != "https://toy.example/1/1002.html" {
		t.Errorf("the other site's chapter 2 = %+v, %v; want its own, without text", ch, err)
	}
	if _, err := c.Chapter(ctx, "xsw", "1", 3); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("missing chapter: err = %v", err)
	}
}

func TestCategoriesAndCounts(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.Pool(t)
	c := catalog.New(pool)
	ctx := t.Context()
	cats, err := c.Categories(ctx, "xsw")
	if err != nil || len(cats) != 0 {
		t.Fatalf("empty table: %v %v", cats, err)
	}
	testdb.Exec(t, pool, `INSERT INTO categories (site, id, name, url, position) VALUES
		('xsw', '2', '修真小說', 'u2', 1), ('xsw', '1', '玄幻小說', 'u1', 0),
		('toy', 'wuxia', '武俠', 'w', 1), ('toy', 'xianxia', '仙俠', 'x', 0)`)
	cats, err = c.Categories(ctx, "xsw")
	if err != nil {
		t.Fatal(err)
	}
	if len(cats) != 2 || cats[0] != (catalog.Category{ID: "1", Name: "玄幻小說", URL: "u1"}) {
		t.Errorf("Categories = %+v", cats)
	}
	cats, err = c.Categories(ctx, "toy")
	if err != nil || len(cats) != 2 || cats[0].ID != "xianxia" || cats[1].ID != "wuxia" {
		t.Errorf("the other site's categories = %+v, %v; want its own in the order of its home page", cats, err)
	}
	testdb.InsertBook(t, pool, "1", "One", false)
	testdb.InsertChapters(t, pool, "1", 4)
	testdb.Exec(t, pool, `UPDATE chapters SET text = 'x' WHERE num <= 2`)
	n, err := c.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != (catalog.Counts{Books: 1, Chapters: 4, ChaptersWithText: 2}) {
		t.Errorf("Counts = %+v", n)
	}
}

func insertJob(t *testing.T, pool *pgxpool.Pool, jobID, site, book, status string, at time.Time, errText string, permanent bool) {
	t.Helper()
	testdb.Exec(t, pool, `INSERT INTO job_history (job_id, site, book_id, lane, status, finished_at, error, permanent)
		VALUES ($1, $2, $3, 'prefetch', $4, $5, $6, $7)`, jobID, site, book, status, at, errText, permanent)
}

func TestJobHistory(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.Pool(t)
	c := catalog.New(pool)
	ctx := t.Context()
	at := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	insertJob(t, pool, "xsw.1-1", "xsw", "1", "completed", at.Add(-3*time.Hour), "", false)
	insertJob(t, pool, "xsw.1-2", "xsw", "1", "failed", at.Add(-2*time.Hour), "timeout", false)
	insertJob(t, pool, "xsw.2-1", "xsw", "2", "failed", at.Add(-time.Hour), "source answered 404", true)
	insertJob(t, pool, "xsw.3-1", "xsw", "3", "failed", at.Add(-4*time.Hour), "source answered 404", true)
	insertJob(t, pool, "xsw.3-2", "xsw", "3", "completed", at, "", false)
	insertJob(t, pool, "xsw.4-1", "xsw", "4", "skipped", at, "", false)
	insertJob(t, pool, "toy.1-1", "toy", "1", "failed", at.Add(-90*time.Minute), "source answered 404", true)

	h, err := c.History(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if h.Completed != 2 || h.Failed != 4 {
		t.Errorf("History counts = %d completed %d failed, want 2 and 4", h.Completed, h.Failed)
	}
	want := []string{"xsw/2", "toy/1", "xsw/1", "xsw/3"} // newest failure first, one per book
	if len(h.Recent) != len(want) {
		t.Fatalf("Recent = %+v", h.Recent)
	}
	for i, f := range h.Recent {
		if f.Site+"/"+f.BookID != want[i] {
			t.Errorf("Recent[%d] = %+v, want book %s", i, f, want[i])
		}
	}
	if !h.Recent[0].FailedAt.Equal(at.Add(-time.Hour)) || h.Recent[0].Error != "source answered 404" {
		t.Errorf("Recent[0] = %+v", h.Recent[0])
	}

	for _, tt := range []struct {
		site, book string
		want       bool
	}{{"xsw", "1", false}, {"xsw", "2", true}, {"xsw", "3", false}, {"xsw", "9", false}, {"toy", "1", true}, {"toy", "2", false}} {
		f, err := c.PermanentFailure(ctx, tt.site, tt.book)
		if got := err == nil; got != tt.want {
			t.Errorf("PermanentFailure(%s, %s) = %+v, %v; want found=%v", tt.site, tt.book, f, err, tt.want)
		}
		if err != nil && !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("PermanentFailure(%s, %s): err = %v, want ErrNotFound", tt.site, tt.book, err)
		}
	}

	n, err := c.ClearHistory(ctx)
	if err != nil || n != 7 {
		t.Fatalf("ClearHistory = %d, %v", n, err)
	}
	if h, err := c.History(ctx, 10); err != nil || h.Completed+h.Failed != 0 || len(h.Recent) != 0 {
		t.Errorf("after clear: %+v %v", h, err)
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.Pool(t)
	c := catalog.New(pool)
	pool.Close()
	if _, err := c.Book(context.Background(), "xsw", "1"); err == nil || errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("closed pool: err = %v, want a failure that is not ErrNotFound", err)
	}
}

func TestKnown(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.Pool(t)
	c := catalog.New(pool)
	testdb.InsertBook(t, pool, "7", "書", false)
	testdb.InsertChapters(t, pool, "7", 3)
	testdb.InsertSiteBook(t, pool, "toy", "7", "玩具", false)
	testdb.InsertSiteChapters(t, pool, "toy", "7", 5)
	if k, err := c.Known(t.Context(), "xsw", "7"); err != nil || k != nil {
		t.Errorf("Known without a newest chapter = %+v, %v; want nil", k, err)
	}
	testdb.Exec(t, pool, `UPDATE books SET last_chapter_id = '900003' WHERE site = 'xsw' AND id = '7'`)
	testdb.Exec(t, pool, `UPDATE books SET last_chapter_id = 'c5x' WHERE site = 'toy' AND id = '7'`)
	if k, err := c.Known(t.Context(), "xsw", "7"); err != nil || k == nil || k.Chapters != 3 || k.LastChapterID != "900003" {
		t.Errorf("Known = %+v, %v; want 3 chapters, newest 900003", k, err)
	}
	if k, err := c.Known(t.Context(), "toy", "7"); err != nil || k == nil || k.Chapters != 5 || k.LastChapterID != "c5x" {
		t.Errorf("Known of the other site's book = %+v, %v; want 5 chapters, newest c5x", k, err)
	}
	if k, err := c.Known(t.Context(), "xsw", "8"); err != nil || k != nil {
		t.Errorf("Known of an unknown book = %+v, %v", k, err)
	}
}
