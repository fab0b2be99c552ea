package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/api"
)

// checkTimeout bounds each dependency check of the health endpoints.
const checkTimeout = 3 * time.Second

func (s *Server) pingNATS(ctx context.Context) error {
	if !s.nc.IsConnected() {
		return errors.New("not connected: " + s.nc.Status().String())
	}
	return s.nc.FlushWithContext(ctx)
}

// checks pings Postgres and NATS, and notes since when Postgres has not answered.
func (s *Server) checks(ctx context.Context) (dbErr, natsErr error) {
	// Side by side, each with its own time: a Postgres that hangs must not fail NATS's
	// check too (the readiness grace would not apply).
	var wg sync.WaitGroup
	wg.Go(func() {
		nctx, cancel := context.WithTimeout(ctx, checkTimeout)
		defer cancel()
		natsErr = s.pingNATS(nctx)
	})
	dctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	dbErr = s.cat.Ping(dctx)
	wg.Wait()
	s.dbDown.observe(dbErr, time.Now())
	return dbErr, natsErr
}

// outage tracks since when a dependency has failed its checks: from the first failed
// check after a good one.
type outage struct {
	mu    sync.Mutex
	since time.Time // zero while the last check succeeded
}

// observe records the outcome of a check made at now.
func (o *outage) observe(err error, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err == nil:
		o.since = time.Time{}
	case o.since.IsZero():
		o.since = now
	}
}

// age returns how long the dependency has been failing at now, per the checks so far.
func (o *outage) age(now time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return 0
	}
	return now.Sub(o.since)
}

// healthz answers 200 whenever the process serves.
func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(api.Status{Status: "ok"})
}

// readyz answers whether this gateway can serve: 200 while NATS answers and either
// Postgres answers or has not answered for less than ReadyDBGrace (the memory cache
// serves what it holds meanwhile, and a short outage, which every replica sees at once,
// does not empty the Service of them all); 503 when NATS does not answer (no request
// could be queued, no fetcher called) or Postgres has not answered for ReadyDBGrace or
// longer.
func (s *Server) readyz(c *fiber.Ctx) error {
	dbErr, natsErr := s.checks(c.UserContext())
	if natsErr != nil {
		return unavailable("message bus", natsErr)
	}
	if dbErr != nil {
		down := s.dbDown.age(time.Now())
		if down >= s.cfg.ReadyDBGrace {
			return unavailable("database", fmt.Errorf("not answering for %s (READY_DB_GRACE %s): %w",
				down.Round(time.Second), s.cfg.ReadyDBGrace, dbErr))
		}
		s.log.Warn("database not answering; still ready, serving from the cache", "down_for", down.Round(time.Second),
			"ready_db_grace", s.cfg.ReadyDBGrace, "err", dbErr)
	}
	return c.JSON(api.Status{Status: "ready"})
}

// Values of /health's database and checks.
const (
	checkOK          = "ok"
	checkUnavailable = "unavailable"
)

// health answers GET /health: the seed's shape (base_url is the default site's, without
// any user part), "degraded" with 503 when Postgres or NATS does not answer (what could
// still be read is reported). It is public: it names no database (no URL, user, host or
// name: "database" is "ok" or "unavailable", as each of checks) and quotes no error, which
// go to the log; and it stays cheap: no table is counted through (completed_count and
// the sizes of cache_stats are estimates, see catalog.Estimates: exact for small tables,
// from Postgres' statistics for large ones; /admin/stats counts exactly).
func (s *Server) health(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*checkTimeout)
	defer cancel()
	site, _ := s.sites.Get(ctx, s.sites.Default())
	h := api.Health{
		Status: "ok", BaseURL: publicURL(site.BaseURL), Database: checkOK,
		CacheStats: api.HealthCache{
			MemoryCacheSize: s.books.Len() + s.listings.Len(),
			MemoryCacheTTL:  int(s.cfg.CacheTTL / time.Second),
		},
		Checks: map[string]string{"database": checkOK, "nats": checkOK},
	}
	failed := map[string]error{}
	fail := func(check string, err error) {
		h.Status = "degraded"
		h.Checks[check] = checkUnavailable
		failed[check] = errors.Join(failed[check], err)
	}
	dbErr, natsErr := s.checks(ctx)
	if dbErr == nil {
		if n, err := s.cat.Estimates(ctx); err != nil {
			fail("database", err)
		} else {
			h.CacheStats.BooksInDB, h.CacheStats.ChaptersInDB, h.CacheStats.ChaptersWithContent = n.Books, n.Chapters, n.ChaptersWithText
			h.JobStats.CompletedCount = n.CompletedJobs
		}
	} else {
		fail("database", dbErr)
	}
	h.Database = h.Checks["database"]
	if natsErr == nil {
		if st, err := s.jobs.Stats(ctx); err != nil {
			fail("nats", err)
		} else {
			h.JobStats.QueueSize, h.JobStats.ActiveJobs = st.QueueSize, len(st.Active)
			h.JobStats.Workers, h.JobStats.Running = st.Workers, st.Running()
		}
	} else {
		fail("nats", natsErr)
	}
	status := fiber.StatusOK
	if h.Status != "ok" {
		status = fiber.StatusServiceUnavailable
		args := []any{"checks", h.Checks}
		for check, err := range failed {
			args = append(args, check, err)
		}
		s.log.Warn("health degraded", args...)
	}
	return c.Status(status).JSON(h)
}

// publicURL is raw without its user part (a user name, a password, a token), for the
// public answers; "" when raw does not parse.
func publicURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User = nil
	return u.String()
}
