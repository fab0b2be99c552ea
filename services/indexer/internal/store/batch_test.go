package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/indexer/internal/store"
)

// chapterRows returns the chapter refs of every book as JSON, without the times Postgres
// sets itself (created_at, updated_at), to compare the refs two stores hold.
func chapterRows(tb testing.TB, pool *pgxpool.Pool) string {
	tb.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT (to_jsonb(t) - 'created_at' - 'updated_at')::text FROM chapters t ORDER BY site, book_id, num`)
	if err != nil {
		tb.Fatalf("chapter rows: %v", err)
	}
	var b strings.Builder
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tb.Fatalf("chapter rows: %v", err)
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("chapter rows: %v", err)
	}
	return b.String()
}

// TestBatchOfSeveralBooks: the pages of books synced at the same time arrive interleaved
// in one batch, with other events of the same books between them. Each page's refs are
// counted for it, every event of a book sees what the book's earlier events wrote, and
// the batch applied again changes nothing.
func TestBatchOfSeveralBooks(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	text := chapterEvent("7", 3, "1003", "正文三", t0.Add(time.Second))
	// The title the table of contents lists: a text event's own title would be replaced
	// by the page's when the batch is applied again (as event by event).
	text.Title = "第3章"
	batch := []events.Payload{
		bookEvent("7", "甲", t0),
		bookEvent("8", "乙", t0),
		tocEvent("7", 1, 2, refs(1, 20, 1000), t0),
		tocEvent("8", 1, 2, refs(1, 20, 2000), t0),
		tocEvent("7", 2, 2, refs(21, 30, 1000), t0),
		// The text of a chapter page 1 listed: stored on that ref.
		text,
		tocEvent("8", 2, 2, refs(21, 25, 2000), t0),
		completed("j7", "7", 30, 2, t0.Add(time.Minute)),
		completed("j8", "8", 25, 2, t0.Add(time.Minute)),
	}
	res := apply(t, s, batch...)
	for i, want := range map[int]int64{2: 20, 3: 20, 5: 1} {
		if res.Changed[i] != want {
			t.Errorf("event %d changed %d rows, want %d (Changed %v)", i, res.Changed[i], want, res.Changed)
		}
	}
	// The last page of each book also counts the page count it recorded.
	if res.Changed[4] < 10 || res.Changed[6] < 5 {
		t.Errorf("last pages changed %d and %d rows, want at least their 10 and 5 refs", res.Changed[4], res.Changed[6])
	}
	wantBooks := []store.BookState{
		{Site: xsw, BookID: "7", Chapters: 30, Complete: true, HasMeta: true},
		{Site: xsw, BookID: "8", Chapters: 25, Complete: true, HasMeta: true},
	}
	if !slices.Equal(res.Books, wantBooks) {
		t.Errorf("books %+v, want %+v", res.Books, wantBooks)
	}
	for id, total := range map[string]int{"7": 30, "8": 25} {
		cs := chapters(t, s, id)
		if len(cs) != total {
			t.Fatalf("book %s: %d chapters, want %d", id, len(cs), total)
		}
		for _, c := range cs {
			if want := 1 + (c.Num-1)/20; c.TOCPage == nil || *c.TOCPage != want {
				t.Errorf("book %s chapter %d: toc_page %v, want %d", id, c.Num, c.TOCPage, want)
			}
		}
		b := book(t, s, id)
		if b.TOCPagesSeen == nil || *b.TOCPagesSeen != 2 {
			t.Errorf("book %s: toc_pages_seen %v, want 2", id, b.TOCPagesSeen)
		}
	}
	if c := chapters(t, s, "7")[2]; c.Text == nil || *c.Text != "正文三" {
		t.Errorf("text of chapter 3 not stored: %+v", c)
	}
	if b := book(t, s, "7"); b.LastChapterNum == nil || *b.LastChapterNum != 10 {
		t.Errorf("last_chapter_num %v, want 10 (the ref of last_chapter_id 1010)", b.LastChapterNum)
	}

	before := dump(t, pool)
	res = apply(t, s, batch...)
	for i, n := range res.Changed {
		if n != 0 {
			t.Errorf("event %d applied again changed %d rows", i, n)
		}
	}
	if after := dump(t, pool); after != before {
		t.Errorf("the batch applied again changed the rows:\n%s\nwant\n%s", after, before)
	}
}

// TestBookPagesInTwoBatches: a sync's pages split across two batches, the completion in
// the second; then the first batch redelivered late.
func TestBookPagesInTwoBatches(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	first := []events.Payload{bookEvent("7", "書", t0),
		tocEvent("7", 1, 3, refs(1, 20, 1000), t0), tocEvent("7", 2, 3, refs(21, 40, 1000), t0)}
	res := apply(t, s, first...)
	if st := res.Books[0]; st.Chapters != 40 || st.Complete {
		t.Errorf("after the first batch: %+v, want 40 chapters, incomplete", st)
	}
	res = apply(t, s, tocEvent("7", 3, 3, refs(41, 45, 1000), t0), completed("j1", "7", 45, 3, t0.Add(time.Minute)))
	if res.Changed[0] < 5 {
		t.Errorf("last page changed %d rows, want at least its 5 refs", res.Changed[0])
	}
	if st := res.Books[0]; st.Chapters != 45 || !st.Complete {
		t.Errorf("after the second batch: %+v, want 45 chapters, complete", st)
	}
	before := dump(t, pool)
	res = apply(t, s, first...)
	if !slices.Equal(res.Changed, []int64{0, 0, 0}) {
		t.Errorf("first batch again changed %v rows", res.Changed)
	}
	if after := dump(t, pool); after != before {
		t.Error("first batch again changed the rows")
	}
}

// TestBatchMatchesEventByEvent: whatever a batch holds (a page redelivered, pages of two
// syncs listing the same chapters, an older page after a newer one, chapter texts in
// between), its refs end as writing its events one batch each leaves them.
func TestBatchMatchesEventByEvent(t *testing.T) {
	t.Parallel()
	moved := refs(1, 5, 5000) // the same chapters under other ids
	renamed := refs(1, 5, 1000)
	renamed[2].Title = "第3章 改"
	tests := []struct {
		name string
		evs  []events.Payload
	}{
		{"page redelivered", []events.Payload{
			tocEvent("7", 1, 1, refs(1, 5, 1000), t0), tocEvent("7", 1, 1, refs(1, 5, 1000), t0)}},
		{"chapters moved and moved back", []events.Payload{
			tocEvent("7", 1, 1, refs(1, 5, 1000), t0),
			chapterEvent("7", 2, "1002", "正文", t0.Add(time.Second)),
			tocEvent("7", 1, 1, moved, t0.Add(time.Minute)),
			tocEvent("7", 1, 1, refs(1, 5, 1000), t0.Add(2*time.Minute))}},
		{"older page after a newer one", []events.Payload{
			tocEvent("7", 1, 2, renamed, t0.Add(time.Hour)),
			tocEvent("7", 1, 2, moved, t0),
			tocEvent("7", 2, 2, refs(6, 8, 1000), t0)}},
		{"text before its page", []events.Payload{
			chapterEvent("7", 4, "1004", "正文四", t0),
			tocEvent("7", 1, 1, refs(1, 5, 1000), t0.Add(time.Second)),
			chapterEvent("7", 5, "9999", "別的", t0.Add(2*time.Second))}},
		{"two books interleaved", []events.Payload{
			tocEvent("7", 1, 2, refs(1, 3, 1000), t0),
			tocEvent("8", 1, 1, refs(1, 3, 2000), t0),
			tocEvent("7", 2, 2, refs(4, 6, 1000), t0),
			tocEvent("8", 1, 1, moved, t0.Add(time.Minute)),
			tocEvent("7", 1, 2, moved, t0.Add(-time.Minute))}},
		{"two sites' books of one id interleaved", []events.Payload{
			tocEvent("7", 1, 2, refs(1, 3, 1000), t0),
			inSite(t, "czbooks", tocEvent("7", 1, 1, refs(1, 3, 2000), t0)),
			tocEvent("7", 2, 2, refs(4, 6, 1000), t0),
			inSite(t, "czbooks", chapterEvent("7", 2, "2002", "正文", t0.Add(time.Second))),
			inSite(t, "czbooks", tocEvent("7", 1, 1, moved, t0.Add(time.Minute))),
			tocEvent("7", 1, 2, moved, t0.Add(-time.Minute))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			batched, batchedPool := newStore(t)
			single, singlePool := newStore(t)
			res := apply(t, batched, tt.evs...)
			var want []int64
			for _, ev := range tt.evs {
				want = append(want, apply(t, single, ev).Changed[0])
			}
			if got, want := chapterRows(t, batchedPool), chapterRows(t, singlePool); got != want {
				t.Errorf("refs after the batch:\n%s\nwant, as event by event:\n%s", got, want)
			}
			// No book rows: the page counts and last chapters change nothing, so each
			// event's count is its refs' alone.
			if !slices.Equal(res.Changed, want) {
				t.Errorf("changed %v, want %v as event by event", res.Changed, want)
			}
		})
	}
}

// TestRejectedAmongPages: Postgres refuses one page of several that would be written
// together; the error names that page.
func TestRejectedAmongPages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		bad  func([]events.ChapterRef)
	}{
		{"NUL byte in a title", func(r []events.ChapterRef) { r[4].Title = "a\x00b" }},
		{"chapter number 0", func(r []events.ChapterRef) { r[4].Number = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t)
			bad := refs(21, 40, 1000)
			tt.bad(bad)
			_, err := s.Apply(t.Context(), []events.Payload{
				bookEvent("7", "書", t0),
				tocEvent("7", 1, 3, refs(1, 20, 1000), t0),
				tocEvent("8", 1, 1, refs(1, 20, 2000), t0),
				tocEvent("7", 2, 3, bad, t0),
				tocEvent("7", 3, 3, refs(41, 60, 1000), t0),
			})
			var rej *store.RejectedError
			if !errors.As(err, &rej) || rej.Index != 3 {
				t.Fatalf("err = %v, want a RejectedError for event 3", err)
			}
			if got := dump(t, pool); got != "" {
				t.Errorf("a rejected batch left rows:\n%s", got)
			}
		})
	}
}
