package czbooks

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

// testBase is the base the saved pages are parsed on: a local stand-in, as
// SOURCE_CZBOOKS_URL=http://127.0.0.1:8080 configures it. The pages carry the site's
// own links (//czbooks.net/…), which land on it.
const testBase = "http://127.0.0.1:8080"

// pageCase is one saved page in testdata and how to parse it.
type pageCase struct {
	file      string // in testdata; the golden file is the same name with .golden.json
	kind      string // pageHome, pageListing, …
	url       string // the URL the page was fetched from
	bookID    string
	chapterID string
}

// pageCases are the saved pages with their golden files.
var pageCases = []pageCase{
	{file: "home.html", kind: pageHome, url: testBase + "/"},
	{file: "home_nomenu.html", kind: pageHome, url: testBase + "/"},
	{file: "listing_xuanhuan_1.html", kind: pageListing, url: testBase + "/c/xuanhuan"},
	{file: "listing_past_end.html", kind: pageListing, url: testBase + "/c/xuanhuan/11"},
	{file: "book_cr382b.html", kind: pageBook, url: testBase + "/n/cr382b", bookID: "cr382b"},
	{file: "book_finished.html", kind: pageBook, url: testBase + "/n/s660jj", bookID: "s660jj"},
	{file: "chapter_crdic.html", kind: pageChapter, url: testBase + "/n/cr382b/crdic", bookID: "cr382b", chapterID: "crdic"},
	{file: "chapter_h1.html", kind: pageChapter, url: testBase + "/n/cr382b/crdib", bookID: "cr382b", chapterID: "crdib"},
	{file: "chapter_title.html", kind: pageChapter, url: testBase + "/n/cr382b/0123", bookID: "cr382b", chapterID: "0123"},
	{file: "chapter_big5.html", kind: pageChapter, url: testBase + "/n/cr382b/crdid", bookID: "cr382b", chapterID: "crdid"},
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
	s := New(mustURL(t, testBase))
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
			golden := filepath.Join("testdata", strings.TrimSuffix(c.file, ".html")+".golden.json")
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

// TestParseOnPrefixedBase: links land on the configured base, path prefix included,
// whatever origin the page names and wherever it was fetched from.
func TestParseOnPrefixedBase(t *testing.T) {
	s := New(mustURL(t, "http://stand-in.local/cz/"))
	b, err := s.ParseBook(readPage(t, "book_cr382b.html"), mustURL(t, "http://stand-in.local/cz/n/cr382b"), "cr382b")
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
	s := New(mustURL(t, testBase))
	body := []byte(`<html><body><div class="novel-detail"><div class="info"><div class="title">書</div></div>` +
		`<ul class="chapter-list"><li><a href="crdia">第一章</a></li></ul></div></body></html>`)
	for _, tt := range []struct {
		name    string
		pageURL *url.URL
		want    string
	}{
		{name: "nil is the home page", pageURL: nil, want: testBase + "/crdia"},
		{name: "relative", pageURL: mustURL(t, "/n/cr382b/"), want: testBase + "/n/cr382b/crdia"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := s.ParseBook(body, tt.pageURL, "cr382b")
			if err != nil {
				t.Fatalf("ParseBook: %v", err)
			}
			if tt.pageURL == nil {
				// crdia resolves to /crdia on the home page: no chapter.
				if len(b.TOC.Chapters) != 0 || b.SourceURL != testBase+"/" {
					t.Errorf("got %+v at %s; want no chapter at the home page", b.TOC.Chapters, b.SourceURL)
				}
				return
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
	s := New(mustURL(t, testBase))
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
