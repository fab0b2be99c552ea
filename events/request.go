package events

import (
	"fmt"
	"time"
)

// BookRequested asks the fetchers to sync one book: its metadata and its whole table of
// contents.
type BookRequested struct {
	Header
	Site        string    `json:"site"`
	BookID      string    `json:"book_id"`
	Lane        Lane      `json:"lane"`
	Priority    int       `json:"priority"`
	RequestedAt time.Time `json:"requested_at"`
	// Force skips the recently-synced check.
	Force bool `json:"force"`
	// Reason says who asked: "category 1 page 2", "admin", "book read", ...
	Reason string `json:"reason,omitempty"`
	// Known is what the database holds of the book, when the requester read it. A fetcher
	// syncs incrementally only when this matches its own checkpoint of the last sync;
	// without it, it walks the whole table of contents.
	Known *KnownBook `json:"known,omitempty"`
}

// KnownBook is what the database holds of a book.
type KnownBook struct {
	// Chapters is the number of chapter refs stored.
	Chapters int `json:"chapters"`
	// LastChapterID is the newest chapter's id as the book home last showed it.
	LastChapterID string `json:"last_chapter_id"`
}

// NewBookRequested builds a versioned request.
func NewBookRequested(site, bookID string, lane Lane, priority int, force bool, reason string, at time.Time) BookRequested {
	return BookRequested{
		Header: Header{Version: Version}, Site: site, BookID: bookID, Lane: lane, Priority: priority,
		RequestedAt: at.UTC(), Force: force, Reason: reason,
	}
}

// Validate reports whether the request honours the contract.
func (r BookRequested) Validate() error {
	if err := validBook("book_requested", r.Site, r.BookID); err != nil {
		return err
	}
	switch {
	case !r.Lane.Valid():
		return invalid("book_requested: bad lane %q", r.Lane)
	case r.RequestedAt.IsZero():
		return invalid("book_requested: requested_at missing")
	case r.Known != nil && (r.Known.Chapters < 0 || (r.Known.LastChapterID != "" && !ValidID(r.Known.LastChapterID))):
		return invalid("book_requested: bad known state %+v", *r.Known)
	}
	return nil
}

// Subject is where the request is published.
func (r BookRequested) Subject() string { return RequestSubject(r.Lane, r.Site, r.BookID) }

func (r *BookRequested) upgrade() { r.Version, r.Site = Version, legacySite(r.Site) }

// MsgID is the request's de-duplication id: the same book, lane and force flag asked for
// within one DuplicateWindow-long period is one request, however many times or by however
// many gateways it is published. The periods are fixed, starting at whole multiples of
// DuplicateWindow since the Unix epoch (12:00:00, 12:02:00, ... UTC), and the server keeps
// an id for DuplicateWindow after storing it: a second request in the same period is
// dropped even when the first has already run, and one made a second after a period
// starts is a new request even when the first was made a second before.
func (r BookRequested) MsgID() string {
	bucket := r.RequestedAt.Unix() / int64(DuplicateWindow/time.Second)
	return fmt.Sprintf("req:%s:%s:%s:%t:%d", r.Lane, r.Site, r.BookID, r.Force, bucket)
}

// RefreshMsgID is the de-duplication id of the refresh scheduler's request for a book
// last checked at checkedAt (zero when never checked), used instead of MsgID: one id per
// refresh round rather than per period, so that a book refreshed more often than every
// DuplicateWindow is asked for every time, while two schedulers that both see the same
// check (a lease changing hands) store one request. A round that ends without a new check
// (the sync was skipped or failed) keeps its id, so it is asked for again no sooner than
// DuplicateWindow after its first request.
func RefreshMsgID(site, bookID string, checkedAt time.Time) string {
	round := "never"
	if !checkedAt.IsZero() {
		round = fmt.Sprint(checkedAt.UnixMicro())
	}
	return fmt.Sprintf("req:%s:%s:%s:checked:%s", LaneRefresh, site, bookID, round)
}

// JobID names the sync job that a stored request becomes: the book and the request's
// stream sequence, so every redelivery of one request is the same job.
func JobID(site, bookID string, seq uint64) string { return fmt.Sprintf("%s.%s-%d", site, bookID, seq) }
