package xsw

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

// addCorpus seeds f with every saved page in testdata, whatever its kind: a page of
// one kind is a good malformed page of another.
func addCorpus(f *testing.F) {
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
	f.Add([]byte("<div class=cover><ul><li><a href=1.html>第1章</a>"))
}

// fuzzURL is where fuzzed pages are said to come from.
var fuzzURL, _ = url.Parse("https://m.xsw.tw/1721851/page-1.html")

// checkErr fails unless err is nil or a *site.ParseError for the page kind.
func checkErr(t *testing.T, kind string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *site.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, site.ErrParse) || pe.Page != kind {
		t.Fatalf("error %v (%T) is not a *site.ParseError for a %s page", err, err, kind)
	}
}

// checkLink fails unless link is empty or an absolute URL on the fuzzed page's origin.
func checkLink(t *testing.T, link string) {
	t.Helper()
	if link != "" && !strings.HasPrefix(link, "https://m.xsw.tw/") {
		t.Fatalf("link %q is not on the page's origin", link)
	}
}

func FuzzParseHome(f *testing.F) {
	addCorpus(f)
	s := New(nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		cats, err := s.ParseHome(body, fuzzURL)
		checkErr(t, pageHome, err)
		seen := map[string]bool{}
		for _, c := range cats {
			if !s.CanonicalCategoryID(c.ID) {
				t.Fatalf("category id %q is not canonical", c.ID)
			}
			if seen[c.ID] {
				t.Fatalf("category %s twice", c.ID)
			}
			seen[c.ID] = true
			checkLink(t, c.URL)
		}
	})
}

func FuzzParseListing(f *testing.F) {
	addCorpus(f)
	s := New(nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		books, err := s.ParseListing(body, fuzzURL)
		checkErr(t, pageListing, err)
		for _, b := range books {
			if b.BookID != "" && !s.CanonicalBookID(b.BookID) {
				t.Fatalf("book id %q", b.BookID)
			}
			checkLink(t, b.LastChapterURL)
		}
	})
}

func FuzzParseBook(f *testing.F) {
	addCorpus(f)
	s := New(nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := s.ParseBook(body, fuzzURL, "1721851")
		checkErr(t, pageBook, err)
		if err != nil {
			return
		}
		if b.Name == "" {
			t.Fatal("book without a name and no error")
		}
		checkLink(t, b.LastChapterURL)
		for _, c := range b.Preview {
			checkLink(t, c.URL)
			if !strings.HasSuffix(c.URL, "/1721851/"+c.ChapterID+".html") {
				t.Fatalf("preview link %q is not chapter %s of the book", c.URL, c.ChapterID)
			}
		}
	})
}

func FuzzParseTOC(f *testing.F) {
	addCorpus(f)
	s := New(nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		toc, err := s.ParseTOC(body, fuzzURL, "1721851", 2, 21)
		checkErr(t, pageTOC, err)
		if err != nil {
			return
		}
		if toc.TotalPages < 1 || toc.Chapters == nil {
			t.Fatalf("got %+v; want TotalPages >= 1 and a non-nil list", toc)
		}
		for i, c := range toc.Chapters {
			if c.Number != 21+i {
				t.Fatalf("chapter %d numbered %d; want %d", i, c.Number, 21+i)
			}
			checkLink(t, c.URL)
			if !strings.HasSuffix(c.URL, "/1721851/"+c.ChapterID+".html") {
				t.Fatalf("link %q is not chapter %s of the book", c.URL, c.ChapterID)
			}
			if !events.ValidID(c.ChapterID) {
				t.Fatalf("chapter id %q cannot be carried", c.ChapterID)
			}
		}
	})
}

func FuzzParseChapter(f *testing.F) {
	addCorpus(f)
	s := New(nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := s.ParseChapter(body, fuzzURL, "1721851", "251000001")
		checkErr(t, pageChapter, err)
		if err != nil {
			return
		}
		if c.Text == "" {
			t.Fatal("chapter without text and no error")
		}
		for _, line := range strings.Split(c.Text, "\n") {
			if line == "" || line != strings.TrimSpace(line) {
				t.Fatalf("text line %q is empty or untrimmed", line)
			}
		}
		checkLink(t, c.PrevURL)
		checkLink(t, c.NextURL)
	})
}
