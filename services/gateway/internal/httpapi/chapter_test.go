package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

func TestChapterStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "1", "Book", true)
	testdb.InsertChapters(t, e.pool, "1", 3)
	testdb.Exec(t, e.pool, `UPDATE chapters SET text = '第一段。' || chr(10) || '第二段。' WHERE book_id = '1' AND num = 2`)
	r := e.get("/xsw/api/books/1/chapters/2")
	expect(t, r, http.StatusOK)
	if got := keys(t, r.body); !slices.Equal(got, []string{"book_id", "chapter_num", "site", "text", "title", "url"}) {
		t.Errorf("keys %v", got)
	}
	var ch api.Chapter
	r.decode(t, &ch)
	want := api.Chapter{BookID: "1", ChapterNum: 2, Title: "第2章", URL: "https://m.xsw.tw/1/1002.html", Text: "第一段。\n第二段。", Site: "xsw"}
	if ch != want {
		t.Errorf("chapter = %+v, want %+v", ch, want)
	}
}

func chapterReply(text string) func([]byte) events.Payload {
	return func(data []byte) events.Payload {
		var req events.ChapterRequest
		if err := events.Decode(data, &req); err != nil {
			return &events.ChapterReply{Header: events.Header{Version: events.Version}, Error: &events.RPCError{Kind: events.ErrKindBadRequest, Message: err.Error()}}
		}
		return &events.ChapterReply{Header: events.Header{Version: events.Version}, Chapter: &events.ChapterFetched{
			Header: events.Header{Version: events.Version}, BookID: req.BookID, Number: req.Number, ChapterID: req.ChapterID,
			Title: "第" + req.ChapterID + "號", URL: "https://m.xsw.tw/" + req.BookID + "/" + req.ChapterID + ".html",
			Text: text, FetchedAt: time.Now()}}
	}
}

func TestChapterFetched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "1", "Book", true)
	testdb.InsertChapters(t, e.pool, "1", 3)
	var asked atomic.Int32
	var got atomic.Value
	answer := chapterReply("取來的文字")
	e.serve(events.SubjectRPCChapter, func(data []byte) events.Payload {
		asked.Add(1)
		var req events.ChapterRequest
		if events.Decode(data, &req) == nil {
			got.Store(req)
		}
		return answer(data)
	})
	for range 2 {
		r := e.get("/xsw/api/books/1/chapters/3")
		expect(t, r, http.StatusOK)
		var ch api.Chapter
		r.decode(t, &ch)
		if ch.Text != "取來的文字" || ch.ChapterNum != 3 || ch.BookID != "1" || ch.Title != "第1003號" {
			t.Errorf("chapter = %+v", ch)
		}
	}
	if req, _ := got.Load().(events.ChapterRequest); req.BookID != "1" || req.ChapterID != "1003" || req.Number != 3 {
		t.Errorf("fetcher was asked %+v", req)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("fetcher asked %d times, want 1 (then cached)", n)
	}
	expect(t, e.get("/xsw/api/books/1/chapters/3?nocache=true"), http.StatusOK)
	if n := asked.Load(); n != 2 {
		t.Errorf("fetcher asked %d times after nocache=true, want 2", n)
	}
}

func TestChapterFetchFailures(t *testing.T) {
	t.Parallel()
	replyErr := func(kind events.ErrorKind) func([]byte) events.Payload {
		return func([]byte) events.Payload {
			return &events.ChapterReply{Header: events.Header{Version: events.Version}, Error: rpcErr(kind)}
		}
	}
	tests := []struct {
		name   string
		answer func([]byte) events.Payload
		want   int
	}{
		{"not found", replyErr(events.ErrKindNotFound), http.StatusNotFound},
		{"source", replyErr(events.ErrKindSource), http.StatusBadGateway},
		{"parse", replyErr(events.ErrKindParse), http.StatusBadGateway},
		{"circuit", replyErr(events.ErrKindCircuit), http.StatusBadGateway},
		{"timeout", replyErr(events.ErrKindTimeout), http.StatusGatewayTimeout},
		{"empty reply", func([]byte) events.Payload {
			return &events.ChapterReply{Header: events.Header{Version: events.Version}}
		}, http.StatusBadGateway},
		{"no reply in time", func([]byte) events.Payload { return nil }, http.StatusAccepted},
		{"no fetcher", nil, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			testdb.InsertBook(t, e.pool, "1", "Book", true)
			testdb.InsertChapters(t, e.pool, "1", 3)
			if tt.answer != nil {
				e.serve(events.SubjectRPCChapter, tt.answer)
			}
			r := e.get("/xsw/api/books/1/chapters/1")
			if tt.want == http.StatusAccepted {
				expectAccepted(t, r)
				var body map[string]any
				r.decode(t, &body)
				if body["book_id"] != "1" || body["chapter_num"] != 1.0 {
					t.Errorf("202 body = %s", r.body)
				}
				return
			}
			expect(t, r, tt.want)
			if r.detail(t) == "" {
				t.Error("empty detail")
			}
		})
	}
}

func TestChapterNotStoredYet(t *testing.T) {
	t.Parallel()
	t.Run("beyond a complete book", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		testdb.InsertBook(t, e.pool, "1", "Book", true)
		testdb.InsertChapters(t, e.pool, "1", 3)
		r := e.get("/xsw/api/books/1/chapters/4")
		expect(t, r, http.StatusNotFound)
		if d := r.detail(t); !strings.Contains(d, "3 chapters") {
			t.Errorf("detail %q", d)
		}
		if n := e.stored(); n != 0 {
			t.Errorf("%d requests stored", n)
		}
	})
	t.Run("unknown book", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		expectAccepted(t, e.get("/xsw/api/books/77/chapters/1"))
		if _, ok := e.waiting("77")[events.LaneInteractive]; !ok {
			t.Error("no interactive request for the unknown book")
		}
	})
	t.Run("indexed while waiting", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *Config) { c.InteractiveWait = 10 * time.Second })
		testdb.InsertBook(t, e.pool, "5", "Partial", false)
		testdb.InsertChapters(t, e.pool, "5", 2)
		e.serve(events.SubjectRPCChapter, chapterReply("第七章的文字"))
		e.onRequest("5", func() {
			e.exec(`INSERT INTO chapters (site, book_id, num, chapter_id, title, url)
				SELECT 'xsw', '5', k, (1000 + k)::text, '第' || k || '章', 'u' FROM generate_series(3, 7) AS k`)
			e.publishIndexed("5", 7, false)
		})
		r := e.get("/xsw/api/books/5/chapters/7")
		expect(t, r, http.StatusOK)
		var ch api.Chapter
		r.decode(t, &ch)
		if ch.Text != "第七章的文字" || ch.ChapterNum != 7 {
			t.Errorf("chapter = %s", r.body)
		}
	})
}

func TestChapterBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"/x/chapters/1", "/1/chapters/0", "/1/chapters/1000001", "/1/chapters/one", "/1/chapters/1?nocache=sure"} {
		r := e.get("/xsw/api/books" + p)
		expect(t, r, http.StatusBadRequest)
		if r.detail(t) == "" {
			t.Errorf("%s: empty detail", p)
		}
	}
}
