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
)

// RPCError is the error half of a reply.
type RPCError struct {
	Kind    ErrorKind `json:"kind"`
	Message string    `json:"message"`
}

func (e *RPCError) Error() string { return string(e.Kind) + ": " + e.Message }

// CategoriesRequest asks for the site's categories.
type CategoriesRequest struct {
	Header
}

// Validate reports whether the request honours the contract.
func (CategoriesRequest) Validate() error { return nil }

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
	Category int `json:"category"`
	Page     int `json:"page"`
}

// MaxListingPage bounds the listing page a request may name.
const MaxListingPage = 10000

// Validate reports whether the request honours the contract.
func (r ListingRequest) Validate() error {
	if r.Category < 1 || r.Category > 99 || r.Page < 1 || r.Page > MaxListingPage {
		return invalid("listing_request: category %d page %d", r.Category, r.Page)
	}
	return nil
}

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
	BookID    string `json:"book_id"`
	ChapterID string `json:"chapter_id"`
	Number    int    `json:"number"`
}

// Validate reports whether the request honours the contract.
func (r ChapterRequest) Validate() error {
	if !ValidBookID(r.BookID) || !ValidID(r.ChapterID) || r.Number < 1 {
		return invalid("chapter_request: book %q chapter %q number %d", r.BookID, r.ChapterID, r.Number)
	}
	return nil
}

// ChapterReply answers ChapterRequest.
type ChapterReply struct {
	Header
	Chapter *ChapterFetched `json:"chapter,omitempty"`
	Error   *RPCError       `json:"error,omitempty"`
}

// Validate reports whether the reply honours the contract.
func (ChapterReply) Validate() error { return nil }

// TOCRequest asks for one table-of-contents page of a book, for a reader who is waiting
// for it. FirstNumber is the position of the page's first chapter when the caller knows
// it (0: the fetcher derives it from the page size).
type TOCRequest struct {
	Header
	BookID      string `json:"book_id"`
	Page        int    `json:"page"`
	FirstNumber int    `json:"first_number"`
}

// Validate reports whether the request honours the contract.
func (r TOCRequest) Validate() error {
	if !ValidBookID(r.BookID) || r.Page < 1 || r.Page > MaxListingPage || r.FirstNumber < 0 {
		return invalid("toc_request: book %q page %d", r.BookID, r.Page)
	}
	return nil
}

// TOCReply answers TOCRequest; the fetcher also publishes the page as a TOCPageFetched.
type TOCReply struct {
	Header
	Page  *TOCPageFetched `json:"page,omitempty"`
	Error *RPCError       `json:"error,omitempty"`
}

// Validate reports whether the reply honours the contract.
func (TOCReply) Validate() error { return nil }
