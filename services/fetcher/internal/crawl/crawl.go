// Package crawl walks whole categories of a site for the fetchers: for each crawl request
// it reads the site's listing pages in order, at the site's polite background rate, and
// queues every listed book in the prefetch lane. Progress is saved after every page, so a crawl interrupted by a
// restart resumes where it stopped.
package crawl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/clock"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/sites"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/site"
)

// Crawler runs crawl requests one at a time.
type Crawler struct {
	JS jetstream.JetStream
	// Sites are the sites served; each crawl request names one of them.
	Sites    *sites.Set
	Progress jetstream.KeyValue
	// Described is events.BucketSites: a crawl of a site another fetcher describes is
	// handed back to it (nil: every crawl of a site not served is poison).
	Described jetstream.KeyValue
	Logger    *slog.Logger
	// AckWait of the crawl consumer; the crawler signals progress well within it.
	AckWait time.Duration
	// RetryDelay is how long a crawl that hit a transient failure waits.
	RetryDelay time.Duration
	// Poison, when set, is told of every crawl request terminated because it can never
	// be run: it cannot be decoded, or it names a site no fetcher describes.
	Poison func()
}

// Run takes crawl requests until ctx ends.
func (c *Crawler) Run(ctx context.Context) error {
	if c.AckWait <= 0 {
		c.AckWait = time.Minute
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = 10 * time.Second
	}
	cons, err := broker.Consumer(ctx, c.JS, events.CrawlConsumer(c.AckWait))
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() == nil {
				c.Logger.Warn("fetch crawl", "err", err)
				clock.Sleep(ctx, time.Second)
			}
			continue
		}
		for m := range batch.Messages() {
			c.handle(ctx, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			c.Logger.Debug("fetch crawl", "err", err)
		}
	}
	return nil
}

// item is one listing page of a crawl.
type item struct {
	cat  events.CategoryID
	page int
}

func items(r events.CrawlRequested) []item {
	var out []item
	for _, cat := range r.Categories {
		for p := r.FromPage; p <= r.ToPage; p++ {
			out = append(out, item{cat, p})
		}
	}
	return out
}

// handle runs one crawl from its saved progress and settles its message: Ack when done,
// Term when the request is poison, NakWithDelay after a transient failure or at shutdown
// (the progress is saved, so the next delivery resumes).
func (c *Crawler) handle(ctx context.Context, m jetstream.Msg) {
	var req events.CrawlRequested
	err := events.Decode(m.Data(), &req)
	st, served := c.Sites.Get(req.Site)
	if err == nil && !served {
		if sites.ServedElsewhere(ctx, c.Described, req.Site) {
			c.Logger.Warn("crawl of a site another fetcher serves handed back", "subject", m.Subject(), "site", req.Site)
			_ = m.NakWithDelay(sites.HandBack)
			return
		}
		err = fmt.Errorf("site %q is not served by this fetcher (it serves %v) nor described by any other", req.Site, c.Sites.IDs())
	}
	if err != nil {
		c.Logger.Warn("poison crawl request terminated", "subject", m.Subject(), "err", err)
		if c.Poison != nil {
			c.Poison()
		}
		_ = broker.Term(m, err)
		return
	}
	log := c.Logger.With("crawl_id", req.CrawlID, "site", req.Site)
	prog := c.load(ctx, req)
	todo := items(req)
	prog.PagesTotal = len(todo)
	for prog.Next < len(todo) {
		if ctx.Err() != nil {
			_ = m.NakWithDelay(time.Second)
			return
		}
		if reason := st.Limiter.Refused(); reason != "" && time.Now().Before(st.Limiter.Snapshot().Probe) {
			// The crawl would wait for the site on the consumer every site's crawls share:
			// it steps aside and comes back when the next probe is due (then its request
			// may be the probe).
			log.Warn("crawl paused: the site refuses us", "reason", reason)
			c.save(ctx, prog)
			_ = m.NakWithDelay(max(c.RetryDelay, time.Until(st.Limiter.Snapshot().Probe)))
			return
		}
		it := todo[prog.Next]
		if !slices.Contains(prog.Ended, it.cat) {
			books, err := c.listing(ctx, st, it)
			switch {
			case errors.Is(err, site.ErrNotCanonical):
				// The site has no such category: no page of it is asked for.
				prog.Errors = append(prog.Errors, err.Error())
				prog.Ended = append(prog.Ended, it.cat)
			case errors.Is(err, politeness.ErrRefused):
				log.Warn("crawl paused: the site refuses us", "err", err)
				c.save(ctx, prog)
				_ = m.NakWithDelay(max(c.RetryDelay, time.Until(st.Limiter.Snapshot().Probe)))
				return
			case errors.Is(err, source.ErrNotFound) || err == nil && len(books) == 0:
				// Past the last page of the category: skip the rest of it.
				prog.Ended = append(prog.Ended, it.cat)
			case err != nil && (source.Permanent(err) || site.Permanent(err)):
				prog.Errors = append(prog.Errors, fmt.Sprintf("category %s page %d: %v", it.cat, it.page, err))
			case err != nil:
				log.Warn("crawl paused by a transient failure", "category", it.cat, "page", it.page, "err", err)
				c.save(ctx, prog)
				_ = m.NakWithDelay(c.RetryDelay)
				return
			default:
				prog.BooksSeen += len(books)
				prog.BooksQueued += c.queue(ctx, st, req, it, books)
			}
		}
		prog.Next++
		prog.PagesDone = prog.Next
		c.save(ctx, prog)
		_ = m.InProgress()
	}
	prog.State = events.CrawlDone
	c.save(ctx, prog)
	log.Info("crawl done", "pages", prog.PagesTotal, "books_seen", prog.BooksSeen, "books_queued", prog.BooksQueued)
	_ = m.DoubleAck(ctx)
}

// listing reads one listing page of st; a category that is not the site's canonical
// spelling of one is ErrNotCanonical, and no request.
func (c *Crawler) listing(ctx context.Context, st *sites.Site, it item) ([]site.ListingBook, error) {
	if !st.Source.CanonicalCategoryID(string(it.cat)) {
		return nil, fmt.Errorf("category %q of site %s: %w", it.cat, st.ID, site.ErrNotCanonical)
	}
	p, err := st.Client.GetOrRefused(ctx, st.Source.ListingURL(string(it.cat), it.page))
	if err != nil {
		return nil, err
	}
	return st.Source.ParseListing(p.Body, p.URL)
}

// queue publishes a prefetch request for every listed book of st and counts those
// stored.
func (c *Crawler) queue(ctx context.Context, st *sites.Site, req events.CrawlRequested, it item, books []site.ListingBook) int {
	n := 0
	for _, b := range books {
		if !events.ValidBookID(b.BookID) || !st.Source.CanonicalBookID(b.BookID) {
			continue
		}
		r := events.NewBookRequested(st.ID, b.BookID, events.LanePrefetch, events.PrefetchPriority, false,
			fmt.Sprintf("crawl %s category %s page %d", req.CrawlID, it.cat, it.page), time.Now())
		ack, err := broker.Publish(ctx, c.JS, r.Subject(), r.MsgID(), &r)
		switch {
		case broker.IsSubjectFull(err):
		case err != nil:
			c.Logger.Warn("queue crawled book", "site", st.ID, "book_id", b.BookID, "err", err)
		case !ack.Duplicate:
			n++
		}
	}
	return n
}

func (c *Crawler) load(ctx context.Context, req events.CrawlRequested) events.CrawlProgress {
	if e, err := c.Progress.Get(ctx, req.CrawlID); err == nil {
		var p events.CrawlProgress
		if events.Decode(e.Value(), &p) == nil && p.Request.CrawlID == req.CrawlID {
			return p
		}
	}
	now := time.Now().UTC()
	return events.CrawlProgress{Header: events.Header{Version: events.Version}, Request: req, State: events.CrawlRunning, StartedAt: now, UpdatedAt: now}
}

func (c *Crawler) save(ctx context.Context, p events.CrawlProgress) {
	p.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(p)
	if err == nil {
		_, err = c.Progress.Put(context.WithoutCancel(ctx), p.Request.CrawlID, b)
	}
	if err != nil {
		c.Logger.Warn("save crawl progress", "crawl_id", p.Request.CrawlID, "err", err)
	}
}
