package xsw

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/xswtw/xsw/services/fetcher/site/sitetest"
)

// pageCases are the saved pages with their golden files.
var pageCases = []sitetest.Case{
	{File: "home.html", Kind: pageHome, URL: "https://m.xsw.tw/"},
	{File: "listing_fenlei1_1.html", Kind: pageListing, URL: "https://m.xsw.tw/fenlei1_1.html"},
	{File: "listing_past_end.html", Kind: pageListing, URL: "https://m.xsw.tw/fenlei1_501.html"},
	{File: "book_1721851.html", Kind: pageBook, URL: "https://m.xsw.tw/1721851/", BookID: "1721851"},
	{File: "book_finished_nocover.html", Kind: pageBook, URL: "https://m.xsw.tw/1730108/", BookID: "1730108"},
	{File: "toc_cover_p1.html", Kind: pageTOC, URL: "https://m.xsw.tw/1721851/page-1.html", BookID: "1721851", Page: 1, First: 1},
	{File: "toc_liebiao_p3.html", Kind: pageTOC, URL: "https://m.xsw.tw/1730108/page-3.html", BookID: "1730108", Page: 3, First: 41},
	{File: "toc_bare_ul_p2.html", Kind: pageTOC, URL: "https://m.xsw.tw/1688420/page-2.html", BookID: "1688420", Page: 2, First: 21},
	{File: "toc_last_p71.html", Kind: pageTOC, URL: "https://m.xsw.tw/1721851/page-71.html", BookID: "1721851", Page: 71, First: 1418},
	{File: "toc_past_end_p72.html", Kind: pageTOC, URL: "https://m.xsw.tw/1721851/page-72.html", BookID: "1721851", Page: 72, First: 1421},
	{File: "chapter_p.html", Kind: pageChapter, URL: "https://m.xsw.tw/1721851/251856157.html", BookID: "1721851", ChapterID: "251856157"},
	{File: "chapter_br.html", Kind: pageChapter, URL: "https://m.xsw.tw/1721851/251000001.html", BookID: "1721851", ChapterID: "251000001"},
	{File: "chapter_content.html", Kind: pageChapter, URL: "https://m.xsw.tw/1721851/251000004.html", BookID: "1721851", ChapterID: "251000004"},
	{File: "chapter_nr.html", Kind: pageChapter, URL: "https://m.xsw.tw/1721851/251000003.html", BookID: "1721851", ChapterID: "251000003"},
	{File: "chapter_big5.html", Kind: pageChapter, URL: "http://m.xsw.tw/1721851/251000006.html", BookID: "1721851", ChapterID: "251000006"},
}

func TestParseGolden(t *testing.T) {
	sitetest.RunGolden(t, New(sitetest.MustURL(t, DefaultBaseURL)), pageCases)
}

// TestBig5PageIsBig5 guards the testdata: the Big5 page must not be valid UTF-8, or it
// would not exercise the Big5 decoder.
func TestBig5PageIsBig5(t *testing.T) { sitetest.CheckBig5(t, "chapter_big5.html") }

// TestParseOnOtherBase checks that links come out on the origin the page was fetched
// from: a local simulator replaying saved pages yields links to itself, even where the
// saved page held absolute links to m.xsw.tw.
func TestParseOnOtherBase(t *testing.T) {
	s := New(sitetest.MustURL(t, "http://127.0.0.1:8080"))
	toc, err := s.ParseTOC(sitetest.ReadPage(t, "toc_cover_p1.html"), sitetest.MustURL(t, "http://127.0.0.1:8080/1721851/page-1.html"), "1721851", 1, 1)
	if err != nil {
		t.Fatalf("ParseTOC: %v", err)
	}
	want := []string{
		"http://127.0.0.1:8080/1721851/251000001.html",
		"http://127.0.0.1:8080/1721851/251000002.html",
		"http://127.0.0.1:8080/1721851/251000003.html",
		"http://127.0.0.1:8080/1721851/251000004.html",
	}
	var got []string
	for _, c := range toc.Chapters[:len(want)] {
		got = append(got, c.URL)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chapter URLs mismatch (-want +got):\n%s", diff)
	}
}

// TestParseRelativePageURL checks that a relative or missing page URL is taken
// relative to the adapter's base.
func TestParseRelativePageURL(t *testing.T) {
	s := New(sitetest.MustURL(t, "http://127.0.0.1:8080"))
	body := sitetest.ReadPage(t, "toc_liebiao_p3.html")
	for _, tt := range []struct {
		name    string
		pageURL *url.URL
	}{
		{name: "nil", pageURL: nil},
		{name: "relative", pageURL: sitetest.MustURL(t, "/1730108/page-3.html")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			toc, err := s.ParseTOC(body, tt.pageURL, "1730108", 3, 41)
			if err != nil {
				t.Fatalf("ParseTOC: %v", err)
			}
			if len(toc.Chapters) == 0 {
				t.Fatal("no chapters")
			}
			if got, want := toc.Chapters[0].URL, "http://127.0.0.1:8080/1730108/248770041.html"; got != want {
				t.Errorf("first chapter URL = %q; want %q", got, want)
			}
		})
	}
}

// TestTruncatedPages cuts every saved page short, as a dropped connection or a failing
// server would (the response itself looks whole), and wants a truncated-page error for
// the page rather than whatever the first part of it holds: a table of contents cut in
// half would otherwise be read as all of its chapters.
func TestTruncatedPages(t *testing.T) {
	sitetest.RunTruncated(t, New(sitetest.MustURL(t, DefaultBaseURL)), pageCases)
}
