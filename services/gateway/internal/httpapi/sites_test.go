package httpapi

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

func TestSitesListing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.describe(events.SiteInfo{ID: "toy", Name: "Toy", BaseURL: "https://toy.example:8443", BookIDPattern: toyBookPattern,
		RateInterval: 1, Interval: 6, State: events.SiteThrottled})
	testkit.Eventually(t, 10*time.Second, "toy's new state", func() bool {
		st, _ := e.sites.Get(t.Context(), "toy")
		return st.State == events.SiteThrottled
	})
	r := e.get("/xsw/api/sites")
	expect(t, r, http.StatusOK)
	want := `[{"id":"xsw","name":"m.xsw.tw","base_url":"https://m.xsw.tw","default":true,"state":"ok","rate_interval_seconds":2},` +
		`{"id":"toy","name":"Toy","base_url":"https://toy.example:8443","default":false,"state":"throttled","rate_interval_seconds":1}]`
	if string(r.body) != want {
		t.Errorf("sites\n got %s\nwant %s", r.body, want)
	}

	// A site no fetcher has described: its configuration only.
	e.forget("toy")
	r = e.get("/xsw/api/sites")
	expect(t, r, http.StatusOK)
	want = `[{"id":"xsw","name":"m.xsw.tw","base_url":"https://m.xsw.tw","default":true,"state":"ok","rate_interval_seconds":2},` +
		`{"id":"toy","name":"toy","base_url":"https://toy.example","default":false,"state":"unknown","rate_interval_seconds":1}]`
	if string(r.body) != want {
		t.Errorf("sites with toy undescribed\n got %s\nwant %s", r.body, want)
	}
}

func TestUnknownSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.record()
	testdb.InsertBook(t, e.pool, "1", "One", true)
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, "/xsw/api/sites/nope/books/1"},
		{http.MethodGet, "/xsw/api/sites/nope/books/1/chapters?all=true"},
		{http.MethodGet, "/xsw/api/sites/nope/books/1/chapters/1"},
		{http.MethodGet, "/xsw/api/sites/nope/categories"},
		{http.MethodGet, "/xsw/api/sites/nope/categories/1/books"},
		{http.MethodGet, "/xsw/api/sites/nope/search?q=x"},
		{http.MethodGet, "/xsw/api/search?q=x&site=nope"},
		{http.MethodGet, "/xsw/api/sites/XSW/books/1"},
		{http.MethodGet, "/xsw/api/sites/x.y/books/1"},
		{http.MethodPost, "/xsw/api/admin/jobs/sync/1?site=nope"},
		{http.MethodPost, "/xsw/api/admin/jobs/force-resync/1?site=nope"},
		{http.MethodPost, "/xsw/api/admin/jobs/dead/1/replay?site=nope"},
		{http.MethodPost, "/xsw/api/admin/books/1/accept-shrink?site=nope"},
		{http.MethodPost, "/xsw/api/admin/cache/invalidate/1?site=nope"},
		{http.MethodDelete, "/xsw/api/admin/cache/chapters/1?site=nope"},
		{http.MethodPost, "/xsw/api/admin/crawl/categories?site=nope&categories=1"},
	} {
		r := e.admin(tt.method, tt.path)
		expect(t, r, http.StatusNotFound)
		if d := r.detail(t); !strings.Contains(d, "unknown site") || !strings.Contains(d, "xsw, toy") {
			t.Errorf("%s %s: detail %q, want it to name the sites served", tt.method, tt.path, d)
		}
	}
	if got := rec.subjects(); len(got) != 0 {
		t.Errorf("published %v for unknown sites", got)
	}
	expect(t, e.get("/xsw/api/sites/nope"), http.StatusNotFound) // not a route
}

// fetcherCalls counts every request/reply call a test fetcher gets.
// fetcherCalls counts the calls a test fetcher gets, answering none.
type fetcherCalls struct{ n atomic.Int32 }

func (c *fetcherCalls) answer(data []byte) events.Payload {
	c.n.Add(1)
	return nil
}

// countCalls makes the test fetcher count every call it gets, of every kind.
func (e *env) countCalls() *fetcherCalls {
	calls := &fetcherCalls{}
	for _, subject := range []string{events.SubjectRPCRefs, events.SubjectRPCChapter, events.SubjectRPCCategories, events.SubjectRPCListing} {
		e.serve(subject, calls.answer)
	}
	return calls
}

// TestNonCanonicalIDRefused is the case that left book 1000005 served with no chapter:
// 01000005 is not how m.xsw.tw writes a book id, so it is refused before anything is
// queued or fetched, wherever it comes in.
func TestNonCanonicalIDRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	calls := e.countCalls()
	testdb.InsertBook(t, e.pool, "1000005", "九章之書", false)
	testdb.InsertChapters(t, e.pool, "1000005", 9)
	rec := e.record()
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, "/xsw/api/books/01000005/chapters?all=true"},
		{http.MethodGet, "/xsw/api/books/01000005/chapters?page=2"},
		{http.MethodGet, "/xsw/api/books/01000005"},
		{http.MethodGet, "/xsw/api/books/01000005/chapters/1"},
		{http.MethodGet, "/xsw/api/sites/xsw/books/01000005/chapters?all=true"},
		{http.MethodGet, "/xsw/api/books/1000005a/chapters?all=true"},
		{http.MethodGet, "/xsw/api/books/1234567890123/chapters?all=true"},
		{http.MethodGet, "/xsw/api/categories/01/books"},
		{http.MethodPost, "/xsw/api/admin/jobs/sync/01000005"},
		{http.MethodPost, "/xsw/api/admin/jobs/force-resync/01000005"},
		{http.MethodPost, "/xsw/api/admin/jobs/dead/01000005/replay"},
		{http.MethodPost, "/xsw/api/admin/books/01000005/accept-shrink"},
		{http.MethodPost, "/xsw/api/admin/crawl/categories?categories=01"},
		{http.MethodGet, "/xsw/api/sites/toy/books/CR382B"},
	} {
		r := e.admin(tt.method, tt.path)
		expect(t, r, http.StatusBadRequest)
		if d := r.detail(t); !strings.Contains(d, "is not how site") {
			t.Errorf("%s %s: detail %q", tt.method, tt.path, d)
		}
	}
	// The requests that would have followed would have been published by now.
	if err := e.srv.Shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := rec.subjects(); len(got) != 0 {
		t.Errorf("published %v for a book id the site does not write", got)
	}
	if n := calls.n.Load(); n != 0 {
		t.Errorf("%d calls to the fetchers", n)
	}
	if n := e.stored(); n != 0 {
		t.Errorf("%d requests stored", n)
	}
	var chapters int
	if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM chapters WHERE book_id = '1000005'`).Scan(&chapters); err != nil || chapters != 9 {
		t.Errorf("book 1000005 holds %d chapters (%v), want its 9", chapters, err)
	}
}

// TestUndescribedSite checks what is served for a site no fetcher has described: what
// the database holds, and 503 with Retry-After for anything that would be queued or
// fetched, which never is.
func TestUndescribedSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	calls := e.countCalls()
	testdb.InsertBook(t, e.pool, "1000005", "九章之書", false)
	testdb.InsertChapters(t, e.pool, "1000005", 9)
	testdb.Exec(t, e.pool, `UPDATE chapters SET text = '第一章的文字' WHERE book_id = '1000005' AND num = 1`)
	testdb.Exec(t, e.pool, `INSERT INTO categories (site, id, name, url) VALUES ('xsw', '1', '玄幻小說', 'u')`)
	e.forget("xsw")
	rec := e.record()

	// Served from the database.
	for _, path := range []string{"/xsw/api/books/1000005", "/xsw/api/books/1000005/chapters?all=true",
		"/xsw/api/books/1000005/chapters/1", "/xsw/api/categories", "/xsw/api/sites/xsw/books/1000005"} {
		expect(t, e.get(path), http.StatusOK)
	}
	if got := chapterNumbers(t, e.get("/xsw/api/books/1000005/chapters?all=true")); len(got) != 9 {
		t.Errorf("stored chapters %v, want 9", got)
	}
	// Anything that would be queued or fetched.
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, "/xsw/api/books/01000005/chapters?all=true"},
		{http.MethodGet, "/xsw/api/books/777"},
		{http.MethodGet, "/xsw/api/books/1000005/chapters?page=2"}, // chapters 21.. are not stored
		{http.MethodGet, "/xsw/api/books/1000005/chapters/2"},      // its text is not stored
		{http.MethodGet, "/xsw/api/books/1000005/chapters/12"},
		{http.MethodGet, "/xsw/api/categories/1/books"},
		{http.MethodPost, "/xsw/api/admin/jobs/sync/1000005"},
		{http.MethodPost, "/xsw/api/admin/books/1000005/accept-shrink"},
	} {
		r := e.admin(tt.method, tt.path)
		expect(t, r, http.StatusServiceUnavailable)
		if r.header.Get("Retry-After") == "" || !strings.Contains(r.detail(t), "no fetcher has described site xsw") {
			t.Errorf("%s %s: Retry-After %q, detail %q", tt.method, tt.path, r.header.Get("Retry-After"), r.detail(t))
		}
	}
	if err := e.srv.Shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := rec.subjects(); len(got) != 0 {
		t.Errorf("published %v for a site no fetcher described", got)
	}
	if n := calls.n.Load(); n != 0 {
		t.Errorf("%d calls to the fetchers", n)
	}
}

// TestSameIDTwoSites stores a book of each site under one id: each is served apart, with
// its own site, chapters, texts, cache entries, reads and requests.
func TestSameIDTwoSites(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var reads []string
	e := newEnv(t, func(c *Config) {
		c.CountRead = func(key string) {
			mu.Lock()
			reads = append(reads, key)
			mu.Unlock()
		}
	})
	testdb.InsertBook(t, e.pool, "1721851", "萬古神帝", true)
	testdb.InsertChapters(t, e.pool, "1721851", 3)
	testdb.Exec(t, e.pool, `UPDATE chapters SET text = '神帝的文字' WHERE site = 'xsw' AND num = 2`)
	testdb.InsertSiteBook(t, e.pool, "toy", "1721851", "玩具書", true)
	testdb.InsertSiteChapters(t, e.pool, "toy", "1721851", 5)
	testdb.Exec(t, e.pool, `UPDATE chapters SET text = '玩具的文字' WHERE site = 'toy' AND num = 2`)
	testdb.Exec(t, e.pool, `UPDATE books SET volumes = '[{"title":"上卷","first_chapter":1},{"title":"下卷","first_chapter":4}]' WHERE site = 'toy'`)

	book := func(path string) api.Book {
		t.Helper()
		r := e.get(path)
		expect(t, r, http.StatusOK)
		var b api.Book
		r.decode(t, &b)
		return b
	}
	xsw, toy := book("/xsw/api/books/1721851"), book("/xsw/api/sites/toy/books/1721851")
	if xsw.Site != "xsw" || xsw.Name != "萬古神帝" || xsw.ChapterCount != 3 || xsw.Volumes == nil || len(xsw.Volumes) != 0 {
		t.Errorf("xsw's book %+v", xsw)
	}
	if toy.Site != "toy" || toy.Name != "玩具書" || toy.ChapterCount != 5 || toy.LastChapterURL != "https://toy.example/1721851/3.html" ||
		!slices.Equal(toy.Volumes, []api.Volume{{Title: "上卷", FirstChapter: 1}, {Title: "下卷", FirstChapter: 4}}) {
		t.Errorf("toy's book %+v", toy)
	}
	if !bytes.Contains(e.get("/xsw/api/books/1721851").body, []byte(`"volumes":[]`)) {
		t.Error("a book without volumes does not answer volumes []")
	}
	if a, b := e.get("/xsw/api/books/1721851"), e.get("/xsw/api/sites/xsw/books/1721851"); !bytes.Equal(a.body, b.body) {
		t.Errorf("the default site's book differs under /sites/xsw:\n%s\n%s", a.body, b.body)
	}

	for _, tt := range []struct {
		path, site string
		total      int
	}{
		{"/xsw/api/books/1721851/chapters?all=true", "xsw", 3},
		{"/xsw/api/sites/xsw/books/1721851/chapters?all=true", "xsw", 3},
		{"/xsw/api/sites/toy/books/1721851/chapters?all=true", "toy", 5},
	} {
		r := e.get(tt.path)
		expect(t, r, http.StatusOK)
		var refs []api.ChapterRef
		r.decode(t, &refs)
		if len(refs) != tt.total || r.header.Get("X-Site") != tt.site || r.header.Get("X-Total-Count") != strconv.Itoa(tt.total) ||
			!strings.HasPrefix(refs[0].URL, testdb.BaseURL(tt.site)) {
			t.Errorf("%s: %d refs, X-Site %q, first %+v", tt.path, len(refs), r.header.Get("X-Site"), refs[0])
		}
	}
	for path, want := range map[string]api.Chapter{
		"/xsw/api/books/1721851/chapters/2": {BookID: "1721851", ChapterNum: 2, Title: "第2章",
			URL: "https://m.xsw.tw/1721851/1002.html", Text: "神帝的文字", Site: "xsw"},
		"/xsw/api/sites/toy/books/1721851/chapters/2": {BookID: "1721851", ChapterNum: 2, Title: "第2章",
			URL: "https://toy.example/1721851/1002.html", Text: "玩具的文字", Site: "toy"},
	} {
		r := e.get(path)
		expect(t, r, http.StatusOK)
		var ch api.Chapter
		r.decode(t, &ch)
		if ch != want {
			t.Errorf("%s = %+v, want %+v", path, ch, want)
		}
	}

	// Each site's book is cached and dropped on its own.
	testdb.Exec(t, e.pool, `UPDATE books SET name = name || '（新）'`)
	e.indexedSite("toy", "1721851", 5, true)
	testkit.Eventually(t, 10*time.Second, "toy's book to be dropped", func() bool { return book("/xsw/api/sites/toy/books/1721851").Name == "玩具書（新）" })
	if got := book("/xsw/api/books/1721851").Name; got != "萬古神帝" {
		t.Errorf("xsw's book = %q after toy's was announced, want the cached one", got)
	}
	r := e.admin(http.MethodPost, "/xsw/api/admin/cache/invalidate/1721851?site=xsw")
	expect(t, r, http.StatusOK)
	if got := book("/xsw/api/books/1721851").Name; got != "萬古神帝（新）" {
		t.Errorf("xsw's book = %q after its invalidation", got)
	}

	mu.Lock()
	counted := map[string]int{}
	for _, k := range reads {
		counted[k]++
	}
	mu.Unlock()
	if counted["xsw.1721851"] == 0 || counted["toy.1721851"] == 0 || len(counted) != 2 {
		t.Errorf("reads counted %v, want keys xsw.1721851 and toy.1721851", counted)
	}
}

func TestAdminSyncSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	steps := []struct {
		path   string
		status int
		want   string // the body, for 200
	}{
		{"/xsw/api/admin/jobs/sync/cr382b?site=toy&priority=10", http.StatusOK,
			`{"book_id":"cr382b","force":false,"lane":"manual","priority":10,"site":"toy","status":"queued"}`},
		{"/xsw/api/admin/jobs/sync/1721851?site=toy", http.StatusOK,
			`{"book_id":"1721851","force":false,"lane":"manual","priority":10,"site":"toy","status":"queued"}`},
		{"/xsw/api/admin/jobs/sync/1721851", http.StatusOK,
			`{"book_id":"1721851","force":false,"lane":"manual","priority":10,"site":"xsw","status":"queued"}`},
		{"/xsw/api/admin/jobs/sync/1721851?site=xsw", http.StatusOK,
			`{"book_id":"1721851","force":false,"lane":"manual","priority":10,"site":"xsw","status":"already_queued"}`},
		{"/xsw/api/admin/jobs/force-resync/cr382b?site=toy", http.StatusOK,
			`{"book_id":"cr382b","force":true,"lane":"manual","priority":10,"site":"toy","status":"queued"}`},
		{"/xsw/api/admin/jobs/sync/cr382b", http.StatusBadRequest, ""}, // not an xsw id
		{"/xsw/api/admin/jobs/sync/CR382B?site=toy", http.StatusBadRequest, ""},
		{"/xsw/api/admin/jobs/sync/cr382b?site=czbooks", http.StatusNotFound, ""},
	}
	for _, s := range steps {
		r := e.admin(http.MethodPost, s.path)
		expect(t, r, s.status)
		if s.want != "" && string(r.body) != s.want {
			t.Errorf("%s: %s, want %s", s.path, r.body, s.want)
		}
	}
	if w := e.waitingSite("toy", "cr382b"); len(w) != 1 || !w[events.LaneManual].Force || w[events.LaneManual].Site != "toy" {
		t.Errorf("toy's cr382b waits %+v, want one forced manual request", w)
	}
	if len(e.waitingSite("toy", "1721851")) != 1 || len(e.waiting("1721851")) != 1 {
		t.Error("the two books 1721851 do not wait apart")
	}
	if n := e.stored(); n != 3 {
		t.Errorf("%d requests stored, want 3", n)
	}

	// Until a fetcher describes toy, nothing is queued for it.
	e.forget("toy")
	r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/sync/b2?site=toy")
	expect(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if len(e.waitingSite("toy", "b2")) != 0 {
		t.Error("a book of an undescribed site was queued")
	}
}

// TestAdminStatsSites checks how the job statistics name books: the seed's bare id for
// the default site's, site/id for another's.
func TestAdminStatsSites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	at := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	testdb.Exec(t, e.pool, `INSERT INTO job_history (job_id, site, book_id, lane, status, finished_at, error, permanent) VALUES
		('xsw.1234567-7', 'xsw', '1234567', 'prefetch', 'failed', $1, 'Timeout error', false),
		('toy.1234567-2', 'toy', '1234567', 'prefetch', 'failed', $1, 'source answered 404', true)`, at)
	e.putHeartbeat("fetcher-a", 2, "1721851", events.Key("toy", "cr382b"))
	r := e.admin(http.MethodGet, "/xsw/api/admin/jobs/stats")
	expect(t, r, http.StatusOK)
	var got api.JobStats
	r.decode(t, &got)
	if !slices.Equal(got.ActiveJobIDs, []string{"1721851", "toy/cr382b"}) {
		t.Errorf("active_job_ids %v", got.ActiveJobIDs)
	}
	if len(got.FailedJobs) != 2 || got.FailedJobs["1234567"].Error != "Timeout error" || !got.FailedJobs["toy/1234567"].Permanent {
		t.Errorf("failed_jobs %+v", got.FailedJobs)
	}
	r = e.admin(http.MethodGet, "/xsw/api/admin/stats")
	expect(t, r, http.StatusOK)
	var stats api.AdminStats
	r.decode(t, &stats)
	if !slices.Equal(stats.Jobs.ActiveJobIDs, []string{"1721851", "toy/cr382b"}) || len(stats.Sites) != 2 || stats.Sites[1].ID != "toy" ||
		!slices.Equal(stats.Fetchers[0].ActiveJobIDs, []string{"1721851", "toy/cr382b"}) {
		t.Errorf("stats jobs %+v, sites %+v, fetchers %+v", stats.Jobs, stats.Sites, stats.Fetchers)
	}
}

func TestDeadLettersSites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	at := time.Now()
	e.bury("1721851", events.LaneManual, 10, at)
	e.burySite("toy", "1721851", events.LanePrefetch, 0, at.Add(time.Second))
	r := e.admin(http.MethodGet, "/xsw/api/admin/jobs/dead")
	expect(t, r, http.StatusOK)
	var got struct {
		DeadLetters []api.DeadLetter `json:"dead_letters"`
	}
	r.decode(t, &got)
	if len(got.DeadLetters) != 2 || got.DeadLetters[0].Site != "toy" || got.DeadLetters[1].Site != "xsw" {
		t.Fatalf("dead letters %s", r.body)
	}
	r = e.admin(http.MethodPost, "/xsw/api/admin/jobs/dead/1721851/replay?site=toy")
	expect(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"site":"toy"`) {
		t.Errorf("replay %s", r.body)
	}
	if _, ok := e.waitingSite("toy", "1721851")[events.LanePrefetch]; !ok || len(e.waiting("1721851")) != 0 {
		t.Error("the replay did not request toy's book alone")
	}
	if n := e.deadLeft(); n != 1 {
		t.Errorf("%d dead letters left, want xsw's", n)
	}
	r = e.admin(http.MethodPost, "/xsw/api/admin/jobs/dead/replay_all")
	expect(t, r, http.StatusOK)
	if string(r.body) != `{"book_ids":["1721851"],"remaining":0,"replayed":1,"statuses":{"queued":1}}` {
		t.Errorf("replay_all %s", r.body)
	}
}

func TestListingSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var asked []events.ListingRequest
	var mu sync.Mutex
	e.serve(events.SubjectRPCListing, func(data []byte) events.Payload {
		var req events.ListingRequest
		if err := events.Decode(data, &req); err != nil {
			return &events.ListingReply{Header: events.Header{Version: events.Version}, Error: rpcErr(events.ErrKindBadRequest)}
		}
		mu.Lock()
		asked = append(asked, req)
		mu.Unlock()
		return &events.ListingReply{Header: events.Header{Version: events.Version}, Books: []events.ListingBook{
			{BookID: "cr382b", Name: "甲"}, {BookID: "00417", Name: "乙"}, {BookID: "Bad-Id", Name: "丙"}}}
	})
	e.serve(events.SubjectRPCCategories, func(data []byte) events.Payload {
		var req events.CategoriesRequest
		if err := events.Decode(data, &req); err != nil || req.Site != "toy" {
			return &events.CategoriesReply{Header: events.Header{Version: events.Version}, Error: rpcErr(events.ErrKindBadRequest)}
		}
		return categoriesReply(events.Category{ID: "xianxia", Name: "仙俠", URL: "https://toy.example/c/xianxia"})
	})
	r := e.get("/xsw/api/sites/toy/categories")
	expect(t, r, http.StatusOK)
	if string(r.body) != `[{"id":"xianxia","name":"仙俠","url":"https://toy.example/c/xianxia"}]` {
		t.Errorf("toy's categories %s", r.body)
	}
	r = e.get("/xsw/api/sites/toy/categories/xianxia/books?page=2")
	expect(t, r, http.StatusOK)
	var books []api.ListingBook
	r.decode(t, &books)
	if len(books) != 3 || books[0].Site != "toy" || *books[0].BookID != "cr382b" || *books[1].BookID != "00417" || books[2].BookID != nil {
		t.Errorf("toy's listing %s", r.body)
	}
	mu.Lock()
	if len(asked) != 1 || asked[0].Site != "toy" || asked[0].Category != "xianxia" || asked[0].Page != 2 {
		t.Errorf("fetchers asked %+v", asked)
	}
	mu.Unlock()
	testkit.Eventually(t, 10*time.Second, "2 prefetch requests", func() bool { return e.stored() == 2 })
	if req, ok := e.waitingSite("toy", "cr382b")[events.LanePrefetch]; !ok || req.Reason != "site toy category xianxia page 2" {
		t.Errorf("toy's cr382b: %+v (found %v)", req, ok)
	}
	if _, ok := e.waitingSite("toy", "00417")[events.LanePrefetch]; !ok {
		t.Error("toy's 00417 not queued")
	}
	expect(t, e.get("/xsw/api/sites/toy/categories/Bad.Id/books"), http.StatusBadRequest)
}

func TestSearchSite(t *testing.T) {
	t.Parallel()
	e := searchFixture(t)
	testdb.InsertSiteBook(t, e.pool, "toy", "1721851", "萬古神帝", true)
	for path, want := range map[string][]string{
		"/xsw/api/search?q=%E8%90%AC%E5%8F%A4%E7%A5%9E%E5%B8%9D&search_type=books":           {"xsw/1721851"},
		"/xsw/api/search?q=%E8%90%AC%E5%8F%A4%E7%A5%9E%E5%B8%9D&search_type=books&site=all":  {"toy/1721851", "xsw/1721851"},
		"/xsw/api/search?q=%E8%90%AC%E5%8F%A4%E7%A5%9E%E5%B8%9D&search_type=books&site=toy":  {"toy/1721851"},
		"/xsw/api/sites/toy/search?q=%E8%90%AC%E5%8F%A4%E7%A5%9E%E5%B8%9D&search_type=books": {"toy/1721851"},
		"/xsw/api/sites/xsw/search?q=%E8%90%AC%E5%8F%A4%E7%A5%9E%E5%B8%9D&search_type=books": {"xsw/1721851"},
	} {
		r := e.get(path)
		expect(t, r, http.StatusOK)
		var got api.Search
		r.decode(t, &got)
		var hits []string
		for _, h := range got.Results {
			hits = append(hits, h.Site+"/"+h.BookID)
		}
		if !slices.Equal(hits, want) {
			t.Errorf("%s: %v, want %v", path, hits, want)
		}
	}
}

func TestCrawlSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	crawl := func(query string) (int, events.CrawlRequested) {
		t.Helper()
		r := e.admin(http.MethodPost, "/xsw/api/admin/crawl/categories?"+query)
		if r.status != http.StatusAccepted {
			return r.status, events.CrawlRequested{}
		}
		var q struct {
			CrawlID string `json:"crawl_id"`
		}
		r.decode(t, &q)
		s, err := e.ns.JS.Stream(t.Context(), events.StreamCrawls)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := s.GetLastMsgForSubject(t.Context(), "xsw.crawl."+q.CrawlID)
		if err != nil {
			t.Fatal(err)
		}
		var req events.CrawlRequested
		if err := events.Decode(msg.Data, &req); err != nil {
			t.Fatal(err)
		}
		return r.status, req
	}
	status, req := crawl("site=toy&categories=xianxia,wuxia&pages=1-3")
	if status != http.StatusAccepted || req.Site != "toy" || !slices.Equal(req.Categories, []events.CategoryID{"xianxia", "wuxia"}) ||
		req.FromPage != 1 || req.ToPage != 3 {
		t.Errorf("toy's crawl %d %+v", status, req)
	}
	status, req = crawl("categories=1-3,7")
	if status != http.StatusAccepted || req.Site != "xsw" || !slices.Equal(req.Categories, []events.CategoryID{"1", "2", "3", "7"}) {
		t.Errorf("xsw's crawl %d %+v", status, req)
	}
	if status, _ := crawl("site=toy"); status != http.StatusBadRequest {
		t.Errorf("a crawl of a site without stored categories: %d, want 400", status)
	}
	testdb.Exec(t, e.pool, `INSERT INTO categories (site, id, name, url, position) VALUES
		('toy', 'wuxia', '武俠', 'w', 1), ('toy', 'xianxia', '仙俠', 'x', 0)`)
	status, req = crawl("site=toy")
	if status != http.StatusAccepted || !slices.Equal(req.Categories, []events.CategoryID{"xianxia", "wuxia"}) {
		t.Errorf("toy's crawl of its stored categories %d %+v", status, req)
	}
	for _, q := range []string{"categories=0", "categories=100", "categories=abc", "categories=1-99999999", "categories=a%20b", "site=toy&categories=A.B"} {
		if status, _ := crawl(q); status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, status)
		}
	}
}

func TestParseCategories(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "1-7", want: []string{"1", "2", "3", "4", "5", "6", "7"}},
		{in: "3", want: []string{"3"}},
		{in: "5-6,1,3,5", want: []string{"5", "6", "1", "3"}},
		{in: "fantasy, romance,fantasy", want: []string{"fantasy", "romance"}},
		{in: "sci-fi", want: []string{"sci-fi"}},
		{in: "a-1", want: []string{"a-1"}},
		{in: "2020-2021", want: []string{"2020-2021"}},
		{in: "01-03", want: []string{"01-03"}},
		{in: "8-9", want: []string{"8", "9"}},
		{in: "7-1", wantErr: true},
		{in: "1-2000", wantErr: true},
		{in: "a b", wantErr: true},
		{in: "", wantErr: true},
		{in: "1,,2", wantErr: true},
	}
	for _, tt := range tests {
		// The site spells its categories as numbers or as words, or as years joined by '-'.
		isID := func(id string) bool { return id == "2020-2021" || !strings.ContainsAny(id, "-, ") }
		got, err := parseCategories(tt.in, isID)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !slices.Equal(got, tt.want)) {
			t.Errorf("parseCategories(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestRefusingSite: while the fetchers report that toy refuses us, a reader who needs a
// page of it hears so at once (503 naming the site's answer, Retry-After until the next
// probe) without a call to a fetcher, a book not stored is queued to be fetched when the
// site lets us in, what is stored is still served, and the other site is untouched.
func TestRefusingSite(t *testing.T) {
	e := newEnv(t)
	calls := e.countCalls()
	probe := time.Now().Add(90 * time.Second).UTC().Truncate(time.Second)
	e.describe(events.SiteInfo{ID: "toy", Name: "Toy", BaseURL: "https://toy.example", BookIDPattern: toyBookPattern,
		RateInterval: 1, Interval: 1, State: events.SiteRefused, Detail: "toy: refused, HTTP 403 (Cloudflare)", Until: &probe})
	testkit.Eventually(t, 10*time.Second, "toy refused", func() bool {
		st, _ := e.sites.Get(t.Context(), "toy")
		return st.State == events.SiteRefused
	})
	testdb.InsertSiteBook(t, e.pool, "toy", "ab1", "存書", true)
	testdb.InsertSiteChapters(t, e.pool, "toy", "ab1", 3)
	rec := e.record()

	for _, path := range []string{
		"/xsw/api/sites/toy/books/ab2",
		"/xsw/api/sites/toy/books/ab2/chapters?all=true",
		"/xsw/api/sites/toy/books/ab1/chapters/1",
		"/xsw/api/sites/toy/categories",
	} {
		start := time.Now()
		r := e.get(path)
		expect(t, r, http.StatusServiceUnavailable)
		if d := r.detail(t); !strings.Contains(d, "toy: refused, HTTP 403 (Cloudflare)") {
			t.Errorf("%s: detail %q, want the site's answer", path, d)
		}
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 60 || ra > 91 {
			t.Errorf("%s: Retry-After %q, want the seconds until the probe", path, r.header.Get("Retry-After"))
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s took %v, want an answer at once", path, took)
		}
	}
	if n := calls.n.Load(); n != 0 {
		t.Errorf("%d calls to fetchers for a site that refuses us", n)
	}
	testkit.Eventually(t, 10*time.Second, "the unstored book queued", func() bool {
		return slices.Contains(rec.subjects(), events.RequestSubject(events.LaneInteractive, "toy", "ab2"))
	})
	// Stored: served as ever.
	expect(t, e.get("/xsw/api/sites/toy/books/ab1"), http.StatusOK)
	expect(t, e.get("/xsw/api/sites/toy/books/ab1/chapters?all=true"), http.StatusOK)
	// Listed with its answer and the next probe.
	r := e.get("/xsw/api/sites")
	expect(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"state":"refused","rate_interval_seconds":1,"detail":"toy: refused, HTTP 403 (Cloudflare)","until":"`+probe.Format(time.RFC3339)+`"`) {
		t.Errorf("sites %s, want toy refused with its detail and next probe", r.body)
	}
}

// TestQueueingWhileRefusedIsCharged: a book queued while its site refuses us costs the
// site its pages once it lets us in again, so the queueing is charged to the client's
// share: a client whose share is spent hears of the refusal and queues nothing more,
// while asking again for a book already queued costs nothing.
func TestQueueingWhileRefusedIsCharged(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SourceRateLimit = 2 * events.InteractivePagesPerBook })
	e.describe(events.SiteInfo{ID: "toy", Name: "Toy", BaseURL: "https://toy.example", BookIDPattern: toyBookPattern,
		RateInterval: 1, Interval: 1, State: events.SiteRefused, Detail: "toy: refused, HTTP 403"})
	testkit.Eventually(t, 10*time.Second, "toy refused", func() bool {
		st, _ := e.sites.Get(t.Context(), "toy")
		return st.State == events.SiteRefused
	})
	rec := e.record()
	ask := func(id string, queued bool) {
		t.Helper()
		r := e.get("/xsw/api/sites/toy/books/" + id)
		expect(t, r, http.StatusServiceUnavailable)
		if d := r.detail(t); strings.Contains(d, "the book is queued") != queued {
			t.Errorf("book %s: detail %q, want queued %v", id, d, queued)
		}
	}
	ask("ab1", true)
	ask("ab1", true) // queued already: free
	ask("ab2", true)
	ask("ab3", false) // the share is spent
	testkit.Eventually(t, 10*time.Second, "two books queued", func() bool {
		return slices.Contains(rec.subjects(), events.RequestSubject(events.LaneInteractive, "toy", "ab2"))
	})
	for _, s := range rec.subjects() {
		if s == events.RequestSubject(events.LaneInteractive, "toy", "ab3") {
			t.Errorf("ab3 queued for a client whose share is spent")
		}
	}
}

// TestAcceptShrinkWhileRefused: while a site refuses us, the sync an acceptance of a
// shrink waits for could not run, so nothing is accepted or requested.
func TestAcceptShrinkWhileRefused(t *testing.T) {
	e := newEnv(t)
	e.describe(events.SiteInfo{ID: "toy", Name: "Toy", BaseURL: "https://toy.example", BookIDPattern: toyBookPattern,
		RateInterval: 1, Interval: 1, State: events.SiteRefused, Detail: "toy: refused, HTTP 403"})
	testkit.Eventually(t, 10*time.Second, "toy refused", func() bool {
		st, _ := e.sites.Get(t.Context(), "toy")
		return st.State == events.SiteRefused
	})
	testdb.InsertSiteBook(t, e.pool, "toy", "ab1", "存書", false)
	rec := e.record()
	r := e.request(http.MethodPost, "/xsw/api/admin/books/ab1/accept-shrink?site=toy", "Authorization", "Bearer "+adminToken)
	expect(t, r, http.StatusServiceUnavailable)
	if d := r.detail(t); !strings.Contains(d, "toy: refused, HTTP 403") {
		t.Errorf("detail %q, want the site's answer", d)
	}
	if err := e.srv.Shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := rec.subjects(); len(got) != 0 {
		t.Errorf("published %v while the site refuses us", got)
	}
}
