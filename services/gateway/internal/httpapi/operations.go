package httpapi

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// Bounds of the admin listings.
const (
	maxDeadListed     = 1000
	defaultDeadListed = 100
)

type deadLetterJSON struct {
	Site     string  `json:"site"`
	BookID   string  `json:"book_id"`
	Lane     *string `json:"lane"`
	Priority *int    `json:"priority"`
	Error    string  `json:"error"`
	Attempts *int    `json:"attempts"`
	DiedAt   *string `json:"died_at"`
	JobID    *string `json:"job_id"`
}

func newDeadLetterJSON(dl jobs.DeadLetter) deadLetterJSON {
	out := deadLetterJSON{Site: dl.Site, BookID: dl.BookID, Error: dl.Error}
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
	out := make([]deadLetterJSON, len(letters))
	for i, dl := range letters {
		out[i] = newDeadLetterJSON(dl)
	}
	return c.JSON(fiber.Map{"total": total, "dead_letters": out})
}

type replayJSON struct {
	Status   jobs.Status `json:"status"`
	Site     string      `json:"site"`
	BookID   string      `json:"book_id"`
	Lane     events.Lane `json:"lane"`
	Priority int         `json:"priority"`
	Force    bool        `json:"force"`
	JobID    *string     `json:"job_id"` // the job that died
}

func newReplayJSON(r jobs.Replayed) replayJSON {
	out := replayJSON{Status: r.Status, Site: r.Site, BookID: r.BookID, Lane: r.Lane, Priority: r.Priority, Force: true}
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
	return c.JSON(newReplayJSON(r))
}

// replayAll answers POST /admin/jobs/dead/replay_all. Books are named in book_ids as in
// the job statistics (see bookLabel); a letter whose request was refused stays, counted
// as "refused".
func (s *Server) replayAll(c *fiber.Ctx) error {
	done, left, err := s.jobs.ReplayAll(c.UserContext())
	if err != nil && len(done) == 0 {
		return busError(err)
	}
	statuses := map[jobs.Status]int{}
	books := make([]string, len(done))
	for i, r := range done {
		statuses[r.Status]++
		books[i] = s.bookLabel(r.Site, r.BookID)
	}
	out := fiber.Map{"replayed": len(done), "statuses": statuses, "book_ids": books, "remaining": left}
	if err != nil {
		// Some were replayed before the bus failed: say so, and how far it got.
		s.log.Warn("replay of dead letters cut short", "replayed", len(done), "err", err)
		out["error"] = "cut short: message bus unavailable"
		out["remaining"] = nil
	}
	return c.JSON(out)
}

// purgeLane answers POST /admin/jobs/purge?lane=L: every request waiting in the lane is
// dropped (jobs already running finish).
func (s *Server) purgeLane(c *fiber.Ctx) error {
	lane := events.Lane(c.Query("lane"))
	if !lane.Valid() {
		names := make([]string, len(events.Lanes))
		for i, l := range events.Lanes {
			names[i] = string(l)
		}
		return badRequest("lane must be one of %s, got %q", strings.Join(names, ", "), c.Query("lane"))
	}
	n, err := s.jobs.PurgeLane(c.UserContext(), lane)
	if err != nil {
		return busError(err)
	}
	return c.JSON(fiber.Map{"status": "purged", "lane": lane, "dropped": n})
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
	return c.JSON(fiber.Map{"status": "cleared", "book_entries": books, "listing_entries": listings, "replica": s.cfg.Replica})
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
	return c.JSON(fiber.Map{"status": "invalidated", "site": b.site, "book_id": b.id, "entries": n, "replica": s.cfg.Replica})
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
			return accepted(c, fiber.Map{"status": "queued", "site": b.site, "book_id": b.id, "texts_stored": before})
		case <-msgs:
			left, err := s.cat.Texts(ctx, b.site, b.id, at)
			if err != nil {
				return databaseError(err)
			}
			if left == 0 {
				return c.JSON(fiber.Map{"status": "purged", "site": b.site, "book_id": b.id, "texts_cleared": before})
			}
		}
	}
}
