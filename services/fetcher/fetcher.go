// Package fetcher is the only part of xsw that talks to the source sites. It takes book
// requests from the lanes, hands each to the adapter of the site it names (package
// site), walks the book's pages under that site's own cluster-wide politeness limit,
// publishes what it found for the indexer, and answers the gateways' interactive calls.
// Config, ConfigFromEnv, Builtin and Run are its whole public face; the adapter contract
// is package site's.
package fetcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/services/fetcher/internal/checkpoint"
	"github.com/xswtw/xsw/services/fetcher/internal/crawl"
	"github.com/xswtw/xsw/services/fetcher/internal/metrics"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/rpc"
	"github.com/xswtw/xsw/services/fetcher/internal/sites"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/internal/worker"
	"github.com/xswtw/xsw/services/fetcher/site"
	"github.com/xswtw/xsw/services/fetcher/site/czbooks"
	"github.com/xswtw/xsw/services/fetcher/site/xsw"
)

// Builtin returns a new registry of the adapters built into the fetcher: m.xsw.tw's,
// under "xsw", and czbooks.net's, under "czbooks". Callers may add their own to it
// before passing it as Config.Adapters.
func Builtin() site.Registry {
	r := site.Registry{}
	_ = r.Add(xsw.Adapter()) // valid adapters under distinct ids in an empty registry
	_ = r.Add(czbooks.Adapter())
	return r
}

// spec names the fetcher and its own variables for the core of its configuration.
var spec = service.Spec{Name: "fetcher", IDVar: "FETCHER_ID", HealthVar: "FETCHER_HEALTH_ADDR", HealthDefault: ":8001"}

// Config is the fetcher's configuration; ConfigFromEnv documents each variable.
type Config struct {
	// Core is what every service shares: NATS_URL, NATS_REPLICAS, BG_JOB_MAX_AGE,
	// SYNC_DEDUP_WINDOW, the sites (SOURCES, SOURCE_<SITE>_URL, BASE_URL,
	// SOURCE_<SITE>_RATE_LIMIT, BG_JOB_RATE_LIMIT), SHUTDOWN_TIMEOUT, LOG_LEVEL,
	// LOG_FORMAT; ReplicaID names this fetcher in heartbeats and job events (FETCHER_ID),
	// and HealthAddr serves /healthz, /readyz and /metrics (FETCHER_HEALTH_ADDR, ":8001").
	service.Core
	InsecureTLS bool
	HTTPTimeout time.Duration
	// MaxPageBytes bounds a fetched page (MAX_PAGE_BYTES): with every page a fetcher may
	// hold at once (BG_JOB_WORKERS per site, and RPCConcurrency calls) it bounds the
	// memory pages take; see DefaultMaxPageBytes.
	MaxPageBytes int64
	// UserAgent is sent to every site (USER_AGENT; empty: source.DefaultUserAgent(), with
	// this build's version). The client is honest: the value must name the project ("xsw")
	// and must not start like a browser's ("Mozilla/").
	UserAgent       string
	Workers         int
	MaxAttempts     int
	RetryBase       time.Duration
	AckWait         time.Duration
	CircuitFailures int
	CircuitCooldown time.Duration
	// InteractiveMaxWait bounds how far ahead of now a reader's request may book its
	// site's slot (INTERACTIVE_MAX_WAIT); beyond it the reader hears the site is busy.
	InteractiveMaxWait time.Duration
	// Adapters are the site adapters Sources are served by, by site id. They are not
	// read from the environment: nil means Builtin().
	Adapters site.Registry
}

// ConfigFromEnv reads the configuration through getenv, with the defaults, and checks
// every variable. Whether each site of SOURCES has an adapter is checked by Validate and
// Run, since a caller may add adapters (Adapters) to the configuration it returns.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	core, coreErr := service.FromEnv(getenv, spec)
	r := config.NewReader(getenv)
	c := Config{
		Core:               core,
		InsecureTLS:        r.Bool("SOURCE_INSECURE_TLS", false),
		HTTPTimeout:        r.Duration("HTTP_TIMEOUT", 15*time.Second),
		MaxPageBytes:       int64(r.Int("MAX_PAGE_BYTES", DefaultMaxPageBytes)),
		UserAgent:          r.String("USER_AGENT", ""),
		Workers:            r.Int("BG_JOB_WORKERS", 2),
		MaxAttempts:        r.Int("BG_JOB_MAX_ATTEMPTS", 5),
		RetryBase:          r.Duration("BG_JOB_RETRY_BASE", 2*time.Second),
		AckWait:            r.Duration("BG_JOB_ACK_WAIT", time.Minute),
		CircuitFailures:    r.Int("CIRCUIT_FAILURES", 5),
		CircuitCooldown:    r.Duration("CIRCUIT_COOLDOWN", 30*time.Second),
		InteractiveMaxWait: r.Duration("INTERACTIVE_MAX_WAIT", 10*time.Second),
	}
	if err := errors.Join(coreErr, r.Err()); err != nil {
		return c, err
	}
	return c, c.validateVars()
}

// Validate names the variables whose values cannot work, and the sites of SOURCES that
// no adapter serves (naming the known ones).
func (c Config) Validate() error {
	if err := c.validateVars(); err != nil {
		return err
	}
	adapters := c.adapters()
	var errs []error
	for _, src := range c.Sources {
		if _, err := adapters.Lookup(src.ID); err != nil {
			errs = append(errs, fmt.Errorf("SOURCES: %w", err))
		}
	}
	return errors.Join(errs...)
}

// adapters returns Adapters, or the built-in ones.
func (c Config) adapters() site.Registry {
	if c.Adapters == nil {
		return Builtin()
	}
	return c.Adapters
}

// validateVars names every variable whose value cannot work.
func (c Config) validateVars() error {
	return errors.Join(
		c.Core.Validate(),
		config.Check(c.Workers >= 1 && c.Workers <= 256, "BG_JOB_WORKERS", "want 1..256, got %d", c.Workers),
		config.Check(c.MaxAttempts >= 1, "BG_JOB_MAX_ATTEMPTS", "want >= 1, got %d", c.MaxAttempts),
		config.Check(c.AckWait >= time.Second, "BG_JOB_ACK_WAIT", "want >= 1s, got %v", c.AckWait),
		config.Check(c.HTTPTimeout > 0, "HTTP_TIMEOUT", "want > 0, got %v", c.HTTPTimeout),
		config.Check(c.MaxPageBytes >= 64<<10 && c.MaxPageBytes <= 16<<20, "MAX_PAGE_BYTES", "want 65536 to 16777216, got %d", c.MaxPageBytes),
		config.Check(c.CircuitFailures >= 1, "CIRCUIT_FAILURES", "want >= 1, got %d", c.CircuitFailures),
		config.Check(c.InteractiveMaxWait > 0, "INTERACTIVE_MAX_WAIT", "want > 0, got %v", c.InteractiveMaxWait),
		config.Check(c.UserAgent == "" || strings.Contains(strings.ToLower(c.UserAgent), "xsw"), "USER_AGENT",
			"want a value naming the project (xsw) and how to reach whoever runs it, got %q", c.UserAgent),
		config.Check(!strings.HasPrefix(strings.ToLower(c.UserAgent), "mozilla/"), "USER_AGENT",
			"want the project's own name, not a browser's (Mozilla/…), got %q", c.UserAgent),
	)
}

// RPCConcurrency bounds the calls of the gateways a fetcher serves at once.
const RPCConcurrency = 16

// DefaultMaxPageBytes is MAX_PAGE_BYTES when unset: 512 KiB, twenty times the largest
// page the two built-in sites serve (a czbooks.net book page of 312 chapters is 24 KB).
// Parsing a page allocates about twelve times its size (measured: 284 KB for that page,
// 22 KB for a 1.7 KB chapter), so a fetcher holding its most pages at once (two workers
// for each of two sites and RPCConcurrency calls: 20) needs at most about
// 20 × 512 KiB × 13 = 130 MiB beyond its base: within the 256 MiB its Kubernetes
// manifest allows.
const DefaultMaxPageBytes = 512 << 10

// Run fetches until ctx ends, then drains: it stops taking work, lets in-flight jobs
// finish within ShutdownTimeout, hands the rest back, and closes its connection. It fails
// at once when the configuration does not hold (Validate), a site of SOURCES without an
// adapter among them.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	logger = logger.With("component", "fetcher", "fetcher_id", cfg.ReplicaID)
	if err := cfg.Validate(); err != nil {
		return err
	}
	nc, js, err := cfg.Connect(ctx, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	ln, err := cfg.ListenHealth()
	if err != nil {
		return err
	}
	defer ln.Close()
	kv, err := js.KeyValue(ctx, events.BucketPoliteness)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", events.BucketPoliteness, err)
	}
	reg, err := cfg.Metrics()
	if err != nil {
		return err
	}
	// The metrics observe the sites' clients, which need the metrics: they meet here.
	var m *metrics.Fetcher
	served, err := sites.Open(ctx, kv, sites.Config{
		Sources: cfg.Sources, Adapters: cfg.adapters(),
		Politeness: politeness.Config{FailureThreshold: cfg.CircuitFailures, Cooldown: cfg.CircuitCooldown, InteractiveMaxWait: cfg.InteractiveMaxWait},
		Client:     source.Config{Timeout: cfg.HTTPTimeout, InsecureTLS: cfg.InsecureTLS, UserAgent: cfg.UserAgent, MaxBytes: cfg.MaxPageBytes},
		Observe:    func(site string, status int, took time.Duration) { m.SourceRequest(site, status, took) },
	})
	if err != nil {
		return err
	}
	var running atomic.Pointer[worker.Pool] // set once the pool exists; a shared registry may be scraped before
	probes := metrics.Probes{InFlight: func() int {
		if p := running.Load(); p != nil {
			return len(p.Active())
		}
		return 0
	}}
	for _, st := range served.All() {
		probes.Sites = append(probes.Sites, metrics.SiteProbe{Site: st.ID,
			Interval: func() time.Duration { return st.Limiter.Snapshot().Interval },
			Circuit:  func() string { return st.Limiter.Snapshot().Circuit },
			Refused:  func() bool { return st.Limiter.Refused() != "" }})
	}
	if m, err = metrics.New(reg, probes); err != nil {
		return err
	}
	checkpoints, err := js.KeyValue(ctx, events.BucketCheckpoints)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", events.BucketCheckpoints, err)
	}
	syncer := &worker.Syncer{JS: js, Sites: served, Logger: logger, Checkpoints: checkpoint.Store{KV: checkpoints}}
	pool, err := worker.NewPool(ctx, nc, js, syncer, worker.Config{
		FetcherID: cfg.ReplicaID, Workers: cfg.Workers, MaxAttempts: cfg.MaxAttempts, MaxAge: cfg.RequestMaxAge,
		DedupWindow: cfg.SyncDedupWindow, ShutdownTimeout: cfg.ShutdownTimeout, RetryBase: cfg.RetryBase, AckWait: cfg.AckWait,
		Observe: m.Job, Poison: func() { m.Poison(metrics.ConsumerRequests) },
	}, logger)
	if err != nil {
		return err
	}
	running.Store(pool)
	crawls, err := js.KeyValue(ctx, events.BucketCrawls)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", events.BucketCrawls, err)
	}
	described, err := js.KeyValue(ctx, events.BucketSites)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", events.BucketSites, err)
	}
	crawler := &crawl.Crawler{JS: js, Sites: served, Progress: crawls, Described: described, Logger: logger, RetryDelay: cfg.RetryBase * 5, AckWait: cfg.AckWait,
		Poison: func() { m.Poison(metrics.ConsumerCrawls) }}
	calls := &rpc.Server{NC: nc, JS: js, Sites: served, Checkpoints: checkpoint.Store{KV: checkpoints}, Logger: logger, Timeout: 2 * time.Minute,
		Concurrency: RPCConcurrency}
	for _, st := range served.All() {
		logger.Info("serving site", "site", st.ID, "base_url", st.Client.Base().Redacted(), "rate_limit", st.RateLimit)
	}
	logger.Info("fetcher started", "sites", cfg.Sources.String(), "workers_per_site", cfg.Workers, "max_attempts", cfg.MaxAttempts)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return pool.Run(gctx) })
	g.Go(func() error { return calls.Run(gctx) })
	g.Go(func() error { return crawler.Run(gctx) })
	g.Go(func() error { return heartbeat(gctx, js, cfg, pool, served, logger) })
	g.Go(func() error { return served.Probe(gctx, logger) })
	g.Go(func() error { return m.Watch(gctx, js, cfg.ReplicaID, metricsRefresh, logger) })
	g.Go(func() error { return service.ServeHealth(gctx, ln, service.NATSReady(nc), reg, logger) })
	err = g.Wait()
	logger.Info("fetcher stopped")
	return err
}

// heartbeat keeps this fetcher's entry in the fetchers bucket fresh until ctx ends, then
// removes it. Each beat also writes every served site's state to the sites bucket; a
// site that starts or stops refusing us is written at once, so that readers hear of it
// from the gateways without waiting for the next beat.
func heartbeat(ctx context.Context, js jetstream.JetStream, cfg Config, pool *worker.Pool, served *sites.Set, logger *slog.Logger) error {
	kv, err := js.KeyValue(ctx, events.BucketFetchers)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", events.BucketFetchers, err)
	}
	sitesKV, err := js.KeyValue(ctx, events.BucketSites)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", events.BucketSites, err)
	}
	started := time.Now().UTC()
	beat := func(ctx context.Context, draining bool) {
		now := time.Now().UTC()
		hb := events.FetcherHeartbeat{
			Header: events.Header{Version: events.Version}, FetcherID: cfg.ReplicaID, Workers: cfg.Workers * len(served.All()),
			Active: pool.Active(), StartedAt: started, At: now, Draining: draining,
		}
		var errs []error
		for _, st := range served.All() {
			_ = st.Limiter.Refresh(ctx)
			info := st.Info(cfg.ReplicaID, now)
			hb.Sites = append(hb.Sites, info)
			b, err := events.Encode(&info)
			if err == nil {
				_, err = sitesKV.Put(ctx, st.ID, b)
			}
			errs = append(errs, err)
		}
		snap := served.Default().Limiter.Snapshot()
		hb.Interval, hb.Circuit = snap.Interval.Seconds(), snap.Circuit
		b, err := events.Encode(&hb)
		if err == nil {
			_, err = kv.Put(ctx, cfg.ReplicaID, b)
		}
		if err := errors.Join(append(errs, err)...); err != nil && ctx.Err() == nil {
			logger.Warn("heartbeat", "err", err)
		}
	}
	t := time.NewTicker(events.FetcherHeartbeatTTL / 3)
	defer t.Stop()
	beat(ctx, false)
	var last time.Time
	for {
		select {
		case <-t.C:
			beat(ctx, false)
		case <-served.Changed():
			beat(ctx, false)
		case <-pool.Changed():
			// Jobs started or ended: beat now, at most four times a second.
			if wait := 250*time.Millisecond - time.Since(last); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					continue
				}
			}
			last = time.Now()
			beat(ctx, false)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = kv.Delete(dctx, cfg.ReplicaID)
			return nil
		}
	}
}

// metricsRefresh is how often the fetcher exporting the cluster's queue and dead-letter
// gauges reads them from JetStream, and how often the others try for its lease.
const metricsRefresh = 5 * time.Second
