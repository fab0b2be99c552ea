package events

import (
	"strconv"
	"time"
)

// BookPurgeRequested asks the indexer to forget the stored chapter texts of a book, so
// that each chapter is fetched again when next read. The indexer clears the texts fetched
// up to RequestedAt (a text fetched after the request is newer than what the request
// meant to drop, so a redelivered purge changes nothing), then announces BookIndexed,
// which makes every gateway drop its cached copies. It travels in StreamEvents on
// SubjectPurgeBook, in order with the fetched events.
type BookPurgeRequested struct {
	Header
	Site        string    `json:"site"`
	BookID      string    `json:"book_id"`
	RequestedAt time.Time `json:"requested_at"`
	// Reason says who asked ("admin").
	Reason string `json:"reason,omitempty"`
}

// NewBookPurgeRequested builds a versioned purge request.
func NewBookPurgeRequested(site, bookID, reason string, at time.Time) BookPurgeRequested {
	return BookPurgeRequested{Header: Header{Version: Version}, Site: site, BookID: bookID, RequestedAt: at.UTC(), Reason: reason}
}

// Validate reports whether the request honours the contract.
func (r BookPurgeRequested) Validate() error {
	if err := validBook("book_purge_requested", r.Site, r.BookID); err != nil {
		return err
	}
	if r.RequestedAt.IsZero() {
		return invalid("book_purge_requested: requested_at missing")
	}
	return nil
}

func (r *BookPurgeRequested) upgrade() { r.Version, r.Site = Version, legacySite(r.Site) }

// Subject is where the request is published.
func (r BookPurgeRequested) Subject() string { return SubjectPurgeBook(r.Site, r.BookID) }

// MsgID de-duplicates a retried publish of the same request.
func (r BookPurgeRequested) MsgID() string {
	return "purge:" + r.Site + ":" + r.BookID + ":" + strconv.FormatInt(r.RequestedAt.UnixNano(), 10)
}

// BookShrinkAccepted tells the indexer that an operator accepts that a book's site now
// lists far fewer of its chapters than are stored (it removed them), which the indexer
// otherwise refuses as the site failing. The first sync of the book completed after it
// applies whatever it lists: the chapters past its end are deleted, and its count
// becomes the book's new high-water mark; the acceptance is then used up. It travels in
// StreamEvents on SubjectAcceptShrink, in order with the fetched events, so that the
// forced sync the gateway requests right after it is judged by it.
type BookShrinkAccepted struct {
	Header
	Site       string    `json:"site"`
	BookID     string    `json:"book_id"`
	AcceptedAt time.Time `json:"accepted_at"`
	// Reason says who accepted ("admin").
	Reason string `json:"reason,omitempty"`
}

// NewBookShrinkAccepted builds a versioned acceptance.
func NewBookShrinkAccepted(site, bookID, reason string, at time.Time) BookShrinkAccepted {
	return BookShrinkAccepted{Header: Header{Version: Version}, Site: site, BookID: bookID, AcceptedAt: at.UTC(), Reason: reason}
}

// Validate reports whether the acceptance honours the contract.
func (r BookShrinkAccepted) Validate() error {
	if err := validBook("book_shrink_accepted", r.Site, r.BookID); err != nil {
		return err
	}
	if r.AcceptedAt.IsZero() {
		return invalid("book_shrink_accepted: accepted_at missing")
	}
	return nil
}

func (r *BookShrinkAccepted) upgrade() { r.Version, r.Site = Version, legacySite(r.Site) }

// Subject is where the acceptance is published.
func (r BookShrinkAccepted) Subject() string { return SubjectAcceptShrink(r.Site, r.BookID) }

// MsgID de-duplicates a retried publish of the same acceptance.
func (r BookShrinkAccepted) MsgID() string {
	return "accept-shrink:" + r.Site + ":" + r.BookID + ":" + strconv.FormatInt(r.AcceptedAt.UnixNano(), 10)
}
