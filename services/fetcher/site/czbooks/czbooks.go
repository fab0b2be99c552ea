// Package czbooks is the adapter for czbooks.net (小說狂人): it builds the site's URLs on
// a configurable base and parses its pages (home, category listing, book, chapter) into
// the records of package site. Adapter registers it under the site id "czbooks".
//
// The parsers follow shared/SOURCE_SITE_CZBOOKS.md, written without sight of the site:
// every selector there is read, a missing optional piece leaves its field empty, and a
// missing essential piece gives a *site.ParseError (errors.Is(err, site.ErrParse))
// naming the page, its URL and the selector. A page whose bytes stop before the end of
// its document is a ParseError with Truncated set. No input makes them panic.
//
// What is particular to the site:
//
//   - Ids are opaque strings kept exactly as written: books cr382b and s660jj, chapter
//     crdic; an all-digit id, or one with leading zeros (0123), is an id like any other.
//     A canonical book or chapter id is BookIDPattern (what the pipeline can carry,
//     events.ValidID: nothing in the description narrows it); a category id is the slug
//     of /c/{slug}, word characters.
//   - URLs: home /, listing /c/{slug} (page 1) and /c/{slug}/{n}, book /n/{book}, chapter
//     /n/{book}/{chapter}, all on the configured base, whose path is kept as a prefix.
//   - The book page carries the metadata and the whole chapter list, with volume headers
//     (li.volume) that are never chapters: ParseBook fills Book.TOC as page 1 of 1 and
//     Book.Volumes; the Source is not site.Paginated.
//   - A book is finished when its status contains 已完成, 完結 or 完结 (so 已完結 too).
//
// Links. A link naming czbooks.net or a subdomain (any scheme, or protocol-relative
// //czbooks.net/…) keeps its path and query, joined to the configured base; a root-relative
// link joins the base; any other relative link resolves against the page, and a link on
// the base's own host is a site page when it lies under the base's path. Links to other
// hosts are no site pages. With the base http://127.0.0.1:8080, //czbooks.net/n/cr382b is
// http://127.0.0.1:8080/n/cr382b: a protocol-relative link never becomes https. Ids are
// read from a link's path on the base (/n/{book}, /n/{book}/{chapter}, /c/{slug}, an
// optional trailing slash); a segment that is not a canonical id, percent-escaped ones
// included, names nothing.
//
// What the description leaves open [?], and our rule:
//
//   - Encoding: valid UTF-8 is used as it is, anything else is read as Big5 (site.Decode).
//   - Home: when ul.nav.menu li a holds no category link (absent or not), every a is
//     read. A category linked twice keeps its first non-empty name. A home without any
//     category link is a ParseError.
//   - Listing: the books are li.novel-item-wrapper > div.novel-item, else any
//     div.novel-item. An item without a link to a book (the cover wrapper's a[href] to
//     /n/{book}, else the item's first book link) is skipped. The title loses one
//     leading 《 and one trailing 》 as on the book page. The bookmark and view counts
//     are read by nobody: the records have no field for them. A 404 or a page without
//     books ends a category: a page without items, or whose items all lack a book link,
//     is past the end (an empty list, no error) whatever else it holds, menu or none.
//     Only a book page (div.novel-detail) or a chapter page (.chapter-detail) without
//     books is a ParseError (the wrong page); a page cut short is a truncated-page
//     ParseError, and a challenge page is caught by the client before any parser sees
//     it.
//   - Book: the title is essential (ParseError without it), the rest optional. Labels of
//     the state table are matched by the word they contain (狀態 or 状态, 更新); the first
//     cell of a kind wins. The update time's format and zone are unknown: UpdateText
//     keeps the raw text and UpdatedAt stays nil. The category is a#novel-category's
//     text (Genre); its slug has no field. The cover is the first img in
//     div.novel-detail (src, data-src or data-original), when there is one, placed by the
//     link rule like any link (img.czbooks.net too). There is no preview of the newest
//     chapters (Preview is empty).
//   - Chapter list: the direct li children of every ul.chapter-list (inside
//     div.novel-detail, else anywhere), in page order. A page without ul.chapter-list is
//     a changed layout: a ParseError. A list without chapters is a book without
//     chapters: an empty TOC and no error. An li's chapter is its first link to a chapter
//     of this book (/n/{book}/{chapter}); an li without one (no link, a link elsewhere)
//     is skipped, unless no li has one while some have links to pages: those links
//     are a layout the adapter does not read, a ParseError rather than a book without
//     chapters. A chapter id seen before in the list is skipped: the first keeps its
//     place and number. A volume header's title is its text less any list nested in it;
//     a header without text is skipped; one followed by no chapter is kept with
//     FirstChapter = the number the next chapter would have (count+1), so it is never
//     below 1.
//   - Chapter: the title may be missing (empty). Inline white space in the text collapses
//     as in a browser (site.CollapseSpace); lines naming czbooks, in any case or in
//     full-width letters, are dropped whatever their length. Navigation inside the
//     content is dropped: anchors saying only navigation words (上一章, 下一章, 上一頁,
//     目錄, 返回目錄, 書頁…, Traditional or Simplified) or nothing, linking to the
//     chapter itself, or linking to the book or its chapters as a previous or next link
//     or saying 返回; elements holding only those; and lines of such words and
//     separators only. Any other anchor keeps its text, and a sentence using the words
//     stays. A content that is empty after cleanup is a
//     ParseError. PrevURL and NextURL come from the page's links (inside the content or
//     not) saying 上一章/下一章 (or of class, id or rel prev/next) when they name a
//     chapter of the book; a link to the book page at either end gives none.
//   - Book and chapter URLs read from links lose a trailing slash (/n/0417/ is
//     /n/0417, as BookURL builds it); ids stay as written, and a category link keeps
//     its spelling.
package czbooks

import (
	"net/url"
	"strconv"

	"github.com/xswtw/xsw/services/fetcher/site"
)

// ID is the site id of czbooks.net.
const ID = "czbooks"

// DefaultBaseURL is the site's usual base URL.
const DefaultBaseURL = "https://czbooks.net"

// Canonical ids. Book and chapter ids are opaque: any 1 to 64 of the characters an id
// may carry (events.ValidID). A category id is a slug of word characters.
const (
	BookIDPattern     = `[0-9A-Za-z_-]{1,64}`
	CategoryIDPattern = `[0-9A-Za-z_]{1,64}`
	maxIDLen          = 64
)

// Info describes czbooks.net.
func Info() site.Info {
	return site.Info{
		ID: ID, Name: "小說狂人 (czbooks.net)", DefaultBaseURL: DefaultBaseURL,
		BookIDPattern: BookIDPattern, CategoryIDPattern: CategoryIDPattern,
	}
}

// Adapter returns the adapter of czbooks.net, to register under ID.
func Adapter() site.Adapter {
	return site.NewAdapter(Info(), func(b site.Base) site.Source { return &Source{base: b} })
}

// siteDomain is the site's registered domain: links to it or its subdomains are links
// to the site, and text lines naming it are advertisements.
const siteDomain = "czbooks.net"

// Source is the czbooks.net adapter; it implements site.Source. It holds no mutable
// state and is safe for concurrent use.
type Source struct {
	base site.Base // every URL of the site is built on it
}

var _ site.Source = (*Source)(nil)

// New returns the adapter for the site at base, such as https://czbooks.net or
// http://127.0.0.1:8080 for a local stand-in. A path in base is kept as a prefix of
// every URL; its query and fragment are dropped. A nil base, or one that is not an
// absolute http(s) URL with a host, means DefaultBaseURL.
func New(base *url.URL) *Source { return &Source{base: site.BaseOr(base, DefaultBaseURL)} }

// Info describes the site.
func (s *Source) Info() site.Info { return Info() }

// CanonicalBookID reports whether id is a book id as the site writes it: 1 to 64 ASCII
// letters, digits, '-' and '_', kept as they are ("0123" and "cr382b" both are).
func (s *Source) CanonicalBookID(id string) bool { return canonicalID(id) }

// CanonicalCategoryID reports whether id is a category slug: 1 to 64 word characters.
func (s *Source) CanonicalCategoryID(id string) bool { return canonicalSlug(id) }

// canonicalID reports whether id matches BookIDPattern (book and chapter ids).
func canonicalID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(wordByte(c) || c == '-') {
			return false
		}
	}
	return true
}

// canonicalSlug reports whether id matches CategoryIDPattern.
func canonicalSlug(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !wordByte(id[i]) {
			return false
		}
	}
	return true
}

// wordByte reports the ASCII word characters [0-9A-Za-z_].
func wordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// HomeURL returns the URL of the site's home page.
func (s *Source) HomeURL() string { return s.base.HomeURL() }

// ListingURL returns the URL of a category's listing page: /c/{slug} for page 1 (and
// below), /c/{slug}/{n} after it.
func (s *Source) ListingURL(category string, page int) string {
	u := s.base.URL("/c/" + site.PathSegment(category))
	if page < 2 {
		return u
	}
	return u + "/" + strconv.Itoa(page)
}

// BookURL returns the URL of a book's page, which carries its whole chapter list.
func (s *Source) BookURL(bookID string) string {
	return s.base.URL("/n/" + site.PathSegment(bookID))
}

// ChapterURL returns the URL of a chapter page.
func (s *Source) ChapterURL(bookID, chapterID string) string {
	return s.base.URL("/n/" + site.PathSegment(bookID) + "/" + site.PathSegment(chapterID))
}
