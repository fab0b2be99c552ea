package events

import (
	"encoding/json"
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
	// Volumes are the book's volume headers, in order, where the site divides its
	// chapter list into volumes (none on a site that does not). They are never chapters.
	Volumes []Volume `json:"volumes,omitempty"`
}

// Volume is one volume header of a book's chapter list: its title and the position of
// its first chapter.
type Volume struct {
	Title        string `json:"title"`
	FirstChapter int    `json:"first_chapter"`
}

// BookFetched carries a book's metadata, read from its home page.
type BookFetched struct {
	Header
	JobID     string    `json:"job_id"`
	Site      string    `json:"site"`
	BookID    string    `json:"book_id"`
	Book      BookMeta  `json:"book"`
	FetchedAt time.Time `json:"fetched_at"`
}

// Validate reports whether the event honours the contract.
func (e BookFetched) Validate() error {
	if err := validBook("book_fetched", e.Site, e.BookID); err != nil {
		return err
	}
	for _, v := range e.Book.Volumes {
		if v.FirstChapter < 1 {
			return invalid("book_fetched: volume %q starts at chapter %d", v.Title, v.FirstChapter)
		}
	}
	if e.Book.Name == "" {
		return invalid("book_fetched: book %s has no name", e.BookID)
	}
	return nil
}

// MsgID de-duplicates a republished event of the same job.
func (e BookFetched) MsgID() string { return e.JobID + ":book" }

func (e *BookFetched) upgrade() { e.Version, e.Site = Version, legacySite(e.Site) }

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
	Site       string       `json:"site"`
	BookID     string       `json:"book_id"`
	Page       int          `json:"page"`
	TotalPages int          `json:"total_pages"`
	Chapters   []ChapterRef `json:"chapters"`
	FetchedAt  time.Time    `json:"fetched_at"`
}

// Validate reports whether the event honours the contract.
func (e TOCPageFetched) Validate() error {
	if err := validBook("toc_page_fetched", e.Site, e.BookID); err != nil {
		return err
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

func (e *TOCPageFetched) upgrade() { e.Version, e.Site = Version, legacySite(e.Site) }

// ChapterFetched carries one chapter's text, fetched when first read.
type ChapterFetched struct {
	Header
	Site      string    `json:"site"`
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
	if err := validBook("chapter_fetched", e.Site, e.BookID); err != nil {
		return err
	}
	if !ValidID(e.ChapterID) || e.Number < 1 {
		return invalid("chapter_fetched: book %q chapter %q number %d", e.BookID, e.ChapterID, e.Number)
	}
	return nil
}

// MsgID de-duplicates a chapter fetched twice at once.
func (e ChapterFetched) MsgID() string {
	return "chapter:" + e.Site + ":" + e.BookID + ":" + e.ChapterID
}

func (e *ChapterFetched) upgrade() { e.Version, e.Site = Version, legacySite(e.Site) }

// Category is one category of a site. Its id is the site's own (a number on m.xsw.tw, a
// slug on other sites); version 1 payloads carried it as a JSON number.
type Category struct {
	ID   CategoryID `json:"id"`
	Name string     `json:"name"`
	URL  string     `json:"url"`
}

// CategoriesFetched carries the categories read from a site's home page.
type CategoriesFetched struct {
	Header
	Site       string     `json:"site"`
	Categories []Category `json:"categories"`
	FetchedAt  time.Time  `json:"fetched_at"`
}

// Validate reports whether the event honours the contract.
func (e CategoriesFetched) Validate() error {
	if !ValidSiteID(e.Site) {
		return invalid("categories_fetched: bad site %q", e.Site)
	}
	for _, c := range e.Categories {
		if !ValidID(string(c.ID)) || c.Name == "" {
			return invalid("categories_fetched: category %q %q", c.ID, c.Name)
		}
	}
	return nil
}

func (e *CategoriesFetched) upgrade() { e.Version, e.Site = Version, legacySite(e.Site) }

// Subject is where the event is published.
func (e CategoriesFetched) Subject() string { return SubjectFetchedCategories(e.Site) }

// CategoryID is a site's id of a category. It reads a JSON number as well as a string,
// as version 1 payloads wrote m.xsw.tw's numeric ids; it always writes a string.
type CategoryID string

// UnmarshalJSON reads a string or a number.
func (c *CategoryID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '"' {
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*c = CategoryID(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*c = CategoryID(s)
	return nil
}
