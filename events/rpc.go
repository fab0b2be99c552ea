package events

// Request/reply payloads between gateways and fetchers. A reply carries either its data
// or an RPCError; the gateway maps ErrorKind to an HTTP status.

// ErrorKind classifies a failed request/reply.
type ErrorKind string

// Error kinds.
const (
	ErrKindBadRequest ErrorKind = "bad_request" // the request broke the contract
	ErrKindNotFound   ErrorKind = "not_found"   // the site answered 404
	ErrKindParse      ErrorKind = "parse"       // the page could not be read
	ErrKindSource     ErrorKind = "source"      // the site failed (5xx, refused, reset)
	ErrKindTimeout    ErrorKind = "timeout"     // the site or the politeness queue was too slow
	ErrKindCircuit    ErrorKind = "circuit"     // the circuit is open: no requests for now
	ErrKindRefused    ErrorKind = "refused"     // the site refuses us (403, a challenge page)
	ErrKindBusy       ErrorKind = "busy"        // readers have booked the site's budget too far ahead
)

// HeaderDeadline is the NATS header of a request/reply call that says until when its
// caller waits (RFC 3339, nanoseconds): a fetcher drops a call whose caller has gone, and
// stops waiting for the site's budget when it goes.
const HeaderDeadline = "Xsw-Deadline"

// RPCError is the error half of a reply.
type RPCError struct {
	Kind    ErrorKind `json:"kind"`
	Message string    `json:"message"`
	// RetryAfter is how long the caller should wait before asking again, in seconds, when
	// the fetcher knows (ErrKindBusy: until a slot within the bound is likely); 0: not said.
	RetryAfter float64 `json:"retry_after_seconds,omitempty"`
}

func (e *RPCError) Error() string { return string(e.Kind) + ": " + e.Message }

// CategoriesRequest asks for a site's categories.
type CategoriesRequest struct {
	Header
	Site string `json:"site"`
}

// Validate reports whether the request honours the contract.
func (r CategoriesRequest) Validate() error {
	if !ValidSiteID(r.Site) {
		return invalid("categories_request: bad site %q", r.Site)
	}
	return nil
}

func (r *CategoriesRequest) upgrade() { r.Version, r.Site = Version, legacySite(r.Site) }

// CategoriesReply answers CategoriesRequest.
type CategoriesReply struct {
	Header
	Categories []Category `json:"categories"`
	Error      *RPCError  `json:"error,omitempty"`
}

// Validate reports whether the reply honours the contract.
func (CategoriesReply) Validate() error { return nil }

// ListingRequest asks for one listing page of a category.
type ListingRequest struct {
	Header
	Site     string     `json:"site"`
	Category CategoryID `json:"category"`
	Page     int        `json:"page"`
}

// MaxListingPage bounds the listing page a request may name.
const MaxListingPage = 10000

// Validate reports whether the request honours the contract.
func (r ListingRequest) Validate() error {
	if !ValidSiteID(r.Site) || !ValidID(string(r.Category)) || r.Page < 1 || r.Page > MaxListingPage {
		return invalid("listing_request: site %q category %q page %d", r.Site, r.Category, r.Page)
	}
	return nil
}

func (r *ListingRequest) upgrade() { r.Version, r.Site = Version, legacySite(r.Site) }

// ListingBook is one book of a listing page.
type ListingBook struct {
	BookID           string `json:"book_id"`
	Name             string `json:"name"`
	Author           string `json:"author"`
	LastChapterTitle string `json:"last_chapter_title"`
	LastChapterURL   string `json:"last_chapter_url"`
	Intro            string `json:"intro"`
	BookURL          string `json:"book_url"`
}

// ListingReply answers ListingRequest.
type ListingReply struct {
	Header
	Books []ListingBook `json:"books"`
	Error *RPCError     `json:"error,omitempty"`
}

// Validate reports whether the reply honours the contract.
func (ListingReply) Validate() error { return nil }

// ChapterRequest asks for one chapter's text. The fetcher replies and also publishes a
// ChapterFetched event so the indexer stores it.
type ChapterRequest struct {
	Header
	Site      string `json:"site"`
	BookID    string `json:"book_id"`
	ChapterID string `json:"chapter_id"`
	Number    int    `json:"number"`
}

// Validate reports whether the request honours the contract.
func (r ChapterRequest) Validate() error {
	if err := validBook("chapter_request", r.Site, r.BookID); err != nil {
		return err
	}
	if !ValidID(r.ChapterID) || r.Number < 1 {
		return invalid("chapter_request: book %q chapter %q number %d", r.BookID, r.ChapterID, r.Number)
	}
	return nil
}

func (r *ChapterRequest) upgrade() { r.Version, r.Site = Version, legacySite(r.Site) }

// ChapterReply answers ChapterRequest.
type ChapterReply struct {
	Header
	Chapter *ChapterFetched `json:"chapter,omitempty"`
	Error   *RPCError       `json:"error,omitempty"`
}

// Validate reports whether the reply honours the contract.
func (ChapterReply) Validate() error { return nil }

// MaxRefsPerCall bounds the chapter refs one ChapterRefsRequest may ask for.
const MaxRefsPerCall = 1000

// MaxStoredPages bounds ChapterRefsRequest.Stored.
const MaxStoredPages = 5000

// ChapterRefsRequest asks for chapters From..To of a book's chapter list, for a reader
// who is waiting for them while the book is not (wholly) stored yet. The fetcher finds
// them by the site's own rules (which pages of the list hold them, or the one page that
// holds all), fetches at most a few pages out of turn, replies with the refs it found in
// the range, and publishes the pages it fetched as TOCPageFetched for the indexer.
//
// Stored tells the fetcher what the database holds, so that it fetches nothing twice:
// the pages of the chapter list (TOCPageFetched.Page) whose refs are stored, how many
// refs page 1 held, and the page count the site last reported. None of it is a site rule.
type ChapterRefsRequest struct {
	Header
	Site   string      `json:"site"`
	BookID string      `json:"book_id"`
	From   int         `json:"from"`
	To     int         `json:"to"`
	Stored StoredPages `json:"stored"`
}

// StoredPages is what the database holds of a book's chapter list, by page of the list
// as the site delivered it.
type StoredPages struct {
	// Pages lists the pages whose refs are stored, ascending.
	Pages []int `json:"pages,omitempty"`
	// FirstPageRefs is how many refs page 1 held (0: page 1 is not stored).
	FirstPageRefs int `json:"first_page_refs"`
	// TotalPages is the page count the site last reported (0: unknown).
	TotalPages int `json:"total_pages"`
}

// Validate reports whether the request honours the contract.
func (r ChapterRefsRequest) Validate() error {
	if err := validBook("chapter_refs_request", r.Site, r.BookID); err != nil {
		return err
	}
	switch {
	case r.From < 1 || r.To < r.From || r.To-r.From >= MaxRefsPerCall:
		return invalid("chapter_refs_request: chapters %d-%d", r.From, r.To)
	case len(r.Stored.Pages) > MaxStoredPages || r.Stored.FirstPageRefs < 0 || r.Stored.TotalPages < 0:
		return invalid("chapter_refs_request: bad stored layout")
	}
	return nil
}

// ChapterRefsReply answers ChapterRefsRequest: the refs found in the range, ascending
// by number (fewer than asked when the book has fewer chapters, or when the fetcher
// stopped at its bound of pages fetched out of turn).
type ChapterRefsReply struct {
	Header
	Refs  []ChapterRef `json:"refs"`
	Error *RPCError    `json:"error,omitempty"`
}

// Validate reports whether the reply honours the contract.
func (ChapterRefsReply) Validate() error { return nil }
