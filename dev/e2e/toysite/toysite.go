// Package toysite is a site adapter that is not m.xsw.tw, and the little site it reads:
// a JSON site whose ids are not numbers ("ab-12"), whose categories are words, and whose
// book page carries the whole chapter list (with a volume header). The end-to-end tests
// register it beside the built-in adapters to show that a site is one package and its
// registration: nothing in the pipeline changes for it.
package toysite

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/xswtw/xsw/services/fetcher/site"
)

// ID is the toy site's id.
const ID = "toy"

var (
	bookID     = regexp.MustCompile(`^[a-z]{2}-[1-9][0-9]{0,3}$`)
	categoryID = regexp.MustCompile(`^[a-z]{3,12}$`)
)

// Info describes the toy site.
func Info() site.Info {
	return site.Info{
		ID: ID, Name: "玩具書站 (toy)", DefaultBaseURL: "http://127.0.0.1:1",
		BookIDPattern: `[a-z]{2}-[1-9][0-9]{0,3}`, CategoryIDPattern: `[a-z]{3,12}`,
	}
}

// Adapter is the toy site's adapter, to register in a site.Registry.
func Adapter() site.Adapter {
	return site.Adapter{Info: Info(), New: func(base *url.URL) (site.Source, error) {
		return &source{base: strings.TrimRight(base.String(), "/")}, nil
	}}
}

// source reads the toy site's JSON pages.
type source struct{ base string }

func (s *source) Info() site.Info                    { return Info() }
func (s *source) CanonicalBookID(id string) bool     { return bookID.MatchString(id) }
func (s *source) CanonicalCategoryID(id string) bool { return categoryID.MatchString(id) }
func (s *source) HomeURL() string                    { return s.base + "/" }
func (s *source) BookURL(id string) string           { return s.base + "/b/" + url.PathEscape(id) }
func (s *source) ChapterURL(book, chapter string) string {
	return s.BookURL(book) + "/" + url.PathEscape(chapter)
}
func (s *source) ListingURL(category string, page int) string {
	return fmt.Sprintf("%s/c/%s/%d", s.base, url.PathEscape(category), max(page, 1))
}

func parse(kind string, body []byte, pageURL *url.URL, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		u := ""
		if pageURL != nil {
			u = pageURL.String()
		}
		return &site.ParseError{Page: kind, URL: u, What: err.Error()}
	}
	return nil
}

func (s *source) ParseHome(body []byte, pageURL *url.URL) ([]site.Category, error) {
	var home struct{ Categories []Category }
	if err := parse("home", body, pageURL, &home); err != nil {
		return nil, err
	}
	out := make([]site.Category, 0, len(home.Categories))
	for _, c := range home.Categories {
		out = append(out, site.Category{ID: c.ID, Name: c.Name, URL: s.ListingURL(c.ID, 1)})
	}
	return out, nil
}

func (s *source) ParseListing(body []byte, pageURL *url.URL) ([]site.ListingBook, error) {
	var listing struct{ Books []Book }
	if err := parse("listing", body, pageURL, &listing); err != nil {
		return nil, err
	}
	out := make([]site.ListingBook, 0, len(listing.Books))
	for _, b := range listing.Books {
		out = append(out, site.ListingBook{BookID: b.ID, Name: b.Name, Author: b.Author, BookURL: s.BookURL(b.ID)})
	}
	return out, nil
}

func (s *source) ParseBook(body []byte, pageURL *url.URL, id string) (*site.Book, error) {
	var b Book
	if err := parse("book", body, pageURL, &b); err != nil {
		return nil, err
	}
	if b.Name == "" {
		return nil, &site.ParseError{Page: "book", URL: s.BookURL(id), What: "no name"}
	}
	book := &site.Book{BookID: id, Name: b.Name, Author: b.Author, Status: "ongoing", Finished: b.Done,
		SourceURL: s.BookURL(id), TOC: &site.TOCPage{BookID: id, Page: 1, TotalPages: 1, Chapters: []site.ChapterRef{}}}
	if b.Done {
		book.Status = "done"
	}
	for _, e := range b.Entries {
		if e.Volume != "" { // a volume header, never a chapter
			book.Volumes = append(book.Volumes, site.Volume{Title: e.Volume, FirstChapter: len(book.TOC.Chapters) + 1})
			continue
		}
		book.TOC.Chapters = append(book.TOC.Chapters, site.ChapterRef{Number: len(book.TOC.Chapters) + 1, ChapterID: e.ID,
			Title: e.Title, URL: s.ChapterURL(id, e.ID)})
	}
	if n := len(book.TOC.Chapters); n > 0 {
		last := book.TOC.Chapters[n-1]
		book.LastChapterID, book.LastChapterTitle, book.LastChapterURL = last.ChapterID, last.Title, last.URL
	}
	return book, nil
}

func (s *source) ParseChapter(body []byte, pageURL *url.URL, book, chapter string) (*site.Chapter, error) {
	var c struct{ Title, Text string }
	if err := parse("chapter", body, pageURL, &c); err != nil {
		return nil, err
	}
	return &site.Chapter{BookID: book, ChapterID: chapter, Title: c.Title, Text: c.Text}, nil
}

// Category is a category of the toy site.
type Category struct{ ID, Name string }

// Book is a book of the toy site: its chapter list holds volume headers (Volume set)
// and chapters.
type Book struct {
	ID, Name, Author string
	Done             bool
	Category         string
	Entries          []Entry
}

// Entry is a volume header or a chapter of a toy book.
type Entry struct{ Volume, ID, Title, Text string }

// Server serves the toy site and counts the requests for each path.
type Server struct {
	Categories []Category
	Books      []Book

	mu       sync.Mutex
	requests map[string]int
}

// Requests returns how many times path was asked for.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// Total returns how many requests the site answered.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.requests {
		n += c
	}
	return n
}

// ServeHTTP answers the toy site's pages as JSON.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.requests == nil {
		s.requests = map[string]int{}
	}
	s.requests[r.URL.Path]++
	s.mu.Unlock()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var v any
	switch {
	case r.URL.Path == "/":
		v = map[string]any{"categories": s.Categories}
	case len(parts) == 3 && parts[0] == "c":
		var books []Book
		if parts[2] == "1" {
			for _, b := range s.Books {
				if b.Category == parts[1] {
					books = append(books, Book{ID: b.ID, Name: b.Name, Author: b.Author})
				}
			}
		}
		v = map[string]any{"books": books}
	case len(parts) >= 2 && parts[0] == "b":
		for _, b := range s.Books {
			if b.ID != parts[1] {
				continue
			}
			if len(parts) == 2 {
				v = b
			}
			for _, e := range b.Entries {
				if len(parts) == 3 && e.ID == parts[2] && e.Volume == "" {
					v = map[string]string{"title": e.Title, "text": e.Text}
				}
			}
		}
	}
	if v == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
