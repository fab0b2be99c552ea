package httpapi

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// chaptersPerPage is the size of a chapter list page.
const chaptersPerPage = 20

// bookJSON is a book as the web client reads it; the fields after book_id are extras.
type bookJSON struct {
	Name              string  `json:"name"`
	Author            string  `json:"author"`
	Type              string  `json:"type"`
	Status            string  `json:"status"`
	Update            string  `json:"update"`
	LastChapterTitle  string  `json:"last_chapter_title"`
	LastChapterURL    string  `json:"last_chapter_url"`
	LastChapterNumber *int    `json:"last_chapter_number"`
	BookID            string  `json:"book_id"`
	Description       string  `json:"description"`
	CoverURL          string  `json:"cover_url"`
	Finished          bool    `json:"finished"`
	ChapterCount      int     `json:"chapter_count"`
	SyncStatus        string  `json:"sync_status"`
	SyncedAt          *string `json:"synced_at"`
	CheckedAt         *string `json:"checked_at"`
	ChangedAt         *string `json:"changed_at"`
}

func rfc3339(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func newBookJSON(b catalog.Book) bookJSON {
	return bookJSON{
		Name: b.Name, Author: b.Author, Type: b.Genre, Status: b.Status, Update: b.UpdateText,
		LastChapterTitle: b.LastChapterTitle, LastChapterURL: b.LastChapterURL, LastChapterNumber: b.LastChapterNum,
		BookID: b.ID, Description: b.Description, CoverURL: b.CoverURL, Finished: b.Finished,
		ChapterCount: b.ChapterCount, SyncStatus: b.SyncStatus(),
		SyncedAt: rfc3339(b.SyncedAt), CheckedAt: rfc3339(b.CheckedAt), ChangedAt: rfc3339(b.ChangedAt),
	}
}

func queuedBody(bookID string) fiber.Map { return fiber.Map{"status": "queued", "book_id": bookID} }

// book answers GET /books/{book_id}: the cache, else Postgres, else an interactive sync
// awaited up to InteractiveWait, else 202.
func (s *Server) book(c *fiber.Ctx) error {
	id, err := bookIDParam(c)
	if err != nil {
		return err
	}
	s.countRead(id)
	if v, ok := s.books.Get(id, "book"); ok {
		return v.(jsonBody).send(c)
	}
	ctx := c.UserContext()
	token := s.books.Token(id)
	b, err := s.cat.Book(ctx, id)
	// A row without metadata is a sync's completion seen before the book's home page.
	if errors.Is(err, catalog.ErrNotFound) || (err == nil && !b.HasMeta) {
		if err := s.await(ctx, id, needBook); errors.Is(err, errPending) {
			return accepted(c, queuedBody(id))
		} else if err != nil {
			return err
		}
		token = s.books.Token(id)
		b, err = s.cat.Book(ctx, id)
		if errors.Is(err, catalog.ErrNotFound) || (err == nil && !b.HasMeta) {
			return accepted(c, queuedBody(id))
		}
	}
	if err != nil {
		return databaseError(err)
	}
	body, err := encodeJSON(c, newBookJSON(b))
	if err != nil {
		return err
	}
	s.books.Set(id, "book", body, token)
	return body.send(c)
}

type chapterRefJSON struct {
	Number int    `json:"number"`
	Title  string `json:"title"`
	URL    string `json:"url"`
}

// chapterList is a cached chapter list page: its JSON and its headers.
type chapterList struct {
	body       jsonBody
	total      int
	syncStatus string
}

func newChapterList(c *fiber.Ctx, p catalog.ChapterPage) (chapterList, error) {
	refs := make([]chapterRefJSON, len(p.Chapters))
	for i, ch := range p.Chapters {
		refs[i] = chapterRefJSON{Number: ch.Number, Title: ch.Title, URL: ch.URL}
	}
	body, err := encodeJSON(c, refs)
	return chapterList{body: body, total: p.Total, syncStatus: p.SyncStatus}, err
}

func (l chapterList) write(c *fiber.Ctx) error {
	status := l.syncStatus
	if status != catalog.SyncComplete {
		status = catalog.SyncPartial
	}
	c.Set("X-Total-Count", strconv.Itoa(l.total))
	c.Set("X-Sync-Status", status)
	return l.body.send(c)
}

// chapters answers GET /books/{book_id}/chapters: a bare array of chapter references,
// chaptersPerPage a page (or all=true), totals in headers. A book with no stored chapter
// is synced interactively and awaited like a missing book. A partly stored one is asked
// for interactively in the background so the rest comes sooner; meanwhile a page it
// lacks is read from the source's table of contents out of turn (202 when that takes
// longer than InteractiveWait), and all=true serves what is stored.
func (s *Server) chapters(c *fiber.Ctx) error {
	id, err := bookIDParam(c)
	if err != nil {
		return err
	}
	s.countRead(id)
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
	offset, limit, key := (page-1)*chaptersPerPage, chaptersPerPage, "chapters:"+strconv.Itoa(page)
	if all {
		offset, limit, key = 0, 0, "chapters:all"
	}
	if !nocache {
		if v, ok := s.books.Get(id, key); ok {
			return v.(chapterList).write(c)
		}
	}
	ctx := c.UserContext()
	token := s.books.Token(id)
	p, err := s.cat.Chapters(ctx, id, offset, limit)
	if err != nil {
		return databaseError(err)
	}
	if p.SyncStatus == catalog.SyncNone {
		if err := s.await(ctx, id, needChapters); errors.Is(err, errPending) {
			return accepted(c, queuedBody(id))
		} else if err != nil {
			return err
		}
		token = s.books.Token(id)
		if p, err = s.cat.Chapters(ctx, id, offset, limit); err != nil {
			return databaseError(err)
		}
		if p.SyncStatus == catalog.SyncNone {
			return accepted(c, queuedBody(id))
		}
	}
	if p.SyncStatus == catalog.SyncPartial {
		s.pullRest(id)
		if !all && len(p.Chapters) < limit {
			refs, err := s.refsOutOfTurn(ctx, id, offset+1, offset+limit, p.Chapters)
			switch {
			case errors.Is(err, errPending):
				return accepted(c, queuedBody(id))
			case err != nil && len(p.Chapters) == 0:
				return err
			case err != nil:
				s.log.Warn("serving a short page: its missing chapters could not be fetched", "book_id", id, "page", page, "err", err)
			default:
				p.Chapters = refs
			}
		}
	}
	l, err := newChapterList(c, p)
	if err != nil {
		return err
	}
	s.books.Set(id, key, l, token)
	return l.write(c)
}

// pullRest asks, in the background, for an interactive sync of a partly stored book a
// reader is looking at (a no-op when it is syncing or already waiting that high).
func (s *Server) pullRest(bookID string) {
	s.background(func(ctx context.Context) {
		_, err := s.jobs.Request(ctx, jobs.Request{
			BookID: bookID, Lane: events.LaneInteractive, Priority: jobs.InteractivePriority, Reason: "reader browsing a partial book",
		})
		if err != nil {
			s.log.Warn("request the rest of a partial book", "book_id", bookID, "err", err)
		}
	})
}

type chapterJSON struct {
	BookID     string `json:"book_id"`
	ChapterNum int    `json:"chapter_num"`
	Title      string `json:"title"`
	URL        string `json:"url"`
	Text       string `json:"text"`
}

// chapter answers GET /books/{book_id}/chapters/{num}: stored text, else the text fetched
// by a fetcher over request/reply within ChapterWait, else 202. A chapter whose reference
// is not stored yet is awaited like a missing book; past the end of a completely synced
// book it is 404.
func (s *Server) chapter(c *fiber.Ctx) error {
	id, err := bookIDParam(c)
	if err != nil {
		return err
	}
	s.countRead(id)
	num, err := intParam(c, "num", 1, maxChapter)
	if err != nil {
		return err
	}
	nocache, err := boolQuery(c, "nocache", false)
	if err != nil {
		return err
	}
	key := "text:" + strconv.Itoa(num)
	if !nocache {
		if v, ok := s.books.Get(id, key); ok {
			return v.(jsonBody).send(c)
		}
	}
	ctx := c.UserContext()
	token := s.books.Token(id)
	ch, err := s.cat.Chapter(ctx, id, num)
	if errors.Is(err, catalog.ErrNotFound) {
		if err := s.beyondEnd(ctx, id, num); err != nil {
			return err
		}
		ref, ok, terr := s.chapterOutOfTurn(ctx, id, num)
		if errors.Is(terr, errPending) {
			return accepted(c, fiber.Map{"status": "queued", "book_id": id, "chapter_num": num})
		}
		if ok {
			ch, err = catalog.Chapter{ChapterRef: ref}, nil
		}
	}
	if errors.Is(err, catalog.ErrNotFound) {
		if err := s.await(ctx, id, needChapter(num)); errors.Is(err, errPending) {
			return accepted(c, fiber.Map{"status": "queued", "book_id": id, "chapter_num": num})
		} else if err != nil {
			return err
		}
		token = s.books.Token(id)
		ch, err = s.cat.Chapter(ctx, id, num)
		if errors.Is(err, catalog.ErrNotFound) {
			if err := s.beyondEnd(ctx, id, num); err != nil {
				return err
			}
			return accepted(c, fiber.Map{"status": "queued", "book_id": id, "chapter_num": num})
		}
	}
	if err != nil {
		return databaseError(err)
	}
	v := chapterJSON{BookID: id, ChapterNum: num, Title: ch.Title, URL: ch.URL, Text: ch.Text}
	if !ch.HasText {
		fetched, err := s.fetchChapter(id, ch)
		if errors.Is(err, errPending) {
			return accepted(c, fiber.Map{"status": "fetching", "book_id": id, "chapter_num": num})
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
	s.books.Set(id, key, body, token)
	return body.send(c)
}

// chapterOutOfTurn reads the ref of chapter num from the source's table of contents
// when the book's table of contents is partly stored. ok is false when it is not, or
// the source has no such chapter, or the source failed (the reader then waits for the
// sync); the error is errPending when the source did not answer in time, else nil.
func (s *Server) chapterOutOfTurn(ctx context.Context, bookID string, num int) (catalog.ChapterRef, bool, error) {
	p, err := s.cat.Chapters(ctx, bookID, 0, 1)
	if err != nil || p.SyncStatus != catalog.SyncPartial {
		return catalog.ChapterRef{}, false, nil
	}
	ref, ok, err := s.refOutOfTurn(ctx, bookID, num)
	if errors.Is(err, errPending) {
		return catalog.ChapterRef{}, false, err
	}
	if err != nil {
		s.log.Debug("chapter out of turn", "book_id", bookID, "num", num, "err", err)
		return catalog.ChapterRef{}, false, nil
	}
	return ref, ok, nil
}

// beyondEnd returns a 404 when the book's whole table of contents is stored and has
// fewer than num chapters.
func (s *Server) beyondEnd(ctx context.Context, bookID string, num int) error {
	b, err := s.cat.Book(ctx, bookID)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return nil
	case err != nil:
		return databaseError(err)
	}
	if n, ok := b.KnownLength(); ok && num > n {
		return notFound("book %s has %d chapters, no chapter %d", bookID, n, num)
	}
	return nil
}

// fetchChapter asks the fetchers for a chapter's text, once for all concurrent readers
// of it. The fetcher also publishes the text for the indexer to store.
func (s *Server) fetchChapter(bookID string, ch catalog.Chapter) (*events.ChapterFetched, error) {
	v, err, _ := s.fetches.Do(bookID+":"+strconv.Itoa(ch.Number), func() (any, error) {
		req := events.ChapterRequest{Header: events.Header{Version: events.Version}, BookID: bookID, ChapterID: ch.ChapterID, Number: ch.Number}
		var reply events.ChapterReply
		if err := s.call(s.ctx, events.SubjectRPCChapter, s.cfg.ChapterWait, &req, &reply); err != nil {
			return nil, err
		}
		if reply.Error != nil {
			return nil, rpcFailure(reply.Error)
		}
		if reply.Chapter == nil {
			return nil, newError(fiber.StatusBadGateway, "a fetcher replied without the chapter")
		}
		return reply.Chapter, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*events.ChapterFetched), nil
}

func (s *Server) countRead(bookID string) {
	if s.cfg.CountRead != nil {
		s.cfg.CountRead(bookID)
	}
}
