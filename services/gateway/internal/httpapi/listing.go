package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
	"github.com/xswtw/xsw/services/gateway/internal/sites"
)

// categories answers GET /categories, the site's categories, from the fetchers (cached
// ListingCacheTTL), falling back to the categories the indexer stored when the fetchers
// fail or none has described the site yet.
func (s *Server) categories(c *fiber.Ctx) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	group := "categories:" + site
	if v, ok := s.listings.Get(group, ""); ok {
		return v.(jsonBody).send(c)
	}
	ctx := c.UserContext()
	var body any
	if st, _ := s.sites.Get(ctx, site); !st.Described {
		err = checkError(sites.ErrUndescribed, "category", "cat_id", site, "")
	} else {
		// Readers asking at once share one call: one request to the site per gateway.
		body, err = s.shared(ctx, &s.fetches, group, 1, func() (any, bool, error) {
			return s.fetchCategories(c, site, group)
		})
	}
	if err != nil {
		if errors.Is(err, errPending) {
			err = newError(fiber.StatusGatewayTimeout, "no fetcher answered within %s", s.cfg.RPCTimeout)
		}
		stored, dberr := s.cat.Categories(ctx, site)
		if dberr != nil || len(stored) == 0 {
			return err
		}
		s.log.Warn("serving stored categories", "site", site, "err", err)
		out := make([]api.Category, len(stored))
		for i, cat := range stored {
			out[i] = api.Category{ID: cat.ID, Name: cat.Name, URL: cat.URL}
		}
		return c.JSON(out)
	}
	return body.(jsonBody).send(c)
}

// fetchCategories asks the fetchers for site's categories and caches their JSON under
// group before the readers sharing the call are answered, so that no reader coming in
// between asks again; a call that begins once another has cached them asks nothing.
// asked reports whether the site may have been asked.
func (s *Server) fetchCategories(c *fiber.Ctx, site, group string) (body any, asked bool, err error) {
	if v, ok := s.listings.Get(group, ""); ok {
		return v, false, nil
	}
	token := s.listings.Token(group)
	var reply events.CategoriesReply
	asked, err = s.call(s.ctx, events.SubjectRPCCategories, site, s.cfg.RPCTimeout,
		&events.CategoriesRequest{Header: events.Header{Version: events.Version}, Site: site}, &reply)
	switch {
	case err != nil:
		return nil, asked, err
	case reply.Error != nil:
		return nil, !spared(reply.Error), s.rpcFailure(site, reply.Error)
	case len(reply.Categories) == 0:
		return nil, true, newError(fiber.StatusBadGateway, "the source lists no category")
	}
	out := make([]api.Category, len(reply.Categories))
	for i, cat := range reply.Categories {
		out[i] = api.Category{ID: string(cat.ID), Name: cat.Name, URL: cat.URL}
	}
	b, err := encodeJSON(c, out)
	if err != nil {
		return nil, true, err
	}
	s.listings.Set(group, "", b, token)
	return b, true, nil
}

// listingPage is a cached listing page: its JSON and the ids of the books it lists.
type listingPage struct {
	body jsonBody
	ids  []string
}

// CacheSize is what the page costs in a cache (cache.Sizer).
func (p listingPage) CacheSize() int {
	n := len(p.body)
	for _, id := range p.ids {
		n += len(id) + 16
	}
	return n
}

// listing answers GET /categories/{cat_id}/books at once from the fetchers (cached
// ListingCacheTTL per page), then, unless bg_sync=false, queues a prefetch request for
// every listed book in the background. The category id must be the site's spelling of
// one (else 400), which only a site a fetcher has described can tell (else 503).
func (s *Server) listing(c *fiber.Ctx) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	cat := c.Params("cat_id")
	if err := s.sites.CheckCategory(c.UserContext(), site, cat); err != nil {
		return checkError(err, "category", "cat_id", site, cat)
	}
	page, err := intQuery(c, "page", 1, maxPage, 1)
	if err != nil {
		return err
	}
	bgSync, err := boolQuery(c, "bg_sync", true)
	if err != nil {
		return err
	}
	group := "listing:" + site + ":" + cat
	key := strconv.Itoa(page)
	v, ok := s.listings.Get(group, key)
	if !ok {
		// Readers asking at once share one call: one request to the site per gateway.
		req := events.ListingRequest{Header: events.Header{Version: events.Version}, Site: site, Category: events.CategoryID(cat), Page: page}
		v, err = s.shared(c.UserContext(), &s.fetches, group+":"+key, 1, func() (any, bool, error) {
			return s.fetchListing(c, &req, group, key)
		})
		if errors.Is(err, errPending) {
			return newError(fiber.StatusGatewayTimeout, "no fetcher answered within %s", s.cfg.RPCTimeout)
		}
		if err != nil {
			return err
		}
	}
	p := v.(listingPage)
	if bgSync {
		reason := fmt.Sprintf("category %s page %d", cat, page)
		if site != s.sites.Default() {
			reason = "site " + site + " " + reason
		}
		s.prefetch(site, p.ids, reason)
	}
	return p.body.send(c)
}

// fetchListing asks the fetchers for a listing page and caches it under group and key
// before the readers sharing the call are answered, so that no reader coming in between
// asks again; a call that begins once another has cached it asks nothing. asked reports
// whether the site may have been asked.
func (s *Server) fetchListing(c *fiber.Ctx, req *events.ListingRequest, group, key string) (p any, asked bool, err error) {
	if v, ok := s.listings.Get(group, key); ok {
		return v, false, nil
	}
	token := s.listings.Token(group)
	var reply events.ListingReply
	asked, err = s.call(s.ctx, events.SubjectRPCListing, req.Site, s.cfg.RPCTimeout, req, &reply)
	switch {
	case err != nil:
		return nil, asked, err
	case reply.Error != nil:
		return nil, !spared(reply.Error), s.rpcFailure(req.Site, reply.Error)
	}
	lp, err := s.newListingPage(c, req.Site, reply.Books)
	if err != nil {
		return nil, true, err
	}
	s.listings.Set(group, key, lp, token)
	return lp, true, nil
}

// newListingPage encodes the books a fetcher listed. A listed id that is not the site's
// spelling of a book id is answered as null and never queued.
func (s *Server) newListingPage(c *fiber.Ctx, site string, listed []events.ListingBook) (listingPage, error) {
	var p listingPage
	books := make([]api.ListingBook, len(listed))
	for i, b := range listed {
		books[i] = api.ListingBook{
			BookName: b.Name, Author: b.Author, LastChapter: b.LastChapterTitle, LastURL: b.LastChapterURL,
			Intro: b.Intro, BookURL: b.BookURL, Site: site,
		}
		if s.sites.CheckBook(c.UserContext(), site, b.BookID) == nil {
			books[i].BookID = &b.BookID
			p.ids = append(p.ids, b.BookID)
		}
	}
	var err error
	p.body, err = encodeJSON(c, books)
	return p, err
}

// prefetch queues a prefetch request for each book of site in a background goroutine
// that Shutdown waits for.
func (s *Server) prefetch(site string, ids []string, reason string) {
	if len(ids) == 0 {
		return
	}
	s.background(func(ctx context.Context) {
		if s.prefetchGate != nil {
			select {
			case <-s.prefetchGate:
			case <-ctx.Done():
				return
			}
		}
		for i, id := range ids {
			_, err := s.jobs.Request(ctx, jobs.Request{
				Site: site, BookID: id, Lane: events.LanePrefetch, Priority: events.PrefetchPriority, Reason: reason,
			})
			if err != nil {
				s.log.Warn("queue prefetch requests", "site", site, "book_id", id, "reason", reason, "left", len(ids)-i, "err", err)
				return
			}
		}
	})
}
