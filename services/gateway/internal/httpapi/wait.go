package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/singleflight"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// need is what a reader waits for about a book.
type need struct {
	kind string // "book", "chapters" or "chapter"
	num  int    // the chapter, for "chapter"
}

var (
	needBook     = need{kind: "book"}
	needChapters = need{kind: "chapters"}
)

func needChapter(num int) need { return need{kind: "chapter", num: num} }

func (n need) key(b bookRef) string { return b.key() + ":" + n.kind + ":" + strconv.Itoa(n.num) }

// metBy reports whether an index announcement brings what is needed.
func (n need) metBy(ev events.BookIndexed) bool {
	switch n.kind {
	case "book":
		return ev.HasMeta
	case "chapters":
		return ev.Chapters > 0 || ev.Complete
	}
	return ev.Chapters >= n.num || ev.Complete
}

// stored reports whether Postgres already holds what is needed (or, for a chapter, knows
// that the book's whole table of contents ends before it, so waiting would bring nothing).
func (n need) stored(ctx context.Context, cat *catalog.Catalog, b bookRef) (bool, error) {
	var err error
	switch n.kind {
	case "book":
		var bk catalog.Book
		if bk, err = cat.Book(ctx, b.site, b.id); err == nil {
			return bk.HasMeta, nil
		}
	case "chapters":
		var p catalog.ChapterPage
		if p, err = cat.Chapters(ctx, b.site, b.id, 0, 1); err == nil {
			return p.Total > 0 || p.SyncStatus == catalog.SyncComplete, nil
		}
	default:
		if _, err = cat.Chapter(ctx, b.site, b.id, n.num); err == nil {
			return true, nil
		}
		var bk catalog.Book
		if errors.Is(err, catalog.ErrNotFound) {
			if bk, err = cat.Book(ctx, b.site, b.id); err == nil {
				total, complete := bk.KnownLength()
				return complete && total < n.num, nil
			}
		}
	}
	if errors.Is(err, catalog.ErrNotFound) {
		return false, nil
	}
	return false, databaseError(err)
}

// await gets the book synced for a reader who is waiting: unless the book's last job
// failed for good (404) or nothing may be queued for it (see fetchable), it subscribes
// to the book's index announcements and failures, then asks for an interactive sync
// (which also upgrades a request waiting in a lower lane), and waits up to
// InteractiveWait for an announcement that brings what is needed. Concurrent callers for
// the same book and need share one wait. It returns nil when the caller should read
// Postgres again, errPending when the wait ran out, or the error to answer with.
func (s *Server) await(ctx context.Context, b bookRef, n need) error {
	if err := s.fetchable(ctx, b); err != nil {
		return err
	}
	f, err := s.cat.PermanentFailure(ctx, b.site, b.id)
	switch {
	case err == nil:
		return syncFailure(b, true, f.Error)
	case !errors.Is(err, catalog.ErrNotFound):
		return databaseError(err)
	}
	if st, refused := s.sites.Refused(b.site); refused {
		// Nothing will come within the wait: say so at once, and queue the book so that
		// it is fetched when the site lets us in again. Its pages will cost the site then,
		// so the queueing is charged to the client's share like a wait's; a client whose
		// share is spent hears of the refusal, and nothing is queued for it.
		refund, err := s.takeSource(ctx, events.InteractivePagesPerBook)
		if err != nil {
			return refusedError(st, false)
		}
		status, err := s.jobs.Request(ctx, jobs.Request{
			Site: b.site, BookID: b.id, Lane: events.LaneInteractive, Priority: jobs.InteractivePriority, Reason: "reader asked while the site refuses us",
		})
		if err != nil || status != jobs.Queued {
			refund()
		}
		return refusedError(st, err == nil)
	}
	// The read is charged to the client's share of the site as it joins the wait, by the
	// pages a sync fetches at reader priority; the charge stands only for the reader whose
	// wait queued a request: concurrent readers cannot all slip past the share before any
	// is charged, and the others' charges are given back.
	_, err = s.shared(ctx, &s.waits, n.key(b), events.InteractivePagesPerBook, func() (any, bool, error) {
		// The shared wait is bounded by its own timeout, not by any one caller's context.
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.InteractiveWait)
		defer cancel()
		queued, err := s.waitIndexed(ctx, b, n)
		return nil, queued, err
	})
	return err
}

// waitIndexed is await's shared wait. queued reports whether it queued a request: a book
// queued, being synced or stored already costs the site nothing more.
func (s *Server) waitIndexed(ctx context.Context, b bookRef, n need) (queued bool, err error) {
	msgs := make(chan *nats.Msg, 64)
	for _, subject := range []string{events.SubjectIndexed(b.site, b.id), events.SubjectJob(events.JobFailed, b.site, b.id)} {
		sub, err := s.nc.ChanSubscribe(subject, msgs)
		if err != nil {
			return false, busError(fmt.Errorf("subscribe %s: %w", subject, err))
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	if err := s.nc.FlushWithContext(ctx); err != nil {
		return false, busError(err)
	}
	// The indexer may have written it between the caller's read and the subscription.
	if ok, err := n.stored(ctx, s.cat, b); err != nil || ok {
		return false, err
	}
	status, err := s.jobs.Request(ctx, jobs.Request{
		Site: b.site, BookID: b.id, Lane: events.LaneInteractive, Priority: jobs.InteractivePriority, Reason: "reader waiting for " + n.kind,
	})
	if err != nil {
		if ctx.Err() != nil {
			return false, errPending
		}
		return false, requestError(err, b)
	}
	queued = status == jobs.Queued
	s.log.Debug("waiting for book", "site", b.site, "book_id", b.id, "need", n.kind, "request", status)
	for {
		select {
		case <-ctx.Done():
			return queued, errPending
		case m := <-msgs:
			if strings.HasPrefix(m.Subject, "xsw.job.") {
				var ev events.JobEvent
				if events.Decode(m.Data, &ev) != nil {
					continue
				}
				return queued, syncFailure(b, ev.Permanent, ev.Error)
			}
			var ev events.BookIndexed
			if events.Decode(m.Data, &ev) == nil && n.metBy(ev) {
				return queued, nil
			}
		}
	}
}

// shared runs fn once for all concurrent callers of key in g, on the first caller's
// goroutine, and gives every caller its answer. fn is charged to no client: each caller
// is charged pages of its client's share of the sites (takeSource) before it joins, so
// that a client whose share is spent is refused at once and never fails another caller
// with its 429. A caller's charge is given back unless it ran fn and fn reports that its
// work cost the site: a caller that shared another's call, or whose call found its answer
// stored or was turned away before reaching the site, cost the site nothing.
func (s *Server) shared(ctx context.Context, g *singleflight.Group, key string, pages int, fn func() (v any, cost bool, err error)) (any, error) {
	refund, err := s.takeSource(ctx, pages)
	if err != nil {
		return nil, err
	}
	cost := false // set by this caller's fn only, which runs on this goroutine
	v, err, _ := g.Do(key, func() (any, error) {
		v, c, err := fn()
		cost = c
		return v, err
	})
	if !cost {
		refund()
	}
	return v, err
}

// call makes a request/reply call (a SubjectRPC* name) about site: it sends req to the
// fetchers that serve the site and decodes their reply into reply. It returns errPending
// when no reply came within timeout and errNoFetcher when no fetcher serving the site
// listens. It charges no client (see shared); asked reports whether the request reached a
// fetcher, which may then have asked the site.
func (s *Server) call(ctx context.Context, call, site string, timeout time.Duration, req, reply events.Payload) (asked bool, err error) {
	if st, refused := s.sites.Refused(site); refused {
		return false, refusedError(st, false)
	}
	subject := events.RPCSubject(call, site)
	data, err := events.Encode(req)
	if err != nil {
		return false, fmt.Errorf("encode %s request: %w", subject, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := nats.NewMsg(subject)
	out.Data = data
	if deadline, ok := ctx.Deadline(); ok {
		// The fetcher drops the call once we have stopped waiting for it.
		out.Header.Set(events.HeaderDeadline, deadline.UTC().Format(time.RFC3339Nano))
	}
	msg, err := s.nc.RequestMsgWithContext(ctx, out)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return false, errNoFetcher
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return true, errPending
	case err != nil:
		return true, busError(fmt.Errorf("request %s: %w", subject, err))
	}
	if err := events.Decode(msg.Data, reply); err != nil {
		return true, &httpError{status: fiber.StatusBadGateway, detail: "unreadable reply from a fetcher", err: err}
	}
	return true, nil
}

// syncFailure is the answer to a reader whose book could not be synced: 404 when the
// failure is permanent, else 502. The reader gets a fixed reason by the kind of failure;
// the job's error (a fetcher's Go error chain) goes to the log, and to the admin
// statistics, only.
func syncFailure(b bookRef, permanent bool, cause string) error {
	reason := "the source failed"
	switch {
	case strings.Contains(cause, "not found") || strings.Contains(cause, " 404"):
		reason = "the source has no such book"
	case strings.Contains(cause, "parse error"):
		reason = "the source's pages could not be read"
	case permanent:
		reason = "the source's pages cannot be synced"
	}
	if permanent {
		return &httpError{status: fiber.StatusNotFound, err: errors.New(cause),
			detail: fmt.Sprintf("book %s of site %s could not be synced: %s", b.id, b.site, reason)}
	}
	return &httpError{status: fiber.StatusBadGateway, err: errors.New(cause),
		detail: fmt.Sprintf("sync of book %s of site %s failed: %s", b.id, b.site, reason)}
}
