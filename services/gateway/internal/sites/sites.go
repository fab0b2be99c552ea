// Package sites tells the gateway which source sites it serves and what it may ask of
// each, without knowing any site rule itself. The sites are those of SOURCES, the first
// the default; what each one is (its name, base URL, state, and the patterns of its
// canonical book and category ids) is what the fetchers serving it write to
// events.BucketSites. A Registry watches that bucket and keeps every site's patterns
// compiled, so that an id is checked against the site's own spelling before anything is
// queued or fetched for it.
package sites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/singleflight"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/config"
)

// StateUnknown is the state of a configured site that no fetcher has described yet.
const StateUnknown = "unknown"

var (
	// ErrUnknownSite: the site is not one of SOURCES.
	ErrUnknownSite = errors.New("unknown site")
	// ErrBadID: the id cannot be carried at all (see events.ValidID).
	ErrBadID = errors.New("not a valid id")
	// ErrUndescribed: no fetcher has described the site yet, so whether an id is the
	// site's spelling cannot be told; nothing may be queued or fetched for it.
	ErrUndescribed = errors.New("no fetcher has described the site yet")
	// ErrNotCanonical: the id is not the site's spelling of an id, so it names nothing on
	// the site.
	ErrNotCanonical = errors.New("not the site's spelling of an id")
)

// Timing of the registry's reads of the bucket.
const (
	// retryRead is the least time between two direct reads of a site nobody described,
	// and between two attempts to watch the bucket.
	retryRead = time.Second
	// readTimeout bounds a direct read of one site.
	readTimeout = 2 * time.Second
)

// Site is a configured site as the gateway lists it.
type Site struct {
	ID      string
	Name    string
	BaseURL string
	Default bool
	// State is one of events.SiteOK, SiteThrottled, SiteCircuitOpen, SiteRefused, or
	// StateUnknown.
	State string
	// RateInterval is the configured interval between requests to the site, in seconds.
	RateInterval float64
	// Detail says why the state is not ok, in the fetchers' words; Until is when the
	// site is next probed, or the circuit lets a request through (zero: not known).
	Detail string
	Until  time.Time
	// Described is whether a fetcher has described the site.
	Described bool
}

// described is what a fetcher wrote of a site, with its patterns compiled.
type described struct {
	info     events.SiteInfo
	book     *regexp.Regexp
	category *regexp.Regexp // nil: any valid id
}

// Registry knows the configured sites and what the fetchers say of them.
type Registry struct {
	sources config.Sources
	kv      jetstream.KeyValue // nil: nothing is ever described (tests of other parts)
	log     *slog.Logger
	now     func() time.Time

	mu    sync.RWMutex
	sites map[string]*described
	tried map[string]time.Time // the last direct read of a site not described
	reads singleflight.Group
}

// New returns a registry of sources, reading what fetchers wrote of them from kv (the
// events.BucketSites bucket). Run keeps it current.
func New(sources config.Sources, kv jetstream.KeyValue, logger *slog.Logger) *Registry {
	return &Registry{
		sources: sources, kv: kv, log: logger.With("component", "sites"), now: time.Now,
		sites: map[string]*described{}, tried: map[string]time.Time{},
	}
}

// Default returns the default site's id.
func (r *Registry) Default() string { return r.sources.Default() }

// IDs returns the configured site ids, the default first.
func (r *Registry) IDs() []string { return r.sources.IDs() }

// Known reports whether site is one of SOURCES.
func (r *Registry) Known(site string) bool {
	_, ok := r.sources.Get(site)
	return ok
}

// Run watches the bucket and applies every change until ctx ends. It never fails: a
// watch that cannot start or that ends is started again a little later, and what was
// read stays meanwhile.
func (r *Registry) Run(ctx context.Context) error {
	if r.kv == nil {
		<-ctx.Done()
		return nil
	}
	for {
		if err := r.watch(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("watch site descriptions", "bucket", events.BucketSites, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retryRead):
		}
	}
}

func (r *Registry) watch(ctx context.Context) error {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch ended")
			}
			if e != nil { // nil marks the end of the current values
				r.apply(e.Key(), e.Operation(), e.Value())
			}
		}
	}
}

// apply records what the bucket holds under site.
func (r *Registry) apply(site string, op jetstream.KeyValueOp, value []byte) {
	if !r.Known(site) {
		return
	}
	if op != jetstream.KeyValuePut {
		r.mu.Lock()
		delete(r.sites, site)
		r.mu.Unlock()
		return
	}
	var info events.SiteInfo
	if err := events.Decode(value, &info); err != nil || info.ID != site {
		r.log.Warn("unreadable site description", "site", site, "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d := &described{info: info}
	if old := r.sites[site]; old != nil && old.info.BookIDPattern == info.BookIDPattern &&
		old.info.CategoryIDPattern == info.CategoryIDPattern {
		d.book, d.category = old.book, old.category
	} else {
		var err error
		if d.book, err = events.CompileIDPattern(info.BookIDPattern); err != nil {
			r.log.Warn("site describes a book id pattern that does not compile", "site", site, "pattern", info.BookIDPattern, "err", err)
			delete(r.sites, site)
			return
		}
		if info.CategoryIDPattern != "" {
			if d.category, err = events.CompileIDPattern(info.CategoryIDPattern); err != nil {
				r.log.Warn("site describes a category id pattern that does not compile", "site", site, "pattern", info.CategoryIDPattern, "err", err)
				delete(r.sites, site)
				return
			}
		}
	}
	r.sites[site] = d
}

// lookup returns what a fetcher wrote of site, or nil. A site not described yet is read
// from the bucket directly, at most once per retryRead, so that a description written
// a moment ago counts before the watch delivers it.
func (r *Registry) lookup(ctx context.Context, site string) *described {
	r.mu.RLock()
	d, last := r.sites[site], r.tried[site]
	r.mu.RUnlock()
	if d != nil || r.kv == nil || r.now().Sub(last) < retryRead {
		return d
	}
	// Concurrent callers join the read in flight (and wait for its answer); the time of
	// the read is noted once it is done.
	_, _, _ = r.reads.Do(site, func() (any, error) {
		defer func() {
			r.mu.Lock()
			r.tried[site] = r.now()
			r.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
		defer cancel()
		e, err := r.kv.Get(ctx, site)
		if err == nil {
			r.apply(site, e.Operation(), e.Value())
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			r.log.Debug("read site description", "site", site, "err", err)
		}
		return nil, nil
	})
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.sites[site]
}

// CheckBook reports whether id is a book id of site as the site spells it: nil, or an
// error wrapping ErrUnknownSite, ErrBadID, ErrUndescribed or ErrNotCanonical.
func (r *Registry) CheckBook(ctx context.Context, site, id string) error {
	return r.check(ctx, site, id, "book", func(d *described) *regexp.Regexp { return d.book })
}

// CheckCategory is CheckBook for category ids; a site that describes no category
// pattern takes any valid id.
func (r *Registry) CheckCategory(ctx context.Context, site, id string) error {
	return r.check(ctx, site, id, "category", func(d *described) *regexp.Regexp { return d.category })
}

func (r *Registry) check(ctx context.Context, site, id, what string, pattern func(*described) *regexp.Regexp) error {
	if !r.Known(site) {
		return fmt.Errorf("site %q: %w", site, ErrUnknownSite)
	}
	if !events.ValidID(id) {
		return fmt.Errorf("%s id %q: %w", what, id, ErrBadID)
	}
	d := r.lookup(ctx, site)
	if d == nil {
		return fmt.Errorf("site %s: %w", site, ErrUndescribed)
	}
	if re := pattern(d); re != nil && !re.MatchString(id) {
		return fmt.Errorf("%s id %q of site %s: %w", what, id, site, ErrNotCanonical)
	}
	return nil
}

// Get returns the configured site, described as the fetchers last did; ok is false
// when site is not one of SOURCES.
func (r *Registry) Get(ctx context.Context, site string) (Site, bool) {
	src, ok := r.sources.Get(site)
	if !ok {
		return Site{}, false
	}
	s := Site{ID: src.ID, Name: src.ID, BaseURL: redacted(src.URL), Default: src.ID == r.Default(), State: StateUnknown,
		RateInterval: src.RateLimit.Seconds()}
	if d := r.lookup(ctx, site); d != nil {
		s.Described, s.State, s.RateInterval, s.Detail = true, d.info.State, d.info.RateInterval, d.info.Detail
		if d.info.Until != nil {
			s.Until = *d.info.Until
		}
		if d.info.Name != "" {
			s.Name = d.info.Name
		}
		if d.info.BaseURL != "" {
			s.BaseURL = d.info.BaseURL
		}
	}
	return s, true
}

// Refused returns the site as described when its fetchers report that it refuses us
// (events.SiteRefused); ok is false otherwise.
func (r *Registry) Refused(site string) (Site, bool) {
	r.mu.RLock()
	d := r.sites[site]
	r.mu.RUnlock()
	if d == nil || d.info.State != events.SiteRefused {
		return Site{}, false
	}
	s, _ := r.Get(context.Background(), site)
	return s, true
}

// List returns every configured site in the order of SOURCES.
func (r *Registry) List(ctx context.Context) []Site {
	out := make([]Site, 0, len(r.sources))
	for _, id := range r.IDs() {
		s, _ := r.Get(ctx, id)
		out = append(out, s)
	}
	return out
}

// redacted is a configured base URL without its password, as a fetcher describes it.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Redacted()
}
