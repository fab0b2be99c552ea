package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
)

// ErrNoCrawl is returned for a crawl id that names no crawl.
var ErrNoCrawl = errors.New("no such crawl")

// Crawl queues a whole-category crawl of the listing pages from..to of each category of
// site.
func (m *Manager) Crawl(ctx context.Context, site string, categories []events.CategoryID, from, to int) (events.CrawlRequested, error) {
	req := events.NewCrawlRequested(site, categories, from, to, m.now())
	if _, err := broker.Publish(ctx, m.js, req.Subject(), req.MsgID(), &req); err != nil {
		return req, fmt.Errorf("queue crawl of site %s: %w", site, err)
	}
	m.logger.Info("crawl queued", "crawl_id", req.CrawlID, "site", site, "categories", categories, "from_page", from, "to_page", to)
	return req, nil
}

// CrawlProgress reads the progress of crawl id; a crawl no fetcher has started yet is
// reported waiting.
func (m *Manager) CrawlProgress(ctx context.Context, id string) (events.CrawlProgress, error) {
	kv, err := m.js.KeyValue(ctx, events.BucketCrawls)
	if err != nil {
		return events.CrawlProgress{}, fmt.Errorf("bucket %s: %w", events.BucketCrawls, err)
	}
	e, err := kv.Get(ctx, id)
	if err == nil {
		var p events.CrawlProgress
		if err := events.Decode(e.Value(), &p); err != nil {
			return p, fmt.Errorf("crawl %s progress: %w", id, err)
		}
		return p, nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrInvalidKey) {
		return events.CrawlProgress{}, err
	}
	// Not started: is it waiting?
	st, serr := m.js.Stream(ctx, events.StreamCrawls)
	if serr != nil {
		return events.CrawlProgress{}, serr
	}
	msg, gerr := st.GetLastMsgForSubject(ctx, "xsw.crawl."+id)
	if gerr != nil {
		return events.CrawlProgress{}, fmt.Errorf("%w: %s", ErrNoCrawl, id)
	}
	var req events.CrawlRequested
	if err := events.Decode(msg.Data, &req); err != nil {
		return events.CrawlProgress{}, fmt.Errorf("%w: %s", ErrNoCrawl, id)
	}
	return events.CrawlProgress{Header: req.Header, Request: req, State: CrawlWaiting}, nil
}

// CrawlWaiting is the state of a crawl no fetcher has started.
const CrawlWaiting = "waiting"

// Crawls lists the progress of every crawl kept, newest first.
func (m *Manager) Crawls(ctx context.Context) ([]events.CrawlProgress, error) {
	kv, err := m.js.KeyValue(ctx, events.BucketCrawls)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", events.BucketCrawls, err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []events.CrawlProgress
	for k := range keys.Keys() {
		if p, err := m.CrawlProgress(ctx, k); err == nil {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b events.CrawlProgress) int { return b.Request.RequestedAt.Compare(a.Request.RequestedAt) })
	return out, nil
}
