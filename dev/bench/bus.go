package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natsembed"
)

// bus is a JetStream server in this process, with the harness's connection to it.
type bus struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

// startBus starts a JetStream server with its store under the scratch directory, and
// connects to it.
func (e *env) startBus(name string) (*bus, error) {
	dir, err := e.dataDir("nats-" + name)
	if err != nil {
		return nil, err
	}
	srv, err := natsembed.Start(natsembed.Options{StoreDir: dir, Port: -1, ServerName: "bench-" + name})
	if err != nil {
		return nil, err
	}
	b := &bus{srv: srv}
	if b.nc, err = nats.Connect(srv.ClientURL(), nats.Name("xsw-bench")); err == nil {
		b.js, err = jetstream.New(b.nc)
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bus) url() string { return b.srv.ClientURL() }

func (b *bus) close() {
	if b.nc != nil {
		b.nc.Close()
	}
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
}

// tracker listens to the fetchers' job completions and the indexer's announcements, and
// notes when each book's sync was last fetched completely and when it was first announced
// complete (its whole table of contents and its metadata stored).
type tracker struct {
	subs    []*nats.Subscription
	changed chan struct{} // signalled on every new completion

	mu       sync.Mutex
	complete map[string]time.Time // by book id
	fetched  map[string]time.Time // by events.Key: books of every site
}

func newTracker(nc *nats.Conn) (*tracker, error) {
	t := &tracker{complete: map[string]time.Time{}, fetched: map[string]time.Time{}, changed: make(chan struct{}, 1)}
	indexed, err := nc.Subscribe(events.SubjectIndexedAll, func(m *nats.Msg) {
		var ev events.BookIndexed
		if events.Decode(m.Data, &ev) != nil || !ev.Complete || !ev.HasMeta {
			return
		}
		at := time.Now()
		t.mu.Lock()
		_, seen := t.complete[ev.BookID]
		if !seen {
			t.complete[ev.BookID] = at
		}
		t.mu.Unlock()
		if !seen {
			select {
			case t.changed <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	t.subs = append(t.subs, indexed)
	jobs, err := nc.Subscribe(events.SubjectJob(events.JobCompleted, "*", "*"), func(m *nats.Msg) {
		at := time.Now()
		site, id, _ := events.BookOfSubject(m.Subject, events.JobPrefixTokens)
		t.mu.Lock()
		t.fetched[events.Key(site, id)] = at
		t.mu.Unlock()
	})
	if err != nil {
		t.close()
		return nil, err
	}
	t.subs = append(t.subs, jobs)
	if err := nc.Flush(); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

func (t *tracker) close() {
	for _, s := range t.subs {
		_ = s.Unsubscribe()
	}
}

// wait returns when every book of ids has been announced complete, with the time of the
// last announcement.
func (t *tracker) wait(ctx context.Context, ids []string, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		done, last := t.count(ids, t.complete)
		if done == len(ids) {
			return last, nil
		}
		select {
		case <-t.changed:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("timed out after %v waiting for %d books announced complete (%d are)", timeout, len(ids), done)
		}
	}
}

// lastFetched is when the last of ids (of m.xsw.tw) was fetched completely, as its
// completed job event arrived (zero when one has not been seen).
func (t *tracker) lastFetched(ids []string) time.Time {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = events.Key(events.LegacySite, id)
	}
	n, last := t.count(keys, t.fetched)
	if n < len(ids) {
		return time.Time{}
	}
	return last
}

// fetchedBetween counts the books of site fetched completely at or after from and before
// to.
func (t *tracker) fetchedBetween(site string, from, to time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for key, at := range t.fetched {
		if s, _, _ := events.SplitKey(key); s == site && !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// count returns how many of ids m holds and the latest of their times.
func (t *tracker) count(ids []string, m map[string]time.Time) (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, last := 0, time.Time{}
	for _, id := range ids {
		if at, ok := m[id]; ok {
			n++
			if at.After(last) {
				last = at
			}
		}
	}
	return n, last
}

// publishRequests queues a prefetch request for every book of ids of site on JetStream,
// as the gateway would, from a few goroutines at once.
func publishRequests(ctx context.Context, js jetstream.JetStream, site string, ids []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	now := time.Now()
	for _, id := range ids {
		g.Go(func() error {
			r := events.NewBookRequested(site, id, events.LanePrefetch, 0, false, "bench", now)
			_, err := broker.Publish(gctx, js, r.Subject(), r.MsgID(), &r)
			return err
		})
	}
	return g.Wait()
}

// incomplete counts the books of ids that are not fully stored: metadata, and exactly
// chapters refs numbered 1..chapters.
func incomplete(ctx context.Context, db *pgxpool.Pool, ids []string, chapters int) (int, error) {
	var done int
	err := db.QueryRow(ctx, `
		SELECT count(*) FROM books b
		WHERE b.site = 'xsw' AND b.id = ANY($1::text[]) AND b.name <> '' AND b.chapter_total = $2
		  AND (SELECT count(*) FROM chapters c WHERE c.site = b.site AND c.book_id = b.id) = $2
		  AND (SELECT max(num) FROM chapters c WHERE c.site = b.site AND c.book_id = b.id) = $2`, ids, chapters).Scan(&done)
	return len(ids) - done, err
}

// syncedBooks counts the books of ids whose sync completion is stored.
func syncedBooks(ctx context.Context, db *pgxpool.Pool, ids []string) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM books WHERE site = 'xsw' AND id = ANY($1::text[]) AND chapter_total IS NOT NULL`, ids).Scan(&n)
	return n, err
}

// walLSN is the server's current write-ahead log position.
func walLSN(ctx context.Context, db *pgxpool.Pool) (string, error) {
	var lsn string
	err := db.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn)
	return lsn, err
}

// walSince is how many bytes of write-ahead log the whole server wrote since lsn.
func walSince(ctx context.Context, db *pgxpool.Pool, lsn string) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint", lsn).Scan(&n)
	return n, err
}

// finishedJobs counts the job history rows of ids with status that finished at or after
// since.
func finishedJobs(ctx context.Context, db *pgxpool.Pool, ids []string, status string, since time.Time) (int, error) {
	var n int
	err := db.QueryRow(ctx, `
		SELECT count(DISTINCT book_id) FROM job_history
		WHERE site = 'xsw' AND book_id = ANY($1::text[]) AND status = $2 AND finished_at >= $3`, ids, status, since).Scan(&n)
	return n, err
}

// requestsWaiting is the number of book requests in the request stream.
func requestsWaiting(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, events.StreamRequests)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// firstAfter is the earliest completion among ids announced at or after since (since
// itself when there is none).
func (t *tracker) firstAfter(ids []string, since time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	first := time.Time{}
	for _, id := range ids {
		if at, ok := t.complete[id]; ok && !at.Before(since) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	if first.IsZero() {
		return since
	}
	return first
}
