package httpapi

import (
	"context"
	"crypto/subtle"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/buildinfo"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// failedJobsListed bounds the failed_jobs map of the stats.
const failedJobsListed = 100

// adminTimeout bounds an admin call (a purge of chapter texts waits longer when
// INTERACTIVE_WAIT is longer); a replay of every dead letter cut short by it says so.
const adminTimeout = 30 * time.Second

// requireAdmin guards /admin: 403 when no token is configured, 401 unless the request
// carries "Authorization: Bearer <XSW_ADMIN_TOKEN>".
func (s *Server) requireAdmin(c *fiber.Ctx) error {
	if s.cfg.AdminToken == "" {
		return newError(fiber.StatusForbidden, "admin endpoints are disabled: set XSW_ADMIN_TOKEN to enable them")
	}
	if !s.authorized(c) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="xsw admin"`)
		return newError(fiber.StatusUnauthorized, "admin endpoints need Authorization: Bearer <XSW_ADMIN_TOKEN>")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), max(adminTimeout, s.cfg.InteractiveWait+5*time.Second))
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

// authorized reports whether the request carries the admin token, compared in constant
// time.
func (s *Server) authorized(c *fiber.Ctx) bool {
	if s.cfg.AdminToken == "" {
		return false
	}
	scheme, token, ok := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.cfg.AdminToken)) == 1
}

// jobStats answers GET /admin/jobs/stats in the seed's shape, plus queue_by_lane,
// fetchers, dead_letters, rate_interval_seconds and circuit. Books are named as the seed
// names them, by their bare id, when they are the default site's, and as "site/id" when
// they are another site's (active_job_ids and the keys of failed_jobs).
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
	out := api.JobStats{
		QueueSize: st.QueueSize, ActiveJobs: len(st.Active), ActiveJobIDs: s.activeLabels(st.Active),
		CompletedCount: hist.Completed, FailedCount: hist.Failed, FailedJobs: make(map[string]api.FailedJob, len(hist.Recent)),
		Workers: st.Workers, Running: st.Running(), QueueByLane: st.ByLane, Fetchers: st.Fetchers,
		DeadLetters: st.DeadLetters, RateInterval: st.RateInterval, Circuit: st.Circuit,
	}
	for _, f := range hist.Recent {
		out.FailedJobs[s.bookLabel(f.Site, f.BookID)] = api.FailedJob{FailedAt: f.FailedAt.UTC().Format(time.RFC3339), Error: f.Error, Permanent: f.Permanent}
	}
	return c.JSON(out)
}

// activeLabels names the books being synced (see bookLabel).
func (s *Server) activeLabels(active []jobs.Book) []string {
	out := make([]string, len(active))
	for i, b := range active {
		out[i] = s.bookLabel(b.Site, b.ID)
	}
	return out
}

// syncBook answers POST /admin/jobs/sync/{book_id}?priority=N&site=S (and
// force-resync): the request goes to the manual lane from priority 5, else to the
// prefetch lane. The book is the default site's unless site names another.
func (s *Server) syncBook(force bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		b, err := s.bookParam(c, s.querySite)
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
		if err := s.fetchable(c.UserContext(), b); err != nil {
			return err
		}
		status, err := s.jobs.Request(c.UserContext(), jobs.Request{Site: b.site, BookID: b.id, Lane: lane, Priority: priority, Force: force, Reason: reason})
		if err != nil {
			return requestError(err, b)
		}
		return c.JSON(api.SyncAnswer{Status: string(status), Site: b.site, BookID: b.id, Priority: priority, Lane: lane, Force: force})
	}
}

// clearHistory answers POST /admin/jobs/clear_history.
func (s *Server) clearHistory(c *fiber.Ctx) error {
	n, err := s.cat.ClearHistory(c.UserContext())
	if err != nil {
		return databaseError(err)
	}
	s.log.Info("job history cleared", "jobs", n)
	return c.JSON(api.Cleared{Status: "cleared", Message: "Job history cleared"})
}

// adminStats answers GET /admin/stats: what is stored, what this replica caches, the
// queue, the dead letters, every configured site and every live fetcher with its
// politeness interval and circuit (those of the default site) and the sites it serves.
func (s *Server) adminStats(c *fiber.Ctx) error {
	ctx := c.UserContext()
	var out api.AdminStats
	n, err := s.cat.Counts(ctx)
	if err != nil {
		return databaseError(err)
	}
	hist, err := s.cat.History(ctx, 0)
	if err != nil {
		return databaseError(err)
	}
	st, err := s.jobs.Stats(ctx)
	if err != nil {
		return busError(err)
	}
	hbs, err := s.jobs.Fetchers(ctx)
	if err != nil {
		return busError(err)
	}
	fresh, err := s.cat.Freshness(ctx)
	if err != nil {
		return databaseError(err)
	}
	out.Freshness = api.Freshness(fresh)
	if out.Crawls, err = s.jobs.Crawls(ctx); err != nil {
		return busError(err)
	}
	if out.Crawls == nil {
		out.Crawls = []events.CrawlProgress{}
	}
	out.Database.URL = s.cfg.Database
	out.Database.Books, out.Database.Chapters, out.Database.ChaptersWithContent = n.Books, n.Chapters, n.ChaptersWithText
	out.Cache.Replica, out.Cache.BookEntries, out.Cache.ListingEntries = s.cfg.Replica, s.books.Len(), s.listings.Len()
	out.Cache.Bytes, out.Cache.MaxBytes = s.books.Bytes()+s.listings.Bytes(), s.cfg.CacheMaxBytes
	out.Cache.TTLSeconds, out.Cache.ListingTTLSeconds = int(s.cfg.CacheTTL/time.Second), int(s.cfg.ListingCacheTTL/time.Second)
	out.Jobs.QueueSize, out.Jobs.ActiveJobs, out.Jobs.ActiveJobIDs = st.QueueSize, len(st.Active), s.activeLabels(st.Active)
	out.Jobs.CompletedCount, out.Jobs.FailedCount = hist.Completed, hist.Failed
	out.Jobs.Workers, out.Jobs.Running = st.Workers, st.Running()
	out.QueueByLane, out.DeadLetters, out.RateInterval, out.Circuit = st.ByLane, st.DeadLetters, st.RateInterval, st.Circuit
	out.Fetchers = make([]api.Fetcher, len(hbs))
	for i, h := range hbs {
		f := api.Fetcher{FetcherID: h.FetcherID, Sites: h.SiteIDs(), Workers: h.Workers, ActiveJobs: len(h.Active),
			ActiveJobIDs: make([]string, len(h.Active)), Interval: h.Interval, Circuit: h.Circuit, Draining: h.Draining,
			StartedAt: rfc3339(nonZero(h.StartedAt)), At: rfc3339(nonZero(h.At))}
		for j, a := range h.Active {
			f.ActiveJobIDs[j] = s.bookLabel(a.Site, a.BookID)
		}
		out.Fetchers[i] = f
	}
	out.Sites = s.siteList(ctx)
	return c.JSON(out)
}

func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// version answers GET /admin/version: which build this gateway is.
func (s *Server) version(c *fiber.Ctx) error {
	b := buildinfo.Get()
	return c.JSON(api.Version{Version: b.Version, Revision: b.Revision, Time: b.Time, GoVersion: b.GoVersion})
}
