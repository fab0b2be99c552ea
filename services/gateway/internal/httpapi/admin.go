package httpapi

import (
	"crypto/subtle"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// failedJobsListed bounds the failed_jobs map of the stats.
const failedJobsListed = 100

// requireAdmin guards /admin: 403 when no token is configured, 401 unless the request
// carries "Authorization: Bearer <XSW_ADMIN_TOKEN>".
func (s *Server) requireAdmin(c *fiber.Ctx) error {
	if s.cfg.AdminToken == "" {
		return newError(fiber.StatusForbidden, "admin endpoints are disabled: set XSW_ADMIN_TOKEN to enable them")
	}
	auth := c.Get(fiber.HeaderAuthorization)
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") ||
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.cfg.AdminToken)) != 1 {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="xsw admin"`)
		return newError(fiber.StatusUnauthorized, "admin endpoints need Authorization: Bearer <XSW_ADMIN_TOKEN>")
	}
	return c.Next()
}

type failedJobJSON struct {
	FailedAt  string `json:"failed_at"`
	Error     string `json:"error"`
	Permanent bool   `json:"permanent"`
}

type jobStatsJSON struct {
	QueueSize      int                      `json:"queue_size"`
	ActiveJobs     int                      `json:"active_jobs"`
	ActiveJobIDs   []string                 `json:"active_job_ids"`
	CompletedCount int64                    `json:"completed_count"`
	FailedCount    int64                    `json:"failed_count"`
	FailedJobs     map[string]failedJobJSON `json:"failed_jobs"`
	Workers        int                      `json:"workers"`
	Running        bool                     `json:"running"`
	QueueByLane    map[events.Lane]int      `json:"queue_by_lane"`
	Fetchers       int                      `json:"fetchers"`
}

// jobStats answers GET /admin/jobs/stats in the seed's shape, plus queue_by_lane and
// fetchers.
func (s *Server) jobStats(c *fiber.Ctx) error {
	ctx := c.UserContext()
	st, err := s.jobs.Stats(ctx)
	if err != nil {
		return busError(err)
	}
	hist, err := s.cat.History(ctx, failedJobsListed)
	if err != nil {
		return databaseError(err)
	}
	out := jobStatsJSON{
		QueueSize: st.QueueSize, ActiveJobs: len(st.ActiveBookIDs), ActiveJobIDs: st.ActiveBookIDs,
		CompletedCount: hist.Completed, FailedCount: hist.Failed, FailedJobs: make(map[string]failedJobJSON, len(hist.Recent)),
		Workers: st.Workers, Running: st.Running(), QueueByLane: st.ByLane, Fetchers: st.Fetchers,
	}
	for _, f := range hist.Recent {
		out.FailedJobs[f.BookID] = failedJobJSON{FailedAt: f.FailedAt.UTC().Format(time.RFC3339), Error: f.Error, Permanent: f.Permanent}
	}
	return c.JSON(out)
}

// syncBook answers POST /admin/jobs/sync/{book_id}?priority=N (and force-resync): the
// request goes to the manual lane from priority 5, else to the prefetch lane.
func (s *Server) syncBook(force bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := bookIDParam(c)
		if err != nil {
			return err
		}
		priority, err := intQuery(c, "priority", 0, maxPriority, events.DefaultManualPriority)
		if err != nil {
			return err
		}
		lane := events.LaneForPriority(priority)
		reason := "admin sync"
		if force {
			reason = "admin force-resync"
		}
		status, err := s.jobs.Request(c.UserContext(), jobs.Request{BookID: id, Lane: lane, Priority: priority, Force: force, Reason: reason})
		if err != nil {
			return busError(err)
		}
		return c.JSON(fiber.Map{"status": status, "book_id": id, "priority": priority, "lane": lane, "force": force})
	}
}

// clearHistory answers POST /admin/jobs/clear_history.
func (s *Server) clearHistory(c *fiber.Ctx) error {
	n, err := s.cat.ClearHistory(c.UserContext())
	if err != nil {
		return databaseError(err)
	}
	s.log.Info("job history cleared", "jobs", n)
	return c.JSON(fiber.Map{"status": "cleared", "message": "Job history cleared"})
}
