package catalog_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

func searchFixture(t *testing.T) (*catalog.Catalog, *pgxpool.Pool) {
	t.Helper()
	pool, _ := testdb.Pool(t)
	testdb.InsertBook(t, pool, "1", "萬古神帝", true) // author 飛天魚
	testdb.InsertBook(t, pool, "2", "神帝歸來", true)
	testdb.Exec(t, pool, `UPDATE books SET author = '萬古' WHERE id = '2'`)
	testdb.InsertBook(t, pool, "3", "100%純愛_物語", true)
	testdb.Exec(t, pool, `INSERT INTO books (site, id, name) VALUES ('xsw', '4', '萬古無名')`) // no metadata yet: not a hit
	testdb.InsertBook(t, pool, "5", "萬古", true)
	testdb.Exec(t, pool, `INSERT INTO chapters (site, book_id, num, chapter_id, title, url, text) VALUES
		('xsw', '1', 1, '1001', '第一章 萬古之始', 'https://m.xsw.tw/1/1001.html', '序。' || chr(10) || '三千年前，神帝出關，天下震動。'),
		('xsw', '1', 2, '1002', '第二章 出關', 'https://m.xsw.tw/1/1002.html', NULL),
		('xsw', '2', 1, '2001', '第一章 歸來', 'https://m.xsw.tw/2/2001.html', '他從萬古之前歸來。')`)
	return catalog.New(pool), pool
}

func search(t *testing.T, c *catalog.Catalog, in int, terms ...string) []catalog.Hit {
	t.Helper()
	return searchSite(t, c, "", in, terms...)
}

func searchSite(t *testing.T, c *catalog.Catalog, site string, in int, terms ...string) []catalog.Hit {
	t.Helper()
	hits, err := c.Search(t.Context(), catalog.Search{Terms: terms, In: in, Limit: 20, Site: site})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// ids names hits by type, book and chapter: "b1:name", "c1.2:title"; a book of a site
// other than xsw is prefixed with its site ("toy/b1:name").
func ids(hits []catalog.Hit) string {
	var b strings.Builder
	for _, h := range hits {
		if h.Site != "xsw" {
			b.WriteString(h.Site + "/")
		}
		b.WriteString(h.Type[:1] + h.BookID)
		if h.ChapterNum != nil {
			b.WriteString("." + string(rune('0'+*h.ChapterNum)))
		}
		b.WriteString(":" + h.Match + " ")
	}
	return strings.TrimSpace(b.String())
}

func TestSearch(t *testing.T) {
	t.Parallel()
	c, _ := searchFixture(t)
	all := catalog.SearchBooks | catalog.SearchTitles
	tests := []struct {
		name  string
		in    int
		terms []string
		want  string
	}{
		{"exact name first", catalog.SearchBooks, []string{"萬古神帝"}, "b1:name"},
		{"exact name, exact author, prefix", catalog.SearchBooks, []string{"萬古"}, "b5:name b2:author b1:name"},
		{"inside a name", catalog.SearchBooks, []string{"神帝"}, "b2:name b1:name"}, // a prefix first
		{"fuzzy", catalog.SearchBooks, []string{"萬古神地"}, "b1:name"},
		{"author", catalog.SearchBooks, []string{"飛天魚"}, "b1:author b3:author b5:author"},
		{"wildcards are literal", catalog.SearchBooks, []string{"%"}, "b3:name"},
		{"underscore is literal", catalog.SearchBooks, []string{"_物"}, "b3:name"},
		{"titles", catalog.SearchTitles, []string{"出關"}, "c1.2:title"},
		{"books and titles", all, []string{"萬古"}, "b5:name b2:author b1:name c1.1:title"},
		{"content", catalog.SearchContent, []string{"出關"}, "c1.1:content"},
		{"any of the forms", catalog.SearchBooks, []string{"万古神帝", "萬古神帝"}, "b1:name"},
		{"nothing", all, []string{"不存在的書"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(search(t, c, tt.in, tt.terms...)); got != tt.want {
				t.Errorf("Search(%q) = %q, want %q", tt.terms, got, tt.want)
			}
		})
	}
}

// TestSearchSites checks that a search covers every site unless it names one, and that
// books of two sites under one id are two books.
func TestSearchSites(t *testing.T) {
	t.Parallel()
	c, pool := searchFixture(t)
	testdb.InsertSiteBook(t, pool, "toy", "1", "萬古神帝外傳", true)
	testdb.Exec(t, pool, `INSERT INTO chapters (site, book_id, num, chapter_id, title, url) VALUES
		('toy', '1', 1, 'a1', '第一章 萬古之始', 'https://toy.example/1/a1.html')`)
	tests := []struct {
		name, site, term string
		in               int
		want             string
	}{
		{"every site", "", "萬古神帝", catalog.SearchBooks, "b1:name toy/b1:name"},
		{"one site", "toy", "萬古神帝", catalog.SearchBooks, "toy/b1:name"},
		{"the other site", "xsw", "萬古神帝", catalog.SearchBooks, "b1:name"},
		{"titles of every site", "", "萬古之始", catalog.SearchTitles, "toy/c1.1:title c1.1:title"}, // a tie: by site
		{"titles of one site", "toy", "萬古之始", catalog.SearchTitles, "toy/c1.1:title"},
		{"a site without books", "none", "萬古", catalog.SearchBooks | catalog.SearchTitles | catalog.SearchContent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(searchSite(t, c, tt.site, tt.in, tt.term)); got != tt.want {
				t.Errorf("Search(%q in site %q) = %q, want %q", tt.term, tt.site, got, tt.want)
			}
		})
	}
}

func TestSearchHitFields(t *testing.T) {
	t.Parallel()
	c, _ := searchFixture(t)
	hits := search(t, c, catalog.SearchBooks, "萬古神帝")
	if len(hits) != 1 {
		t.Fatalf("hits %+v", hits)
	}
	if h := hits[0]; h.Site != "xsw" || h.BookID != "1" || h.Name != "萬古神帝" || h.Author != "飛天魚" || h.URL != "https://m.xsw.tw/1/" || h.Score != 3 ||
		h.ChapterNum != nil || h.Title != nil || h.Snippet != nil {
		t.Errorf("book hit %+v", h)
	}
	hits = search(t, c, catalog.SearchContent, "神帝出關")
	if len(hits) != 1 {
		t.Fatalf("content hits %+v", hits)
	}
	h := hits[0]
	if h.Title == nil || *h.Title != "第一章 萬古之始" || h.ChapterNum == nil || *h.ChapterNum != 1 || h.Name != "萬古神帝" ||
		h.URL != "https://m.xsw.tw/1/1001.html" || h.Snippet == nil || !strings.Contains(*h.Snippet, "神帝出關") ||
		strings.Contains(*h.Snippet, "\n") {
		t.Errorf("content hit %+v (snippet %q)", h, deref(h.Snippet))
	}
	if hits := search(t, c, catalog.SearchTitles, "萬古"); len(hits) != 1 || hits[0].Score <= 0 || hits[0].Score >= 3 {
		t.Errorf("title hit %+v", hits)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestSearchLimitAndBadInput(t *testing.T) {
	t.Parallel()
	c, _ := searchFixture(t)
	hits, err := c.Search(t.Context(), catalog.Search{Terms: []string{"神帝"}, In: catalog.SearchBooks | catalog.SearchTitles, Limit: 2})
	if err != nil || len(hits) != 2 {
		t.Errorf("limit 2: %d hits, %v", len(hits), err)
	}
	for _, s := range []catalog.Search{
		{Terms: nil, In: catalog.SearchBooks, Limit: 1},
		{Terms: []string{"a"}, In: 0, Limit: 1},
		{Terms: []string{"a"}, In: catalog.SearchBooks, Limit: 0},
	} {
		if _, err := c.Search(t.Context(), s); err == nil {
			t.Errorf("Search(%+v) accepted", s)
		}
	}
}

// TestSearchUsesTrigramIndexes checks that Postgres can answer through the trigram
// indexes (the schema-qualified operators resolve to the indexed ones).
func TestSearchUsesTrigramIndexes(t *testing.T) {
	t.Parallel()
	_, pool := searchFixture(t)
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = conn.Exec(ctx, `RESET enable_seqscan`) }()
	for index, query := range map[string]string{
		"books_name_trgm":     `SELECT id FROM books WHERE name ILIKE '%萬古神%' OR '萬古神' OPERATOR(public.<%) name`,
		"chapters_title_trgm": `SELECT num FROM chapters WHERE title ILIKE '%萬古之%'`,
		"chapters_text_trgm":  `SELECT num FROM chapters WHERE text IS NOT NULL AND text ILIKE '%神帝出%'`,
	} {
		rows, err := conn.Query(ctx, "EXPLAIN "+query)
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		rows.Close()
		if !strings.Contains(plan.String(), index) {
			t.Errorf("plan does not use %s:\n%s", index, plan.String())
		}
	}
}

func TestStoredPagesAndTexts(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.Pool(t)
	c := catalog.New(pool)
	ctx := t.Context()
	if p, err := c.StoredPages(ctx, "xsw", "1"); err != nil || p.Pages != nil || p.FirstPageRefs != 0 || p.TotalPages != 0 {
		t.Errorf("unknown book: %+v, %v", p, err)
	}
	testdb.InsertBook(t, pool, "1", "Big", false)
	testdb.InsertChapters(t, pool, "1", 45)
	testdb.InsertSiteChapters(t, pool, "toy", "1", 3) // same id, other site: not counted
	testdb.Exec(t, pool, `UPDATE chapters SET toc_page = (num - 1) / 20 + 1 WHERE site = 'xsw' AND book_id = '1' AND num <> 25`)
	testdb.Exec(t, pool, `UPDATE chapters SET toc_page = 1 WHERE site = 'toy'`)
	testdb.Exec(t, pool, `DELETE FROM chapters WHERE site = 'xsw' AND book_id = '1' AND num BETWEEN 21 AND 40 AND num <> 25`)
	testdb.Exec(t, pool, `UPDATE books SET toc_pages_seen = 9 WHERE id = '1'`)
	// Page 2 is gone but for a ref written before toc_page existed (NULL): not a stored page.
	p, err := c.StoredPages(ctx, "xsw", "1")
	if err != nil || fmt.Sprint(p.Pages) != "[1 3]" || p.FirstPageRefs != 20 || p.TotalPages != 9 {
		t.Errorf("stored pages %+v, %v; want pages [1 3], 20 refs on page 1, 9 pages", p, err)
	}
	testdb.Exec(t, pool, `UPDATE books SET toc_pages_seen = NULL, toc_pages = 3 WHERE id = '1'`)
	if p, _ := c.StoredPages(ctx, "xsw", "1"); p.TotalPages != 3 {
		t.Errorf("page count from the completed sync %+v, want 3 pages", p)
	}
	if p, err := c.StoredPages(ctx, "toy", "1"); err != nil || fmt.Sprint(p.Pages) != "[1]" || p.FirstPageRefs != 3 || p.TotalPages != 0 {
		t.Errorf("the other site's book: %+v, %v", p, err)
	}
	testdb.Exec(t, pool, `UPDATE chapters SET text = 'x', fetched_at = now() - interval '1 hour' WHERE book_id = '1' AND num <= 2`)
	testdb.Exec(t, pool, `UPDATE chapters SET text = 'y', fetched_at = now() + interval '1 hour' WHERE site = 'xsw' AND book_id = '1' AND num = 3`)
	if n, err := c.Texts(ctx, "xsw", "1", testdb.Now(t, pool)); err != nil || n != 2 {
		t.Errorf("Texts = %d, %v; want 2", n, err)
	}
	if n, err := c.Texts(ctx, "toy", "1", testdb.Now(t, pool)); err != nil || n != 2 {
		t.Errorf("Texts of the other site's book = %d, %v; want 2", n, err)
	}
}
