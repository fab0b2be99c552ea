// Package worker runs the fetcher's sync jobs: it takes book requests from the lanes'
// durable consumers, highest lane first, hands each to its site's adapter, walks the
// book's pages through that site's polite client, publishes what it found, and settles
// each message exactly once.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/services/fetcher/internal/checkpoint"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/sites"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/site"
)

// MaxTOCPages bounds the table-of-contents walk of one book (the largest books on the
// site have a few hundred pages).
const MaxTOCPages = 5000

// Syncer fetches one book and publishes its metadata and chapter list.
type Syncer struct {
	JS jetstream.JetStream
	// Sites are the sites served; a request names one of them.
	Sites  *sites.Set
	Logger *slog.Logger
	// Checkpoints holds each book's checkpoint for incremental resyncs (a Store without
	// a bucket: always walk the whole chapter list).
	Checkpoints checkpoint.Store
}

// job is one sync job in progress.
type job struct {
	ID       string
	Request  events.BookRequested
	Site     *sites.Site
	Attempt  int
	Started  time.Time
	Enqueued time.Time
	// Requests counts the source requests made.
	Requests int
	// claim is the job's claim of its book (nil in tests that run Sync alone).
	claim *claim
}

// result is what a completed sync published.
type result struct {
	Chapters  int
	Pages     int
	Unchanged bool
}

// fetch gets one page of the job's site, conditionally when v has validators.
func (s *Syncer) fetch(ctx context.Context, j *job, rawURL string, v source.Validators) (*source.Page, error) {
	p := j.priority(ctx)
	j.Requests++
	page, err := j.Site.Client.GetIfChanged(ctx, rawURL, p, v)
	if p == politeness.Interactive && (errors.Is(err, politeness.ErrRefused) || errors.Is(err, politeness.ErrBusy) ||
		errors.Is(err, politeness.ErrCircuitOpen)) {
		// The site refuses us, its circuit is open, or readers have booked its budget
		// further ahead than a reader may wait. The reader who asked hears so from the
		// gateway (or waits on); the job goes on at background pace, which waits these
		// out, rather than spending its attempts: demoted, so that it does not take the
		// share of the budget kept for background work.
		s.Logger.Info("reader's job goes on at background pace", "site", j.Site.ID, "book_id", j.Request.BookID, "reason", err)
		page, err = j.Site.Client.GetIfChanged(ctx, rawURL, politeness.Demoted, v)
	}
	return page, err
}

// priority is the priority of the job's next page. A job a reader waits for (this job,
// or the sync of a book this job already had) fetches its first
// events.InteractivePagesPerBook pages, what the reader needs to open the book, at
// interactive priority and the rest demoted; any other job's pages are background work.
func (j *job) priority(ctx context.Context) politeness.Priority {
	if j.Request.Lane != events.LaneInteractive && (j.claim == nil || !j.claim.readerWaits(ctx)) {
		return politeness.Background
	}
	if j.Requests < events.InteractivePagesPerBook {
		return politeness.Interactive
	}
	return politeness.Demoted
}

// Sync fetches the book page, then the chapter list, publishing one event for the
// metadata and one per page of the list as it goes, so the first chapters are servable
// before the last page is fetched and no message grows with the book. Where the book
// page carries the whole list (a site whose adapter is not site.Paginated), that one
// request is the whole sync. A book id that is not the site's canonical spelling is
// refused before anything is fetched.
//
// A resync of a book whose stored state matches this cluster's checkpoint of its last
// sync is incremental: a conditional request for the book page first (a 304, or the same
// newest chapter, ends the job there: one request), then, on a paginated list, only the
// pages from the last known one onwards. Chapter numbers continue from the known pages,
// so they stay stable.
func (s *Syncer) Sync(ctx context.Context, j *job) (result, error) {
	src, id := j.Site.Source, j.Request.BookID
	if !src.CanonicalBookID(id) {
		return result{}, fmt.Errorf("book %q of site %s: %w", id, j.Site.ID, site.ErrNotCanonical)
	}
	cp, incremental := s.resumable(ctx, j)
	var validators source.Validators
	if incremental {
		validators = cp.Home
	}
	home, err := s.fetch(ctx, j, src.BookURL(id), validators)
	if err != nil {
		return result{}, fmt.Errorf("fetch book page of %s: %w", events.Key(j.Site.ID, id), err)
	}
	if home.NotModified {
		return result{Chapters: cp.Chapters, Pages: cp.TOCPages, Unchanged: true}, nil
	}
	book, err := src.ParseBook(home.Body, home.URL, id)
	if err != nil {
		return result{}, fmt.Errorf("book %s: %w", events.Key(j.Site.ID, id), err)
	}
	paged, paginated := src.(site.Paginated)
	if !paginated && book.TOC == nil {
		return result{}, fmt.Errorf("book %s: %w", events.Key(j.Site.ID, id),
			&site.ParseError{Page: "book", URL: home.URL.String(), What: "no chapter list (Book.TOC) from an adapter whose list is on the book page"})
	}
	meta := events.BookFetched{Header: events.Header{Version: events.Version}, JobID: j.ID, Site: j.Site.ID, BookID: id,
		Book: sites.Meta(book), FetchedAt: time.Now().UTC()}
	if _, err := broker.PublishPatiently(ctx, s.JS, events.SubjectFetchedBook(j.Site.ID, id), meta.MsgID(), &meta, busPatience); err != nil {
		return result{}, err
	}

	if incremental && book.LastChapterID != "" && book.LastChapterID == cp.LastChapterID {
		cp.Home, cp.At = home.Validators, time.Now().UTC()
		s.saveCheckpoint(ctx, j, cp)
		return result{Chapters: cp.Chapters, Pages: cp.TOCPages, Unchanged: true}, nil
	}
	var w walk
	if !paginated {
		w, err = s.onePage(ctx, j, book.TOC)
	} else {
		first, known := cp.LastPageStart(paged)
		if incremental && known {
			w, err = s.walk(ctx, j, paged, book.LastChapterID, cp.TOCPages, first)
			if err == nil && !w.sawNewest {
				// The known pages do not lead to the newest chapter (the book was
				// reordered or shrank): walk it all.
				s.Logger.Info("incremental sync lost the thread; walking the whole table of contents", "site", j.Site.ID, "book_id", id)
				incremental = false
			}
		}
		if !incremental || !known {
			incremental = false
			w, err = s.walk(ctx, j, paged, book.LastChapterID, 1, 1)
		}
	}
	if err != nil {
		return result{}, err
	}
	firstPage := cp.FirstPageRefs
	if w.firstPageCount > 0 || !incremental {
		firstPage = w.firstPageCount
	}
	s.saveCheckpoint(ctx, j, checkpoint.Checkpoint{
		LastChapterID: book.LastChapterID, Chapters: w.chapters, TOCPages: w.pages, FirstPageRefs: firstPage,
		LastPageFirst: w.lastPageFirst, Home: home.Validators, At: time.Now().UTC(),
	})
	return result{Chapters: w.chapters, Pages: w.pages}, nil
}

// walk is the outcome of walking the pages of a chapter list.
type walk struct {
	chapters       int  // position of the last chapter seen
	pages          int  // last page walked
	firstPageCount int  // chapters on page 1, when it was walked
	lastPageFirst  int  // position of the first chapter of the last page walked
	sawNewest      bool // the newest chapter was among them
}

// onePage publishes a chapter list that the book page carried whole, as page 1 of 1.
func (s *Syncer) onePage(ctx context.Context, j *job, toc *site.TOCPage) (walk, error) {
	id := j.Request.BookID
	ev := events.TOCPageFetched{
		Header: events.Header{Version: events.Version}, JobID: j.ID, Site: j.Site.ID, BookID: id,
		Page: 1, TotalPages: 1, Chapters: sites.Refs(toc.Chapters), FetchedAt: time.Now().UTC(),
	}
	if _, err := broker.PublishPatiently(ctx, s.JS, events.SubjectFetchedTOC(j.Site.ID, id), ev.MsgID(), &ev, busPatience); err != nil {
		return walk{}, err
	}
	return walk{chapters: len(toc.Chapters), pages: 1, firstPageCount: len(toc.Chapters), lastPageFirst: 1}, nil
}

// walk fetches the pages of a paginated chapter list from page start, numbering from
// firstNumber, until the last page, publishing each.
func (s *Syncer) walk(ctx context.Context, j *job, paged site.Paginated, newestID string, start, firstNumber int) (walk, error) {
	id, key := j.Request.BookID, events.Key(j.Site.ID, j.Request.BookID)
	w := walk{chapters: firstNumber - 1}
	total := start
	for page := start; page <= total && page <= MaxTOCPages; page++ {
		p, err := s.fetch(ctx, j, paged.TOCURL(id, page), source.Validators{})
		if err != nil {
			return w, fmt.Errorf("fetch toc page %d of book %s: %w", page, key, err)
		}
		toc, err := paged.ParseTOC(p.Body, p.URL, id, page, w.chapters+1)
		if err != nil {
			return w, fmt.Errorf("toc page %d of book %s: %w", page, key, err)
		}
		if len(toc.Chapters) == 0 && page > 1 {
			// Past the end: the site answers an empty list rather than a 404.
			break
		}
		if page == start {
			total = max(toc.TotalPages, start)
		}
		if toc.HasNext && page == total {
			// The count said this was the last page but the page links a next one:
			// believe the link (the count text may be missing or stale).
			total++
		}
		ev := events.TOCPageFetched{
			Header: events.Header{Version: events.Version}, JobID: j.ID, Site: j.Site.ID, BookID: id,
			Page: page, TotalPages: max(total, page), Chapters: sites.Refs(toc.Chapters), FetchedAt: time.Now().UTC(),
		}
		if _, err := broker.PublishPatiently(ctx, s.JS, events.SubjectFetchedTOC(j.Site.ID, id), ev.MsgID(), &ev, busPatience); err != nil {
			return w, err
		}
		if page == 1 {
			w.firstPageCount = len(toc.Chapters)
		}
		for _, c := range toc.Chapters {
			w.sawNewest = w.sawNewest || c.ChapterID == newestID
		}
		w.lastPageFirst = w.chapters + 1
		w.chapters += len(toc.Chapters)
		w.pages = page
	}
	return w, nil
}

// resumable returns the book's checkpoint and whether this job may sync incrementally:
// not forced, and the database holds exactly what the checkpoint says was published.
func (s *Syncer) resumable(ctx context.Context, j *job) (checkpoint.Checkpoint, bool) {
	if j.Request.Force || j.Request.Known == nil {
		return checkpoint.Checkpoint{}, false
	}
	cp, ok := s.Checkpoints.Load(ctx, j.Site.ID, j.Request.BookID)
	if !ok {
		return cp, false
	}
	k := j.Request.Known
	ok = cp.TOCPages >= 1 && (cp.FirstPageRefs > 0 || cp.LastPageFirst > 0) && cp.LastChapterID != "" &&
		k.Chapters == cp.Chapters && k.LastChapterID == cp.LastChapterID
	return cp, ok
}

func (s *Syncer) saveCheckpoint(ctx context.Context, j *job, cp checkpoint.Checkpoint) {
	if err := s.Checkpoints.Save(ctx, j.Site.ID, j.Request.BookID, cp); err != nil {
		s.Logger.Warn("save sync checkpoint", "site", j.Site.ID, "book_id", j.Request.BookID, "err", err)
	}
}

// permanent reports whether a sync error can never succeed on retry.
func permanent(err error) bool {
	return source.Permanent(err) || site.Permanent(err) || errors.Is(err, events.ErrInvalid)
}
