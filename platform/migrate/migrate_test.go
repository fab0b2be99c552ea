package migrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/platform/database"
	"github.com/xswtw/xsw/platform/logtest"
	"github.com/xswtw/xsw/platform/pgtest"
)

// racers is how many processes the tests start at once against one database.
const racers = 4

// testMigrations would break if any of them ran twice: a second CREATE TABLE or ADD
// COLUMN fails, a second INSERT leaves a duplicate row. The third sleeps so that racers
// upgrading from version 2 overlap, and the fourth builds an index CONCURRENTLY outside a
// transaction, which waits out every transaction in the database with an older snapshot,
// those of racers waiting for the lock included.
var testMigrations = fstest.MapFS{
	"00001_books.sql": {Data: []byte(`-- +goose Up
CREATE TABLE books (id bigint PRIMARY KEY, name text NOT NULL);
`)},
	"00002_notes.sql": {Data: []byte(`-- +goose Up
CREATE TABLE notes (note text NOT NULL);
INSERT INTO notes VALUES ('seeded once');
`)},
	"00003_books_author.sql": {Data: []byte(`-- +goose Up
ALTER TABLE books ADD COLUMN author text NOT NULL DEFAULT '';
SELECT pg_sleep(0.3);
`)},
	"00004_books_author_index.sql": {Data: []byte(`-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY books_author ON books (author);
`)},
	"00005_more_notes.sql": {Data: []byte(`-- +goose Up
INSERT INTO notes VALUES ('seeded after the index');
`)},
}

// freshDatabase creates a database of its own for the test: the migration lock is per
// database, so no other test's migrations wait on this one's or race with it.
func freshDatabase(t *testing.T) string {
	t.Helper()
	dsn := pgtest.DatabaseURL(t)
	if err := database.EnsureDatabase(t.Context(), dsn); err != nil {
		t.Fatal(err)
	}
	return dsn
}

func openPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := database.Open(t.Context(), dsn, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// race runs Up over fsys in several pools at once, as that many indexers starting
// together would, each with its own connections, and fails the test for any run that
// fails. It returns how many migrations the runs applied between them.
func race(t *testing.T, dsn string, fsys fs.FS) int {
	t.Helper()
	pools := make([]*pgxpool.Pool, racers)
	for i := range pools {
		pools[i] = openPool(t, dsn)
	}
	var logs logtest.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, pool := range pools {
		wg.Go(func() {
			<-start
			errs[i] = Up(t.Context(), pool, fsys, logger.With("racer", i))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Up %d: %v", i, err)
		}
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs.String())
	}
	return strings.Count(logs.String(), "migration applied")
}

// upTo is testMigrations up to version last.
func upTo(last int) fs.FS {
	sub := fstest.MapFS{}
	for name, f := range testMigrations {
		if v, _, _ := strings.Cut(name, "_"); v <= fmt.Sprintf("%05d", last) {
			sub[name] = f
		}
	}
	return sub
}

// versions returns each version goose recorded with the number of rows recording it.
func versions(t *testing.T, pool *pgxpool.Pool) [][2]int64 {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT version_id, count(*) FROM goose_db_version GROUP BY version_id ORDER BY version_id`)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
		var v [2]int64
		return v, r.Scan(&v[0], &v[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// TestMigrateConcurrent is several indexers migrating one fresh database at once, then
// several of a newer release (with more migrations) starting at once on it: every run
// succeeds, each migration is applied (and recorded) exactly once, and the schema is
// whole.
func TestMigrateConcurrent(t *testing.T) {
	dsn := freshDatabase(t)
	pool := openPool(t, dsn)
	ctx := t.Context()

	if applied := race(t, dsn, upTo(2)); applied != 2 {
		t.Errorf("fresh database: %d migrations applied over all runs, want 2", applied)
	}
	if got, want := versions(t, pool), [][2]int64{{0, 1}, {1, 1}, {2, 1}}; !slices.Equal(got, want) {
		t.Errorf("fresh database: goose_db_version (version, rows) = %v, want %v", got, want)
	}

	if applied := race(t, dsn, testMigrations); applied != 3 {
		t.Errorf("upgrade: %d migrations applied over all runs, want 3", applied)
	}
	if got, want := versions(t, pool), [][2]int64{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}}; !slices.Equal(got, want) {
		t.Errorf("upgrade: goose_db_version (version, rows) = %v, want %v", got, want)
	}

	var notes []string
	rows, err := pool.Query(ctx, `SELECT note FROM notes ORDER BY note`)
	if err == nil {
		notes, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"seeded after the index", "seeded once"}; !slices.Equal(notes, want) {
		t.Errorf("notes = %q, want %q", notes, want)
	}
	var valid bool
	if err := pool.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = 'books_author'::regclass`).Scan(&valid); err != nil || !valid {
		t.Errorf("index books_author: valid %v, %v", valid, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO books (id, name, author) VALUES (1, 'n', 'a')`); err != nil {
		t.Errorf("books is not whole: %v", err)
	}
	var held int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&held); err != nil || held != 0 {
		t.Errorf("advisory locks still held after the runs: %d, %v", held, err)
	}
}

// holdLock takes the migration lock on a connection of its own, as another process in
// the middle of its migrations would, and returns that connection's pid and a release.
func holdLock(t *testing.T, dsn string) (int32, func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "SET application_name = 'other-migrator'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "SELECT pg_advisory_lock($1)", LockKey); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() { conn.Close(context.Background()) })
	}
	t.Cleanup(release)
	return int32(conn.PgConn().PID()), release
}

// TestMigrateWaitsForHolder: a run that finds the lock taken says so, names the holder,
// keeps saying so while it waits, and migrates once the holder is done.
func TestMigrateWaitsForHolder(t *testing.T) {
	defer func(d time.Duration) { lockWaitLog = d }(lockWaitLog)
	lockWaitLog = 200 * time.Millisecond
	dsn := freshDatabase(t)
	pid, release := holdLock(t, dsn)
	pool := openPool(t, dsn)
	var logs logtest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Up(t.Context(), pool, testMigrations, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(logs.String(), "still waiting") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Up returned while another held the lock: %v\n%s", err, logs.String())
	default:
	}
	out := logs.String()
	if !strings.Contains(out, "waiting for the migration lock") || strings.Count(out, "still waiting") < 2 {
		t.Errorf("no word of the wait:\n%s", out)
	}
	if !strings.Contains(out, fmt.Sprintf("pid=%d", pid)) || !strings.Contains(out, "other-migrator") {
		t.Errorf("the holder (pid %d, other-migrator) is not named:\n%s", pid, out)
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Up after the holder left: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("Up still waiting after the holder left:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "migration lock taken") {
		t.Errorf("no word of taking the lock:\n%s", logs.String())
	}
	var version int64
	if err := pool.QueryRow(t.Context(), `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil || version != 5 {
		t.Errorf("version %d, %v; want 5", version, err)
	}
}

// TestMigrateWaitEndsWithContext: a holder that never lets go does not hang the run past
// its context, and the error says what it was waiting for.
func TestMigrateWaitEndsWithContext(t *testing.T) {
	dsn := freshDatabase(t)
	pid, _ := holdLock(t, dsn)
	pool := openPool(t, dsn)
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := Up(ctx, pool, testMigrations, slog.New(slog.DiscardHandler))
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Up took %v to give up, context allowed 700ms", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Up = %v, want context.DeadlineExceeded", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "migration lock") || !strings.Contains(msg, fmt.Sprintf("pid=%d", pid)) {
		t.Errorf("error %q does not say it waited for the migration lock held by pid %d", msg, pid)
	}
	// goose creates its version table before it takes the lock (HasPending runs
	// unlocked, and retries when racers create the table at once); nothing else ran.
	var tables []string
	rows, err := pool.Query(t.Context(), `SELECT tablename FROM pg_tables WHERE tablename IN ('books', 'notes')`)
	if err == nil {
		tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(tables) != 0 {
		t.Errorf("tables created without the lock: %q, %v", tables, err)
	}
	if got, want := versions(t, pool), [][2]int64{{0, 1}}; !slices.Equal(got, want) {
		t.Errorf("goose_db_version (version, rows) = %v, want %v", got, want)
	}
	// The pool is usable and holds no lock afterwards: the holder leaving lets a new run in.
	var held int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid <> $1
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, pid).Scan(&held); err != nil || held != 0 {
		t.Errorf("advisory locks held besides the holder's: %d, %v", held, err)
	}
}

// TestLockKey pins the key to its documented derivation: other tools (psql, a
// runbook) find the lock by it.
func TestLockKey(t *testing.T) {
	h := fnv.New64a()
	h.Write([]byte("xsw:migrate"))
	if got := int64(h.Sum64()); got != LockKey {
		t.Errorf("FNV-1a 64 of %q = %d, LockKey = %d", "xsw:migrate", got, LockKey)
	}
}
