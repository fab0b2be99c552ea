package httpapi

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/database"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// noLeak fails the test when body holds any of the strings.
func noLeak(t *testing.T, what string, body []byte, leaks ...string) {
	t.Helper()
	for _, l := range leaks {
		if strings.Contains(string(body), l) {
			t.Errorf("%s holds %q: %s", what, l, body)
		}
	}
}

// TestHealthNamesNoDatabase checks that the public /health names no database (no URL,
// user, host, port or name), no user part of a base URL, and quotes no error, healthy or
// not, while the admin statistics name the database without its password.
func TestHealthNamesNoDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A fetcher describes the default site with a user part in its base URL (its password
	// already masked, as fetchers do).
	e.describe(events.SiteInfo{ID: "xsw", Name: "m.xsw.tw", BaseURL: "https://reader:xxxxx@m.xsw.tw", BookIDPattern: xswBookPattern,
		CategoryIDPattern: xswCategoryPattern, RateInterval: 2, Interval: 2, State: events.SiteOK})
	testkit.Eventually(t, 10*time.Second, "the base URL with a user part", func() bool {
		st, _ := e.sites.Get(t.Context(), "xsw")
		return strings.Contains(st.BaseURL, "reader")
	})
	leaks := []string{"postgres", "127.0.0.1", "5432", "sslmode", "reader", "xxxxx"}

	r := e.get("/xsw/api/health")
	expect(t, r, http.StatusOK)
	var h struct {
		BaseURL  string            `json:"base_url"`
		Database string            `json:"database"`
		Checks   map[string]string `json:"checks"`
	}
	r.decode(t, &h)
	if h.BaseURL != "https://m.xsw.tw" || h.Database != "ok" || h.Checks["database"] != "ok" || h.Checks["nats"] != "ok" {
		t.Errorf("health %s: want base_url without its user part, database and checks ok", r.body)
	}
	noLeak(t, "health", r.body, leaks...)
	r = e.get("/xsw/api/sites")
	expect(t, r, http.StatusOK)
	noLeak(t, "sites", r.body, "reader", "xxxxx")

	// The administrators see which database, never its password.
	r = e.admin(http.MethodGet, "/xsw/api/admin/stats")
	expect(t, r, http.StatusOK)
	var stats struct {
		Database struct {
			URL string `json:"url"`
		} `json:"database"`
	}
	r.decode(t, &stats)
	if stats.Database.URL != testConfig().Database {
		t.Errorf("admin stats database.url = %q, want %q", stats.Database.URL, testConfig().Database)
	}

	// Degraded: "unavailable", and the reasons in the log only.
	e.pool.Close()
	e.ns.Shutdown()
	r = e.get("/xsw/api/health")
	expect(t, r, http.StatusServiceUnavailable)
	r.decode(t, &h)
	if h.Database != "unavailable" || h.Checks["database"] != "unavailable" || h.Checks["nats"] != "unavailable" {
		t.Errorf("degraded health %s: want database and both checks unavailable", r.body)
	}
	noLeak(t, "degraded health", r.body, append(leaks, "closed", "pool", "nats:", "connect")...)
	if logs := e.logs.String(); !strings.Contains(logs, "health degraded") || !strings.Contains(logs, "closed pool") {
		t.Errorf("the reasons of a degraded health are not logged:\n%s", logs)
	}
}

// TestHealthEstimatesSizes checks that /health reads the sizes of the tables from
// Postgres' statistics rather than counting them: with rows deleted since the last
// ANALYZE (autovacuum off), it still reports the sizes ANALYZE saw, while the admin
// statistics count exactly.
func TestHealthEstimatesSizes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, table := range []string{"books", "chapters", "job_history"} {
		e.exec(`ALTER TABLE ` + table + ` SET (autovacuum_enabled = off)`)
	}
	e.exec(`INSERT INTO books (site, id, name, checked_at) SELECT 'xsw', g::text, 'Book ' || g, now() FROM generate_series(1, 3000) g`)
	e.exec(`INSERT INTO chapters (site, book_id, num, chapter_id, title, url, text)
		SELECT 'xsw', (g % 3000 + 1)::text, g / 3000 + 1, g::text, 'Chapter', 'https://m.xsw.tw/x.html', CASE WHEN g % 4 = 0 THEN 'text' END
		FROM generate_series(0, 3999) g`)
	e.exec(`INSERT INTO job_history (job_id, site, book_id, lane, status, finished_at)
		SELECT 'j' || g, 'xsw', g::text, 'prefetch', CASE WHEN g % 5 = 0 THEN 'failed' ELSE 'completed' END, now()
		FROM generate_series(1, 2500) g`)
	e.exec(`ANALYZE books, chapters, job_history`)
	// Since: half of everything deleted, statistics untouched.
	e.exec(`DELETE FROM books WHERE id::int > 1500`)
	e.exec(`DELETE FROM chapters WHERE chapter_id::int >= 2000`)
	e.exec(`DELETE FROM job_history WHERE substr(job_id, 2)::int > 1500`)

	r := e.get("/xsw/api/health")
	expect(t, r, http.StatusOK)
	var h struct {
		CacheStats map[string]float64 `json:"cache_stats"`
		JobStats   map[string]any     `json:"job_stats"`
	}
	r.decode(t, &h)
	near := func(got, want float64) bool { return math.Abs(got-want) <= want/10 }
	for k, want := range map[string]float64{"books_in_db": 3000, "chapters_in_db": 4000, "chapters_with_content": 1000} {
		if !near(h.CacheStats[k], want) {
			t.Errorf("cache_stats.%s = %v, want about %v (the statistics, not a count): %s", k, h.CacheStats[k], want, r.body)
		}
	}
	if got, _ := h.JobStats["completed_count"].(float64); !near(got, 2000) {
		t.Errorf("job_stats.completed_count = %v, want about 2000 (the statistics): %s", h.JobStats["completed_count"], r.body)
	}

	r = e.admin(http.MethodGet, "/xsw/api/admin/stats")
	expect(t, r, http.StatusOK)
	var stats struct {
		Database map[string]any `json:"database"`
		Jobs     map[string]any `json:"jobs"`
	}
	r.decode(t, &stats)
	if stats.Database["books"] != 1500.0 || stats.Database["chapters"] != 2000.0 || stats.Database["chapters_with_content"] != 500.0 ||
		stats.Jobs["completed_count"] != 1200.0 {
		t.Errorf("admin stats %s: want the exact counts 1500 books, 2000 chapters, 500 texts, 1200 completed jobs", r.body)
	}
}

// internalText is what a fetcher's error message may hold that no client may read: an
// address, a Go error chain, a file path.
const internalText = "listing: source: get https://m.xsw.tw/fenlei1_1.html: dial tcp 10.0.3.7:443: connect: connection refused (/srv/fetcher/worker.go:211)"

var internalLeaks = []string{"10.0.3.7", "dial tcp", "/srv/", "worker.go", "connection refused", "listing:"}

// TestErrorBodiesHoldNoInternalText provokes each internal failure the API can meet and
// checks that the body holds only a fixed detail: fetcher errors of every kind carrying
// internal text, Postgres closed, NATS closed; the errors themselves go to the log.
func TestErrorBodiesHoldNoInternalText(t *testing.T) {
	t.Parallel()
	t.Run("fetcher errors", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			kind   events.ErrorKind
			status int
			detail string
		}{
			{events.ErrKindNotFound, http.StatusNotFound, "the source has no such page"},
			{events.ErrKindBadRequest, http.StatusBadRequest, "the fetcher refused the request"},
			{events.ErrKindTimeout, http.StatusGatewayTimeout, "the source timed out"},
			{events.ErrKindSource, http.StatusBadGateway, "the source failed"},
			{events.ErrKindParse, http.StatusBadGateway, "the source page could not be read"},
			{events.ErrKindCircuit, http.StatusBadGateway, "the source is failing, requests are paused"},
			{events.ErrKindBusy, http.StatusServiceUnavailable, "the source site is busy with other readers' requests; try again shortly"},
			{events.ErrKindRefused, http.StatusServiceUnavailable, "xsw: the site refuses us"},
			{"unheard-of", http.StatusBadGateway, "the source failed"},
		} {
			t.Run(string(tt.kind), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				e.serve(events.SubjectRPCListing, func([]byte) events.Payload {
					return &events.ListingReply{Header: events.Header{Version: events.Version},
						Error: &events.RPCError{Kind: tt.kind, Message: internalText}}
				})
				r := e.get("/xsw/api/categories/1/books")
				expect(t, r, tt.status)
				if d := r.detail(t); d != tt.detail {
					t.Errorf("detail %q, want %q", d, tt.detail)
				}
				noLeak(t, "error body", r.body, internalLeaks...)
				if !strings.Contains(e.logs.String(), "10.0.3.7") {
					t.Error("the fetcher's error is not logged")
				}
			})
		}
	})
	t.Run("a refusal in the fetchers' words for /sites", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.serve(events.SubjectRPCListing, func([]byte) events.Payload {
			return &events.ListingReply{Header: events.Header{Version: events.Version},
				Error: &events.RPCError{Kind: events.ErrKindRefused, Message: internalText}}
		})
		probe := time.Now().Add(time.Minute)
		e.describe(events.SiteInfo{ID: "xsw", Name: "m.xsw.tw", BaseURL: "https://m.xsw.tw", BookIDPattern: xswBookPattern,
			CategoryIDPattern: xswCategoryPattern, RateInterval: 2, Interval: 2, State: events.SiteRefused,
			Detail: "xsw: refused, HTTP 403 (Cloudflare)", Until: &probe})
		testkit.Eventually(t, 10*time.Second, "xsw refused", func() bool { _, refused := e.sites.Refused("xsw"); return refused })
		// Listings are refused at once while the site refuses us; a chapter's text is asked
		// for when the fetcher is the first to hear of the refusal.
		testdb.InsertBook(t, e.pool, "1", "One", true)
		testdb.InsertChapters(t, e.pool, "1", 1)
		e.serve(events.SubjectRPCChapter, func([]byte) events.Payload {
			return &events.ChapterReply{Header: events.Header{Version: events.Version},
				Error: &events.RPCError{Kind: events.ErrKindRefused, Message: internalText}}
		})
		for _, path := range []string{"/xsw/api/categories/1/books", "/xsw/api/books/1/chapters/1"} {
			r := e.get(path)
			expect(t, r, http.StatusServiceUnavailable)
			if d := r.detail(t); !strings.HasPrefix(d, "xsw: refused, HTTP 403 (Cloudflare)") {
				t.Errorf("%s: detail %q, want the site's answer as /sites tells it", path, d)
			}
			noLeak(t, path, r.body, internalLeaks...)
		}
	})
	t.Run("a sync that failed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *Config) { c.InteractiveWait = 10 * time.Second })
		e.onRequest("406", func() {
			ev := events.JobEvent{Header: events.Header{Version: events.Version}, Kind: events.JobFailed, JobID: "xsw.406-1", Site: "xsw",
				BookID: "406", Lane: events.LaneInteractive, Attempt: 1, At: time.Now(), Error: internalText}
			if _, err := broker.Publish(context.Background(), e.ns.JS, ev.Subject(), ev.MsgID(), &ev); err != nil {
				e.t.Errorf("publish failure: %v", err)
			}
		})
		r := e.get("/xsw/api/books/406")
		expect(t, r, http.StatusBadGateway)
		if d := r.detail(t); d != "sync of book 406 of site xsw failed: the source failed" {
			t.Errorf("detail %q", d)
		}
		noLeak(t, "error body", r.body, internalLeaks...)
	})
	t.Run("postgres closed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.pool.Close()
		for _, path := range []string{
			"/readyz", "/xsw/api/books/1", "/xsw/api/books/1/chapters", "/xsw/api/books/1/chapters/1",
			"/xsw/api/search?q=" + url.QueryEscape("萬古神帝"), "/xsw/api/search?q=x", "/xsw/api/admin/stats", "/xsw/api/admin/jobs/stats",
		} {
			r := e.admin(http.MethodGet, path)
			expect(t, r, http.StatusServiceUnavailable)
			if d := r.detail(t); d != "database unavailable" || r.header.Get("Retry-After") == "" {
				t.Errorf("%s: detail %q, Retry-After %q; want the fixed detail", path, d, r.header.Get("Retry-After"))
			}
			noLeak(t, path, r.body, "closed", "pool")
		}
	})
	t.Run("nats closed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.ns.Shutdown()
		// (What goes through JetStream, such as /admin/jobs/stats, answers the same
		// "message bus unavailable" once JetStream's own timeout, 15s, ends.)
		for _, tt := range []struct{ method, path string }{
			{http.MethodGet, "/readyz"},
			{http.MethodGet, "/xsw/api/readyz"},
			{http.MethodGet, "/xsw/api/categories"},
		} {
			r := e.admin(tt.method, tt.path)
			if r.status != http.StatusServiceUnavailable && r.status != http.StatusGatewayTimeout {
				t.Errorf("%s %s: status %d, want 503 or 504: %s", tt.method, tt.path, r.status, r.body)
			}
			d := r.detail(t)
			if d != "message bus unavailable" && d != "no fetcher is running" && !strings.HasPrefix(d, "no fetcher answered within") {
				t.Errorf("%s %s: detail %q, want a fixed one", tt.method, tt.path, d)
			}
			noLeak(t, tt.path, r.body, "nats:", "connection closed", "CLOSED")
		}
	})
}

// TestStatementTimeout checks that a query Postgres cancels at the statement timeout (a
// read of a locked table here) answers 503 with a fixed detail and Retry-After, never 500,
// on every path that reads Postgres.
func TestStatementTimeout(t *testing.T) {
	_, dsn := testdb.Pool(t)
	pool, err := database.Open(t.Context(), dsn, 1, database.StatementTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := newEnvOn(t, pool)
	testdb.InsertBook(t, pool, "1", "萬古神帝", true)
	testdb.InsertChapters(t, pool, "1", 2)

	locker, _ := testdb.Pool(t) // another connection, to the same server
	tx, err := locker.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	schema := dsn[strings.Index(dsn, "search_path=")+len("search_path="):]
	if _, err := tx.Exec(t.Context(), `LOCK TABLE `+schema+`.books, `+schema+`.chapters IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"/xsw/api/books/1", "/xsw/api/books/1/chapters", "/xsw/api/books/1/chapters/1",
		"/xsw/api/search?q=" + url.QueryEscape("萬古神帝"), "/xsw/api/search?q=" + url.QueryEscape("萬"), "/xsw/api/admin/stats",
	} {
		start := time.Now()
		r := e.admin(http.MethodGet, path)
		expect(t, r, http.StatusServiceUnavailable)
		if d := r.detail(t); d != "the database took too long to answer; try again shortly" || r.header.Get("Retry-After") == "" {
			t.Errorf("%s: detail %q, Retry-After %q", path, d, r.header.Get("Retry-After"))
		}
		noLeak(t, path, r.body, "57014", "statement timeout", "canceling")
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s took %v under a 300ms statement timeout", path, took)
		}
	}
	r := e.get("/xsw/api/health")
	expect(t, r, http.StatusServiceUnavailable)
	noLeak(t, "health", r.body, "57014", "statement timeout", "canceling")
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	expect(t, e.get("/xsw/api/books/1"), http.StatusOK)
}
