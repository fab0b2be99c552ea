package httpapi

import (
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// lastUnsitedMigration is the last migration of the schema as it was before books were
// site-qualified (bigint ids, no site column).
const lastUnsitedMigration = 11

// oldBook is a book as the schema before sites stored it, with its chapters.
type oldBook struct {
	id                                               int64
	name, author, genre, status, update, description string
	finished                                         bool
	lastNum                                          int
	lastTitle                                        string
	lastChapterID                                    int64
	chapters                                         []oldChapter
}

type oldChapter struct {
	num       int
	chapterID int64
	title     string
	text      *string
}

func (b oldBook) bookURL() string { return fmt.Sprintf("https://m.xsw.tw/%d/", b.id) }

func (c oldChapter) url(book int64) string {
	return fmt.Sprintf("https://m.xsw.tw/%d/%d.html", book, c.chapterID)
}

func text(s string) *string { return &s }

// TestMigratedDatabaseServed fills a database with the schema as it was before sites
// (the migrations up to 00011, read from the indexer's folder), stores books, chapters
// with and without texts, categories and a job history in it, applies the remaining
// migrations in place, then reads every book, its chapter list and its stored texts back
// through the API, unprefixed and under /sites/xsw: all there, unchanged, and served
// without asking anything of the fetchers.
func TestMigratedDatabaseServed(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.PoolThrough(t, lastUnsitedMigration)
	books := []oldBook{
		{id: 1721851, name: "萬古神帝", author: "飛天魚", genre: "玄幻小說", status: "連載中", update: "2026/1/20 22:05:09",
			description: "三千年前", lastNum: 3, lastTitle: "第三章 出關", lastChapterID: 90003, chapters: []oldChapter{
				{1, 90001, "第一章 萬古之始", text("三千年前，神帝出關。" + "\n" + "天下震動。")},
				{2, 90002, "第二章 歸來", nil},
				{3, 90003, "第三章 出關", text("第三章的文字")},
			}},
		{id: 1000005, name: "九章之書", author: "無名", genre: "修真小說", status: "已完成", update: "2025/12/1", finished: true,
			lastNum: 9, lastTitle: "第九章", lastChapterID: 5009, chapters: func() []oldChapter {
				var out []oldChapter
				for n := 1; n <= 9; n++ {
					out = append(out, oldChapter{n, int64(5000 + n), "第" + strconv.Itoa(n) + "章", nil})
				}
				out[8].text = text("完")
				return out
			}()},
		{id: 42, name: "一章之書", author: "某", genre: "都市小說", status: "連載中", update: "2026/1/1",
			lastNum: 1, lastTitle: "楔子", lastChapterID: 7, chapters: []oldChapter{{1, 7, "楔子", text("開始")}}},
	}
	synced := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	for _, b := range books {
		testdb.Exec(t, pool, `INSERT INTO books (id, name, author, genre, status, finished, update_text, description, cover_url,
			last_chapter_num, last_chapter_title, last_chapter_url, last_chapter_id, source_url, toc_pages, chapter_total,
			synced_at, checked_at, read_count)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $15, $16, $16, 7)`,
			b.id, b.name, b.author, b.genre, b.status, b.finished, b.update, b.description, b.bookURL()+"cover.jpg",
			b.lastNum, b.lastTitle, b.chapters[len(b.chapters)-1].url(b.id), b.lastChapterID, b.bookURL(), len(b.chapters), synced)
		for _, c := range b.chapters {
			testdb.Exec(t, pool, `INSERT INTO chapters (book_id, num, chapter_id, title, url, text, toc_page, fetched_at)
				VALUES ($1, $2, $3, $4, $5, $6, 1, CASE WHEN $6::text IS NULL THEN NULL ELSE now() END)`,
				b.id, c.num, c.chapterID, c.title, c.url(b.id), c.text)
		}
	}
	testdb.Exec(t, pool, `INSERT INTO categories (id, name, url) VALUES
		(2, '修真小說', 'https://m.xsw.tw/fenlei2_1.html'), (1, '玄幻小說', 'https://m.xsw.tw/fenlei1_1.html')`)
	testdb.Exec(t, pool, `INSERT INTO job_history (job_id, book_id, lane, status, finished_at, error, permanent) VALUES
		('1721851-3', 1721851, 'prefetch', 'completed', $1, '', false),
		('404-1', 404, 'prefetch', 'failed', $1, 'source answered 404', true)`, synced)

	testdb.Migrate(t, pool, lastUnsitedMigration)
	e := newEnvOn(t, pool)
	rec := e.record()

	for _, b := range books {
		id := strconv.FormatInt(b.id, 10)
		for _, prefix := range []string{"/xsw/api", "/xsw/api/sites/xsw"} {
			r := e.get(prefix + "/books/" + id)
			expect(t, r, http.StatusOK)
			var got api.Book
			r.decode(t, &got)
			last := b.lastNum
			want := api.Book{Name: b.name, Author: b.author, Type: b.genre, Status: b.status, Update: b.update,
				LastChapterTitle: b.lastTitle, LastChapterURL: b.chapters[len(b.chapters)-1].url(b.id), LastChapterNumber: &last,
				BookID: id, Site: "xsw", Volumes: []api.Volume{}, Description: b.description, CoverURL: b.bookURL() + "cover.jpg",
				Finished: b.finished, ChapterCount: len(b.chapters), SyncStatus: "complete",
				SyncedAt: got.SyncedAt, CheckedAt: got.CheckedAt, ChangedAt: nil}
			if !reflect.DeepEqual(got, want) || got.SyncedAt == nil || *got.SyncedAt != "2026-01-21T12:00:00Z" {
				t.Errorf("%s/books/%s\n got %+v\nwant %+v", prefix, id, got, want)
			}

			r = e.get(prefix + "/books/" + id + "/chapters?all=true")
			expect(t, r, http.StatusOK)
			var refs []api.ChapterRef
			r.decode(t, &refs)
			if len(refs) != len(b.chapters) || r.header.Get("X-Sync-Status") != "complete" || r.header.Get("X-Site") != "xsw" {
				t.Errorf("%s/books/%s/chapters: %d refs, headers %v", prefix, id, len(refs), r.header)
				continue
			}
			for i, c := range b.chapters {
				if want := (api.ChapterRef{Number: c.num, Title: c.title, URL: c.url(b.id)}); refs[i] != want {
					t.Errorf("%s/books/%s chapter %d = %+v, want %+v", prefix, id, i+1, refs[i], want)
				}
			}
			for _, c := range b.chapters {
				if c.text == nil {
					continue
				}
				r := e.get(fmt.Sprintf("%s/books/%s/chapters/%d", prefix, id, c.num))
				expect(t, r, http.StatusOK)
				var ch api.Chapter
				r.decode(t, &ch)
				want := api.Chapter{BookID: id, ChapterNum: c.num, Title: c.title, URL: c.url(b.id), Text: *c.text, Site: "xsw"}
				if ch != want {
					t.Errorf("%s/books/%s/chapters/%d = %+v, want %+v", prefix, id, c.num, ch, want)
				}
			}
		}
	}

	r := e.get("/xsw/api/books/404")
	expect(t, r, http.StatusNotFound) // its job failed for good before the migration
	r = e.admin(http.MethodGet, "/xsw/api/admin/jobs/stats")
	expect(t, r, http.StatusOK)
	var stats api.JobStats
	r.decode(t, &stats)
	if stats.CompletedCount != 1 || stats.FailedCount != 1 || stats.FailedJobs["404"].Error != "source answered 404" {
		t.Errorf("job stats %s", r.body)
	}
	if got := rec.subjects(); len(got) != 0 {
		t.Errorf("published %v while serving what the database holds", got)
	}
	r = e.get("/xsw/api/categories") // the fetchers are asked first; none answers: the stored ones
	expect(t, r, http.StatusOK)
	if want := `[{"id":"1","name":"玄幻小說","url":"https://m.xsw.tw/fenlei1_1.html"},{"id":"2","name":"修真小說","url":"https://m.xsw.tw/fenlei2_1.html"}]`; string(r.body) != want {
		t.Errorf("categories %s, want %s", r.body, want)
	}

	// The seed's troubleshooting SQL still works as written.
	rows, err := pool.Query(t.Context(), `SELECT id, name, last_chapter_num FROM books;`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id, name string
		var last *int
		if err := rows.Scan(&id, &name, &last); err != nil {
			t.Fatal(err)
		}
		n++
	}
	rows.Close()
	if n != len(books) {
		t.Errorf("SELECT id, name, last_chapter_num FROM books: %d rows, want %d", n, len(books))
	}
	counts := map[string]int{}
	rows, err = pool.Query(t.Context(), `SELECT book_id, COUNT(*) as chapter_count FROM chapters GROUP BY book_id;`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var c int
		if err := rows.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		counts[id] = c
	}
	rows.Close()
	if counts["1721851"] != 3 || counts["1000005"] != 9 || counts["42"] != 1 || len(counts) != 3 {
		t.Errorf("chapter counts %v", counts)
	}
}
