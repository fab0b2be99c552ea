package httpapi

import (
	"context"
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
)

// fetchRefs asks the fetchers for chapters from..to of a book's chapter list, within
// InteractiveWait, once for all concurrent readers of that range. stored is what the
// database holds of the list, so that the fetcher fetches nothing twice; which pages of
// the site hold the range is the fetcher's to know. The fetcher also publishes the
// pages it fetched for the indexer. The call is charged to the reader's share by the most
// pages it may fetch.
func (s *Server) fetchRefs(ctx context.Context, b bookRef, from, to int, stored events.StoredPages) ([]events.ChapterRef, error) {
	key := "refs:" + b.key() + ":" + strconv.Itoa(from) + "-" + strconv.Itoa(to)
	v, err := s.shared(ctx, &s.fetches, key, events.MaxPagesPerRefsCall, func() (any, bool, error) {
		req := events.ChapterRefsRequest{Header: events.Header{Version: events.Version}, Site: b.site, BookID: b.id,
			From: from, To: to, Stored: stored}
		var reply events.ChapterRefsReply
		if asked, err := s.call(s.ctx, events.SubjectRPCRefs, b.site, s.cfg.InteractiveWait, &req, &reply); err != nil {
			return nil, asked, err
		}
		if reply.Error != nil {
			return nil, !spared(reply.Error), s.rpcFailure(b.site, reply.Error)
		}
		if reply.Refs == nil {
			return nil, true, newError(fiber.StatusBadGateway, "a fetcher replied without chapters %d-%d of book %s of site %s", from, to, b.id, b.site)
		}
		return reply.Refs, true, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]events.ChapterRef), nil
}

// refsOutOfTurn completes the chapter refs numbered from..to of a book whose chapter
// list is still being stored: have are the stored ones in that range; the missing ones
// (from the first missing to the last) are asked of the fetchers ahead of the book's
// sync. The answer holds what the site has in the range, fewer when the book ends
// sooner or the fetcher stopped at its bound of pages fetched out of turn.
func (s *Server) refsOutOfTurn(ctx context.Context, b bookRef, from, to int, have []catalog.ChapterRef) ([]catalog.ChapterRef, error) {
	got := make(map[int]catalog.ChapterRef, to-from+1)
	for _, r := range have {
		got[r.Number] = r
	}
	first, last := 0, 0
	for n := from; n <= to; n++ {
		if _, ok := got[n]; !ok {
			if first == 0 {
				first = n
			}
			last = n
		}
	}
	if first == 0 {
		return sortedRefs(got), nil
	}
	if err := s.fetchable(ctx, b); err != nil {
		return nil, err
	}
	stored, err := s.cat.StoredPages(ctx, b.site, b.id)
	if err != nil {
		return nil, databaseError(err)
	}
	refs, err := s.fetchRefs(ctx, b, first, last, stored)
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		if _, ok := got[r.Number]; !ok && r.Number >= from && r.Number <= to && events.ValidID(r.ChapterID) {
			got[r.Number] = catalog.ChapterRef{Number: r.Number, ChapterID: r.ChapterID, Title: r.Title, URL: r.URL}
		}
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

// refOutOfTurn asks the fetchers for chapter num of a book still syncing (see
// refsOutOfTurn); ok is false when the site has no such chapter.
func (s *Server) refOutOfTurn(ctx context.Context, b bookRef, num int) (catalog.ChapterRef, bool, error) {
	refs, err := s.refsOutOfTurn(ctx, b, num, num, nil)
	if err != nil || len(refs) == 0 {
		return catalog.ChapterRef{}, false, err
	}
	return refs[0], true, nil
}
