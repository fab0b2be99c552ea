package httpapi

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
	"github.com/xswtw/xsw/services/gateway/internal/metrics"
)

// chaptersPerPage is the size of a chapter list page.
const chaptersPerPage = 20

// rfc3339 writes t as the API writes times: RFC 3339 in UTC, to the second; nil stays
// nil.
func rfc3339(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func newBook(b catalog.Book) api.Book {
	vols := make([]api.Volume, len(b.Volumes))
	for i, v := range b.Volumes {
		vols[i] = api.Volume{Title: v.Title, FirstChapter: v.FirstChapter}
	}
	return api.Book{
		Name: b.Name, Author: b.Author, Type: b.Genre, Status: b.Status, Update: b.UpdateText,
		LastChapterTitle: b.LastChapterTitle, LastChapterURL: b.LastChapterURL, LastChapterNumber: b.LastChapterNum,
		BookID: b.ID, Site: b.Site, Volumes: vols, Description: b.Description, CoverURL: b.CoverURL, Finished: b.Finished,
		ChapterCount: b.ChapterCount, SyncStatus: b.SyncStatus(),
		SyncedAt: rfc3339(b.SyncedAt), CheckedAt: rfc3339(b.CheckedAt), ChangedAt: rfc3339(b.ChangedAt),
	}
}

func queuedBody(b bookRef) api.Queued {
	return api.Queued{Status: "queued", Site: b.site, BookID: b.id}
}

// book answers GET /books/{book_id}: the cache, else Postgres, else an interactive sync
// awaited up to InteractiveWait, else 202.
func (s *Server) book(c *fiber.Ctx) (err error) {
	b, err := s.bookParam(c, s.pathSite)
	if err != nil {
		return err
	}
	s.countRead(b)
	from := metrics.ServedDatabase
	defer func() { s.observeRead(c, b, from, err) }()
	key := b.key()
	if v, ok := s.books.Get(key, "book"); ok {
		from = metrics.ServedMemory
		return v.(jsonBody).send(c)
	}
	ctx := c.UserContext()
	token := s.books.Token(key)
	bk, err := s.cat.Book(ctx, b.site, b.id)
	// A row without metadata is a sync's completion seen before the book's home page.
	if errors.Is(err, catalog.ErrNotFound) || (err == nil && !bk.HasMeta) {
		if err := s.await(ctx, b, needBook); errors.Is(err, errPending) {
			return accepted(c, queuedBody(b))
		} else if err != nil {
			return err
		}
		from = metrics.ServedWaited
		token = s.books.Token(key)
		bk, err = s.cat.Book(ctx, b.site, b.id)
		if errors.Is(err, catalog.ErrNotFound) || (err == nil && !bk.HasMeta) {
			return accepted(c, queuedBody(b))
		}
	}
	if err != nil {
		return databaseError(err)
	}
	body, err := encodeJSON(c, newBook(bk))
	if err != nil {
		return err
	}
	s.books.Set(key, "book", body, token)
	return body.send(c)
}

// chapterList is a cached chapter list page: its JSON and its headers.
type chapterList struct {
	body       jsonBody
	site       string
	total      int
	syncStatus string
}

// CacheSize is what the list costs in a cache (cache.Sizer).
func (l chapterList) CacheSize() int { return len(l.body) + len(l.site) + len(l.syncStatus) + 16 }

func newChapterList(c *fiber.Ctx, site string, p catalog.ChapterPage) (chapterList, error) {
	refs := make([]api.ChapterRef, len(p.Chapters))
	for i, ch := range p.Chapters {
		refs[i] = api.ChapterRef{Number: ch.Number, Title: ch.Title, URL: ch.URL}
	}
	body, err := encodeJSON(c, refs)
	return chapterList{body: body, site: site, total: p.Total, syncStatus: p.SyncStatus}, err
}

func (l chapterList) write(c *fiber.Ctx) error {
	status := l.syncStatus
	if status != catalog.SyncComplete {
		status = catalog.SyncPartial
	}
	c.Set("X-Total-Count", strconv.Itoa(l.total))
	c.Set("X-Sync-Status", status)
	c.Set("X-Site", l.site)
	return l.body.send(c)
}

// chapters answers GET /books/{book_id}/chapters: a bare array of chapter references,
// chaptersPerPage a page (or all=true), totals and the book's site in headers. A book
// with no stored chapter is synced interactively and awaited like a missing book. A
// partly stored one is asked for interactively in the background so the rest comes
// sooner; meanwhile the chapters a page lacks are asked of the fetchers out of turn (202
// when that takes longer than InteractiveWait), and all=true serves what is stored.
func (s *Server) chapters(c *fiber.Ctx) (err error) {
	b, err := s.bookParam(c, s.pathSite)
	if err != nil {
		return err
	}
	s.countRead(b)
	page, err := intQuery(c, "page", 1, maxPage, 1)
	if err != nil {
		return err
	}
	all, err := boolQuery(c, "all", false)
	if err != nil {
		return err
	}
	nocache, err := boolQuery(c, "nocache", false)
	if err != nil {
		return err
	}
	from := metrics.ServedDatabase
	defer func() { s.observeRead(c, b, from, err) }()
	offset, limit, key := (page-1)*chaptersPerPage, chaptersPerPage, "chapters:"+strconv.Itoa(page)
	if all {
		offset, limit, key = 0, 0, "chapters:all"
	}
	bkey := b.key()
	if !nocache {
		if v, ok := s.books.Get(bkey, key); ok {
			from = metrics.ServedMemory
			return v.(chapterList).write(c)
		}
	}
	ctx := c.UserContext()
	token := s.books.Token(bkey)
	p, err := s.cat.Chapters(ctx, b.site, b.id, offset, limit)
	if err != nil {
		return databaseError(err)
	}
	if p.SyncStatus == catalog.SyncNone {
		if err := s.await(ctx, b, needChapters); errors.Is(err, errPending) {
			return accepted(c, queuedBody(b))
		} else if err != nil {
			return err
		}
		from = metrics.ServedWaited
		token = s.books.Token(bkey)
		if p, err = s.cat.Chapters(ctx, b.site, b.id, offset, limit); err != nil {
			return databaseError(err)
		}
		if p.SyncStatus == catalog.SyncNone {
			return accepted(c, queuedBody(b))
		}
	}
	if p.SyncStatus == catalog.SyncPartial {
		s.pullRest(ctx, b)
		if !all && len(p.Chapters) < limit {
			refs, err := s.refsOutOfTurn(ctx, b, offset+1, offset+limit, p.Chapters)
			switch {
			case errors.Is(err, errPending):
				return accepted(c, queuedBody(b))
			case err != nil && len(p.Chapters) == 0:
				return err
			case err != nil:
				s.log.Warn("serving a short page: its missing chapters could not be fetched", "site", b.site, "book_id", b.id, "page", page, "err", err)
			default:
				// The page's missing chapters were asked of the fetchers while the reader waited.
				from = metrics.ServedWaited
				p.Chapters = refs
			}
		}
	}
	l, err := newChapterList(c, b.site, p)
	if err != nil {
		return err
	}
	s.books.Set(bkey, key, l, token)
	return l.write(c)
}

// pullRest asks, in the background, for an interactive sync of a partly stored book a
// reader is looking at (a no-op when it is syncing or already waiting that high, or when
// nothing may be queued for the book yet).
func (s *Server) pullRest(ctx context.Context, b bookRef) {
	if s.fetchable(ctx, b) != nil {
		return
	}
	s.background(func(ctx context.Context) {
		_, err := s.jobs.Request(ctx, jobs.Request{
			Site: b.site, BookID: b.id, Lane: events.LaneInteractive, Priority: jobs.InteractivePriority, Reason: "reader browsing a partial book",
		})
		if err != nil {
			s.log.Warn("request the rest of a partial book", "site", b.site, "book_id", b.id, "err", err)
		}
	})
}

func queuedChapterBody(status string, b bookRef, num int) api.QueuedChapter {
	return api.QueuedChapter{Status: status, Site: b.site, BookID: b.id, ChapterNum: num}
}

// chapter answers GET /books/{book_id}/chapters/{num}: stored text, else the text fetched
// by a fetcher over request/reply within ChapterWait, else 202. A chapter whose reference
// is not stored yet is awaited like a missing book; past the end of a completely synced
// book it is 404.
func (s *Server) chapter(c *fiber.Ctx) error {
	b, err := s.bookParam(c, s.pathSite)
	if err != nil {
		return err
	}
	s.countRead(b)
	num, err := intParam(c, "num", 1, maxChapter)
	if err != nil {
		return err
	}
	nocache, err := boolQuery(c, "nocache", false)
	if err != nil {
		return err
	}
	key := "text:" + strconv.Itoa(num)
	bkey := b.key()
	if !nocache {
		if v, ok := s.books.Get(bkey, key); ok {
			return v.(jsonBody).send(c)
		}
	}
	ctx := c.UserContext()
	token := s.books.Token(bkey)
	ch, err := s.cat.Chapter(ctx, b.site, b.id, num)
	if errors.Is(err, catalog.ErrNotFound) {
		if err := s.beyondEnd(ctx, b, num); err != nil {
			return err
		}
		ref, ok, terr := s.chapterOutOfTurn(ctx, b, num)
		if errors.Is(terr, errPending) {
			return accepted(c, queuedChapterBody("queued", b, num))
		}
		if ok {
			ch, err = catalog.Chapter{ChapterRef: ref}, nil
		}
	}
	if errors.Is(err, catalog.ErrNotFound) {
		if err := s.await(ctx, b, needChapter(num)); errors.Is(err, errPending) {
			return accepted(c, queuedChapterBody("queued", b, num))
		} else if err != nil {
			return err
		}
		token = s.books.Token(bkey)
		ch, err = s.cat.Chapter(ctx, b.site, b.id, num)
		if errors.Is(err, catalog.ErrNotFound) {
			if err := s.beyondEnd(ctx, b, num); err != nil {
				return err
			}
			return accepted(c, queuedChapterBody("queued", b, num))
		}
	}
	if err != nil {
		return databaseError(err)
	}
	v := api.Chapter{BookID: b.id, ChapterNum: num, Title: ch.Title, URL: ch.URL, Text: ch.Text, Site: b.site}
	if !ch.HasText {
		fetched, err := s.fetchChapter(ctx, b, ch)
		if errors.Is(err, errPending) {
			return accepted(c, queuedChapterBody("fetching", b, num))
		}
		if err != nil {
			return err
		}
		v.Text = fetched.Text
		if fetched.Title != "" {
			v.Title = fetched.Title
		}
	}
	body, err := encodeJSON(c, v)
	if err != nil {
		return err
	}
	s.books.Set(bkey, key, body, token)
	return body.send(c)
}

// chapterOutOfTurn asks the fetchers for the ref of chapter num when the book's chapter
// list is partly stored. ok is false when it is not, or the source has no such chapter,
// or the source failed, or nothing may be fetched for the book (the reader then waits
// for the sync, which says why); the error is errPending when the source did not answer
// in time, else nil.
func (s *Server) chapterOutOfTurn(ctx context.Context, b bookRef, num int) (catalog.ChapterRef, bool, error) {
	p, err := s.cat.Chapters(ctx, b.site, b.id, 0, 1)
	if err != nil || p.SyncStatus != catalog.SyncPartial {
		return catalog.ChapterRef{}, false, nil
	}
	ref, ok, err := s.refOutOfTurn(ctx, b, num)
	if errors.Is(err, errPending) {
		return catalog.ChapterRef{}, false, err
	}
	if err != nil {
		s.log.Debug("chapter out of turn", "site", b.site, "book_id", b.id, "num", num, "err", err)
		return catalog.ChapterRef{}, false, nil
	}
	return ref, ok, nil
}

// beyondEnd returns a 404 when the book's whole table of contents is stored and has
// fewer than num chapters.
func (s *Server) beyondEnd(ctx context.Context, b bookRef, num int) error {
	bk, err := s.cat.Book(ctx, b.site, b.id)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return nil
	case err != nil:
		return databaseError(err)
	}
	if n, ok := bk.KnownLength(); ok && num > n {
		return notFound("book %s of site %s has %d chapters, no chapter %d", b.id, b.site, n, num)
	}
	return nil
}

// fetchChapter asks the fetchers for a chapter's text, once for all concurrent readers
// of it. The fetcher also publishes the text for the indexer to store.
func (s *Server) fetchChapter(ctx context.Context, b bookRef, ch catalog.Chapter) (*events.ChapterFetched, error) {
	if err := s.fetchable(ctx, b); err != nil {
		return nil, err
	}
	v, err := s.shared(ctx, &s.fetches, "text:"+b.key()+":"+strconv.Itoa(ch.Number), 1, func() (any, bool, error) {
		req := events.ChapterRequest{Header: events.Header{Version: events.Version}, Site: b.site, BookID: b.id, ChapterID: ch.ChapterID, Number: ch.Number}
		var reply events.ChapterReply
		if asked, err := s.call(s.ctx, events.SubjectRPCChapter, b.site, s.cfg.ChapterWait, &req, &reply); err != nil {
			return nil, asked, err
		}
		if reply.Error != nil {
			return nil, !spared(reply.Error), s.rpcFailure(b.site, reply.Error)
		}
		if reply.Chapter == nil {
			return nil, true, newError(fiber.StatusBadGateway, "a fetcher replied without the chapter")
		}
		return reply.Chapter, true, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*events.ChapterFetched), nil
}

func (s *Server) countRead(b bookRef) {
	if s.cfg.CountRead != nil {
		s.cfg.CountRead(b.key())
	}
}

// observeRead reports a book read once it is answered: from where the handler found its
// answer, unless the answer is a 202 or an error. A 202, or an error that queued the
// book all the same, is ServedQueued; any other error is ServedFailed.
func (s *Server) observeRead(c *fiber.Ctx, b bookRef, from string, err error) {
	if s.cfg.ObserveRead == nil {
		return
	}
	switch {
	case errors.Is(err, errQueued):
		from = metrics.ServedQueued
	case err != nil:
		from = metrics.ServedFailed
	case c.Response().StatusCode() == fiber.StatusAccepted:
		from = metrics.ServedQueued
	}
	s.cfg.ObserveRead(b.site, from)
}
