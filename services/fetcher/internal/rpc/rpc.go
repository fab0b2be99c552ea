// Package rpc serves the gateways' interactive requests (a site's categories, a listing
// page, a chapter's text, the refs of chapters a reader waits for) over NATS
// request/reply, in the fetchers' queue group, each through the polite client of the site
// the request names.
package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/singleflight"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/services/fetcher/internal/checkpoint"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/sites"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/site"
)

// Server answers request/reply calls.
type Server struct {
	NC *nats.Conn
	JS jetstream.JetStream
	// Sites are the sites served; each request names one of them.
	Sites *sites.Set
	// Checkpoints tells what the syncs learnt of a book's chapter list.
	Checkpoints checkpoint.Store
	Logger      *slog.Logger
	// Timeout bounds one call, politeness wait included.
	Timeout time.Duration
	// Concurrency bounds the calls handled at once by this process.
	Concurrency int

	// pages shares one fetch of a chapter-list page between concurrent calls.
	pages singleflight.Group
}

// Run serves until ctx ends, then stops taking calls and waits for those in flight.
func (s *Server) Run(ctx context.Context) error {
	if s.Timeout <= 0 {
		s.Timeout = 2 * time.Minute
	}
	if s.Concurrency < 1 {
		s.Concurrency = 16
	}
	sem := make(chan struct{}, s.Concurrency)
	var wg sync.WaitGroup
	handlers := map[string]func(context.Context, []byte) any{
		events.SubjectRPCCategories: s.categories,
		events.SubjectRPCListing:    s.listing,
		events.SubjectRPCChapter:    s.chapter,
		events.SubjectRPCRefs:       s.refs,
	}
	var subs []*nats.Subscription
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
		wg.Wait()
	}()
	for call, h := range handlers {
		for _, id := range s.Sites.IDs() {
			sub, err := s.subscribe(ctx, events.RPCSubject(call, id), h, sem, &wg)
			if err != nil {
				return err
			}
			subs = append(subs, sub)
		}
	}
	<-ctx.Done()
	return nil
}

// subscribe serves h on subject in the fetchers' queue group, at most cap(sem) calls at
// once, each counted in wg.
func (s *Server) subscribe(ctx context.Context, subject string, h func(context.Context, []byte) any, sem chan struct{}, wg *sync.WaitGroup) (*nats.Subscription, error) {
	sub, err := s.NC.QueueSubscribe(subject, events.QueueFetchers, func(m *nats.Msg) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			deadline := time.Now().Add(s.Timeout)
			if d, err := time.Parse(time.RFC3339Nano, m.Header.Get(events.HeaderDeadline)); err == nil {
				if !time.Now().Before(d) {
					// The caller has gone: nothing is fetched for nobody.
					s.Logger.Debug("rpc call dropped: its caller has stopped waiting", "subject", m.Subject, "deadline", d)
					return
				}
				if d.Before(deadline) {
					deadline = d
				}
			}
			cctx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			reply := h(cctx, m.Data)
			if cctx.Err() != nil && ctx.Err() == nil && time.Now().After(deadline) {
				return // nobody waits for the reply any more
			}
			b, err := json.Marshal(reply)
			if err == nil {
				err = m.Respond(b)
			}
			if err != nil {
				s.Logger.Warn("rpc reply", "subject", m.Subject, "err", err)
			}
		}()
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	return sub, nil
}

// site returns the site a request names, or a bad_request error when this fetcher does
// not serve it.
func (s *Server) site(id string) (*sites.Site, *events.RPCError) {
	st, ok := s.Sites.Get(id)
	if !ok {
		return nil, &events.RPCError{Kind: events.ErrKindBadRequest,
			Message: fmt.Sprintf("site %q is not served by this fetcher (it serves %v)", id, s.Sites.IDs())}
	}
	return st, nil
}

// book returns the site a request names after checking that bookID is its canonical
// spelling of a book id: nothing is fetched for another.
func (s *Server) book(siteID, bookID string) (*sites.Site, *events.RPCError) {
	st, rerr := s.site(siteID)
	if rerr != nil {
		return nil, rerr
	}
	if !st.Source.CanonicalBookID(bookID) {
		return nil, rpcError(fmt.Errorf("book %q of site %s: %w", bookID, siteID, site.ErrNotCanonical))
	}
	return st, nil
}

func get(ctx context.Context, st *sites.Site, url string) (*source.Page, *events.RPCError) {
	p, err := st.Client.Get(ctx, url, politeness.Interactive)
	if err != nil {
		return nil, rpcError(err)
	}
	return p, nil
}

// rpcError classifies err for the gateway.
func rpcError(err error) *events.RPCError {
	kind := events.ErrKindSource
	switch {
	case errors.Is(err, source.ErrNotFound):
		kind = events.ErrKindNotFound
	case errors.Is(err, site.ErrNotCanonical):
		kind = events.ErrKindBadRequest
	case errors.Is(err, site.ErrParse):
		kind = events.ErrKindParse
	case errors.Is(err, politeness.ErrCircuitOpen):
		kind = events.ErrKindCircuit
	case errors.Is(err, politeness.ErrRefused):
		kind = events.ErrKindRefused
	case errors.Is(err, politeness.ErrBusy):
		kind = events.ErrKindBusy
	case errors.Is(err, events.ErrInvalid), errors.Is(err, events.ErrVersion):
		kind = events.ErrKindBadRequest
	case source.Timeout(err), errors.Is(err, context.DeadlineExceeded):
		kind = events.ErrKindTimeout
	}
	e := &events.RPCError{Kind: kind, Message: err.Error()}
	if busy, ok := errors.AsType[*politeness.BusyError](err); ok {
		// The gateway passes it on as the reader's Retry-After.
		e.RetryAfter = busy.RetryAfter.Seconds()
	}
	return e
}

func header() events.Header { return events.Header{Version: events.Version} }

func (s *Server) categories(ctx context.Context, data []byte) any {
	var req events.CategoriesRequest
	if err := events.Decode(data, &req); err != nil {
		return events.CategoriesReply{Header: header(), Error: rpcError(err)}
	}
	st, rerr := s.site(req.Site)
	if rerr != nil {
		return events.CategoriesReply{Header: header(), Error: rerr}
	}
	p, rerr := get(ctx, st, st.Source.HomeURL())
	if rerr != nil {
		return events.CategoriesReply{Header: header(), Error: rerr}
	}
	cats, err := st.Source.ParseHome(p.Body, p.URL)
	if err != nil {
		return events.CategoriesReply{Header: header(), Error: rpcError(err)}
	}
	out := make([]events.Category, len(cats))
	for i, c := range cats {
		out[i] = events.Category{ID: events.CategoryID(c.ID), Name: c.Name, URL: c.URL}
	}
	ev := events.CategoriesFetched{Header: header(), Site: st.ID, Categories: out, FetchedAt: time.Now().UTC()}
	s.publish(ctx, ev.Subject(), "categories:"+st.ID+":"+strconv.FormatInt(time.Now().Unix()/60, 10), &ev)
	return events.CategoriesReply{Header: header(), Categories: out}
}

func (s *Server) listing(ctx context.Context, data []byte) any {
	var req events.ListingRequest
	if err := events.Decode(data, &req); err != nil {
		return events.ListingReply{Header: header(), Error: rpcError(err)}
	}
	st, rerr := s.site(req.Site)
	if rerr != nil {
		return events.ListingReply{Header: header(), Error: rerr}
	}
	if !st.Source.CanonicalCategoryID(string(req.Category)) {
		return events.ListingReply{Header: header(), Error: rpcError(fmt.Errorf("category %q of site %s: %w", req.Category, st.ID, site.ErrNotCanonical))}
	}
	p, rerr := get(ctx, st, st.Source.ListingURL(string(req.Category), req.Page))
	if rerr != nil {
		return events.ListingReply{Header: header(), Error: rerr}
	}
	books, err := st.Source.ParseListing(p.Body, p.URL)
	if err != nil {
		return events.ListingReply{Header: header(), Error: rpcError(err)}
	}
	out := make([]events.ListingBook, len(books))
	for i, b := range books {
		out[i] = events.ListingBook{BookID: b.BookID, Name: b.Name, Author: b.Author, LastChapterTitle: b.LastChapterTitle,
			LastChapterURL: b.LastChapterURL, Intro: b.Intro, BookURL: b.BookURL}
	}
	return events.ListingReply{Header: header(), Books: out}
}

func (s *Server) chapter(ctx context.Context, data []byte) any {
	var req events.ChapterRequest
	if err := events.Decode(data, &req); err != nil {
		return events.ChapterReply{Header: header(), Error: rpcError(err)}
	}
	st, rerr := s.book(req.Site, req.BookID)
	if rerr != nil {
		return events.ChapterReply{Header: header(), Error: rerr}
	}
	p, rerr := get(ctx, st, st.Source.ChapterURL(req.BookID, req.ChapterID))
	if rerr != nil {
		return events.ChapterReply{Header: header(), Error: rerr}
	}
	ch, err := st.Source.ParseChapter(p.Body, p.URL, req.BookID, req.ChapterID)
	if err != nil {
		return events.ChapterReply{Header: header(), Error: rpcError(err)}
	}
	ev := events.ChapterFetched{Header: header(), Site: st.ID, BookID: req.BookID, Number: req.Number, ChapterID: req.ChapterID,
		Title: ch.Title, URL: p.URL.String(), Text: ch.Text, FetchedAt: time.Now().UTC()}
	s.publish(ctx, events.SubjectFetchedChapter(st.ID, req.BookID), ev.MsgID(), &ev)
	return events.ChapterReply{Header: header(), Chapter: &ev}
}

// refs finds chapters From..To of a book for a reader who waits for them, by the site's
// own rules: on a paginated list, the pages that hold them (see refsPaginated); where the
// book page carries the whole list, that page (one request). Each page fetched is
// published for the indexer. The reply holds the refs found in the range; when a fetch
// fails after others succeeded, it holds what those brought.
func (s *Server) refs(ctx context.Context, data []byte) any {
	var req events.ChapterRefsRequest
	if err := events.Decode(data, &req); err != nil {
		return events.ChapterRefsReply{Header: header(), Error: rpcError(err)}
	}
	st, rerr := s.book(req.Site, req.BookID)
	if rerr != nil {
		return events.ChapterRefsReply{Header: header(), Error: rerr}
	}
	stored := map[int]bool{}
	for _, p := range req.Stored.Pages {
		stored[p] = true
	}
	var pages []*events.TOCPageFetched
	var err error
	if paged, ok := st.Source.(site.Paginated); ok {
		pages, err = s.refsPaginated(ctx, st, paged, req, stored)
	} else if !stored[1] {
		// The whole list is one page; when it is stored, what the reader lacks does
		// not exist.
		var p *events.TOCPageFetched
		if p, err = s.bookPage(ctx, st, req.BookID); p != nil {
			pages = append(pages, p)
		}
	}
	if err != nil && len(pages) == 0 {
		return events.ChapterRefsReply{Header: header(), Error: rpcError(err)}
	}
	if err != nil {
		s.Logger.Warn("chapter refs: a page could not be fetched; replying with the others", "site", st.ID, "book_id", req.BookID, "err", err)
	}
	refs := []events.ChapterRef{}
	seen := map[int]bool{}
	for _, p := range pages {
		for _, r := range p.Chapters {
			if r.Number >= req.From && r.Number <= req.To && !seen[r.Number] {
				seen[r.Number] = true
				refs = append(refs, r)
			}
		}
	}
	slices.SortFunc(refs, func(a, b events.ChapterRef) int { return a.Number - b.Number })
	return events.ChapterRefsReply{Header: header(), Refs: refs}
}

// refsPaginated fetches the pages of a paginated list that hold chapters From..To, at
// most events.MaxPagesPerRefsCall of them. Which page holds chapter n is the adapter's
// rule (PageOf), applied to what is known of the book's layout: the request's stored
// facts first, this cluster's checkpoint for what they lack, page 1 itself when neither
// knows (fetched first). A stored page, or a page past the count the site reported, is
// never fetched.
func (s *Server) refsPaginated(ctx context.Context, st *sites.Site, paged site.Paginated, req events.ChapterRefsRequest, stored map[int]bool) ([]*events.TOCPageFetched, error) {
	layout := site.Layout{FirstPageRefs: req.Stored.FirstPageRefs, TotalPages: req.Stored.TotalPages}
	if layout.FirstPageRefs == 0 || layout.TotalPages == 0 {
		if cp, ok := s.Checkpoints.Load(ctx, st.ID, req.BookID); ok {
			if layout.FirstPageRefs == 0 {
				layout.FirstPageRefs = cp.FirstPageRefs
			}
			if layout.TotalPages == 0 {
				layout.TotalPages = cp.TOCPages
			}
		}
	}
	var fetched []*events.TOCPageFetched
	done := map[int]bool{} // pages asked for
	if _, known := paged.PageOf(req.From, layout); !known {
		if stored[1] {
			return nil, nil // page 1 is stored and tells nothing: the book has no chapters
		}
		p, err := s.tocPage(ctx, st, paged, req.BookID, 1, 1)
		if err != nil {
			return nil, err
		}
		fetched, done[1] = append(fetched, p), true
		layout = site.Layout{FirstPageRefs: len(p.Chapters), TotalPages: p.TotalPages}
	}
	for n := req.From; n <= req.To && len(done) < events.MaxPagesPerRefsCall; n++ {
		page, ok := paged.PageOf(n, layout)
		if !ok || (layout.TotalPages > 0 && page > layout.TotalPages) {
			break
		}
		if stored[page] || done[page] {
			continue
		}
		first, ok := paged.FirstOf(page, layout)
		if !ok {
			break
		}
		done[page] = true
		p, err := s.tocPage(ctx, st, paged, req.BookID, page, first)
		if err != nil {
			return fetched, err
		}
		if p == nil {
			break // past the end: so are the pages after it
		}
		fetched = append(fetched, p)
	}
	return fetched, nil
}

// tocPage fetches page of a paginated list out of turn, once for every concurrent call
// that needs it, and publishes it for the indexer; nil when the page is past the end.
func (s *Server) tocPage(ctx context.Context, st *sites.Site, paged site.Paginated, bookID string, page, first int) (*events.TOCPageFetched, error) {
	key := events.Key(st.ID, bookID)
	v, err, _ := s.pages.Do("toc:"+key+":"+strconv.Itoa(page)+":"+strconv.Itoa(first), func() (any, error) {
		p, err := st.Client.Get(ctx, paged.TOCURL(bookID, page), politeness.Interactive)
		if err != nil {
			return nil, fmt.Errorf("fetch toc page %d of book %s: %w", page, key, err)
		}
		toc, err := paged.ParseTOC(p.Body, p.URL, bookID, page, first)
		if err != nil {
			return nil, fmt.Errorf("toc page %d of book %s: %w", page, key, err)
		}
		if len(toc.Chapters) == 0 && page > 1 {
			return (*events.TOCPageFetched)(nil), nil
		}
		ev := &events.TOCPageFetched{Header: header(), JobID: readJobID(st.ID, bookID), Site: st.ID, BookID: bookID, Page: page,
			TotalPages: max(toc.TotalPages, page), Chapters: sites.Refs(toc.Chapters), FetchedAt: time.Now().UTC()}
		s.publish(ctx, events.SubjectFetchedTOC(st.ID, bookID), "", ev)
		return ev, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*events.TOCPageFetched), nil
}

// bookPage fetches the book page of a site whose book page carries the whole chapter
// list, and publishes its metadata and its list (as page 1 of 1) for the indexer.
func (s *Server) bookPage(ctx context.Context, st *sites.Site, bookID string) (*events.TOCPageFetched, error) {
	key := events.Key(st.ID, bookID)
	v, err, _ := s.pages.Do("book:"+key, func() (any, error) {
		p, err := st.Client.Get(ctx, st.Source.BookURL(bookID), politeness.Interactive)
		if err != nil {
			return nil, fmt.Errorf("book page of %s: %w", key, err)
		}
		book, err := st.Source.ParseBook(p.Body, p.URL, bookID)
		if err != nil {
			return nil, fmt.Errorf("book %s: %w", key, err)
		}
		if book.TOC == nil {
			return nil, fmt.Errorf("book %s: %w", key, &site.ParseError{Page: "book", URL: p.URL.String(), What: "no chapter list (Book.TOC)"})
		}
		now := time.Now().UTC()
		meta := events.BookFetched{Header: header(), JobID: readJobID(st.ID, bookID), Site: st.ID, BookID: bookID, Book: sites.Meta(book), FetchedAt: now}
		s.publish(ctx, events.SubjectFetchedBook(st.ID, bookID), "", &meta)
		ev := &events.TOCPageFetched{Header: header(), JobID: readJobID(st.ID, bookID), Site: st.ID, BookID: bookID, Page: 1,
			TotalPages: 1, Chapters: sites.Refs(book.TOC.Chapters), FetchedAt: now}
		s.publish(ctx, events.SubjectFetchedTOC(st.ID, bookID), "", ev)
		return ev, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*events.TOCPageFetched), nil
}

// readJobID is the job id of what a reader's call fetched out of turn.
func readJobID(siteID, bookID string) string { return "read-" + events.Key(siteID, bookID) }

// publish hands what a call fetched to the indexer; a failure is logged, not returned:
// the caller has its answer, and the next sync fetches the page again.
func (s *Server) publish(ctx context.Context, subject, msgID string, p events.Payload) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := broker.Publish(pctx, s.JS, subject, msgID, p); err != nil {
		s.Logger.Warn("publish fetched page", "subject", subject, "err", err)
	}
}
