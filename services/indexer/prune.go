package indexer

import (
	"context"
	"log/slog"
	"time"

	"github.com/xswtw/xsw/services/indexer/internal/store"
)

// pruneEvery is how often job history older than the retention is deleted.
const pruneEvery = time.Hour

// pruneHistory deletes job history older than retention at start and then every hour,
// until ctx ends. A retention of 0 keeps everything. Failures are logged and retried at
// the next tick.
func pruneHistory(ctx context.Context, st *store.Store, retention time.Duration, logger *slog.Logger) error {
	if retention <= 0 {
		return nil
	}
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	for {
		n, err := st.PruneHistory(ctx, time.Now().Add(-retention))
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			logger.Warn("prune job history failed", "err", err)
		case n > 0:
			logger.Info("pruned job history", "rows", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
