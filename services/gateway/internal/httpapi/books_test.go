package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

const insertBookSQL = `INSERT INTO books (site, id, name, author, checked_at) VALUES ('xsw', $1, $2, '作者', now())`

func TestBook(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "1721851", "萬古神帝", true)
	testdb.InsertChapters(t, e.pool, "1721851", 3)
	testdb.Exec(t, e.pool, `UPDATE books SET last_chapter_num = 3, finished = true, status = '已完成' WHERE id = '1721851'`)
	testdb.InsertBook(t, e.pool, "42", "No TOC yet", false)

	r := e.get("/xsw/api/books/1721851")
	expect(t, r, http.StatusOK)
	hasKeys(t, "book", r.body, "name", "author", "type", "status", "update", "last_chapter_title", "last_chapter_url",
		"last_chapter_number", "book_id", "description", "cover_url", "finished", "chapter_count", "sync_status",
		"synced_at", "checked_at", "changed_at")
	var b map[string]any
	r.decode(t, &b)
	want := map[string]any{
		"name": "萬古神帝", "author": "飛天魚", "type": "玄幻小說", "status": "已完成", "update": "2026/1/20 22:05:09",
		"last_chapter_title": "第3章", "last_chapter_url": "https://m.xsw.tw/1721851/3.html", "last_chapter_number": 3.0,
		"book_id": "1721851", "finished": true, "chapter_count": 3.0, "sync_status": "complete", "changed_at": nil,
	}
	for k, v := range want {
		if b[k] != v {
			t.Errorf("%s = %#v, want %#v", k, b[k], v)
		}
	}
	if s, _ := b["synced_at"].(string); s == "" {
		t.Errorf("synced_at = %#v, want an RFC 3339 time", b["synced_at"])
	} else if _, err := time.Parse(time.RFC3339, s); err != nil {
		t.Errorf("synced_at: %v", err)
	}

	r = e.get("/xsw/api/books/42")
	expect(t, r, http.StatusOK)
	r.decode(t, &b)
	if b["last_chapter_number"] != nil || b["sync_status"] != "none" || b["synced_at"] != nil {
		t.Errorf("book without TOC: %s", r.body)
	}
}

func TestBookBadID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range []string{"abc", "12a", "1234567890123", "-1"} {
		r := e.get("/xsw/api/books/" + id)
		expect(t, r, http.StatusBadRequest)
		if !strings.Contains(r.detail(t), "book_id") {
			t.Errorf("%s: detail %q does not name book_id", id, r.detail(t))
		}
	}
}

// TestBookMissingQueued checks that an unknown book is requested interactively and
// answered 202 with Retry-After when nothing is indexed within the wait.
func TestBookMissingQueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.get("/xsw/api/books/777")
	expectAccepted(t, r)
	var body map[string]any
	r.decode(t, &body)
	if body["status"] != "queued" || body["book_id"] != "777" {
		t.Errorf("202 body = %s", r.body)
	}
	req, ok := e.waiting("777")[events.LaneInteractive]
	if !ok || req.Priority != 100 {
		t.Errorf("interactive request = %+v (found %v)", req, ok)
	}

	// A sync's completion indexed before the book's home page leaves a row without
	// metadata: still not a book to serve.
	testdb.Exec(t, e.pool, `INSERT INTO books (site, id, name, chapter_total, synced_at) VALUES ('xsw', '778', '', 0, now())`)
	expectAccepted(t, e.get("/xsw/api/books/778"))
	if _, ok := e.waiting("778")[events.LaneInteractive]; !ok {
		t.Error("no interactive request for a book without metadata")
	}
}

// TestBookAwaitsIndexing plays the indexer: once the interactive request is stored, it
// writes the book and announces it; the waiting callers (sharing one wait) get the book.
func TestBookAwaitsIndexing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.InteractiveWait = 10 * time.Second })
	e.onRequest("555", func() {
		e.exec(insertBookSQL, "555", "等待之書")
		e.publishIndexed("555", 0, false)
	})
	const readers = 5
	var wg sync.WaitGroup
	results := make([]response, readers)
	for i := range readers {
		wg.Go(func() { results[i] = e.get("/xsw/api/books/555") })
	}
	wg.Wait()
	for i, r := range results {
		expect(t, r, http.StatusOK)
		var b api.Book
		r.decode(t, &b)
		if b.Name != "等待之書" || b.BookID != "555" {
			t.Errorf("reader %d got %s", i, r.body)
		}
	}
	if n := strings.Count(e.logs.String(), `msg="waiting for book"`); n != 1 {
		t.Errorf("%d waits for %d concurrent readers, want 1 shared wait\n%s", n, readers, e.logs.String())
	}
	if n := e.stored(); n != 1 {
		t.Errorf("%d requests stored, want 1", n)
	}
}

// fetcherError is a sync job's error as a fetcher reports it: a Go error chain that names
// internal addresses.
const fetcherError = "sync book 404: toc page 1: source: not found: https://m.xsw.tw/404/ (via proxy 10.0.3.7:3128)"

func TestBookFailedForGood(t *testing.T) {
	t.Parallel()
	t.Run("in the job history", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		testdb.Exec(t, e.pool, `INSERT INTO job_history (job_id, site, book_id, lane, status, finished_at, error, permanent)
			VALUES ('xsw.404-1', 'xsw', '404', 'prefetch', 'failed', now(), $1, true)`, fetcherError)
		r := e.get("/xsw/api/books/404")
		expect(t, r, http.StatusNotFound)
		if d := r.detail(t); d != "book 404 of site xsw could not be synced: the source has no such book" {
			t.Errorf("detail %q, want the reason in fixed words (the fetcher's error only in the log)", d)
		}
		if !strings.Contains(e.logs.String(), "10.0.3.7") {
			t.Error("the fetcher's error is not logged")
		}
		if n := e.stored(); n != 0 {
			t.Errorf("%d requests stored for a book that failed for good", n)
		}
	})
	t.Run("while waiting", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *Config) { c.InteractiveWait = 10 * time.Second })
		e.onRequest("405", func() {
			ev := events.JobEvent{Header: events.Header{Version: events.Version}, Kind: events.JobFailed, JobID: "xsw.405-1", Site: "xsw",
				BookID: "405", Lane: events.LaneInteractive, Attempt: 1, At: time.Now(), Error: fetcherError, Permanent: true}
			if _, err := broker.Publish(context.Background(), e.ns.JS, ev.Subject(), ev.MsgID(), &ev); err != nil {
				e.t.Errorf("publish failure: %v", err)
			}
		})
		r := e.get("/xsw/api/books/405")
		expect(t, r, http.StatusNotFound)
		if d := r.detail(t); d != "book 405 of site xsw could not be synced: the source has no such book" {
			t.Errorf("detail %q, want the reason in fixed words", d)
		}
	})
}

// TestCacheInvalidation checks that a book stays cached until the indexer announces it.
func TestCacheInvalidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "9", "Old name", true)
	testdb.InsertChapters(t, e.pool, "9", 2)
	name := func() string {
		r := e.get("/xsw/api/books/9")
		expect(t, r, http.StatusOK)
		var b api.Book
		r.decode(t, &b)
		return b.Name
	}
	chapters := func() string {
		r := e.get("/xsw/api/books/9/chapters")
		expect(t, r, http.StatusOK)
		return r.header.Get("X-Total-Count")
	}
	if got := name(); got != "Old name" {
		t.Fatalf("name = %q", got)
	}
	if got := chapters(); got != "2" {
		t.Fatalf("X-Total-Count = %s", got)
	}
	testdb.Exec(t, e.pool, `UPDATE books SET name = 'New name' WHERE id = '9'`)
	testdb.Exec(t, e.pool, `INSERT INTO chapters (site, book_id, num, chapter_id, title, url) VALUES ('xsw', '9', 3, '1003', '第3章', 'u')`)
	if got := name(); got != "Old name" {
		t.Fatalf("name = %q before the announcement, want the cached one", got)
	}
	if got := chapters(); got != "2" {
		t.Fatalf("X-Total-Count = %s before the announcement, want the cached 2", got)
	}
	e.indexed("9", 3, true)
	testkit.Eventually(t, 10*time.Second, "the cache to drop book 9", func() bool { return name() == "New name" })
	if got := chapters(); got != "3" {
		t.Errorf("X-Total-Count = %s after the announcement, want 3", got)
	}
}

func TestChapters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "1", "Complete", true)
	testdb.InsertChapters(t, e.pool, "1", 45)

	tests := []struct {
		query     string
		wantFirst int
		wantLen   int
	}{
		{"", 1, 20},
		{"?page=1", 1, 20},
		{"?page=2", 21, 20},
		{"?page=3", 41, 5},
		{"?page=4", 0, 0},
		{"?all=true", 1, 45},
		{"?all=1&page=3", 1, 45},
		{"?page=2&nocache=true", 21, 20},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := e.get("/xsw/api/books/1/chapters" + tt.query)
			expect(t, r, http.StatusOK)
			if got := r.header.Get("X-Total-Count"); got != "45" {
				t.Errorf("X-Total-Count = %q", got)
			}
			if got := r.header.Get("X-Sync-Status"); got != "complete" {
				t.Errorf("X-Sync-Status = %q", got)
			}
			var raw []json.RawMessage
			r.decode(t, &raw)
			if len(raw) != tt.wantLen {
				t.Fatalf("%d chapters, want %d", len(raw), tt.wantLen)
			}
			for i, c := range raw {
				if got := keys(t, c); !slices.Equal(got, []string{"number", "title", "url"}) {
					t.Fatalf("chapter keys %v", got)
				}
				var ch api.ChapterRef
				if err := json.Unmarshal(c, &ch); err != nil {
					t.Fatal(err)
				}
				n := tt.wantFirst + i
				if ch.Number != n || ch.Title != fmt.Sprintf("第%d章", n) || ch.URL != fmt.Sprintf("https://m.xsw.tw/1/%d.html", 1000+n) {
					t.Fatalf("chapter %d = %+v", i, ch)
				}
			}
		})
	}
}

func TestChaptersPartial(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "2", "Partial", false)
	testdb.InsertChapters(t, e.pool, "2", 5)
	testdb.Exec(t, e.pool, `INSERT INTO chapters (site, book_id, num, chapter_id, title, url) VALUES ('xsw', '3', 1, '1001', '第1章', 'u')`)
	// 4: a completed sync whose last table-of-contents pages are not stored yet.
	testdb.InsertBook(t, e.pool, "4", "Pages coming", true)
	testdb.InsertChapters(t, e.pool, "4", 3)
	testdb.Exec(t, e.pool, `UPDATE books SET chapter_total = 9 WHERE id = '4'`)
	for _, id := range []string{"2", "3", "4"} { // 3: chapters stored before the book's metadata
		r := e.get("/xsw/api/books/" + id + "/chapters")
		expect(t, r, http.StatusOK)
		if got := r.header.Get("X-Sync-Status"); got != "partial" {
			t.Errorf("book %s: X-Sync-Status = %q, want partial", id, got)
		}
		// The reader pulls the rest of the book ahead of the queue.
		testkit.Eventually(t, 10*time.Second, "an interactive request for book "+id, func() bool {
			_, ok := e.waiting(id)[events.LaneInteractive]
			return ok
		})
	}
}

func TestChaptersNocache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "1", "Book", false)
	testdb.InsertChapters(t, e.pool, "1", 2)
	expect(t, e.get("/xsw/api/books/1/chapters"), http.StatusOK)
	testdb.Exec(t, e.pool, `INSERT INTO chapters (site, book_id, num, chapter_id, title, url) VALUES ('xsw', '1', 3, '1003', '第3章', 'u')`)
	if got := e.get("/xsw/api/books/1/chapters").header.Get("X-Total-Count"); got != "2" {
		t.Errorf("cached X-Total-Count = %s, want 2", got)
	}
	if got := e.get("/xsw/api/books/1/chapters?nocache=true").header.Get("X-Total-Count"); got != "3" {
		t.Errorf("nocache X-Total-Count = %s, want 3", got)
	}
}

func TestChaptersBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, q := range []string{"/abc/chapters", "/1/chapters?page=0", "/1/chapters?page=x", "/1/chapters?page=10001",
		"/1/chapters?all=yes", "/1/chapters?nocache=2"} {
		r := e.get("/xsw/api/books" + q)
		expect(t, r, http.StatusBadRequest)
		if r.detail(t) == "" {
			t.Errorf("%s: empty detail", q)
		}
	}
}

func TestChaptersAwaitIndexing(t *testing.T) {
	t.Parallel()
	t.Run("nothing indexed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		r := e.get("/xsw/api/books/8/chapters")
		expectAccepted(t, r)
		var body map[string]any
		r.decode(t, &body)
		if body["status"] != "queued" || body["book_id"] != "8" {
			t.Errorf("202 body = %s", r.body)
		}
	})
	t.Run("indexed while waiting", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *Config) { c.InteractiveWait = 10 * time.Second })
		testdb.InsertBook(t, e.pool, "8", "Metadata only", false)
		e.onRequest("8", func() {
			e.publishIndexed("8", 0, false) // metadata alone does not end a chapter wait
			e.exec(`INSERT INTO chapters (site, book_id, num, chapter_id, title, url)
				SELECT 'xsw', '8', k, (1000 + k)::text, '第' || k || '章', 'u' FROM generate_series(1, 3) AS k`)
			e.publishIndexed("8", 3, false)
		})
		r := e.get("/xsw/api/books/8/chapters")
		expect(t, r, http.StatusOK)
		var got []api.ChapterRef
		r.decode(t, &got)
		if len(got) != 3 || r.header.Get("X-Total-Count") != "3" {
			t.Errorf("chapters = %s (total %s)", r.body, r.header.Get("X-Total-Count"))
		}
	})
}
