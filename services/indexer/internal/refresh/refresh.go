// Package refresh keeps stored books fresh: on a schedule it queues due books of the
// configured sites in the refresh lane, unfinished books every Interval and finished ones
// every FinishedInterval, most-read and oldest-checked first, within an hourly budget of
// source requests, so that refresh never crowds out readers and browsing. Books of a
// site no longer configured are left alone. Several indexer replicas may run it: a lease
// in a JetStream key-value bucket lets exactly one act at a time.
package refresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
)

// Config tunes the scheduler.
type Config struct {
	// Interval between checks of an unfinished book (REFRESH_INTERVAL, default 6h); a
	// book read in the last day is checked twice as often. Zero switches refresh off.
	Interval time.Duration
	// FinishedInterval between checks of a finished book (REFRESH_FINISHED_INTERVAL,
	// default 7 days).
	FinishedInterval time.Duration
	// BudgetPerHour bounds the source requests of refresh jobs in any hour, all sites
	// together (REFRESH_BUDGET_PER_HOUR, default 120): requests made by refresh jobs
	// finished in the last hour, plus one for every refresh request still waiting, never
	// exceed it.
	BudgetPerHour int
	// Tick is how often the leader looks for due books. Zero derives it from the
	// intervals (see tickFor): once a minute unless an interval is short.
	Tick time.Duration
	// Sites are the ids of the sites whose books are refreshed (SOURCES); the books of
	// any other site are not, nor is any book when there is none.
	Sites []string
}

// Scheduler queues due books in the refresh lane.
type Scheduler struct {
	db     *pgxpool.Pool
	js     jetstream.JetStream
	leases jetstream.KeyValue
	cfg    Config
	id     string
	logger *slog.Logger
	now    func() time.Time
}

// New returns a scheduler for the replica named id.
func New(db *pgxpool.Pool, js jetstream.JetStream, leases jetstream.KeyValue, id string, cfg Config, logger *slog.Logger) *Scheduler {
	if cfg.Tick <= 0 {
		cfg.Tick = tickFor(cfg.Interval, cfg.FinishedInterval)
	}
	return &Scheduler{db: db, js: js, leases: leases, cfg: cfg, id: id, logger: logger.With("part", "refresh"), now: time.Now}
}

// Bounds of the derived tick: looking for due books costs a query and a look at the
// request stream, so not more than once a second; and a book is never more than a minute
// late, however long its interval.
const (
	minTick = time.Second
	maxTick = time.Minute
)

// tickFor is how often to look for due books under these intervals: half the shortest
// time after which a book can be due (half the interval for an unfinished book read in
// the last day), so that a book waits at most half its interval past its due time, the
// bounds aside. With the defaults (6h, 7 days) it is maxTick; with an interval of
// 4s it is minTick, so a book is asked for every 4 to 5 seconds rather than once a minute.
func tickFor(interval, finished time.Duration) time.Duration {
	shortest := interval / 2
	if finished > 0 {
		shortest = min(shortest, finished)
	}
	return min(max(shortest/2, minTick), maxTick)
}

// leaseKey names the scheduler's lease.
const leaseKey = "refresh-scheduler"

// Run renews the lease and, while this replica holds it, queues due books every Tick,
// until ctx ends. It then gives the lease up so another replica can take over at once.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.cfg.Interval <= 0 {
		return nil
	}
	renew := time.NewTicker(events.LeaseTTL / 3)
	defer renew.Stop()
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	leader := s.lead(ctx)
	defer func() {
		if leader {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = s.leases.Delete(dctx, leaseKey)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-renew.C:
			leader = s.lead(ctx)
		case <-tick.C:
			if !leader {
				continue
			}
			if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("refresh tick", "err", err)
			}
		}
	}
}

// lead takes or renews the lease and reports whether this replica holds it.
func (s *Scheduler) lead(ctx context.Context) bool {
	e, err := s.leases.Get(ctx, leaseKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = s.leases.Create(ctx, leaseKey, []byte(s.id))
		if err == nil {
			s.logger.Info("refresh scheduler leads", "replica", s.id)
		}
		return err == nil
	case err != nil:
		return false
	case string(e.Value()) != s.id:
		return false
	}
	_, err = s.leases.Update(ctx, leaseKey, []byte(s.id), e.Revision())
	return err == nil
}

// Tick queues the books due now, as many as the budget allows, and reports how many.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	now := s.now().UTC()
	room, err := s.room(ctx, now)
	if err != nil || room <= 0 {
		return 0, err
	}
	rows, err := s.db.Query(ctx, `
		SELECT b.site, b.id, (SELECT count(*) FROM chapters c WHERE c.site = b.site AND c.book_id = b.id),
		       b.last_chapter_id, b.checked_at
		FROM books b
		WHERE b.site = ANY($5::text[]) AND b.name <> '' AND (
		    (NOT b.finished AND coalesce(b.checked_at, 'epoch') <
		        $1::timestamptz - CASE WHEN b.read_at > $1::timestamptz - interval '1 day' THEN $2::interval / 2 ELSE $2::interval END)
		 OR (b.finished AND coalesce(b.checked_at, 'epoch') < $1::timestamptz - $3::interval))
		ORDER BY b.read_count DESC, b.checked_at ASC NULLS FIRST
		LIMIT $4`, now, s.cfg.Interval, s.cfg.FinishedInterval, room, s.cfg.Sites)
	if err != nil {
		return 0, fmt.Errorf("due books: %w", err)
	}
	type due struct {
		site, id string
		chapters int
		last     *string
		checked  *time.Time
	}
	var books []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.site, &d.id, &d.chapters, &d.last, &d.checked); err != nil {
			rows.Close()
			return 0, err
		}
		books = append(books, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	queued := 0
	for _, d := range books {
		r := events.NewBookRequested(d.site, d.id, events.LaneRefresh, 0, false, "refresh", now)
		r.Known = &events.KnownBook{Chapters: d.chapters}
		if d.last != nil {
			r.Known.LastChapterID = *d.last
		}
		// One id per round (per check of the book), not MsgID's per period: with a short
		// Interval a book is due again within the request-id window, and that request
		// must not be dropped as a duplicate of the last one.
		var checked time.Time
		if d.checked != nil {
			checked = *d.checked
		}
		ack, err := broker.Publish(ctx, s.js, r.Subject(), events.RefreshMsgID(d.site, d.id, checked), &r)
		switch {
		case broker.IsSubjectFull(err):
			continue // already waiting in the refresh lane
		case err != nil:
			return queued, err
		case ack.Duplicate:
			// This round was asked for within the window already: by this replica, its
			// request since consumed without a new check (skipped or failed), or by
			// another replica that led a moment ago.
			continue
		}
		queued++
	}
	if queued > 0 {
		s.logger.Info("refresh queued", "books", queued, "room", room)
	}
	return queued, nil
}

// room is how many refresh jobs the budget allows now: the hourly budget less the
// requests of refresh jobs finished in the last hour and the refresh requests waiting
// (each costs at least one).
func (s *Scheduler) room(ctx context.Context, now time.Time) (int, error) {
	var spent int
	err := s.db.QueryRow(ctx, `
		SELECT coalesce(sum(greatest(coalesce(requests, 1), 1)), 0)
		FROM job_history WHERE lane = 'refresh' AND finished_at > $1`, now.Add(-time.Hour)).Scan(&spent)
	if err != nil {
		return 0, fmt.Errorf("refresh budget: %w", err)
	}
	waiting, err := s.waiting(ctx)
	if err != nil {
		return 0, err
	}
	return s.cfg.BudgetPerHour - spent - waiting, nil
}

// waiting counts the refresh requests in the request stream (waiting or in flight).
func (s *Scheduler) waiting(ctx context.Context) (int, error) {
	st, err := s.js.Stream(ctx, events.StreamRequests)
	if err != nil {
		return 0, fmt.Errorf("request stream: %w", err)
	}
	return broker.StoredInLane(ctx, st, events.LaneRefresh)
}
