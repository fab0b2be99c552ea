package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/services/fetcher/internal/metrics"
	"github.com/xswtw/xsw/services/fetcher/internal/sites"
)

// Config tunes a Pool.
type Config struct {
	// FetcherID names this process in job events and heartbeats.
	FetcherID string
	// Workers is the number of jobs of each site run at once (BG_JOB_WORKERS).
	Workers int
	// MaxAttempts bounds the deliveries of one request (BG_JOB_MAX_ATTEMPTS); the last
	// failure sends it to the dead-letter stream.
	MaxAttempts int
	// MaxAge expires requests that waited longer (BG_JOB_MAX_AGE; 0 keeps them).
	MaxAge time.Duration
	// DedupWindow skips books whose last sync completed more recently, unless forced
	// (SYNC_DEDUP_WINDOW).
	DedupWindow time.Duration
	// AckWait is how long a silent job keeps its message; jobs signal progress well
	// within it.
	AckWait time.Duration
	// ShutdownTimeout is how long in-flight jobs may finish after the pool is told to
	// stop; the rest are handed back for immediate redelivery (SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// RetryBase and RetryMax shape the exponential backoff between attempts.
	RetryBase, RetryMax time.Duration
	// FairnessEvery: one pick in this many starts from the lowest lane, so lower lanes
	// get at least that share while they have work (default 10).
	FairnessEvery int
	// Observe, when set, is told how each job attempt ended (one of the outcomes of
	// package metrics) and how long it took.
	Observe func(lane events.Lane, outcome string, took time.Duration)
	// Poison, when set, is told of every request terminated because it can never be run:
	// it cannot be decoded, or it names a site this fetcher does not serve.
	Poison func()
}

func (c *Config) defaults() {
	if c.Workers < 1 {
		c.Workers = 1
	}
	if c.MaxAttempts < 1 {
		c.MaxAttempts = 5
	}
	if c.AckWait <= 0 {
		c.AckWait = time.Minute
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 2 * time.Second
	}
	if c.RetryMax < c.RetryBase {
		c.RetryMax = 5 * time.Minute
	}
	if c.FairnessEvery < 2 {
		c.FairnessEvery = 10
	}
}

// Pool runs sync jobs from the lanes' consumers of every site served: each site has its
// own consumers and its own Workers, which take the site's requests highest lane first.
// A worker never holds a slot of one site while another site's work waits: the sites'
// budgets are separate, and so are the workers that spend them.
type Pool struct {
	cfg    Config
	js     jetstream.JetStream
	nc     *nats.Conn
	syncer *Syncer
	synced jetstream.KeyValue
	claims *claims
	// queues holds, for each site served, its consumers in events.Lanes order; the
	// legacy consumers of LegacySite's bare-id requests come right after its own.
	queues map[string][][]jetstream.Consumer
	logger *slog.Logger

	// wake holds, for each site served, the signal that a request for it was published.
	wake map[string]chan struct{}
	// changed is signalled whenever the set of active jobs changes.
	changed chan struct{}

	mu     sync.Mutex
	active map[string]events.ActiveJob
}

// NewPool creates (or updates) the lanes' durable consumers of every site served and
// returns a pool on them.
func NewPool(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, syncer *Syncer, cfg Config, logger *slog.Logger) (*Pool, error) {
	cfg.defaults()
	p := &Pool{cfg: cfg, js: js, nc: nc, syncer: syncer, logger: logger, queues: map[string][][]jetstream.Consumer{},
		wake: map[string]chan struct{}{}, changed: make(chan struct{}, 1), active: map[string]events.ActiveJob{}}
	// The lanes' consumers of an older build took the whole lane: narrow them to the
	// bare-id requests first, or the stream (a work queue) refuses the sites' consumers
	// beside them. Every fetcher does it, whichever sites it serves; LegacySite's
	// workers serve them.
	legacy := make([]jetstream.Consumer, len(events.Lanes))
	for i, l := range events.Lanes {
		// The server never stops delivering (MaxDeliver -1): the pool counts attempts and
		// dead-letters the request itself, so none is stranded in the stream.
		c, err := broker.Consumer(ctx, js, events.LegacyFetcherConsumer(l, cfg.AckWait, -1))
		if err != nil {
			return nil, err
		}
		legacy[i] = c
	}
	for _, id := range syncer.Sites.IDs() {
		p.wake[id] = make(chan struct{}, 1)
		lanes := make([][]jetstream.Consumer, len(events.Lanes))
		for i, l := range events.Lanes {
			c, err := broker.Consumer(ctx, js, events.FetcherConsumer(l, id, cfg.AckWait, -1))
			if err != nil {
				return nil, err
			}
			lanes[i] = []jetstream.Consumer{c}
			if id == events.LegacySite {
				lanes[i] = append(lanes[i], legacy[i])
			}
		}
		p.queues[id] = lanes
	}
	kv, err := js.KeyValue(ctx, events.BucketSynced)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", events.BucketSynced, err)
	}
	p.synced = kv
	claimsKV, err := js.KeyValue(ctx, events.BucketClaims)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", events.BucketClaims, err)
	}
	p.claims = &claims{kv: claimsKV, fetcher: cfg.FetcherID}
	return p, nil
}

// Changed is signalled (without blocking the pool) when a job starts or ends, so that
// heartbeats can report the jobs in flight now rather than a few seconds ago.
func (p *Pool) Changed() <-chan struct{} { return p.changed }

func (p *Pool) signalChanged() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// Active lists the jobs in progress now.
func (p *Pool) Active() []events.ActiveJob {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]events.ActiveJob, 0, len(p.active))
	for _, a := range p.active {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b events.ActiveJob) int { return a.StartedAt.Compare(b.StartedAt) })
	return out
}

// Run works until ctx ends, then stops taking jobs, gives in-flight jobs
// ShutdownTimeout to finish and hands the rest back for immediate redelivery.
func (p *Pool) Run(ctx context.Context) error {
	// New requests wake an idle worker of their site at once; retries that come due are
	// found by polling.
	sub, err := p.nc.Subscribe(events.SubjectRequestAll, func(m *nats.Msg) {
		site, _, ok := events.BookOfSubject(m.Subject, events.RequestPrefixTokens)
		if wake, served := p.wake[site]; ok && served {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", events.SubjectRequestAll, err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	// Jobs run under a context that outlives ctx by ShutdownTimeout.
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.cfg.ShutdownTimeout, cancelJobs)
		context.AfterFunc(jobCtx, func() { t.Stop() })
	})
	defer stop()

	var wg sync.WaitGroup
	for _, site := range p.syncer.Sites.IDs() {
		for i := 0; i < p.cfg.Workers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.work(ctx, jobCtx, site, i)
			}()
		}
	}
	wg.Wait()
	return nil
}

// work runs the jobs of one site, one at a time.
func (p *Pool) work(ctx, jobCtx context.Context, site string, worker int) {
	picks := worker // stagger the fairness turns of the workers
	for ctx.Err() == nil {
		msg := p.next(ctx, site, picks)
		if msg == nil {
			select {
			case <-ctx.Done():
			case <-p.wake[site]:
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		picks++
		p.handle(jobCtx, msg)
	}
}

// next takes one waiting request of site, highest lane first; one pick in FairnessEvery
// looks from the lowest lane up instead.
func (p *Pool) next(ctx context.Context, site string, picks int) jetstream.Msg {
	lanes := p.queues[site]
	order := make([]int, len(lanes))
	for i := range order {
		order[i] = i
	}
	if picks%p.cfg.FairnessEvery == p.cfg.FairnessEvery-1 {
		slices.Reverse(order)
	}
	for _, i := range order {
		for _, c := range lanes[i] {
			if ctx.Err() != nil {
				return nil
			}
			batch, err := c.FetchNoWait(1)
			if err != nil {
				p.logger.Warn("fetch request", "site", site, "lane", events.Lanes[i], "err", err)
				continue
			}
			for m := range batch.Messages() {
				return m
			}
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
				p.logger.Debug("fetch request", "site", site, "lane", events.Lanes[i], "err", err)
			}
		}
	}
	return nil
}

// handle runs one request and settles its message with exactly one of Ack, Nak,
// NakWithDelay or Term.
func (p *Pool) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		p.logger.Error("request without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	var req events.BookRequested
	err = events.Decode(msg.Data(), &req)
	if err == nil && !onItsSubject(req, msg.Subject()) {
		// Lane and book decide what is skipped, upgraded and purged: they must agree.
		err = fmt.Errorf("%w: request for %s published on %s", events.ErrInvalid, req.Subject(), msg.Subject())
	}
	var st *sites.Site
	if err == nil {
		var served bool
		if st, served = p.syncer.Sites.Get(req.Site); !served {
			// Only a site's own consumers deliver its requests; a payload naming another
			// site than its subject is caught above.
			err = fmt.Errorf("site %q is not served by this fetcher (it serves %v)", req.Site, p.syncer.Sites.IDs())
		}
	}
	if err != nil {
		p.logger.Warn("poison request terminated", "subject", msg.Subject(), "seq", md.Sequence.Stream, "err", err)
		if p.cfg.Poison != nil {
			p.cfg.Poison()
		}
		_ = broker.Term(msg, err)
		return
	}
	now := time.Now().UTC()
	j := &job{ID: events.JobID(req.Site, req.BookID, md.Sequence.Stream), Request: req, Site: st, Attempt: int(md.NumDelivered),
		Started: now, Enqueued: md.Timestamp}
	log := p.logger.With("site", req.Site, "book_id", req.BookID, "lane", req.Lane, "job_id", j.ID, "attempt", j.Attempt)

	if p.cfg.MaxAge > 0 && now.Sub(req.RequestedAt) > p.cfg.MaxAge {
		p.settle(ctx, msg, log, "expired", func() error { return p.skip(ctx, j, "expired: waited longer than "+p.cfg.MaxAge.String()) }, msg.Term)
		return
	}
	// One sync of a book at a time, cluster-wide, whatever the lanes: the job claims the
	// book before anything else. The claim is taken before the de-duplication check, so
	// that a job ending just now (which records its sync before releasing its claim) is
	// seen by one or the other.
	stopBeat := p.keepAlive(msg, nil, nil)
	cl, err := p.claim(ctx, j)
	stopBeat()
	switch {
	case errors.Is(err, errClaimed):
		p.settle(ctx, msg, log, "already syncing", func() error { return p.skip(ctx, j, err.Error()) }, msg.Ack)
		return
	case err != nil:
		log.Warn("claim the book; retrying later", "err", err)
		_ = msg.NakWithDelay(p.backoff(j.Attempt))
		return
	}
	j.claim = cl
	defer cl.release(ctx, log)
	if !req.Force && p.cfg.DedupWindow > 0 {
		if at, ok := p.lastSynced(ctx, req.Site, req.BookID); ok && now.Sub(at) < p.cfg.DedupWindow {
			p.settle(ctx, msg, log, "recently synced", func() error {
				return p.skip(ctx, j, "recently synced at "+at.Format(time.RFC3339))
			}, msg.Ack)
			return
		}
	}
	if j.Attempt > p.cfg.MaxAttempts {
		// Delivered again after its last attempt (a fetcher died mid-job): give up now.
		p.giveUp(ctx, msg, log, j, fmt.Errorf("gave up after %d deliveries", j.Attempt-1), false)
		return
	}

	p.setActive(j)
	defer p.clearActive(j)
	_ = p.publishJob(ctx, events.JobStarted, j, nil)
	log.Info("sync started")

	// The sync stops when the claim is lost: another job may be syncing the book then.
	syncCtx, stopSync := context.WithCancelCause(ctx)
	defer stopSync(nil)
	stopBeat = p.keepAlive(msg, cl, stopSync)
	res, err := p.syncer.Sync(syncCtx, j)
	var perr error
	if err == nil {
		// Still under the heartbeat: a patient publish must not outlast AckWait.
		perr = p.publishJob(ctx, events.JobCompleted, j, func(e *events.JobEvent) {
			e.Chapters, e.TOCPages, e.Unchanged = res.Chapters, res.Pages, res.Unchanged
		})
	}
	stopBeat()
	lost := context.Cause(syncCtx)
	if !errors.Is(lost, errClaimLost) {
		lost = nil
	}

	switch {
	case err == nil:
		if perr != nil {
			log.Warn("sync fetched but not announced; retrying", "err", perr)
			p.observe(j, metrics.Retrying)
			p.handBack(ctx, msg, log, cl, p.backoff(j.Attempt))
			return
		}
		if _, kerr := p.synced.Put(ctx, events.Key(req.Site, req.BookID), events.SyncedValue(time.Now())); kerr != nil {
			log.Warn("remember sync time", "err", kerr)
		}
		if aerr := msg.DoubleAck(ctx); aerr != nil {
			log.Warn("ack completed sync", "err", aerr)
		}
		p.observe(j, completedOutcome(res.Unchanged))
		log.Info("sync fetched", "unchanged", res.Unchanged, "chapters", res.Chapters, "toc_pages", res.Pages, "requests", j.Requests, "took", time.Since(j.Started).Round(time.Millisecond))
	case ctx.Err() != nil:
		// Shutting down past the drain timeout: hand the job back at once.
		log.Info("sync interrupted by shutdown; handed back", "err", err)
		p.handBack(ctx, msg, log, cl, 0)
	case lost != nil:
		// Not the book's failure, whatever the attempt: the next delivery finds the book
		// claimed or recently synced by the job that has it now, or syncs it.
		delay := p.backoff(j.Attempt)
		log.Warn("sync stopped: the book's claim was lost; handed back", "err", lost, "retry_in", delay.Round(time.Millisecond))
		_ = p.publishJob(ctx, events.JobRetrying, j, func(e *events.JobEvent) { e.Error = lost.Error() })
		p.observe(j, metrics.Retrying)
		p.handBack(ctx, msg, log, cl, delay)
	case permanent(err):
		p.giveUp(ctx, msg, log, j, err, true)
	case j.Attempt >= p.cfg.MaxAttempts:
		p.giveUp(ctx, msg, log, j, err, false)
	default:
		delay := p.backoff(j.Attempt)
		log.Warn("sync failed; will retry", "err", err, "retry_in", delay.Round(time.Millisecond))
		_ = p.publishJob(ctx, events.JobRetrying, j, func(e *events.JobEvent) { e.Error = err.Error() })
		p.observe(j, metrics.Retrying)
		p.handBack(ctx, msg, log, cl, delay)
	}
}

// handBack hands a job that holds its book's claim back for a retry after delay (at
// once when 0). A reader's flag on the claim is left beside it first (claim.markReader):
// the claim is released when the job ends, and the retry may come in a lower lane.
func (p *Pool) handBack(ctx context.Context, msg jetstream.Msg, log *slog.Logger, cl *claim, delay time.Duration) {
	if err := cl.markReader(ctx); err != nil {
		log.Warn("the retry may not know a reader waits", "err", err)
	}
	if delay <= 0 {
		_ = msg.Nak()
		return
	}
	_ = msg.NakWithDelay(delay)
}

// giveUp dead-letters the request, announces the failure and terminates the message. If
// the bus cannot take the dead letter, the message is retried later instead: nothing is
// dropped without a record.
func (p *Pool) giveUp(ctx context.Context, msg jetstream.Msg, log *slog.Logger, j *job, cause error, perm bool) {
	dl := events.DeadLetter{Header: events.Header{Version: events.Version}, Request: j.Request, JobID: j.ID,
		Attempts: j.Attempt, Error: cause.Error(), DiedAt: time.Now().UTC()}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), busPatience)
	defer cancel()
	if _, err := broker.PublishPatiently(pctx, p.js, dl.Subject(), "dead:"+j.ID, &dl, busPatience); err != nil {
		log.Error("dead-letter failed; retrying later", "err", err, "cause", cause)
		_ = msg.NakWithDelay(p.cfg.RetryBase)
		return
	}
	if err := p.publishJob(pctx, events.JobFailed, j, func(e *events.JobEvent) {
		e.Error, e.Permanent, e.Dead = cause.Error(), perm, true
	}); err != nil {
		log.Error("announce failure", "err", err)
	}
	log.Warn("sync failed for good; dead-lettered", "err", cause, "permanent", perm)
	p.observe(j, failedOutcome(perm))
	_ = broker.Term(msg, cause)
}

// settle announces a skipped job and settles msg with ack (Ack or Term); when the
// announcement fails the message is retried later.
func (p *Pool) settle(ctx context.Context, msg jetstream.Msg, log *slog.Logger, why string, announce func() error, ack func() error) {
	if err := announce(); err != nil {
		log.Warn("announce skipped job", "reason", why, "err", err)
		_ = msg.NakWithDelay(p.cfg.RetryBase)
		return
	}
	log.Info("sync skipped", "reason", why)
	_ = ack()
}

func (p *Pool) skip(ctx context.Context, j *job, reason string) error {
	err := p.publishJob(ctx, events.JobSkipped, j, func(e *events.JobEvent) { e.Reason = reason })
	if err == nil {
		p.observe(j, metrics.Skipped)
	}
	return err
}

func (p *Pool) publishJob(ctx context.Context, kind events.JobKind, j *job, fill func(*events.JobEvent)) error {
	e := events.JobEvent{
		Header: events.Header{Version: events.Version}, Kind: kind, JobID: j.ID, Site: j.Request.Site, BookID: j.Request.BookID,
		Lane: j.Request.Lane, Priority: j.Request.Priority, Attempt: j.Attempt, Fetcher: p.cfg.FetcherID,
		EnqueuedAt: j.Enqueued.UTC(), StartedAt: j.Started, At: time.Now().UTC(), Requests: j.Requests,
	}
	if fill != nil {
		fill(&e)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), busPatience)
	defer cancel()
	_, err := broker.PublishPatiently(pctx, p.js, e.Subject(), e.MsgID(), &e, busPatience)
	return err
}

// busPatience is how long a fetcher waits for the bus to take what it publishes (a stream
// leader being elected, a server restarting) before it treats the publish as failed.
// Every message it publishes carries an id, so waiting never stores one twice, and a job
// whose pages are in hand does not fetch them again for a few seconds' outage.
const busPatience = 15 * time.Second

func (p *Pool) lastSynced(ctx context.Context, siteID, bookID string) (time.Time, bool) {
	e, err := p.synced.Get(ctx, events.Key(siteID, bookID))
	if err != nil {
		return time.Time{}, false
	}
	t, err := events.ParseSyncedValue(e.Value())
	return t, err == nil
}

// keepAlive tells the server the job is still running, well within AckWait, and renews
// the job's claim (when it holds one) well within events.ClaimTTL, until the returned
// function is called. A renewal that fails for a while is tried again every
// claimRetry; when the claim is lost, keepAlive calls lost with the cause and renews no
// more.
func (p *Pool) keepAlive(msg jetstream.Msg, cl *claim, lost context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		beat := min(p.cfg.AckWait, events.ClaimTTL) / 3
		t := time.NewTicker(beat)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
				if cl == nil {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := cl.renew(ctx)
				cancel()
				switch {
				case err == nil:
					t.Reset(beat)
				case errors.Is(err, errClaimLost):
					p.logger.Warn("the book's claim was lost; stopping the job", "key", cl.key, "job_id", cl.job, "err", err)
					lost(err)
					cl = nil
				default:
					p.logger.Warn("renew the book's claim; trying again", "key", cl.key, "job_id", cl.job, "err", err)
					t.Reset(min(beat, claimRetry))
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// claimRetry is how soon a claim that could not be renewed is tried again.
const claimRetry = time.Second

// claim takes the book of j for j (see claims). A forced request waits for a sync in
// flight to end, then runs; any other returns errClaimed. While the claims bucket is
// unavailable (an election, a restart) it asks again for up to busPatience: a bus hiccup
// must not use up the request's attempts.
func (p *Pool) claim(ctx context.Context, j *job) (*claim, error) {
	deadline := time.Now().Add(busPatience)
	wait := 100 * time.Millisecond
	for {
		cl, err := p.claims.take(ctx, j)
		var pause time.Duration
		switch {
		case err == nil:
			return cl, nil
		case errors.Is(err, errClaimed) && j.Request.Force:
			pause = claimPoll
		case broker.Unavailable(err) && ctx.Err() == nil && time.Now().Add(wait).Before(deadline):
			pause, wait = wait, min(2*wait, time.Second)
		default:
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// claimPoll is how often a forced request looks whether the sync in flight has ended.
const claimPoll = 500 * time.Millisecond

// backoff is exponential in the attempt with full jitter in its upper half.
func (p *Pool) backoff(attempt int) time.Duration {
	d := p.cfg.RetryBase << min(max(attempt-1, 0), 20)
	d = min(d, p.cfg.RetryMax)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (p *Pool) setActive(j *job) {
	p.mu.Lock()
	p.active[j.ID] = events.ActiveJob{JobID: j.ID, Site: j.Request.Site, BookID: j.Request.BookID, Lane: j.Request.Lane, Attempt: j.Attempt, StartedAt: j.Started}
	p.mu.Unlock()
	p.signalChanged()
}

func (p *Pool) clearActive(j *job) {
	p.mu.Lock()
	delete(p.active, j.ID)
	p.mu.Unlock()
	p.signalChanged()
}

// onItsSubject reports whether req was published where it belongs: on its lane's
// subject for its book, or, for a request stored by a build before books were
// site-qualified, on the same subject with the bare book id (BookOfSubject reads it as
// LegacySite's, as Decode reads the version 1 payload).
func onItsSubject(req events.BookRequested, subject string) bool {
	if subject == req.Subject() {
		return true
	}
	site, id, ok := events.BookOfSubject(subject, events.RequestPrefixTokens)
	return ok && site == req.Site && id == req.BookID && subject == events.RequestSubjectLegacy(req.Lane, id)
}
