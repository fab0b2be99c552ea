package czbooks

import (
	"net/url"
	"strings"
	"testing"

	"github.com/xswtw/xsw/services/fetcher/site/sitetest"
)

// fuzzSeeds are fragments the fuzz targets start from, besides the saved pages.
var fuzzSeeds = []string{
	`<div class="novel-detail"><div class="info"><div class="title">《》》</div></div><ul class="chapter-list"><li class="volume"><a href="//czbooks.net/n/cr382b/a">卷</a><li><a href="../cr382b/a">第1章</a>`,
	`<li class="novel-item-wrapper"><div class="novel-item"><a href="//czbooks.net/n/../n/x/">x</a></div>`,
	`<div class="chapter-detail"><div class="content"><ins><p>a</p></ins>&#x3000;b<br><div class="ads">c</div>`,
	`<div class="chapter-detail"><div class="content"><div><a href="/n/cr382b/a/">上一章</a>|<a href="//czbooks.net/n/cr382b">目錄</a></div>正文<span>下一页 »</span><br>【返回目錄】`,
	`<li class="novel-item-wrapper"><div class="novel-item"><div class="novel-item-cover-wrapper"><a href="/c/x/2">x</a></div><a href="/n/0417/">《y》</a></div>`,
	`<div class="novel-detail"><div class="info"><div class="title">t</div></div><ul class="chapter-list"><li><a href="crdia">1</a><li><a href="/n/cr382b/a.html">2</a><li><a href="javascript:;">3</a>`,
}

// fuzzBase is the base the fuzzed pages are parsed on, with a path prefix, fuzzURL
// where they are said to come from, and contract checks what the parsers return.
var (
	fuzzBase, _ = url.Parse("http://127.0.0.1:8080/cz")
	fuzzURL, _  = url.Parse("http://127.0.0.1:8080/cz/n/cr382b")
	fuzzSource  = New(fuzzBase)
	contract    = sitetest.Contract{Source: fuzzSource, Base: fuzzBase, PageURL: fuzzURL}
)

// checkChapterURL fails unless link is the URL of chapter id of book cr382b (a query
// allowed).
func checkChapterURL(t *testing.T, link, id string) {
	t.Helper()
	contract.Link(t, link)
	want := fuzzBase.String() + "/n/cr382b/" + id
	if link != want && !strings.HasPrefix(link, want+"?") {
		t.Fatalf("link %q is not chapter %s of the book (%s)", link, id, want)
	}
}

func FuzzParseHome(f *testing.F) {
	sitetest.AddCorpus(f, fuzzSeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		cats, err := fuzzSource.ParseHome(body, fuzzURL)
		if !contract.Home(t, cats, err) {
			return
		}
		for _, c := range cats {
			if !strings.Contains(c.URL, "/c/"+c.ID) {
				t.Fatalf("category %s at %s", c.ID, c.URL)
			}
		}
	})
}

func FuzzParseListing(f *testing.F) {
	sitetest.AddCorpus(f, fuzzSeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		books, err := fuzzSource.ParseListing(body, fuzzURL)
		if !contract.Listing(t, books, err) {
			return
		}
		for _, b := range books {
			if b.BookURL == "" {
				t.Fatalf("book %+v without a URL", b)
			}
			contract.Link(t, b.BookURL)
			// A book's link is its URL, without a trailing slash, a query at most added.
			if want := fuzzSource.BookURL(b.BookID); b.BookID != "" && b.BookURL != want && !strings.HasPrefix(b.BookURL, want+"?") {
				t.Fatalf("book %s at %s; want %s, a query at most", b.BookID, b.BookURL, want)
			}
		}
	})
}

func FuzzParseBook(f *testing.F) {
	sitetest.AddCorpus(f, fuzzSeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := fuzzSource.ParseBook(body, fuzzURL, "cr382b")
		if !contract.Book(t, b, err) {
			return
		}
		for _, c := range b.TOC.Chapters {
			if !fuzzSource.CanonicalBookID(c.ChapterID) {
				t.Fatalf("chapter id %q is not canonical", c.ChapterID)
			}
			checkChapterURL(t, c.URL, c.ChapterID)
		}
	})
}

func FuzzParseChapter(f *testing.F) {
	sitetest.AddCorpus(f, fuzzSeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := fuzzSource.ParseChapter(body, fuzzURL, "cr382b", "crdic")
		if !contract.Chapter(t, c, err) {
			return
		}
		for _, line := range strings.Split(c.Text, "\n") {
			if namesSite(line) {
				t.Fatalf("text line %q names the site", line)
			}
			if navKind(line) == navWords || strings.Contains(line, navMark) {
				t.Fatalf("text line %q is navigation", line)
			}
		}
	})
}
