package httpapi

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// tocSite plays the fetchers' table-of-contents calls for a book of total chapters,
// perPage a source page, recording what it was asked.
type tocSite struct {
	total, perPage int
	silent         map[int]bool // pages never answered
	failing        map[int]events.ErrorKind

	mu    sync.Mutex
	asked []events.TOCRequest
}

func (s *tocSite) answer(data []byte) events.Payload {
	var req events.TOCRequest
	reply := &events.TOCReply{Header: events.Header{Version: events.Version}}
	if err := events.Decode(data, &req); err != nil {
		reply.Error = &events.RPCError{Kind: events.ErrKindBadRequest, Message: err.Error()}
		return reply
	}
	s.mu.Lock()
	s.asked = append(s.asked, req)
	s.mu.Unlock()
	if s.silent[req.Page] {
		return nil
	}
	if kind, ok := s.failing[req.Page]; ok {
		reply.Error = rpcErr(kind)
		return reply
	}
	if req.Page > 1 && req.FirstNumber < 1 { // as the real fetcher does
		reply.Error = &events.RPCError{Kind: events.ErrKindBadRequest, Message: "needs the number of its first chapter"}
		return reply
	}
	pages := (s.total + s.perPage - 1) / s.perPage
	p := &events.TOCPageFetched{Header: events.Header{Version: events.Version}, JobID: "read-" + req.BookID, BookID: req.BookID,
		Page: req.Page, TotalPages: max(pages, req.Page), Chapters: []events.ChapterRef{}, FetchedAt: time.Now()}
	first := max(req.FirstNumber, 1)
	for i := range s.perPage {
		pos := (req.Page-1)*s.perPage + i + 1 // where the site really has it
		if pos > s.total {
			break
		}
		n := first + i
		p.Chapters = append(p.Chapters, events.ChapterRef{Number: n, ChapterID: fmt.Sprint(1000 + pos), Title: fmt.Sprintf("第%d章", pos),
			URL: fmt.Sprintf("https://m.xsw.tw/%s/%d.html", req.BookID, 1000+pos)})
	}
	reply.Page = p
	return reply
}

func (s *tocSite) requests() []events.TOCRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]events.TOCRequest(nil), s.asked...)
}

// partialBook stores book id with chapters 1..stored listed by source pages of 20, and
// the page count the site reported.
func partialBook(t *testing.T, e *env, id int64, stored, pages int) {
	t.Helper()
	testdb.InsertBook(t, e.pool, id, "Still syncing", false)
	testdb.InsertChapters(t, e.pool, id, stored)
	testdb.Exec(t, e.pool, `UPDATE chapters SET toc_page = (num - 1) / 20 + 1 WHERE book_id = $1`, id)
	testdb.Exec(t, e.pool, `UPDATE books SET toc_pages_seen = $2 WHERE id = $1`, id, pages)
}

func chapterNumbers(t *testing.T, r response) []int {
	t.Helper()
	var refs []chapterRefJSON
	r.decode(t, &refs)
	out := make([]int, len(refs))
	for i, c := range refs {
		out[i] = c.Number
		if c.Title != fmt.Sprintf("第%d章", c.Number) {
			t.Errorf("chapter %d has title %q", c.Number, c.Title)
		}
	}
	return out
}

func span(from, to int) []int {
	var out []int
	for n := from; n <= to; n++ {
		out = append(out, n)
	}
	return out
}

func TestChaptersOutOfTurn(t *testing.T) {
	e := newEnv(t)
	site := &tocSite{total: 100, perPage: 20, silent: map[int]bool{5: true}, failing: map[int]events.ErrorKind{3: events.ErrKindNotFound}}
	e.serve(events.SubjectRPCTOC, site.answer)
	partialBook(t, e, 50, 40, 5)

	r := e.get("/xsw/api/books/50/chapters?page=2")
	expect(t, r, http.StatusOK)
	if got := chapterNumbers(t, r); fmt.Sprint(got) != fmt.Sprint(span(21, 40)) || len(site.requests()) != 0 {
		t.Errorf("stored page: %v, %d calls to the fetchers", got, len(site.requests()))
	}

	r = e.get("/xsw/api/books/50/chapters?page=4")
	expect(t, r, http.StatusOK)
	if got := chapterNumbers(t, r); fmt.Sprint(got) != fmt.Sprint(span(61, 80)) {
		t.Errorf("page fetched out of turn: %v", got)
	}
	if r.header.Get("X-Sync-Status") != "partial" || r.header.Get("X-Total-Count") != "40" {
		t.Errorf("headers %v", r.header)
	}
	if asked := site.requests(); len(asked) != 1 || asked[0].Page != 4 || asked[0].FirstNumber != 61 || asked[0].BookID != "50" {
		t.Errorf("fetchers asked %+v, want page 4 from chapter 61", asked)
	}

	r = e.get("/xsw/api/books/50/chapters?page=6") // past the 5 pages the site reported
	expect(t, r, http.StatusOK)
	if got := chapterNumbers(t, r); len(got) != 0 || len(site.requests()) != 1 {
		t.Errorf("past the end: %v, %d calls", got, len(site.requests()))
	}

	expectAccepted(t, e.get("/xsw/api/books/50/chapters?page=5")) // the source is slow
	r = e.get("/xsw/api/books/50/chapters?page=3")
	expect(t, r, http.StatusNotFound) // the source says the page does not exist
	if r.detail(t) == "" {
		t.Error("404 without detail")
	}
}

func TestChaptersOutOfTurnLearnsThePageSize(t *testing.T) {
	e := newEnv(t)
	site := &tocSite{total: 50, perPage: 20}
	e.serve(events.SubjectRPCTOC, site.answer)
	testdb.InsertBook(t, e.pool, 51, "Legacy refs", false)
	testdb.InsertChapters(t, e.pool, 51, 5) // stored before toc_page existed

	r := e.get("/xsw/api/books/51/chapters?page=2")
	expect(t, r, http.StatusOK)
	if got := chapterNumbers(t, r); fmt.Sprint(got) != fmt.Sprint(span(21, 40)) {
		t.Errorf("page 2: %v", got)
	}
	asked := site.requests()
	if len(asked) != 2 || asked[0].Page != 1 || asked[0].FirstNumber != 1 || asked[1].Page != 2 || asked[1].FirstNumber != 21 {
		t.Errorf("fetchers asked %+v, want page 1 (to learn its size) then page 2 from 21", asked)
	}
}

func TestChaptersOutOfTurnStoredLastPage(t *testing.T) {
	e := newEnv(t)
	site := &tocSite{total: 45, perPage: 20}
	e.serve(events.SubjectRPCTOC, site.answer)
	partialBook(t, e, 52, 45, 0) // every page stored, the count unknown
	r := e.get("/xsw/api/books/52/chapters?page=3")
	expect(t, r, http.StatusOK)
	if got := chapterNumbers(t, r); fmt.Sprint(got) != fmt.Sprint(span(41, 45)) || len(site.requests()) != 0 {
		t.Errorf("short last page: %v, asked %+v; a stored page is never fetched again", got, site.requests())
	}
}

func TestChaptersOutOfTurnNoFetcher(t *testing.T) {
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, 55, "Legacy refs", false)
	testdb.InsertChapters(t, e.pool, 55, 5) // page 1's size unknown: it would be fetched
	r := e.get("/xsw/api/books/55/chapters")
	expect(t, r, http.StatusOK)
	if got := chapterNumbers(t, r); len(got) != 5 {
		t.Errorf("served %v, want the 5 stored", got)
	}
	partialBook(t, e, 53, 20, 3)
	r = e.get("/xsw/api/books/53/chapters?page=2") // nothing stored to serve instead
	expect(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestChapterOutOfTurn(t *testing.T) {
	e := newEnv(t)
	site := &tocSite{total: 100, perPage: 20}
	e.serve(events.SubjectRPCTOC, site.answer)
	e.serve(events.SubjectRPCChapter, chapterReply("第六十五章的文字"))
	partialBook(t, e, 54, 20, 5)
	r := e.get("/xsw/api/books/54/chapters/65")
	expect(t, r, http.StatusOK)
	var ch chapterJSON
	r.decode(t, &ch)
	if ch.ChapterNum != 65 || ch.Text != "第六十五章的文字" || ch.URL != "https://m.xsw.tw/54/1065.html" {
		t.Errorf("chapter %+v", ch)
	}
	if asked := site.requests(); len(asked) != 1 || asked[0].Page != 4 || asked[0].FirstNumber != 61 {
		t.Errorf("fetchers asked %+v", asked)
	}
}
