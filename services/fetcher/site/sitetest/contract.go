package sitetest

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/fetcher/site"
)

// AddCorpus seeds f with every saved page in testdata, whatever its kind (a page of one
// kind is a good malformed page of another), an empty page and the seeds.
func AddCorpus(f *testing.F, seeds ...string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.html"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no pages in testdata: %v", err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatalf("read %s: %v", file, err)
		}
		f.Add(body)
	}
	f.Add([]byte(""))
	for _, s := range seeds {
		f.Add([]byte(s))
	}
}

// Contract checks what a Source's parsers return against the adapter contract of
// package site, whatever the page: a nil error or a *site.ParseError for the page, ids
// canonical and valid, chapters numbered in order, links absolute under the base. Each
// check returns whether the parser gave a record (no error) for the caller's own checks
// of the site's rules.
type Contract struct {
	Source  site.Source
	Base    *url.URL // the base Source was built on
	PageURL *url.URL // the absolute URL the parsed pages are said to come from
}

// Err fails t unless err is nil or a *site.ParseError for the kind of page at PageURL;
// it reports whether err is nil.
func (c Contract) Err(t testing.TB, kind string, err error) bool {
	t.Helper()
	if err == nil {
		return true
	}
	var pe *site.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, site.ErrParse) || pe.Page != kind || pe.URL != c.PageURL.String() {
		t.Fatalf("error %v (%T) is not a *site.ParseError for the %s page at %s", err, err, kind, c.PageURL)
	}
	return false
}

// Link fails t unless link is empty or an absolute URL under Base: its scheme and host,
// and a path under its path.
func (c Contract) Link(t testing.TB, link string) {
	t.Helper()
	if link == "" {
		return
	}
	prefix := strings.TrimRight(c.Base.EscapedPath(), "/") + "/"
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, c.Base.Scheme+"://"+c.Base.Host+prefix) ||
		u.Scheme != c.Base.Scheme || u.Host != c.Base.Host || !strings.HasPrefix(u.EscapedPath(), prefix) {
		t.Fatalf("link %q is not an absolute URL under %s", link, c.Base)
	}
}

// Home checks what ParseHome returned: categories, at least one, with canonical ids
// that can be carried, none twice, their links under the base.
func (c Contract) Home(t testing.TB, cats []site.Category, err error) bool {
	t.Helper()
	if !c.Err(t, "home", err) {
		return false
	}
	if len(cats) == 0 {
		t.Fatal("no categories and no error")
	}
	seen := map[string]bool{}
	for _, cat := range cats {
		if !c.Source.CanonicalCategoryID(cat.ID) || !events.ValidID(cat.ID) {
			t.Fatalf("category id %q is not canonical", cat.ID)
		}
		if seen[cat.ID] {
			t.Fatalf("category %s twice", cat.ID)
		}
		seen[cat.ID] = true
		c.Link(t, cat.URL)
	}
	return true
}

// Listing checks what ParseListing returned: a list (empty past the end, never nil),
// book ids empty or canonical and valid, newest-chapter links under the base.
func (c Contract) Listing(t testing.TB, books []site.ListingBook, err error) bool {
	t.Helper()
	if !c.Err(t, "listing", err) {
		return false
	}
	if books == nil {
		t.Fatal("nil list and no error")
	}
	for _, b := range books {
		if b.BookID != "" && (!c.Source.CanonicalBookID(b.BookID) || !events.ValidID(b.BookID)) {
			t.Fatalf("book id %q is not canonical", b.BookID)
		}
		c.Link(t, b.LastChapterURL)
	}
	return true
}

// Book checks what ParseBook returned: a name; the newest chapter and the preview under
// the base, the cover absolute; volumes titled and in order. A paginated Source leaves
// the chapter list (Book.TOC) out; any other gives it as page 1 of 1 (Chapters from 1),
// its last chapter the newest.
func (c Contract) Book(t testing.TB, b *site.Book, err error) bool {
	t.Helper()
	if !c.Err(t, "book", err) {
		return false
	}
	if b.Name == "" {
		t.Fatal("book without a name and no error")
	}
	c.Link(t, b.LastChapterURL)
	for _, l := range b.Preview {
		if !events.ValidID(l.ChapterID) {
			t.Fatalf("preview chapter id %q cannot be carried", l.ChapterID)
		}
		c.Link(t, l.URL)
	}
	if b.CoverURL != "" {
		if u, err := url.Parse(b.CoverURL); err != nil || !u.IsAbs() {
			t.Fatalf("cover %q is not absolute", b.CoverURL)
		}
	}
	n := -1 // chapters in the list, when the page carries it
	if _, paginated := c.Source.(site.Paginated); paginated {
		if b.TOC != nil {
			t.Fatalf("book %+v: a paginated site's book page carries no chapter list", b)
		}
	} else {
		if b.TOC == nil || b.TOC.Chapters == nil || b.TOC.Page != 1 || b.TOC.TotalPages != 1 || b.TOC.HasNext {
			t.Fatalf("book %+v: want a list as page 1 of 1", b)
		}
		c.Chapters(t, b.TOC.Chapters, 1)
		n = len(b.TOC.Chapters)
		if n > 0 && (b.LastChapterID != b.TOC.Chapters[n-1].ChapterID || b.LastChapterURL != b.TOC.Chapters[n-1].URL) ||
			n == 0 && (b.LastChapterID != "" || b.LastChapterURL != "") {
			t.Fatalf("newest chapter %q at %q; want the list's last", b.LastChapterID, b.LastChapterURL)
		}
	}
	prev := 1
	for _, v := range b.Volumes {
		if v.Title == "" || v.FirstChapter < prev || n >= 0 && v.FirstChapter > n+1 {
			t.Fatalf("volume %+v out of order or range (after %d, %d chapters)", v, prev, n)
		}
		prev = v.FirstChapter
	}
	return true
}

// TOC checks what ParseTOC returned for a page whose first chapter is number first: a
// page count, a list (empty past the end, never nil), Chapters.
func (c Contract) TOC(t testing.TB, toc *site.TOCPage, err error, first int) bool {
	t.Helper()
	if !c.Err(t, "toc", err) {
		return false
	}
	if toc.TotalPages < 1 || toc.Chapters == nil {
		t.Fatalf("got %+v; want TotalPages >= 1 and a non-nil list", toc)
	}
	c.Chapters(t, toc.Chapters, first)
	return true
}

// Chapters checks a chapter list whose first chapter is number first: numbered first,
// first+1, … in order, ids that can be carried and none twice, links under the base.
func (c Contract) Chapters(t testing.TB, refs []site.ChapterRef, first int) {
	t.Helper()
	seen := map[string]bool{}
	for i, r := range refs {
		if r.Number != first+i {
			t.Fatalf("chapter %d numbered %d; want %d", i, r.Number, first+i)
		}
		if !events.ValidID(r.ChapterID) || seen[r.ChapterID] {
			t.Fatalf("chapter id %q cannot be carried or repeats", r.ChapterID)
		}
		seen[r.ChapterID] = true
		c.Link(t, r.URL)
	}
}

// Chapter checks what ParseChapter returned: text whose lines are neither empty nor
// padded, a trimmed title, previous and next links under the base.
func (c Contract) Chapter(t testing.TB, ch *site.Chapter, err error) bool {
	t.Helper()
	if !c.Err(t, "chapter", err) {
		return false
	}
	if ch.Text == "" {
		t.Fatal("chapter without text and no error")
	}
	for _, line := range strings.Split(ch.Text, "\n") {
		if line == "" || line != strings.TrimSpace(line) {
			t.Fatalf("text line %q is empty or untrimmed", line)
		}
	}
	if ch.Title != strings.TrimSpace(ch.Title) {
		t.Fatalf("title %q untrimmed", ch.Title)
	}
	c.Link(t, ch.PrevURL)
	c.Link(t, ch.NextURL)
	return true
}
