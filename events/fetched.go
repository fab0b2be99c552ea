package events

import (
	"strconv"
	"time"
)

// BookMeta is what a book's home page says about it.
type BookMeta struct {
	Name             string     `json:"name"`
	Author           string     `json:"author"`
	Genre            string     `json:"genre"`
	Status           string     `json:"status"`
	Finished         bool       `json:"finished"`
	UpdateText       string     `json:"update_text"`
	UpdatedAt        *time.Time `json:"updated_at"`
	Description      string     `json:"description"`
	CoverURL         string     `json:"cover_url"`
	LastChapterTitle string     `json:"last_chapter_title"`
	LastChapterURL   string     `json:"last_chapter_url"`
	LastChapterID    string     `json:"last_chapter_id"`
	SourceURL        string     `json:"source_url"`
}

// BookFetched carries a book's metadata, read from its home page.
type BookFetched struct {
	Header
	JobID     string    `json:"job_id"`
	BookID    string    `json:"book_id"`
	Book      BookMeta  `json:"book"`
	FetchedAt time.Time `json:"fetched_at"`
}

// Validate reports whether the event honours the contract.
func (e BookFetched) Validate() error {
	if !ValidBookID(e.BookID) {
		return invalid("book_fetched: bad book_id %q", e.BookID)
	}
	if e.Book.Name == "" {
		return invalid("book_fetched: book %s has no name", e.BookID)
	}
	return nil
}

// MsgID de-duplicates a republished event of the same job.
func (e BookFetched) MsgID() string { return e.JobID + ":book" }

// ChapterRef is one entry of a table of contents. Number is the chapter's position in the
// whole table of contents, starting at 1.
type ChapterRef struct {
	Number      int    `json:"number"`
	ChapterID   string `json:"chapter_id"`
	Title       string `json:"title"`
	URL         string `json:"url"`
	TitleNumber *int   `json:"title_number,omitempty"`
}

// TOCPageFetched carries one page of a book's table of contents.
type TOCPageFetched struct {
	Header
	JobID      string       `json:"job_id"`
	BookID     string       `json:"book_id"`
	Page       int          `json:"page"`
	TotalPages int          `json:"total_pages"`
	Chapters   []ChapterRef `json:"chapters"`
	FetchedAt  time.Time    `json:"fetched_at"`
}

// Validate reports whether the event honours the contract.
func (e TOCPageFetched) Validate() error {
	if !ValidBookID(e.BookID) {
		return invalid("toc_page_fetched: bad book_id %q", e.BookID)
	}
	if e.Page < 1 || e.TotalPages < e.Page {
		return invalid("toc_page_fetched: page %d of %d", e.Page, e.TotalPages)
	}
	for i, c := range e.Chapters {
		if c.Number < 1 || !ValidID(c.ChapterID) {
			return invalid("toc_page_fetched: chapter %d of page %d: number %d id %q", i, e.Page, c.Number, c.ChapterID)
		}
	}
	return nil
}

// MsgID de-duplicates a republished page of the same job.
func (e TOCPageFetched) MsgID() string { return e.JobID + ":toc:" + strconv.Itoa(e.Page) }

// ChapterFetched carries one chapter's text, fetched when first read.
type ChapterFetched struct {
	Header
	BookID    string    `json:"book_id"`
	Number    int       `json:"number"`
	ChapterID string    `json:"chapter_id"`
	Title     string    `json:"title"`
	URL       string    `json:"url"`
	Text      string    `json:"text"`
	FetchedAt time.Time `json:"fetched_at"`
}

// Validate reports whether the event honours the contract.
func (e ChapterFetched) Validate() error {
	if !ValidBookID(e.BookID) || !ValidID(e.ChapterID) || e.Number < 1 {
		return invalid("chapter_fetched: book %q chapter %q number %d", e.BookID, e.ChapterID, e.Number)
	}
	return nil
}

// MsgID de-duplicates a chapter fetched twice at once.
func (e ChapterFetched) MsgID() string { return "chapter:" + e.BookID + ":" + e.ChapterID }

// Category is one category of the site.
type Category struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
}

// CategoriesFetched carries the categories read from the site's home page.
type CategoriesFetched struct {
	Header
	Categories []Category `json:"categories"`
	FetchedAt  time.Time  `json:"fetched_at"`
}

// Validate reports whether the event honours the contract.
func (e CategoriesFetched) Validate() error {
	for _, c := range e.Categories {
		if c.ID < 1 || c.Name == "" {
			return invalid("categories_fetched: category %d %q", c.ID, c.Name)
		}
	}
	return nil
}
