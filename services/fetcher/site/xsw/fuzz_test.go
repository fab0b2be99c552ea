package xsw

import (
	"net/url"
	"strings"
	"testing"

	"github.com/xswtw/xsw/services/fetcher/site/sitetest"
)

// fuzzSeeds are fragments the fuzz targets start from, besides the saved pages.
var fuzzSeeds = []string{"<div class=cover><ul><li><a href=1.html>第1章</a>"}

// fuzzSource parses the fuzzed pages on the default base, fuzzURL is where they are
// said to come from, and contract checks what the parsers return.
var (
	fuzzBase, _ = url.Parse(DefaultBaseURL)
	fuzzURL, _  = url.Parse("https://m.xsw.tw/1721851/page-1.html")
	fuzzSource  = New(fuzzBase)
	contract    = sitetest.Contract{Source: fuzzSource, Base: fuzzBase, PageURL: fuzzURL}
)

// checkChapterURL fails unless link is the URL of chapter id of book 1721851.
func checkChapterURL(t *testing.T, link, id string) {
	t.Helper()
	if !strings.HasSuffix(link, "/1721851/"+id+".html") {
		t.Fatalf("link %q is not chapter %s of the book", link, id)
	}
}

func FuzzParseHome(f *testing.F) {
	sitetest.AddCorpus(f, fuzzSeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		cats, err := fuzzSource.ParseHome(body, fuzzURL)
		contract.Home(t, cats, err)
	})
}

func FuzzParseListing(f *testing.F) {
	sitetest.AddCorpus(f, fuzzSeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		books, err := fuzzSource.ParseListing(body, fuzzURL)
		contract.Listing(t, books, err)
	})
}

func FuzzParseBook(f *testing.F) {
	sitetest.AddCorpus(f, fuzzSeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := fuzzSource.ParseBook(body, fuzzURL, "1721851")
		if !contract.Book(t, b, err) {
			return
		}
		for _, c := range b.Preview {
			checkChapterURL(t, c.URL, c.ChapterID)
		}
	})
}

func FuzzParseTOC(f *testing.F) {
	sitetest.AddCorpus(f, fuzzSeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		toc, err := fuzzSource.ParseTOC(body, fuzzURL, "1721851", 2, 21)
		if !contract.TOC(t, toc, err, 21) {
			return
		}
		for _, c := range toc.Chapters {
			checkChapterURL(t, c.URL, c.ChapterID)
		}
	})
}

func FuzzParseChapter(f *testing.F) {
	sitetest.AddCorpus(f, fuzzSeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := fuzzSource.ParseChapter(body, fuzzURL, "1721851", "251000001")
		contract.Chapter(t, c, err)
	})
}
