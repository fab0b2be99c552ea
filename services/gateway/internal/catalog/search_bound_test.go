package catalog_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// Sizes of the synthetic catalog of TestShortSearchBounded: each table holds several
// times the rows a bounded search may read, so that a scan of either shows.
const (
	boundBooks    = 30000
	boundChapters = 60000
)

// largeCatalog stores boundBooks books and boundChapters chapters (a tenth with a text)
// on top of the search fixture, with names, titles and texts that many one- and
// two-character queries start or contain, and brings the statistics up to date as
// autovacuum would.
func largeCatalog(t *testing.T) (*catalog.Catalog, *pgxpool.Pool) {
	t.Helper()
	c, pool := searchFixture(t)
	// Names are one word of CJK characters; a third of them start with 天, every title
	// starts with 第, every text holds 天 inside a word.
	testdb.Exec(t, pool, `INSERT INTO books (site, id, name, author, source_url, checked_at)
		SELECT 'xsw', (1000 + g)::text,
		       CASE WHEN g % 3 = 0 THEN '天' ELSE '' END || chr(19968 + (g * 7) % 5000) || chr(19968 + (g * 13) % 5000) || '記',
		       chr(19968 + (g * 17) % 5000) || chr(19968 + (g * 19) % 5000), 'https://m.xsw.tw/' || (1000 + g) || '/', now()
		FROM generate_series(1, $1::int) g`, boundBooks)
	testdb.Exec(t, pool, `INSERT INTO chapters (site, book_id, num, chapter_id, title, url, text)
		SELECT 'xsw', (1000 + g / 10)::text, g % 10 + 1, g::text, '第' || (g % 10 + 1) || '章' || chr(19968 + (g * 11) % 5000),
		       'https://m.xsw.tw/' || g || '.html',
		       CASE WHEN g % 10 = 0 THEN repeat('他說' || chr(19968 + g % 5000) || '天下，', 20) END
		FROM generate_series(10, $1::int + 9) g`, boundChapters)
	testdb.Exec(t, pool, `VACUUM ANALYZE books`)
	testdb.Exec(t, pool, `VACUUM ANALYZE chapters`)
	return c, pool
}

// planNode is a node of EXPLAIN (ANALYZE, FORMAT JSON).
type planNode struct {
	NodeType      string     `json:"Node Type"`
	Relation      string     `json:"Relation Name"`
	Index         string     `json:"Index Name"`
	ActualRows    float64    `json:"Actual Rows"`
	ActualLoops   float64    `json:"Actual Loops"`
	RemovedFilter float64    `json:"Rows Removed by Filter"`
	RemovedCheck  float64    `json:"Rows Removed by Index Recheck"`
	Plans         []planNode `json:"Plans"`
}

// rowsRead sums the table rows the scans of books and chapters read (returned, or
// rejected by a filter or an index recheck, in every loop), and lists the sequential
// scans of either.
func (n planNode) rowsRead() (rows float64, seqScans []string) {
	if n.Relation == "books" || n.Relation == "chapters" {
		rows += (n.ActualRows + n.RemovedFilter + n.RemovedCheck) * max(n.ActualLoops, 1)
		if strings.Contains(n.NodeType, "Seq Scan") {
			seqScans = append(seqScans, n.NodeType+" on "+n.Relation)
		}
	}
	for _, p := range n.Plans {
		r, s := p.rowsRead()
		rows += r
		seqScans = append(seqScans, s...)
	}
	return rows, seqScans
}

// explain runs the search's statement under EXPLAIN ANALYZE and returns its plan.
func explain(t *testing.T, pool *pgxpool.Pool, s catalog.Search) planNode {
	t.Helper()
	sql, args, err := catalog.SearchStatement(s)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	if err := pool.QueryRow(t.Context(), "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&out); err != nil {
		t.Fatalf("explain %q: %v", s.Terms, err)
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("explain %q: %v: %s", s.Terms, err, out)
	}
	return plans[0].Plan
}

// TestShortSearchBounded checks that a one- or two-character search reads a bounded
// number of rows however large the tables: Postgres' own account (EXPLAIN ANALYZE) of the
// rows its scans read stays under what the bounds of a short search allow, well below the
// size of either table, so that no table is scanned through.
func TestShortSearchBounded(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("fills a large catalog")
	}
	c, pool := largeCatalog(t)
	// Per branch: the candidates the index finds (and those it finds that a recheck
	// rejects), the window, and the book of each chapter hit; twice that leaves room.
	const perBranch = 2 * (catalog.ShortCandidates + catalog.ShortWindow)
	for _, tt := range []struct {
		name  string
		terms []string
		in    int
	}{
		{"a common first character", []string{"天"}, catalog.SearchBooks | catalog.SearchTitles},
		{"the first character of every title", []string{"第"}, catalog.SearchTitles},
		{"two characters", []string{"天下"}, catalog.SearchBooks | catalog.SearchTitles | catalog.SearchContent},
		{"a character inside every text", []string{"天"}, catalog.SearchContent},
		{"no match", []string{"zq"}, catalog.SearchBooks | catalog.SearchTitles | catalog.SearchContent},
		{"no letter (no trigram at all)", []string{"%"}, catalog.SearchBooks | catalog.SearchTitles | catalog.SearchContent},
		{"two forms", []string{"万", "萬"}, catalog.SearchBooks | catalog.SearchTitles},
		{"one site", []string{"記"}, catalog.SearchBooks | catalog.SearchTitles},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := catalog.Search{Terms: tt.terms, In: tt.in, Limit: 20}
			if tt.name == "one site" {
				s.Site = "xsw"
			}
			plan := explain(t, pool, s)
			rows, seq := plan.rowsRead()
			t.Logf("search %q read %.0f rows (sequential scans %v)", tt.terms, rows, seq)
			branches := 0
			for _, b := range []int{catalog.SearchBooks, catalog.SearchTitles, catalog.SearchContent} {
				if tt.in&b != 0 {
					branches++
				}
			}
			// A sequential scan may serve the candidates when many rows match (it stops at
			// ShortCandidates): what counts is that no scan reads a table through.
			if rows > float64(branches*perBranch) {
				out, _ := json.MarshalIndent(plan, "", " ")
				t.Errorf("search %q read %.0f rows (at most %d allowed; %d books, %d chapters stored), sequential scans %v:\n%s",
					tt.terms, rows, branches*perBranch, boundBooks, boundChapters, seq, out)
			}
			// And it still answers, quickly.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if _, err := c.Search(ctx, s); err != nil {
				t.Errorf("search %q: %v", tt.terms, err)
			}
		})
	}
	// A search of three characters or more is not short: its trigrams find what it holds
	// anywhere, through the trigram indexes.
	rows, seq := explain(t, pool, catalog.Search{Terms: []string{"萬古神"}, In: catalog.SearchBooks | catalog.SearchTitles, Limit: 20}).rowsRead()
	if len(seq) > 0 || rows > 100 {
		t.Errorf("a three-character search read %.0f rows, sequential scans %v", rows, seq)
	}
}

// TestShortSearchFinds checks what a short search finds beyond the window: a field that
// starts with the term, or holds it at the start of a word after a space, anywhere in a
// large catalog; within the window it finds the term anywhere (TestSearch).
func TestShortSearchFinds(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("fills a large catalog")
	}
	c, pool := largeCatalog(t)
	// Beyond the window in key order (ids sort as text: 'z…' after every number).
	testdb.InsertBook(t, pool, "z1", "龘龘", true)
	testdb.Exec(t, pool, `UPDATE books SET author = '龘' WHERE id = 'z1'`)
	testdb.InsertBook(t, pool, "z2", "龘之歌", true)
	testdb.InsertBook(t, pool, "z3", "Tale of 龘", true)
	testdb.InsertBook(t, pool, "z4", "內有龘字", true) // inside a word, beyond the window: not found
	testdb.Exec(t, pool, `INSERT INTO chapters (site, book_id, num, chapter_id, title, url) VALUES
		('xsw', 'z1', 1, 'z1-1', '第一章 龘現', 'https://m.xsw.tw/z1/1.html')`)
	got := ids(search(t, c, catalog.SearchBooks|catalog.SearchTitles, "龘"))
	if got != "bz1:author bz2:name bz3:name cz1.1:title" {
		t.Errorf("short search beyond the window = %q", got)
	}
	if got := ids(search(t, c, catalog.SearchBooks, "龘龘")); got != "bz1:name" {
		t.Errorf("exact two-character name = %q, want bz1:name", got)
	}
}
