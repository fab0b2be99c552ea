// Package rpc serves the gateways' interactive requests (categories, a listing page, a
// chapter's text, one table-of-contents page) over NATS request/reply, in the fetchers'
// queue group, through the same polite source client as the sync jobs.
package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/site"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
)

// Server answers request/reply calls.
type Server struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Site   site.Source
	Client *source.Client
	Logger *slog.Logger
	// Timeout bounds one call, politeness wait included.
	Timeout time.Duration
	// Concurrency bounds the calls handled at once by this process.
	Concurrency int
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
		events.SubjectRPCTOC:        s.toc,
	}
	var subs []*nats.Subscription
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
		wg.Wait()
	}()
	for subject, h := range handlers {
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
				cctx, cancel := context.WithTimeout(ctx, s.Timeout)
				defer cancel()
				reply := h(cctx, m.Data)
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
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
		subs = append(subs, sub)
	}
	<-ctx.Done()
	return nil
}

func (s *Server) get(ctx context.Context, url string) (*source.Page, *events.RPCError) {
	p, err := s.Client.Get(ctx, url, politeness.Interactive)
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
	case errors.Is(err, site.ErrParse):
		kind = events.ErrKindParse
	case errors.Is(err, politeness.ErrCircuitOpen):
		kind = events.ErrKindCircuit
	case errors.Is(err, events.ErrInvalid), errors.Is(err, events.ErrVersion):
		kind = events.ErrKindBadRequest
	case source.Timeout(err), errors.Is(err, context.DeadlineExceeded):
		kind = events.ErrKindTimeout
	}
	return &events.RPCError{Kind: kind, Message: err.Error()}
}

func header() events.Header { return events.Header{Version: events.Version} }

func (s *Server) categories(ctx context.Context, data []byte) any {
	var req events.CategoriesRequest
	if err := events.Decode(data, &req); err != nil {
		return events.CategoriesReply{Header: header(), Error: rpcError(err)}
	}
	p, rerr := s.get(ctx, s.Site.HomeURL())
	if rerr != nil {
		return events.CategoriesReply{Header: header(), Error: rerr}
	}
	cats, err := s.Site.ParseHome(p.Body, p.URL)
	if err != nil {
		return events.CategoriesReply{Header: header(), Error: rpcError(err)}
	}
	out := make([]events.Category, len(cats))
	for i, c := range cats {
		out[i] = events.Category{ID: c.ID, Name: c.Name, URL: c.URL}
	}
	ev := events.CategoriesFetched{Header: header(), Categories: out, FetchedAt: time.Now().UTC()}
	s.publish(ctx, events.SubjectFetchedCategories, "categories:"+strconv.FormatInt(time.Now().Unix()/60, 10), &ev)
	return events.CategoriesReply{Header: header(), Categories: out}
}

func (s *Server) listing(ctx context.Context, data []byte) any {
	var req events.ListingRequest
	if err := events.Decode(data, &req); err != nil {
		return events.ListingReply{Header: header(), Error: rpcError(err)}
	}
	p, rerr := s.get(ctx, s.Site.ListingURL(req.Category, req.Page))
	if rerr != nil {
		return events.ListingReply{Header: header(), Error: rerr}
	}
	books, err := s.Site.ParseListing(p.Body, p.URL)
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
	p, rerr := s.get(ctx, s.Site.ChapterURL(req.BookID, req.ChapterID))
	if rerr != nil {
		return events.ChapterReply{Header: header(), Error: rerr}
	}
	ch, err := s.Site.ParseChapter(p.Body, p.URL, req.BookID, req.ChapterID)
	if err != nil {
		return events.ChapterReply{Header: header(), Error: rpcError(err)}
	}
	ev := events.ChapterFetched{Header: header(), BookID: req.BookID, Number: req.Number, ChapterID: req.ChapterID,
		Title: ch.Title, URL: p.URL.String(), Text: ch.Text, FetchedAt: time.Now().UTC()}
	s.publish(ctx, events.SubjectFetchedChapter(req.BookID), ev.MsgID(), &ev)
	return events.ChapterReply{Header: header(), Chapter: &ev}
}

func (s *Server) toc(ctx context.Context, data []byte) any {
	var req events.TOCRequest
	if err := events.Decode(data, &req); err != nil {
		return events.TOCReply{Header: header(), Error: rpcError(err)}
	}
	if req.Page > 1 && req.FirstNumber < 1 {
		return events.TOCReply{Header: header(), Error: &events.RPCError{Kind: events.ErrKindBadRequest,
			Message: fmt.Sprintf("toc page %d needs the number of its first chapter", req.Page)}}
	}
	p, rerr := s.get(ctx, s.Site.TOCURL(req.BookID, req.Page))
	if rerr != nil {
		return events.TOCReply{Header: header(), Error: rerr}
	}
	toc, err := s.Site.ParseTOC(p.Body, p.URL, req.BookID, req.Page, max(req.FirstNumber, 1))
	if err != nil {
		return events.TOCReply{Header: header(), Error: rpcError(err)}
	}
	chapters := make([]events.ChapterRef, len(toc.Chapters))
	for i, c := range toc.Chapters {
		chapters[i] = events.ChapterRef{Number: c.Number, ChapterID: c.ChapterID, Title: c.Title, URL: c.URL, TitleNumber: c.TitleNumber}
	}
	ev := events.TOCPageFetched{Header: header(), JobID: "read-" + req.BookID, BookID: req.BookID, Page: req.Page,
		TotalPages: max(toc.TotalPages, req.Page), Chapters: chapters, FetchedAt: time.Now().UTC()}
	s.publish(ctx, events.SubjectFetchedTOC(req.BookID), "", &ev)
	return events.TOCReply{Header: header(), Page: &ev}
}

// publish hands what a call fetched to the indexer; a failure is logged, not returned:
// the caller has its answer, and the next sync fetches the page again.
func (s *Server) publish(ctx context.Context, subject, msgID string, p events.Payload) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := broker.Publish(pctx, s.JS, subject, msgID, p); err != nil {
		s.Logger.Warn("publish fetched page", "subject", subject, "err", err)
	}
}
