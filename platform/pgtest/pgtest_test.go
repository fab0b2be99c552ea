package pgtest

import (
	"context"
	"testing"
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
