package database

import (
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/xswtw/xsw/platform/pgtest"
)

// TestEnsureDatabaseConcurrent starts several processes that find the database missing
// at once: one creates it and the others accept that it now exists.
func TestEnsureDatabaseConcurrent(t *testing.T) {
	dsn := pgtest.DatabaseURL(t)
	const n = 8
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = EnsureDatabase(t.Context(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("EnsureDatabase %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("database not there afterwards: %v", err)
	}
	conn.Close(t.Context())
}
