package httpapi

import (
	"context"
	"errors"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
)

// Bounds of a search.
const (
	maxQueryRunes      = 50
	maxSearchLimit     = 100
	defaultSearchLimit = 20
	// searchTimeout bounds one search in Postgres.
	searchTimeout = 5 * time.Second
)

// searchTypes maps search_type to what is searched.
var searchTypes = map[string]int{
	"all":      catalog.SearchBooks | catalog.SearchTitles,
	"books":    catalog.SearchBooks,
	"chapters": catalog.SearchTitles,
	"content":  catalog.SearchContent,
}

// searchQuery reads and checks q: trimmed, 1 to maxQueryRunes characters of valid UTF-8
// without control characters.
func searchQuery(c *fiber.Ctx) (string, error) {
	q := strings.TrimSpace(c.Query("q"))
	switch {
	case q == "":
		return "", badRequest("q must be the text to search for")
	case !utf8.ValidString(q):
		return "", badRequest("q must be UTF-8 text")
	case utf8.RuneCountInString(q) > maxQueryRunes:
		return "", badRequest("q must be at most %d characters, got %d", maxQueryRunes, utf8.RuneCountInString(q))
	case strings.ContainsFunc(q, unicode.IsControl):
		return "", badRequest("q must not hold control characters")
	}
	return q, nil
}

// search answers GET /search?q=&search_type=all|books|chapters|content&limit=N&site=:
// stored books by name and author, chapters by title (and, for content, by text), best
// first. Like every unprefixed route it searches the default site (an existing client
// follows a hit's book_id to /books/{book_id}); ?site= names another site, and
// ?site=all searches every site (each hit names its site). Under /sites/{site} it
// searches that site. The query matches as typed and in its Traditional forms, so
// Simplified input finds a site's Traditional text.
func (s *Server) search(c *fiber.Ctx) error {
	site, err := s.searchSite(c)
	if err != nil {
		return err
	}
	q, err := searchQuery(c)
	if err != nil {
		return err
	}
	kind := c.Query("search_type", "all")
	in, ok := searchTypes[kind]
	if !ok {
		return badRequest("search_type must be all, books, chapters or content, got %q", kind)
	}
	limit, err := intQuery(c, "limit", 1, maxSearchLimit, defaultSearchLimit)
	if err != nil {
		return err
	}
	conv, err := s.variants()
	if err != nil {
		return err // the embedded dictionaries do not load: a broken build, a real 500
	}
	terms := conv.Forms(q)
	ctx, cancel := context.WithTimeout(c.UserContext(), searchTimeout)
	defer cancel()
	hits, err := s.cat.Search(ctx, catalog.Search{Terms: terms, In: in, Limit: limit, Site: site})
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return newError(fiber.StatusGatewayTimeout, "the search took longer than %s; try a longer query or another search_type", searchTimeout)
	}
	if err != nil {
		return databaseError(err)
	}
	out := api.Search{Query: q, SearchType: kind, Terms: terms, Count: len(hits), Results: make([]api.SearchHit, len(hits))}
	for i, h := range hits {
		out.Results[i] = api.SearchHit{
			Type: h.Type, Match: h.Match, Site: h.Site, BookID: h.BookID, Name: h.Name, Author: h.Author, ChapterNum: h.ChapterNum,
			Title: h.Title, URL: h.URL, Score: math.Round(h.Score*1000) / 1000, Snippet: h.Snippet,
		}
	}
	return c.JSON(out)
}

// allSites is the ?site= of a search over every site.
const allSites = "all"

// searchSite returns the site a search covers: the path's, else ?site= (the default
// site without it), or "" for every site (?site=all).
func (s *Server) searchSite(c *fiber.Ctx) (string, error) {
	if c.Params("site") != "" {
		return s.pathSite(c)
	}
	if c.Query("site") == allSites {
		return "", nil
	}
	return s.querySite(c)
}
