// Package worker runs the fetcher's sync jobs: it takes book requests from the lanes'
// durable consumers, highest lane first, walks the book's pages through the polite
// source client, publishes what it found, and settles each message exactly once.
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
	Chapters int
	Pages    int
}

// fetch gets one page of the site for j.
func (s *Syncer) fetch(ctx context.Context, j *job, rawURL string) (*source.Page, error) {
	p := politeness.Background
	if j.Request.Lane == events.LaneInteractive {
		p = politeness.Interactive
	}
	j.Requests++
	return s.Client.Get(ctx, rawURL, p)
}

// Sync fetches the book home page, then every table-of-contents page, publishing one
// event for the metadata and one per page as it goes, so the first chapters are servable
// before the last page is fetched and no message grows with the book.
func (s *Syncer) Sync(ctx context.Context, j *job, progress func()) (result, error) {
	id := j.Request.BookID
	home, err := s.fetch(ctx, j, s.Site.BookURL(id))
	if err != nil {
		return result{}, fmt.Errorf("fetch book home of %s: %w", id, err)
	}
	book, err := s.Site.ParseBook(home.Body, home.URL, id)
	if err != nil {
		return result{}, fmt.Errorf("book %s: %w", id, err)
	}
	now := time.Now().UTC()
	meta := events.BookFetched{Header: events.Header{Version: events.Version}, JobID: j.ID, BookID: id, Book: metaOf(book), FetchedAt: now}
	if _, err := broker.Publish(ctx, s.JS, events.SubjectFetchedBook(id), meta.MsgID(), &meta); err != nil {
		return result{}, err
	}
	progress()

	var res result
	total := 1
	for page := 1; page <= total && page <= MaxTOCPages; page++ {
		p, err := s.fetch(ctx, j, s.Site.TOCURL(id, page))
		if err != nil {
			return res, fmt.Errorf("fetch toc page %d of book %s: %w", page, id, err)
		}
		toc, err := s.Site.ParseTOC(p.Body, p.URL, id, page, res.Chapters+1)
		if err != nil {
			return res, fmt.Errorf("toc page %d of book %s: %w", page, id, err)
		}
		if len(toc.Chapters) == 0 && page > 1 {
			// Past the end: the site answers an empty list rather than a 404.
			break
		}
		if page == 1 {
			total = max(toc.TotalPages, 1)
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
			return res, err
		}
		res.Chapters += len(toc.Chapters)
		res.Pages = page
		progress()
	}
	return res, nil
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
	return source.Permanent(err) || errors.Is(err, site.ErrParse) || errors.Is(err, events.ErrInvalid)
}
