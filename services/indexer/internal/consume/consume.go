// Package consume runs the indexer's loop: it pulls batches of fetched and job events (and
// commands: a purge of a book's chapter texts, an operator's acceptance of a book's
// shrink) from JetStream, writes each batch (its books split among a few transactions
// side by side, each book's events in order in one of them), acknowledges its messages
// after their commit and announces every book written.
//
// A sync whose result would shrink a stored book sharply is refused by the store (see
// store.ShrinkFloor): the loop publishes a dead letter for its job, as a fetcher does
// for a job that gave up, so that an operator sees it and can replay it, before the
// batch is acknowledged. When the site really removed the chapters, the operator
// accepts the shrink instead (events.BookShrinkAccepted, in order with the fetched
// events): the book's next sync applies.
//
// Each message ends in exactly one outcome: Ack after the commit (and the announcements);
// Term when it can never be indexed (undecodable, unknown version, refused by the
// database); NakWithDelay, with exponential backoff, when the database failed; Nak (at
// once) when shutdown interrupted its batch.
package consume

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/clock"
	"github.com/xswtw/xsw/services/indexer/internal/store"
)

// Options tune the loop. Zero fields take the defaults.
type Options struct {
	// BatchSize is the most messages pulled at once (default 256).
	BatchSize int
	// Writers is how many transactions write a batch's books side by side, each book's
	// events in one of them, in order (default 4). Events of no book follow in a
	// transaction of their own once those are done.
	Writers int
	// MaxWait is how long one pull waits for a first message (default 500ms); it bounds
	// how long shutdown waits for an idle loop.
	MaxWait time.Duration
	// BackoffMin and BackoffMax bound the redelivery delay after a failed batch: it
	// doubles from BackoffMin with every consecutive failure (defaults 500ms and 30s).
	BackoffMin, BackoffMax time.Duration
	// BatchTimeout bounds writing one batch (default 25s, under the consumer's 30s ack
	// wait): a database that hangs fails the batch instead of stalling the loop.
	BatchTimeout time.Duration
	// ShutdownTimeout is how long the batch in hand may take to finish once the loop is
	// told to stop (default 5s); past it, its messages are handed back for redelivery.
	ShutdownTimeout time.Duration
	// Observe, when set, is told of every committed batch: its events and how long its
	// transaction took.
	Observe func(evs []events.Payload, took time.Duration)
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.Writers <= 0 {
		o.Writers = 4
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 500 * time.Millisecond
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 500 * time.Millisecond
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(30*time.Second, o.BackoffMin)
	}
	if o.BatchTimeout <= 0 {
		o.BatchTimeout = 25 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	return o
}

// Stats counts what the loop did since it was built.
type Stats struct {
	// Batches is the number of committed batches.
	Batches int64
	// Acked is the number of messages acknowledged after a commit.
	Acked int64
	// Poison is the number of messages terminated because they can never be indexed.
	Poison int64
	// Failures is the number of batch attempts the database failed.
	Failures int64
	// Delayed is the number of messages handed back with a delay after a failure.
	Delayed int64
	// Announced is the number of BookIndexed announcements published.
	Announced int64
	// Refused is the number of completed syncs refused because they would shrink a
	// stored book sharply (store.ShrinkFloor), each dead-lettered.
	Refused int64
}

type counters struct {
	batches, acked, poison, failures, delayed, announced, refused atomic.Int64
}

// Consumer is the indexing loop over one durable consumer.
type Consumer struct {
	cons   jetstream.Consumer
	js     jetstream.JetStream
	store  *store.Store
	logger *slog.Logger
	opts   Options
	stats  counters

	// failures counts consecutive failed writes; the writers of a batch share it.
	mu       sync.Mutex
	failures int
}

// New returns a loop that pulls from cons, writes through st and announces through js.
func New(cons jetstream.Consumer, js jetstream.JetStream, st *store.Store, logger *slog.Logger, opts Options) *Consumer {
	return &Consumer{cons: cons, js: js, store: st, logger: logger, opts: opts.withDefaults()}
}

// Stats returns the counters so far. It is safe to call while Run runs.
func (c *Consumer) Stats() Stats {
	return Stats{
		Batches:   c.stats.batches.Load(),
		Acked:     c.stats.acked.Load(),
		Poison:    c.stats.poison.Load(),
		Failures:  c.stats.failures.Load(),
		Delayed:   c.stats.delayed.Load(),
		Announced: c.stats.announced.Load(),
		Refused:   c.stats.refused.Load(),
	}
}

// Run pulls and indexes batches until ctx ends, then finishes the batch in hand within
// the shutdown timeout and returns nil. Database and NATS failures are logged and
// retried; they never end the loop.
func (c *Consumer) Run(ctx context.Context) error {
	// The batch in hand is finished under work, which outlives ctx by the shutdown
	// timeout at most.
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-done:
		case <-ctx.Done():
			t := time.NewTimer(c.opts.ShutdownTimeout)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				cancel()
			}
		}
	})
	defer func() {
		close(done)
		wg.Wait()
		cancel()
	}()

	fetchFailures := 0
	for ctx.Err() == nil {
		msgs, err := c.fetch()
		if err != nil {
			fetchFailures++
			d := c.backoff(fetchFailures)
			c.logger.Warn("pull events failed", "err", err, "attempt", fetchFailures, "retry_in", d)
			clock.Sleep(ctx, d)
			continue
		}
		fetchFailures = 0
		if len(msgs) == 0 {
			continue
		}
		if d := c.process(work, msgs); d > 0 {
			clock.Sleep(ctx, d)
		}
	}
	return nil
}

// fetch waits up to MaxWait for one message, then takes whatever else is waiting, up to
// the batch size, without waiting: an event is indexed as soon as it arrives, and a
// backlog goes in full batches.
func (c *Consumer) fetch() ([]jetstream.Msg, error) {
	first, err := c.cons.Next(jetstream.FetchMaxWait(c.opts.MaxWait))
	if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	msgs := []jetstream.Msg{first}
	if c.opts.BatchSize == 1 {
		return msgs, nil
	}
	batch, err := c.cons.FetchNoWait(c.opts.BatchSize - 1)
	if err != nil {
		return msgs, nil // what we hold is a batch; the rest waits for the next pull
	}
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// item is a decoded message.
type item struct {
	msg jetstream.Msg
	ev  events.Payload
	seq uint64
	// key is the events.Key of the book the event is about, "" for events of no one book
	// (categories, read counts).
	key string
}

// process indexes one batch and settles every message of it. It returns how long the
// loop should pause: the redelivery delay after a database failure, else 0.
func (c *Consumer) process(ctx context.Context, msgs []jetstream.Msg) time.Duration {
	items := make([]item, 0, len(msgs))
	for _, m := range msgs {
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		ev, key, err := decode(m.Subject(), m.Data())
		if err != nil {
			c.term(m, seq, err)
			continue
		}
		items = append(items, item{msg: m, ev: ev, seq: seq, key: key})
	}
	// A book's events stay together and in order: one writer takes them all. Writers
	// touch the rows of their own books only, so they never wait on one another. Events
	// of no book (categories, read counts, which touch many books' rows) come after.
	groups := make([][]item, c.opts.Writers)
	var rest []item
	for _, it := range items {
		if it.key == "" {
			rest = append(rest, it)
			continue
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(it.key))
		w := h.Sum32() % uint32(len(groups))
		groups[w] = append(groups[w], it)
	}
	pauses := make([]time.Duration, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		if len(g) > 0 {
			wg.Go(func() { pauses[i] = c.write(ctx, g) })
		}
	}
	wg.Wait()
	pause := slices.Max(pauses)
	if len(rest) > 0 {
		pause = max(pause, c.write(ctx, rest))
	}
	return pause
}

// write indexes items in one transaction and settles each of them. It returns how long
// the loop should pause: the redelivery delay after a database failure, else 0.
func (c *Consumer) write(ctx context.Context, items []item) time.Duration {
	for len(items) > 0 {
		evs := make([]events.Payload, len(items))
		for i, it := range items {
			evs[i] = it.ev
		}
		actx, cancel := context.WithTimeout(ctx, c.opts.BatchTimeout)
		began := time.Now()
		res, err := c.store.Apply(actx, evs)
		took := time.Since(began)
		cancel()
		var rej *store.RejectedError
		if errors.As(err, &rej) {
			// The database refuses this event's data: drop it and write the rest.
			c.term(items[rej.Index].msg, items[rej.Index].seq, err)
			items = append(items[:rej.Index], items[rej.Index+1:]...)
			continue
		}
		if err != nil {
			return c.fail(ctx, items, err)
		}
		c.mu.Lock()
		if c.failures > 0 {
			c.logger.Info("indexing resumed", "failed_attempts", c.failures)
			c.failures = 0
		}
		c.mu.Unlock()
		c.stats.batches.Add(1)
		if c.opts.Observe != nil {
			c.opts.Observe(evs, took)
		}
		c.logCommitted(items, res)
		err = c.deadLetter(ctx, items, res.Refused)
		if err == nil {
			err = c.announce(ctx, items, res.Books)
		}
		if err != nil {
			// Committed but not dead-lettered or announced: hand the batch back. Writing
			// it again changes nothing, refuses the same syncs and publishes again, under
			// the same message ids.
			if ctx.Err() != nil {
				c.handBack(items, err)
				return 0
			}
			d := c.opts.BackoffMin
			c.logger.Warn("publish after commit failed; batch handed back", "err", err, "messages", len(items), "retry_in", d)
			c.nakAll(items, d)
			return 0
		}
		for _, it := range items {
			if err := it.msg.Ack(); err != nil {
				c.logger.Warn("ack failed; the event will be redelivered and change nothing", "subject", it.msg.Subject(), "seq", it.seq, "err", err)
				continue
			}
			c.stats.acked.Add(1)
		}
		return 0
	}
	return 0
}

// fail settles a batch the database could not write: delayed redelivery with backoff, or,
// when shutdown cut it short, redelivery at once.
func (c *Consumer) fail(ctx context.Context, items []item, err error) time.Duration {
	if ctx.Err() != nil {
		c.handBack(items, err)
		return 0
	}
	c.mu.Lock()
	c.failures++
	attempt := c.failures
	c.mu.Unlock()
	c.stats.failures.Add(1)
	d := c.backoff(attempt)
	c.logger.Error("index batch failed; retrying", "err", err, "messages", len(items), "attempt", attempt, "retry_in", d)
	c.nakAll(items, d)
	return d
}

// handBack returns a batch that shutdown cut short for redelivery at once.
func (c *Consumer) handBack(items []item, err error) {
	c.logger.Warn("shutdown interrupted a batch; handed back", "messages", len(items), "err", err)
	for _, it := range items {
		_ = it.msg.Nak() // a lost nak only means redelivery after the ack wait
	}
}

func (c *Consumer) nakAll(items []item, d time.Duration) {
	for _, it := range items {
		if err := it.msg.NakWithDelay(d); err == nil {
			c.stats.delayed.Add(1)
		}
	}
}

// term ends a message that can never be indexed.
func (c *Consumer) term(m jetstream.Msg, seq uint64, reason error) {
	c.stats.poison.Add(1)
	c.logger.Warn("event terminated", "subject", m.Subject(), "seq", seq, "err", reason)
	if err := broker.Term(m, reason); err != nil {
		c.logger.Warn("term failed", "subject", m.Subject(), "seq", seq, "err", err)
	}
}

// backoff is the delay after n consecutive failures.
func (c *Consumer) backoff(n int) time.Duration {
	d := c.opts.BackoffMin
	for i := 1; i < n && d < c.opts.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.opts.BackoffMax)
}

// announce publishes BookIndexed for every book of the batch, on the subject of its site
// and id. The message id names the book (events.Key) and the last stream sequence of the
// batch that touched it, so a redelivered batch announces under the same id and
// JetStream drops the repeat.
func (c *Consumer) announce(ctx context.Context, items []item, books []store.BookState) error {
	if len(books) == 0 {
		return nil
	}
	lastSeq := make(map[string]uint64, len(books))
	for _, it := range items {
		if it.key != "" {
			lastSeq[it.key] = it.seq
		}
	}
	now := time.Now().UTC()
	for _, b := range books {
		ev := events.BookIndexed{
			Header:    events.Header{Version: events.Version},
			Site:      b.Site,
			BookID:    b.BookID,
			Chapters:  b.Chapters,
			Complete:  b.Complete,
			HasMeta:   b.HasMeta,
			IndexedAt: now,
		}
		key := events.Key(b.Site, b.BookID)
		msgID := "indexed:" + key + ":" + strconv.FormatUint(lastSeq[key], 10)
		if _, err := broker.Publish(ctx, c.js, ev.Subject(), msgID, &ev); err != nil {
			return fmt.Errorf("announce book %s: %w", key, err)
		}
		c.stats.announced.Add(1)
	}
	return nil
}

// deadLetter publishes the dead letter of every completed job of the batch whose sync
// the store refused, on the dead-letter subject of its book and under the message id a
// fetcher would give it ("dead:" and the job id): the request it can be replayed as is
// rebuilt from the job's event. The book itself stays on the refresh schedule.
func (c *Consumer) deadLetter(ctx context.Context, items []item, refused []store.Refusal) error {
	for _, r := range refused {
		e, ok := items[r.Event].ev.(*events.JobEvent)
		if !ok {
			continue // a last page: its completion is refused too, and dead-lettered
		}
		dl := refusedLetter(e, r.Reason())
		if _, err := broker.Publish(ctx, c.js, dl.Subject(), "dead:"+e.JobID, &dl); err != nil {
			return fmt.Errorf("dead-letter refused job %s: %w", e.JobID, err)
		}
		c.stats.refused.Add(1)
	}
	return nil
}

// refusedLetter is the dead letter of a completed job whose sync was refused.
func refusedLetter(e *events.JobEvent, reason string) events.DeadLetter {
	requested := e.EnqueuedAt
	if requested.IsZero() {
		requested = e.At
	}
	if requested.IsZero() {
		requested = time.Now()
	}
	died := e.At
	if died.IsZero() {
		died = time.Now()
	}
	return events.DeadLetter{
		Header: events.Header{Version: events.Version},
		Request: events.BookRequested{
			Header: events.Header{Version: events.Version}, Site: e.Site, BookID: e.BookID, Lane: e.Lane,
			Priority: e.Priority, RequestedAt: requested.UTC(),
		},
		JobID: e.JobID, Attempts: max(e.Attempt, 1), Error: reason, DiedAt: died.UTC(),
	}
}

// logCommitted logs what a committed batch did, in the seed's words.
func (c *Consumer) logCommitted(items []item, res store.Result) {
	complete := make(map[string]bool, len(res.Books))
	for _, b := range res.Books {
		complete[events.Key(b.Site, b.BookID)] = b.Complete
	}
	refused := make(map[int]bool, len(res.Refused))
	for _, r := range res.Refused {
		refused[r.Event] = true
		c.logger.Warn("sync refused: it would shrink the book; nothing stored changed", "site", r.Site, "book_id", r.BookID,
			"job_id", r.JobID, "listed", r.Listed, "stored", r.Stored, "peak", r.Peak, "event", fmt.Sprintf("%T", items[r.Event].ev))
	}
	for i, it := range items {
		if refused[i] {
			continue
		}
		changed := res.Changed[i]
		switch e := it.ev.(type) {
		case *events.BookFetched:
			c.logger.Info("[BG] Cached book info for "+e.BookID, "site", e.Site, "book_id", e.BookID, "changed", changed > 0)
		case *events.TOCPageFetched:
			c.logger.Info(fmt.Sprintf("[BG] Cached %d chapter references for %s", len(e.Chapters), e.BookID),
				"site", e.Site, "book_id", e.BookID, "page", e.Page, "total_pages", e.TotalPages, "changed", changed)
		case *events.ChapterFetched:
			c.logger.Debug("chapter text stored", "site", e.Site, "book_id", e.BookID, "number", e.Number, "changed", changed > 0)
		case *events.CategoriesFetched:
			c.logger.Info("cached categories", "site", e.Site, "count", len(e.Categories), "changed", changed)
		case *events.BookPurgeRequested:
			c.logger.Info("chapter texts purged", "site", e.Site, "book_id", e.BookID, "chapters", changed, "reason", e.Reason)
		case *events.BookShrinkAccepted:
			if changed > 0 {
				c.logger.Info("shrink accepted: the book's next sync applies whatever it lists", "site", e.Site, "book_id", e.BookID,
					"accepted_at", e.AcceptedAt, "reason", e.Reason)
			} else {
				c.logger.Info("shrink acceptance ignored: the book is not stored, or holds an acceptance as new", "site", e.Site,
					"book_id", e.BookID, "accepted_at", e.AcceptedAt, "reason", e.Reason)
			}
		case *events.JobEvent:
			switch e.Kind {
			case events.JobCompleted:
				c.logger.Info("[Sync] Completed sync for book "+e.BookID, "site", e.Site, "book_id", e.BookID, "job_id", e.JobID,
					"chapters", e.Chapters, "complete", complete[it.key])
			case events.JobFailed, events.JobSkipped:
				c.logger.Debug("job recorded", "site", e.Site, "book_id", e.BookID, "job_id", e.JobID, "kind", e.Kind)
			}
		}
	}
}

// Subject families the indexer reads, as the first tokens of their subjects (the
// events' own constructors spell them; the site and book ids here are placeholders).
var (
	bookFamily    = family(events.SubjectFetchedBook(events.LegacySite, "0"), events.FetchedPrefixTokens)
	tocFamily     = family(events.SubjectFetchedTOC(events.LegacySite, "0"), events.FetchedPrefixTokens)
	chapterFamily = family(events.SubjectFetchedChapter(events.LegacySite, "0"), events.FetchedPrefixTokens)
	purgeFamily   = family(events.SubjectPurgeBook(events.LegacySite, "0"), events.PurgePrefixTokens)
	acceptFamily  = family(events.SubjectAcceptShrink(events.LegacySite, "0"), events.AcceptPrefixTokens)
	jobFamily     = family(events.SubjectJob(events.JobStarted, events.LegacySite, "0"), events.JobPrefixTokens-1)
	// The categories of a site are published on the family and the site id; until the
	// sites, on the family alone.
	categoriesFamily = strings.TrimSuffix(events.SubjectFetchedCategories(events.LegacySite), "."+events.LegacySite)
)

// family returns the first n tokens of subject.
func family(subject string, n int) string {
	tokens := strings.SplitN(subject, ".", n+1)
	return strings.Join(tokens[:min(n, len(tokens))], ".")
}

// decode reads a message by its subject, and returns the events.Key of the book it is
// about ("" for events of no one book). A per-book subject must name the payload's book:
// the subject's site and id (BookOfSubject: a subject written before sites, with a bare
// id, names an xsw book) are the payload's. Every error is permanent: it wraps
// events.ErrInvalid or events.ErrVersion.
func decode(subject string, data []byte) (events.Payload, string, error) {
	switch {
	case subject == categoriesFamily || strings.HasPrefix(subject, categoriesFamily+"."):
		var e events.CategoriesFetched
		if err := events.Decode(data, &e); err != nil {
			return nil, "", err
		}
		// Until sites, the categories were published on the family's subject alone.
		if subject == categoriesFamily && e.Site == events.LegacySite {
			return &e, "", nil
		}
		return &e, "", sameSubject(subject, e.Subject())
	case family(subject, events.FetchedPrefixTokens) == bookFamily:
		var e events.BookFetched
		return book(subject, events.FetchedPrefixTokens, data, &e, func() (string, string) { return e.Site, e.BookID })
	case family(subject, events.FetchedPrefixTokens) == tocFamily:
		var e events.TOCPageFetched
		return book(subject, events.FetchedPrefixTokens, data, &e, func() (string, string) { return e.Site, e.BookID })
	case family(subject, events.FetchedPrefixTokens) == chapterFamily:
		var e events.ChapterFetched
		return book(subject, events.FetchedPrefixTokens, data, &e, func() (string, string) { return e.Site, e.BookID })
	case subject == events.SubjectReads:
		var e events.BooksRead
		if err := events.Decode(data, &e); err != nil {
			return nil, "", err
		}
		return &e, "", nil
	case family(subject, events.PurgePrefixTokens) == purgeFamily:
		var e events.BookPurgeRequested
		return book(subject, events.PurgePrefixTokens, data, &e, func() (string, string) { return e.Site, e.BookID })
	case family(subject, events.AcceptPrefixTokens) == acceptFamily:
		var e events.BookShrinkAccepted
		return book(subject, events.AcceptPrefixTokens, data, &e, func() (string, string) { return e.Site, e.BookID })
	case family(subject, events.JobPrefixTokens-1) == jobFamily:
		var e events.JobEvent
		p, key, err := book(subject, events.JobPrefixTokens, data, &e, func() (string, string) { return e.Site, e.BookID })
		if err == nil && family(subject, events.JobPrefixTokens) != family(e.Subject(), events.JobPrefixTokens) {
			err = fmt.Errorf("%w: a %s job event published on %s", events.ErrInvalid, e.Kind, subject)
		}
		return p, key, err
	}
	return nil, "", fmt.Errorf("%w: no payload is published on %s", events.ErrInvalid, subject)
}

// book decodes data into p, an event about one book, and checks that subject, whose
// book follows prefixTokens tokens, names the book of p (whose site and id ident
// returns).
func book(subject string, prefixTokens int, data []byte, p events.Payload, ident func() (site, bookID string)) (events.Payload, string, error) {
	if err := events.Decode(data, p); err != nil {
		return nil, "", err
	}
	site, bookID := ident()
	subSite, subBook, ok := events.BookOfSubject(subject, prefixTokens)
	if !ok || subSite != site || subBook != bookID {
		return nil, "", fmt.Errorf("%w: published on %s, payload belongs to book %s", events.ErrInvalid, subject, events.Key(site, bookID))
	}
	return p, events.Key(site, bookID), nil
}

func sameSubject(got, want string) error {
	if got != want {
		return fmt.Errorf("%w: published on %s, payload belongs on %s", events.ErrInvalid, got, want)
	}
	return nil
}
