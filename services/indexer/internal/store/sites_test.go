package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/indexer/internal/store"
)

// syncEvents is what one sync of a book of site publishes: its metadata, one page of n
// refs (chapter ids base+number), the text of chapter 1 and the completion.
func syncEvents(t *testing.T, site, id, name string, n int, base int64, at time.Time) []events.Payload {
	t.Helper()
	evs := []events.Payload{
		bookEvent(id, name, at),
		tocEvent(id, 1, 1, refs(1, n, base), at),
		chapterEvent(id, 1, refs(1, 1, base)[0].ChapterID, name+"的正文", at.Add(time.Second)),
		completed("j"+id, id, n, 1, at.Add(time.Minute)),
	}
	if site != xsw {
		for i, ev := range evs {
			evs[i] = inSite(t, site, ev)
		}
	}
	return evs
}

// TestTwoSitesOneBookID: two sites' books under the same id are two books in every
// table, in the states a batch reports and in what each later event touches.
func TestTwoSitesOneBookID(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := t.Context()
	batch := append(syncEvents(t, xsw, "7", "甲", 5, 1000, t0), syncEvents(t, "czbooks", "7", "乙", 3, 2000, t0)...)
	res := apply(t, s, batch...)
	want := []store.BookState{
		{Site: xsw, BookID: "7", Chapters: 5, Complete: true, HasMeta: true},
		{Site: "czbooks", BookID: "7", Chapters: 3, Complete: true, HasMeta: true},
	}
	if !slices.Equal(res.Books, want) {
		t.Errorf("books %+v, want %+v", res.Books, want)
	}

	for _, tc := range []struct {
		site, name, text, job string
		chapters              int
	}{
		{xsw, "甲", "甲的正文", "j7", 5},
		{"czbooks", "乙", "乙的正文", "czbooks.j7", 3},
	} {
		b := siteBook(t, s, tc.site, "7")
		if b.Site != tc.site || b.ID != "7" || b.Name != tc.name || b.ChapterTotal == nil || *b.ChapterTotal != tc.chapters ||
			b.SyncJobID == nil || *b.SyncJobID != tc.job {
			t.Errorf("%s book: %+v", tc.site, b)
		}
		cs := siteChapters(t, s, tc.site, "7")
		if len(cs) != tc.chapters || cs[0].Site != tc.site || cs[0].Text == nil || *cs[0].Text != tc.text {
			t.Errorf("%s chapters: %d, first %+v", tc.site, len(cs), cs[0])
		}
		j, err := s.Job(ctx, tc.job)
		if err != nil || j.Site != tc.site || j.BookID != "7" {
			t.Errorf("%s job: %+v, %v", tc.site, j, err)
		}
		st, err := s.BookStates(ctx, tc.site, "7")
		if err != nil || len(st) != 1 || st[0].Site != tc.site || st[0].Chapters != tc.chapters {
			t.Errorf("%s state: %+v, %v", tc.site, st, err)
		}
	}

	// Whatever happens to one site's book leaves the other's rows as they were.
	xswRows := func() string {
		t.Helper()
		var out string
		err := pool.QueryRow(ctx, `SELECT concat_ws(E'\n',
			(SELECT json_agg(b ORDER BY id) FROM books b WHERE site = 'xsw'),
			(SELECT json_agg(c ORDER BY num) FROM chapters c WHERE site = 'xsw'),
			(SELECT json_agg(j ORDER BY job_id) FROM job_history j WHERE site = 'xsw'))`).Scan(&out)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := xswRows()
	purge := events.NewBookPurgeRequested("czbooks", "7", "admin", t0.Add(time.Hour))
	reads := events.NewBooksRead("g", 1, map[string]int64{events.Key("czbooks", "7"): 9}, t0, t0.Add(time.Hour))
	res = apply(t, s,
		inSite(t, "czbooks", bookEvent("7", "乙改", t0.Add(time.Hour))),
		// The czbooks book shrinks to two chapters (of three: a shrink to less than
		// store.ShrinkFloor of them would be refused).
		inSite(t, "czbooks", tocEvent("7", 1, 1, refs(1, 2, 3000), t0.Add(time.Hour))),
		inSite(t, "czbooks", completed("j7-2", "7", 2, 1, t0.Add(time.Hour+time.Minute))),
		&purge, &reads)
	if len(res.Books) != 1 || res.Books[0].Site != "czbooks" || res.Books[0].Chapters != 2 {
		t.Errorf("books touched %+v, want czbooks 7 alone", res.Books)
	}
	if after := xswRows(); after != before {
		t.Errorf("events of czbooks 7 changed xsw 7:\n%s\nwant\n%s", after, before)
	}
	if b := siteBook(t, s, "czbooks", "7"); b.Name != "乙改" || *b.ChapterTotal != 2 {
		t.Errorf("czbooks book after its resync: %+v", b)
	}
	var reads7 map[string]int64
	if err := pool.QueryRow(ctx, `SELECT json_object_agg(site, read_count) FROM books WHERE id = '7'`).Scan(&reads7); err != nil {
		t.Fatal(err)
	}
	if reads7["xsw"] != 0 || reads7["czbooks"] != 9 {
		t.Errorf("read counts %v, want czbooks' alone", reads7)
	}

	// And the other way round.
	czRows := func() string {
		t.Helper()
		var out string
		err := pool.QueryRow(ctx, `SELECT concat_ws(E'\n',
			(SELECT json_agg(b ORDER BY id) FROM books b WHERE site = 'czbooks'),
			(SELECT json_agg(c ORDER BY num) FROM chapters c WHERE site = 'czbooks'),
			(SELECT json_agg(j ORDER BY job_id) FROM job_history j WHERE site = 'czbooks'))`).Scan(&out)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before = czRows()
	xswPurge := events.NewBookPurgeRequested(xsw, "7", "admin", t0.Add(2*time.Hour))
	apply(t, s, &xswPurge, completed("j7-3", "7", 3, 1, t0.Add(2*time.Hour)))
	if after := czRows(); after != before {
		t.Errorf("events of xsw 7 changed czbooks 7:\n%s\nwant\n%s", after, before)
	}
	if cs := siteChapters(t, s, xsw, "7"); len(cs) != 3 || cs[0].Text != nil {
		t.Errorf("xsw chapters after its purge and shrink: %+v", cs)
	}
}

// TestVolumes: a book's volume headers are stored with its metadata, and a change of
// them is a change of the metadata.
func TestVolumes(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	e := inSite(t, "czbooks", bookEvent("cr382b", "書", t0))
	e.Book.Volumes = []events.Volume{{Title: "第一卷 初入", FirstChapter: 1}, {Title: "第二卷", FirstChapter: 41}}
	apply(t, s, e)
	b := siteBook(t, s, "czbooks", "cr382b")
	if !slices.Equal(b.Volumes, e.Book.Volumes) {
		t.Errorf("volumes %+v, want %+v", b.Volumes, e.Book.Volumes)
	}
	later := *e
	later.FetchedAt = t0.Add(time.Hour)
	later.Book.Volumes = append(slices.Clone(e.Book.Volumes), events.Volume{Title: "第三卷", FirstChapter: 90})
	apply(t, s, &later)
	b = siteBook(t, s, "czbooks", "cr382b")
	if len(b.Volumes) != 3 || b.ChangedAt == nil || !b.ChangedAt.Equal(later.FetchedAt) {
		t.Errorf("after a new volume: volumes %+v changed_at %v", b.Volumes, b.ChangedAt)
	}
	// A book of a site without volumes holds none.
	apply(t, s, bookEvent("7", "書", t0))
	if b := book(t, s, "7"); b.Volumes == nil || len(b.Volumes) != 0 {
		t.Errorf("volumes of a book without any: %#v, want empty", b.Volumes)
	}
	if _, err := s.Book(context.Background(), xsw, "cr382b"); err == nil {
		t.Error("czbooks' book read as xsw's")
	}
}
