package httpapi

import (
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// refsSite plays the fetchers' chapter-refs calls for books of total chapters,
// recording what it was asked. What a page of the site is stays its own business: it
// answers the chapters asked for, those that exist.
type refsSite struct {
	total   int
	silent  map[int]bool // calls from these chapters are never answered
	failing map[int]events.ErrorKind
	delay   time.Duration

	mu    sync.Mutex
	asked []events.ChapterRefsRequest
}

func (s *refsSite) answer(data []byte) events.Payload {
	var req events.ChapterRefsRequest
	reply := &events.ChapterRefsReply{Header: events.Header{Version: events.Version}}
	if err := events.Decode(data, &req); err != nil {
		reply.Error = &events.RPCError{Kind: events.ErrKindBadRequest, Message: err.Error()}
		return reply
	}
	s.mu.Lock()
	s.asked = append(s.asked, req)
	s.mu.Unlock()
	time.Sleep(s.delay)
	if s.silent[req.From] {
		return nil
	}
	if kind, ok := s.failing[req.From]; ok {
		reply.Error = rpcErr(kind)
		return reply
	}
	reply.Refs = []events.ChapterRef{}
	for n := req.From; n <= min(req.To, s.total); n++ {
		reply.Refs = append(reply.Refs, events.ChapterRef{Number: n, ChapterID: fmt.Sprint(1000 + n), Title: fmt.Sprintf("第%d章", n),
			URL: fmt.Sprintf("%s/%s/%d.html", testdb.BaseURL(req.Site), req.BookID, 1000+n)})
	}
	return reply
}

func (s *refsSite) requests() []events.ChapterRefsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]events.ChapterRefsRequest(nil), s.asked...)
}

// partialBook stores xsw book id with chapters 1..stored listed by pages of 20 of the
// site's chapter list, and the page count the site reported.
func partialBook(t *testing.T, e *env, id string, stored, pages int) {
	t.Helper()
	testdb.InsertBook(t, e.pool, id, "Still syncing", false)
	testdb.InsertChapters(t, e.pool, id, stored)
	testdb.Exec(t, e.pool, `UPDATE chapters SET toc_page = (num - 1) / 20 + 1 WHERE site = 'xsw' AND book_id = $1`, id)
	testdb.Exec(t, e.pool, `UPDATE books SET toc_pages_seen = $2 WHERE site = 'xsw' AND id = $1`, id, pages)
}

func chapterNumbers(t *testing.T, r response) []int {
	t.Helper()
	var refs []api.ChapterRef
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
	t.Parallel()
	e := newEnv(t)
	site := &refsSite{total: 100, silent: map[int]bool{81: true}, failing: map[int]events.ErrorKind{41: events.ErrKindNotFound}}
	e.serve(events.SubjectRPCRefs, site.answer)
	partialBook(t, e, "50", 40, 5)

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
	if r.header.Get("X-Sync-Status") != "partial" || r.header.Get("X-Total-Count") != "40" || r.header.Get("X-Site") != "xsw" {
		t.Errorf("headers %v", r.header)
	}
	want := events.ChapterRefsRequest{Header: events.Header{Version: events.Version}, Site: "xsw", BookID: "50", From: 61, To: 80,
		Stored: events.StoredPages{Pages: []int{1, 2}, FirstPageRefs: 20, TotalPages: 5}}
	if asked := site.requests(); len(asked) != 1 || !reflect.DeepEqual(asked[0], want) {
		t.Errorf("fetchers asked %+v, want %+v", asked, want)
	}

	r = e.get("/xsw/api/books/50/chapters?page=6") // past the book's end: the fetcher finds none
	expect(t, r, http.StatusOK)
	if got := chapterNumbers(t, r); len(got) != 0 {
		t.Errorf("past the end: %v", got)
	}
	if asked := site.requests(); len(asked) != 2 || asked[1].From != 101 || asked[1].To != 120 {
		t.Errorf("fetchers asked %+v", asked)
	}

	expectAccepted(t, e.get("/xsw/api/books/50/chapters?page=5")) // the source is slow
	r = e.get("/xsw/api/books/50/chapters?page=3")
	expect(t, r, http.StatusNotFound) // the source says the chapters do not exist
	if r.detail(t) == "" {
		t.Error("404 without detail")
	}
}

// TestChaptersOutOfTurnAsksForWhatIsMissing checks that only the chapters a page lacks
// are asked for, with what is stored, and merged with the stored ones.
func TestChaptersOutOfTurnAsksForWhatIsMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	site := &refsSite{total: 50}
	e.serve(events.SubjectRPCRefs, site.answer)
	testdb.InsertBook(t, e.pool, "51", "Legacy refs", false)
	testdb.InsertChapters(t, e.pool, "51", 25) // stored before toc_page existed: no page known
	testdb.Exec(t, e.pool, `DELETE FROM chapters WHERE site = 'xsw' AND book_id = '51' AND num = 30`)

	r := e.get("/xsw/api/books/51/chapters?page=2")
	expect(t, r, http.StatusOK)
	if got := chapterNumbers(t, r); fmt.Sprint(got) != fmt.Sprint(span(21, 40)) {
		t.Errorf("page 2: %v", got)
	}
	want := events.ChapterRefsRequest{Header: events.Header{Version: events.Version}, Site: "xsw", BookID: "51", From: 26, To: 40}
	if asked := site.requests(); len(asked) != 1 || !reflect.DeepEqual(asked[0], want) {
		t.Errorf("fetchers asked %+v, want %+v", asked, want)
	}
}

// TestChaptersOutOfTurnOncePerRange checks that concurrent readers of one range of one
// book share one call, and that the same range of another site's book is another call.
func TestChaptersOutOfTurnOncePerRange(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.InteractiveWait = 5 * time.Second })
	site := &refsSite{total: 100, delay: 200 * time.Millisecond}
	e.serve(events.SubjectRPCRefs, site.answer)
	partialBook(t, e, "52", 20, 5)
	testdb.InsertSiteBook(t, e.pool, "toy", "52", "Toy", false)
	testdb.InsertSiteChapters(t, e.pool, "toy", "52", 20)
	const readers = 5
	var wg sync.WaitGroup
	for i := range 2 * readers {
		path := "/xsw/api/books/52/chapters?page=2&nocache=true"
		if i%2 == 1 {
			path = "/xsw/api/sites/toy/books/52/chapters?page=2&nocache=true"
		}
		wg.Go(func() {
			r := e.get(path)
			if r.status != http.StatusOK {
				t.Errorf("%s: %d %s", path, r.status, r.body)
			}
		})
	}
	wg.Wait()
	calls := map[string]int{}
	for _, req := range site.requests() {
		calls[req.Site+"/"+req.BookID+fmt.Sprintf(":%d-%d", req.From, req.To)]++
	}
	if len(calls) != 2 || calls["xsw/52:21-40"] != 1 || calls["toy/52:21-40"] != 1 {
		t.Errorf("calls %v, want one per site's book", calls)
	}
}

func TestChaptersOutOfTurnFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "55", "Legacy refs", false)
	testdb.InsertChapters(t, e.pool, "55", 5)
	r := e.get("/xsw/api/books/55/chapters") // no fetcher: what is stored is served
	expect(t, r, http.StatusOK)
	if got := chapterNumbers(t, r); len(got) != 5 {
		t.Errorf("served %v, want the 5 stored", got)
	}
	partialBook(t, e, "53", 20, 3)
	r = e.get("/xsw/api/books/53/chapters?page=2") // nothing stored to serve instead
	expect(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}

	e.serve(events.SubjectRPCRefs, func([]byte) events.Payload {
		return &events.ChapterRefsReply{Header: events.Header{Version: events.Version}} // no refs at all
	})
	r = e.get("/xsw/api/books/53/chapters?page=2&nocache=true")
	expect(t, r, http.StatusBadGateway)
	if r.detail(t) == "" {
		t.Error("502 without detail")
	}
}

func TestChapterOutOfTurn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	site := &refsSite{total: 100}
	e.serve(events.SubjectRPCRefs, site.answer)
	e.serve(events.SubjectRPCChapter, chapterReply("第六十五章的文字"))
	partialBook(t, e, "54", 20, 5)
	r := e.get("/xsw/api/books/54/chapters/65")
	expect(t, r, http.StatusOK)
	var ch api.Chapter
	r.decode(t, &ch)
	if ch.ChapterNum != 65 || ch.Text != "第六十五章的文字" || ch.URL != "https://m.xsw.tw/54/1065.html" || ch.Site != "xsw" {
		t.Errorf("chapter %+v", ch)
	}
	if asked := site.requests(); len(asked) != 1 || asked[0].From != 65 || asked[0].To != 65 || asked[0].Stored.FirstPageRefs != 20 {
		t.Errorf("fetchers asked %+v", asked)
	}
}

// TestChaptersOutOfTurnChargedByTheirPages: a chapter-list range fetched out of turn may
// cost the site events.MaxPagesPerRefsCall pages, and the reader's share is charged so.
func TestChaptersOutOfTurnChargedByTheirPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.SourceRateLimit = events.MaxPagesPerRefsCall + 1 })
	site := &refsSite{total: 100}
	e.serve(events.SubjectRPCRefs, site.answer)
	partialBook(t, e, "52", 20, 5)

	expect(t, e.get("/xsw/api/books/52/chapters?page=2"), http.StatusOK)
	r := e.get("/xsw/api/books/52/chapters?page=4")
	expect(t, r, http.StatusTooManyRequests)
	if n := len(site.requests()); n != 1 {
		t.Errorf("%d calls reached the fetchers, want 1: the share left after one range is less than a range's pages", n)
	}
}
