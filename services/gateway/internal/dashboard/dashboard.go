// Package dashboard serves the operators' live page at /xsw/admin/: an embedded HTML,
// JavaScript and CSS page (no CDN: it works offline) and an authenticated stream of
// server-sent events at /xsw/admin/events carrying a snapshot of the queue, the fetchers,
// the politeness rate, the circuit, the state of each source site, the throughput and
// the pre-cache hit rate of the book reads this gateway answered every second, and every book request and job event as it happens (from core NATS
// subscriptions to the request and job subjects), each naming its book's site. The page
// keeps the admin token in sessionStorage and sends it as a Bearer header, for the
// stream and for the admin API calls it makes (dead letters, replay, sync, each with the
// book's site); the token never appears in a URL.
package dashboard

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// Path is where the page is served.
const Path = "/xsw/admin"

// Source reports the state of the queue and the fetchers (jobs.Manager).
type Source interface {
	Stats(ctx context.Context) (jobs.Stats, error)
	Fetchers(ctx context.Context) ([]events.FetcherHeartbeat, error)
}

// Config tunes the dashboard. Zero fields take the defaults.
type Config struct {
	// AdminToken guards the event stream; empty disables it (XSW_ADMIN_TOKEN).
	AdminToken string
	// StatsEvery is how often a snapshot is sent while someone watches (default 1s).
	StatsEvery time.Duration
	// StreamLifetime ends each event stream after this long; clients reconnect at once
	// and get the recent activity again (default 20s, under the HTTP server's 30s write
	// timeout).
	StreamLifetime time.Duration
	// Recent is how many activities are kept for a client that connects (default 300).
	Recent int
	// Window and Bucket shape the throughput chart (defaults 10m and 10s). At start the
	// dashboard reads the job events of the last Window back from the event stream.
	Window, Bucket time.Duration
}

func (c *Config) defaults() {
	if c.StatsEvery <= 0 {
		c.StatsEvery = time.Second
	}
	if c.StreamLifetime <= 0 {
		c.StreamLifetime = 20 * time.Second
	}
	if c.Recent <= 0 {
		c.Recent = 300
	}
	if c.Bucket <= 0 {
		c.Bucket = 10 * time.Second
	}
	if c.Window < c.Bucket {
		c.Window = 10 * time.Minute
	}
}

// Dashboard is the page and its event stream.
type Dashboard struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	src    Source
	logger *slog.Logger
	now    func() time.Time

	mu        sync.Mutex
	seq       uint64
	recent    []Activity // oldest first, at most cfg.Recent
	counts    *counts
	reads     *readTally
	clients   map[*client]struct{}
	snapshot  []byte // the last stats frame
	closed    bool
	replaying bool
	pending   []heard         // job events heard while replaying
	replayed  map[string]bool // message ids of the replayed job events
	// caughtUp is closed once the replay has ended.
	caughtUp chan struct{}
}

// New returns a dashboard over src; Run feeds it.
func New(cfg Config, nc *nats.Conn, js jetstream.JetStream, src Source, logger *slog.Logger) *Dashboard {
	cfg.defaults()
	return &Dashboard{
		cfg: cfg, nc: nc, js: js, src: src, logger: logger.With("component", "dashboard"), now: time.Now,
		counts: newCounts(cfg.Window, cfg.Bucket), reads: newReadTally(cfg.Window, cfg.Bucket), clients: map[*client]struct{}{},
		caughtUp: make(chan struct{}),
	}
}

// Read counts a book read this gateway answered, served from from (a metrics.Served*
// value), for the snapshots' BookReads.
func (d *Dashboard) Read(from string) { d.reads.add(from, d.now()) }

// Run listens to the request and job subjects, reads the last Window of job events back,
// and sends snapshots to the connected clients, until ctx ends; then it ends every
// stream.
func (d *Dashboard) Run(ctx context.Context) error {
	defer d.closeClients()
	d.mu.Lock()
	d.replaying, d.replayed = true, map[string]bool{}
	d.mu.Unlock()
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for subject, h := range map[string]nats.MsgHandler{events.SubjectJobAll: d.onJob, events.SubjectRequestAll: d.onRequest} {
		s, err := d.nc.Subscribe(subject, h)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
		subs = append(subs, s)
	}
	if err := d.replay(ctx); err != nil && ctx.Err() == nil {
		d.logger.Warn("read recent job events", "err", err)
	}
	d.endReplay()

	t := time.NewTicker(d.cfg.StatsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if d.watched() {
				d.sendSnapshot(ctx)
			}
		}
	}
}

// replay reads the job events of the last Window from the event stream, so that the
// chart and the recent activity survive a restart of the gateway.
func (d *Dashboard) replay(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	since := d.now().Add(-d.cfg.Window)
	cons, err := d.js.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectJobAll}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", events.StreamEvents, err)
	}
	const most = 20000 // a busy cluster's last minutes; older history is not worth the wait
	for read := 0; read < most; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return fmt.Errorf("read %s: %w", events.StreamEvents, err)
		}
		n, caughtUp := 0, false
		for msg := range batch.Messages() {
			n++
			var e events.JobEvent
			if events.Decode(msg.Data(), &e) == nil {
				d.mu.Lock()
				d.replayed[e.MsgID()] = true
				a := d.add(activityOfJob(e))
				d.broadcast(frame("job", a.Seq, a)) // to clients that came during the replay
				d.mu.Unlock()
			}
			if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
				caughtUp = true
			}
		}
		read += n
		if n == 0 || caughtUp {
			return nil
		}
	}
	return nil
}

// heard is a job event heard live, with its message id.
type heard struct {
	a     Activity
	msgID string
}

// endReplay adds the job events heard live during the replay that it did not read.
func (d *Dashboard) endReplay() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range d.pending {
		if !d.replayed[h.msgID] {
			a := d.add(h.a)
			d.broadcast(frame("job", a.Seq, a))
		}
	}
	d.replaying, d.pending, d.replayed = false, nil, nil
	close(d.caughtUp)
}

func (d *Dashboard) onJob(m *nats.Msg) {
	var e events.JobEvent
	if err := events.Decode(m.Data, &e); err != nil {
		return // the indexer terminates and logs what it cannot read
	}
	d.hear(activityOfJob(e), e.MsgID())
}

func (d *Dashboard) onRequest(m *nats.Msg) {
	var r events.BookRequested
	if err := events.Decode(m.Data, &r); err != nil {
		return
	}
	d.hear(activityOfRequest(r), "")
}

// hear records a live activity and sends it to every client. Job events heard while the
// replay runs wait for its end, which drops those it read too.
func (d *Dashboard) hear(a Activity, msgID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.replaying && msgID != "" {
		d.pending = append(d.pending, heard{a: a, msgID: msgID})
		return
	}
	a = d.add(a)
	d.broadcast(frame("job", a.Seq, a))
}

// add numbers a, keeps it among the recent activities and counts it. d.mu is held.
func (d *Dashboard) add(a Activity) Activity {
	d.seq++
	a.Seq = d.seq
	d.recent = append(d.recent, a)
	// Keep the newest Recent; copy them down only when the slice has doubled, so that
	// each event costs a constant amount, not a copy of the whole list.
	if len(d.recent) >= 2*d.cfg.Recent {
		d.recent = append(d.recent[:0], d.recent[len(d.recent)-d.cfg.Recent:]...)
	}
	d.counts.add(a.Kind, a.At, d.now())
	return a
}

// Snapshot is the state the page shows, sent every StatsEvery.
type Snapshot struct {
	At          time.Time           `json:"at"`
	QueueByLane map[events.Lane]int `json:"queue_by_lane"`
	QueueSize   int                 `json:"queue_size"`
	InFlight    []InFlight          `json:"in_flight"`
	Fetchers    []Fetcher           `json:"fetchers"`
	DeadLetters int                 `json:"dead_letters"`
	// RateInterval is the largest politeness interval a live fetcher reports (seconds).
	RateInterval *float64 `json:"rate_interval_seconds"`
	// Circuit is the worst circuit state a live fetcher reports.
	Circuit    *string    `json:"circuit"`
	Throughput Throughput `json:"throughput"`
	// Sites lists every site a live fetcher serves, sorted by id, each as the fetchers
	// serving it see it together (see mergeSites).
	Sites []SiteState `json:"sites"`
	// BookReads is the book reads this gateway answered over the last Window and their
	// pre-cache hit rate.
	BookReads BookReads `json:"book_reads"`
	// Error says what could not be read, when something could not.
	Error string `json:"error,omitempty"`
}

// InFlight is a job a fetcher is working on.
type InFlight struct {
	events.ActiveJob
	FetcherID string `json:"fetcher_id"`
}

// Fetcher is a live fetcher as its heartbeat describes it.
type Fetcher struct {
	FetcherID string    `json:"fetcher_id"`
	Sites     []string  `json:"sites"`
	Workers   int       `json:"workers"`
	Active    int       `json:"active"`
	Interval  float64   `json:"interval_seconds"`
	Circuit   string    `json:"circuit"`
	Draining  bool      `json:"draining"`
	StartedAt time.Time `json:"started_at"`
	At        time.Time `json:"at"`
}

// SiteState is one site as the live fetchers serving it report it, merged: the worst
// state any of them sees, with that fetcher's detail and until.
type SiteState struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	BaseURL string `json:"base_url"`
	// State is the worst state a fetcher reports: refused, then circuit_open, then
	// throttled, then ok; a state the dashboard does not know counts as the worst.
	State string `json:"state"`
	// Detail and Until are those of the fetcher whose state is shown (Fetcher): why the
	// state is not ok, and when the site is next probed or its circuit lets a request
	// through.
	Detail  string     `json:"detail,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
	Fetcher string     `json:"fetcher,omitempty"`
	// Interval is the largest interval in force a fetcher reports, RateInterval the
	// largest configured one (seconds).
	Interval     float64 `json:"interval_seconds"`
	RateInterval float64 `json:"rate_interval_seconds"`
	// Fetchers counts the live fetchers serving the site.
	Fetchers int `json:"fetchers"`
}

// mergeSites makes one SiteState per site the heartbeats list, sorted by site id: the
// worst state wins, with its fetcher's detail and until (of equally bad reports, the
// first heartbeat's); the intervals are the largest reported; Fetchers counts the
// heartbeats listing the site.
func mergeSites(hbs []events.FetcherHeartbeat) []SiteState {
	out := []SiteState{}
	at := map[string]int{} // site id -> index in out
	for _, h := range hbs {
		counted := map[string]bool{}
		for _, si := range h.Sites {
			i, seen := at[si.ID]
			if !seen {
				i = len(out)
				at[si.ID] = i
				out = append(out, SiteState{ID: si.ID, State: si.State, Detail: si.Detail, Until: si.Until, Fetcher: h.FetcherID})
			} else if events.WorseSiteState(si.State, out[i].State) {
				out[i].State, out[i].Detail, out[i].Until, out[i].Fetcher = si.State, si.Detail, si.Until, h.FetcherID
			}
			s := &out[i]
			if s.Name == "" {
				s.Name = si.Name
			}
			if s.BaseURL == "" {
				s.BaseURL = si.BaseURL
			}
			s.Interval = max(s.Interval, si.Interval)
			s.RateInterval = max(s.RateInterval, si.RateInterval)
			if !counted[si.ID] {
				counted[si.ID] = true
				s.Fetchers++
			}
		}
	}
	slices.SortFunc(out, func(a, b SiteState) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Snapshot reads the state of the queue and the fetchers now.
func (d *Dashboard) Snapshot(ctx context.Context) Snapshot {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s := Snapshot{At: d.now().UTC(), QueueByLane: map[events.Lane]int{}, InFlight: []InFlight{}, Fetchers: []Fetcher{}, Sites: []SiteState{}}
	var errs []string
	if st, err := d.src.Stats(ctx); err != nil {
		errs = append(errs, "queue: "+err.Error())
	} else {
		s.QueueByLane, s.QueueSize, s.DeadLetters, s.RateInterval, s.Circuit = st.ByLane, st.QueueSize, st.DeadLetters, st.RateInterval, st.Circuit
	}
	if hbs, err := d.src.Fetchers(ctx); err != nil {
		errs = append(errs, "fetchers: "+err.Error())
	} else {
		for _, h := range hbs {
			f := Fetcher{FetcherID: h.FetcherID, Sites: h.SiteIDs(), Workers: h.Workers, Active: len(h.Active),
				Interval: h.Interval, Circuit: h.Circuit, Draining: h.Draining, StartedAt: h.StartedAt, At: h.At}
			s.Fetchers = append(s.Fetchers, f)
			for _, a := range h.Active {
				s.InFlight = append(s.InFlight, InFlight{ActiveJob: a, FetcherID: h.FetcherID})
			}
		}
		s.Sites = mergeSites(hbs)
	}
	s.Error = strings.Join(errs, "; ")
	d.mu.Lock()
	s.Throughput = d.counts.window(d.now())
	d.mu.Unlock()
	s.BookReads = d.reads.window(d.now())
	return s
}

func (d *Dashboard) sendSnapshot(ctx context.Context) {
	f := frame("stats", 0, d.Snapshot(ctx))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.snapshot = f
	d.broadcast(f)
}

// frame encodes one server-sent event.
func frame(event string, id uint64, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`null`)
	}
	var b strings.Builder
	if id > 0 {
		fmt.Fprintf(&b, "id: %d\n", id)
	}
	fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", event, data)
	return []byte(b.String())
}

// client is one connected event stream.
type client struct {
	frames chan []byte
}

// subscribe registers a client and returns what it is sent first: the recent activity
// and the last snapshot. It returns nil once the dashboard has stopped.
func (d *Dashboard) subscribe() (*client, [][]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, nil
	}
	c := &client{frames: make(chan []byte, 256)}
	d.clients[c] = struct{}{}
	first := [][]byte{frame("recent", d.seq, d.newest())}
	if d.snapshot != nil {
		first = append(first, d.snapshot)
	}
	return c, first
}

func (d *Dashboard) unsubscribe(c *client) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.clients[c]; ok {
		delete(d.clients, c)
		close(c.frames)
	}
}

// broadcast sends f to every client without waiting: a client too slow to take it is
// dropped (its stream ends; it reconnects and gets the recent activity again). d.mu is
// held.
func (d *Dashboard) broadcast(f []byte) {
	for c := range d.clients {
		select {
		case c.frames <- f:
		default:
			delete(d.clients, c)
			close(c.frames)
		}
	}
}

func (d *Dashboard) watched() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.clients) > 0
}

func (d *Dashboard) closeClients() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for c := range d.clients {
		delete(d.clients, c)
		close(c.frames)
	}
}

// authorize checks the Bearer token of a request to the stream, in constant time.
func (d *Dashboard) authorize(c *fiber.Ctx) error {
	if d.cfg.AdminToken == "" {
		return fiber.NewError(fiber.StatusForbidden, "the dashboard is disabled: set XSW_ADMIN_TOKEN to enable it")
	}
	scheme, token, ok := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") ||
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(d.cfg.AdminToken)) != 1 {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="xsw admin"`)
		return fiber.NewError(fiber.StatusUnauthorized, "the event stream needs Authorization: Bearer <XSW_ADMIN_TOKEN>")
	}
	return nil
}

// errStopped is answered when the dashboard no longer runs (the gateway is stopping).
var errStopped = errors.New("dashboard stopped")

// newest returns the newest Recent activities, oldest first.
func (d *Dashboard) newest() []Activity {
	if over := len(d.recent) - d.cfg.Recent; over > 0 {
		return d.recent[over:]
	}
	return d.recent
}
