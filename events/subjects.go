package events

// Subjects. Every subject that names a book ends with "<site>.<book_id>" (see Key), which
// callers validate with ValidSiteID and ValidBookID before building it.
const (
	// SubjectRequestAll matches every book request: xsw.book.requested.<lane>.<site>.<book_id>.
	SubjectRequestAll = "xsw.book.requested.>"
	// SubjectFetchedAll matches everything fetchers publish about books.
	SubjectFetchedAll = "xsw.fetched.>"
	// SubjectJobAll matches job lifecycle events: xsw.job.<kind>.<site>.<book_id>.
	SubjectJobAll = "xsw.job.>"
	// SubjectIndexedAll matches index announcements: xsw.indexed.<site>.<book_id>.
	SubjectIndexedAll = "xsw.indexed.>"
	// SubjectCrawlAll matches crawl requests: xsw.crawl.<crawl_id>.
	SubjectCrawlAll = "xsw.crawl.>"
	// SubjectDeadAll matches dead letters: xsw.dead.<site>.<book_id>.
	SubjectDeadAll = "xsw.dead.>"
	// SubjectCommandAll matches commands to the indexer: xsw.cmd.<verb>.<site>.<book_id>. They
	// travel in StreamEvents, in order with what the fetchers publish.
	SubjectCommandAll = "xsw.cmd.>"
	// SubjectCacheAll matches cache invalidations between gateway replicas. These are core
	// NATS subjects, in no stream: a replica that is not connected has nothing to drop
	// (it drops everything when it reconnects).
	SubjectCacheAll = "xsw.cache.>"
	// SubjectCacheClear tells every gateway replica to drop its whole memory cache.
	SubjectCacheClear = "xsw.cache.clear"

	// Request/reply calls served by the fetchers' queue group QueueFetchers, each on
	// RPCSubject(call, site).
	SubjectRPCCategories = "xsw.rpc.categories"
	SubjectRPCListing    = "xsw.rpc.listing"
	SubjectRPCChapter    = "xsw.rpc.chapter"
	SubjectRPCRefs       = "xsw.rpc.refs"

	// QueueFetchers is the queue group of the fetchers' request/reply handlers.
	QueueFetchers = "fetchers"
)

// RPCSubject is the subject of a request/reply call (one of the SubjectRPC* names) about
// a site: xsw.rpc.<call>.<site>. Only the fetchers that serve the site subscribe to it,
// so a call never reaches one that does not (while a change of SOURCES rolls out, say).
func RPCSubject(call, site string) string { return call + "." + site }

// Tokens before the book in each per-book subject family (see BookOfSubject).
const (
	RequestPrefixTokens = 4 // xsw.book.requested.<lane>
	FetchedPrefixTokens = 3 // xsw.fetched.<book|toc|chapter>
	JobPrefixTokens     = 3 // xsw.job.<kind>
	IndexedPrefixTokens = 2 // xsw.indexed
	DeadPrefixTokens    = 2 // xsw.dead
	PurgePrefixTokens   = 3 // xsw.cmd.purge
	AcceptPrefixTokens  = 3 // xsw.cmd.accept_shrink
	CachePrefixTokens   = 3 // xsw.cache.invalidate
)

// RequestSubject is the subject of a request for a book in lane l.
func RequestSubject(l Lane, site, bookID string) string {
	return "xsw.book.requested." + string(l) + "." + Key(site, bookID)
}

// RequestSubjectLegacy is the subject a build before site-qualified books published a
// request for m.xsw.tw's book on: xsw.book.requested.<lane>.<book_id>. Requests may
// still wait there after an upgrade; nothing publishes on it any more.
func RequestSubjectLegacy(l Lane, bookID string) string {
	return "xsw.book.requested." + string(l) + "." + bookID
}

// SubjectDeadLegacy is the subject a build before site-qualified books kept m.xsw.tw's
// dead letters on: xsw.dead.<book_id>. Letters may still wait there after an upgrade.
func SubjectDeadLegacy(bookID string) string { return "xsw.dead." + bookID }

// RequestSubjectLane matches every request of lane l.
func RequestSubjectLane(l Lane) string { return "xsw.book.requested." + string(l) + ".>" }

// RequestSubjectLaneSite matches the requests of lane l for the books of one site.
func RequestSubjectLaneSite(l Lane, site string) string {
	return "xsw.book.requested." + string(l) + "." + site + ".*"
}

// Subjects of what fetchers publish for one book.
func SubjectFetchedBook(site, bookID string) string { return "xsw.fetched.book." + Key(site, bookID) }
func SubjectFetchedTOC(site, bookID string) string  { return "xsw.fetched.toc." + Key(site, bookID) }
func SubjectFetchedChapter(site, bookID string) string {
	return "xsw.fetched.chapter." + Key(site, bookID)
}

// SubjectFetchedCategories carries the categories read from a site's home page.
func SubjectFetchedCategories(site string) string { return "xsw.fetched.categories." + site }

// SubjectJob is the subject of a job lifecycle event of kind k for a book.
func SubjectJob(k JobKind, site, bookID string) string {
	return "xsw.job." + string(k) + "." + Key(site, bookID)
}

// SubjectIndexed is the subject of the index announcement of a book.
func SubjectIndexed(site, bookID string) string { return "xsw.indexed." + Key(site, bookID) }

// SubjectDead is the subject of the dead letter of a book.
func SubjectDead(site, bookID string) string { return "xsw.dead." + Key(site, bookID) }

// SubjectPurgeBook is the subject of a request to forget the stored chapter texts of a
// book.
func SubjectPurgeBook(site, bookID string) string { return "xsw.cmd.purge." + Key(site, bookID) }

// SubjectAcceptShrink is the subject of an operator's acceptance that a book's site
// removed chapters (BookShrinkAccepted).
func SubjectAcceptShrink(site, bookID string) string {
	return "xsw.cmd.accept_shrink." + Key(site, bookID)
}

// SubjectCacheInvalidate tells every gateway replica to drop what it cached about a book.
func SubjectCacheInvalidate(site, bookID string) string {
	return "xsw.cache.invalidate." + Key(site, bookID)
}
