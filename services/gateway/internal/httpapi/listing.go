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
	token := s.listings.Token(group)
	var reply events.CategoriesReply
	if st, _ := s.sites.Get(ctx, site); !st.Described {
		err = checkError(sites.ErrUndescribed, "category", "cat_id", site, "")
	} else {
		// Readers asking at once share one call: one request to the site per gateway.
		var shared any
		shared, err, _ = s.fetches.Do(group, func() (any, error) {
			var reply events.CategoriesReply
			err := s.call(s.detached(ctx), events.SubjectRPCCategories, site, s.cfg.RPCTimeout,
				&events.CategoriesRequest{Header: events.Header{Version: events.Version}, Site: site}, &reply)
			return reply, err
		})
		reply, _ = shared.(events.CategoriesReply)
	}
	switch {
	case err != nil:
	case reply.Error != nil:
		err = s.rpcFailure(site, reply.Error)
	case len(reply.Categories) == 0:
		err = newError(fiber.StatusBadGateway, "the source lists no category")
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
	out := make([]api.Category, len(reply.Categories))
	for i, cat := range reply.Categories {
		out[i] = api.Category{ID: string(cat.ID), Name: cat.Name, URL: cat.URL}
	}
	body, err := encodeJSON(c, out)
	if err != nil {
		return err
	}
	s.listings.Set(group, "", body, token)
	return body.send(c)
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
		token := s.listings.Token(group)
		// Readers asking at once share one call: one request to the site per gateway.
		shared, err, _ := s.fetches.Do(group+":"+key, func() (any, error) {
			var reply events.ListingReply
			err := s.call(s.detached(c.UserContext()), events.SubjectRPCListing, site, s.cfg.RPCTimeout,
				&events.ListingRequest{Header: events.Header{Version: events.Version}, Site: site, Category: events.CategoryID(cat), Page: page}, &reply)
			return reply, err
		})
		reply, _ := shared.(events.ListingReply)
		if errors.Is(err, errPending) {
			return newError(fiber.StatusGatewayTimeout, "no fetcher answered within %s", s.cfg.RPCTimeout)
		}
		if err != nil {
			return err
		}
		if reply.Error != nil {
			return s.rpcFailure(site, reply.Error)
		}
		p, err := s.newListingPage(c, site, reply.Books)
		if err != nil {
			return err
		}
		s.listings.Set(group, key, p, token)
		v = p
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
