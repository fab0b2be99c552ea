package store_test

import (
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
)

// TestTOCPageRecordsSourcePage checks that each ref remembers the source page that listed
// it, and the book the page count its newest page reported.
func TestTOCPageRecordsSourcePage(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	apply(t, s, bookEvent("7", "書", t0),
		tocEvent("7", 1, 3, refs(1, 20, 1000), t0),
		tocEvent("7", 2, 3, refs(21, 40, 1000), t0.Add(time.Second)))
	for _, c := range chapters(t, s, "7") {
		want := 1
		if c.Num > 20 {
			want = 2
		}
		if c.TOCPage == nil || *c.TOCPage != want {
			t.Fatalf("chapter %d: toc_page %v, want %d", c.Num, c.TOCPage, want)
		}
	}
	if b := book(t, s, "7"); b.TOCPagesSeen == nil || *b.TOCPagesSeen != 3 {
		t.Errorf("toc_pages_seen = %v, want 3", b.TOCPagesSeen)
	}

	// A newer walk of the book says it has four pages now; a late page of the older walk
	// does not take that back.
	apply(t, s, tocEvent("7", 1, 4, refs(1, 20, 1000), t0.Add(time.Hour)))
	if res := apply(t, s, tocEvent("7", 3, 3, refs(41, 45, 1000), t0.Add(2*time.Second))); res.Changed[0] == 0 {
		t.Error("a late page of new refs changed nothing")
	}
	if b := book(t, s, "7"); b.TOCPagesSeen == nil || *b.TOCPagesSeen != 4 {
		t.Errorf("toc_pages_seen = %v after a late page of an older walk, want 4", b.TOCPagesSeen)
	}

	// A ref written with its text alone has no page until a table of contents lists it.
	apply(t, s, chapterEvent("8", 3, "2003", "正文", t0))
	if c := chapters(t, s, "8")[0]; c.TOCPage != nil {
		t.Errorf("ref from a chapter event: toc_page %v, want NULL", *c.TOCPage)
	}
	apply(t, s, tocEvent("8", 1, 1, refs(1, 3, 2000), t0.Add(time.Minute)))
	if c := chapters(t, s, "8")[2]; c.TOCPage == nil || *c.TOCPage != 1 || c.Text == nil {
		t.Errorf("ref listed later: toc_page %v text %v, want page 1 and the text kept", c.TOCPage, c.Text)
	}
}

func TestPurgeTexts(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	apply(t, s, bookEvent("7", "書", t0), tocEvent("7", 1, 1, refs(1, 3, 1000), t0),
		chapterEvent("7", 1, "1001", "正文一", t0.Add(time.Minute)),
		chapterEvent("7", 2, "1002", "正文二", t0.Add(3*time.Minute)),
		chapterEvent("9", 1, "3001", "別的書", t0.Add(time.Minute)))

	purge := events.NewBookPurgeRequested(xsw, "7", "admin", t0.Add(2*time.Minute))
	res := apply(t, s, &purge)
	if res.Changed[0] != 1 {
		t.Errorf("purge changed %d rows, want 1 (the text fetched before the request)", res.Changed[0])
	}
	if len(res.Books) != 1 || res.Books[0].BookID != "7" || res.Books[0].Chapters != 3 {
		t.Errorf("purge touched %+v, want book 7 to be announced", res.Books)
	}
	cs := chapters(t, s, "7")
	if cs[0].Text != nil || cs[0].FetchedAt != nil {
		t.Errorf("chapter 1 kept its text: %+v", cs[0])
	}
	if cs[1].Text == nil || *cs[1].Text != "正文二" {
		t.Errorf("chapter 2, fetched after the request, lost its text: %+v", cs[1])
	}
	if c := chapters(t, s, "9")[0]; c.Text == nil {
		t.Error("another book's text was purged")
	}

	before := dump(t, pool)
	if res := apply(t, s, &purge); res.Changed[0] != 0 {
		t.Errorf("redelivered purge changed %d rows", res.Changed[0])
	}
	if after := dump(t, pool); after != before {
		t.Error("redelivered purge changed the rows")
	}

	// A later purge takes the rest.
	later := events.NewBookPurgeRequested(xsw, "7", "admin", t0.Add(time.Hour))
	if res := apply(t, s, &later); res.Changed[0] != 1 {
		t.Errorf("later purge changed %d rows, want 1", res.Changed[0])
	}
}
