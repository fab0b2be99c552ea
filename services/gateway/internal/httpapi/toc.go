package httpapi

import (
	"context"
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
)

// maxTOCFetches bounds the source pages one reader's request may fetch out of turn.
const maxTOCFetches = 3

// fetchTOCPage asks the fetchers for one table-of-contents page of the source, once for
// all concurrent readers of it, within InteractiveWait. first is the position of the
// page's first chapter in the whole table of contents. The fetcher also publishes the
// page for the indexer.
func (s *Server) fetchTOCPage(bookID string, page, first int) (*events.TOCPageFetched, error) {
	v, err, _ := s.fetches.Do("toc:"+bookID+":"+strconv.Itoa(page), func() (any, error) {
		req := events.TOCRequest{Header: events.Header{Version: events.Version}, BookID: bookID, Page: page, FirstNumber: first}
		var reply events.TOCReply
		if err := s.call(s.ctx, events.SubjectRPCTOC, s.cfg.InteractiveWait, &req, &reply); err != nil {
			return nil, err
		}
		if reply.Error != nil {
			return nil, rpcFailure(reply.Error)
		}
		if reply.Page == nil || reply.Page.BookID != bookID || reply.Page.Page != page {
			return nil, newError(fiber.StatusBadGateway, "a fetcher replied without table-of-contents page %d of book %s", page, bookID)
		}
		return reply.Page, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*events.TOCPageFetched), nil
}

// refsOutOfTurn completes the chapter refs numbered from..to of a book whose table of
// contents is still being stored: have are the stored ones in that range; the missing
// ones are read from the source's table-of-contents pages that hold them, ahead of the
// book's sync, at most maxTOCFetches pages. Pages already stored, and pages past the
// count the site reported, are never fetched: what they lack does not exist.
//
// A source page holds as many chapters as its first page (all pages but the last are
// full on this site), so page p starts at chapter (p-1)*perPage+1. When page 1 is not
// stored, it is fetched first to learn that.
func (s *Server) refsOutOfTurn(ctx context.Context, bookID string, from, to int, have []catalog.ChapterRef) ([]catalog.ChapterRef, error) {
	got := make(map[int]catalog.ChapterRef, to-from+1)
	for _, r := range have {
		got[r.Number] = r
	}
	add := func(p *events.TOCPageFetched) {
		for _, r := range p.Chapters {
			if r.Number >= from && r.Number <= to {
				if _, ok := got[r.Number]; !ok {
					got[r.Number] = catalog.ChapterRef{Number: r.Number, ChapterID: r.ChapterID, Title: r.Title, URL: r.URL}
				}
			}
		}
	}
	layout, err := s.cat.TOCLayout(ctx, bookID)
	if err != nil {
		return nil, databaseError(err)
	}
	fetched := 0
	if layout.PerPage == 0 {
		p, err := s.fetchTOCPage(bookID, 1, 1)
		if err != nil {
			return nil, err
		}
		fetched++
		add(p)
		layout.PerPage, layout.Pages = len(p.Chapters), max(layout.Pages, p.TotalPages)
		if layout.PerPage == 0 { // the book has no chapter at all
			return sortedRefs(got), nil
		}
	}
	var pages []int
	for n := from; n <= to; n++ {
		if _, ok := got[n]; ok {
			continue
		}
		p := (n-1)/layout.PerPage + 1
		if layout.Pages > 0 && p > layout.Pages {
			break
		}
		if len(pages) == 0 || pages[len(pages)-1] != p {
			pages = append(pages, p)
		}
	}
	if len(pages) == 0 {
		return sortedRefs(got), nil
	}
	stored, err := s.cat.StoredTOCPages(ctx, bookID, pages)
	if err != nil {
		return nil, databaseError(err)
	}
	for _, p := range pages {
		if stored[p] || (p == 1 && fetched > 0) {
			continue
		}
		if fetched >= maxTOCFetches {
			break
		}
		page, err := s.fetchTOCPage(bookID, p, (p-1)*layout.PerPage+1)
		if err != nil {
			return nil, err
		}
		fetched++
		add(page)
	}
	return sortedRefs(got), nil
}

func sortedRefs(m map[int]catalog.ChapterRef) []catalog.ChapterRef {
	out := make([]catalog.ChapterRef, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b catalog.ChapterRef) int { return a.Number - b.Number })
	return out
}

// refOutOfTurn finds chapter num of a book still syncing in the source's table of
// contents (see refsOutOfTurn); ok is false when the source has no such chapter.
func (s *Server) refOutOfTurn(ctx context.Context, bookID string, num int) (catalog.ChapterRef, bool, error) {
	refs, err := s.refsOutOfTurn(ctx, bookID, num, num, nil)
	if err != nil || len(refs) == 0 {
		return catalog.ChapterRef{}, false, err
	}
	return refs[0], true, nil
}
