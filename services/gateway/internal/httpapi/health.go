package httpapi

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"
)

// checkTimeout bounds each dependency check of the health endpoints.
const checkTimeout = 3 * time.Second

func (s *Server) pingNATS(ctx context.Context) error {
	if !s.nc.IsConnected() {
		return errors.New("not connected: " + s.nc.Status().String())
	}
	return s.nc.FlushWithContext(ctx)
}

func (s *Server) checks(ctx context.Context) (dbErr, natsErr error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	return s.cat.Ping(ctx), s.pingNATS(ctx)
}

// healthz answers 200 whenever the process serves.
func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// readyz answers 200 only when Postgres and NATS answer.
func (s *Server) readyz(c *fiber.Ctx) error {
	dbErr, natsErr := s.checks(c.UserContext())
	if dbErr != nil {
		return unavailable("database", dbErr)
	}
	if natsErr != nil {
		return unavailable("message bus", natsErr)
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// cacheStatsJSON is the seed's cache_stats. The database sizes are estimates (see
// catalog.Estimates): exact for small tables, from Postgres' statistics for large ones,
// so that a public endpoint never counts a whole table; /admin/stats counts exactly.
type cacheStatsJSON struct {
	BooksInDB           int64 `json:"books_in_db"`
	ChaptersInDB        int64 `json:"chapters_in_db"`
	ChaptersWithContent int64 `json:"chapters_with_content"`
	MemoryCacheSize     int   `json:"memory_cache_size"`
	MemoryCacheTTL      int   `json:"memory_cache_ttl"`
}

type jobSummaryJSON struct {
	QueueSize      int   `json:"queue_size"`
	ActiveJobs     int   `json:"active_jobs"`
	CompletedCount int64 `json:"completed_count"`
	Workers        int   `json:"workers"`
	Running        bool  `json:"running"`
}

type healthJSON struct {
	Status     string            `json:"status"`
	BaseURL    string            `json:"base_url"`
	Database   string            `json:"database"`
	CacheStats cacheStatsJSON    `json:"cache_stats"`
	JobStats   jobSummaryJSON    `json:"job_stats"`
	Checks     map[string]string `json:"checks"`
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
// the sizes of cache_stats are estimates, see cacheStatsJSON).
func (s *Server) health(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*checkTimeout)
	defer cancel()
	site, _ := s.sites.Get(ctx, s.sites.Default())
	h := healthJSON{
		Status: "ok", BaseURL: publicURL(site.BaseURL), Database: checkOK,
		CacheStats: cacheStatsJSON{
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
