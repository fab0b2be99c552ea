// Package site is the seam between the fetcher's pipeline and the source sites: the
// contract every site adapter honours (written down here), the records adapters yield,
// the errors their parsers report, and the Registry the fetcher picks adapters from by
// site id. Nothing here knows a site's URLs or markup: all of that lives in one adapter
// package per site (package xsw for m.xsw.tw), and nothing outside the adapter knows it.
//
// # The adapter contract
//
// An adapter package exports an Adapter: the site's Info and a constructor of its Source
// on a base URL. Registered in a Registry under Info.ID (the fetcher's Config.Adapters;
// fetcher.Builtin returns the built-in registry to add to), it serves the site when
// SOURCES names that id. It needs nothing but this package and package events, so it
// may live outside the fetcher's module.
//
// Identity. Info.ID names the site in every subject, key, table row and API path: it
// satisfies events.ValidSiteID. Book, chapter and category ids are the site's own, kept
// as strings, and each is an events.ValidID (one subject token, key segment and path
// segment). A book or category has one canonical spelling: CanonicalBookID and
// CanonicalCategoryID say which, and Info.BookIDPattern and Info.CategoryIDPattern say
// the same as RE2 expressions matched against the whole id (CompilePattern), for the
// services that hold no adapter. The fetcher checks every id with the adapter before it
// builds a URL of it: another spelling is refused (ErrNotCanonical) and never fetched.
// The ids the parsers return (Category.ID, ListingBook.BookID, chapter ids) are
// canonical and valid.
//
// URLs. The adapter builds every URL of the site, on the base it was made with
// (SOURCE_<SITE>_URL, else Info.DefaultBaseURL; see Base and NewAdapter), and whatever
// id it is given the URL stays under that base.
//
// Parsing. Each Parse method takes a page's raw bytes and the URL they came from (for
// resolving links; nil means the home page: Base.PageURL). It decodes the bytes itself
// (Decode reads UTF-8, else Big5, whatever the page declares), never panics, and
// reports a page that lacks something essential as a *ParseError naming the page, its
// URL and what was missing, which is permanent; a page whose bytes stop before the end
// of the document (Truncated) is a ParseError with Truncated set, which is retried.
// ParsePage is that first step for every parser. A missing optional piece leaves its
// field empty. Links in records are absolute.
//
// The book page. ParseBook reads the metadata wherever the site keeps it: the title
// (essential), author, genre, status and Finished (the site's own words for a finished
// book are the adapter's business), update time, description, cover, the newest chapter
// (LastChapterID, LastChapterTitle, LastChapterURL: what an incremental resync compares),
// and Volumes where the site divides its chapter list into volumes. A volume header is
// never a chapter and never counted.
//
// The chapter list has one of two shapes:
//
//   - One page: the book page carries the whole list. ParseBook fills Book.TOC as page 1
//     of 1, chapters numbered 1, 2, … in reading order, and sets the newest chapter to the
//     list's last. Syncing such a book costs one request, and resyncing an unchanged one
//     one conditional request.
//   - Paginated: the Source also implements Paginated, and Book.TOC stays nil. The list is
//     on pages 1..n (TOCURL, ParseTOC), and PageOf and FirstOf hold the site's paging
//     rule, so that the fetcher fetches only the pages a waiting reader needs.
//
// A chapter's number is its position in the whole list, from 1; a number written in its
// title is only a cross-check (TitleNumber).
//
// A Source holds no mutable state and is used by many goroutines at once.
package site

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"

	"github.com/xswtw/xsw/events"
)

// Info describes a site and its adapter.
type Info struct {
	// ID is the site id (events.ValidSiteID), as in SOURCES: "xsw".
	ID string
	// Name is the site's name for people: "台灣小說網 (m.xsw.tw)".
	Name string
	// DefaultBaseURL is the site's base URL when SOURCE_<SITE>_URL names none.
	DefaultBaseURL string
	// BookIDPattern is an RE2 expression matching exactly the canonical book ids (against
	// the whole id; see CompilePattern). It is published as events.SiteInfo.BookIDPattern.
	BookIDPattern string
	// CategoryIDPattern likewise matches the canonical category ids.
	CategoryIDPattern string
}

// Validate reports whether the descriptor can be served.
func (i Info) Validate() error {
	if !events.ValidSiteID(i.ID) {
		return fmt.Errorf("site %q: the id is not a lowercase letter then letters and digits (at most %d)", i.ID, events.MaxSiteIDLen)
	}
	u, err := url.Parse(i.DefaultBaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("site %s: default base URL %q is not an http(s) URL", i.ID, i.DefaultBaseURL)
	}
	for name, p := range map[string]string{"book": i.BookIDPattern, "category": i.CategoryIDPattern} {
		if p == "" {
			return fmt.Errorf("site %s: no %s id pattern", i.ID, name)
		}
		if _, err := CompilePattern(p); err != nil {
			return fmt.Errorf("site %s: %s id pattern: %w", i.ID, name, err)
		}
	}
	return nil
}

// CompilePattern compiles an id pattern of Info as it is matched: against the whole id
// (events.CompileIDPattern, as the services without adapters match it).
func CompilePattern(pattern string) (*regexp.Regexp, error) { return events.CompileIDPattern(pattern) }

// Adapter is a site adapter: what it is, and how to build its Source.
type Adapter struct {
	Info Info
	// New returns the site's Source on base, an absolute http(s) URL (never nil: the
	// fetcher passes Info.DefaultBaseURL when no base is configured). It fails when it
	// cannot serve the site there.
	New func(base *url.URL) (Source, error)
}

// Validate reports whether the adapter can be registered.
func (a Adapter) Validate() error {
	if a.New == nil {
		return fmt.Errorf("site %s: adapter without New", a.Info.ID)
	}
	return a.Info.Validate()
}

// Registry maps site ids to their adapters. The fetcher serves the sites SOURCES names
// from it; a registry is a plain value, built by whoever starts the fetcher.
type Registry map[string]Adapter

// Add registers a under its id; it fails when a is not valid or its id is taken.
func (r Registry) Add(a Adapter) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if _, taken := r[a.Info.ID]; taken {
		return fmt.Errorf("site %s: registered twice", a.Info.ID)
	}
	r[a.Info.ID] = a
	return nil
}

// Names returns the registered site ids, sorted.
func (r Registry) Names() []string {
	out := make([]string, 0, len(r))
	for id := range r {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Lookup returns the adapter registered under id; it fails, naming the registered ids,
// when there is none or the one there does not hold.
func (r Registry) Lookup(id string) (Adapter, error) {
	a, ok := r[id]
	if !ok {
		return Adapter{}, fmt.Errorf("%w %q (known: %v)", ErrUnknownSite, id, r.Names())
	}
	if a.Info.ID != id {
		return Adapter{}, fmt.Errorf("site %s: registered under %q", a.Info.ID, id)
	}
	return a, a.Validate()
}

// ErrUnknownSite marks a site id that no registered adapter serves.
var ErrUnknownSite = errors.New("no adapter for site")

// Source is one site, as built by its Adapter on a base URL: its ids, its URLs, and the
// readers of its pages. See the package documentation for the contract.
type Source interface {
	// Info describes the site.
	Info() Info
	// CanonicalBookID reports whether id is the canonical spelling of a book id of the
	// site (the whole of Info.BookIDPattern).
	CanonicalBookID(id string) bool
	// CanonicalCategoryID reports whether id is the canonical spelling of a category id.
	CanonicalCategoryID(id string) bool

	HomeURL() string
	// ListingURL is the URL of a category's listing page, from 1.
	ListingURL(category string, page int) string
	BookURL(bookID string) string
	ChapterURL(bookID, chapterID string) string

	// ParseHome reads the categories, in page order, without repeats.
	ParseHome(body []byte, pageURL *url.URL) ([]Category, error)
	// ParseListing reads the books of a listing page, in page order. A page past the
	// last of its category gives no books and no error.
	ParseListing(body []byte, pageURL *url.URL) ([]ListingBook, error)
	// ParseBook reads a book's page: its metadata, and on a site whose book page
	// carries the whole chapter list, the list (Book.TOC).
	ParseBook(body []byte, pageURL *url.URL, bookID string) (*Book, error)
	ParseChapter(body []byte, pageURL *url.URL, bookID, chapterID string) (*Chapter, error)
}

// Paginated is implemented by a Source whose chapter lists are split into pages apart
// from the book page.
type Paginated interface {
	// TOCURL is the URL of page (from 1) of a book's chapter list.
	TOCURL(bookID string, page int) string
	// ParseTOC reads one page of a book's chapter list, numbering its chapters from
	// firstNumber, the position of the page's first chapter in the whole list. A page
	// past the end gives no chapters and no error.
	ParseTOC(body []byte, pageURL *url.URL, bookID string, page, firstNumber int) (*TOCPage, error)
	// PageOf returns the page that holds chapter n (from 1), by the site's paging rule
	// and what is known of the book's layout; ok is false when the layout does not tell
	// (a page must be fetched first to learn it: page 1). The page may lie past the
	// list's end; the caller checks it against Layout.TotalPages.
	PageOf(n int, l Layout) (page int, ok bool)
	// FirstOf returns the number of the first chapter on page, by the same rule; ok is
	// false when the layout does not tell.
	FirstOf(page int, l Layout) (first int, ok bool)
}

// Layout is what is known of a book's paginated chapter list, from the pages stored or
// fetched before.
type Layout struct {
	// FirstPageRefs is the number of chapters on page 1 (0: unknown).
	FirstPageRefs int
	// TotalPages is the page count the site last reported (0: unknown).
	TotalPages int
}
