package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestSchemaIsolated(t *testing.T) {
	pool, _ := Pool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE TABLE books (id bigint)"); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if schema == "public" || schema == "" {
		t.Errorf("current_schema = %q, want a fresh one", schema)
	}
}

// TestDatabaseURL: the database is not there until created, and is dropped when the test
// that asked for it ends.
func TestDatabaseURL(t *testing.T) {
	var name string
	t.Run("own database", func(t *testing.T) {
		dsn := DatabaseURL(t)
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		name = cfg.Database
		if exists(t, name) {
			t.Fatalf("database %s exists before it was created", name)
		}
		conn, err := pgx.Connect(t.Context(), ServerURL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		if _, err := conn.Exec(t.Context(), "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
		c, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatalf("connect to the created database: %v", err)
		}
		c.Close(t.Context())
	})
	if exists(t, name) {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}
