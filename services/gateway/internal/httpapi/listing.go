package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

type categoryJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
}

// categories answers GET /categories from the fetchers (cached ListingCacheTTL), falling
// back to the categories the indexer stored when the fetchers fail.
func (s *Server) categories(c *fiber.Ctx) error {
	if v, ok := s.listings.Get("categories", ""); ok {
		return v.(jsonBody).send(c)
	}
	ctx := c.UserContext()
	token := s.listings.Token("categories")
	var reply events.CategoriesReply
	err := s.call(ctx, events.SubjectRPCCategories, s.cfg.RPCTimeout,
		&events.CategoriesRequest{Header: events.Header{Version: events.Version}}, &reply)
	switch {
	case err != nil:
	case reply.Error != nil:
		err = rpcFailure(reply.Error)
	case len(reply.Categories) == 0:
		err = newError(fiber.StatusBadGateway, "the source lists no category")
	}
	if err != nil {
		if errors.Is(err, errPending) {
			err = newError(fiber.StatusGatewayTimeout, "no fetcher answered within %s", s.cfg.RPCTimeout)
		}
		stored, dberr := s.cat.Categories(ctx)
		if dberr != nil || len(stored) == 0 {
			return err
		}
		s.log.Warn("serving stored categories", "err", err)
		out := make([]categoryJSON, len(stored))
		for i, cat := range stored {
			out[i] = categoryJSON{ID: strconv.Itoa(cat.ID), Name: cat.Name, URL: cat.URL}
		}
		return c.JSON(out)
	}
	out := make([]categoryJSON, len(reply.Categories))
	for i, cat := range reply.Categories {
		out[i] = categoryJSON{ID: strconv.Itoa(cat.ID), Name: cat.Name, URL: cat.URL}
	}
	body, err := encodeJSON(c, out)
	if err != nil {
		return err
	}
	s.listings.Set("categories", "", body, token)
	return body.send(c)
}

// listingBookJSON is a listed book as the web client reads it.
type listingBookJSON struct {
	BookName    string  `json:"bookname"`
	Author      string  `json:"author"`
	LastChapter string  `json:"lastchapter"`
	LastURL     string  `json:"lasturl"`
	Intro       string  `json:"intro"`
	BookURL     string  `json:"bookurl"`
	BookID      *string `json:"book_id"`
}

// listingPage is a cached listing page: its JSON and the ids of the books it lists.
type listingPage struct {
	body jsonBody
	ids  []string
}

// listing answers GET /categories/{cat_id}/books at once from the fetchers (cached
// ListingCacheTTL per page), then, unless bg_sync=false, queues a prefetch request for
// every listed book in the background.
func (s *Server) listing(c *fiber.Ctx) error {
	cat, err := intParam(c, "cat_id", 1, maxCategory)
	if err != nil {
		return err
	}
	page, err := intQuery(c, "page", 1, maxPage, 1)
	if err != nil {
		return err
	}
	bgSync, err := boolQuery(c, "bg_sync", true)
	if err != nil {
		return err
	}
	group := fmt.Sprintf("listing:%d", cat)
	key := strconv.Itoa(page)
	v, ok := s.listings.Get(group, key)
	if !ok {
		token := s.listings.Token(group)
		var reply events.ListingReply
		err := s.call(c.UserContext(), events.SubjectRPCListing, s.cfg.RPCTimeout,
			&events.ListingRequest{Header: events.Header{Version: events.Version}, Category: cat, Page: page}, &reply)
		if errors.Is(err, errPending) {
			return newError(fiber.StatusGatewayTimeout, "no fetcher answered within %s", s.cfg.RPCTimeout)
		}
		if err != nil {
			return err
		}
		if reply.Error != nil {
			return rpcFailure(reply.Error)
		}
		p, err := newListingPage(c, reply.Books)
		if err != nil {
			return err
		}
		s.listings.Set(group, key, p, token)
		v = p
	}
	p := v.(listingPage)
	if bgSync {
		s.prefetch(p.ids, fmt.Sprintf("category %d page %d", cat, page))
	}
	return p.body.send(c)
}

func newListingPage(c *fiber.Ctx, listed []events.ListingBook) (listingPage, error) {
	var p listingPage
	books := make([]listingBookJSON, len(listed))
	for i, b := range listed {
		books[i] = listingBookJSON{
			BookName: b.Name, Author: b.Author, LastChapter: b.LastChapterTitle, LastURL: b.LastChapterURL,
			Intro: b.Intro, BookURL: b.BookURL,
		}
		if events.ValidBookID(b.BookID) {
			books[i].BookID = &b.BookID
			p.ids = append(p.ids, b.BookID)
		}
	}
	var err error
	p.body, err = encodeJSON(c, books)
	return p, err
}

// prefetch queues a prefetch request for each book in a background goroutine that
// Shutdown waits for.
func (s *Server) prefetch(ids []string, reason string) {
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
				BookID: id, Lane: events.LanePrefetch, Priority: events.PrefetchPriority, Reason: reason,
			})
			if err != nil {
				s.log.Warn("queue prefetch requests", "book_id", id, "reason", reason, "left", len(ids)-i, "err", err)
				return
			}
		}
	})
}
