// Package worker runs the fetcher's sync jobs: it takes book requests from the lanes'
// durable consumers, highest lane first, walks the book's pages through the polite
// source client, publishes what it found, and settles each message exactly once.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/site"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
)

// MaxTOCPages bounds the table-of-contents walk of one book (the largest books on the
// site have a few hundred pages).
const MaxTOCPages = 5000

// Syncer fetches one book and publishes its metadata and table of contents.
type Syncer struct {
	JS     jetstream.JetStream
	Site   site.Source
	Client *source.Client
	Logger *slog.Logger
	// Checkpoints holds each book's checkpoint for incremental resyncs (nil: always
	// walk the whole table of contents).
	Checkpoints jetstream.KeyValue
}

// job is one sync job in progress.
type job struct {
	ID       string
	Request  events.BookRequested
	Attempt  int
	Started  time.Time
	Enqueued time.Time
	// Requests counts the source requests made.
	Requests int
}

// result is what a completed sync published.
type result struct {
	Chapters  int
	Pages     int
	Unchanged bool
}

// fetch gets one page of the site for j, conditionally when v has validators.
func (s *Syncer) fetch(ctx context.Context, j *job, rawURL string, v source.Validators) (*source.Page, error) {
	p := politeness.Background
	if j.Request.Lane == events.LaneInteractive {
		p = politeness.Interactive
	}
	j.Requests++
	return s.Client.GetIfChanged(ctx, rawURL, p, v)
}

// checkpoint is what a fetcher remembers of a book's last sync, in the checkpoints
// bucket: enough to resume the table of contents where it grows.
type checkpoint struct {
	LastChapterID string            `json:"last_chapter_id"`
	Chapters      int               `json:"chapters"`
	TOCPages      int               `json:"toc_pages"`
	PerPage       int               `json:"per_page"` // chapters on every page but the last
	Home          source.Validators `json:"home"`
	At            time.Time         `json:"at"`
}

// Sync fetches the book home page, then the table of contents, publishing one event for
// the metadata and one per page as it goes, so the first chapters are servable before
// the last page is fetched and no message grows with the book.
//
// A resync of a book whose stored state matches this cluster's checkpoint of its last
// sync is incremental: a conditional request for the home page first (a 304, or the same
// newest chapter, ends the job there: one request), then only the table-of-contents pages
// from the last known one onwards. Chapter numbers continue from the known pages, so they
// stay stable.
func (s *Syncer) Sync(ctx context.Context, j *job) (result, error) {
	id := j.Request.BookID
	cp, incremental := s.resumable(ctx, j)
	var validators source.Validators
	if incremental {
		validators = cp.Home
	}
	home, err := s.fetch(ctx, j, s.Site.BookURL(id), validators)
	if err != nil {
		return result{}, fmt.Errorf("fetch book home of %s: %w", id, err)
	}
	if home.NotModified {
		return result{Chapters: cp.Chapters, Pages: cp.TOCPages, Unchanged: true}, nil
	}
	book, err := s.Site.ParseBook(home.Body, home.URL, id)
	if err != nil {
		return result{}, fmt.Errorf("book %s: %w", id, err)
	}
	meta := events.BookFetched{Header: events.Header{Version: events.Version}, JobID: j.ID, BookID: id, Book: metaOf(book), FetchedAt: time.Now().UTC()}
	if _, err := broker.Publish(ctx, s.JS, events.SubjectFetchedBook(id), meta.MsgID(), &meta); err != nil {
		return result{}, err
	}

	if incremental && book.LastChapterID != "" && book.LastChapterID == cp.LastChapterID {
		cp.Home, cp.At = home.Validators, time.Now().UTC()
		s.saveCheckpoint(ctx, id, cp)
		return result{Chapters: cp.Chapters, Pages: cp.TOCPages, Unchanged: true}, nil
	}
	var w walk
	if incremental {
		w, err = s.walk(ctx, j, book.LastChapterID, cp.TOCPages, (cp.TOCPages-1)*cp.PerPage+1)
		if err == nil && !w.sawNewest {
			// The known pages do not lead to the newest chapter (the book was reordered or
			// shrank): walk it all.
			s.Logger.Info("incremental sync lost the thread; walking the whole table of contents", "book_id", id)
			incremental = false
		}
	}
	if !incremental {
		w, err = s.walk(ctx, j, book.LastChapterID, 1, 1)
	}
	if err != nil {
		return result{}, err
	}
	perPage := cp.PerPage
	if w.firstPageCount > 0 || !incremental {
		perPage = w.firstPageCount
	}
	s.saveCheckpoint(ctx, id, checkpoint{
		LastChapterID: book.LastChapterID, Chapters: w.chapters, TOCPages: w.pages, PerPage: perPage,
		Home: home.Validators, At: time.Now().UTC(),
	})
	return result{Chapters: w.chapters, Pages: w.pages}, nil
}

// walk is the outcome of walking table-of-contents pages.
type walk struct {
	chapters       int  // position of the last chapter seen
	pages          int  // last page walked
	firstPageCount int  // chapters on page 1, when it was walked
	sawNewest      bool // the newest chapter was among them
}

// walk fetches table-of-contents pages from page start, numbering from firstNumber,
// until the last page, publishing each.
func (s *Syncer) walk(ctx context.Context, j *job, newestID string, start, firstNumber int) (walk, error) {
	id := j.Request.BookID
	w := walk{chapters: firstNumber - 1}
	total := start
	for page := start; page <= total && page <= MaxTOCPages; page++ {
		p, err := s.fetch(ctx, j, s.Site.TOCURL(id, page), source.Validators{})
		if err != nil {
			return w, fmt.Errorf("fetch toc page %d of book %s: %w", page, id, err)
		}
		toc, err := s.Site.ParseTOC(p.Body, p.URL, id, page, w.chapters+1)
		if err != nil {
			return w, fmt.Errorf("toc page %d of book %s: %w", page, id, err)
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
			Header: events.Header{Version: events.Version}, JobID: j.ID, BookID: id,
			Page: page, TotalPages: max(total, page), Chapters: refsOf(toc.Chapters), FetchedAt: time.Now().UTC(),
		}
		if _, err := broker.Publish(ctx, s.JS, events.SubjectFetchedTOC(id), ev.MsgID(), &ev); err != nil {
			return w, err
		}
		if page == 1 {
			w.firstPageCount = len(toc.Chapters)
		}
		for _, c := range toc.Chapters {
			w.sawNewest = w.sawNewest || c.ChapterID == newestID
		}
		w.chapters += len(toc.Chapters)
		w.pages = page
	}
	return w, nil
}

// resumable returns the book's checkpoint and whether this job may sync incrementally:
// not forced, and the database holds exactly what the checkpoint says was published.
func (s *Syncer) resumable(ctx context.Context, j *job) (checkpoint, bool) {
	var cp checkpoint
	if s.Checkpoints == nil || j.Request.Force || j.Request.Known == nil {
		return cp, false
	}
	e, err := s.Checkpoints.Get(ctx, j.Request.BookID)
	if err != nil || json.Unmarshal(e.Value(), &cp) != nil {
		return cp, false
	}
	k := j.Request.Known
	ok := cp.TOCPages >= 1 && cp.PerPage > 0 && cp.LastChapterID != "" &&
		k.Chapters == cp.Chapters && k.LastChapterID == cp.LastChapterID
	return cp, ok
}

func (s *Syncer) saveCheckpoint(ctx context.Context, bookID string, cp checkpoint) {
	if s.Checkpoints == nil {
		return
	}
	b, _ := json.Marshal(cp)
	if _, err := s.Checkpoints.Put(ctx, bookID, b); err != nil {
		s.Logger.Warn("save sync checkpoint", "book_id", bookID, "err", err)
	}
}

func metaOf(b *site.Book) events.BookMeta {
	return events.BookMeta{
		Name: b.Name, Author: b.Author, Genre: b.Genre, Status: b.Status, Finished: b.Finished,
		UpdateText: b.UpdateText, UpdatedAt: b.UpdatedAt, Description: b.Description, CoverURL: b.CoverURL,
		LastChapterTitle: b.LastChapterTitle, LastChapterURL: b.LastChapterURL, LastChapterID: b.LastChapterID,
		SourceURL: b.SourceURL,
	}
}

func refsOf(cs []site.ChapterRef) []events.ChapterRef {
	out := make([]events.ChapterRef, len(cs))
	for i, c := range cs {
		out[i] = events.ChapterRef{Number: c.Number, ChapterID: c.ChapterID, Title: c.Title, URL: c.URL, TitleNumber: c.TitleNumber}
	}
	return out
}

// permanent reports whether a sync error can never succeed on retry.
func permanent(err error) bool {
	return source.Permanent(err) || site.Permanent(err) || errors.Is(err, events.ErrInvalid)
}
