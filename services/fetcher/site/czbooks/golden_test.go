package czbooks

import (
	"net/url"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/xswtw/xsw/services/fetcher/site/sitetest"
)

// testBase is the base the saved pages are parsed on: a local stand-in, as
// SOURCE_CZBOOKS_URL=http://127.0.0.1:8080 configures it. The pages carry the site's
// own links (//czbooks.net/…), which land on it.
const testBase = "http://127.0.0.1:8080"

// pageCases are the saved pages with their golden files.
var pageCases = []sitetest.Case{
	{File: "home.html", Kind: pageHome, URL: testBase + "/"},
	{File: "home_nomenu.html", Kind: pageHome, URL: testBase + "/"},
	{File: "listing_xuanhuan_1.html", Kind: pageListing, URL: testBase + "/c/xuanhuan"},
	{File: "listing_past_end.html", Kind: pageListing, URL: testBase + "/c/xuanhuan/11"},
	{File: "listing_none_notice.html", Kind: pageListing, URL: testBase + "/c/xuanhuan/11"},
	{File: "listing_pagination_only.html", Kind: pageListing, URL: testBase + "/c/xuanhuan/11"},
	{File: "listing_empty_nomenu.html", Kind: pageListing, URL: testBase + "/c/xuanhuan/11"},
	{File: "listing_trailing_slash.html", Kind: pageListing, URL: testBase + "/c/yanqing/2"},
	{File: "book_cr382b.html", Kind: pageBook, URL: testBase + "/n/cr382b", BookID: "cr382b"},
	{File: "book_finished.html", Kind: pageBook, URL: testBase + "/n/s660jj", BookID: "s660jj"},
	{File: "chapter_crdic.html", Kind: pageChapter, URL: testBase + "/n/cr382b/crdic", BookID: "cr382b", ChapterID: "crdic"},
	{File: "chapter_h1.html", Kind: pageChapter, URL: testBase + "/n/cr382b/crdib", BookID: "cr382b", ChapterID: "crdib"},
	{File: "chapter_title.html", Kind: pageChapter, URL: testBase + "/n/cr382b/0123", BookID: "cr382b", ChapterID: "0123"},
	{File: "chapter_nav_inside.html", Kind: pageChapter, URL: testBase + "/n/cr382b/crdie", BookID: "cr382b", ChapterID: "crdie"},
	{File: "chapter_big5.html", Kind: pageChapter, URL: testBase + "/n/cr382b/crdid", BookID: "cr382b", ChapterID: "crdid"},
}

// errorPages are saved pages that are a *site.ParseError, with what the error names.
var errorPages = []struct {
	sitetest.Case
	what string
}{
	{Case: sitetest.Case{File: "book_links_elsewhere.html", Kind: pageBook, URL: testBase + "/n/cr382b", BookID: "cr382b"},
		what: "ul.chapter-list: 5 li with links, none to a chapter of book cr382b"},
}

// TestParseErrorPages parses the saved pages that must fail, and wants a permanent
// *site.ParseError naming the page and what is wrong with it.
func TestParseErrorPages(t *testing.T) {
	s := New(sitetest.MustURL(t, testBase))
	for _, c := range errorPages {
		t.Run(c.File, func(t *testing.T) {
			got, err := c.Parse(s, sitetest.ReadPage(t, c.File), sitetest.MustURL(t, c.URL))
			sitetest.WantParseError(t, got, err, c.Kind, c.URL, c.what)
		})
	}
}

func TestParseGolden(t *testing.T) {
	sitetest.RunGolden(t, New(sitetest.MustURL(t, testBase)), pageCases)
}

// TestBig5PageIsBig5 guards the testdata: the Big5 page must not be valid UTF-8, or it
// would not exercise the Big5 decoder.
func TestBig5PageIsBig5(t *testing.T) { sitetest.CheckBig5(t, "chapter_big5.html") }

// TestParseOnPrefixedBase: links land on the configured base, path prefix included,
// whatever origin the page names and wherever it was fetched from.
func TestParseOnPrefixedBase(t *testing.T) {
	s := New(sitetest.MustURL(t, "http://stand-in.local/cz/"))
	b, err := s.ParseBook(sitetest.ReadPage(t, "book_cr382b.html"), sitetest.MustURL(t, "http://stand-in.local/cz/n/cr382b"), "cr382b")
	if err != nil {
		t.Fatalf("ParseBook: %v", err)
	}
	var got []string
	for _, c := range b.TOC.Chapters {
		got = append(got, c.URL)
	}
	want := []string{
		"http://stand-in.local/cz/n/cr382b/crdia",
		"http://stand-in.local/cz/n/cr382b/crdib",
		"http://stand-in.local/cz/n/cr382b/0123",
		"http://stand-in.local/cz/n/cr382b/crdic?from=list",
		"http://stand-in.local/cz/n/cr382b/crdid",
		"http://stand-in.local/cz/n/cr382b/crdie",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chapter URLs mismatch (-want +got):\n%s", diff)
	}
	// The cover is on a subdomain of the site: the link rule puts it on the base too.
	if want := "http://stand-in.local/cz/cover/cr382b.jpg"; b.CoverURL != want {
		t.Errorf("CoverURL = %q; want %q", b.CoverURL, want)
	}
}

// TestParseRelativePageURL checks that a relative or missing page URL is taken
// relative to the adapter's base.
func TestParseRelativePageURL(t *testing.T) {
	s := New(sitetest.MustURL(t, testBase))
	body := []byte(`<html><body><div class="novel-detail"><div class="info"><div class="title">書</div></div>` +
		`<ul class="chapter-list"><li><a href="crdia">第一章</a></li></ul></div></body></html>`)
	for _, tt := range []struct {
		name    string
		pageURL *url.URL
		want    string
	}{
		{name: "nil is the home page", pageURL: nil, want: testBase + "/crdia"},
		{name: "relative", pageURL: sitetest.MustURL(t, "/n/cr382b/"), want: testBase + "/n/cr382b/crdia"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := s.ParseBook(body, tt.pageURL, "cr382b")
			if tt.pageURL == nil {
				// crdia resolves to /crdia on the home page: the list links to no
				// chapter of the book.
				sitetest.WantParseError(t, b, err, pageBook, testBase+"/", "none to a chapter of book cr382b")
				return
			}
			if err != nil {
				t.Fatalf("ParseBook: %v", err)
			}
			if len(b.TOC.Chapters) != 1 || b.TOC.Chapters[0].URL != tt.want {
				t.Errorf("chapters %+v; want one at %s", b.TOC.Chapters, tt.want)
			}
		})
	}
}

// TestTruncatedPages cuts every saved page short, as a dropped connection or a failing
// server would, and wants a truncated-page error rather than whatever the first part of
// the page holds: a chapter list cut in half would otherwise be read as all of it.
func TestTruncatedPages(t *testing.T) {
	cases := slices.Clone(pageCases)
	for _, c := range errorPages {
		cases = append(cases, c.Case)
	}
	sitetest.RunTruncated(t, New(sitetest.MustURL(t, testBase)), cases)
}
