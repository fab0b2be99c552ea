package httpapi

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
	"github.com/xswtw/xsw/services/gateway/internal/sites"
)

// bookRef names a book: its site and the site's id for it.
type bookRef struct {
	site, id string
}

// key is the book's key in the caches and the read counts.
func (b bookRef) key() string { return events.Key(b.site, b.id) }

// siteOf reads the site a request is about.
type siteOf func(c *fiber.Ctx) (string, error)

// pathSite returns the site a reader route serves: {site} under /sites/{site}, else the
// default site.
func (s *Server) pathSite(c *fiber.Ctx) (string, error) {
	return s.knownSite(c.Params("site"))
}

// querySite returns the site an admin operation names with ?site=, else the default
// site.
func (s *Server) querySite(c *fiber.Ctx) (string, error) {
	return s.knownSite(c.Query("site"))
}

// knownSite returns site, or the default site for "", or a 404 naming the sites served.
func (s *Server) knownSite(site string) (string, error) {
	if site == "" {
		return s.sites.Default(), nil
	}
	if !s.sites.Known(site) {
		return "", notFound("unknown site %.40q: this gateway serves %s", site, strings.Join(s.sites.IDs(), ", "))
	}
	return site, nil
}

// bookParam reads the book a route names: its site (by where) and :book_id. The id must
// be one the contract can carry and, once a fetcher has described the site, the site's
// own spelling of a book id: else the answer is 400, as for any malformed parameter
// (01000005 is not how m.xsw.tw writes book 1000005, so it names no book). A book of a
// site no fetcher has described yet passes: only what the database holds is served for
// it (see fetchable).
func (s *Server) bookParam(c *fiber.Ctx, where siteOf) (bookRef, error) {
	site, err := where(c)
	if err != nil {
		return bookRef{}, err
	}
	b := bookRef{site: site, id: c.Params("book_id")}
	if err := s.sites.CheckBook(c.UserContext(), b.site, b.id); err != nil && !errors.Is(err, sites.ErrUndescribed) {
		return bookRef{}, checkError(err, "book", "book_id", b.site, b.id)
	}
	return b, nil
}

// fetchable reports whether anything may be queued or fetched for book b: nil, else the
// error to answer (400 for an id that is not the site's spelling, 503 with Retry-After
// while no fetcher has described the site). It is asked right before every request to
// the fetchers about a book and every book request queued, so that no id a site would
// not write ever reaches a fetcher.
func (s *Server) fetchable(ctx context.Context, b bookRef) error {
	return checkError(s.sites.CheckBook(ctx, b.site, b.id), "book", "book_id", b.site, b.id)
}

// checkError maps a sites check's error about id, a what id of site read from the
// parameter param, to the client's answer.
func checkError(err error, what, param, site, id string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sites.ErrUnknownSite):
		return notFound("unknown site %.40q", site)
	case errors.Is(err, sites.ErrBadID):
		return badRequest("%s must be 1 to %d ASCII letters, digits, '-' or '_', got %.80q", param, events.MaxBookIDLen, id)
	case errors.Is(err, sites.ErrNotCanonical):
		return badRequest("%s %.80q names no %s: it is not how site %s writes a %s id", param, id, what, site, what)
	case errors.Is(err, sites.ErrUndescribed):
		return &httpError{status: fiber.StatusServiceUnavailable, retryAfter: retryAfterSeconds, err: err,
			detail: "no fetcher has described site " + site + " yet: nothing can be fetched for it now"}
	}
	return err
}

// refusedError is the answer to a reader who needs a page of a site that refuses us:
// 503 at once, saying so in the fetchers' words, with a Retry-After until the next probe.
// queued says the book was queued, to be fetched when the site lets us in again.
func refusedError(st sites.Site, queued bool) error {
	detail := st.Detail
	if detail == "" {
		detail = st.ID + ": the site refuses us"
	}
	if queued {
		detail += "; the book is queued and will be fetched once the site lets us in again"
	}
	retry := retryAfterSeconds
	if wait := int(time.Until(st.Until).Seconds()) + 1; wait > retry {
		retry = min(wait, 3600)
	}
	err := &httpError{status: fiber.StatusServiceUnavailable, detail: detail, retryAfter: retry}
	if queued {
		err.err = errQueued
	}
	return err
}

// requestError maps the error of a book request to the client's answer.
func requestError(err error, b bookRef) error {
	if errors.Is(err, jobs.ErrRefused) {
		return checkError(err, "book", "book_id", b.site, b.id)
	}
	return busError(err)
}

// bookLabel names a book in the admin statistics: its bare id for a book of the default
// site (the seed's shape), "site/id" for any other.
func (s *Server) bookLabel(site, id string) string {
	if site == s.sites.Default() {
		return id
	}
	return site + "/" + id
}

// siteList lists every configured site, in the order of SOURCES (the default first), as
// its fetchers last described it; state "unknown" for a site none has.
func (s *Server) siteList(ctx context.Context) []api.Site {
	list := s.sites.List(ctx)
	out := make([]api.Site, len(list))
	for i, st := range list {
		out[i] = api.Site{ID: st.ID, Name: st.Name, BaseURL: publicURL(st.BaseURL), Default: st.Default, State: st.State, RateInterval: st.RateInterval, Detail: st.Detail}
		if !st.Until.IsZero() {
			until := st.Until.UTC()
			out[i].Until = &until
		}
	}
	return out
}

// listSites answers GET /sites (see siteList).
func (s *Server) listSites(c *fiber.Ctx) error {
	return c.JSON(s.siteList(c.UserContext()))
}
