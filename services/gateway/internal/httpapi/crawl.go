package httpapi

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// crawl answers POST /admin/crawl/categories?categories=1-7&pages=1-10: the listing
// pages are walked by the fetchers at the polite rate and every listed book is queued
// in the prefetch lane.
func (s *Server) crawl(c *fiber.Ctx) error {
	cats, err := parseRange(c.Query("categories", "1-7"), 1, 99)
	if err != nil {
		return badRequest("categories: %v", err)
	}
	pages, err := parseRange(c.Query("pages", "1"), 1, events.MaxListingPage)
	if err != nil {
		return badRequest("pages: %v", err)
	}
	from, to := pages[0], pages[len(pages)-1]
	if to-from+1 != len(pages) {
		return badRequest("pages: want one range such as 1-10")
	}
	if len(cats)*len(pages) > events.MaxCrawlPages {
		return badRequest("at most %d listing pages in one crawl, asked for %d", events.MaxCrawlPages, len(cats)*len(pages))
	}
	req, err := s.jobs.Crawl(c.UserContext(), cats, from, to)
	if err != nil {
		return busError(err)
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{
		"status": "queued", "crawl_id": req.CrawlID, "categories": cats, "from_page": from, "to_page": to,
		"pages": len(cats) * len(pages),
	})
}

// crawlProgress answers GET /admin/crawl/{crawl_id}.
func (s *Server) crawlProgress(c *fiber.Ctx) error {
	id := c.Params("crawl_id")
	if len(id) > 64 || !strings.HasPrefix(id, "crawl-") || strings.Trim(id[len("crawl-"):], "0123456789") != "" {
		return badRequest("crawl_id must look like crawl-1767000000000000000")
	}
	p, err := s.jobs.CrawlProgress(c.UserContext(), id)
	if errors.Is(err, jobs.ErrNoCrawl) {
		return fiber.NewError(fiber.StatusNotFound, "no crawl "+id)
	}
	if err != nil {
		return busError(err)
	}
	return c.JSON(p)
}

// crawls answers GET /admin/crawl: every crawl kept, newest first.
func (s *Server) crawls(c *fiber.Ctx) error {
	ps, err := s.jobs.Crawls(c.UserContext())
	if err != nil {
		return busError(err)
	}
	if ps == nil {
		ps = []events.CrawlProgress{}
	}
	return c.JSON(ps)
}

// parseRange reads "1-7", "3", or "1,3,5-6" into sorted distinct numbers in [lo, hi].
func parseRange(s string, lo, hi int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "-")
		from, err1 := strconv.Atoi(a)
		to := from
		var err2 error
		if isRange {
			to, err2 = strconv.Atoi(b)
		}
		if err1 != nil || err2 != nil || from < lo || to > hi || to < from {
			return nil, errors.New("want numbers or ranges from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi) + ", like 1-7 or 1,3,5")
		}
		if to-from > 10000 {
			return nil, errors.New("range too long")
		}
		for n := from; n <= to; n++ {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
