package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xswtw/xsw/dev/e2e/toysite"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/fetcher"
)

// TestToySiteThroughTheWholePipeline registers an adapter that exists only in this
// test's module (package toysite: ids that are not numbers, word categories, a one-page
// chapter list with a volume header) beside m.xsw.tw, and follows one of its books from
// a reader's request through the fetcher, the indexer and Postgres to the API under
// /sites/toy, with nothing in the pipeline changed for it.
func TestToySiteThroughTheWholePipeline(t *testing.T) {
	t.Parallel()
	toy := &toysite.Server{
		Categories: []toysite.Category{{ID: "fantasy", Name: "奇幻"}},
		Books: []toysite.Book{
			{ID: "ab-12", Name: "玩具之書", Author: "無名", Category: "fantasy", Done: true, Entries: []toysite.Entry{
				{Volume: "第一卷 起"},
				{ID: "c-001", Title: "第一章 開端", Text: "第一段。\n第二段。"},
				{ID: "c-002", Title: "第二章 轉折", Text: "轉折之段。"},
				{Volume: "第二卷 合"},
				{ID: "c-003", Title: "第三章 終局", Text: "終局之段。"},
			}},
			{ID: "zz-7", Name: "另一本書", Author: "某人", Category: "fantasy", Entries: []toysite.Entry{
				{ID: "x-1", Title: "序", Text: "序言。"},
			}},
		},
	}
	srv := httptest.NewServer(toy)
	t.Cleanup(srv.Close)
	adapters := fetcher.Builtin()
	if err := adapters.Add(toysite.Adapter()); err != nil {
		t.Fatal(err)
	}
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 1, 3
	s := startWith(t, cfg, map[string]string{"SOURCES": "xsw,toy", "SOURCE_TOY_URL": srv.URL}, adapters)

	// The site list names both, the default first, once a fetcher has described them.
	testkit.Eventually(t, 20*time.Second, "both sites described", func() bool {
		var sites []struct {
			ID      string  `json:"id"`
			Name    string  `json:"name"`
			BaseURL string  `json:"base_url"`
			Default bool    `json:"default"`
			State   string  `json:"state"`
			Rate    float64 `json:"rate_interval_seconds"`
		}
		if s.get(t, "/xsw/api/sites", &sites).StatusCode != http.StatusOK || len(sites) != 2 {
			return false
		}
		return sites[0].ID == "xsw" && sites[0].Default && sites[0].State == "ok" &&
			sites[1].ID == "toy" && !sites[1].Default && sites[1].State == "ok" && sites[1].Name == toysite.Info().Name &&
			sites[1].BaseURL == srv.URL
	})

	// A spelling the toy adapter does not call canonical is refused before anything is
	// queued or fetched, and so is a toy id on the default site.
	for _, path := range []string{"/xsw/api/sites/toy/books/AB-12", "/xsw/api/sites/toy/books/ab-012/chapters?all=true", "/xsw/api/books/ab-12"} {
		if resp := s.get(t, path, nil); resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 404 or 400", path, resp.StatusCode)
		}
	}
	if resp := s.get(t, "/xsw/api/sites/nosuch/books/ab-12", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown site: %d, want 404", resp.StatusCode)
	}

	// A reader opens the book: it is fetched (one request: the list is on the book page),
	// indexed and served.
	var book struct {
		Site    string `json:"site"`
		BookID  string `json:"book_id"`
		Name    string `json:"name"`
		Author  string `json:"author"`
		Status  string `json:"status"`
		Last    *int   `json:"last_chapter_number"`
		Volumes []struct {
			Title        string `json:"title"`
			FirstChapter int    `json:"first_chapter"`
		} `json:"volumes"`
	}
	testkit.Eventually(t, 30*time.Second, "the toy book served", func() bool {
		return s.get(t, "/xsw/api/sites/toy/books/ab-12", &book).StatusCode == http.StatusOK && book.Last != nil
	})
	if book.Site != "toy" || book.BookID != "ab-12" || book.Name != "玩具之書" || book.Author != "無名" || *book.Last != 3 {
		t.Errorf("book %+v", book)
	}
	if fmt.Sprint(book.Volumes) != "[{第一卷 起 1} {第二卷 合 3}]" {
		t.Errorf("volumes %v, want the two headers at chapters 1 and 3", book.Volumes)
	}
	var chapters []chapterRef
	if s.get(t, "/xsw/api/sites/toy/books/ab-12/chapters?all=true", &chapters).StatusCode != http.StatusOK {
		t.Fatal("chapter list")
	}
	if len(chapters) != 3 {
		t.Fatalf("%d chapters, want 3 (volume headers are not chapters): %+v", len(chapters), chapters)
	}
	for i, c := range chapters {
		if c.Number != i+1 || !strings.HasPrefix(c.URL, srv.URL+"/b/ab-12/c-00") {
			t.Errorf("chapter %d: %+v", i+1, c)
		}
	}
	var ch struct {
		Site   string `json:"site"`
		BookID string `json:"book_id"`
		Num    int    `json:"chapter_num"`
		Title  string `json:"title"`
		Text   string `json:"text"`
	}
	if s.get(t, "/xsw/api/sites/toy/books/ab-12/chapters/2", &ch).StatusCode != http.StatusOK {
		t.Fatal("chapter 2")
	}
	if ch.Site != "toy" || ch.BookID != "ab-12" || ch.Num != 2 || ch.Title != "第二章 轉折" || ch.Text != "轉折之段。" {
		t.Errorf("chapter 2: %+v", ch)
	}
	if n := toy.Requests("/b/ab-12"); n != 1 {
		t.Errorf("the book page was fetched %d times, want once", n)
	}
	for _, p := range []string{"/b/AB-12", "/b/ab-012"} {
		if n := toy.Requests(p); n != 0 {
			t.Errorf("%s reached the site %d times", p, n)
		}
	}

	// Stored under (toy, ab-12), beside m.xsw.tw's books, and found by the seed's SQL.
	var site, name string
	var chaptersStored int
	err := s.db.QueryRow(context.Background(), `
		SELECT b.site, b.name, (SELECT count(*) FROM chapters c WHERE c.site = b.site AND c.book_id = b.id)
		FROM books b WHERE b.id = 'ab-12'`).Scan(&site, &name, &chaptersStored)
	if err != nil || site != "toy" || name != "玩具之書" || chaptersStored != 3 {
		t.Errorf("stored book: %q %q %d chapters, %v", site, name, chaptersStored, err)
	}

	// The toy site's categories and listing, through the same routes as m.xsw.tw's.
	var cats []struct{ ID, Name, URL string }
	if s.get(t, "/xsw/api/sites/toy/categories", &cats).StatusCode != http.StatusOK || len(cats) != 1 || cats[0].ID != "fantasy" {
		t.Errorf("categories %+v", cats)
	}
	var listing []struct {
		Site   string  `json:"site"`
		Name   string  `json:"bookname"`
		BookID *string `json:"book_id"`
	}
	if s.get(t, "/xsw/api/sites/toy/categories/fantasy/books?page=1", &listing).StatusCode != http.StatusOK || len(listing) != 2 {
		t.Fatalf("listing %+v", listing)
	}
	for _, b := range listing {
		if b.Site != "toy" || b.BookID == nil {
			t.Errorf("listed %+v", b)
		}
	}
	// The listing pre-caches the other book too.
	testkit.Eventually(t, 30*time.Second, "the listed toy book synced", func() bool {
		var n int
		err := s.db.QueryRow(context.Background(), `SELECT count(*) FROM chapters WHERE site = 'toy' AND book_id = 'zz-7'`).Scan(&n)
		return err == nil && n == 1
	})

	// m.xsw.tw is served as before, on the unprefixed routes and under /sites/xsw.
	for _, path := range []string{"/xsw/api/categories", "/xsw/api/sites/xsw/categories"} {
		var xcats []struct{ ID string }
		if s.get(t, path, &xcats).StatusCode != http.StatusOK || len(xcats) != 1 || xcats[0].ID != "1" {
			t.Errorf("%s: %+v", path, xcats)
		}
	}
}
