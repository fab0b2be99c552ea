package events

import "strings"

// Subjects. Every subject that names a book ends with its id, which callers validate with
// ValidBookID before building it.
const (
	// SubjectRequestAll matches every book request: xsw.book.requested.<lane>.<book_id>.
	SubjectRequestAll = "xsw.book.requested.>"
	// SubjectFetchedAll matches everything fetchers publish about books.
	SubjectFetchedAll = "xsw.fetched.>"
	// SubjectJobAll matches job lifecycle events: xsw.job.<kind>.<book_id>.
	SubjectJobAll = "xsw.job.>"
	// SubjectIndexedAll matches index announcements: xsw.indexed.<book_id>.
	SubjectIndexedAll = "xsw.indexed.>"
	// SubjectCrawlAll matches crawl requests: xsw.crawl.<crawl_id>.
	SubjectCrawlAll = "xsw.crawl.>"
	// SubjectDeadAll matches dead letters: xsw.dead.<book_id>.
	SubjectDeadAll = "xsw.dead.>"
	// SubjectCommandAll matches commands to the indexer: xsw.cmd.<verb>.<book_id>. They
	// travel in StreamEvents, in order with what the fetchers publish.
	SubjectCommandAll = "xsw.cmd.>"
	// SubjectCacheAll matches cache invalidations between gateway replicas. These are core
	// NATS subjects, in no stream: a replica that is not connected has nothing to drop
	// (it drops everything when it reconnects).
	SubjectCacheAll = "xsw.cache.>"
	// SubjectCacheClear tells every gateway replica to drop its whole memory cache.
	SubjectCacheClear = "xsw.cache.clear"

	// SubjectFetchedCategories carries the categories read from the site's home page.
	SubjectFetchedCategories = "xsw.fetched.categories"

	// Request/reply subjects served by the fetchers' queue group QueueFetchers.
	SubjectRPCCategories = "xsw.rpc.categories"
	SubjectRPCListing    = "xsw.rpc.listing"
	SubjectRPCChapter    = "xsw.rpc.chapter"
	SubjectRPCTOC        = "xsw.rpc.toc"

	// QueueFetchers is the queue group of the fetchers' request/reply handlers.
	QueueFetchers = "fetchers"
)

// RequestSubject is the subject of a request for bookID in lane l.
func RequestSubject(l Lane, bookID string) string {
	return "xsw.book.requested." + string(l) + "." + bookID
}

// RequestSubjectLane matches every request of lane l.
func RequestSubjectLane(l Lane) string { return "xsw.book.requested." + string(l) + ".>" }

// Subjects of what fetchers publish for one book.
func SubjectFetchedBook(bookID string) string    { return "xsw.fetched.book." + bookID }
func SubjectFetchedTOC(bookID string) string     { return "xsw.fetched.toc." + bookID }
func SubjectFetchedChapter(bookID string) string { return "xsw.fetched.chapter." + bookID }

// SubjectJob is the subject of a job lifecycle event of kind k for bookID.
func SubjectJob(k JobKind, bookID string) string { return "xsw.job." + string(k) + "." + bookID }

// SubjectIndexed is the subject of the index announcement of bookID.
func SubjectIndexed(bookID string) string { return "xsw.indexed." + bookID }

// SubjectDead is the subject of the dead letter of bookID.
func SubjectDead(bookID string) string { return "xsw.dead." + bookID }

// SubjectPurgeBook is the subject of a request to forget the stored chapter texts of
// bookID.
func SubjectPurgeBook(bookID string) string { return "xsw.cmd.purge." + bookID }

// SubjectCacheInvalidate tells every gateway replica to drop what it cached about bookID.
func SubjectCacheInvalidate(bookID string) string { return "xsw.cache.invalidate." + bookID }

// LastToken returns the last dot-separated token of a subject: the book id of every
// per-book subject.
func LastToken(subject string) string {
	if i := strings.LastIndexByte(subject, '.'); i >= 0 {
		return subject[i+1:]
	}
	return subject
}
