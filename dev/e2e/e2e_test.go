// Package e2e runs the all-in-one against the simulated site, over real HTTP, a real
// JetStream server and a real Postgres, and checks what a user was promised.
package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/dev/allinone"
	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/pgtest"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/fetcher/site"
)

// system is a running all-in-one.
type system struct {
	allinone.Running
	db *pgxpool.Pool
}

// freeAddr returns a loopback address with a port free a moment ago.
var freeAddr = proctest.FreeAddr

// start runs the all-in-one in demo mode with env on top of the test defaults, and
// stops it when the test ends.
func start(t *testing.T, site sitesim.Config, env map[string]string) *system {
	t.Helper()
	return startWith(t, site, env, nil)
}

// startWith is start with the fetcher's site adapters (the built-in ones when nil).
func startWith(t *testing.T, site sitesim.Config, env map[string]string, adapters site.Registry) *system {
	t.Helper()
	return startOpts(t, allinone.Options{Site: &site, Adapters: adapters}, env)
}

// startOpts is start with the all-in-one's options (Getenv and Demo are the test's own).
// It takes a testing.TB so that fuzz targets can start one too.
func startOpts(t testing.TB, opts allinone.Options, env map[string]string) *system {
	t.Helper()
	pool, dsn := pgtest.Pool(t)
	vars := map[string]string{
		"DATABASE_URL":      dsn,
		"DATA_DIR":          t.TempDir(),
		"HTTP_ADDR":         freeAddr(t),
		"BG_JOB_RATE_LIMIT": "0",
		"BG_JOB_WORKERS":    "4",
		"XSW_ADMIN_TOKEN":   "test-token",
		"NATS_URL":          "",
	}
	for k, v := range env {
		vars[k] = v
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("E2E_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	opts.Getenv, opts.Demo = func(k string) string { return vars[k] }, true
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	in, err := allinone.Start(ctx, opts, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := in.Stop(20 * time.Second); err != nil {
			t.Errorf("all-in-one: %v", err)
		}
	})
	return &system{Running: in.Running, db: pool}
}

func (s *system) get(t *testing.T, path string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(s.GatewayURL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	if resp.StatusCode != http.StatusOK {
		t.Logf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return resp
}

type listed struct {
	BookName    string  `json:"bookname"`
	Author      string  `json:"author"`
	LastChapter string  `json:"lastchapter"`
	LastURL     string  `json:"lasturl"`
	Intro       string  `json:"intro"`
	BookURL     string  `json:"bookurl"`
	BookID      *string `json:"book_id"`
}

type chapterRef struct {
	Number int    `json:"number"`
	Title  string `json:"title"`
	URL    string `json:"url"`
}

// TestBrowseThenReadWithoutTheSite is the promise of the seed: list a category, and
// every listed book's metadata and full chapter list are pre-cached, so reading them
// afterwards asks the site nothing.
func TestBrowseThenReadWithoutTheSite(t *testing.T) {
	t.Parallel()
	cfg := sitesim.DefaultConfig()
	cfg.Seed = 7
	cfg.Categories = 2
	cfg.BooksPerCategory = 25
	cfg.MinChapters, cfg.MaxChapters = 5, 90
	s := start(t, cfg, nil)

	var books []listed
	began := time.Now()
	if resp := s.get(t, "/xsw/api/categories/1/books?page=1", &books); resp.StatusCode != http.StatusOK {
		t.Fatalf("listing: %d", resp.StatusCode)
	}
	t.Logf("listing answered in %v", time.Since(began))
	if len(books) != 20 {
		t.Fatalf("listing has %d books, want 20", len(books))
	}
	for _, b := range books {
		if b.BookID == nil || b.BookName == "" || !strings.HasPrefix(b.BookURL, s.SiteURL) {
			t.Fatalf("listed book %+v", b)
		}
	}

	// Every listed book gets synced in the background.
	testkit.Eventually(t, 60*time.Second, "every listed book synced", func() bool {
		var n int
		err := s.db.QueryRow(context.Background(), `
			SELECT count(*) FROM books b
			WHERE b.chapter_total IS NOT NULL
			  AND (SELECT count(*) FROM chapters c WHERE c.site = b.site AND c.book_id = b.id) = b.chapter_total`).Scan(&n)
		return err == nil && n == len(books)
	})
	t.Logf("20 books synced %v after the listing", time.Since(began))

	// The seed's troubleshooting SQL works as written.
	rows, err := s.db.Query(context.Background(), `SELECT id, name, last_chapter_num FROM books;`)
	if err != nil {
		t.Fatalf("seed query on books: %v", err)
	}
	rows.Close()
	counts := map[string]int{}
	rows, err = s.db.Query(context.Background(), `SELECT book_id, COUNT(*) as chapter_count FROM chapters GROUP BY book_id;`)
	if err != nil {
		t.Fatalf("seed query on chapters: %v", err)
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		counts[id] = n
	}
	rows.Close()

	// Reading every listed book now costs the site nothing, and matches the site.
	siteRequests := s.Site.Count()
	for _, b := range books {
		id := *b.BookID
		truth, ok := s.Site.Book(id)
		if !ok {
			t.Fatalf("book %s not on the site", id)
		}
		if counts[id] != truth.ChapterCount {
			t.Errorf("book %s: %d chapters in Postgres, site has %d", id, counts[id], truth.ChapterCount)
		}
		var book map[string]any
		if resp := s.get(t, "/xsw/api/books/"+id, &book); resp.StatusCode != http.StatusOK {
			t.Fatalf("book %s: %d", id, resp.StatusCode)
		}
		if book["name"] != truth.Name || book["author"] != truth.Author || book["type"] != truth.Genre || book["book_id"] != id {
			t.Errorf("book %s = %v, want name %q author %q type %q", id, book, truth.Name, truth.Author, truth.Genre)
		}
		if n, _ := book["last_chapter_number"].(float64); int(n) != truth.ChapterCount {
			t.Errorf("book %s: last_chapter_number %v, want %d", id, book["last_chapter_number"], truth.ChapterCount)
		}
		var refs []chapterRef
		resp := s.get(t, "/xsw/api/books/"+id+"/chapters?all=true", &refs)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("chapters of %s: %d", id, resp.StatusCode)
		}
		if got := resp.Header.Get("X-Sync-Status"); got != "complete" {
			t.Errorf("book %s: X-Sync-Status %q, want complete", id, got)
		}
		if len(refs) != truth.ChapterCount {
			t.Fatalf("book %s: %d chapters served, want %d", id, len(refs), truth.ChapterCount)
		}
		for i, r := range refs {
			want := truth.Chapters[i]
			if r.Number != i+1 || r.Title != want.Title || !strings.HasSuffix(r.URL, "/"+id+"/"+want.ID+".html") {
				t.Fatalf("book %s chapter %d = %+v, want number %d title %q id %s", id, i, r, i+1, want.Title, want.ID)
			}
		}
	}
	if extra := s.Site.Count() - siteRequests; extra != 0 {
		t.Errorf("reading pre-cached books made %d requests to the site, want 0", extra)
	}

	// Chapter text is fetched on first read, stored, then served without the site.
	id := *books[0].BookID
	var ch struct {
		BookID     string `json:"book_id"`
		ChapterNum int    `json:"chapter_num"`
		Title      string `json:"title"`
		URL        string `json:"url"`
		Text       string `json:"text"`
	}
	if resp := s.get(t, "/xsw/api/books/"+id+"/chapters/1", &ch); resp.StatusCode != http.StatusOK {
		t.Fatalf("chapter text: %d", resp.StatusCode)
	}
	truth, _ := s.Site.Book(id)
	want, _ := s.Site.Chapter(id, truth.Chapters[0].ID)
	if ch.BookID != id || ch.ChapterNum != 1 || ch.Title != want.Title || ch.Text != strings.Join(want.Paragraphs, "\n") {
		t.Errorf("chapter 1 = %+v\nwant title %q text %q", ch, want.Title, strings.Join(want.Paragraphs, "\n"))
	}
	testkit.Eventually(t, 10*time.Second, "chapter text stored", func() bool {
		var stored *string
		err := s.db.QueryRow(context.Background(), `SELECT text FROM chapters WHERE book_id = $1 AND num = 1`, id).Scan(&stored)
		return err == nil && stored != nil
	})
	before := s.Site.Count()
	s.get(t, "/xsw/api/books/"+id+"/chapters/1?nocache=true", &ch)
	if s.Site.Count() != before {
		t.Errorf("a stored chapter was fetched again")
	}
}
