package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/platform/pgtest"
	"github.com/xswtw/xsw/services/indexer/internal/store"
)

var t0 = time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)

// xsw is the site of the books the helpers build; inSite moves an event to another.
const xsw = events.LegacySite

// inSite returns ev, naming site instead of xsw.
func inSite[P events.Payload](tb testing.TB, site string, ev P) P {
	tb.Helper()
	switch e := any(ev).(type) {
	case *events.BookFetched:
		e.Site, e.JobID = site, site+"."+e.JobID
	case *events.TOCPageFetched:
		e.Site, e.JobID = site, site+"."+e.JobID
	case *events.ChapterFetched:
		e.Site = site
	case *events.JobEvent:
		e.Site, e.JobID = site, site+"."+e.JobID
	case *events.CategoriesFetched:
		e.Site = site
	case *events.BookPurgeRequested:
		e.Site = site
	default:
		tb.Fatalf("inSite: %T names no site", ev)
	}
	return ev
}

// newStore returns a store over a fresh, migrated schema and its pool.
func newStore(tb testing.TB) (*store.Store, *pgxpool.Pool) {
	tb.Helper()
	pool, _ := pgtest.Pool(tb)
	if err := store.Migrate(context.Background(), pool, logging.Discard()); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return store.New(pool), pool
}

func apply(tb testing.TB, s *store.Store, evs ...events.Payload) store.Result {
	tb.Helper()
	res, err := s.Apply(context.Background(), evs)
	if err != nil {
		tb.Fatalf("apply: %v", err)
	}
	return res
}

func bookEvent(id, name string, at time.Time) *events.BookFetched {
	return &events.BookFetched{
		Header: events.Header{Version: events.Version},
		JobID:  id + "-1",
		Site:   xsw,
		BookID: id,
		Book: events.BookMeta{
			Name:             name,
			Author:           "飛天魚",
			Genre:            "玄幻小說",
			Status:           "連載中",
			UpdateText:       "2026/1/20 22:05:09",
			Description:      "三千年前，天下第一人。",
			CoverURL:         "https://m.xsw.tw/cover.jpg",
			LastChapterTitle: "第10章",
			LastChapterURL:   "https://m.xsw.tw/" + id + "/1010.html",
			LastChapterID:    "1010",
			SourceURL:        "https://m.xsw.tw/" + id + "/",
		},
		FetchedAt: at,
	}
}

// refs returns refs numbered from..to whose chapter ids are base+number.
func refs(from, to int, base int64) []events.ChapterRef {
	var out []events.ChapterRef
	for n := from; n <= to; n++ {
		id := strconv.FormatInt(base+int64(n), 10)
		tn := n
		out = append(out, events.ChapterRef{
			Number:      n,
			ChapterID:   id,
			Title:       fmt.Sprintf("第%d章", n),
			URL:         "https://m.xsw.tw/b/" + id + ".html",
			TitleNumber: &tn,
		})
	}
	return out
}

func tocEvent(id string, page, total int, chapters []events.ChapterRef, at time.Time) *events.TOCPageFetched {
	return &events.TOCPageFetched{
		Header:     events.Header{Version: events.Version},
		JobID:      id + "-1",
		Site:       xsw,
		BookID:     id,
		Page:       page,
		TotalPages: total,
		Chapters:   chapters,
		FetchedAt:  at,
	}
}

func jobEvent(kind events.JobKind, jobID, bookID string, at time.Time) *events.JobEvent {
	return &events.JobEvent{
		Header:     events.Header{Version: events.Version},
		Kind:       kind,
		JobID:      jobID,
		Site:       xsw,
		BookID:     bookID,
		Lane:       events.LaneManual,
		Priority:   10,
		Attempt:    1,
		Fetcher:    "fetcher-a",
		EnqueuedAt: at.Add(-time.Minute),
		StartedAt:  at.Add(-10 * time.Second),
		At:         at,
	}
}

func completed(jobID, bookID string, chapters, pages int, at time.Time) *events.JobEvent {
	e := jobEvent(events.JobCompleted, jobID, bookID, at)
	e.Chapters, e.TOCPages, e.Requests = chapters, pages, pages+1
	return e
}

func chapterEvent(bookID string, num int, chapterID, text string, at time.Time) *events.ChapterFetched {
	return &events.ChapterFetched{
		Header:    events.Header{Version: events.Version},
		Site:      xsw,
		BookID:    bookID,
		Number:    num,
		ChapterID: chapterID,
		Title:     fmt.Sprintf("第%d章 正文", num),
		URL:       "https://m.xsw.tw/" + bookID + "/" + chapterID + ".html",
		Text:      text,
		FetchedAt: at,
	}
}

// dump returns every row of the book tables as JSON, to compare whole states.
func dump(tb testing.TB, pool *pgxpool.Pool) string {
	tb.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT to_jsonb(t)::text FROM books t ORDER BY site, id`,
		`SELECT to_jsonb(t)::text FROM chapters t ORDER BY site, book_id, num`,
		`SELECT to_jsonb(t)::text FROM categories t ORDER BY site, id`,
		`SELECT to_jsonb(t)::text FROM job_history t ORDER BY job_id`,
	} {
		rows, err := pool.Query(context.Background(), q)
		if err != nil {
			tb.Fatalf("dump: %v", err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				tb.Fatalf("dump: %v", err)
			}
			b.WriteString(s)
			b.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			tb.Fatalf("dump: %v", err)
		}
	}
	return b.String()
}

// book reads a book of xsw.
func book(tb testing.TB, s *store.Store, id string) store.Book {
	tb.Helper()
	return siteBook(tb, s, xsw, id)
}

func siteBook(tb testing.TB, s *store.Store, site, id string) store.Book {
	tb.Helper()
	b, err := s.Book(context.Background(), site, id)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// chapters reads the chapters of a book of xsw.
func chapters(tb testing.TB, s *store.Store, id string) []store.Chapter {
	tb.Helper()
	return siteChapters(tb, s, xsw, id)
}

func siteChapters(tb testing.TB, s *store.Store, site, id string) []store.Chapter {
	tb.Helper()
	cs, err := s.Chapters(context.Background(), site, id)
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	_, pool := newStore(t)
	if err := store.Migrate(t.Context(), pool, logging.Discard()); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

func TestBookFetched(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := t.Context()

	e := bookEvent("1721851", "萬古神帝", t0)
	updated := t0.Add(-14 * time.Hour)
	e.Book.UpdatedAt = &updated
	res := apply(t, s, e)
	if res.Changed[0] == 0 {
		t.Error("first book event changed nothing")
	}
	b := book(t, s, "1721851")
	if b.Name != "萬古神帝" || b.Author != "飛天魚" || b.Genre != "玄幻小說" || b.Status != "連載中" ||
		b.Description == "" || b.CoverURL == "" || b.SourceURL == "" || b.LastChapterTitle != "第10章" {
		t.Errorf("metadata not stored: %+v", b)
	}
	if b.LastChapterID == nil || *b.LastChapterID != "1010" {
		t.Errorf("last_chapter_id = %v, want 1010", b.LastChapterID)
	}
	if b.SourceUpdatedAt == nil || !b.SourceUpdatedAt.Equal(updated) {
		t.Errorf("source_updated_at = %v, want %v", b.SourceUpdatedAt, updated)
	}
	if !b.CheckedAt.Equal(t0) || !b.ChangedAt.Equal(t0) {
		t.Errorf("checked_at %v changed_at %v, want both %v", b.CheckedAt, b.ChangedAt, t0)
	}
	if b.LastChapterNum != nil {
		t.Errorf("last_chapter_num = %d before any TOC, want NULL", *b.LastChapterNum)
	}

	before := dump(t, pool)
	if res := apply(t, s, e); res.Changed[0] != 0 {
		t.Errorf("same event again changed %d rows", res.Changed[0])
	}
	if after := dump(t, pool); after != before {
		t.Errorf("same event again changed the rows:\n%s\nwant\n%s", after, before)
	}

	// A later read with the same metadata moves checked_at only.
	later := *e
	later.FetchedAt = t0.Add(time.Hour)
	apply(t, s, &later)
	b = book(t, s, "1721851")
	if !b.CheckedAt.Equal(t0.Add(time.Hour)) || !b.ChangedAt.Equal(t0) {
		t.Errorf("unchanged metadata: checked_at %v changed_at %v, want %v and %v", b.CheckedAt, b.ChangedAt, t0.Add(time.Hour), t0)
	}

	// A later read with new metadata moves changed_at too.
	newer := *e
	newer.FetchedAt = t0.Add(2 * time.Hour)
	newer.Book.Status = "完本"
	newer.Book.Finished = true
	apply(t, s, &newer)
	b = book(t, s, "1721851")
	if b.Status != "完本" || !b.Finished || !b.ChangedAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("changed metadata: status %q finished %v changed_at %v", b.Status, b.Finished, b.ChangedAt)
	}

	// An older event arriving late never moves data backwards.
	old := bookEvent("1721851", "舊名", t0.Add(30*time.Minute))
	if res := apply(t, s, old); res.Changed[0] != 0 {
		t.Errorf("older event changed %d rows", res.Changed[0])
	}
	if b := book(t, s, "1721851"); b.Name != "萬古神帝" || b.Status != "完本" {
		t.Errorf("older event overwrote the book: %+v", b)
	}

	if _, err := s.Book(ctx, xsw, "999"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing book: err = %v, want ErrNotFound", err)
	}
}

func TestTOCPage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		change    func(r *events.ChapterRef)
		keepsText bool
	}{
		{"same ref keeps text", func(*events.ChapterRef) {}, true},
		{"new title keeps text", func(r *events.ChapterRef) { r.Title = "第二章 改" }, true},
		{"new url keeps text", func(r *events.ChapterRef) { r.URL += "?v=2" }, true},
		{"new chapter id clears text", func(r *events.ChapterRef) { r.ChapterID = "999002" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t)
			apply(t, s, tocEvent("7", 1, 1, refs(1, 3, 1000), t0))
			apply(t, s, chapterEvent("7", 2, "1002", "正文二", t0.Add(time.Minute)))
			page := refs(1, 3, 1000)
			tt.change(&page[1])
			apply(t, s, tocEvent("7", 1, 1, page, t0.Add(time.Hour)))

			cs := chapters(t, s, "7")
			if len(cs) != 3 {
				t.Fatalf("%d chapters, want 3", len(cs))
			}
			c := cs[1]
			if c.ChapterID != page[1].ChapterID || c.Title != page[1].Title || c.URL != page[1].URL {
				t.Errorf("ref not updated: %+v, want %+v", c, page[1])
			}
			hasText := c.Text != nil && *c.Text == "正文二" && c.FetchedAt != nil
			if hasText != tt.keepsText {
				t.Errorf("text kept = %v (text %v fetched_at %v), want %v", hasText, c.Text, c.FetchedAt, tt.keepsText)
			}
			if !tt.keepsText && (c.Text != nil || c.FetchedAt != nil) {
				t.Errorf("text or fetched_at left on a ref naming another chapter")
			}
		})
	}
}

func TestTOCPageIdempotent(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	page := tocEvent("7", 1, 2, refs(1, 20, 1000), t0)
	res := apply(t, s, page)
	if res.Changed[0] < 20 {
		t.Errorf("first page changed %d rows, want at least 20", res.Changed[0])
	}
	before := dump(t, pool)
	res = apply(t, s, page, page)
	if res.Changed[0] != 0 || res.Changed[1] != 0 {
		t.Errorf("same page again changed %v rows", res.Changed)
	}
	if after := dump(t, pool); after != before {
		t.Errorf("same page again changed the rows:\n%s\nwant\n%s", after, before)
	}
	// A page of an older sync arriving late changes nothing either.
	older := refs(1, 20, 5000)
	if res := apply(t, s, tocEvent("7", 1, 2, older, t0.Add(-time.Hour))); res.Changed[0] != 0 {
		t.Errorf("older page changed %d rows", res.Changed[0])
	}
	if cs := chapters(t, s, "7"); cs[0].ChapterID != "1001" {
		t.Errorf("older page overwrote chapter 1: id %s", cs[0].ChapterID)
	}
}

func TestTOCPageRepeatedNumber(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	page := refs(1, 3, 1000)
	page = append(page, events.ChapterRef{Number: 2, ChapterID: "2222", Title: "重複", URL: "u"})
	apply(t, s, tocEvent("7", 1, 1, page, t0))
	cs := chapters(t, s, "7")
	if len(cs) != 3 || cs[1].ChapterID != "2222" {
		t.Errorf("chapters %+v, want 3 with the last ref of number 2", cs)
	}
}

func TestBulkPage(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	const n = 3000
	res := apply(t, s, tocEvent("42", 1, 1, refs(1, n, 100000), t0))
	if len(res.Books) != 1 || res.Books[0].Chapters != n {
		t.Errorf("state %+v, want %d chapters", res.Books, n)
	}
	var count int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM chapters WHERE site = 'xsw' AND book_id = '42'`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Errorf("%d chapters stored, want %d", count, n)
	}
	cs := chapters(t, s, "42")
	if c := cs[n-1]; c.Num != n || c.ChapterID != strconv.Itoa(100000+n) || c.TitleNum == nil || *c.TitleNum != n {
		t.Errorf("last ref %+v", c)
	}
}

func TestChapterFetched(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)

	// Text before the TOC: the ref is created from the event.
	apply(t, s, chapterEvent("7", 5, "1005", "正文五", t0))
	cs := chapters(t, s, "7")
	if len(cs) != 1 || cs[0].Num != 5 || cs[0].ChapterID != "1005" || cs[0].Text == nil || *cs[0].Text != "正文五" {
		t.Fatalf("text before TOC: %+v", cs)
	}
	// The TOC then lists it with the same id: the text stays.
	apply(t, s, tocEvent("7", 1, 1, refs(1, 6, 1000), t0.Add(time.Minute)))
	cs = chapters(t, s, "7")
	if len(cs) != 6 || cs[4].Text == nil || *cs[4].Text != "正文五" || cs[4].Title != "第5章" {
		t.Errorf("after TOC: %+v", cs[4])
	}

	// Text for a listed ref.
	apply(t, s, chapterEvent("7", 2, "1002", "正文二", t0.Add(2*time.Minute)))
	cs = chapters(t, s, "7")
	if c := cs[1]; c.Text == nil || *c.Text != "正文二" || !c.FetchedAt.Equal(t0.Add(2*time.Minute)) || c.Title != "第2章 正文" {
		t.Errorf("text for a listed ref: %+v", c)
	}
	before := dump(t, pool)
	if res := apply(t, s, chapterEvent("7", 2, "1002", "正文二", t0.Add(2*time.Minute))); res.Changed[0] != 0 {
		t.Errorf("same text again changed %d rows", res.Changed[0])
	}
	if after := dump(t, pool); after != before {
		t.Error("same text again changed the rows")
	}

	// Text for a chapter id the ref no longer names is dropped.
	if res := apply(t, s, chapterEvent("7", 3, "9999", "別的", t0.Add(3*time.Minute))); res.Changed[0] != 0 {
		t.Errorf("text of another chapter id changed %d rows", res.Changed[0])
	}
	if c := chapters(t, s, "7")[2]; c.Text != nil || c.ChapterID != "1003" {
		t.Errorf("text of another chapter id stored: %+v", c)
	}
}

func TestCompletedSync(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := t.Context()
	b := bookEvent("7", "書", t0)
	b.Book.LastChapterID = "1008"
	apply(t, s, b,
		tocEvent("7", 1, 2, refs(1, 5, 1000), t0),
		tocEvent("7", 2, 2, refs(6, 10, 1000), t0),
	)
	res := apply(t, s, completed("j1", "7", 10, 2, t0.Add(time.Minute)))
	if st := res.Books[0]; !st.Complete || st.Chapters != 10 || !st.HasMeta {
		t.Errorf("state after completion %+v", st)
	}
	bk := book(t, s, "7")
	if bk.ChapterTotal == nil || *bk.ChapterTotal != 10 || bk.TOCPages == nil || *bk.TOCPages != 2 ||
		bk.SyncJobID == nil || *bk.SyncJobID != "j1" || !bk.SyncedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("sync not recorded: %+v", bk)
	}
	if bk.LastChapterNum == nil || *bk.LastChapterNum != 8 {
		t.Errorf("last_chapter_num = %v, want 8 (the ref of last_chapter_id)", bk.LastChapterNum)
	}
	j, err := s.Job(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != "completed" || j.BookID != "7" || j.Lane != "manual" || j.Priority != 10 ||
		j.Attempts != 1 || j.Fetcher != "fetcher-a" || j.DurationMS == nil || *j.DurationMS != 10000 ||
		j.Chapters == nil || *j.Chapters != 10 || j.Requests == nil || *j.Requests != 3 ||
		j.EnqueuedAt == nil || j.StartedAt == nil || !j.FinishedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("history row %+v", j)
	}

	before := dump(t, pool)
	apply(t, s, completed("j1", "7", 10, 2, t0.Add(time.Minute)))
	if after := dump(t, pool); after != before {
		t.Error("same completion again changed the rows")
	}

	// The book shrank: the next sync publishes 7 chapters.
	apply(t, s, tocEvent("7", 1, 1, refs(1, 7, 1000), t0.Add(time.Hour)))
	res = apply(t, s, completed("j2", "7", 7, 1, t0.Add(time.Hour+time.Minute)))
	if st := res.Books[0]; !st.Complete || st.Chapters != 7 {
		t.Errorf("state after shrink %+v", st)
	}
	if cs := chapters(t, s, "7"); len(cs) != 7 || cs[6].Num != 7 {
		t.Errorf("%d chapters after shrink, want 7", len(cs))
	}
	if bk := book(t, s, "7"); bk.LastChapterNum == nil || *bk.LastChapterNum != 7 {
		t.Errorf("last_chapter_num = %v, want 7 (chapter_total: ref 1008 is gone)", bk.LastChapterNum)
	}

	// A redelivered older completion neither rolls the sync back nor trims refs that a
	// later sync listed.
	apply(t, s, tocEvent("7", 1, 1, refs(1, 12, 1000), t0.Add(2*time.Hour)))
	apply(t, s, completed("j1", "7", 10, 2, t0.Add(time.Minute)))
	if cs := chapters(t, s, "7"); len(cs) != 12 {
		t.Errorf("%d chapters after a stale completion, want 12", len(cs))
	}
	if bk := book(t, s, "7"); *bk.SyncJobID != "j2" {
		t.Errorf("stale completion took over: sync_job_id %s", *bk.SyncJobID)
	}
}

func TestCompletedBeforeLastPage(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	apply(t, s, bookEvent("7", "書", t0), tocEvent("7", 1, 2, refs(1, 5, 1000), t0))
	res := apply(t, s, completed("j1", "7", 10, 2, t0.Add(time.Minute)))
	if st := res.Books[0]; st.Complete || st.Chapters != 5 {
		t.Errorf("before the last page: %+v, want 5 chapters, incomplete", st)
	}
	res = apply(t, s, tocEvent("7", 2, 2, refs(6, 10, 1000), t0))
	if st := res.Books[0]; !st.Complete || st.Chapters != 10 {
		t.Errorf("after the last page: %+v, want 10 chapters, complete", st)
	}
	if bk := book(t, s, "7"); bk.LastChapterNum == nil || *bk.LastChapterNum != 10 {
		t.Errorf("last_chapter_num = %v, want 10", bk.LastChapterNum)
	}
}

func TestCompletedWithoutMetadata(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	res := apply(t, s, completed("j1", "7", 0, 1, t0))
	if st := res.Books[0]; st.HasMeta || !st.Complete {
		t.Errorf("state %+v, want complete without metadata", st)
	}
	apply(t, s, bookEvent("7", "書", t0.Add(time.Hour)))
	if bk := book(t, s, "7"); bk.Name != "書" || bk.ChapterTotal == nil {
		t.Errorf("book %+v", bk)
	}
}

func TestJobHistory(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := t.Context()

	failed := jobEvent(events.JobFailed, "j1", "7", t0)
	failed.Attempt, failed.Error, failed.Permanent, failed.Dead = 3, "404 not found", true, true
	skipped := jobEvent(events.JobSkipped, "j2", "8", t0)
	skipped.Reason = "synced 2m ago"
	apply(t, s,
		jobEvent(events.JobStarted, "j1", "7", t0.Add(-time.Minute)),
		jobEvent(events.JobRetrying, "j1", "7", t0.Add(-time.Second)),
		failed, skipped)

	j, err := s.Job(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != "failed" || j.Attempts != 3 || j.Error != "404 not found" || !j.Permanent || !j.Dead || j.Chapters != nil {
		t.Errorf("failed row %+v", j)
	}
	if j, err := s.Job(ctx, "j2"); err != nil || j.Status != "skipped" || j.Error != "synced 2m ago" {
		t.Errorf("skipped row %+v, %v", j, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM job_history`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d history rows (%v), want 2: started and retrying are not stored", n, err)
	}

	before := dump(t, pool)
	apply(t, s, failed)
	if after := dump(t, pool); after != before {
		t.Error("redelivered failure changed the rows")
	}

	// The same job completes later (replayed from the dead letters): the later one wins,
	// and the earlier failure redelivered afterwards does not undo it.
	apply(t, s, completed("j1", "7", 10, 1, t0.Add(time.Hour)))
	apply(t, s, failed)
	if j, _ := s.Job(ctx, "j1"); j.Status != "completed" || j.Error != "" || j.Permanent {
		t.Errorf("after completion: %+v", j)
	}
	if _, err := s.Job(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing job: %v, want ErrNotFound", err)
	}
}

func TestPruneHistory(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	apply(t, s,
		jobEvent(events.JobFailed, "old", "7", t0.Add(-8*24*time.Hour)),
		jobEvent(events.JobSkipped, "new", "7", t0))
	n, err := s.PruneHistory(ctx, t0.Add(-7*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PruneHistory = %d, %v; want 1", n, err)
	}
	if _, err := s.Job(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old row kept: %v", err)
	}
	if _, err := s.Job(ctx, "new"); err != nil {
		t.Errorf("new row pruned: %v", err)
	}
}

func categoriesEvent(site string, at time.Time, cs ...events.Category) *events.CategoriesFetched {
	return &events.CategoriesFetched{Header: events.Header{Version: events.Version}, Site: site, Categories: cs, FetchedAt: at}
}

func categories(tb testing.TB, s *store.Store, site string) []events.Category {
	tb.Helper()
	cs, err := s.Categories(context.Background(), site)
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

// TestCategories: a site's listing replaces its categories, in the order of its home
// page; an older listing, or an empty one, changes nothing.
func TestCategories(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	xuanhuan := events.Category{ID: "1", Name: "玄幻", URL: "https://m.xsw.tw/fenlei1_1.html"}
	wuxia := events.Category{ID: "2", Name: "武俠", URL: "https://m.xsw.tw/fenlei2_1.html"}
	dushi := events.Category{ID: "10", Name: "都市", URL: "https://m.xsw.tw/fenlei10_1.html"}
	ev := categoriesEvent(xsw, t0, dushi, xuanhuan, wuxia)
	if res := apply(t, s, ev); res.Changed[0] != 3 {
		t.Errorf("first listing changed %d rows, want 3", res.Changed[0])
	}
	if got := categories(t, s, xsw); !slices.Equal(got, []events.Category{dushi, xuanhuan, wuxia}) {
		t.Errorf("categories %+v, want the listing's order", got)
	}
	before := dump(t, pool)
	if res := apply(t, s, ev); res.Changed[0] != 0 {
		t.Errorf("same listing again changed %d rows", res.Changed[0])
	}
	if after := dump(t, pool); after != before {
		t.Error("same categories again changed the rows")
	}

	// A newer listing renames one, drops one and reorders.
	renamed := wuxia
	renamed.Name = "武俠仙俠"
	apply(t, s, categoriesEvent(xsw, t0.Add(time.Hour), renamed, xuanhuan))
	want := []events.Category{renamed, xuanhuan}
	if got := categories(t, s, xsw); !slices.Equal(got, want) {
		t.Errorf("after a newer listing: %+v, want %+v", got, want)
	}
	before = dump(t, pool)
	for _, stale := range []*events.CategoriesFetched{ev, categoriesEvent(xsw, t0.Add(2*time.Hour))} {
		if res := apply(t, s, stale); res.Changed[0] != 0 {
			t.Errorf("listing of %d categories at %v changed %d rows", len(stale.Categories), stale.FetchedAt, res.Changed[0])
		}
	}
	if after := dump(t, pool); after != before {
		t.Errorf("an older or empty listing changed the rows:\n%s\nwant\n%s", after, before)
	}
	var pos []int
	if err := pool.QueryRow(t.Context(), `SELECT array_agg(position ORDER BY position) FROM categories WHERE site = 'xsw'`).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pos, []int{0, 1}) {
		t.Errorf("positions %v, want 0 and 1", pos)
	}
}

// TestCategoriesOfTwoSites: each site's listing replaces its own categories only, even
// under the same ids.
func TestCategoriesOfTwoSites(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	a := events.Category{ID: "1", Name: "玄幻", URL: "https://m.xsw.tw/fenlei1_1.html"}
	b := events.Category{ID: "2", Name: "武俠", URL: "https://m.xsw.tw/fenlei2_1.html"}
	c := events.Category{ID: "1", Name: "玄幻小說", URL: "https://czbooks.net/c/xuanhuan"}
	d := events.Category{ID: "wuxia", Name: "武俠小說", URL: "https://czbooks.net/c/wuxia"}
	apply(t, s, categoriesEvent(xsw, t0, a, b), categoriesEvent("czbooks", t0.Add(-time.Hour), d, c))
	// A newer listing of one site, an older one of the other: each against its own rows.
	apply(t, s, categoriesEvent("czbooks", t0.Add(time.Hour), c), categoriesEvent(xsw, t0.Add(-2*time.Hour), b))
	if got := categories(t, s, xsw); !slices.Equal(got, []events.Category{a, b}) {
		t.Errorf("xsw categories %+v, want its own two", got)
	}
	if got := categories(t, s, "czbooks"); !slices.Equal(got, []events.Category{c}) {
		t.Errorf("czbooks categories %+v, want its newer listing's one", got)
	}
	if got := categories(t, s, "nosuch"); len(got) != 0 {
		t.Errorf("categories of an unknown site: %+v", got)
	}
}

func TestRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		bad  events.Payload
	}{
		{"NUL byte in a title", tocEvent("7", 1, 1, []events.ChapterRef{{Number: 1, ChapterID: "1", Title: "a\x00b", URL: "u"}}, t0)},
		{"chapter number beyond integer", chapterEvent("7", 1<<40, "1", "x", t0)},
		{"invalid UTF-8 text", chapterEvent("7", 1, "1", "\xff\xfe", t0)},
		{"book id no subject token holds", chapterEvent("7.1", 1, "1", "x", t0)},
		{"site id of capitals", inSite(t, "XSW", chapterEvent("7", 1, "1", "x", t0))},
		{"chapter id with a space", chapterEvent("7", 1, "1 2", "x", t0)},
		{"category id with a slash", categoriesEvent(xsw, t0, events.Category{ID: "a/b", Name: "n", URL: "u"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t)
			_, err := s.Apply(t.Context(), []events.Payload{bookEvent("7", "書", t0), tt.bad})
			var rej *store.RejectedError
			if !errors.As(err, &rej) || rej.Index != 1 {
				t.Fatalf("err = %v, want a RejectedError for event 1", err)
			}
			if got := dump(t, pool); got != "" {
				t.Errorf("a rejected batch left rows:\n%s", got)
			}
		})
	}
}

// TestSeedQueries runs the seed's troubleshooting SQL as written.
func TestSeedQueries(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	apply(t, s,
		bookEvent("1721851", "萬古神帝", t0),
		tocEvent("1721851", 1, 1, refs(1, 20, 1000), t0),
		completed("j1", "1721851", 20, 1, t0),
		bookEvent("1721852", "另一本", t0))
	books, counts := seedQueries(t, pool)
	want := map[string]seedBook{"1721851": {"萬古神帝", ptr[int32](10)}, "1721852": {"另一本", nil}}
	if len(books) != 2 || !books["1721851"].equal(want["1721851"]) || !books["1721852"].equal(want["1721852"]) {
		t.Errorf("books query: %v, want %v", books, want)
	}
	if len(counts) != 1 || counts["1721851"] != 20 {
		t.Errorf("chapters query: %v", counts)
	}
}

func ptr[T any](v T) *T { return &v }

// seedBook is a row of the seed's books query.
type seedBook struct {
	name string
	last *int32
}

func (b seedBook) equal(o seedBook) bool {
	return b.name == o.name && (b.last == nil) == (o.last == nil) && (b.last == nil || *b.last == *o.last)
}

// seedQueries runs the seed's two troubleshooting queries as written and returns what
// they list by book id (bigint before the sites, text since): each book's name and last
// chapter number, and each book's chapter count.
func seedQueries(tb testing.TB, pool *pgxpool.Pool) (map[string]seedBook, map[string]int64) {
	tb.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT id, name, last_chapter_num FROM books;`)
	if err != nil {
		tb.Fatal(err)
	}
	books := map[string]seedBook{}
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			tb.Fatal(err)
		}
		b := seedBook{name: v[1].(string)}
		if v[2] != nil {
			b.last = ptr(v[2].(int32))
		}
		books[fmt.Sprint(v[0])] = b
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	rows, err = pool.Query(ctx, `SELECT book_id, COUNT(*) AS chapter_count FROM chapters GROUP BY book_id;`)
	if err != nil {
		tb.Fatal(err)
	}
	counts := map[string]int64{}
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			tb.Fatal(err)
		}
		counts[fmt.Sprint(v[0])] = v[1].(int64)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return books, counts
}

func BenchmarkIndexTOCPage(b *testing.B) {
	for _, size := range []int{50, 3000} {
		b.Run(fmt.Sprintf("refs=%d", size), func(b *testing.B) {
			s, _ := newStore(b)
			page := refs(1, size, 100000)
			for i := 0; b.Loop(); i++ {
				// A new book each time: every ref is an insert.
				if _, err := s.Apply(context.Background(), []events.Payload{tocEvent(strconv.Itoa(i+1), 1, 1, page, t0)}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "refs/s")
		})
	}
}

// TestUnchangedResyncMarksChecked: a resync that found nothing new read no metadata, yet
// the book counts as checked then, and nothing else moves.
func TestUnchangedResyncMarksChecked(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	apply(t, s, bookEvent("7", "書", t0), tocEvent("7", 1, 1, refs(1, 5, 1000), t0), completed("j1", "7", 5, 1, t0.Add(time.Minute)))
	before := book(t, s, "7")
	later := completed("j2", "7", 5, 1, t0.Add(time.Hour))
	later.Unchanged = true
	apply(t, s, later)
	after := book(t, s, "7")
	if after.CheckedAt == nil || !after.CheckedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("checked_at = %v, want the unchanged resync's time", after.CheckedAt)
	}
	if !equalTime(after.ChangedAt, before.ChangedAt) || *after.ChapterTotal != 5 {
		t.Errorf("an unchanged resync changed the book: %+v", after)
	}
}

func equalTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// TestReadsCountOncePerBatch: read counts add up, a redelivered batch counts once, and
// books the database does not hold are ignored.
func TestReadsCountOncePerBatch(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	apply(t, s, bookEvent("7", "書", t0), bookEvent("8", "書", t0))
	apply(t, s, inSite(t, "czbooks", bookEvent("7", "另一站的書", t0)))
	// Keys are events.Key; a bare key (a version 1 report's) is xsw's.
	r1 := events.NewBooksRead("g", 1, map[string]int64{events.Key(xsw, "7"): 3, "8": 1, events.Key(xsw, "999"): 5}, t0, t0.Add(time.Minute))
	r2 := events.NewBooksRead("g", 2, map[string]int64{"7": 2, events.Key("czbooks", "7"): 4}, t0.Add(time.Minute), t0.Add(2*time.Minute))
	apply(t, s, &r1, &r2, &r1)
	for key, want := range map[string]int64{"xsw.7": 5, "xsw.8": 1, "czbooks.7": 4} {
		site, id, _ := events.SplitKey(key)
		var n int64
		var at *time.Time
		if err := pool.QueryRow(t.Context(), `SELECT read_count, read_at FROM books WHERE site = $1 AND id = $2`, site, id).Scan(&n, &at); err != nil {
			t.Fatal(err)
		}
		if n != want || at == nil {
			t.Errorf("book %s: read_count %d read_at %v, want %d and a time", key, n, at, want)
		}
	}
	bad := events.NewBooksRead("g", 3, map[string]int64{"xsw.7.8": 1}, t0, t0.Add(3*time.Minute))
	if _, err := s.Apply(t.Context(), []events.Payload{&bad}); !errors.As(err, new(*store.RejectedError)) {
		t.Errorf("a report naming no book: err = %v, want a RejectedError", err)
	}
}

// BenchmarkIndexBatch applies what one sync of a 400-chapter book publishes, as the
// consumer does: its metadata, twenty table-of-contents pages of twenty refs and the
// completion, in one batch.
func BenchmarkIndexBatch(b *testing.B) {
	s, _ := newStore(b)
	benchIndexBatch(b, s)
}

// BenchmarkIndexBatchNoTitleIndex is BenchmarkIndexBatch without the trigram index of
// chapter titles (migration 00006), which the gateway's search uses: the difference is
// what the index costs the indexer.
func BenchmarkIndexBatchNoTitleIndex(b *testing.B) {
	s, pool := newStore(b)
	if _, err := pool.Exec(context.Background(), `DROP INDEX chapters_title_trgm`); err != nil {
		b.Fatal(err)
	}
	benchIndexBatch(b, s)
}

func benchIndexBatch(b *testing.B, s *store.Store) {
	b.Helper()
	for i := 0; b.Loop(); i++ {
		id := strconv.Itoa(i + 1)
		evs := []events.Payload{bookEvent(id, "書", t0)}
		for p := 1; p <= 20; p++ {
			evs = append(evs, tocEvent(id, p, 20, refs((p-1)*20+1, p*20, 100000), t0))
		}
		evs = append(evs, completed("j"+id, id, 400, 20, t0.Add(time.Minute)))
		if _, err := s.Apply(context.Background(), evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*400)/b.Elapsed().Seconds(), "refs/s")
}
