// Package site defines the seam between the fetcher's pipeline and a source site: the
// records a site yields, the errors a parser reports, and the Source interface that one
// adapter package per site implements. Nothing here knows a site's URLs or markup.
package site

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// ErrParse marks a page that could not be read: the expected elements were missing or
// malformed. A parse error is permanent, retrying the same bytes cannot help, unless it
// also matches ErrTruncated (see Permanent).
var ErrParse = errors.New("parse error")

// ErrTruncated marks a page whose bytes stop before the end of its document: the
// connection or the server cut it short, and what arrived may lack any part of the page
// (chapters of a table of contents, the end of a chapter) without looking malformed.
// Nothing is read from such a page; unlike other parse errors it is transient, since
// fetching the page again may bring all of it.
var ErrTruncated = errors.New("page truncated")

// ParseError says which page could not be parsed and what was missing.
type ParseError struct {
	Page string // page kind: "home", "listing", "book", "toc", "chapter"
	URL  string // the page's URL, when known
	What string // what was missing or malformed
	// Truncated is set when the page's bytes stop before the end of its document.
	Truncated bool
}

func (e *ParseError) Error() string {
	if e.URL == "" {
		return fmt.Sprintf("parse %s page: %s", e.Page, e.What)
	}
	return fmt.Sprintf("parse %s page %s: %s", e.Page, e.URL, e.What)
}

// Unwrap lets errors.Is(err, ErrParse) match, and errors.Is(err, ErrTruncated) for a
// truncated page.
func (e *ParseError) Unwrap() []error {
	if e.Truncated {
		return []error{ErrParse, ErrTruncated}
	}
	return []error{ErrParse}
}

// Permanent reports whether err is a parse error that fetching the page again cannot
// cure: any but a truncated page's.
func Permanent(err error) bool {
	return errors.Is(err, ErrParse) && !errors.Is(err, ErrTruncated)
}

// Truncated reports whether the HTML document in text (UTF-8) stops before its end: it
// opens an html or body element and closes neither. A page cut short anywhere before its
// last lines looks like that. A fragment that never opens them is not judged, since
// HTML lets a document leave out all four tags.
func Truncated(text []byte) bool {
	opened := false
	for i := 0; ; {
		j := bytes.IndexByte(text[i:], '<')
		if j < 0 {
			return opened
		}
		i += j + 1
		switch rest := text[i:]; {
		case tagAt(rest, "/body"), tagAt(rest, "/html"):
			return false
		case tagAt(rest, "html"), tagAt(rest, "body"):
			opened = true
		}
	}
}

// tagAt reports whether s starts with the tag name, in any case, followed by the end of
// the name.
func tagAt(s []byte, name string) bool {
	if len(s) < len(name) || !bytes.EqualFold(s[:len(name)], []byte(name)) {
		return false
	}
	if len(s) == len(name) {
		return name[0] == '/' // "</body" at the very end: the page stopped inside the tag
	}
	switch s[len(name)] {
	case '>', '/', ' ', '\t', '\n', '\r', '\f':
		return true
	}
	return false
}

// Category is one category link from the home page.
type Category struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"` // absolute URL of the category's first listing page
}

// ListingBook is one book on a category listing page.
type ListingBook struct {
	BookID           string `json:"book_id"` // digits; empty when the href held none
	Name             string `json:"name"`
	Author           string `json:"author"`
	LastChapterTitle string `json:"last_chapter_title"`
	LastChapterURL   string `json:"last_chapter_url"` // absolute
	Intro            string `json:"intro"`
	BookURL          string `json:"book_url"` // absolute
}

// ChapterLink is a chapter link found on a book home page preview.
type ChapterLink struct {
	ChapterID string `json:"chapter_id"` // digits
	Title     string `json:"title"`
	URL       string `json:"url"` // absolute
}

// Book is what a book's home page says about it.
type Book struct {
	BookID           string        `json:"book_id"`
	Name             string        `json:"name"`
	Author           string        `json:"author"`
	Genre            string        `json:"genre"`
	Status           string        `json:"status"`
	Finished         bool          `json:"finished"`
	UpdateText       string        `json:"update_text"`          // the site's own text
	UpdatedAt        *time.Time    `json:"updated_at,omitempty"` // parsed from UpdateText (UTC+8), when it parses
	Description      string        `json:"description"`
	CoverURL         string        `json:"cover_url"`
	LastChapterTitle string        `json:"last_chapter_title"`
	LastChapterURL   string        `json:"last_chapter_url"`
	LastChapterID    string        `json:"last_chapter_id"`
	Preview          []ChapterLink `json:"preview"` // newest first, never numbered
	SourceURL        string        `json:"source_url"`
}

// ChapterRef is one entry of a table of contents, numbered by its position.
type ChapterRef struct {
	Number      int    `json:"number"` // 1-based position in the whole table of contents
	ChapterID   string `json:"chapter_id"`
	Title       string `json:"title"`
	URL         string `json:"url"`                    // absolute
	TitleNumber *int   `json:"title_number,omitempty"` // the number written in the title, if any (cross-check only)
}

// TOCPage is one page of a book's table of contents.
type TOCPage struct {
	BookID     string       `json:"book_id"`
	Page       int          `json:"page"`
	TotalPages int          `json:"total_pages"`
	HasNext    bool         `json:"has_next"`
	Chapters   []ChapterRef `json:"chapters"`
}

// Chapter is a chapter page: its title and text.
type Chapter struct {
	BookID    string `json:"book_id"`
	ChapterID string `json:"chapter_id"`
	Title     string `json:"title"`
	Text      string `json:"text"` // paragraphs separated by "\n"
	PrevURL   string `json:"prev_url,omitempty"`
	NextURL   string `json:"next_url,omitempty"`
}

// Source is one source site: where its pages are and how to read them. Build*URL methods
// only ever produce URLs on the configured site. Parse* methods take the raw bytes of a
// page and the URL it was fetched from (for resolving relative links).
type Source interface {
	HomeURL() string
	ListingURL(category, page int) string
	BookURL(bookID string) string
	TOCURL(bookID string, page int) string
	ChapterURL(bookID, chapterID string) string

	ParseHome(body []byte, pageURL *url.URL) ([]Category, error)
	ParseListing(body []byte, pageURL *url.URL) ([]ListingBook, error)
	ParseBook(body []byte, pageURL *url.URL, bookID string) (*Book, error)
	// ParseTOC numbers the page's chapters from firstNumber, the position of the page's
	// first chapter in the whole table of contents.
	ParseTOC(body []byte, pageURL *url.URL, bookID string, page, firstNumber int) (*TOCPage, error)
	ParseChapter(body []byte, pageURL *url.URL, bookID, chapterID string) (*Chapter, error)
}
