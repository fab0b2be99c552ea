// Package notify tells operators' webhooks what needs their attention, once per change:
// a job that failed for good (once per job of a site, or many of them in one
// notification during a burst), a lane whose queue grew past a threshold or fell back
// under it, and a site's circuit opening or closing (each site's on its own). One
// indexer replica at a time notifies, the one holding a lease in the leases bucket; it
// reads the failed jobs from a durable consumer of its own and checks the queue and the
// fetchers' heartbeats every few seconds. Deliveries are signed, queued in JetStream
// (they survive a restart), retried with backoff and never wait on anything else
// (Dispatcher).
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/clock"
	platformmetrics "github.com/xswtw/xsw/platform/metrics"
)

// Notification types.
const (
	// TypeJobFailed: a sync job failed for good and its request was dead-lettered.
	TypeJobFailed = "job.failed"
	// TypeJobsFailed: many sync jobs failed for good in a short time (Config.BurstAfter).
	TypeJobsFailed = "jobs.failed"
	// TypeQueueAbove: a lane's waiting requests grew past the threshold.
	TypeQueueAbove = "queue.above_threshold"
	// TypeQueueBelow: a lane's waiting requests fell back under 90% of the threshold.
	TypeQueueBelow = "queue.below_threshold"
	// TypeCircuitOpened: a fetcher reports a site's circuit open (or half-open), or the
	// site refusing us: no request goes out to it as usual.
	TypeCircuitOpened = "circuit.opened"
	// TypeCircuitClosed: every live fetcher that serves the site reports it working again.
	TypeCircuitClosed = "circuit.closed"
)

var types = []string{TypeJobFailed, TypeJobsFailed, TypeQueueAbove, TypeQueueBelow, TypeCircuitOpened, TypeCircuitClosed}

// Notification is the JSON body every webhook receives.
type Notification struct {
	// ID is the same on every delivery attempt of the notification.
	ID   string    `json:"id"`
	Type string    `json:"type"`
	At   time.Time `json:"at"`
	// Data is JobFailed, JobsFailed, Queue or Circuit, by Type.
	Data any `json:"data"`
}

// JobFailed is the data of a job.failed notification.
type JobFailed struct {
	Site      string      `json:"site"`
	BookID    string      `json:"book_id"`
	JobID     string      `json:"job_id"`
	Lane      events.Lane `json:"lane"`
	Priority  int         `json:"priority"`
	Attempt   int         `json:"attempt"`
	Fetcher   string      `json:"fetcher,omitempty"`
	Error     string      `json:"error"`
	Permanent bool        `json:"permanent"`
	FailedAt  time.Time   `json:"failed_at"`
}

// MaxListed is how many failed jobs a jobs.failed notification lists.
const MaxListed = 50

// JobsFailed is the data of a jobs.failed notification: the jobs that failed for good
// during a burst, which were not announced one by one.
type JobsFailed struct {
	// Count is how many, listed or not.
	Count int `json:"count"`
	// Sites counts them by site.
	Sites map[string]int `json:"sites"`
	// FirstFailedAt and LastFailedAt bound their failed_at.
	FirstFailedAt time.Time `json:"first_failed_at"`
	LastFailedAt  time.Time `json:"last_failed_at"`
	// Jobs lists the first MaxListed of them, in the order they were read, each as the
	// data of its job.failed would be.
	Jobs []JobFailed `json:"jobs"`
	// Omitted is how many are not listed.
	Omitted int `json:"omitted"`
}

// Queue is the data of the queue notifications.
type Queue struct {
	Lane      events.Lane `json:"lane"`
	Waiting   int         `json:"waiting"`
	Threshold int         `json:"threshold"`
}

// Circuit is the data of the circuit notifications: one site's.
type Circuit struct {
	Site string `json:"site"`
	// State is "open" or "closed".
	State    string           `json:"state"`
	Fetchers []FetcherCircuit `json:"fetchers"`
}

// FetcherCircuit is what one live fetcher reports of the site.
type FetcherCircuit struct {
	FetcherID string `json:"fetcher_id"`
	// Circuit is the site's state as the fetcher reports it: events.SiteOK,
	// SiteThrottled, SiteCircuitOpen or SiteRefused; from a fetcher older than the sites,
	// which reports the circuit of xsw alone, closed, open or half-open.
	Circuit  string  `json:"circuit"`
	Interval float64 `json:"interval_seconds"`
}

// Sender queues notifications for delivery, waiting for nothing but its queue
// (Dispatcher). Its errors wrap ErrQueueFull (dropped: not to be sent again) or
// ErrNotQueued (to be sent again).
type Sender interface {
	Send(context.Context, Notification) error
}

// Config tunes a Notifier.
type Config struct {
	// Threshold is the queue size per lane past which the lane is announced
	// (WEBHOOK_QUEUE_THRESHOLD, default 1000).
	Threshold int
	// CheckEvery is how often the leader reads the queue and the heartbeats (default 5s).
	CheckEvery time.Duration
	// ReplicaID names this replica in the lease.
	ReplicaID string
	// RenewEvery is how often the lease is renewed, or sought by a replica without it
	// (default a third of events.LeaseTTL).
	RenewEvery time.Duration
	// BurstAfter and BurstWindow gather the failed jobs of a burst: a job that fails
	// when BurstAfter others failed in the BurstWindow before it is not announced on its
	// own, but gathered with those that follow into one jobs.failed notification, sent
	// BurstWindow after the first of them (defaults 5 and 10s; the window at most 20s,
	// as the events gathered wait unacknowledged).
	BurstAfter  int
	BurstWindow time.Duration
}

// maxBurstWindow keeps the gathered events well within the notifier consumer's AckWait.
const maxBurstWindow = 20 * time.Second

// Lease keys in events.BucketLeases.
const (
	leaseKey = "notifier"
	// stateKey holds the conditions last announced, so that a new leader does not
	// announce them again. It is rewritten with every renewal of the lease and expires
	// with the bucket's TTL when no leader is left.
	stateKey = "notifier-state"
)

// conditions are the states announced last.
type conditions struct {
	QueueAbove map[events.Lane]bool `json:"queue_above"`
	// CircuitOpen holds the sites whose circuit was announced open.
	CircuitOpen map[string]bool `json:"circuit_open_sites"`
	// LegacyCircuitOpen is what a notifier older than the sites saved: xsw's circuit.
	LegacyCircuitOpen bool `json:"circuit_open,omitempty"`
}

func newConditions() conditions {
	return conditions{QueueAbove: map[events.Lane]bool{}, CircuitOpen: map[string]bool{}}
}

// Notifier watches for what needs announcing while its replica holds the lease.
type Notifier struct {
	cfg      Config
	cons     jetstream.Consumer
	requests jetstream.Stream
	js       jetstream.JetStream
	leases   jetstream.KeyValue
	fetchers jetstream.KeyValue
	send     Sender
	logger   *slog.Logger
	sent     *prometheus.CounterVec

	state conditions
	// announced remembers the jobs whose failure was announced (by site and job id),
	// against redeliveries.
	announced *recent
	// failedAt holds when the last BurstAfter failed jobs were read, oldest first.
	failedAt []time.Time
	// burst gathers the failed jobs of a burst, nil outside one.
	burst *burst
	// unsent holds, by lane or site, a condition's notification the queue did not take:
	// sent again at the next check with the same id, so that a receiver given it once
	// already can tell.
	unsent map[string]Notification
}

// burst is a jobs.failed notification being gathered.
type burst struct {
	due  time.Time // when it is sent
	data JobsFailed
	keys map[string]bool
	// msgs are the events gathered, acknowledged once the notification is queued.
	msgs []jetstream.Msg
}

// New provisions the notifier's consumer and returns a notifier sending through s, with
// its metrics registered in reg.
func New(ctx context.Context, js jetstream.JetStream, s Sender, cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Notifier, error) {
	if cfg.Threshold < 1 {
		cfg.Threshold = 1000
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 5 * time.Second
	}
	if cfg.RenewEvery <= 0 || cfg.RenewEvery >= events.LeaseTTL {
		cfg.RenewEvery = events.LeaseTTL / 3
	}
	if cfg.BurstAfter < 1 {
		cfg.BurstAfter = 5
	}
	if cfg.BurstWindow <= 0 {
		cfg.BurstWindow = 10 * time.Second
	}
	cfg.BurstWindow = min(cfg.BurstWindow, maxBurstWindow)
	cons, err := broker.Consumer(ctx, js, events.NotifierConsumer())
	if err != nil {
		return nil, err
	}
	requests, err := js.Stream(ctx, events.StreamRequests)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamRequests, err)
	}
	leases, err := js.KeyValue(ctx, events.BucketLeases)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", events.BucketLeases, err)
	}
	fetchers, err := js.KeyValue(ctx, events.BucketFetchers)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", events.BucketFetchers, err)
	}
	n := &Notifier{
		cfg: cfg, cons: cons, requests: requests, js: js, leases: leases, fetchers: fetchers, send: s,
		logger: logger.With("part", "notifier"), announced: newRecent(4096),
		state: newConditions(),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xsw_indexer_webhook_notifications_total",
			Help: "Notifications queued for the webhooks (or dropped by a full queue), by type.",
		}, []string{"type"}),
	}
	for _, t := range types {
		n.sent.WithLabelValues(t)
	}
	return n, platformmetrics.Register(reg, n.sent)
}

// Run notifies while this replica holds the lease, until ctx ends; then it sends the
// burst it was gathering and gives the lease up so that another replica takes over at
// once.
func (n *Notifier) Run(ctx context.Context) error {
	var leader bool
	defer func() {
		if leader {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			n.flush(dctx)
			n.saveState(dctx)
			_ = n.leases.Delete(dctx, leaseKey)
		}
	}()
	var nextRenew, nextCheck time.Time
	for ctx.Err() == nil {
		if now := time.Now(); !now.Before(nextRenew) {
			was := leader
			leader = n.lead(ctx)
			switch {
			case leader && !was:
				n.loadState(ctx)
				n.logger.Info("webhook notifier leads", "replica", n.cfg.ReplicaID)
			case leader:
				n.saveState(ctx)
			case was:
				// The new leader gets the events gathered.
				n.abandonBurst()
				n.failedAt = n.failedAt[:0]
			}
			nextRenew = now.Add(n.cfg.RenewEvery)
		}
		if !leader {
			clock.Sleep(ctx, time.Until(nextRenew))
			continue
		}
		if now := time.Now(); !now.Before(nextCheck) {
			if err := n.check(ctx); err != nil && ctx.Err() == nil {
				n.logger.Warn("check queue and circuit", "err", err)
			}
			nextCheck = now.Add(n.cfg.CheckEvery)
		}
		wait := min(time.Until(nextCheck), time.Until(nextRenew), time.Second)
		if n.burst != nil {
			wait = min(wait, time.Until(n.burst.due))
		}
		if err := n.pull(ctx, max(wait, 100*time.Millisecond)); err != nil && ctx.Err() == nil {
			n.logger.Warn("pull failed jobs", "err", err)
			clock.Sleep(ctx, time.Second)
		}
		if n.burst != nil && !time.Now().Before(n.burst.due) {
			n.flush(ctx)
		}
	}
	return nil
}

// lead takes or renews the lease and reports whether this replica holds it.
func (n *Notifier) lead(ctx context.Context) bool {
	e, err := n.leases.Get(ctx, leaseKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = n.leases.Create(ctx, leaseKey, []byte(n.cfg.ReplicaID))
		return err == nil
	case err != nil:
		return false
	case string(e.Value()) != n.cfg.ReplicaID:
		return false
	}
	_, err = n.leases.Update(ctx, leaseKey, []byte(n.cfg.ReplicaID), e.Revision())
	return err == nil
}

func (n *Notifier) loadState(ctx context.Context) {
	n.state = newConditions()
	e, err := n.leases.Get(ctx, stateKey)
	if err != nil {
		return // none: every condition is taken as normal
	}
	var c conditions
	if json.Unmarshal(e.Value(), &c) != nil || c.QueueAbove == nil {
		return
	}
	if c.CircuitOpen == nil {
		c.CircuitOpen = map[string]bool{}
	}
	if c.LegacyCircuitOpen {
		c.CircuitOpen[events.LegacySite], c.LegacyCircuitOpen = true, false
	}
	n.state = c
}

func (n *Notifier) saveState(ctx context.Context) {
	b, _ := json.Marshal(n.state)
	if _, err := n.leases.Put(ctx, stateKey, b); err != nil && ctx.Err() == nil {
		n.logger.Warn("save announced conditions", "err", err)
	}
}

// pull announces the failed jobs waiting in the consumer, waiting up to wait for one:
// each on its own, or gathered into the burst (see Config.BurstAfter).
func (n *Notifier) pull(ctx context.Context, wait time.Duration) error {
	batch, err := n.cons.Fetch(100, jetstream.FetchMaxWait(wait))
	if err != nil {
		return err
	}
	for msg := range batch.Messages() {
		var e events.JobEvent
		if err := events.Decode(msg.Data(), &e); err != nil {
			n.logger.Warn("unreadable failed-job event terminated", "subject", msg.Subject(), "err", err)
			_ = broker.Term(msg, err)
			continue
		}
		// A job id names its book's site (events.JobID); those written before sites had
		// ids are all m.xsw.tw's, and keep the notification id they were announced with.
		key := e.JobID
		if e.Kind != events.JobFailed || n.announced.has(key) || (n.burst != nil && n.burst.keys[key]) {
			_ = msg.Ack() // a lost ack redelivers the event, and the job is remembered
			continue
		}
		job := JobFailed{
			Site: e.Site, BookID: e.BookID, JobID: e.JobID, Lane: e.Lane, Priority: e.Priority, Attempt: e.Attempt,
			Fetcher: e.Fetcher, Error: e.Error, Permanent: e.Permanent, FailedAt: e.At.UTC(),
		}
		if n.inBurst(time.Now()) {
			n.gather(job, msg)
			continue
		}
		if err := n.notify(ctx, Notification{ID: TypeJobFailed + ":" + key, Type: TypeJobFailed, At: e.At.UTC(), Data: job}); errors.Is(err, ErrNotQueued) {
			_ = msg.NakWithDelay(time.Second)
			continue
		}
		n.announced.add(key)
		_ = msg.Ack()
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
		return err
	}
	return nil
}

// inBurst notes a failed job read at now and reports whether it belongs to a burst: one
// is being gathered, or BurstAfter jobs failed in the BurstWindow before now.
func (n *Notifier) inBurst(now time.Time) bool {
	k := n.cfg.BurstAfter
	in := n.burst != nil || (len(n.failedAt) == k && now.Sub(n.failedAt[0]) < n.cfg.BurstWindow)
	if len(n.failedAt) == k {
		copy(n.failedAt, n.failedAt[1:])
		n.failedAt[k-1] = now
	} else {
		n.failedAt = append(n.failedAt, now)
	}
	return in
}

// gather adds a failed job to the burst, starting one when none is being gathered.
func (n *Notifier) gather(job JobFailed, msg jetstream.Msg) {
	b := n.burst
	if b == nil {
		b = &burst{due: time.Now().Add(n.cfg.BurstWindow), keys: map[string]bool{},
			data: JobsFailed{Sites: map[string]int{}, FirstFailedAt: job.FailedAt, LastFailedAt: job.FailedAt}}
		n.burst = b
	}
	b.keys[job.JobID] = true
	b.msgs = append(b.msgs, msg)
	d := &b.data
	d.Count++
	d.Sites[job.Site]++
	if job.FailedAt.Before(d.FirstFailedAt) {
		d.FirstFailedAt = job.FailedAt
	}
	if job.FailedAt.After(d.LastFailedAt) {
		d.LastFailedAt = job.FailedAt
	}
	if len(d.Jobs) < MaxListed {
		d.Jobs = append(d.Jobs, job)
	} else {
		d.Omitted++
	}
}

// flush sends the burst gathered as one jobs.failed notification, whose id names the
// first job listed and how many others there are, and acknowledges its events; those
// are delivered again when it could not be queued.
func (n *Notifier) flush(ctx context.Context) {
	b := n.burst
	if b == nil {
		return
	}
	n.burst = nil
	nt := Notification{
		ID:   TypeJobsFailed + ":" + b.data.Jobs[0].JobID + "+" + strconv.Itoa(b.data.Count-1),
		Type: TypeJobsFailed, At: time.Now().UTC(), Data: b.data,
	}
	if err := n.notify(ctx, nt); errors.Is(err, ErrNotQueued) {
		for _, msg := range b.msgs {
			_ = msg.NakWithDelay(time.Second)
		}
		return
	}
	for key := range b.keys {
		n.announced.add(key)
	}
	for _, msg := range b.msgs {
		_ = msg.Ack()
	}
}

// abandonBurst leaves the events gathered to whoever reads them next.
func (n *Notifier) abandonBurst() {
	if n.burst == nil {
		return
	}
	for _, msg := range n.burst.msgs {
		_ = msg.Nak()
	}
	n.burst = nil
}

// notifyCondition is notify for the change of a condition of subject (a lane, a site):
// when the change was announced before but not queued, the same notification (its id,
// its time, its data) is sent again rather than a new one.
func (n *Notifier) notifyCondition(ctx context.Context, subject string, nt Notification) error {
	if n.unsent == nil {
		n.unsent = map[string]Notification{}
	}
	if old, ok := n.unsent[subject]; ok && old.Type == nt.Type {
		nt = old
	}
	err := n.notify(ctx, nt)
	if errors.Is(err, ErrNotQueued) {
		n.unsent[subject] = nt
	} else {
		delete(n.unsent, subject)
	}
	return err
}

// notify queues nt, counting it unless it is to be sent again (ErrNotQueued).
func (n *Notifier) notify(ctx context.Context, nt Notification) error {
	err := n.send.Send(ctx, nt)
	if errors.Is(err, ErrNotQueued) {
		if ctx.Err() == nil {
			n.logger.Warn("notification not queued; it is sent again", "type", nt.Type, "id", nt.ID, "err", err)
		}
		return err
	}
	n.sent.WithLabelValues(nt.Type).Inc()
	n.logger.Info("notification queued", "type", nt.Type, "id", nt.ID)
	return err
}

// check announces every lane whose queue crossed the threshold and every site whose
// circuit opened or closed since the last check.
func (n *Notifier) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := time.Now().UTC()
	changed := false
	var errs []error
	for _, l := range events.Lanes {
		waiting, err := n.waiting(ctx, l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		above := n.state.QueueAbove[l]
		t := n.cfg.Threshold
		switch {
		case !above && waiting > t:
			err = n.notifyCondition(ctx, "lane:"+string(l), Notification{ID: conditionID(TypeQueueAbove, string(l), now), Type: TypeQueueAbove, At: now,
				Data: Queue{Lane: l, Waiting: waiting, Threshold: t}})
		case above && waiting*10 < t*9:
			err = n.notifyCondition(ctx, "lane:"+string(l), Notification{ID: conditionID(TypeQueueBelow, string(l), now), Type: TypeQueueBelow, At: now,
				Data: Queue{Lane: l, Waiting: waiting, Threshold: t}})
		default:
			continue
		}
		if errors.Is(err, ErrNotQueued) {
			continue // announced at the next check
		}
		n.state.QueueAbove[l] = !above
		changed = true
	}
	hbs, err := n.heartbeats(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	// A site no live fetcher serves keeps its state: nobody knows its circuit.
	for _, c := range circuits(hbs) {
		if open := c.State == "open"; open != n.state.CircuitOpen[c.Site] {
			typ := TypeCircuitClosed
			if open {
				typ = TypeCircuitOpened
			}
			if errors.Is(n.notifyCondition(ctx, "site:"+c.Site, Notification{ID: conditionID(typ, c.Site, now), Type: typ, At: now, Data: c}), ErrNotQueued) {
				continue // announced at the next check
			}
			n.state.CircuitOpen[c.Site] = open
			changed = true
		}
	}
	if changed {
		n.saveState(ctx)
	}
	return errors.Join(errs...)
}

// circuits returns the circuit of every site the live fetchers serve, by site id: open
// when one of them reports it open (or half-open), or the site refusing us. A heartbeat
// without sites, from a fetcher older than them, reports xsw's circuit.
func circuits(hbs []events.FetcherHeartbeat) []Circuit {
	bySite := map[string]*Circuit{}
	add := func(site, fetcher, state string, interval float64, open bool) {
		c := bySite[site]
		if c == nil {
			c = &Circuit{Site: site, State: "closed"}
			bySite[site] = c
		}
		c.Fetchers = append(c.Fetchers, FetcherCircuit{FetcherID: fetcher, Circuit: state, Interval: interval})
		if open {
			c.State = "open"
		}
	}
	for _, h := range hbs {
		if len(h.Sites) == 0 {
			add(events.LegacySite, h.FetcherID, h.Circuit, h.Interval, h.Circuit != "closed")
			continue
		}
		for _, s := range h.Sites {
			add(s.ID, h.FetcherID, s.State, s.Interval, s.State == events.SiteCircuitOpen || s.State == events.SiteRefused)
		}
	}
	out := make([]Circuit, 0, len(bySite))
	for _, site := range slices.Sorted(maps.Keys(bySite)) {
		out = append(out, *bySite[site])
	}
	return out
}

func conditionID(typ, subject string, at time.Time) string {
	return typ + ":" + subject + ":" + strconv.FormatInt(at.UnixNano(), 10)
}

// waiting counts the requests waiting in lane l (see broker.WaitingInLane).
func (n *Notifier) waiting(ctx context.Context, l events.Lane) (int, error) {
	return broker.WaitingInLane(ctx, n.requests, l)
}

// heartbeats returns the heartbeat of every live fetcher.
func (n *Notifier) heartbeats(ctx context.Context) ([]events.FetcherHeartbeat, error) {
	return broker.Heartbeats(ctx, n.fetchers, nil)
}

// recent is a bounded set of the last keys added.
type recent struct {
	keys []string
	set  map[string]bool
	next int
}

func newRecent(n int) *recent { return &recent{keys: make([]string, n), set: make(map[string]bool, n)} }

func (r *recent) has(k string) bool { return r.set[k] }

func (r *recent) add(k string) {
	if r.set[k] {
		return
	}
	delete(r.set, r.keys[r.next])
	r.keys[r.next] = k
	r.set[k] = true
	r.next = (r.next + 1) % len(r.keys)
}
