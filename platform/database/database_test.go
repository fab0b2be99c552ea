package database

import (
	"context"
	"testing"
	"time"

	"github.com/xswtw/xsw/platform/pgtest"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://xsw:secret@db:5432/xsw?sslmode=require", "postgres://xsw:xxxxx@db:5432/xsw?sslmode=require"},
		{"postgres://xsw@db/xsw?password=secret&sslmode=disable", "postgres://xsw@db/xsw?password=xxxxx&sslmode=disable"},
		{"postgres://db/xsw?sslpassword=secret", "postgres://db/xsw?sslpassword=xxxxx"},
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"},
		{"host=db user=xsw password=secret", "(connection string with password)"},
		{"host=db user=xsw", "host=db user=xsw"},
		// URLs that do not parse keep no user part: the password may hold anything.
		{"postgres://xsw:sec ret@db/xsw", "postgres://xxxxx@db/xsw"},
		{"postgres://xsw:a/b@c@db:5432/xsw", "postgres://xxxxx@db:5432/xsw"},
		{"postgres://xsw:secret@db:99999999/xsw", "postgres://xsw:xxxxx@db:99999999/xsw"},
		{"postgres://d b:5432/xsw", "postgres://d b:5432/xsw"},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestStatementTimeout checks that a pool opened with StatementTimeout has Postgres cancel
// a slow statement (pg_sleep) and a wait for a lock, and that a pool opened without it
// keeps the server's setting (the indexer's).
func TestStatementTimeout(t *testing.T) {
	dsn := pgtest.Schema(t)
	ctx := t.Context()
	pool, err := Open(ctx, dsn, 1, StatementTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var setting string
	if err := pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&setting); err != nil || setting != "300ms" {
		t.Errorf("statement_timeout = %q, %v; want 300ms", setting, err)
	}
	start := time.Now()
	_, err = pool.Exec(ctx, "SELECT pg_sleep(5)")
	if !IsStatementTimeout(err) || time.Since(start) > 3*time.Second {
		t.Errorf("pg_sleep(5) under a 300ms statement_timeout: %v after %v; want SQLSTATE 57014 at once", err, time.Since(start))
	}
	// A wait for a lock counts too.
	if _, err := pool.Exec(ctx, "CREATE TABLE locked (id int)"); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, dsn, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "LOCK TABLE locked IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "SELECT count(*) FROM locked"); !IsStatementTimeout(err) {
		t.Errorf("a read of a locked table: %v, want SQLSTATE 57014", err)
	}
	// Without the option: the server's setting.
	if err := other.QueryRow(ctx, "SHOW statement_timeout").Scan(&setting); err != nil || setting == "300ms" {
		t.Errorf("statement_timeout without the option = %q, %v; want the server's own", setting, err)
	}
	if IsStatementTimeout(context.DeadlineExceeded) || IsStatementTimeout(nil) {
		t.Error("IsStatementTimeout of another error")
	}
}
