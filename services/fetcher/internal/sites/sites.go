// Package sites holds the sites one fetcher serves: for each, the adapter's Source, the
// polite client every request to the site goes through, and the limiter that books those
// requests in the site's own cluster-wide budget. A site that throttles us or fails
// slows down or opens the circuit of that site only.
package sites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/clock"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/site"
)

// Site is one site served.
type Site struct {
	// ID is the site id (events.ValidSiteID).
	ID string
	// Source builds the site's URLs and reads its pages.
	Source site.Source
	// Client fetches the site's pages, booking each request with Limiter.
	Client  *source.Client
	Limiter *politeness.Limiter
	// RateLimit is the configured interval between two requests to the site,
	// cluster-wide (SOURCE_<SITE>_RATE_LIMIT).
	RateLimit time.Duration
}

// Info reports the site as the fetcher's heartbeats publish it, from what its limiter
// last saw: a site that refuses us is refused (with its answer and the next probe); a
// circuit open, or half-open (waiting for a probe to succeed), is circuit_open; an
// interval in force longer than the configured one is throttled; anything else ok.
func (s *Site) Info(fetcherID string, at time.Time) events.SiteInfo {
	snap := s.Limiter.Snapshot()
	info := s.Source.Info()
	out := events.SiteInfo{
		Header: events.Header{Version: events.Version}, ID: s.ID, Name: info.Name,
		BaseURL: s.Client.Base().Redacted(), BookIDPattern: info.BookIDPattern, CategoryIDPattern: info.CategoryIDPattern,
		RateInterval: s.RateLimit.Seconds(), Interval: snap.Interval.Seconds(), State: events.SiteOK,
		Fetcher: fetcherID, At: at.UTC(),
	}
	until := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	switch {
	case snap.Refused != "":
		out.State, out.Detail, out.Until = events.SiteRefused, snap.Refused, until(snap.Probe)
	case snap.Circuit != politeness.CircuitClosed:
		out.State, out.Until = events.SiteCircuitOpen, until(snap.Until)
		out.Detail = "repeated failures opened the circuit"
		if snap.Circuit == politeness.CircuitHalfOpen {
			out.Detail = "the circuit waits for a probe to succeed"
		}
	case snap.Interval > s.RateLimit:
		out.State = events.SiteThrottled
		out.Detail = fmt.Sprintf("slowed down to one request per %v after the site asked us to", snap.Interval.Round(time.Millisecond))
	}
	return out
}

// Set is the sites a fetcher serves, the default first.
type Set struct {
	list []*Site
	byID map[string]*Site
	// changed is sent on (without blocking) when a site starts or stops refusing us.
	changed chan struct{}
}

// NewSet returns the set of sites, the first the default.
func NewSet(sites ...*Site) *Set {
	s := &Set{list: sites, byID: make(map[string]*Site, len(sites))}
	for _, st := range sites {
		s.byID[st.ID] = st
	}
	return s
}

// Get returns the site with id, and whether it is served.
func (s *Set) Get(id string) (*Site, bool) {
	st, ok := s.byID[id]
	return st, ok
}

// Changed is sent on when a site of a set built by Open starts or stops refusing us, as
// its limiter saw it: the sites' state is then worth publishing at once, rather than at
// the next heartbeat. A burst of changes may be sent as one.
func (s *Set) Changed() <-chan struct{} { return s.changed }

// probeLook is how often a site's prober looks at what the site's limiter last saw, and
// at most how long it sleeps before a due probe.
const probeLook = time.Second

// Probe runs until ctx ends, asking the site whether it lets us in again while it
// refuses us: whenever the next probe is due, it books it (Client.Probe: at most one
// request per cooldown asks, cluster-wide, whoever books it) and asks for the site's
// home page. A refusal again puts the next probe a longer cooldown away; a page ends the
// refusal for every fetcher. So a refusal ends when the site lets us in again even when
// no queued work would probe it (readers' requests only hear of it).
func (s *Site) Probe(ctx context.Context, logger *slog.Logger) {
	logger = logger.With("site", s.ID)
	for {
		wait := probeLook
		if snap := s.Limiter.Snapshot(); snap.Refused != "" {
			if d := time.Until(snap.Probe); d > 0 {
				wait = min(d, probeLook)
			} else {
				probed, err := s.Client.Probe(ctx, s.Source.HomeURL())
				switch {
				case ctx.Err() != nil:
					return
				case probed && s.Limiter.Refused() == "":
					logger.Info("the site lets us in again")
				case errors.Is(err, politeness.ErrRefused):
					logger.Info("the site still refuses us", "err", err, "next_probe", s.Limiter.Snapshot().Probe.UTC())
				case err != nil:
					logger.Warn("probe of a refusing site", "err", err)
				}
			}
		}
		if !clock.Sleep(ctx, wait) {
			return
		}
	}
}

// Probe runs the prober of every site (Site.Probe) until ctx ends.
func (s *Set) Probe(ctx context.Context, logger *slog.Logger) error {
	var wg sync.WaitGroup
	for _, st := range s.list {
		wg.Go(func() { st.Probe(ctx, logger) })
	}
	wg.Wait()
	return nil
}

// All returns the sites, the default first.
func (s *Set) All() []*Site { return s.list }

// Default returns the default site.
func (s *Set) Default() *Site { return s.list[0] }

// IDs returns the site ids, the default first.
func (s *Set) IDs() []string {
	out := make([]string, len(s.list))
	for i, st := range s.list {
		out[i] = st.ID
	}
	return out
}

// Config is what Open builds the sites from.
type Config struct {
	// Sources are the sites to serve, the default first.
	Sources config.Sources
	// Adapters hold an adapter for each of them.
	Adapters site.Registry
	// Politeness tunes every site's limiter; its Interval is each site's RateLimit, and
	// its OnRefusal is replaced by telling the set's Changed.
	Politeness politeness.Config
	// Client configures every site's client; its Observe is replaced by Observe.
	Client source.Config
	// Observe, when set, is told of every request sent to a site (see source.Config).
	Observe func(site string, status int, took time.Duration)
}

// LimiterKey is the key under which a site's requests are booked in
// events.BucketPoliteness.
func LimiterKey(siteID string) string { return "site." + siteID }

// Open builds the set: for each source, its adapter's Source on the configured base URL
// (the adapter's default when none is), and a client booking in kv under the site's
// LimiterKey at the site's rate. It fails when a source has no adapter (naming the known
// ones) or a base URL the adapter cannot serve.
//
// m.xsw.tw's bookings were kept under its host (legacyLimiterKey) before sites had ids:
// when its site key is not there yet, Open starts it from that one, so that a slow-down
// the site asked for, or an open circuit, survives an upgrade.
func Open(ctx context.Context, kv jetstream.KeyValue, cfg Config) (*Set, error) {
	if len(cfg.Sources) == 0 {
		return nil, errors.New("no site to serve")
	}
	var list []*Site
	changed := make(chan struct{}, 1)
	onRefusal := func(bool) {
		select {
		case changed <- struct{}{}:
		default: // one is pending already
		}
	}
	for _, src := range cfg.Sources {
		a, err := cfg.Adapters.Lookup(src.ID)
		if err != nil {
			return nil, err
		}
		base, err := BaseURL(src, a.Info)
		if err != nil {
			return nil, err
		}
		adapted, err := a.New(base)
		if err != nil {
			return nil, fmt.Errorf("site %s: %w", src.ID, err)
		}
		if src.ID == events.LegacySite && kv != nil {
			adoptLegacyBooking(ctx, kv, LimiterKey(src.ID), legacyLimiterKey(base))
		}
		pc := cfg.Politeness
		pc.Interval, pc.OnRefusal = src.RateLimit, onRefusal
		limiter := politeness.New(kv, LimiterKey(src.ID), pc)
		cc := cfg.Client
		cc.Observe, cc.Site = nil, src.ID
		if cfg.Observe != nil {
			id, observe := src.ID, cfg.Observe
			cc.Observe = func(status int, took time.Duration) { observe(id, status, took) }
		}
		list = append(list, &Site{
			ID: src.ID, Source: adapted, Client: source.New(base, limiter, cc), Limiter: limiter, RateLimit: src.RateLimit,
		})
	}
	set := NewSet(list...)
	set.changed = changed
	return set, nil
}

// legacyLimiterKey is the key m.xsw.tw's requests were booked under before sites had
// ids: its host, with dots and colons made underscores.
func legacyLimiterKey(base *url.URL) string {
	return "host." + strings.NewReplacer(".", "_", ":", "_").Replace(base.Host)
}

// adoptLegacyBooking creates key from legacy's value when key does not exist yet and
// legacy does. Several fetchers may start at once: Create lets one of them win.
func adoptLegacyBooking(ctx context.Context, kv jetstream.KeyValue, key, legacy string) {
	if _, err := kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		return
	}
	e, err := kv.Get(ctx, legacy)
	if err != nil {
		return
	}
	_, _ = kv.Create(ctx, key, e.Value())
}

// HandBack is how long a fetcher hands back work for a site it does not serve when
// another fetcher describes that site (while a change of SOURCES rolls out): the work
// waits for a fetcher that serves it rather than failing.
const HandBack = 15 * time.Second

// ServedElsewhere reports whether a fetcher has described site in events.BucketSites (kv):
// work for it that reaches a fetcher not serving it is handed back, not thrown away.
// Work for a site no fetcher has ever described is poison.
func ServedElsewhere(ctx context.Context, kv jetstream.KeyValue, site string) bool {
	if kv == nil || !events.ValidSiteID(site) {
		return false
	}
	_, err := kv.Get(ctx, site)
	return err == nil
}

// BaseURL returns the base URL a source is served on: its configured URL, or the
// adapter's default; an absolute http(s) URL with a host.
func BaseURL(src config.Source, info site.Info) (*url.URL, error) {
	raw := src.URL
	if raw == "" {
		raw = info.DefaultBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL is not quoted: it may carry a password.
		return nil, fmt.Errorf("site %s: the base URL is not an http(s) URL with a host", src.ID)
	}
	return u, nil
}

// Meta is the book's metadata as the contract carries it (events.BookFetched).
func Meta(b *site.Book) events.BookMeta {
	m := events.BookMeta{
		Name: b.Name, Author: b.Author, Genre: b.Genre, Status: b.Status, Finished: b.Finished,
		UpdateText: b.UpdateText, UpdatedAt: b.UpdatedAt, Description: b.Description, CoverURL: b.CoverURL,
		LastChapterTitle: b.LastChapterTitle, LastChapterURL: b.LastChapterURL, LastChapterID: b.LastChapterID,
		SourceURL: b.SourceURL,
	}
	for _, v := range b.Volumes {
		m.Volumes = append(m.Volumes, events.Volume{Title: v.Title, FirstChapter: v.FirstChapter})
	}
	return m
}

// Refs are chapter refs as the contract carries them (events.TOCPageFetched).
func Refs(cs []site.ChapterRef) []events.ChapterRef {
	out := make([]events.ChapterRef, len(cs))
	for i, c := range cs {
		out[i] = events.ChapterRef{Number: c.Number, ChapterID: c.ChapterID, Title: c.Title, URL: c.URL, TitleNumber: c.TitleNumber}
	}
	return out
}
