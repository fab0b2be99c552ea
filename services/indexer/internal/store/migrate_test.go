package store_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/platform/pgtest"
	"github.com/xswtw/xsw/services/indexer/internal/store"
)

// beforeSites is the last migration before books were site-qualified: the schema of
// every database in service until then.
const beforeSites = 11

// lastSites is the last migration of the sites, whose way down refuses another site's
// rows; latest is the newest migration.
const (
	lastSites = 15
	latest    = 17
)

// migrator returns a goose provider over the store's migrations for pool's schema.
func migrator(t *testing.T, pool *pgxpool.Pool) *goose.Provider {
	t.Helper()
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { db.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, db, store.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// seedOld fills the tables as the indexer did before sites existed (bigint ids): three
// books synced (one finished, one with texts and reads), one whose completion came
// without its metadata, one known by its home page alone with one chapter text stored
// before its table of contents, the categories in the order the site lists them,
// finished jobs of every kind and read-count batches.
func seedOld(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	for _, q := range []string{
		`INSERT INTO books (id, name, author, genre, status, finished, update_text, source_updated_at,
		    description, cover_url, last_chapter_num, last_chapter_title, last_chapter_url, last_chapter_id,
		    source_url, toc_pages, chapter_total, sync_job_id, synced_at, checked_at, changed_at, created_at,
		    updated_at, toc_pages_seen, toc_seen_at, read_count, read_at) VALUES
		(1721851, '萬古神帝', '飛天魚', '玄幻小說', '連載中', false, '2026/1/20 22:05:09', '2026-01-20 14:05:09+00',
		    E'三千年前，天下第一人。\n八百年後……', 'https://m.xsw.tw/files/article/image/1721/1721851s.jpg', 30,
		    '第30章 神帝', 'https://m.xsw.tw/1721851/9000030.html', 9000030, 'https://m.xsw.tw/1721851/', 2, 30,
		    '1721851-418', '2026-01-21 12:01:00+00', '2026-01-21 12:00:00+00', '2026-01-20 08:00:00+00',
		    '2026-01-01 00:00:00+00', '2026-01-21 12:01:00.123456+00', 2, '2026-01-21 12:00:30+00', 1234,
		    '2026-01-21 13:00:00+00'),
		(1000005, '完本之書', '某人', '都市小說', '全本', true, '2025/12/31', NULL, '', '', 9,
		    '第九章 終', 'https://m.xsw.tw/1000005/8000009.html', 8000009, 'https://m.xsw.tw/1000005/', 1, 9,
		    '1000005-7', '2026-01-02 00:00:00+00', '2026-01-02 00:00:00+00', '2026-01-02 00:00:00+00',
		    '2025-12-31 00:00:00+00', '2025-12-31 00:00:00+00', 1, '2026-01-01 23:59:00+00', 0, NULL),
		(2000001, '', '', '', '', false, '', NULL, '', '', NULL, '', '', NULL, '', 1, 0, '2000001-3',
		    '2026-01-05 00:00:00+00', NULL, NULL, '2026-01-05 00:00:00+00', '2026-01-05 00:00:00+00', NULL, NULL, 0, NULL),
		(3000003, '只有首頁', '無名', '', '', false, '', NULL, '', '', NULL, '', '', NULL, '', NULL, NULL, NULL,
		    NULL, '2026-01-06 00:00:00+00', '2026-01-06 00:00:00+00', '2026-01-06 00:00:00+00', '2026-01-06 00:00:00+00',
		    NULL, NULL, 3, '2026-01-07 00:00:00+00')`,
		`INSERT INTO chapters (book_id, num, chapter_id, title, url, title_num, text, fetched_at, created_at,
		    updated_at, listed_at, toc_page)
		SELECT 1721851, n, 9000000 + n, '第' || n || '章', 'https://m.xsw.tw/1721851/' || (9000000 + n) || '.html', n,
		    CASE WHEN n % 3 = 0 THEN E'正文第' || n || E'章\n\n　　天下。' END,
		    CASE WHEN n % 3 = 0 THEN '2026-01-21 12:30:00+00'::timestamptz END,
		    '2026-01-21 12:00:10+00', '2026-01-21 12:00:10+00', '2026-01-21 12:00:00+00', 1 + (n - 1) / 20
		FROM generate_series(1, 30) AS n`,
		`INSERT INTO chapters (book_id, num, chapter_id, title, url, title_num, text, fetched_at, created_at,
		    updated_at, listed_at, toc_page)
		SELECT 1000005, n, 8000000 + n, '第' || n || '章', 'https://m.xsw.tw/1000005/' || (8000000 + n) || '.html',
		    NULL, 'text ' || n, '2026-01-03 00:00:00+00', '2026-01-02 00:00:00+00', '2026-01-03 00:00:00+00',
		    '2026-01-02 00:00:00+00', NULL
		FROM generate_series(1, 9) AS n`,
		`INSERT INTO chapters (book_id, num, chapter_id, title, url, text, fetched_at)
		VALUES (3000003, 2, 7000002, '第二章', 'https://m.xsw.tw/3000003/7000002.html', '先讀的正文', '2026-01-06 01:00:00+00')`,
		`INSERT INTO categories (id, name, url, updated_at) VALUES
		(10, '其他', 'https://m.xsw.tw/fenlei10_1.html', '2026-01-01 00:00:00+00'),
		(1, '玄幻', 'https://m.xsw.tw/fenlei1_1.html', '2026-01-01 00:00:00+00'),
		(3, '都市', 'https://m.xsw.tw/fenlei3_1.html', '2026-01-01 00:00:00+00'),
		(2, '武俠', 'https://m.xsw.tw/fenlei2_1.html', '2026-01-02 00:00:00+00')`,
		`INSERT INTO job_history (job_id, book_id, lane, priority, status, attempts, fetcher, enqueued_at,
		    started_at, finished_at, duration_ms, chapters, requests, error, permanent, dead) VALUES
		('1721851-418', 1721851, 'interactive', 0, 'completed', 1, 'fetcher-a', '2026-01-21 11:59:59+00',
		    '2026-01-21 12:00:00+00', '2026-01-21 12:01:00+00', 60000, 30, 3, '', false, false),
		('1000005-7', 1000005, 'prefetch', 5, 'completed', 2, 'fetcher-b', NULL, '2026-01-01 23:58:00+00',
		    '2026-01-02 00:00:00+00', 120000, 9, 2, '', false, false),
		('4040404-1', 4040404, 'manual', 10, 'failed', 3, 'fetcher-a', '2026-01-04 00:00:00+00',
		    '2026-01-04 00:00:01+00', '2026-01-04 00:00:02+00', 1000, NULL, 1, 'source: 404 not found', true, true),
		('1721851-419', 1721851, 'refresh', 0, 'skipped', 1, '', NULL, NULL, '2026-01-21 12:02:00+00', NULL,
		    NULL, NULL, 'synced 1m ago', false, false)`,
		`INSERT INTO read_batches (batch_id, applied_at) VALUES
		('gateway-a-1', '2026-01-21 13:00:00+00'), ('gateway-a-2', '2026-01-21 13:01:00+00')`,
	} {
		if _, err := pool.Exec(t.Context(), q); err != nil {
			t.Fatalf("seed: %v\n%s", err, q)
		}
	}
}

// tableKeys are the columns that identify a row of each table, before the sites.
var tableKeys = map[string][]string{
	"books":        {"id"},
	"chapters":     {"book_id", "num"},
	"categories":   {"id"},
	"job_history":  {"job_id"},
	"read_batches": {"batch_id"},
}

// row is a row as to_jsonb spells it, numbers kept as written.
type row map[string]any

// rows reads every row of table that where selects, keyed by its key columns.
func rows(t *testing.T, pool *pgxpool.Pool, table, where string) map[string]row {
	t.Helper()
	q := `SELECT to_jsonb(t)::text FROM ` + table + ` t`
	if where != "" {
		q += ` WHERE ` + where
	}
	res, err := pool.Query(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	out := map[string]row{}
	for res.Next() {
		var s string
		if err := res.Scan(&s); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var r row
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		var key []string
		for _, k := range tableKeys[table] {
			key = append(key, fmt.Sprint(r[k]))
		}
		out[strings.Join(key, "/")] = r
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// snapshot reads every row of every table.
func snapshot(t *testing.T, pool *pgxpool.Pool, where string) map[string]map[string]row {
	t.Helper()
	out := map[string]map[string]row{}
	for table := range tableKeys {
		w := where
		if table == "read_batches" {
			w = ""
		}
		out[table] = rows(t, pool, table, w)
	}
	return out
}

// textIDs are the columns that turned from numbers into text with the sites.
var textIDs = map[string][]string{
	"books":       {"id", "last_chapter_id"},
	"chapters":    {"book_id", "chapter_id"},
	"categories":  {"id"},
	"job_history": {"book_id"},
}

// asMigrated is what old's rows should read as after the migrations: their ids spelled
// as text, site 'xsw', books without volumes, with the most chapters they held as many
// as they hold and no acceptance of a shrink, categories in their old order.
func asMigrated(old map[string]map[string]row) map[string]map[string]row {
	held := map[string]int{}
	for _, c := range old["chapters"] {
		held[fmt.Sprint(c["book_id"])]++
	}
	out := map[string]map[string]row{}
	for table, rs := range old {
		out[table] = map[string]row{}
		ordered := slices.Sorted(maps.Keys(rs))
		if table == "categories" { // read by numeric id until then
			slices.SortFunc(ordered, func(a, b string) int { return atoi(a) - atoi(b) })
		}
		for k, key := range ordered {
			r := maps.Clone(rs[key])
			for _, c := range textIDs[table] {
				if n, ok := r[c].(json.Number); ok {
					r[c] = n.String()
				}
			}
			switch table {
			case "books":
				r["site"], r["volumes"] = events.LegacySite, []any{}
				peak := held[fmt.Sprint(r["id"])]
				if n, ok := r["chapter_total"].(json.Number); ok {
					peak = max(peak, atoi(n.String()))
				}
				r["chapter_peak"], r["meta_before"], r["meta_job"] = json.Number(fmt.Sprint(peak)), nil, nil
				r["shrink_accepted"], r["shrink_accepted_at"], r["shrink_armed_at"] = false, nil, nil
			case "chapters", "job_history":
				r["site"] = events.LegacySite
			case "categories":
				r["site"], r["position"] = events.LegacySite, json.Number(fmt.Sprint(k))
			}
			out[table][key] = r
		}
	}
	return out
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestMigrateInPlace fills a database with the schema every installation had before the
// sites (the migrations up to 00011, as they are), migrates it to the latest and reads
// everything back: every row is there, unchanged but for its ids spelled as text, and
// every row is xsw's. Then a book of another site under the same id as an xsw book is
// written, and leaves the xsw book as it was.
func TestMigrateInPlace(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// The installation before the upgrade, with connections of its own: theirs cached
	// the statements of the old schema.
	oldPool, dsn := pgtest.Pool(t)
	if _, err := migrator(t, oldPool).UpTo(ctx, beforeSites); err != nil {
		t.Fatalf("migrate to %d: %v", beforeSites, err)
	}
	seedOld(t, oldPool)
	old := snapshot(t, oldPool, "")
	oldBooks, oldCounts := seedQueries(t, oldPool)
	oldPool.Close()

	// The upgrade: indexer migrate, then the new build.
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	p := migrator(t, pool)
	if err := store.Migrate(ctx, pool, logging.Discard()); err != nil {
		t.Fatalf("migrate to the latest: %v", err)
	}
	if v, err := p.GetDBVersion(ctx); err != nil || v != latest {
		t.Fatalf("version %d, %v; want %d", v, err, latest)
	}

	// Every row, every column: nothing lost, everything xsw's.
	migrated := snapshot(t, pool, "")
	if want := asMigrated(old); !reflect.DeepEqual(migrated, want) {
		for table := range want {
			for key, r := range want[table] {
				if !reflect.DeepEqual(migrated[table][key], r) {
					t.Errorf("%s %s:\n got %v\nwant %v", table, key, migrated[table][key], r)
				}
			}
			if len(migrated[table]) != len(want[table]) {
				t.Errorf("%s: %d rows, want %d", table, len(migrated[table]), len(want[table]))
			}
		}
	}

	// The seed's troubleshooting SQL, as written, lists the same.
	books, counts := seedQueries(t, pool)
	if !maps.EqualFunc(books, oldBooks, seedBook.equal) || !maps.Equal(counts, oldCounts) {
		t.Errorf("seed queries after the migration:\n%v %v\nwant\n%v %v", books, counts, oldBooks, oldCounts)
	}

	// Through the store's reads.
	s := store.New(pool)
	for id, r := range migrated["books"] {
		b, err := s.Book(ctx, events.LegacySite, id)
		if err != nil {
			t.Fatal(err)
		}
		sameRow(t, "book "+id, r, b)
		cs, err := s.Chapters(ctx, events.LegacySite, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != int(oldCounts[id]) {
			t.Errorf("book %s: %d chapters read, want %d", id, len(cs), oldCounts[id])
		}
		for _, c := range cs {
			sameRow(t, fmt.Sprintf("book %s chapter %d", id, c.Num), migrated["chapters"][fmt.Sprintf("%s/%d", id, c.Num)], c)
		}
	}
	texts := 0
	for _, r := range migrated["chapters"] {
		if r["text"] != nil {
			texts++
		}
	}
	if texts != 10+9+1 {
		t.Errorf("%d chapter texts, want 20", texts)
	}
	for id, r := range migrated["job_history"] {
		j, err := s.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sameRow(t, "job "+id, r, j)
	}
	cats, err := s.Categories(ctx, events.LegacySite)
	if err != nil {
		t.Fatal(err)
	}
	wantCats := []events.Category{
		{ID: "1", Name: "玄幻", URL: "https://m.xsw.tw/fenlei1_1.html"},
		{ID: "2", Name: "武俠", URL: "https://m.xsw.tw/fenlei2_1.html"},
		{ID: "3", Name: "都市", URL: "https://m.xsw.tw/fenlei3_1.html"},
		{ID: "10", Name: "其他", URL: "https://m.xsw.tw/fenlei10_1.html"},
	}
	if !slices.Equal(cats, wantCats) {
		t.Errorf("categories %+v, want %+v", cats, wantCats)
	}
	if st, err := s.BookStates(ctx, events.LegacySite, "1721851", "1000005", "2000001"); err != nil ||
		len(st) != 3 || !st[0].Complete || st[0].Chapters != 30 || !st[1].Complete || !st[2].Complete || st[2].HasMeta {
		t.Errorf("book states %+v, %v", st, err)
	}

	// The site has no default any more: a row that names none is refused.
	for _, q := range []string{
		`INSERT INTO books (id, name) VALUES ('1', 'x')`,
		`INSERT INTO chapters (book_id, num, chapter_id, title, url) VALUES ('1', 1, '1', 't', 'u')`,
		`INSERT INTO categories (id, name, url) VALUES ('1', 'n', 'u')`,
		`INSERT INTO job_history (job_id, book_id, lane, status, finished_at) VALUES ('x', '1', 'manual', 'failed', now())`,
	} {
		_, err := pool.Exec(ctx, q)
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "23502" || pgErr.ColumnName != "site" {
			t.Errorf("%s: err = %v, want a not-null violation of site", q, err)
		}
	}
	checkKeys(t, pool)

	// A book of another site under an xsw book's id is another book.
	evs := append(syncEvents(t, "czbooks", "1721851", "另一站的萬古神帝", 3, 5000, t0),
		categoriesEvent("czbooks", t0, events.Category{ID: "1", Name: "玄幻小說", URL: "https://czbooks.net/c/xuanhuan"}))
	purge := events.NewBookPurgeRequested("czbooks", "1721851", "admin", t0.Add(time.Hour))
	reads := events.NewBooksRead("g", 1, map[string]int64{events.Key("czbooks", "1721851"): 5}, t0, t0.Add(time.Hour))
	evs = append(evs, &purge, &reads)
	res, err := s.Apply(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Books) != 1 || res.Books[0].Site != "czbooks" || res.Books[0].BookID != "1721851" {
		t.Errorf("books touched %+v, want czbooks 1721851 alone", res.Books)
	}
	after := snapshot(t, pool, "site = 'xsw'")
	for _, table := range []string{"books", "chapters", "categories", "job_history"} {
		if !reflect.DeepEqual(after[table], migrated[table]) {
			t.Errorf("writing czbooks 1721851 changed xsw's %s:\n%v\nwant\n%v", table, after[table], migrated[table])
		}
	}
	if b, err := s.Book(ctx, "czbooks", "1721851"); err != nil || b.Site != "czbooks" || b.Name != "另一站的萬古神帝" || *b.ChapterTotal != 3 {
		t.Errorf("czbooks book: %+v, %v", b, err)
	}
	if b, err := s.Book(ctx, events.LegacySite, "1721851"); err != nil || b.Name != "萬古神帝" || *b.ChapterTotal != 30 {
		t.Errorf("xsw book: %+v, %v", b, err)
	}
}

// checkKeys checks the primary keys and indexes the migrations leave.
func checkKeys(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	res, err := pool.Query(t.Context(), `SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()
		AND tablename IN ('books', 'chapters', 'categories', 'job_history') AND indexdef NOT LIKE '%gin%' ORDER BY indexname`)
	if err != nil {
		t.Fatal(err)
	}
	var defs []string
	for res.Next() {
		var d string
		if err := res.Scan(&d); err != nil {
			t.Fatal(err)
		}
		// "CREATE UNIQUE INDEX books_pkey ON t_1234.books USING btree (site, id)"
		name, rest, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(d, "CREATE "), "UNIQUE "), " ON ")
		_, cols, _ := strings.Cut(rest, " USING btree ")
		defs = append(defs, strings.TrimPrefix(name, "INDEX ")+" "+cols)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"books_pkey (site, id)",
		"books_refresh_due (finished, checked_at)",
		"categories_pkey (site, id)",
		"chapters_pkey (site, book_id, num)",
		"chapters_site_book_chapter_id (site, book_id, chapter_id)",
		"chapters_site_book_toc_page (site, book_id, toc_page)",
		"job_history_finished (finished_at)",
		"job_history_pkey (job_id)",
		"job_history_site_book (site, book_id)",
		"job_history_status (status, finished_at DESC)",
	}
	if !slices.Equal(defs, want) {
		t.Errorf("indexes:\n%s\nwant\n%s", strings.Join(defs, "\n"), strings.Join(want, "\n"))
	}
}

// sameRow checks that every field of v (a store row type) holds what the to_jsonb row r
// holds in the column its db tag names.
func sameRow(t *testing.T, what string, r row, v any) {
	t.Helper()
	if r == nil {
		t.Errorf("%s: no row", what)
		return
	}
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		col := rv.Type().Field(i).Tag.Get("db")
		got, want := plain(t, rv.Field(i).Interface()), r[col]
		if w, ok := want.(string); ok {
			if tm, err := time.Parse(time.RFC3339Nano, w); err == nil {
				want = tm.UTC().Format(time.RFC3339Nano)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s = %#v, want %#v", what, col, got, want)
		}
	}
}

// plain spells a field's value as a decoded to_jsonb value does, times in UTC.
func plain(t *testing.T, v any) any {
	t.Helper()
	if tm, ok := v.(time.Time); ok {
		return tm.UTC().Format(time.RFC3339Nano)
	}
	if tm, ok := v.(*time.Time); ok && tm != nil {
		return tm.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrateDown: on a database of xsw's books alone the migrations go back to the schema
// before the sites with every row as it was; with another site's rows they refuse, and
// change nothing.
func TestMigrateDown(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	ctx := t.Context()
	p := migrator(t, pool)
	if _, err := p.UpTo(ctx, beforeSites); err != nil {
		t.Fatal(err)
	}
	seedOld(t, pool)
	old := snapshot(t, pool, "")
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, beforeSites); err != nil {
		t.Fatalf("down to %d: %v", beforeSites, err)
	}
	if back := snapshot(t, pool, ""); !reflect.DeepEqual(back, old) {
		t.Errorf("rows after up and down differ:\n%v\nwant\n%v", back, old)
	}

	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	s := store.New(pool)
	if _, err := s.Apply(ctx, syncEvents(t, "czbooks", "cr382b", "書", 2, 1, t0)); err != nil {
		t.Fatal(err)
	}
	// The migrations after the sites go down whatever the rows; the sites' refuse.
	if _, err := p.DownTo(ctx, lastSites); err != nil {
		t.Fatalf("down to %d: %v", lastSites, err)
	}
	before := snapshot(t, pool, "")
	if _, err := p.DownTo(ctx, beforeSites); err == nil {
		t.Fatal("migrated down with czbooks' rows in every table")
	}
	if v, err := p.GetDBVersion(ctx); err != nil || v != lastSites {
		t.Errorf("version %d, %v after a refused down; want %d", v, err, lastSites)
	}
	if after := snapshot(t, pool, ""); !reflect.DeepEqual(after, before) {
		t.Error("a refused down changed the rows")
	}
}
