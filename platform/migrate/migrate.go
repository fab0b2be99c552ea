// Package migrate applies a service's embedded SQL migrations (numbered files in goose's
// format) to Postgres, one process at a time. Only the programs that migrate (the
// indexer, the all-in-one) import it.
package migrate

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// Up applies every migration in fsys (numbered *.sql files in goose's format) that
// the database has not seen, and logs each one applied.
//
// A run holds the session-level advisory lock LockKey from before it reads the
// applied versions until after its last migration, on the one connection that runs them,
// so processes migrating one database at once take turns and each migration is applied
// once. A run that finds the lock taken logs so, naming the holder, every lockWaitLog
// while it waits, and waits until it gets the lock or ctx ends: bound ctx to limit the
// wait. (goose creates its version table, when missing, before it takes the lock; it
// retries that when racers create the table at once.)
func Up(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, logger *slog.Logger) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(migrationLocker{key: LockKey, logger: logger}))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		logger.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	return nil
}
