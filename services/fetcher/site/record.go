package site

import "time"

// Category is one category link from the home page.
type Category struct {
	ID   string `json:"id"` // the site's canonical category id
	Name string `json:"name"`
	URL  string `json:"url"` // absolute URL of the category's first listing page
}

// ListingBook is one book on a category listing page.
type ListingBook struct {
	BookID           string `json:"book_id"` // canonical; empty when the link named no book
	Name             string `json:"name"`
	Author           string `json:"author"`
	LastChapterTitle string `json:"last_chapter_title"`
	LastChapterURL   string `json:"last_chapter_url"` // absolute
	Intro            string `json:"intro"`
	BookURL          string `json:"book_url"` // absolute
}

// ChapterLink is a chapter link found on a book page, outside its chapter list (a
// preview of the newest chapters).
type ChapterLink struct {
	ChapterID string `json:"chapter_id"`
	Title     string `json:"title"`
	URL       string `json:"url"` // absolute
}

// Volume is a volume header of a chapter list: its title and the number of its first
// chapter. It is never a chapter itself.
type Volume struct {
	Title        string `json:"title"`
	FirstChapter int    `json:"first_chapter"`
}

// Book is what a book's page says about it.
type Book struct {
	BookID           string        `json:"book_id"`
	Name             string        `json:"name"`
	Author           string        `json:"author"`
	Genre            string        `json:"genre"`
	Status           string        `json:"status"`
	Finished         bool          `json:"finished"`             // by the site's own words for it
	UpdateText       string        `json:"update_text"`          // the site's own text
	UpdatedAt        *time.Time    `json:"updated_at,omitempty"` // parsed from UpdateText, when it parses
	Description      string        `json:"description"`
	CoverURL         string        `json:"cover_url"`
	LastChapterTitle string        `json:"last_chapter_title"`
	LastChapterURL   string        `json:"last_chapter_url"`
	LastChapterID    string        `json:"last_chapter_id"`
	Preview          []ChapterLink `json:"preview"` // newest first, never numbered
	SourceURL        string        `json:"source_url"`
	// Volumes are the volume headers of the chapter list, in order (none on a site
	// without volumes).
	Volumes []Volume `json:"volumes,omitempty"`
	// TOC is the whole chapter list, as page 1 of 1, when the book page carries it
	// (see the package documentation); nil on a site whose list is paginated.
	TOC *TOCPage `json:"toc,omitempty"`
}

// ChapterRef is one entry of a chapter list, numbered by its position.
type ChapterRef struct {
	Number      int    `json:"number"` // 1-based position in the whole chapter list
	ChapterID   string `json:"chapter_id"`
	Title       string `json:"title"`
	URL         string `json:"url"`                    // absolute
	TitleNumber *int   `json:"title_number,omitempty"` // the number written in the title, if any (cross-check only)
}

// TOCPage is one page of a book's chapter list.
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
