// Package indexer is the only writer of the book tables. It consumes what fetchers
// publish on XSW_EVENTS (book metadata, table-of-contents pages, chapter text, categories
// and job lifecycle events, of every site), upserts it into Postgres idempotently under
// each book's (site, book id), acknowledges each batch after its commit and announces
// every book a batch touched on xsw.indexed.<site>.<book_id>. It knows no site's rules:
// the configured sites (SOURCES) only decide whose books the refresh scheduler keeps
// fresh.
//
// Run owns the service's lifecycle; Migrate applies the schema. Everything else lives
// under internal/.
package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/database"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/services/indexer/internal/consume"
	"github.com/xswtw/xsw/services/indexer/internal/metrics"
	"github.com/xswtw/xsw/services/indexer/internal/notify"
	"github.com/xswtw/xsw/services/indexer/internal/refresh"
	"github.com/xswtw/xsw/services/indexer/internal/store"
)

// spec names the indexer and its own variables for the core of its configuration.
var spec = service.Spec{Name: "indexer", IDVar: "INDEXER_ID", HealthVar: "INDEXER_HEALTH_ADDR", HealthDefault: ":8002"}

// Config is the indexer's configuration. ConfigFromEnv fills it; the comment of each
// field names its variable and default.
type Config struct {
	// Core is what every service shares: NATS_URL, NATS_REPLICAS, BG_JOB_MAX_AGE and
	// SYNC_DEDUP_WINDOW (to provision the streams and buckets), SHUTDOWN_TIMEOUT (to
	// finish the batch in hand), LOG_LEVEL, LOG_FORMAT, and the sites (SOURCES, ...): the
	// indexer stores every site's events whatever SOURCES says; it refreshes the books of
	// these sites only, and counts their events from zero in its metrics. ReplicaID names
	// this replica in the scheduler's lease (INDEXER_ID), and HealthAddr serves /healthz,
	// /readyz and /metrics (INDEXER_HEALTH_ADDR, ":8002").
	service.Core
	// DatabaseURL is the Postgres to write (DATABASE_URL, default database.DefaultURL).
	DatabaseURL string
	// BatchSize is the most events pulled and written at once (INDEXER_BATCH_SIZE,
	// default 256, at most the consumer's MaxAckPending).
	BatchSize int
	// Writers is how many transactions write a batch's books side by side
	// (INDEXER_WRITERS, default 4); the pool holds two connections more.
	Writers int
	// HistoryRetention is how long job history is kept; 0 keeps it forever
	// (JOB_HISTORY_RETENTION, default 168h).
	HistoryRetention time.Duration
	// RefreshInterval, RefreshFinishedInterval and RefreshBudgetPerHour drive the
	// refresh scheduler (REFRESH_INTERVAL, default 6h, 0 switches it off;
	// REFRESH_FINISHED_INTERVAL, default 168h; REFRESH_BUDGET_PER_HOUR, default 120
	// source requests).
	RefreshInterval         time.Duration
	RefreshFinishedInterval time.Duration
	RefreshBudgetPerHour    int
	// WebhookURLs receive a signed JSON POST for every job that fails for good (or one
	// for a burst of them), every lane whose queue crosses WebhookQueueThreshold and every
	// opening and closing of a site's circuit (WEBHOOK_URLS, comma-separated, default
	// none: no notifier runs). Logs never show them whole (see notify.Dispatcher).
	WebhookURLs []string
	// WebhookSecret keys the HMAC-SHA256 signature of every delivery (WEBHOOK_SECRET,
	// required with WEBHOOK_URLS).
	WebhookSecret string
	// WebhookQueueThreshold is the queue size of a lane past which it is announced
	// (WEBHOOK_QUEUE_THRESHOLD, default 1000).
	WebhookQueueThreshold int
}

// ConfigFromEnv reads the configuration through getenv and validates it. The error names
// every bad variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	core, coreErr := service.FromEnv(getenv, spec)
	r := config.NewReader(getenv)
	cfg := Config{
		Core:                    core,
		DatabaseURL:             r.String("DATABASE_URL", database.DefaultURL),
		BatchSize:               r.Int("INDEXER_BATCH_SIZE", 256),
		Writers:                 r.Int("INDEXER_WRITERS", 4),
		HistoryRetention:        r.Duration("JOB_HISTORY_RETENTION", 7*24*time.Hour),
		RefreshInterval:         r.Duration("REFRESH_INTERVAL", 6*time.Hour),
		RefreshFinishedInterval: r.Duration("REFRESH_FINISHED_INTERVAL", 7*24*time.Hour),
		RefreshBudgetPerHour:    r.Int("REFRESH_BUDGET_PER_HOUR", 120),
		WebhookURLs:             r.List("WEBHOOK_URLS"),
		WebhookSecret:           r.String("WEBHOOK_SECRET", ""),
		WebhookQueueThreshold:   r.Int("WEBHOOK_QUEUE_THRESHOLD", 1000),
	}
	if err := errors.Join(coreErr, r.Err()); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every setting out of range, naming its variable.
func (c Config) Validate() error {
	maxBatch := events.IndexerConsumer().MaxAckPending
	_, dbErr := pgxpool.ParseConfig(c.DatabaseURL)
	return errors.Join(
		c.Core.Validate(),
		config.Check(c.DatabaseURL != "" && dbErr == nil, "DATABASE_URL", "not a Postgres connection string: %v", dbErr),
		config.Check(c.BatchSize >= 1 && c.BatchSize <= maxBatch, "INDEXER_BATCH_SIZE", "%d: want 1 to %d", c.BatchSize, maxBatch),
		config.Check(c.Writers >= 1 && c.Writers <= 16, "INDEXER_WRITERS", "%d: want 1 to 16", c.Writers),
		config.Check(c.HistoryRetention >= 0, "JOB_HISTORY_RETENTION", "%s: want 0 (keep) or more", c.HistoryRetention),
		config.Check(c.RefreshInterval >= 0, "REFRESH_INTERVAL", "%s: want 0 (off) or more", c.RefreshInterval),
		config.Check(c.RefreshFinishedInterval > 0, "REFRESH_FINISHED_INTERVAL", "%s: want more than 0", c.RefreshFinishedInterval),
		config.Check(c.RefreshBudgetPerHour >= 1, "REFRESH_BUDGET_PER_HOUR", "%d: want at least 1", c.RefreshBudgetPerHour),
		// The URLs are not quoted: they often hold a token.
		config.Check(badWebhookURL(c.WebhookURLs) == 0, "WEBHOOK_URLS", "URL %d of %d is not an http(s) URL with a host", badWebhookURL(c.WebhookURLs), len(c.WebhookURLs)),
		config.Check(len(c.WebhookURLs) == 0 || c.WebhookSecret != "", "WEBHOOK_SECRET", "must be set with WEBHOOK_URLS: every delivery is signed"),
		config.Check(c.WebhookQueueThreshold >= 1, "WEBHOOK_QUEUE_THRESHOLD", "%d: want at least 1", c.WebhookQueueThreshold),
	)
}

// badWebhookURL returns the position (from 1) of the first URL that is not an http(s)
// URL with a host, or 0.
func badWebhookURL(urls []string) int {
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return i + 1
		}
	}
	return 0
}

// Run connects to NATS and Postgres, provisions the streams and the indexer's consumer,
// and runs the indexing loop, the job-history pruner and the health server until ctx
// ends or one of them fails. On shutdown it stops pulling, finishes the batch in hand
// within ShutdownTimeout, then closes the pool and the connection.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger = logger.With("component", "indexer")

	nc, js, err := cfg.Connect(ctx, logger)
	if err != nil {
		return err
	}
	defer func() {
		_ = nc.FlushTimeout(time.Second) // send the last acks before closing
		nc.Close()
	}()
	cons, err := broker.Consumer(ctx, js, events.IndexerConsumer())
	if err != nil {
		return err
	}
	pool, err := database.Open(ctx, cfg.DatabaseURL, cfg.Writers+2)
	if err != nil {
		return err
	}
	defer pool.Close()
	ln, err := cfg.ListenHealth()
	if err != nil {
		return err
	}
	defer ln.Close()

	reg, err := cfg.Metrics()
	if err != nil {
		return err
	}
	st := store.New(pool)
	var m *metrics.Indexer // set before the loop runs
	loop := consume.New(cons, js, st, logger, consume.Options{
		BatchSize:       cfg.BatchSize,
		Writers:         cfg.Writers,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Observe:         func(evs []events.Payload, took time.Duration) { m.Batch(evs, took) },
	})
	m, err = metrics.New(reg, cfg.Sources.IDs(), metrics.Counts{
		Poison:   func() int64 { return loop.Stats().Poison },
		Failures: func() int64 { return loop.Stats().Failures },
	})
	if err != nil {
		return err
	}
	natsReady := service.NATSReady(nc)
	ready := func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		return natsReady(ctx)
	}

	leases, err := js.KeyValue(ctx, events.BucketLeases)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", events.BucketLeases, err)
	}
	sched := refresh.New(pool, js, leases, cfg.ReplicaID, refresh.Config{
		Interval: cfg.RefreshInterval, FinishedInterval: cfg.RefreshFinishedInterval, BudgetPerHour: cfg.RefreshBudgetPerHour,
		Sites: cfg.Sources.IDs(),
	}, logger)

	var (
		dispatcher *notify.Dispatcher
		notifier   *notify.Notifier
	)
	if len(cfg.WebhookURLs) > 0 {
		dispatcher, err = notify.NewDispatcher(ctx, js, notify.DispatchConfig{URLs: cfg.WebhookURLs, Secret: cfg.WebhookSecret,
			Replicas: cfg.NATSReplicas}, reg, logger)
		if err != nil {
			return err
		}
		notifier, err = notify.New(ctx, js, dispatcher, notify.Config{Threshold: cfg.WebhookQueueThreshold, ReplicaID: cfg.ReplicaID}, reg, logger)
		if err != nil {
			return err
		}
	}

	logger.Info("indexer started", "database", database.Redact(cfg.DatabaseURL), "nats", broker.RedactURL(nc.ConnectedUrl()),
		"sources", cfg.Sources.String(),
		"http_addr", ln.Addr().String(), "batch_size", cfg.BatchSize, "writers", cfg.Writers, "job_history_retention", cfg.HistoryRetention,
		"webhooks", len(cfg.WebhookURLs))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return loop.Run(gctx) })
	g.Go(func() error { return pruneHistory(gctx, st, cfg.HistoryRetention, logger) })
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { return service.ServeHealth(gctx, ln, ready, reg, logger) })
	if notifier != nil {
		g.Go(func() error { return dispatcher.Run(gctx) })
		g.Go(func() error { return notifier.Run(gctx) })
	}
	err = g.Wait()
	stats := loop.Stats()
	logger.Info("indexer stopped", "batches", stats.Batches, "acked", stats.Acked, "poison", stats.Poison, "failures", stats.Failures)
	return err
}

// Migrate creates the database when it does not exist and applies every migration it has
// not seen.
func Migrate(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := database.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	pool, err := database.Open(ctx, cfg.DatabaseURL, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	return store.Migrate(ctx, pool, logger.With("component", "indexer"))
}
