// Package testdb gives the gateway's tests a fresh Postgres schema holding the indexer's
// tables. The gateway never imports the indexer: the migrations are read from the
// indexer's folder on disk, so the tests always run against the schema the indexer owns.
package testdb

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/platform/pgtest"
)

// MigrationsDir is the indexer's migrations folder, found from this file's location.
func MigrationsDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testdb: cannot locate the source file")
	}
	// services/gateway/internal/testdb -> services/indexer/internal/store/migrations
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "indexer", "internal", "store", "migrations")
}

// UpSQL returns the Up sections of every migration, in order.
func UpSQL(t testing.TB) string {
	t.Helper()
	dir := MigrationsDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("testdb: no migrations in %s: %v", dir, err)
	}
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("testdb: %v", err)
		}
		up, ok := upSection(string(data))
		if !ok {
			t.Fatalf("testdb: %s has no -- +goose Up section", f)
		}
		b.WriteString(up)
		b.WriteString("\n")
	}
	return b.String()
}

func upSection(s string) (string, bool) {
	_, after, ok := strings.Cut(s, "-- +goose Up")
	if !ok {
		return "", false
	}
	up, _, _ := strings.Cut(after, "-- +goose Down")
	up = strings.ReplaceAll(up, "-- +goose StatementBegin", "")
	up = strings.ReplaceAll(up, "-- +goose StatementEnd", "")
	return up, true
}

// Pool opens a pool on a fresh schema with the indexer's tables and returns it with the
// schema's connection URL. Both go away when the test ends.
func Pool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	pool, dsn := pgtest.Pool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	defer conn.Release()
	if _, err := conn.Conn().PgConn().Exec(ctx, UpSQL(t)).ReadAll(); err != nil {
		t.Fatalf("testdb: apply migrations: %v", err)
	}
	return pool, dsn
}

// Exec runs a statement on pool and fails the test on error.
func Exec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("testdb: %s: %v", sql, err)
	}
}

// InsertBook stores a book named name, as the indexer would after reading its home page.
// synced marks its last sync completed with every chapter stored: call Complete after
// storing the chapters (InsertChapters does when the book is synced).
func InsertBook(t testing.TB, pool *pgxpool.Pool, id int64, name string, synced bool) {
	t.Helper()
	var syncedAt *time.Time
	if synced {
		now := time.Now().UTC()
		syncedAt = &now
	}
	Exec(t, pool, `INSERT INTO books (id, name, author, genre, status, update_text, description, cover_url,
		last_chapter_title, last_chapter_url, source_url, synced_at, checked_at)
		VALUES ($1::bigint, $2, '飛天魚', '玄幻小說', '連載中', '2026/1/20 22:05:09', '三千年前', 'https://m.xsw.tw/cover.jpg',
		'第3章', 'https://m.xsw.tw/'||$1::bigint||'/3.html', 'https://m.xsw.tw/'||$1::bigint||'/', $3, now())`, id, name, syncedAt)
}

// InsertChapters stores chapters 1..n of the book, without text, numbered by position;
// chapter k has the id 1000+k. A book inserted as synced gets chapter_total n, which
// makes it complete.
func InsertChapters(t testing.TB, pool *pgxpool.Pool, bookID int64, n int) {
	t.Helper()
	Exec(t, pool, `INSERT INTO chapters (book_id, num, chapter_id, title, url)
		SELECT $1::bigint, k, 1000 + k, '第' || k || '章', 'https://m.xsw.tw/' || $1::bigint || '/' || (1000 + k) || '.html'
		FROM generate_series(1, $2::int) AS k`, bookID, n)
	Exec(t, pool, `UPDATE books SET chapter_total = $2, toc_pages = 1 WHERE id = $1 AND synced_at IS NOT NULL`, bookID, n)
}

// Now returns the database's clock.
func Now(t testing.TB, pool *pgxpool.Pool) time.Time {
	t.Helper()
	var now time.Time
	if err := pool.QueryRow(context.Background(), `SELECT now()`).Scan(&now); err != nil {
		t.Fatalf("testdb: %v", err)
	}
	return now
}
