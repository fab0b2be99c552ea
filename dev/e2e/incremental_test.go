package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/testkit"
)

// TestIncrementalResync resyncs a known book as a refresh would: unchanged it costs one
// request (answered 304), and after it gains chapters only its home page and the last
// table-of-contents pages are fetched, with every chapter number kept.
func TestIncrementalResync(t *testing.T) {
	t.Parallel()
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 1, 1
	cfg.MinChapters, cfg.MaxChapters = 95, 95 // five pages of 20: the last holds 15
	cfg.Validators = true
	s := startBare(t, cfg)
	startProcess(t, "fetcher", fetcherEnv(s.natsURL, s.siteURL, map[string]string{"BG_JOB_RATE_LIMIT": "0"}))
	id := s.site.Books()[0].ID

	resync := func(known bool) []sitesim.Request {
		t.Helper()
		s.site.Reset()
		r := events.NewBookRequested("xsw", id, events.LaneRefresh, 0, false, "test", time.Now())
		if known {
			var chapters int
			var last *string
			if err := s.db.QueryRow(context.Background(),
				`SELECT (SELECT count(*) FROM chapters c WHERE c.site = b.site AND c.book_id = b.id), b.last_chapter_id
				 FROM books b WHERE b.site = 'xsw' AND b.id = $1`, id).Scan(&chapters, &last); err != nil {
				t.Fatal(err)
			}
			r.Known = &events.KnownBook{Chapters: chapters}
			if last != nil {
				r.Known.LastChapterID = *last
			}
		}
		var completed int
		_ = s.db.QueryRow(context.Background(), `SELECT count(*) FROM job_history WHERE status = 'completed'`).Scan(&completed)
		if _, err := broker.Publish(t.Context(), s.ns.JS, r.Subject(), "", &r); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 30*time.Second, "the resync recorded", func() bool {
			var n int
			_ = s.db.QueryRow(context.Background(), `SELECT count(*) FROM job_history WHERE status = 'completed'`).Scan(&n)
			return n == completed+1
		})
		s.waitAllSynced(t, []string{id}, 30*time.Second)
		return s.site.Requests()
	}
	paths := func(reqs []sitesim.Request) string {
		var out []string
		for _, r := range reqs {
			out = append(out, strings.TrimPrefix(r.Path, "/"+id+"/")+":"+strconv.Itoa(r.Status))
		}
		return strings.Join(out, " ")
	}
	first := resync(false)
	before := chapterIDs(t, s, id)
	if len(first) != 6 {
		t.Errorf("first sync: %d requests (%s), want 6 (home and five pages)", len(first), paths(first))
	}
	unchanged := resync(true)
	if len(unchanged) != 1 || unchanged[0].Status != 304 {
		t.Errorf("unchanged book: requests %s, want one answered 304", paths(unchanged))
	}
	if err := s.site.AddChapters(id, 3); err != nil {
		t.Fatal(err)
	}
	grew := resync(true)
	if got := paths(grew); got != ":200 page-5.html:200" {
		t.Errorf("book that gained 3 chapters: requests %q, want the home page and page 5 only", got)
	}
	if err := s.site.AddChapters(id, 10); err != nil {
		t.Fatal(err)
	}
	grew = resync(true)
	if got := paths(grew); got != ":200 page-5.html:200 page-6.html:200" {
		t.Errorf("book that gained 10 chapters: requests %q, want the home page, page 5 and page 6", got)
	}
	after := chapterIDs(t, s, id)
	if len(before) != 95 {
		t.Fatalf("%d chapters after the first sync, want 95", len(before))
	}
	for n, cid := range before {
		if after[n] != cid {
			t.Errorf("chapter %d was %s, now %s: numbers moved", n, cid, after[n])
		}
	}
	info, _ := s.site.Book(id)
	if len(after) != 108 || info.ChapterCount != 108 {
		t.Fatalf("%d chapters stored, site has %d, want 108", len(after), info.ChapterCount)
	}
	for i, c := range info.Chapters {
		if after[i+1] != c.ID {
			t.Fatalf("chapter %d stored as %s, site says %s", i+1, after[i+1], c.ID)
		}
	}
	t.Logf("requests per refresh: unchanged %d, +3 chapters %d, +10 chapters %d", len(unchanged), 2, len(grew))
}

// chapterIDs maps chapter number to chapter id for a book as stored.
func chapterIDs(t *testing.T, s *bare, id string) map[int]string {
	t.Helper()
	rows, err := s.db.Query(context.Background(), `SELECT num, chapter_id FROM chapters WHERE site = 'xsw' AND book_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int]string{}
	for rows.Next() {
		var n int
		var cid string
		if err := rows.Scan(&n, &cid); err != nil {
			t.Fatal(err)
		}
		out[n] = cid
	}
	return out
}
