// Package xsw is the adapter for the mobile site m.xsw.tw (台灣小說網): it builds the
// site's URLs on a configurable base and parses its pages (home, category listing, book
// home, table of contents, chapter) into the records of package site. Adapter registers
// it under the site id "xsw".
//
// What is particular to the site: book and category ids are numbers, canonical without
// leading zeros; the book home holds the metadata and a preview of the newest chapters,
// never the list; the chapter list is paginated (page-{n}.html), every page but the last
// holding as many chapters as page 1 (PageOf, FirstOf); a book is finished when its
// status says 已完成; there are no volume headers.
//
// The parsers follow the page descriptions in shared/SOURCE_SITE.md and tolerate pages
// that change without notice: a missing optional piece leaves its field empty, a missing
// essential piece gives a *site.ParseError (errors.Is(err, site.ErrParse)) naming the
// page, its URL and what was missing. No input makes them panic.
//
// Links in the records are absolute. Links that name a page of the site (categories,
// books, chapters) are accepted only on the page's own host or on a host of the xsw.tw
// domain (saved pages carry the site's absolute links), and are rewritten onto the page's
// scheme and host without query or fragment, so that a page fetched from a local
// simulator or over plain HTTP yields links to the same place.
package xsw

import (
	"net/url"
	"strconv"

	"github.com/xswtw/xsw/services/fetcher/site"
)

// ID is the site id of m.xsw.tw, the site the pipeline started with
// (events.LegacySite).
const ID = "xsw"

// DefaultBaseURL is the site's usual base URL.
const DefaultBaseURL = "https://m.xsw.tw"

// Canonical ids: a book id is a number without leading zeros of at most 12 digits (the
// site's are 6 to 8 today), a category id one of at most 9.
const (
	BookIDPattern     = `[1-9][0-9]{0,11}`
	CategoryIDPattern = `[1-9][0-9]{0,8}`
	maxBookIDLen      = 12
	maxCategoryIDLen  = 9
)

// Info describes m.xsw.tw.
func Info() site.Info {
	return site.Info{
		ID: ID, Name: "台灣小說網 (m.xsw.tw)", DefaultBaseURL: DefaultBaseURL,
		BookIDPattern: BookIDPattern, CategoryIDPattern: CategoryIDPattern,
	}
}

// Adapter returns the adapter of m.xsw.tw, to register under ID.
func Adapter() site.Adapter {
	return site.NewAdapter(Info(), func(b site.Base) site.Source { return &Source{base: b} })
}

// siteDomain is the site's registered domain: links to it or its subdomains are links
// to the site, and text lines naming it are advertisements.
const siteDomain = "xsw.tw"

// Source is the m.xsw.tw adapter; it implements site.Source. It holds no mutable
// state and is safe for concurrent use.
type Source struct {
	base site.Base // every URL of the site is built on it
}

var (
	_ site.Source    = (*Source)(nil)
	_ site.Paginated = (*Source)(nil)
)

// New returns the adapter for the site at base, such as https://m.xsw.tw,
// http://m.xsw.tw or http://127.0.0.1:8080 for a local simulator. A path in base is kept
// as a prefix of every URL; its query and fragment are dropped. A nil base, or one that
// is not an absolute http(s) URL with a host, means DefaultBaseURL.
func New(base *url.URL) *Source { return &Source{base: site.BaseOr(base, DefaultBaseURL)} }

// Info describes the site.
func (s *Source) Info() site.Info { return Info() }

// CanonicalBookID reports whether id is a book id as the site writes it: digits without
// a leading zero, at most 12 ("0123" names no book; "123" does).
func (s *Source) CanonicalBookID(id string) bool { return canonicalNumber(id, maxBookIDLen) }

// CanonicalCategoryID reports whether id is a category id as the site writes it: digits
// without a leading zero, at most 9.
func (s *Source) CanonicalCategoryID(id string) bool { return canonicalNumber(id, maxCategoryIDLen) }

// canonicalNumber reports whether s is 1 to maxLen digits, the first not 0.
func canonicalNumber(s string, maxLen int) bool {
	return len(s) <= maxLen && isDigits(s) && s[0] != '0'
}

// HomeURL returns the URL of the site's home page.
func (s *Source) HomeURL() string { return s.base.HomeURL() }

// ListingURL returns the URL of a category's listing page; pages below 1 mean page 1.
func (s *Source) ListingURL(category string, page int) string {
	page = max(page, 1)
	return s.base.URL("/fenlei" + site.PathSegment(category) + "_" + strconv.Itoa(page) + ".html")
}

// BookURL returns the URL of a book's home page.
func (s *Source) BookURL(bookID string) string {
	return s.base.URL("/" + site.PathSegment(bookID) + "/")
}

// TOCURL returns the URL of a page of a book's table of contents; pages below 1 mean
// page 1. The table of contents is paginated: see PageOf.
func (s *Source) TOCURL(bookID string, page int) string {
	page = max(page, 1)
	return s.base.URL("/" + site.PathSegment(bookID) + "/page-" + strconv.Itoa(page) + ".html")
}

// ChapterURL returns the URL of a chapter page.
func (s *Source) ChapterURL(bookID, chapterID string) string {
	return s.base.URL("/" + site.PathSegment(bookID) + "/" + site.PathSegment(chapterID) + ".html")
}

// PageOf returns the table-of-contents page that holds chapter n. On this site every
// page but the last holds as many chapters as page 1, so chapter n is on page
// (n-1)/FirstPageRefs+1; without page 1's count nothing is known.
func (s *Source) PageOf(n int, l site.Layout) (int, bool) {
	if n < 1 || l.FirstPageRefs < 1 {
		return 0, false
	}
	return (n-1)/l.FirstPageRefs + 1, true
}

// FirstOf returns the number of the first chapter of a table-of-contents page: 1 on
// page 1, else (page-1)*FirstPageRefs+1, every page before it being full.
func (s *Source) FirstOf(page int, l site.Layout) (int, bool) {
	switch {
	case page == 1:
		return 1, true
	case page < 1 || l.FirstPageRefs < 1:
		return 0, false
	}
	return (page-1)*l.FirstPageRefs + 1, true
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
