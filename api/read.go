package api

import "time"

// Health is the body of GET /health: the seed's shape. Status is "ok", or "degraded"
// (with 503) when Postgres or NATS does not answer; Database and each of Checks are "ok"
// or "unavailable".
type Health struct {
	Status     string            `json:"status"`
	BaseURL    string            `json:"base_url"`
	Database   string            `json:"database"`
	CacheStats HealthCache       `json:"cache_stats"`
	JobStats   HealthJobs        `json:"job_stats"`
	Checks     map[string]string `json:"checks"`
}

// HealthCache is the seed's cache_stats. The database sizes are estimates: exact for
// small tables, from Postgres' statistics for large ones.
type HealthCache struct {
	BooksInDB           int64 `json:"books_in_db"`
	ChaptersInDB        int64 `json:"chapters_in_db"`
	ChaptersWithContent int64 `json:"chapters_with_content"`
	MemoryCacheSize     int   `json:"memory_cache_size"`
	MemoryCacheTTL      int   `json:"memory_cache_ttl"`
}

// HealthJobs is the seed's job_stats.
type HealthJobs struct {
	QueueSize      int   `json:"queue_size"`
	ActiveJobs     int   `json:"active_jobs"`
	CompletedCount int64 `json:"completed_count"`
	Workers        int   `json:"workers"`
	Running        bool  `json:"running"`
}

// Site is one entry of GET /sites: a source site the gateway serves, as its fetchers
// last described it.
type Site struct {
	// ID is what --site and /sites/{site} take.
	ID      string `json:"id"`
	Name    string `json:"name"`
	BaseURL string `json:"base_url"`
	// Default marks the site the unprefixed routes serve.
	Default bool `json:"default"`
	// State is ok, throttled, circuit_open or refused, as the fetchers report it, or
	// unknown while none has.
	State string `json:"state"`
	// RateInterval is the interval between requests to the site, cluster-wide (seconds).
	RateInterval float64 `json:"rate_interval_seconds"`
	// Detail says why the state is not ok ("czbooks: refused, HTTP 403 (Cloudflare)").
	Detail string `json:"detail,omitempty"`
	// Until is when the site is next probed or its circuit closes (RFC 3339 with
	// fractions of a second).
	Until *time.Time `json:"until,omitempty"`
}

// States of a Site.
const (
	SiteOK          = "ok"
	SiteThrottled   = "throttled"
	SiteCircuitOpen = "circuit_open"
	SiteRefused     = "refused"
	SiteUnknown     = "unknown"
)

// Category is one entry of GET /categories.
type Category struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
}

// ListingBook is one entry of GET /categories/{cat_id}/books, as the web client reads
// it. BookID is null for a listed id that is not the site's spelling of a book id.
type ListingBook struct {
	BookName    string  `json:"bookname"`
	Author      string  `json:"author"`
	LastChapter string  `json:"lastchapter"`
	LastURL     string  `json:"lasturl"`
	Intro       string  `json:"intro"`
	BookURL     string  `json:"bookurl"`
	BookID      *string `json:"book_id"`
	Site        string  `json:"site"`
}

// Book is the body of GET /books/{book_id} as the web client reads it; the fields
// after BookID are extras.
type Book struct {
	Name              string   `json:"name"`
	Author            string   `json:"author"`
	Type              string   `json:"type"`
	Status            string   `json:"status"`
	Update            string   `json:"update"`
	LastChapterTitle  string   `json:"last_chapter_title"`
	LastChapterURL    string   `json:"last_chapter_url"`
	LastChapterNumber *int     `json:"last_chapter_number"`
	BookID            string   `json:"book_id"`
	Site              string   `json:"site"`
	Volumes           []Volume `json:"volumes"`
	Description       string   `json:"description"`
	CoverURL          string   `json:"cover_url"`
	Finished          bool     `json:"finished"`
	ChapterCount      int      `json:"chapter_count"`
	// SyncStatus is complete, partial or none (see the Sync* constants).
	SyncStatus string  `json:"sync_status"`
	SyncedAt   *string `json:"synced_at"`
	CheckedAt  *string `json:"checked_at"`
	ChangedAt  *string `json:"changed_at"`
}

// Values of Book.SyncStatus and of the X-Sync-Status header of a chapter list.
const (
	SyncComplete = "complete"
	SyncPartial  = "partial"
	SyncNone     = "none"
)

// Volume is a volume header of a book's chapter list.
type Volume struct {
	Title        string `json:"title"`
	FirstChapter int    `json:"first_chapter"`
}

// ChapterRef is one entry of GET /books/{book_id}/chapters, a bare array; the paging
// facts are in the X-Total-Count, X-Sync-Status and X-Site headers.
type ChapterRef struct {
	Number int    `json:"number"`
	Title  string `json:"title"`
	URL    string `json:"url"`
}

// Chapter is the body of GET /books/{book_id}/chapters/{num}.
type Chapter struct {
	BookID     string `json:"book_id"`
	ChapterNum int    `json:"chapter_num"`
	Title      string `json:"title"`
	URL        string `json:"url"`
	Text       string `json:"text"`
	Site       string `json:"site"`
}

// Queued is the body of a 202 from a read of a book or its chapter list: the book is
// being synced, ask again after Retry-After. Status is "queued".
type Queued struct {
	BookID string `json:"book_id"`
	Site   string `json:"site"`
	Status string `json:"status"`
}

// QueuedChapter is the body of a 202 from a read of a chapter: "queued" while the book
// is being synced, "fetching" while its text is fetched.
type QueuedChapter struct {
	BookID     string `json:"book_id"`
	ChapterNum int    `json:"chapter_num"`
	Site       string `json:"site"`
	Status     string `json:"status"`
}

// Search is the body of GET /search.
type Search struct {
	Query string `json:"query"`
	// SearchType is all, books, chapters or content.
	SearchType string `json:"search_type"`
	// Terms are the forms of the query searched (as typed, and Traditional).
	Terms   []string    `json:"terms"`
	Count   int         `json:"count"`
	Results []SearchHit `json:"results"`
}

// SearchHit is one result of a search: a book (Type "book", Match "name" or "author")
// or a chapter (Type "chapter", Match "title" or "content").
type SearchHit struct {
	Type       string  `json:"type"`
	Match      string  `json:"match"`
	Site       string  `json:"site"`
	BookID     string  `json:"book_id"`
	Name       string  `json:"name"`
	Author     string  `json:"author"`
	ChapterNum *int    `json:"chapter_num"`
	Title      *string `json:"title"`
	URL        string  `json:"url"`
	Score      float64 `json:"score"`
	Snippet    *string `json:"snippet"`
}
