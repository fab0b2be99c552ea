package events

import (
	"fmt"
	"time"
)

// BookRequested asks the fetchers to sync one book: its metadata and its whole table of
// contents.
type BookRequested struct {
	Header
	BookID      string    `json:"book_id"`
	Lane        Lane      `json:"lane"`
	Priority    int       `json:"priority"`
	RequestedAt time.Time `json:"requested_at"`
	// Force skips the recently-synced check.
	Force bool `json:"force"`
	// Reason says who asked: "category 1 page 2", "admin", "book read", ...
	Reason string `json:"reason,omitempty"`
}

// NewBookRequested builds a versioned request.
func NewBookRequested(bookID string, lane Lane, priority int, force bool, reason string, at time.Time) BookRequested {
	return BookRequested{
		Header: Header{Version: Version}, BookID: bookID, Lane: lane, Priority: priority,
		RequestedAt: at.UTC(), Force: force, Reason: reason,
	}
}

// Validate reports whether the request honours the contract.
func (r BookRequested) Validate() error {
	switch {
	case !ValidBookID(r.BookID):
		return invalid("book_requested: bad book_id %q", r.BookID)
	case !r.Lane.Valid():
		return invalid("book_requested: bad lane %q", r.Lane)
	case r.RequestedAt.IsZero():
		return invalid("book_requested: requested_at missing")
	}
	return nil
}

// Subject is where the request is published.
func (r BookRequested) Subject() string { return RequestSubject(r.Lane, r.BookID) }

// MsgID is the request's de-duplication id: the same book, lane and force flag asked for
// within one DuplicateWindow is one request, however many times or by however many
// gateways it is published.
func (r BookRequested) MsgID() string {
	bucket := r.RequestedAt.Unix() / int64(DuplicateWindow/time.Second)
	return fmt.Sprintf("req:%s:%s:%t:%d", r.Lane, r.BookID, r.Force, bucket)
}

// JobID names the sync job that a stored request becomes: the book and the request's
// stream sequence, so every redelivery of one request is the same job.
func JobID(bookID string, seq uint64) string { return fmt.Sprintf("%s-%d", bookID, seq) }
