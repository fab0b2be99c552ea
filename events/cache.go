package events

import "time"

// CacheInvalidated tells every gateway replica to drop cached copies: those of one book
// (on SubjectCacheInvalidate), or everything (BookID empty, on SubjectCacheClear). It is
// published on core NATS, outside any stream: only the replicas connected now need it.
type CacheInvalidated struct {
	Header
	// BookID is the book whose entries to drop; empty means every entry.
	BookID string `json:"book_id,omitempty"`
	// Origin names the replica that published it (informative).
	Origin string    `json:"origin,omitempty"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// NewCacheInvalidated builds a versioned invalidation; bookID "" means everything.
func NewCacheInvalidated(bookID, origin, reason string, at time.Time) CacheInvalidated {
	return CacheInvalidated{Header: Header{Version: Version}, BookID: bookID, Origin: origin, Reason: reason, At: at.UTC()}
}

// Validate reports whether the invalidation honours the contract.
func (c CacheInvalidated) Validate() error {
	if c.BookID != "" && !ValidBookID(c.BookID) {
		return invalid("cache_invalidated: bad book_id %q", c.BookID)
	}
	return nil
}

// Subject is where the invalidation is published.
func (c CacheInvalidated) Subject() string {
	if c.BookID == "" {
		return SubjectCacheClear
	}
	return SubjectCacheInvalidate(c.BookID)
}
