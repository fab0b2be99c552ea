package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/testkit"
)

// TestCrawlWholeCategories crawls two categories through the admin API: every book of
// their listing pages ends up indexed, and the crawl's progress is visible until done.
func TestCrawlWholeCategories(t *testing.T) {
	t.Parallel()
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 2, 25 // pages 1 and 2 of each, page 3 past the end
	cfg.MinChapters, cfg.MaxChapters = 5, 30
	s := start(t, cfg, nil)
	var queued struct {
		Status  string `json:"status"`
		CrawlID string `json:"crawl_id"`
		Pages   int    `json:"pages"`
	}
	if code := s.post(t, "/xsw/api/admin/crawl/categories?categories=1-2&pages=1-5", &queued); code != http.StatusAccepted || queued.CrawlID == "" || queued.Pages != 10 {
		t.Fatalf("crawl: %d %+v", code, queued)
	}
	var prog struct {
		State       string `json:"state"`
		PagesDone   int    `json:"pages_done"`
		PagesTotal  int    `json:"pages_total"`
		BooksSeen   int    `json:"books_seen"`
		BooksQueued int    `json:"books_queued"`
		Ended       []int  `json:"ended"`
	}
	testkit.Eventually(t, 60*time.Second, "crawl done", func() bool {
		s.adminGet(t, "/xsw/api/admin/crawl/"+queued.CrawlID, &prog)
		return prog.State == "done"
	})
	if prog.BooksSeen != 50 || prog.PagesDone != 10 || len(prog.Ended) != 2 {
		t.Errorf("progress %+v, want 50 books seen, 10 of 10 pages, both categories ended", prog)
	}
	want := map[string]int{}
	for _, b := range s.Site.Books() {
		want[b.ID] = b.ChapterCount
	}
	testkit.Eventually(t, 90*time.Second, "every crawled book indexed", func() bool { return len(incomplete(t, s.db, want)) == 0 })
	// The admin stats show the crawl and how fresh the books are.
	var stats struct {
		Freshness struct {
			Unfinished      int `json:"unfinished_books"`
			Finished        int `json:"finished_books"`
			CheckedLastHour int `json:"checked_last_hour"`
		} `json:"freshness"`
		Crawls []struct {
			State string `json:"state"`
		} `json:"crawls"`
	}
	s.adminGet(t, "/xsw/api/admin/stats", &stats)
	if f := stats.Freshness; f.Unfinished+f.Finished != 50 || f.CheckedLastHour != 50 || len(stats.Crawls) != 1 || stats.Crawls[0].State != "done" {
		t.Errorf("admin stats %+v, want 50 books checked in the last hour and the finished crawl", stats)
	}
	// Listing pages past a category's end are not asked for.
	for _, r := range s.Site.Requests() {
		if r.Path == "/fenlei1_4.html" || r.Path == "/fenlei2_4.html" {
			t.Errorf("crawl asked for %s past the category's end", r.Path)
		}
	}
}

// TestReadsMakeBooksPopular reads a book through the API and finds the reads counted in
// Postgres shortly after, with no write per read.
func TestReadsMakeBooksPopular(t *testing.T) {
	t.Parallel()
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 1, 3
	cfg.MinChapters, cfg.MaxChapters = 5, 5
	s := start(t, cfg, map[string]string{"READS_FLUSH_INTERVAL": "1s"})
	id := s.Site.Books()[0].ID
	s.get(t, "/xsw/api/categories/1/books", nil)
	testkit.Eventually(t, 30*time.Second, "book indexed", func() bool { return len(incomplete(t, s.db, map[string]int{id: 5})) == 0 })
	for i := 0; i < 3; i++ {
		s.get(t, "/xsw/api/books/"+id, nil)
	}
	s.get(t, "/xsw/api/books/"+id+"/chapters?all=true", nil)
	testkit.Eventually(t, 15*time.Second, "reads counted", func() bool {
		var n int64
		err := s.db.QueryRow(context.Background(), `SELECT read_count FROM books WHERE id = $1`, id).Scan(&n)
		return err == nil && n == 4
	})
}

// adminGet sends an admin GET and decodes the JSON answer.
func (s *system) adminGet(t *testing.T, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.GatewayURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return 0
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

// TestShortRefreshInterval runs the whole pipeline with REFRESH_INTERVAL=4s (and a
// SYNC_DEDUP_WINDOW below it, as a short interval needs): once a book is stored, the
// source sees its home page asked for again about every 4 s, not once a minute nor once
// per two-minute request-id window.
func TestShortRefreshInterval(t *testing.T) {
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 1, 1
	cfg.MinChapters, cfg.MaxChapters = 5, 5
	cfg.FinishedRatio = 0 // unfinished: due every REFRESH_INTERVAL
	s := start(t, cfg, map[string]string{"REFRESH_INTERVAL": "4s", "SYNC_DEDUP_WINDOW": "1s"})
	id := s.Site.Books()[0].ID
	s.get(t, "/xsw/api/categories/1/books", nil)
	var homes []time.Time
	testkit.Eventually(t, 40*time.Second, "the book synced, then refreshed three times", func() bool {
		homes = homes[:0]
		for _, r := range s.Site.Requests() {
			if r.Path == "/"+id+"/" {
				homes = append(homes, r.Time)
			}
		}
		return len(homes) >= 4
	})
	var gaps []time.Duration
	for i := 1; i < len(homes); i++ {
		gaps = append(gaps, homes[i].Sub(homes[i-1]).Round(time.Millisecond))
	}
	t.Logf("home page asked for %d times, %v apart", len(homes), gaps)
	// The sync, then three refreshes: those three within 14 s, none before the book was
	// due (a look every second finds it due only 4 s after its last check).
	if span := homes[3].Sub(homes[1]); span > 14*time.Second {
		t.Errorf("three refreshes took %v, want them within 14s with an interval of 4s", span)
	}
	for _, g := range gaps[:3] {
		if g < 3*time.Second {
			t.Errorf("home page asked for again %v after the last time, before the book was due", g)
		}
	}
}
