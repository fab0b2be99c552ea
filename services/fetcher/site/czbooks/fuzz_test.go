package czbooks

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
	f.Add([]byte(`<div class="novel-detail"><div class="info"><div class="title">《》》</div></div><ul class="chapter-list"><li class="volume"><a href="//czbooks.net/n/cr382b/a">卷</a><li><a href="../cr382b/a">第1章</a>`))
	f.Add([]byte(`<li class="novel-item-wrapper"><div class="novel-item"><a href="//czbooks.net/n/../n/x/">x</a></div>`))
	f.Add([]byte(`<div class="chapter-detail"><div class="content"><ins><p>a</p></ins>&#x3000;b<br><div class="ads">c</div>`))
}

// fuzzBase is the base the fuzzed pages are parsed on, with a path prefix, and fuzzURL
// where they are said to come from.
var (
	fuzzBase, _ = url.Parse("http://127.0.0.1:8080/cz")
	fuzzURL, _  = url.Parse("http://127.0.0.1:8080/cz/n/cr382b")
)

// checkErr fails unless err is nil or a *site.ParseError for the page kind and URL.
func checkErr(t *testing.T, kind string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *site.ParseError
	if !errors.As(err, &pe) || !errors.Is(err, site.ErrParse) || pe.Page != kind || pe.URL != fuzzURL.String() {
		t.Fatalf("error %v (%T) is not a *site.ParseError for the %s page at %s", err, err, kind, fuzzURL)
	}
}

// checkLink fails unless link is empty or an absolute URL under the base.
func checkLink(t *testing.T, link string) {
	t.Helper()
	if link == "" {
		return
	}
	u, err := url.Parse(link)
	if err != nil || u.Scheme != fuzzBase.Scheme || u.Host != fuzzBase.Host || !strings.HasPrefix(u.EscapedPath(), fuzzBase.Path+"/") {
		t.Fatalf("link %q is not an absolute URL under %s", link, fuzzBase)
	}
}

// checkChapterURL fails unless link is the URL of chapter id of book cr382b (a query
// allowed).
func checkChapterURL(t *testing.T, link, id string) {
	t.Helper()
	checkLink(t, link)
	want := fuzzBase.String() + "/n/cr382b/" + id
	if link != want && !strings.HasPrefix(link, want+"?") {
		t.Fatalf("link %q is not chapter %s of the book (%s)", link, id, want)
	}
}

func FuzzParseHome(f *testing.F) {
	addCorpus(f)
	s := New(fuzzBase)
	f.Fuzz(func(t *testing.T, body []byte) {
		cats, err := s.ParseHome(body, fuzzURL)
		checkErr(t, pageHome, err)
		if err == nil && len(cats) == 0 {
			t.Fatal("no categories and no error")
		}
		seen := map[string]bool{}
		for _, c := range cats {
			if !s.CanonicalCategoryID(c.ID) || !events.ValidID(c.ID) {
				t.Fatalf("category id %q is not canonical", c.ID)
			}
			if seen[c.ID] {
				t.Fatalf("category %s twice", c.ID)
			}
			seen[c.ID] = true
			checkLink(t, c.URL)
			if !strings.Contains(c.URL, "/c/"+c.ID) {
				t.Fatalf("category %s at %s", c.ID, c.URL)
			}
		}
	})
}

func FuzzParseListing(f *testing.F) {
	addCorpus(f)
	s := New(fuzzBase)
	f.Fuzz(func(t *testing.T, body []byte) {
		books, err := s.ParseListing(body, fuzzURL)
		checkErr(t, pageListing, err)
		if err == nil && books == nil {
			t.Fatal("nil list and no error")
		}
		for _, b := range books {
			if b.BookID != "" && (!s.CanonicalBookID(b.BookID) || !events.ValidID(b.BookID)) {
				t.Fatalf("book id %q is not canonical", b.BookID)
			}
			if b.BookURL == "" {
				t.Fatalf("book %+v without a URL", b)
			}
			checkLink(t, b.BookURL)
			checkLink(t, b.LastChapterURL)
		}
	})
}

func FuzzParseBook(f *testing.F) {
	addCorpus(f)
	s := New(fuzzBase)
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := s.ParseBook(body, fuzzURL, "cr382b")
		checkErr(t, pageBook, err)
		if err != nil {
			return
		}
		if b.Name == "" || b.TOC == nil || b.TOC.Chapters == nil || b.TOC.Page != 1 || b.TOC.TotalPages != 1 || b.TOC.HasNext {
			t.Fatalf("book %+v: want a name and a list as page 1 of 1", b)
		}
		seen := map[string]bool{}
		for i, c := range b.TOC.Chapters {
			if c.Number != i+1 {
				t.Fatalf("chapter %d numbered %d", i+1, c.Number)
			}
			if !s.CanonicalBookID(c.ChapterID) || !events.ValidID(c.ChapterID) || seen[c.ChapterID] {
				t.Fatalf("chapter id %q is not canonical or repeats", c.ChapterID)
			}
			seen[c.ChapterID] = true
			checkChapterURL(t, c.URL, c.ChapterID)
		}
		n := len(b.TOC.Chapters)
		if n > 0 && (b.LastChapterID != b.TOC.Chapters[n-1].ChapterID || b.LastChapterURL != b.TOC.Chapters[n-1].URL) ||
			n == 0 && (b.LastChapterID != "" || b.LastChapterURL != "") {
			t.Fatalf("newest chapter %q at %q; want the list's last", b.LastChapterID, b.LastChapterURL)
		}
		prev := 1
		for _, v := range b.Volumes {
			if v.Title == "" || v.FirstChapter < prev || v.FirstChapter > n+1 {
				t.Fatalf("volume %+v out of order or range (after %d, %d chapters)", v, prev, n)
			}
			prev = v.FirstChapter
		}
		if b.CoverURL != "" {
			if u, err := url.Parse(b.CoverURL); err != nil || !u.IsAbs() {
				t.Fatalf("cover %q is not absolute", b.CoverURL)
			}
		}
	})
}

func FuzzParseChapter(f *testing.F) {
	addCorpus(f)
	s := New(fuzzBase)
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := s.ParseChapter(body, fuzzURL, "cr382b", "crdic")
		checkErr(t, pageChapter, err)
		if err != nil {
			return
		}
		if c.Text == "" {
			t.Fatal("chapter without text and no error")
		}
		for _, line := range strings.Split(c.Text, "\n") {
			if line == "" || line != strings.TrimSpace(line) || namesSite(line) {
				t.Fatalf("text line %q is empty, untrimmed or names the site", line)
			}
		}
		if c.Title != strings.TrimSpace(c.Title) {
			t.Fatalf("title %q untrimmed", c.Title)
		}
		checkLink(t, c.PrevURL)
		checkLink(t, c.NextURL)
	})
}
