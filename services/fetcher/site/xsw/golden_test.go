package xsw

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/xswtw/xsw/services/fetcher/site"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the parsers' output")

// pageCase is one saved page in testdata and how to parse it.
type pageCase struct {
	file      string // in testdata; the golden file is the same name with .golden.json
	kind      string // pageHome, pageListing, …
	url       string // the URL the page was fetched from
	bookID    string
	chapterID string
	page      int // table of contents page
	first     int // number of the page's first chapter
}

// pageCases are the saved pages with their golden files.
var pageCases = []pageCase{
	{file: "home.html", kind: pageHome, url: "https://m.xsw.tw/"},
	{file: "listing_fenlei1_1.html", kind: pageListing, url: "https://m.xsw.tw/fenlei1_1.html"},
	{file: "listing_past_end.html", kind: pageListing, url: "https://m.xsw.tw/fenlei1_501.html"},
	{file: "book_1721851.html", kind: pageBook, url: "https://m.xsw.tw/1721851/", bookID: "1721851"},
	{file: "book_finished_nocover.html", kind: pageBook, url: "https://m.xsw.tw/1730108/", bookID: "1730108"},
	{file: "toc_cover_p1.html", kind: pageTOC, url: "https://m.xsw.tw/1721851/page-1.html", bookID: "1721851", page: 1, first: 1},
	{file: "toc_liebiao_p3.html", kind: pageTOC, url: "https://m.xsw.tw/1730108/page-3.html", bookID: "1730108", page: 3, first: 41},
	{file: "toc_bare_ul_p2.html", kind: pageTOC, url: "https://m.xsw.tw/1688420/page-2.html", bookID: "1688420", page: 2, first: 21},
	{file: "toc_last_p71.html", kind: pageTOC, url: "https://m.xsw.tw/1721851/page-71.html", bookID: "1721851", page: 71, first: 1418},
	{file: "toc_past_end_p72.html", kind: pageTOC, url: "https://m.xsw.tw/1721851/page-72.html", bookID: "1721851", page: 72, first: 1421},
	{file: "chapter_p.html", kind: pageChapter, url: "https://m.xsw.tw/1721851/251856157.html", bookID: "1721851", chapterID: "251856157"},
	{file: "chapter_br.html", kind: pageChapter, url: "https://m.xsw.tw/1721851/251000001.html", bookID: "1721851", chapterID: "251000001"},
	{file: "chapter_content.html", kind: pageChapter, url: "https://m.xsw.tw/1721851/251000004.html", bookID: "1721851", chapterID: "251000004"},
	{file: "chapter_nr.html", kind: pageChapter, url: "https://m.xsw.tw/1721851/251000003.html", bookID: "1721851", chapterID: "251000003"},
	{file: "chapter_big5.html", kind: pageChapter, url: "http://m.xsw.tw/1721851/251000006.html", bookID: "1721851", chapterID: "251000006"},
}

// parse runs the parser for the case's page kind on body.
func (c pageCase) parse(s *Source, body []byte, pageURL *url.URL) (any, error) {
	switch c.kind {
	case pageHome:
		return s.ParseHome(body, pageURL)
	case pageListing:
		return s.ParseListing(body, pageURL)
	case pageBook:
		return s.ParseBook(body, pageURL, c.bookID)
	case pageTOC:
		return s.ParseTOC(body, pageURL, c.bookID, c.page, c.first)
	default:
		return s.ParseChapter(body, pageURL, c.bookID, c.chapterID)
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("parse url %q: %v", s, err)
	}
	return u
}

func readPage(t testing.TB, file string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatalf("read page: %v", err)
	}
	return body
}

func TestParseGolden(t *testing.T) {
	s := New(mustURL(t, DefaultBaseURL))
	for _, c := range pageCases {
		t.Run(c.file, func(t *testing.T) {
			got, err := c.parse(s, readPage(t, c.file), mustURL(t, c.url))
			if err != nil {
				t.Fatalf("parse %s: %v", c.kind, err)
			}
			gotJSON, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			gotJSON = append(gotJSON, '\n')
			golden := filepath.Join("testdata", c.file[:len(c.file)-len(".html")]+".golden.json")
			if *update {
				if err := os.WriteFile(golden, gotJSON, 0o644); err != nil {
					t.Fatalf("write golden: %v", err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(gotJSON)); diff != "" {
				t.Errorf("parse %s mismatch (-golden +got):\n%s", c.file, diff)
			}
		})
	}
}

// TestBig5PageIsBig5 guards the testdata: the Big5 page must not be valid UTF-8, or it
// would not exercise the Big5 decoder.
func TestBig5PageIsBig5(t *testing.T) {
	body := readPage(t, "chapter_big5.html")
	if utf8.Valid(body) {
		t.Fatal("testdata/chapter_big5.html is valid UTF-8; regenerate it with go run testdata/gen/big5.go")
	}
	if !bytes.Contains(body, []byte("charset=big5")) {
		t.Error("testdata/chapter_big5.html lacks its charset=big5 declaration")
	}
}

// TestParseOnOtherBase checks that links come out on the origin the page was fetched
// from: a local simulator replaying saved pages yields links to itself, even where the
// saved page held absolute links to m.xsw.tw.
func TestParseOnOtherBase(t *testing.T) {
	s := New(mustURL(t, "http://127.0.0.1:8080"))
	toc, err := s.ParseTOC(readPage(t, "toc_cover_p1.html"), mustURL(t, "http://127.0.0.1:8080/1721851/page-1.html"), "1721851", 1, 1)
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
	s := New(mustURL(t, "http://127.0.0.1:8080"))
	body := readPage(t, "toc_liebiao_p3.html")
	for _, tt := range []struct {
		name    string
		pageURL *url.URL
	}{
		{name: "nil", pageURL: nil},
		{name: "relative", pageURL: mustURL(t, "/1730108/page-3.html")},
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
	s := New(mustURL(t, DefaultBaseURL))
	for _, c := range pageCases {
		body := readPage(t, c.file)
		end := max(bytes.LastIndex(body, []byte("</body")), bytes.LastIndex(body, []byte("</BODY")))
		if end < 0 {
			t.Fatalf("%s has no </body>", c.file)
		}
		for _, cut := range []int{len(body) / 4, len(body) / 2, end} {
			t.Run(fmt.Sprintf("%s/%d_of_%d_bytes", c.file, cut, len(body)), func(t *testing.T) {
				got, err := c.parse(s, body[:cut], mustURL(t, c.url))
				var pe *site.ParseError
				if !errors.As(err, &pe) || !pe.Truncated || pe.Page != c.kind || pe.URL != c.url {
					t.Fatalf("parse %s = %+v, %v; want a truncated-page *site.ParseError for the %s page at %s", c.kind, got, err, c.kind, c.url)
				}
				if !errors.Is(err, site.ErrTruncated) || !errors.Is(err, site.ErrParse) || site.Permanent(err) {
					t.Errorf("error %v: want it to match ErrTruncated and ErrParse and not be permanent", err)
				}
				if !strings.Contains(err.Error(), "truncated") {
					t.Errorf("error %q does not say the page was truncated", err)
				}
			})
		}
	}
}
