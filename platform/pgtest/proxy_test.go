package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestProxy runs queries through a proxy to the test server, cuts it (the open
// connection and new ones fail), and restores it (new ones work again).
func TestProxy(t *testing.T) {
	proxy, dsn := ProxyURL(t, ServerURL())
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ping := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		return pool.Ping(ctx)
	}
	if err := ping(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	proxy.Cut()
	for i := range 2 { // the open connection, then a new one
		if err := ping(); err == nil {
			t.Fatalf("ping %d with the proxy cut: no error", i)
		}
	}
	proxy.Restore(t)
	if err := ping(); err != nil {
		t.Errorf("after the proxy was restored: %v", err)
	}
}
