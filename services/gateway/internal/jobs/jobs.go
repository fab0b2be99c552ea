// Package jobs puts book requests on the request stream for the fetchers, with every
// de-duplication rule in one place, and reports the state of the queue and the fetchers.
// Prefetch (category browsing), interactive (a reader waiting), admin and dead-letter
// replay requests all go through Manager.Request, which refuses a book whose id its
// check (the site's spelling of ids) does not accept. A book is named by its site and
// the site's id for it. It also lists and replays dead letters, passes an operator's
// acceptance of a book's shrink on to the indexer, and purges a lane's waiting requests.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/singleflight"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
)

// Status is what became of a request.
type Status string

// Request outcomes, as the admin API reports them.
const (
	// Queued: the request was stored and waits for a fetcher.
	Queued Status = "queued"
	// AlreadyQueued: the book already waits in this lane or a higher one.
	AlreadyQueued Status = "already_queued"
	// AlreadySyncing: a fetcher is syncing the book now.
	AlreadySyncing Status = "already_syncing"
	// RecentlySynced: the book's last sync completed within the de-duplication window.
	RecentlySynced Status = "recently_synced"
	// Refused: nothing was queued, the book's id is not one its site accepts (yet); only
	// ReplayAll reports it (Request returns ErrRefused).
	Refused Status = "refused"
)

// InteractivePriority is the priority written on requests of a reader who is waiting.
const InteractivePriority = 100

// ErrRefused marks a request its check refused: nothing was queued.
var ErrRefused = errors.New("request refused")

// Book names a book: its site and the site's id for it.
type Book struct {
	Site string
	ID   string
}

// Request asks for one book to be synced.
type Request struct {
	Site     string
	BookID   string
	Lane     events.Lane
	Priority int
	// Force skips the recently-synced check (here and in the fetcher).
	Force bool
	// Reason says who asked ("category 1 page 2", "admin", "reader waiting").
	Reason string
	// MsgID, when set, is the request's de-duplication id instead of the one per
	// DuplicateWindow period (events.BookRequested.MsgID): an operator's act that must
	// reach the fetchers even when the same request was made minutes ago (a replay of a
	// letter, an accepted shrink) names itself, so that only a retry of the same act is
	// dropped.
	MsgID string
	// Behind, when set, queues the request even while the book is being synced, to run
	// after the sync in flight (a forced request waits for it): an accepted shrink is
	// judged by the sync it asks for, not by one that was under way.
	Behind bool
}

// KnownFunc reads what the database holds of a book (nil when it holds nothing), so
// that a request lets the fetcher resync incrementally.
type KnownFunc func(ctx context.Context, site, bookID string) (*events.KnownBook, error)

// CheckFunc reports whether a book may be requested: nil, or why not (the id is not the
// site's spelling of one, or the site's spelling is not known yet).
type CheckFunc func(ctx context.Context, site, bookID string) error

// Manager publishes requests and reads queue statistics.
type Manager struct {
	js       jetstream.JetStream
	requests jetstream.Stream
	dead     jetstream.Stream
	fetchers jetstream.KeyValue
	synced   jetstream.KeyValue
	claims   jetstream.KeyValue // events.BucketClaims
	window   time.Duration
	logger   *slog.Logger
	now      func() time.Time
	known    KnownFunc
	check    CheckFunc
	// legacyWaiting: requests on bare-id subjects waited when the manager started.
	legacyWaiting bool

	hbRead singleflight.Group
	hbMu   sync.Mutex
	hb     []events.FetcherHeartbeat
	hbAt   time.Time

	prefetchMu    sync.Mutex
	prefetched    map[string]prefetchOutcome // by book (events.Key)
	prefetchLimit int                        // size at which stale outcomes are dropped
}

// prefetchFresh is how long the outcome of a prefetch request answers later prefetch
// requests of the same book without asking JetStream. A listing served from the cache is
// read again and again, each time asking for the same twenty books; a book found queued,
// syncing or synced a moment ago needs nothing new, and each ask costs the server five
// lookups (at 50 listings a second, half a core of the NATS server).
const prefetchFresh = 2 * time.Second

// prefetchOutcome is what a prefetch request of a book found, and when.
type prefetchOutcome struct {
	status Status
	at     time.Time
}

// SetKnown makes every request carry what the database holds of its book.
func (m *Manager) SetKnown(f KnownFunc) { m.known = f }

// SetCheck makes Request refuse, with an error wrapping ErrRefused and f's, every book
// that f does not accept.
func (m *Manager) SetCheck(f CheckFunc) { m.check = f }

// New returns a manager over the provisioned request stream and buckets. window is the
// sync de-duplication window (SYNC_DEDUP_WINDOW).
func New(ctx context.Context, js jetstream.JetStream, window time.Duration, logger *slog.Logger) (*Manager, error) {
	requests, err := js.Stream(ctx, events.StreamRequests)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamRequests, err)
	}
	dead, err := js.Stream(ctx, events.StreamDead)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamDead, err)
	}
	fetchers, err := js.KeyValue(ctx, events.BucketFetchers)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", events.BucketFetchers, err)
	}
	synced, err := js.KeyValue(ctx, events.BucketSynced)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", events.BucketSynced, err)
	}
	claims, err := js.KeyValue(ctx, events.BucketClaims)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", events.BucketClaims, err)
	}
	// Requests a build before site-qualified books left waiting on their bare-id subjects
	// are looked for too, as long as any was there when this gateway started: new ones are
	// never published, so a gateway started after they drained does not look.
	legacy, err := requests.Info(ctx, jetstream.WithSubjectFilter(events.RequestSubjectLegacy("*", "*")))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamRequests, err)
	}
	return &Manager{
		js: js, requests: requests, dead: dead, fetchers: fetchers, synced: synced, claims: claims, window: window,
		legacyWaiting: len(legacy.State.Subjects) > 0,
		logger:        logger.With("component", "jobs"), now: time.Now,
	}, nil
}

// Request puts r on the request stream unless the book needs no new request, and says
// which. In order:
//   - RecentlySynced when the book's last sync completed within the window (unless Force);
//   - AlreadySyncing when a job holds the book's claim (events.SyncClaim), or a live
//     fetcher's heartbeat lists the book as active; a reader's request (the interactive
//     lane) marks the claim, so that the sync in flight books its remaining requests as
//     a reader's;
//   - AlreadyQueued when the book waits in r's lane or a higher one (a forced request
//     replaces a waiting unforced one in its lane, so the force is not lost);
//   - Queued otherwise. If the book was waiting in a lower lane, that entry is purged once
//     the new one is stored: the book is served once, at the higher lane's turn.
//
// Concurrent and repeated requests are stored once: a publish carries the request's
// Nats-Msg-Id and the stream keeps one request per lane and book, so a losing publisher
// reports AlreadyQueued.
//
// An unforced prefetch request repeats the outcome of the book's last prefetch request
// when that came less than prefetchFresh ago (Queued then is AlreadyQueued now).
//
// A request for a book the check refuses is an error wrapping ErrRefused: nothing is
// queued.
func (m *Manager) Request(ctx context.Context, r Request) (Status, error) {
	if !events.ValidSiteID(r.Site) || !events.ValidBookID(r.BookID) || !r.Lane.Valid() {
		return "", fmt.Errorf("request book %q of site %q in lane %q: %w", r.BookID, r.Site, r.Lane, events.ErrInvalid)
	}
	if m.check != nil {
		if err := m.check(ctx, r.Site, r.BookID); err != nil {
			return "", fmt.Errorf("request book %s of site %s: %w: %w", r.BookID, r.Site, ErrRefused, err)
		}
	}
	if r.Lane != events.LanePrefetch || r.Force {
		return m.request(ctx, r)
	}
	key := events.Key(r.Site, r.BookID)
	now := m.now()
	m.prefetchMu.Lock()
	o, ok := m.prefetched[key]
	m.prefetchMu.Unlock()
	if ok && now.Sub(o.at) < prefetchFresh {
		return o.status, nil
	}
	st, err := m.request(ctx, r)
	if err == nil {
		m.rememberPrefetch(key, st, now)
	}
	return st, err
}

// rememberPrefetch notes the outcome of a prefetch request of the book key made at now.
func (m *Manager) rememberPrefetch(key string, st Status, now time.Time) {
	if st == Queued {
		st = AlreadyQueued
	}
	m.prefetchMu.Lock()
	defer m.prefetchMu.Unlock()
	if len(m.prefetched) >= m.prefetchLimit {
		// Bounded: the outcomes still fresh stay, the rest go, and the next clean-up
		// waits until the map has doubled.
		fresh := make(map[string]prefetchOutcome, len(m.prefetched))
		for id, o := range m.prefetched {
			if now.Sub(o.at) < prefetchFresh {
				fresh[id] = o
			}
		}
		m.prefetched, m.prefetchLimit = fresh, max(4096, 2*len(fresh))
	}
	m.prefetched[key] = prefetchOutcome{status: st, at: now}
}

// request is Request without the memory of recent prefetch requests.
func (m *Manager) request(ctx context.Context, r Request) (Status, error) {
	if !r.Force {
		recent, err := m.recentlySynced(ctx, r.Site, r.BookID)
		if err != nil {
			return "", err
		}
		if recent {
			return RecentlySynced, nil
		}
	}
	if r.Behind {
		return m.enqueue(ctx, r)
	}
	if syncing, err := m.claimed(ctx, r); err != nil || syncing {
		if err != nil {
			return "", err
		}
		return AlreadySyncing, nil
	}
	// A listing queues twenty prefetch requests at once: they share one read of the
	// heartbeats (a book that started syncing moments ago is skipped by the fetcher as
	// recently synced anyway). Every other request reads them afresh.
	read := m.heartbeats
	if r.Lane == events.LanePrefetch {
		read = m.recentHeartbeats
	}
	hb, err := read(ctx)
	if err != nil {
		return "", err
	}
	for _, h := range hb {
		for _, a := range h.Active {
			if a.Site == r.Site && a.BookID == r.BookID {
				return AlreadySyncing, nil
			}
		}
	}
	return m.enqueue(ctx, r)
}

// enqueue is request once the book is known not to be syncing, or to be queued behind
// the sync in flight: it upgrades or joins a request waiting in a lane, or publishes one.
func (m *Manager) enqueue(ctx context.Context, r Request) (Status, error) {
	lane := r.Lane // where the new request goes
	replace := false
	var lower []events.Lane
	for _, l := range events.Lanes {
		w, err := m.waiting(ctx, l, r.Site, r.BookID)
		if err != nil {
			return "", err
		}
		if w == nil {
			continue
		}
		if l.Rank() > r.Lane.Rank() {
			lower = append(lower, l)
			continue
		}
		if !r.Force || w.Force || replace {
			return AlreadyQueued, nil
		}
		// A forced request meets an unforced one waiting at least as high: take its
		// place in its lane rather than let the fetcher skip it as recently synced.
		lane, replace = l, true
	}
	if replace {
		if err := m.purge(ctx, lane, r.Site, r.BookID); err != nil {
			return "", err
		}
	}

	req := events.NewBookRequested(r.Site, r.BookID, lane, r.Priority, r.Force, r.Reason, m.now())
	if m.known != nil && !r.Force {
		k, err := m.known(ctx, r.Site, r.BookID)
		if err != nil {
			// Without it the fetcher walks the whole book: slower, never wrong.
			m.logger.Warn("read known state of book", "site", r.Site, "book_id", r.BookID, "err", err)
		}
		req.Known = k
	}
	id := req.MsgID()
	if r.MsgID != "" {
		id = r.MsgID
	}
	ack, err := broker.Publish(ctx, m.js, req.Subject(), id, &req)
	if broker.IsSubjectFull(err) {
		return AlreadyQueued, nil
	}
	if err != nil {
		return "", fmt.Errorf("request sync of book %s of site %s: %w", r.BookID, r.Site, err)
	}
	if ack.Duplicate {
		return AlreadyQueued, nil
	}
	m.logger.Info("[BackgroundJobManager] Queued sync job for book "+r.BookID, "site", r.Site,
		"book_id", r.BookID, "lane", lane, "priority", r.Priority, "force", r.Force, "reason", r.Reason, "seq", ack.Sequence)
	for _, l := range lower {
		if err := m.purge(ctx, l, r.Site, r.BookID); err != nil {
			// The book stays waiting in the lower lane too; the fetcher will find it
			// recently synced then. Worth a warning, not a failed request.
			m.logger.Warn("purge upgraded request", "site", r.Site, "book_id", r.BookID, "lane", l, "err", err)
			continue
		}
		m.logger.Info("upgraded waiting request", "site", r.Site, "book_id", r.BookID, "from", l, "to", lane)
	}
	return Queued, nil
}

func (m *Manager) recentlySynced(ctx context.Context, site, bookID string) (bool, error) {
	e, err := m.synced.Get(ctx, events.Key(site, bookID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s of book %s of site %s: %w", events.BucketSynced, bookID, site, err)
	}
	at, err := events.ParseSyncedValue(e.Value())
	if err != nil {
		m.logger.Warn("unreadable synced time", "site", site, "book_id", bookID, "err", err)
		return false, nil
	}
	return m.now().Sub(at) < m.window, nil
}

// requestSubjects lists where a request for the book in lane l may wait: its subject,
// and for a book of events.LegacySite, while requests of a build before site-qualified
// books may wait, the subject that build published it on.
func (m *Manager) requestSubjects(l events.Lane, site, bookID string) []string {
	out := []string{events.RequestSubject(l, site, bookID)}
	if site == events.LegacySite && m.legacyWaiting {
		out = append(out, events.RequestSubjectLegacy(l, bookID))
	}
	return out
}

// waiting returns the request for the book waiting in lane l, or nil.
func (m *Manager) waiting(ctx context.Context, l events.Lane, site, bookID string) (*events.BookRequested, error) {
	var msg *jetstream.RawStreamMsg
	var err error
	for _, subject := range m.requestSubjects(l, site, bookID) {
		if msg, err = m.requests.GetLastMsgForSubject(ctx, subject); !errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look for book %s of site %s in lane %s: %w", bookID, site, l, err)
	}
	var r events.BookRequested
	if err := events.Decode(msg.Data, &r); err != nil {
		// Unreadable, but it holds the subject all the same: it is waiting.
		return &events.BookRequested{Site: site, BookID: bookID, Lane: l}, nil
	}
	return &r, nil
}

func (m *Manager) purge(ctx context.Context, l events.Lane, site, bookID string) error {
	for _, subject := range m.requestSubjects(l, site, bookID) {
		if err := m.requests.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			return fmt.Errorf("purge %s: %w", subject, err)
		}
	}
	return nil
}

// Fetchers returns the heartbeat of every live fetcher, ordered by fetcher id.
func (m *Manager) Fetchers(ctx context.Context) ([]events.FetcherHeartbeat, error) {
	hb, err := m.heartbeats(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(hb, func(a, b events.FetcherHeartbeat) int { return strings.Compare(a.FetcherID, b.FetcherID) })
	return hb, nil
}

// heartbeats returns the heartbeat of every live fetcher.
// heartbeatsFresh is how long one read of the fetchers' heartbeats serves later prefetch
// requests. Every read is a watch, which costs the server an ephemeral consumer; a
// listing that queues twenty books would otherwise make twenty of them.
const heartbeatsFresh = 500 * time.Millisecond

// recentHeartbeats returns the heartbeat of every live fetcher, read at most every
// heartbeatsFresh; concurrent callers share one read.
func (m *Manager) recentHeartbeats(ctx context.Context) ([]events.FetcherHeartbeat, error) {
	m.hbMu.Lock()
	if m.hbAt.After(m.now().Add(-heartbeatsFresh)) {
		hb := m.hb
		m.hbMu.Unlock()
		return hb, nil
	}
	m.hbMu.Unlock()
	v, err, _ := m.hbRead.Do("", func() (any, error) {
		hb, err := m.heartbeats(ctx)
		if err == nil {
			m.hbMu.Lock()
			m.hb, m.hbAt = hb, m.now()
			m.hbMu.Unlock()
		}
		return hb, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]events.FetcherHeartbeat), nil
}

// heartbeats reads the heartbeat of every live fetcher.
func (m *Manager) heartbeats(ctx context.Context) ([]events.FetcherHeartbeat, error) {
	return broker.Heartbeats(ctx, m.fetchers, func(key string, err error) {
		m.logger.Warn("unreadable fetcher heartbeat", "key", key, "err", err)
	})
}

// Stats is the state of the queue and the fetchers.
type Stats struct {
	// QueueSize counts requests waiting for a fetcher (not in flight), over every lane.
	QueueSize int
	// ByLane counts waiting requests per lane.
	ByLane map[events.Lane]int
	// Active lists the books being synced now.
	Active []Book
	// Workers sums the workers of the live fetchers.
	Workers int
	// Fetchers counts the live fetchers.
	Fetchers int
	// RateInterval is the largest politeness interval a live fetcher reports, in
	// seconds: the pace the cluster keeps now (nil when no fetcher is alive).
	RateInterval *float64
	// Circuit is the worst source circuit state a live fetcher reports (open, then
	// half-open, then closed; nil when no fetcher is alive).
	Circuit *string
	// DeadLetters counts the books whose last request gave up.
	DeadLetters int
}

// Running reports whether at least one fetcher is alive.
func (s Stats) Running() bool { return s.Fetchers > 0 }

// Stats reads the queue and the fetchers' heartbeats. A lane's waiting requests are its
// fetcher consumer's pending count when that consumer exists, else the requests stored
// under the lane's subjects.
func (m *Manager) Stats(ctx context.Context) (Stats, error) {
	s := Stats{ByLane: make(map[events.Lane]int, len(events.Lanes)), Active: []Book{}}
	for _, l := range events.Lanes {
		n, err := m.waitingInLane(ctx, l)
		if err != nil {
			return Stats{}, err
		}
		s.ByLane[l] = n
		s.QueueSize += n
	}
	hb, err := m.heartbeats(ctx)
	if err != nil {
		return Stats{}, err
	}
	s.Fetchers = len(hb)
	for _, h := range hb {
		s.Workers += h.Workers
		for _, a := range h.Active {
			s.Active = append(s.Active, Book{Site: a.Site, ID: a.BookID})
		}
		if s.RateInterval == nil || h.Interval > *s.RateInterval {
			s.RateInterval = &h.Interval
		}
		if s.Circuit == nil || events.WorseCircuit(h.Circuit, *s.Circuit) {
			s.Circuit = &h.Circuit
		}
	}
	if s.DeadLetters, err = m.deadCount(ctx); err != nil {
		return Stats{}, err
	}
	return s, nil
}

// claimed reports whether a job holds the book's claim, the one sync of it in flight; a
// reader's request marks the claim so that the job books its requests as a reader's.
func (m *Manager) claimed(ctx context.Context, r Request) (bool, error) {
	key := events.Key(r.Site, r.BookID)
	for range 3 {
		e, err := m.claims.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("read %s of book %s of site %s: %w", events.BucketClaims, r.BookID, r.Site, err)
		}
		var held events.SyncClaim
		if events.Decode(e.Value(), &held) != nil || r.Lane != events.LaneInteractive || held.Interactive {
			return true, nil
		}
		held.Interactive = true
		b, err := events.Encode(&held)
		if err != nil {
			return true, nil
		}
		if _, err := m.claims.Update(ctx, key, b, e.Revision()); err == nil {
			return true, nil
		}
		// The claim changed meanwhile (renewed, or released): look again.
	}
	return true, nil
}

func (m *Manager) waitingInLane(ctx context.Context, l events.Lane) (int, error) {
	return broker.WaitingInLane(ctx, m.requests, l)
}
