package events

import (
	"fmt"
	"time"
)

// CrawlRequested asks the fetchers to walk category listing pages and queue every book
// on them in the prefetch lane, at the polite rate. Progress is kept in BucketCrawls
// under CrawlID, so a crawl interrupted by a restart resumes where it stopped.
type CrawlRequested struct {
	Header
	CrawlID     string       `json:"crawl_id"`
	Site        string       `json:"site"`
	Categories  []CategoryID `json:"categories"`
	FromPage    int          `json:"from_page"`
	ToPage      int          `json:"to_page"`
	RequestedAt time.Time    `json:"requested_at"`
}

// MaxCrawlPages bounds the listing pages one crawl may walk.
const MaxCrawlPages = 5000

// NewCrawlRequested builds a versioned crawl request named after its time.
func NewCrawlRequested(site string, categories []CategoryID, fromPage, toPage int, at time.Time) CrawlRequested {
	return CrawlRequested{
		Header: Header{Version: Version}, CrawlID: fmt.Sprintf("crawl-%d", at.UnixNano()), Site: site,
		Categories: categories, FromPage: fromPage, ToPage: toPage, RequestedAt: at.UTC(),
	}
}

// Validate reports whether the request honours the contract.
func (c CrawlRequested) Validate() error {
	switch {
	case c.CrawlID == "" || !validToken(c.CrawlID):
		return invalid("crawl_requested: bad crawl_id %q", c.CrawlID)
	case !ValidSiteID(c.Site):
		return invalid("crawl_requested: bad site %q", c.Site)
	case len(c.Categories) == 0:
		return invalid("crawl_requested: no categories")
	case c.FromPage < 1 || c.ToPage < c.FromPage || c.ToPage > MaxListingPage:
		return invalid("crawl_requested: pages %d-%d", c.FromPage, c.ToPage)
	case len(c.Categories)*(c.ToPage-c.FromPage+1) > MaxCrawlPages:
		return invalid("crawl_requested: more than %d listing pages", MaxCrawlPages)
	}
	for _, cat := range c.Categories {
		if !ValidID(string(cat)) {
			return invalid("crawl_requested: category %q", cat)
		}
	}
	return nil
}

func (c *CrawlRequested) upgrade() { c.Version, c.Site = Version, legacySite(c.Site) }

// Subject is where the request is published.
func (c CrawlRequested) Subject() string { return "xsw.crawl." + c.CrawlID }

// MsgID de-duplicates a republished request.
func (c CrawlRequested) MsgID() string { return c.CrawlID }

// Crawl states.
const (
	CrawlRunning = "running"
	CrawlDone    = "done"
)

// CrawlProgress is what BucketCrawls holds for a crawl, rewritten after every listing
// page.
type CrawlProgress struct {
	Header
	Request CrawlRequested `json:"request"`
	State   string         `json:"state"`
	// Next is the position of the next listing page to walk, in category-then-page order.
	Next       int `json:"next"`
	PagesTotal int `json:"pages_total"`
	PagesDone  int `json:"pages_done"`
	// Ended lists categories found to have no more pages.
	Ended       []CategoryID `json:"ended,omitempty"`
	BooksQueued int          `json:"books_queued"`
	BooksSeen   int          `json:"books_seen"`
	Errors      []string     `json:"errors,omitempty"`
	StartedAt   time.Time    `json:"started_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
}

// Validate reports whether the progress honours the contract.
func (p CrawlProgress) Validate() error { return p.Request.Validate() }

func (p *CrawlProgress) upgrade() { p.Version = Version; p.Request.upgrade() }

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
