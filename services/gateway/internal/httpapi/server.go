// Package httpapi is the gateway's HTTP API under /xsw/api: it answers from the memory
// cache and Postgres, asks the fetchers over NATS request/reply for what is never stored
// up front (categories, listings, chapter text), and queues book requests when a reader
// or a listing needs a book synced.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/singleflight"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/cache"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// Prefix is the path every API route sits under.
const Prefix = "/xsw/api"

// Config tunes the API.
type Config struct {
	// BaseURL is the source site, reported by /health only.
	BaseURL string
	// Database is the redacted database URL, reported by /health.
	Database string
	// CacheTTL is how long books, chapter lists and texts stay in the memory cache.
	CacheTTL time.Duration
	// ListingCacheTTL is how long categories and listing pages stay in the memory cache.
	ListingCacheTTL time.Duration
	// InteractiveWait bounds the wait for a book a reader asked for to be indexed.
	InteractiveWait time.Duration
	// ChapterWait bounds the wait for a chapter's text from the fetchers.
	ChapterWait time.Duration
	// RPCTimeout bounds the wait for categories and listing pages from the fetchers.
	RPCTimeout time.Duration
	// AdminToken guards /admin; empty disables the admin endpoints.
	AdminToken string
	// CacheEntries bounds each memory cache (default 10000).
	CacheEntries int
}

// Server is the gateway's HTTP API.
type Server struct {
	cfg  Config
	nc   *nats.Conn
	cat  *catalog.Catalog
	jobs *jobs.Manager
	log  *slog.Logger
	app  *fiber.App

	books    *cache.Cache[any] // grouped by book id
	listings *cache.Cache[any] // categories and listing pages
	waits    singleflight.Group
	fetches  singleflight.Group
	sub      *nats.Subscription

	// ctx bounds everything the server does; it ends when Shutdown gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closing bool
	bg      sync.WaitGroup // background publishes

	// prefetchGate, when set (by tests), holds background prefetch publishes until closed.
	prefetchGate chan struct{}
}

// New builds the API and subscribes to index announcements to keep the cache coherent.
func New(cfg Config, nc *nats.Conn, cat *catalog.Catalog, jm *jobs.Manager, logger *slog.Logger) (*Server, error) {
	if cfg.CacheEntries <= 0 {
		cfg.CacheEntries = 10000
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, nc: nc, cat: cat, jobs: jm, log: logger.With("component", "httpapi"),
		books:    cache.New[any](cfg.CacheTTL, cfg.CacheEntries),
		listings: cache.New[any](cfg.ListingCacheTTL, cfg.CacheEntries),
		ctx:      ctx, cancel: cancel,
	}
	sub, err := nc.Subscribe(events.SubjectIndexedAll, s.onIndexed)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe %s: %w", events.SubjectIndexedAll, err)
	}
	s.sub = sub
	s.app = fiber.New(fiber.Config{
		AppName:               "xsw-gateway",
		DisableStartupMessage: true,
		Immutable:             true, // handlers hand strings to background goroutines
		ErrorHandler:          s.errorHandler,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           2 * time.Minute,
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
// subscription. It returns the HTTP server's shutdown error, if any. A second call does
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
	if !s.sub.IsValid() { // shut down before
		return err
	}
	if uerr := s.sub.Unsubscribe(); uerr != nil && err == nil && s.nc.IsConnected() {
		err = fmt.Errorf("unsubscribe %s: %w", events.SubjectIndexedAll, uerr)
	}
	return err
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
	id := events.LastToken(m.Subject)
	if events.ValidBookID(id) {
		s.books.Drop(id)
	}
}

func (s *Server) routes() {
	app := s.app
	app.Use(recover.New(recover.Config{
		EnableStackTrace: true,
		StackTraceHandler: func(c *fiber.Ctx, e any) {
			s.log.Error("panic in handler", "method", c.Method(), "path", c.Path(), "panic", e, "stack", string(debug.Stack()))
		},
	}))
	// Every request gets a context that ends when the server gives up on shutdown, and a
	// bound comfortably above the longest wait a handler may make.
	limit := s.cfg.InteractiveWait + s.cfg.ChapterWait + s.cfg.RPCTimeout + 15*time.Second
	app.Use(func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(s.ctx, limit)
		defer cancel()
		c.SetUserContext(ctx)
		return c.Next()
	})

	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	api := app.Group(Prefix)
	api.Get("/healthz", s.healthz)
	api.Get("/readyz", s.readyz)
	api.Get("/health", s.health)
	api.Get("/categories", s.categories)
	api.Get("/categories/:cat_id/books", s.listing)
	api.Get("/books/:book_id", s.book)
	api.Get("/books/:book_id/chapters", s.chapters)
	api.Get("/books/:book_id/chapters/:num", s.chapter)

	admin := api.Group("/admin", s.requireAdmin)
	admin.Get("/jobs/stats", s.jobStats)
	admin.Post("/jobs/sync/:book_id", s.syncBook(false))
	admin.Post("/jobs/force-resync/:book_id", s.syncBook(true))
	admin.Post("/jobs/clear_history", s.clearHistory)

	app.Use(func(c *fiber.Ctx) error {
		return notFound("no route for %s %s", c.Method(), c.Path())
	})
}

// accepted answers 202: the work is queued, ask again after Retry-After.
func accepted(c *fiber.Ctx, body fiber.Map) error {
	c.Set(fiber.HeaderRetryAfter, fmt.Sprint(retryAfterSeconds))
	return c.Status(fiber.StatusAccepted).JSON(body)
}
