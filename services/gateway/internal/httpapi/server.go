// Package httpapi is the gateway's HTTP API under /xsw/api: it answers from the memory
// cache and Postgres, asks the fetchers over NATS request/reply for what is never stored
// up front (categories, listings, chapter text) or not stored yet (chapter refs a reader
// wants ahead of the sync), queues book requests when a reader or a listing needs a book
// synced, searches what is stored, and serves the admin endpoints.
//
// It serves every configured site: each reader route is served under /xsw/api/sites/{site}
// for any site, and unprefixed for the default site, as the original web client calls it.
// It knows no site rule: a book or category id is checked against the pattern the site's
// fetchers publish before anything is queued or fetched for it, and what a fetcher needs
// to find chapters out of turn is the fetcher's to work out. It guards itself with input
// validation, a per-client rate limit, size limits and timeouts, and keeps its cache
// coherent with the other replicas over NATS. Its answers are the types of package api,
// which xswctl reads too.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/singleflight"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/cache"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
	"github.com/xswtw/xsw/services/gateway/internal/sites"
	"github.com/xswtw/xsw/services/gateway/internal/variants"
)

// Prefix is the path every API route sits under.
const Prefix = api.Prefix

// Limits of the HTTP server. No endpoint takes a request body.
const (
	// bodyLimit bounds a request body.
	bodyLimit = 64 << 10
	// headerLimit bounds the request line and headers (fasthttp's read buffer); a request
	// beyond it gets 431.
	headerLimit = 8 << 10
	// readTimeout bounds reading one request; writeTimeout bounds writing one answer (the
	// handler's own waits are bounded by the request context); idleTimeout closes idle
	// keep-alive connections.
	readTimeout  = 15 * time.Second
	writeTimeout = 30 * time.Second
	idleTimeout  = 2 * time.Minute
)

// DefaultCacheMaxBytes is CACHE_MAX_BYTES when unset: 64 MiB.
const DefaultCacheMaxBytes = 64 << 20

// Config tunes the API.
type Config struct {
	// CountRead, when set, is told of every read of a book (its page, chapter list or a
	// chapter), for popularity, by the book's events.Key.
	CountRead func(key string)
	// ObserveRead, when set, is told of every book read (a book's page or chapter list,
	// not a chapter's text) once it is answered: the book's site and where the answer
	// came from (a metrics.Served* value).
	ObserveRead func(site, servedFrom string)
	// Database names the database without its password, for /admin/stats (never for a
	// public answer).
	Database string
	// CacheTTL is how long books, chapter lists and texts stay in the memory cache.
	CacheTTL time.Duration
	// ListingCacheTTL is how long categories and listing pages stay in the memory cache.
	ListingCacheTTL time.Duration
	// InteractiveWait bounds the wait for a book a reader asked for to be indexed, and
	// for chapter refs fetched out of turn.
	InteractiveWait time.Duration
	// ChapterWait bounds the wait for a chapter's text from the fetchers.
	ChapterWait time.Duration
	// RPCTimeout bounds the wait for categories and listing pages from the fetchers.
	RPCTimeout time.Duration
	// AdminToken guards /admin; empty disables the admin endpoints.
	AdminToken string
	// CacheMaxBytes bounds the memory caches together: a quarter for categories and
	// listings, the rest for books, chapter lists and texts (default 64 MiB).
	CacheMaxBytes int64
	// RateLimit is how many requests one client may make per RateWindow (a burst of
	// RateLimit, refilled evenly); 0 disables rate limiting.
	RateLimit int
	// RateWindow is the window of RateLimit.
	RateWindow time.Duration
	// SourceRateLimit bounds the pages of source sites each client may cause to be
	// fetched a minute (one for a chapter's text or a listing, events.InteractivePagesPerBook
	// for a book not stored yet), apart from RateLimit; 0 disables the bound.
	SourceRateLimit int
	// TrustedProxies are the proxies whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix
	// CORSAllowOrigins is the CORS allow-list: "*" or comma-separated origins ("" is "*").
	CORSAllowOrigins string
	// Replica names this gateway in the cache invalidations it publishes; required.
	Replica string
	// ReadyDBGrace is how long /readyz keeps answering 200 while Postgres does not answer
	// (see readyz); 0 answers 503 at once.
	ReadyDBGrace time.Duration
	// Middleware runs ahead of everything else on every request (the metrics).
	Middleware []fiber.Handler
	// Mounts add routes outside /xsw/api (the dashboard, /metrics), behind the same
	// limits as the API.
	Mounts []func(fiber.Router)
}

// Server is the gateway's HTTP API.
type Server struct {
	cfg     Config
	nc      *nats.Conn
	cat     *catalog.Catalog
	jobs    *jobs.Manager
	sites   *sites.Registry
	log     *slog.Logger
	app     *fiber.App
	limiter *clientLimiter // nil: no rate limit
	// sourceLimiter bounds each client's share of the requests that reach a source site
	// (nil: no bound).
	sourceLimiter *shareLimiter

	books    *cache.Cache[any] // grouped by book (events.Key)
	listings *cache.Cache[any] // categories and listing pages
	waits    singleflight.Group
	fetches  singleflight.Group
	subs     []*nats.Subscription
	variants func() (*variants.Converter, error)

	// ctx bounds everything the server does; it ends when Shutdown gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closing bool
	bg      sync.WaitGroup // background publishes

	dbDown outage // since when the health checks find Postgres not answering

	// prefetchGate, when set (by tests), holds background prefetch publishes until closed.
	prefetchGate chan struct{}
}

// New builds the API over the sites reg knows and subscribes to index announcements and
// cache invalidations to keep the cache coherent with the other replicas.
func New(cfg Config, nc *nats.Conn, cat *catalog.Catalog, jm *jobs.Manager, reg *sites.Registry, logger *slog.Logger) (*Server, error) {
	if cfg.CacheMaxBytes <= 0 {
		cfg.CacheMaxBytes = DefaultCacheMaxBytes
	}
	if cfg.CORSAllowOrigins == "" {
		cfg.CORSAllowOrigins = "*"
	}
	if cfg.Replica == "" {
		return nil, errors.New("httpapi: no replica name")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, nc: nc, cat: cat, jobs: jm, sites: reg, log: logger.With("component", "httpapi"),
		books:    cache.New[any](cfg.CacheTTL, cfg.CacheMaxBytes-cfg.CacheMaxBytes/4),
		listings: cache.New[any](cfg.ListingCacheTTL, cfg.CacheMaxBytes/4),
		variants: sync.OnceValues(variants.New),
		ctx:      ctx, cancel: cancel,
	}
	if cfg.RateLimit > 0 && cfg.RateWindow > 0 {
		s.limiter = newClientLimiter(cfg.RateLimit, cfg.RateWindow)
	}
	if cfg.SourceRateLimit > 0 {
		s.sourceLimiter = newShareLimiter(cfg.SourceRateLimit)
	}
	for subject, h := range map[string]nats.MsgHandler{events.SubjectIndexedAll: s.onIndexed, events.SubjectCacheAll: s.onInvalidated} {
		sub, err := nc.Subscribe(subject, h)
		if err != nil {
			_ = s.unsubscribe()
			cancel()
			return nil, fmt.Errorf("subscribe %s: %w", subject, err)
		}
		s.subs = append(s.subs, sub)
	}
	// Best effort: a replica that cannot reach NATS now learns of nothing anyway, and
	// clears its cache when it reconnects.
	_ = nc.FlushTimeout(2 * time.Second)
	// Announcements sent while this replica was cut off from NATS were lost to it: after
	// a reconnection, nothing cached can be trusted.
	prev := nc.Opts.ReconnectedCB
	nc.SetReconnectHandler(func(c *nats.Conn) {
		if prev != nil {
			prev(c)
		}
		s.dropAll("reconnected to nats")
	})
	s.app = fiber.New(fiber.Config{
		AppName:               "xsw-gateway",
		DisableStartupMessage: true,
		Immutable:             true, // handlers hand strings to background goroutines
		ErrorHandler:          s.errorHandler,
		BodyLimit:             bodyLimit,
		ReadBufferSize:        headerLimit,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
	})
	s.routes()
	return s, nil
}

// App returns the Fiber application (tests drive it with App().Test).
func (s *Server) App() *fiber.App { return s.app }

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown stops accepting connections, lets in-flight requests finish and background
// publishes complete within timeout, then cancels whatever is left and drops the
// subscriptions. It returns the HTTP server's shutdown error, if any. A second call does
// nothing more.
func (s *Server) Shutdown(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	err := s.app.ShutdownWithTimeout(timeout)
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.bg.Wait()
		close(done)
	}()
	timer := time.NewTimer(max(time.Until(deadline), 0))
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.log.Warn("background publishes cut short by the shutdown timeout", "timeout", timeout)
		s.cancel()
		<-done
	}
	s.cancel()
	if uerr := s.unsubscribe(); uerr != nil && err == nil && s.nc.IsConnected() {
		err = uerr
	}
	return err
}

// unsubscribe drops the server's subscriptions (those still valid).
func (s *Server) unsubscribe() error {
	var errs []error
	for _, sub := range s.subs {
		if !sub.IsValid() { // shut down before
			continue
		}
		if err := sub.Unsubscribe(); err != nil {
			errs = append(errs, fmt.Errorf("unsubscribe %s: %w", sub.Subject, err))
		}
	}
	return errors.Join(errs...)
}

// background runs fn in a goroutine that Shutdown waits for; after Shutdown began it
// drops fn and reports false.
func (s *Server) background(fn func(ctx context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn(s.ctx)
	}()
	return true
}

// onIndexed drops everything cached about a book the indexer just wrote.
func (s *Server) onIndexed(m *nats.Msg) {
	if site, id, ok := events.BookOfSubject(m.Subject, events.IndexedPrefixTokens); ok {
		s.books.Drop(events.Key(site, id))
	}
}

// onInvalidated applies a cache invalidation published by a replica (this one included).
func (s *Server) onInvalidated(m *nats.Msg) {
	var ev events.CacheInvalidated
	if err := events.Decode(m.Data, &ev); err != nil {
		s.log.Warn("unreadable cache invalidation", "subject", m.Subject, "err", err)
		return
	}
	if ev.Origin == s.cfg.Replica { // done before publishing
		return
	}
	if ev.BookID == "" {
		s.dropAll("cleared by " + ev.Origin)
		return
	}
	s.books.Drop(events.Key(ev.Site, ev.BookID))
}

// dropAll empties both memory caches and reports how many entries each held.
func (s *Server) dropAll(reason string) (books, listings int) {
	books, listings = s.books.Clear(), s.listings.Clear()
	s.log.Info("memory cache cleared", "reason", reason, "book_entries", books, "listing_entries", listings)
	return books, listings
}

func (s *Server) routes() {
	app := s.app
	for _, h := range s.cfg.Middleware {
		app.Use(h)
	}
	app.Use(recover.New(recover.Config{
		EnableStackTrace: true,
		StackTraceHandler: func(c *fiber.Ctx, e any) {
			s.log.Error("panic in handler", "method", c.Method(), "path", c.Path(), "panic", e, "stack", string(debug.Stack()))
		},
	}))
	app.Use(cors.New(cors.Config{
		AllowOrigins:  s.cfg.CORSAllowOrigins,
		AllowMethods:  "GET,POST,DELETE,HEAD,OPTIONS",
		AllowHeaders:  "Authorization,Content-Type",
		ExposeHeaders: "X-Total-Count,X-Sync-Status,X-Site,Retry-After",
		MaxAge:        600,
	}))
	if s.limiter != nil {
		app.Use(s.rateLimit)
	}
	// Every request gets a context that ends when the server gives up on shutdown, and a
	// bound comfortably above the longest wait a handler may make.
	limit := s.cfg.InteractiveWait + s.cfg.ChapterWait + s.cfg.RPCTimeout + 15*time.Second
	app.Use(func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(s.ctx, limit)
		defer cancel()
		c.SetUserContext(context.WithValue(ctx, clientCtxKey{}, clientKey(c, s.cfg.TrustedProxies)))
		return c.Next()
	})

	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	api := app.Group(Prefix)
	api.Get("/openapi.json", s.openAPI)
	api.Get("/healthz", s.healthz)
	api.Get("/readyz", s.readyz)
	api.Get("/health", s.health)
	api.Get("/sites", s.listSites)
	// The reader routes: the default site's unprefixed, any site's under /sites/{site}.
	for _, r := range []fiber.Router{api, api.Group("/sites/:site")} {
		r.Get("/categories", s.categories)
		r.Get("/categories/:cat_id/books", s.listing)
		r.Get("/books/:book_id", s.book)
		r.Get("/books/:book_id/chapters", s.chapters)
		r.Get("/books/:book_id/chapters/:num", s.chapter)
		r.Get("/search", s.search)
	}

	admin := api.Group("/admin", s.requireAdmin)
	admin.Get("/stats", s.adminStats)
	admin.Get("/version", s.version)
	admin.Get("/jobs/stats", s.jobStats)
	admin.Post("/jobs/sync/:book_id", s.syncBook(false))
	admin.Post("/jobs/force-resync/:book_id", s.syncBook(true))
	admin.Post("/jobs/clear_history", s.clearHistory)
	admin.Get("/jobs/dead", s.deadLetters)
	admin.Post("/jobs/dead/replay_all", s.replayAll)
	admin.Post("/jobs/dead/:book_id/replay", s.replay)
	admin.Post("/books/:book_id/accept-shrink", s.acceptShrink)
	admin.Post("/jobs/purge", s.purgeLane)
	admin.Get("/jobs/lanes", s.lanes)
	admin.Post("/jobs/pause", s.pauseLane(false))
	admin.Post("/jobs/resume", s.pauseLane(true))
	admin.Post("/crawl/categories", s.crawl)
	admin.Get("/crawl", s.crawls)
	admin.Get("/crawl/:crawl_id", s.crawlProgress)
	admin.Post("/cache/clear", s.clearCache)
	admin.Post("/cache/invalidate/:book_id", s.invalidateBook)
	admin.Delete("/cache/chapters/:book_id", s.purgeTexts)
	for _, mount := range s.cfg.Mounts {
		mount(app)
	}

	app.Use(func(c *fiber.Ctx) error {
		return notFound("no route for %s %.200s", c.Method(), c.Path())
	})
}

// accepted answers 202 with body (an api type): the work is queued, ask again after
// Retry-After.
func accepted(c *fiber.Ctx, body any) error {
	c.Set(fiber.HeaderRetryAfter, fmt.Sprint(retryAfterSeconds))
	return c.Status(fiber.StatusAccepted).JSON(body)
}
