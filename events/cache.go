package events

import "time"

// CacheInvalidated tells every gateway replica to drop cached copies: those of one book
// (on SubjectCacheInvalidate), or everything (Site and BookID empty, on
// SubjectCacheClear). It is published on core NATS, outside any stream: only the
// replicas connected now need it.
type CacheInvalidated struct {
	Header
	// Site and BookID name the book whose entries to drop; both empty mean every entry.
	Site   string `json:"site,omitempty"`
	BookID string `json:"book_id,omitempty"`
	// Origin names the replica that published it (informative).
	Origin string    `json:"origin,omitempty"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// NewCacheInvalidated builds a versioned invalidation; site and bookID "" mean everything.
func NewCacheInvalidated(site, bookID, origin, reason string, at time.Time) CacheInvalidated {
	return CacheInvalidated{Header: Header{Version: Version}, Site: site, BookID: bookID, Origin: origin, Reason: reason, At: at.UTC()}
}

// Validate reports whether the invalidation honours the contract.
func (c CacheInvalidated) Validate() error {
	if c.Site == "" && c.BookID == "" {
		return nil
	}
	return validBook("cache_invalidated", c.Site, c.BookID)
}

func (c *CacheInvalidated) upgrade() {
	c.Version = Version
	if c.BookID != "" {
		c.Site = legacySite(c.Site)
	}
}

// Subject is where the invalidation is published.
func (c CacheInvalidated) Subject() string {
	if c.BookID == "" {
		return SubjectCacheClear
	}
	return SubjectCacheInvalidate(c.Site, c.BookID)
}
