// Package sitetest holds what the tests of every site adapter share: the saved pages in
// testdata and their golden files, the adapter contract of package site as checks on
// what the parsers return (Contract, for the fuzz targets), and the checks of the
// adapter's descriptor, ids and URLs. It is imported by tests only.
//
// It owns the -update flag: `go test ./site/... -update` rewrites the golden files of
// every adapter package whose tests use it (RunGolden), so such a package defines no
// -update flag of its own.
package sitetest

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

// MustURL parses s, failing t when it does not parse.
func MustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("parse url %q: %v", s, err)
	}
	return u
}

// ReadPage returns the saved page file in testdata.
func ReadPage(t testing.TB, file string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatalf("read page: %v", err)
	}
	return body
}

// Case is a page and how to parse it: a saved page in testdata with its golden file, or
// (File empty) an inline page of a test.
type Case struct {
	File      string // in testdata; the golden file is the same name with .golden.json
	Kind      string // the page kind, as a site.ParseError names it: "home", "listing", …
	URL       string // the URL the page was fetched from
	BookID    string
	ChapterID string
	Page      int // table of contents page
	First     int // number of the page's first chapter
}

// Parse runs the parser of src for the case's page kind on body.
func (c Case) Parse(src site.Source, body []byte, pageURL *url.URL) (any, error) {
	switch c.Kind {
	case "home":
		return src.ParseHome(body, pageURL)
	case "listing":
		return src.ParseListing(body, pageURL)
	case "book":
		return src.ParseBook(body, pageURL, c.BookID)
	case "toc":
		p, ok := src.(site.Paginated)
		if !ok {
			return nil, fmt.Errorf("sitetest: a toc page of a source that is not site.Paginated")
		}
		return p.ParseTOC(body, pageURL, c.BookID, c.Page, c.First)
	case "chapter":
		return src.ParseChapter(body, pageURL, c.BookID, c.ChapterID)
	}
	return nil, fmt.Errorf("sitetest: unknown page kind %q", c.Kind)
}

// RunGolden parses each saved page with src and compares the record, as indented JSON,
// with the page's golden file (see Golden).
func RunGolden(t *testing.T, src site.Source, cases []Case) {
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			got, err := c.Parse(src, ReadPage(t, c.File), MustURL(t, c.URL))
			if err != nil {
				t.Fatalf("parse %s: %v", c.Kind, err)
			}
			Golden(t, c.File, got)
		})
	}
}

// Golden compares got, as indented JSON ending in a newline, with the golden file of the
// saved page file (testdata/X.golden.json for X.html). With -update it writes the file
// first.
func Golden(t testing.TB, file string, got any) {
	t.Helper()
	gotJSON, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	gotJSON = append(gotJSON, '\n')
	golden := filepath.Join("testdata", strings.TrimSuffix(file, ".html")+".golden.json")
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
		t.Errorf("parse %s mismatch (-golden +got):\n%s", file, diff)
	}
}

// CheckBig5 guards the testdata: the saved Big5 page file must not be valid UTF-8, or
// it would not exercise the Big5 decoder, and it declares charset=big5.
func CheckBig5(t testing.TB, file string) {
	t.Helper()
	body := ReadPage(t, file)
	if utf8.Valid(body) {
		t.Fatalf("testdata/%s is valid UTF-8; regenerate it with go run testdata/gen/big5.go", file)
	}
	if !bytes.Contains(body, []byte("charset=big5")) {
		t.Errorf("testdata/%s lacks its charset=big5 declaration", file)
	}
}

// RunTruncated cuts every saved page short, as a dropped connection or a failing server
// would (the response itself looks whole), at a quarter, at half and just before its
// </body>, and wants a truncated-page error for the page (WantTruncated) rather than
// whatever the first part of it holds: a chapter list cut in half would otherwise be
// read as all of it.
func RunTruncated(t *testing.T, src site.Source, cases []Case) {
	for _, c := range cases {
		body := ReadPage(t, c.File)
		end := max(bytes.LastIndex(body, []byte("</body")), bytes.LastIndex(body, []byte("</BODY")))
		if end < 0 {
			t.Fatalf("%s has no </body>", c.File)
		}
		for _, cut := range []int{len(body) / 4, len(body) / 2, end} {
			t.Run(fmt.Sprintf("%s/%d_of_%d_bytes", c.File, cut, len(body)), func(t *testing.T) {
				got, err := c.Parse(src, body[:cut], MustURL(t, c.URL))
				WantTruncated(t, got, err, c.Kind, c.URL)
			})
		}
	}
}

// WantTruncated fails t unless err, what a parser returned with got, is a truncated-page
// *site.ParseError for the kind of page at pageURL: one that matches site.ErrTruncated
// and site.ErrParse, is not permanent, and says the page was truncated.
func WantTruncated(t testing.TB, got any, err error, kind, pageURL string) {
	t.Helper()
	var pe *site.ParseError
	if !errors.As(err, &pe) || !pe.Truncated || pe.Page != kind || pe.URL != pageURL {
		t.Fatalf("parse %s = %+v, %v; want a truncated-page *site.ParseError for the %s page at %s", kind, got, err, kind, pageURL)
	}
	if !errors.Is(err, site.ErrTruncated) || !errors.Is(err, site.ErrParse) || site.Permanent(err) {
		t.Errorf("error %v: want it to match ErrTruncated and ErrParse and not be permanent", err)
	}
	if !strings.Contains(err.Error(), "truncated") {
		t.Errorf("error %q does not say the page was truncated", err)
	}
}

// WantParseError fails t unless err, what a parser returned with got, is a permanent
// *site.ParseError (not truncated) for the kind of page at pageURL whose message names
// pageURL and holds what.
func WantParseError(t testing.TB, got any, err error, kind, pageURL, what string) {
	t.Helper()
	if !errors.Is(err, site.ErrParse) || !site.Permanent(err) {
		t.Fatalf("parse %s = %+v, %v; want a permanent error matching site.ErrParse", kind, got, err)
	}
	var pe *site.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *site.ParseError", err)
	}
	if pe.Page != kind || pe.URL != pageURL || pe.Truncated {
		t.Errorf("ParseError names page %q at %q (truncated %v); want %q at %q", pe.Page, pe.URL, pe.Truncated, kind, pageURL)
	}
	if !strings.Contains(err.Error(), what) || !strings.Contains(err.Error(), pageURL) {
		t.Errorf("error %q; want it to name %q and %q", err, pageURL, what)
	}
}

// BenchFile runs Bench on the saved page file, parsed as its case in cases says.
func BenchFile(b *testing.B, src site.Source, cases []Case, file string) {
	var c Case
	for _, pc := range cases {
		if pc.File == file {
			c = pc
		}
	}
	if c.File == "" {
		b.Fatalf("no case for %s", file)
	}
	Bench(b, src, c, ReadPage(b, file))
}

// Bench runs the parser of c on body b.N times, reporting bytes per second and
// allocations.
func Bench(b *testing.B, src site.Source, c Case, body []byte) {
	pageURL := MustURL(b, c.URL)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := c.Parse(src, body, pageURL); err != nil {
			b.Fatal(err)
		}
	}
}
