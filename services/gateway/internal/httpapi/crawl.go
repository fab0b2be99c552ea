package httpapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// crawl answers POST /admin/crawl/categories?site=S&categories=1-7&pages=1-10: the
// listing pages of the site's categories (the default site's unless site names another)
// are walked by the fetchers at the polite rate and every listed book is queued in the
// prefetch lane. categories lists category ids, a range of numbers (1-7) standing for
// each number in it; without it, every category stored for the site is crawled.
func (s *Server) crawl(c *fiber.Ctx) error {
	site, err := s.querySite(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	cats, err := s.crawlCategories(ctx, site, c.Query("categories"))
	if err != nil {
		return err
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
	req, err := s.jobs.Crawl(ctx, site, cats, from, to)
	if err != nil {
		return busError(err)
	}
	return c.Status(fiber.StatusAccepted).JSON(api.CrawlQueued{
		Status: "queued", CrawlID: req.CrawlID, Site: site, Categories: cats, FromPage: from, ToPage: to,
		Pages: len(cats) * len(pages),
	})
}

// maxCrawlCategories bounds the categories one crawl names.
const maxCrawlCategories = 1000

// crawlCategories reads the categories of a crawl of site: each item of list a category
// id, or a range of numbers ("1-7") standing for each; every one must be the site's
// spelling of a category id. An empty list is every category stored for the site.
func (s *Server) crawlCategories(ctx context.Context, site, list string) ([]events.CategoryID, error) {
	var ids []string
	if list == "" {
		stored, err := s.cat.Categories(ctx, site)
		if err != nil {
			return nil, databaseError(err)
		}
		if len(stored) == 0 {
			return nil, badRequest("categories: none is stored for site %s yet; name them, such as categories=1-7", site)
		}
		for _, cat := range stored {
			ids = append(ids, cat.ID)
		}
	} else {
		var err error
		isID := func(id string) bool { return s.sites.CheckCategory(ctx, site, id) == nil }
		if ids, err = parseCategories(list, isID); err != nil {
			return nil, badRequest("categories: %v", err)
		}
	}
	out := make([]events.CategoryID, len(ids))
	for i, id := range ids {
		if err := s.sites.CheckCategory(ctx, site, id); err != nil {
			return nil, checkError(err, "category", "categories", site, id)
		}
		out[i] = events.CategoryID(id)
	}
	return out, nil
}

// parseCategories reads "1-7", "3", "1,3,5-6" or "fantasy,romance" into distinct ids in
// order. An item the site spells a category id with (isID) is that id, even if it looks
// like a range ("2020-2021"); otherwise two numbers without leading zeros joined by '-'
// are the range of the numbers from the first to the second.
func parseCategories(list string, isID func(string) bool) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(id string) error {
		if !seen[id] {
			if len(out) == maxCrawlCategories {
				return fmt.Errorf("at most %d categories", maxCrawlCategories)
			}
			seen[id] = true
			out = append(out, id)
		}
		return nil
	}
	for _, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		a, b, isRange := strings.Cut(part, "-")
		from, err1 := strconv.Atoi(a)
		to, err2 := strconv.Atoi(b)
		if isRange && !isID(part) && err1 == nil && err2 == nil && strconv.Itoa(from) == a && strconv.Itoa(to) == b {
			if to < from || to-from >= maxCrawlCategories {
				return nil, fmt.Errorf("range %q: want from <= to, at most %d numbers", part, maxCrawlCategories)
			}
			for n := from; n <= to; n++ {
				if err := add(strconv.Itoa(n)); err != nil {
					return nil, err
				}
			}
			continue
		}
		if !events.ValidID(part) {
			return nil, fmt.Errorf("%.80q is neither a category id nor a range such as 1-7", part)
		}
		if err := add(part); err != nil {
			return nil, err
		}
	}
	return out, nil
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
