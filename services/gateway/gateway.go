// Package gateway is the xsw HTTP gateway: it serves /xsw/api from Postgres and a memory
// cache for every configured source site, asks the fetchers over NATS for what is
// fetched on demand, and queues book requests on JetStream. It never talks to a source
// site and knows no site rule: what a site is, and how it spells its ids, the fetchers
// publish in the sites bucket. Config, ConfigFromEnv and Run are all the all-in-one
// binary and cmd/gateway need.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/database"
	platformmetrics "github.com/xswtw/xsw/platform/metrics"
	"github.com/xswtw/xsw/platform/service"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/dashboard"
	"github.com/xswtw/xsw/services/gateway/internal/httpapi"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
	"github.com/xswtw/xsw/services/gateway/internal/metrics"
	"github.com/xswtw/xsw/services/gateway/internal/reads"
	"github.com/xswtw/xsw/services/gateway/internal/sites"
)

// DefaultStatementTimeout is DB_STATEMENT_TIMEOUT when unset.
const DefaultStatementTimeout = 5 * time.Second

// DefaultReadyDBGrace is READY_DB_GRACE when unset.
const DefaultReadyDBGrace = time.Minute

// spec names the gateway for the core of its configuration. It answers its probes and
// serves its metrics on its API's address, and has no replica variable.
var spec = service.Spec{Name: "gateway"}

// Config is the gateway's configuration. ConfigFromEnv names the variable of each field.
type Config struct {
	// Core is what every service shares: NATS_URL, NATS_REPLICAS, BG_JOB_MAX_AGE,
	// SYNC_DEDUP_WINDOW, SHUTDOWN_TIMEOUT (in-flight requests and background publishes
	// finish within it), LOG_LEVEL, LOG_FORMAT, and the sites served (SOURCES, ...; "" as
	// a site's URL is the adapter's own, which the fetchers report): the unprefixed
	// routes serve the default site, and any site id outside SOURCES is answered 404.
	// ReplicaID names this gateway in its cache invalidations and read reports; Registry
	// is served at /metrics on HTTPAddr (the all-in-one's, shared by its parts, serves
	// all of them).
	service.Core
	// HTTPAddr is where the HTTP server listens (HTTP_ADDR, ":8000").
	HTTPAddr string
	// DatabaseURL is the Postgres the indexer writes (DATABASE_URL).
	DatabaseURL string
	// StatementTimeout bounds every statement the gateway runs in Postgres, a wait for a
	// lock included: Postgres cancels it and the client gets 503 (DB_STATEMENT_TIMEOUT,
	// 5s; from 100ms to 10m).
	StatementTimeout time.Duration
	// ReadyDBGrace is how long /readyz keeps answering 200 while Postgres does not
	// answer, the memory cache serving what it holds; past it, or at once when NATS is
	// gone, the gateway is not ready (READY_DB_GRACE, 60s; 0 for none, at most 1h).
	ReadyDBGrace time.Duration
	// CacheTTL is the lifetime of cached books, chapter lists and texts
	// (CACHE_TTL_SECONDS, 900).
	CacheTTL time.Duration
	// ListingCacheTTL is the lifetime of cached categories and listing pages
	// (LISTING_CACHE_TTL, 60s).
	ListingCacheTTL time.Duration
	// CacheMaxBytes bounds the memory caches, in bytes (CACHE_MAX_BYTES, 64 MiB).
	CacheMaxBytes int64
	// InteractiveWait bounds the wait for a book a reader asked for (INTERACTIVE_WAIT, 10s).
	InteractiveWait time.Duration
	// ChapterWait bounds the wait for a chapter's text before answering 202
	// (CHAPTER_WAIT, 60s; the web client waits 2 minutes at most).
	ChapterWait time.Duration
	// RPCTimeout bounds the wait for categories and listing pages (RPC_TIMEOUT, 15s).
	RPCTimeout time.Duration
	// AdminToken guards /admin; empty disables it (XSW_ADMIN_TOKEN).
	AdminToken string
	// ReadsFlush is how often book reads are reported for popularity (READS_FLUSH_INTERVAL, 30s).
	ReadsFlush time.Duration
	// RateLimit is how many requests one client may make per RateWindow; 0 disables the
	// limit (API_RATE_LIMIT, 120).
	RateLimit int
	// SourceRateLimit is how many pages of source sites one client may cause to be
	// fetched a minute, per replica, apart from RateLimit; 0 disables the bound
	// (API_SOURCE_RATE_LIMIT, 10).
	SourceRateLimit int
	// RateWindow is the window of RateLimit (API_RATE_WINDOW, 1m).
	RateWindow time.Duration
	// TrustedProxies are the proxies (addresses or CIDR prefixes, comma-separated) whose
	// X-Forwarded-For names the client for the rate limit (API_TRUSTED_PROXIES, none).
	TrustedProxies []netip.Prefix
	// CORSAllowOrigins is "*" or a comma-separated list of origins allowed to call the
	// API from a browser (CORS_ALLOW_ORIGINS, "*").
	CORSAllowOrigins string
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv in main, a map in
// tests). Durations accept Go's syntax ("90s", "5m") or a bare number of seconds. The
// error names every variable it could not parse.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	core, coreErr := service.FromEnv(getenv, spec)
	r := config.NewReader(getenv)
	cfg := Config{
		Core:             core,
		HTTPAddr:         r.String("HTTP_ADDR", ":8000"),
		DatabaseURL:      r.String("DATABASE_URL", database.DefaultURL),
		StatementTimeout: r.Duration("DB_STATEMENT_TIMEOUT", DefaultStatementTimeout),
		ReadyDBGrace:     r.Duration("READY_DB_GRACE", DefaultReadyDBGrace),
		CacheTTL:         r.Duration("CACHE_TTL_SECONDS", 900*time.Second),
		ListingCacheTTL:  r.Duration("LISTING_CACHE_TTL", 60*time.Second),
		CacheMaxBytes:    int64(r.Int("CACHE_MAX_BYTES", httpapi.DefaultCacheMaxBytes)),
		InteractiveWait:  r.Duration("INTERACTIVE_WAIT", 10*time.Second),
		ChapterWait:      r.Duration("CHAPTER_WAIT", 60*time.Second),
		RPCTimeout:       r.Duration("RPC_TIMEOUT", 15*time.Second),
		AdminToken:       r.String("XSW_ADMIN_TOKEN", ""),
		ReadsFlush:       r.Duration("READS_FLUSH_INTERVAL", 30*time.Second),
		RateLimit:        r.Int("API_RATE_LIMIT", 120),
		SourceRateLimit:  r.Int("API_SOURCE_RATE_LIMIT", 10),
		RateWindow:       r.Duration("API_RATE_WINDOW", time.Minute),
		CORSAllowOrigins: strings.Join(strings.Fields(strings.ReplaceAll(
			r.String("CORS_ALLOW_ORIGINS", "*"), ",", " ")), ","),
	}
	proxies, proxyErr := parsePrefixes(r.String("API_TRUSTED_PROXIES", ""))
	if err := errors.Join(coreErr, r.Err(), proxyErr); err != nil {
		return Config{}, scrub(err, configSecrets(cfg))
	}
	cfg.TrustedProxies = proxies
	return cfg, scrub(cfg.Validate(), configSecrets(cfg))
}

// parsePrefixes reads a comma-separated list of IP addresses and CIDR prefixes.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("API_TRUSTED_PROXIES: %q is not an IP address or CIDR prefix", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// validOrigins reports whether list is "*" or comma-separated origins such as
// https://reader.example.org or https://*.example.org (what Fiber's CORS accepts).
func validOrigins(list string) bool {
	if list == "*" {
		return true
	}
	for _, o := range strings.Split(list, ",") {
		o = strings.Replace(o, "://*.", "://", 1)
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Contains(u.Host, "*") ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return false
		}
	}
	return true
}

// Validate reports every setting that cannot work, naming its variable.
func (c Config) Validate() error {
	_, _, addrErr := net.SplitHostPort(c.HTTPAddr)
	return errors.Join(
		config.Check(addrErr == nil, "HTTP_ADDR", "%q is not host:port", c.HTTPAddr),
		config.Check(c.DatabaseURL != "", "DATABASE_URL", "must be set"),
		config.Check(c.StatementTimeout >= 100*time.Millisecond && c.StatementTimeout <= 10*time.Minute, "DB_STATEMENT_TIMEOUT",
			"must be from 100ms to 10m, got %s", c.StatementTimeout),
		c.Core.Validate(),
		config.Check(c.ReadyDBGrace >= 0 && c.ReadyDBGrace <= time.Hour, "READY_DB_GRACE", "want 0 (none) to 1h, got %s", c.ReadyDBGrace),
		config.Check(c.CacheTTL > 0, "CACHE_TTL_SECONDS", "must be positive, got %s", c.CacheTTL),
		config.Check(c.ListingCacheTTL > 0, "LISTING_CACHE_TTL", "must be positive, got %s", c.ListingCacheTTL),
		config.Check(c.CacheMaxBytes >= 1<<20, "CACHE_MAX_BYTES", "must be at least 1 MiB (1048576), got %d", c.CacheMaxBytes),
		config.Check(c.InteractiveWait > 0 && c.InteractiveWait <= time.Minute, "INTERACTIVE_WAIT",
			"must be from 1ms to 1m (clients wait 15s for a page), got %s", c.InteractiveWait),
		config.Check(c.ChapterWait > 0 && c.ChapterWait+c.InteractiveWait < 2*time.Minute, "CHAPTER_WAIT",
			"must be positive and, with INTERACTIVE_WAIT, under the client's 2 minutes, got %s", c.ChapterWait),
		config.Check(c.RPCTimeout > 0, "RPC_TIMEOUT", "must be positive, got %s", c.RPCTimeout),
		config.Check(c.ReadsFlush >= time.Second, "READS_FLUSH_INTERVAL", "want at least 1s, got %s", c.ReadsFlush),
		config.Check(c.RateLimit >= 0 && c.RateLimit <= 1_000_000, "API_RATE_LIMIT", "must be from 0 (off) to 1000000, got %d", c.RateLimit),
		config.Check(c.SourceRateLimit >= 0 && c.SourceRateLimit <= 1_000_000, "API_SOURCE_RATE_LIMIT", "must be from 0 (off) to 1000000, got %d", c.SourceRateLimit),
		config.Check(c.RateWindow >= time.Second && c.RateWindow <= 24*time.Hour, "API_RATE_WINDOW", "must be from 1s to 24h, got %s", c.RateWindow),
		config.Check(validOrigins(c.CORSAllowOrigins), "CORS_ALLOW_ORIGINS",
			`want "*" or comma-separated origins like https://reader.example.org, got %q`, c.CORSAllowOrigins),
	)
}

// databaseLabel names the database for /health and the logs: user, host, port and
// database name only, so that no password (in the user part, in a password= parameter
// or in a key=value string) can show.
func databaseLabel(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "(unparsable DATABASE_URL)"
	}
	u := url.URL{Scheme: "postgres", User: url.User(cfg.User), Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Path: "/" + cfg.Database}
	if strings.HasPrefix(cfg.Host, "/") { // a Unix socket directory
		u.Host, u.RawQuery = "", "host="+url.QueryEscape(cfg.Host)
	}
	return u.String()
}

// Run connects to NATS (provisioning the streams and buckets) and Postgres, serves the
// API until ctx ends, then shuts down gracefully: it stops accepting connections, lets
// in-flight requests and background publishes finish within ShutdownTimeout, and closes
// its connections.
//
// Its error, and every line it logs, names the database and NATS without their
// passwords or tokens.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	return scrub(run(ctx, cfg, logger), configSecrets(cfg))
}

func run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger = logger.With("component", "gateway")

	nc, js, err := cfg.Connect(ctx, logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	provCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := database.Open(ctx, cfg.DatabaseURL, 1, database.StatementTimeout(cfg.StatementTimeout))
	if err != nil {
		return err
	}
	defer pool.Close()
	jm, err := jobs.New(provCtx, js, cfg.SyncDedupWindow, logger)
	if err != nil {
		return err
	}
	siteKV, err := js.KeyValue(provCtx, events.BucketSites)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", events.BucketSites, err)
	}
	reg := sites.New(cfg.Sources, siteKV, logger)
	cat := catalog.New(pool)
	jm.SetKnown(cat.Known)
	jm.SetCheck(reg.CheckBook)
	promReg, err := cfg.Metrics()
	if err != nil {
		return err
	}
	httpMetrics, err := metrics.New(promReg)
	if err != nil {
		return err
	}
	readMetrics, err := metrics.NewReads(promReg, cfg.Sources.IDs())
	if err != nil {
		return err
	}
	counter := reads.New(js, cfg.ReplicaID, cfg.ReadsFlush, logger)
	dash := dashboard.New(dashboard.Config{AdminToken: cfg.AdminToken}, nc, js, jm, logger)
	srv, err := httpapi.New(httpapi.Config{
		Database: databaseLabel(cfg.DatabaseURL),
		CacheTTL: cfg.CacheTTL, ListingCacheTTL: cfg.ListingCacheTTL, CacheMaxBytes: cfg.CacheMaxBytes,
		InteractiveWait: cfg.InteractiveWait, ChapterWait: cfg.ChapterWait, RPCTimeout: cfg.RPCTimeout,
		AdminToken: cfg.AdminToken, RateLimit: cfg.RateLimit, RateWindow: cfg.RateWindow, SourceRateLimit: cfg.SourceRateLimit,
		TrustedProxies: cfg.TrustedProxies, CORSAllowOrigins: cfg.CORSAllowOrigins,
		Replica: cfg.ReplicaID, ReadyDBGrace: cfg.ReadyDBGrace,
		CountRead: counter.Add,
		ObserveRead: func(site, from string) {
			readMetrics.Read(site, from)
			dash.Read(from)
		},
		Middleware: []fiber.Handler{httpMetrics.Middleware},
		Mounts: []func(fiber.Router){
			dash.Mount,
			func(r fiber.Router) { r.Get(platformmetrics.Path, metrics.Serve(promReg)) },
		},
	}, nc, cat, jm, reg, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		_ = srv.Shutdown(cfg.ShutdownTimeout)
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	logger.Info("gateway listening", "addr", ln.Addr().String(), "sources", cfg.Sources.String(), "nats", redactURLs(nc.ConnectedUrl()),
		"database", databaseLabel(cfg.DatabaseURL), "admin", cfg.AdminToken != "",
		"rate_limit", cfg.RateLimit, "rate_window", cfg.RateWindow, "cors_allow_origins", cfg.CORSAllowOrigins)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return reg.Run(gctx) })
	g.Go(func() error { return dash.Run(gctx) })
	g.Go(func() error { return counter.Run(gctx) })
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil {
			return fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("gateway shutting down", "timeout", cfg.ShutdownTimeout)
		if err := srv.Shutdown(cfg.ShutdownTimeout); err != nil {
			logger.Warn("shutdown was not clean", "err", err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	logger.Info("gateway stopped")
	return nil
}
