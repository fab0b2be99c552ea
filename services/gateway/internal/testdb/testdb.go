// Package testdb gives the gateway's tests a fresh Postgres schema holding the indexer's
// tables. The gateway never imports the indexer: the migrations are read from the
// indexer's folder on disk, so the tests always run against the schema the indexer owns.
// A schema may also be built up to a given migration and migrated the rest of the way
// later, as an existing database is.
package testdb

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/events"
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

// Migration is one of the indexer's migrations.
type Migration struct {
	// Version is the number its file name starts with.
	Version int
	// Name is its file name.
	Name string
	// Up is its Up section.
	Up string
}

// Migrations returns the indexer's migrations, in order.
func Migrations(t testing.TB) []Migration {
	t.Helper()
	dir := MigrationsDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("testdb: no migrations in %s: %v", dir, err)
	}
	sort.Strings(files)
	out := make([]Migration, 0, len(files))
	for _, f := range files {
		name := filepath.Base(f)
		prefix, _, _ := strings.Cut(name, "_")
		version, err := strconv.Atoi(prefix)
		if err != nil {
			t.Fatalf("testdb: %s does not start with its version", f)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("testdb: %v", err)
		}
		up, ok := upSection(string(data))
		if !ok {
			t.Fatalf("testdb: %s has no -- +goose Up section", f)
		}
		out = append(out, Migration{Version: version, Name: name, Up: up})
	}
	return out
}

// UpSQL returns the Up sections of every migration, in order.
func UpSQL(t testing.TB) string {
	t.Helper()
	return upSQL(t, 0, -1)
}

// upSQL returns the Up sections of the migrations after version after up to and
// including version through (-1: the last).
func upSQL(t testing.TB, after, through int) string {
	t.Helper()
	var b strings.Builder
	for _, m := range Migrations(t) {
		if m.Version > after && (through < 0 || m.Version <= through) {
			b.WriteString(m.Up)
			b.WriteString("\n")
		}
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
	return PoolThrough(t, -1)
}

// PoolThrough is Pool with the migrations up to and including version only (-1: all),
// as a database that an older build migrated holds them; Migrate applies the rest.
func PoolThrough(t testing.TB, version int) (*pgxpool.Pool, string) {
	t.Helper()
	pool, dsn := pgtest.Pool(t)
	apply(t, pool, upSQL(t, 0, version))
	return pool, dsn
}

// Migrate applies the migrations after version after to the schema of pool.
func Migrate(t testing.TB, pool *pgxpool.Pool, after int) {
	t.Helper()
	apply(t, pool, upSQL(t, after, -1))
}

func apply(t testing.TB, pool *pgxpool.Pool, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	defer conn.Release()
	if _, err := conn.Conn().PgConn().Exec(ctx, sql).ReadAll(); err != nil {
		t.Fatalf("testdb: apply migrations: %v", err)
	}
}

// Exec runs a statement on pool and fails the test on error.
func Exec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("testdb: %s: %v", sql, err)
	}
}

// BaseURL is the base URL of the books and chapters the Insert functions store for site:
// m.xsw.tw's for events.LegacySite, https://<site>.example for any other.
func BaseURL(site string) string {
	if site == events.LegacySite {
		return "https://m.xsw.tw"
	}
	return "https://" + site + ".example"
}

// InsertBook stores a book of events.LegacySite named name, as the indexer would after
// reading its home page. synced marks its last sync completed with every chapter stored
// (InsertChapters then makes it complete).
func InsertBook(t testing.TB, pool *pgxpool.Pool, id, name string, synced bool) {
	t.Helper()
	InsertSiteBook(t, pool, events.LegacySite, id, name, synced)
}

// InsertSiteBook is InsertBook for a book of site.
func InsertSiteBook(t testing.TB, pool *pgxpool.Pool, site, id, name string, synced bool) {
	t.Helper()
	var syncedAt *time.Time
	if synced {
		now := time.Now().UTC()
		syncedAt = &now
	}
	Exec(t, pool, `INSERT INTO books (site, id, name, author, genre, status, update_text, description, cover_url,
		last_chapter_title, last_chapter_url, source_url, synced_at, checked_at)
		VALUES ($1, $2, $3, '飛天魚', '玄幻小說', '連載中', '2026/1/20 22:05:09', '三千年前', $4||'/cover.jpg',
		'第3章', $4||'/'||$2||'/3.html', $4||'/'||$2||'/', $5, now())`, site, id, name, BaseURL(site), syncedAt)
}

// InsertChapters stores chapters 1..n of a book of events.LegacySite, without text,
// numbered by position; chapter k has the id 1000+k. A book inserted as synced gets
// chapter_total n, which makes it complete.
func InsertChapters(t testing.TB, pool *pgxpool.Pool, bookID string, n int) {
	t.Helper()
	InsertSiteChapters(t, pool, events.LegacySite, bookID, n)
}

// InsertSiteChapters is InsertChapters for a book of site.
func InsertSiteChapters(t testing.TB, pool *pgxpool.Pool, site, bookID string, n int) {
	t.Helper()
	Exec(t, pool, `INSERT INTO chapters (site, book_id, num, chapter_id, title, url)
		SELECT $1, $2, k, (1000 + k)::text, '第' || k || '章', $4 || '/' || $2 || '/' || (1000 + k) || '.html'
		FROM generate_series(1, $3::int) AS k`, site, bookID, n, BaseURL(site))
	Exec(t, pool, `UPDATE books SET chapter_total = $3, toc_pages = 1 WHERE site = $1 AND id = $2 AND synced_at IS NOT NULL`, site, bookID, n)
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
