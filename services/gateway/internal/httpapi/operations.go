package httpapi

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// Bounds of the admin listings.
const (
	maxDeadListed     = 1000
	defaultDeadListed = 100
)

func newDeadLetter(dl jobs.DeadLetter) api.DeadLetter {
	out := api.DeadLetter{Site: dl.Site, BookID: dl.BookID, Error: dl.Error}
	if dl.Unreadable {
		return out
	}
	lane, prio, attempts, job := string(dl.Lane), dl.Priority, dl.Attempts, dl.JobID
	out.Lane, out.Priority, out.Attempts, out.JobID = &lane, &prio, &attempts, &job
	out.DiedAt = rfc3339(nonZero(dl.DiedAt))
	return out
}

// deadLetters answers GET /admin/jobs/dead?limit=N: the newest dead letter of each book,
// newest first.
func (s *Server) deadLetters(c *fiber.Ctx) error {
	limit, err := intQuery(c, "limit", 1, maxDeadListed, defaultDeadListed)
	if err != nil {
		return err
	}
	letters, total, err := s.jobs.DeadLetters(c.UserContext(), limit)
	if err != nil {
		return busError(err)
	}
	out := api.DeadLetters{Total: total, DeadLetters: make([]api.DeadLetter, len(letters))}
	for i, dl := range letters {
		out.DeadLetters[i] = newDeadLetter(dl)
	}
	return c.JSON(out)
}

func newReplay(r jobs.Replayed) api.Replay {
	out := api.Replay{Status: string(r.Status), Site: r.Site, BookID: r.BookID, Lane: r.Lane, Priority: r.Priority, Force: true}
	if !r.Unreadable {
		out.JobID = &r.JobID
	}
	return out
}

// replay answers POST /admin/jobs/dead/{book_id}/replay?site=S: the book (the default
// site's unless site names another) is requested again as its dead request was
// (forced), and the dead letter deleted. A book whose id the site would not write keeps
// its letter (400), as does any book of a site no fetcher has described yet (503).
func (s *Server) replay(c *fiber.Ctx) error {
	b, err := s.bookParam(c, s.querySite)
	if err != nil {
		return err
	}
	r, err := s.jobs.Replay(c.UserContext(), b.site, b.id)
	if errors.Is(err, jobs.ErrNoDeadLetter) {
		return notFound("book %s of site %s has no dead letter", b.id, b.site)
	}
	if err != nil {
		return requestError(err, b)
	}
	return c.JSON(newReplay(r))
}

// acceptShrink answers POST /admin/books/{book_id}/accept-shrink?site=S: an operator
// accepts that the book's site really removed chapters, which the indexer otherwise
// refuses as a shrink ("shrink refused: ..."), and which a replay can therefore never
// get past. The acceptance goes to the indexer (events.BookShrinkAccepted), then the
// book is requested in the manual lane, forced, and its dead letter, if any, deleted;
// the first sync of the book completed after the acceptance applies whatever the site
// lists (an acceptance no sync used lapses after store's acceptance lifetime, an hour).
// The book is the default site's unless site names another; one that is not stored has
// nothing to accept (404), and nothing is published for a book that could not be
// requested (400, 503), nor while the site refuses us (503): the sync the acceptance
// waits for could not run.
func (s *Server) acceptShrink(c *fiber.Ctx) error {
	b, err := s.bookParam(c, s.querySite)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := s.cat.Book(ctx, b.site, b.id); errors.Is(err, catalog.ErrNotFound) {
		return notFound("book %s of site %s is not stored: there is no shrink to accept", b.id, b.site)
	} else if err != nil {
		return databaseError(err)
	}
	if err := s.fetchable(ctx, b); err != nil {
		return err
	}
	if st, refused := s.sites.Refused(b.site); refused {
		return refusedError(st, false)
	}
	at := time.Now().UTC()
	r, err := s.jobs.AcceptShrink(ctx, b.site, b.id, "admin", at)
	if err != nil {
		return requestError(err, b)
	}
	out := api.ShrinkAccepted{Status: "accepted", Site: b.site, BookID: b.id, AcceptedAt: at, Requested: string(r.Status),
		Lane: r.Lane, Priority: r.Priority, Force: true, DeadLetterDeleted: r.Letter != nil}
	if r.Letter != nil && !r.Letter.Unreadable {
		out.JobID = &r.Letter.JobID
	}
	return c.JSON(out)
}

// replayAll answers POST /admin/jobs/dead/replay_all. Books are named in book_ids as in
// the job statistics (see bookLabel); a letter whose request was refused stays, counted
// as "refused".
func (s *Server) replayAll(c *fiber.Ctx) error {
	done, left, err := s.jobs.ReplayAll(c.UserContext())
	if err != nil && len(done) == 0 {
		return busError(err)
	}
	out := api.ReplayAll{Replayed: len(done), Statuses: map[string]int{}, BookIDs: make([]string, len(done)), Remaining: &left}
	for i, r := range done {
		out.Statuses[string(r.Status)]++
		out.BookIDs[i] = s.bookLabel(r.Site, r.BookID)
	}
	if err != nil {
		// Some were replayed before the bus failed: say so, and how far it got.
		s.log.Warn("replay of dead letters cut short", "replayed", len(done), "err", err)
		out.Error = "cut short: message bus unavailable"
		out.Remaining = nil
	}
	return c.JSON(out)
}

// purgeLane answers POST /admin/jobs/purge?lane=L: every request waiting in the lane is
// dropped (jobs already running finish).
func (s *Server) purgeLane(c *fiber.Ctx) error {
	lane, err := laneQuery(c)
	if err != nil {
		return err
	}
	n, err := s.jobs.PurgeLane(c.UserContext(), lane)
	if err != nil {
		return busError(err)
	}
	return c.JSON(api.LanePurged{Status: "purged", Lane: lane, Dropped: n})
}

// publishInvalidation tells every replica (this one ignores its own) to drop the entries
// of book b, or every entry when b is zero.
func (s *Server) publishInvalidation(b bookRef, reason string) error {
	ev := events.NewCacheInvalidated(b.site, b.id, s.cfg.Replica, reason, time.Now())
	data, err := events.Encode(&ev)
	if err != nil {
		return err
	}
	if err := s.nc.Publish(ev.Subject(), data); err != nil {
		return err
	}
	return s.nc.FlushTimeout(checkTimeout)
}

// clearCache answers POST /admin/cache/clear: this replica's memory caches are emptied at
// once, every other replica's as soon as it hears of it.
func (s *Server) clearCache(c *fiber.Ctx) error {
	books, listings := s.dropAll("admin")
	if err := s.publishInvalidation(bookRef{}, "admin"); err != nil {
		return unavailable("message bus (this replica's cache is cleared, the others were not told)", err)
	}
	return c.JSON(api.CacheCleared{Status: "cleared", BookEntries: books, ListingEntries: listings, Replica: s.cfg.Replica})
}

// invalidateBook answers POST /admin/cache/invalidate/{book_id}?site=S: every replica
// drops what it cached about the book (the default site's unless site names another).
func (s *Server) invalidateBook(c *fiber.Ctx) error {
	b, err := s.bookParam(c, s.querySite)
	if err != nil {
		return err
	}
	n := s.books.Drop(b.key())
	if err := s.publishInvalidation(b, "admin"); err != nil {
		return unavailable("message bus (this replica's copies are dropped, the others were not told)", err)
	}
	s.log.Info("book invalidated", "site", b.site, "book_id", b.id, "entries", n)
	return c.JSON(api.CacheInvalidated{Status: "invalidated", Site: b.site, BookID: b.id, Entries: n, Replica: s.cfg.Replica})
}

// purgeTexts answers DELETE /admin/cache/chapters/{book_id}?site=S: the indexer forgets
// the book's stored chapter texts (they are fetched again when next read) and announces
// the book, which drops every replica's cached copies. The book is the default site's
// unless site names another. The call waits up to InteractiveWait for that: 200 when
// done, else 202.
func (s *Server) purgeTexts(c *fiber.Ctx) error {
	b, err := s.bookParam(c, s.querySite)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := s.cat.Book(ctx, b.site, b.id); errors.Is(err, catalog.ErrNotFound) {
		return notFound("book %s of site %s is not stored", b.id, b.site)
	} else if err != nil {
		return databaseError(err)
	}
	// Texts fetched up to now go (fetchers stamp them with their clocks, which are
	// expected to agree with this one within a second or so).
	at := time.Now()
	before, err := s.cat.Texts(ctx, b.site, b.id, at)
	if err != nil {
		return databaseError(err)
	}
	msgs := make(chan *nats.Msg, 16)
	sub, err := s.nc.ChanSubscribe(events.SubjectIndexed(b.site, b.id), msgs)
	if err != nil {
		return busError(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.nc.FlushWithContext(ctx); err != nil {
		return busError(err)
	}
	if err := s.jobs.PurgeTexts(ctx, b.site, b.id, "admin", at); err != nil {
		return busError(err)
	}
	wait, cancel := context.WithTimeout(ctx, s.cfg.InteractiveWait)
	defer cancel()
	for {
		select {
		case <-wait.Done():
			return accepted(c, api.PurgeQueued{Status: "queued", Site: b.site, BookID: b.id, TextsStored: before})
		case <-msgs:
			left, err := s.cat.Texts(ctx, b.site, b.id, at)
			if err != nil {
				return databaseError(err)
			}
			if left == 0 {
				return c.JSON(api.TextsPurged{Status: "purged", Site: b.site, BookID: b.id, TextsCleared: before})
			}
		}
	}
}
