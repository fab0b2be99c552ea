package consume_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/logging"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/pgtest"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/indexer/internal/consume"
	"github.com/xswtw/xsw/services/indexer/internal/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)

// xsw is the site of most books of the tests.
const xsw = events.LegacySite

// fastOptions keep retries quick in tests.
var fastOptions = consume.Options{
	MaxWait:    100 * time.Millisecond,
	BackoffMin: 50 * time.Millisecond,
	BackoffMax: 200 * time.Millisecond,
}

type env struct {
	ns    *natstest.Server
	pool  *pgxpool.Pool
	store *store.Store
	cons  jetstream.Consumer
}

// newEnv starts a JetStream server and opens a pool on a fresh schema, migrated unless
// migrate is false.
func newEnv(t *testing.T, migrate bool) *env {
	t.Helper()
	pool, _ := pgtest.Pool(t)
	return newEnvPool(t, pool, migrate)
}

func newEnvPool(t *testing.T, pool *pgxpool.Pool, migrate bool) *env {
	t.Helper()
	ns := natstest.Start(t)
	if migrate {
		if err := store.Migrate(t.Context(), pool, logging.Discard()); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := broker.Consumer(t.Context(), ns.JS, events.IndexerConsumer())
	if err != nil {
		t.Fatal(err)
	}
	return &env{ns: ns, pool: pool, store: store.New(pool), cons: cons}
}

// run starts the loop and stops it when the test ends.
func (e *env) run(t *testing.T, opts consume.Options) *consume.Consumer {
	t.Helper()
	c := consume.New(e.cons, e.ns.JS, e.store, logging.Discard(), opts)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return c
}

// publish publishes p on subject with a fresh message id.
func (e *env) publish(t *testing.T, subject string, p events.Payload) {
	t.Helper()
	if _, err := broker.Publish(t.Context(), e.ns.JS, subject, "", p); err != nil {
		t.Fatal(err)
	}
}

func (e *env) publishRaw(t *testing.T, subject string, data []byte) {
	t.Helper()
	if _, err := e.ns.JS.Publish(t.Context(), subject, data); err != nil {
		t.Fatal(err)
	}
}

// pending reports the messages the consumer still owes: not yet delivered or not yet
// acknowledged.
func (e *env) pending(t *testing.T) uint64 {
	t.Helper()
	info, err := e.cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending + uint64(info.NumAckPending)
}

func bookEvent(site, id string, at time.Time) *events.BookFetched {
	return &events.BookFetched{
		Header: events.Header{Version: events.Version},
		JobID:  events.Key(site, id) + "-1",
		Site:   site,
		BookID: id,
		Book: events.BookMeta{
			Name:          "書" + id,
			Author:        "飛天魚",
			LastChapterID: "1010",
		},
		FetchedAt: at,
	}
}

func tocEvent(site, id string, page, total, from, to int, at time.Time) *events.TOCPageFetched {
	e := &events.TOCPageFetched{
		Header:     events.Header{Version: events.Version},
		JobID:      events.Key(site, id) + "-1",
		Site:       site,
		BookID:     id,
		Page:       page,
		TotalPages: total,
		FetchedAt:  at,
	}
	for n := from; n <= to; n++ {
		cid := strconv.Itoa(1000 + n)
		e.Chapters = append(e.Chapters, events.ChapterRef{Number: n, ChapterID: cid, Title: fmt.Sprintf("第%d章", n), URL: "u/" + cid})
	}
	return e
}

func jobEvent(site string, kind events.JobKind, id string, at time.Time) *events.JobEvent {
	return &events.JobEvent{
		Header:    events.Header{Version: events.Version},
		Kind:      kind,
		JobID:     events.Key(site, id) + "-1",
		Site:      site,
		BookID:    id,
		Lane:      events.LanePrefetch,
		Attempt:   1,
		StartedAt: at.Add(-time.Second),
		At:        at,
	}
}

// sync is everything a fetcher publishes for one sync of a 20-chapter book, in order.
type published struct {
	subject string
	payload events.Payload
}

func syncOf(site, id string, at time.Time) []published {
	done := jobEvent(site, events.JobCompleted, id, at)
	done.Chapters, done.TOCPages = 20, 2
	return []published{
		{events.SubjectJob(events.JobStarted, site, id), jobEvent(site, events.JobStarted, id, at)},
		{events.SubjectFetchedBook(site, id), bookEvent(site, id, at)},
		{events.SubjectFetchedTOC(site, id), tocEvent(site, id, 1, 2, 1, 10, at)},
		{events.SubjectFetchedTOC(site, id), tocEvent(site, id, 2, 2, 11, 20, at)},
		{events.SubjectJob(events.JobCompleted, site, id), done},
	}
}

func (e *env) publishAll(t *testing.T, ps []published) {
	t.Helper()
	for _, p := range ps {
		e.publish(t, p.subject, p.payload)
	}
}

func (e *env) complete(site, id string) func() bool {
	return func() bool {
		st, err := e.store.BookStates(context.Background(), site, id)
		return err == nil && len(st) == 1 && st[0].Complete && st[0].HasMeta
	}
}

func TestIndexes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	sub, err := e.ns.Conn.SubscribeSync(events.SubjectIndexedAll)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	c := e.run(t, fastOptions)
	e.publishAll(t, syncOf(xsw, "7", t0))
	e.publish(t, events.SubjectFetchedChapter(xsw, "7"), &events.ChapterFetched{
		Header: events.Header{Version: events.Version}, Site: xsw, BookID: "7", Number: 3, ChapterID: "1003",
		Title: "第3章", URL: "u/1003", Text: "正文", FetchedAt: t0.Add(time.Minute),
	})
	e.publish(t, events.SubjectFetchedCategories(xsw), &events.CategoriesFetched{
		Header:     events.Header{Version: events.Version},
		Site:       xsw,
		Categories: []events.Category{{ID: "1", Name: "玄幻", URL: "u/1"}},
		FetchedAt:  t0,
	})
	failed := jobEvent(xsw, events.JobFailed, "8", t0)
	failed.Error, failed.Permanent = "404", true
	e.publish(t, failed.Subject(), failed)

	testkit.Eventually(t, 15*time.Second, "book 7 complete", e.complete(xsw, "7"))
	testkit.Eventually(t, 15*time.Second, "every event acknowledged", func() bool { return e.pending(t) == 0 })

	chs, err := e.store.Chapters(t.Context(), xsw, "7")
	if err != nil || len(chs) != 20 || chs[2].Text == nil || *chs[2].Text != "正文" {
		t.Errorf("chapters: %d, %v", len(chs), err)
	}
	if b, err := e.store.Book(t.Context(), xsw, "7"); err != nil || b.LastChapterNum == nil || *b.LastChapterNum != 10 {
		t.Errorf("book: %+v, %v", b, err)
	}
	if j, err := e.store.Job(t.Context(), "xsw.8-1"); err != nil || j.Status != "failed" || !j.Permanent {
		t.Errorf("failed job: %+v, %v", j, err)
	}
	if j, err := e.store.Job(t.Context(), "xsw.7-1"); err != nil || j.Status != "completed" {
		t.Errorf("completed job: %+v, %v", j, err)
	}
	if cs, err := e.store.Categories(t.Context(), xsw); err != nil || len(cs) != 1 {
		t.Errorf("categories: %v, %v", cs, err)
	}
	if st := c.Stats(); st.Acked != 8 || st.Poison != 0 || st.Failures != 0 {
		t.Errorf("stats %+v, want 8 acked", st)
	}

	// The announcements end with the book complete.
	var last events.BookIndexed
	for {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("announcements: last %+v: %v", last, err)
		}
		var ev events.BookIndexed
		if err := events.Decode(m.Data, &ev); err != nil {
			t.Fatalf("announcement: %v", err)
		}
		if m.Subject != events.SubjectIndexed(xsw, "7") || ev.Site != xsw || ev.BookID != "7" {
			t.Errorf("announcement %+v on %s", ev, m.Subject)
		}
		if id := m.Header.Get(events.HeaderMsgID); !strings.HasPrefix(id, "indexed:xsw.7:") {
			t.Errorf("announcement msg id %q", id)
		}
		last = ev
		if ev.Complete && ev.Chapters == 20 && ev.HasMeta {
			break
		}
	}
}

// TestWritersSplitABatchByBook publishes the syncs of twelve books, interleaved, and a
// categories event before the loop starts, so that one batch holds them all: written by
// four writers side by side, every book ends complete with its chapters in order, and
// every event is acknowledged once.
func TestWritersSplitABatchByBook(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	var syncs [][]published
	for i := range 12 {
		syncs = append(syncs, syncOf(xsw, strconv.Itoa(100+i), t0))
	}
	for step := range syncs[0] {
		for _, s := range syncs {
			e.publishAll(t, s[step:step+1])
		}
	}
	e.publish(t, events.SubjectFetchedCategories(xsw), &events.CategoriesFetched{
		Header: events.Header{Version: events.Version}, Site: xsw, Categories: []events.Category{{ID: "1", Name: "玄幻", URL: "u/1"}}, FetchedAt: t0,
	})
	opts := fastOptions
	opts.Writers = 4
	c := e.run(t, opts)
	testkit.Eventually(t, 15*time.Second, "every event acknowledged", func() bool { return e.pending(t) == 0 })
	for i := range 12 {
		id := strconv.Itoa(100 + i)
		if !e.complete(xsw, id)() {
			t.Errorf("book %s not complete", id)
		}
		chs, err := e.store.Chapters(t.Context(), xsw, id)
		if err != nil || len(chs) != 20 {
			t.Fatalf("book %s: %d chapters, %v", id, len(chs), err)
		}
		for n, ch := range chs {
			if ch.Num != n+1 || (n > 0 && ch.ChapterID <= chs[n-1].ChapterID) {
				t.Errorf("book %s: position %d holds chapter %d (id %s)", id, n+1, ch.Num, ch.ChapterID)
			}
		}
	}
	if st := c.Stats(); st.Acked != 12*5+1 || st.Batches < 3 || st.Failures != 0 {
		t.Errorf("stats %+v, want %d acked in three transactions or more (writers, then the categories), no failure", st, 12*5+1)
	}
}

func TestPoison(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	v3 := bookEvent(xsw, "7", t0)
	v3.Version = events.Version + 1
	v3data, err := json.Marshal(v3)
	if err != nil {
		t.Fatal(err)
	}
	wrongBook, err := events.Encode(bookEvent(xsw, "8", t0))
	if err != nil {
		t.Fatal(err)
	}
	wrongSite, err := events.Encode(bookEvent("czbooks", "7", t0))
	if err != nil {
		t.Fatal(err)
	}
	// Published before the loop starts, so that poison and good events share a batch.
	e.publishRaw(t, events.SubjectFetchedBook(xsw, "7"), []byte(`{"version":1,"book_id":`))
	e.publishRaw(t, events.SubjectFetchedBook(xsw, "7"), v3data)
	e.publishRaw(t, events.SubjectFetchedBook(xsw, "7"), wrongBook)
	e.publishRaw(t, events.SubjectFetchedBook(xsw, "7"), wrongSite)
	e.publishRaw(t, "xsw.fetched.book.7", wrongSite) // a subject of before the sites names an xsw book
	e.publishRaw(t, "xsw.job.completed.7", []byte(`{"version":1,"kind":"exploded","job_id":"x","book_id":"7","lane":"manual"}`))
	e.publishRaw(t, "xsw.fetched.listing.7", []byte(`{}`))
	e.publishAll(t, syncOf(xsw, "9", t0))

	c := e.run(t, fastOptions)
	testkit.Eventually(t, 15*time.Second, "book 9 complete", e.complete(xsw, "9"))
	testkit.Eventually(t, 15*time.Second, "every event settled", func() bool { return e.pending(t) == 0 })
	if st := c.Stats(); st.Poison != 7 || st.Acked != 5 || st.Failures != 0 {
		t.Errorf("stats %+v, want 7 poison and 5 acked", st)
	}
	for _, site := range []string{xsw, "czbooks"} {
		if _, err := e.store.Book(t.Context(), site, "7"); err == nil {
			t.Errorf("a poison event was indexed as %s's book 7", site)
		}
	}
	info, err := e.cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered, want none: poison is terminated, not retried", info.NumRedelivered)
	}
}

// TestRejectedByDatabase: an event that honours the contract but holds data Postgres
// refuses is terminated, and the rest of its batch is indexed.
func TestRejectedByDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	bad := tocEvent(xsw, "7", 1, 1, 1, 3, t0)
	bad.Chapters[1].Title = "壞\x00章"
	e.publish(t, events.SubjectFetchedBook(xsw, "7"), bookEvent(xsw, "7", t0))
	e.publish(t, events.SubjectFetchedTOC(xsw, "7"), bad)
	e.publishAll(t, syncOf(xsw, "9", t0))

	c := e.run(t, fastOptions)
	testkit.Eventually(t, 15*time.Second, "book 9 complete", e.complete(xsw, "9"))
	testkit.Eventually(t, 15*time.Second, "every event settled", func() bool { return e.pending(t) == 0 })
	if st := c.Stats(); st.Poison != 1 || st.Acked != 6 || st.Failures != 0 {
		t.Errorf("stats %+v, want 1 poison, 6 acked", st)
	}
	if _, err := e.store.Book(t.Context(), xsw, "7"); err != nil {
		t.Errorf("the good event before the refused one: %v", err)
	}
}

// TestDatabaseDown: while the tables are missing every batch fails and is handed back
// with a delay; once they exist the events are indexed.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.run(t, fastOptions)
	e.publishAll(t, syncOf(xsw, "7", t0)[1:]) // without "started": it writes nothing, so it needs no table

	testkit.Eventually(t, 15*time.Second, "failed attempts", func() bool {
		st := c.Stats()
		return st.Failures >= 3 && st.Delayed >= 3
	})
	if st := c.Stats(); st.Acked != 0 || st.Poison != 0 {
		t.Errorf("stats %+v while the database is down, want nothing acked or terminated", st)
	}
	if err := store.Migrate(t.Context(), e.pool, logging.Discard()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "book 7 complete", e.complete(xsw, "7"))
	testkit.Eventually(t, 15*time.Second, "every event acknowledged", func() bool { return e.pending(t) == 0 })
	if st := c.Stats(); st.Acked != 4 || st.Poison != 0 {
		t.Errorf("stats %+v, want 4 acked", st)
	}
}

// TestRedelivery: the same events delivered again (a redelivered batch, or a duplicate
// publish outside the dedup window) change no row.
func TestRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.run(t, fastOptions)
	events7 := syncOf(xsw, "7", t0)
	e.publishAll(t, events7)
	testkit.Eventually(t, 15*time.Second, "first delivery acknowledged", func() bool { return c.Stats().Acked == 5 })
	before := dump(t, e.pool)

	e.publishAll(t, events7)
	testkit.Eventually(t, 15*time.Second, "second delivery acknowledged", func() bool { return c.Stats().Acked == 10 })
	if after := dump(t, e.pool); after != before {
		t.Errorf("a redelivered batch changed the rows:\n%s\nwant\n%s", after, before)
	}
}

func TestStopsPromptly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := consume.New(e.cons, e.ns.JS, e.store, logging.Discard(), fastOptions)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	e.publishAll(t, syncOf(xsw, "7", t0))
	testkit.Eventually(t, 15*time.Second, "book 7 complete", e.complete(xsw, "7"))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestShutdown: once told to stop, the loop finishes the batch in hand when it can within
// the shutdown timeout, and hands it back for redelivery at once when it cannot.
func TestShutdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		timeout   time.Duration
		releaseAt string // "before return": the database unblocks while Run waits
		wantAcked int64
	}{
		{"finishes the batch in hand", 10 * time.Second, "before return", 1},
		{"hands back the batch the timeout cuts", 200 * time.Millisecond, "after return", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app := "indexer_shutdown_" + strconv.FormatInt(time.Now().UnixNano(), 36)
			dsn := pgtest.Schema(t) + "&application_name=" + app
			pool, err := pgxpool.New(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			e := newEnvPool(t, pool, true)

			// Block writes to books until lock is rolled back.
			lock, err := pool.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = lock.Rollback(context.Background()) }()
			if _, err := lock.Exec(t.Context(), `LOCK TABLE books IN ACCESS EXCLUSIVE MODE`); err != nil {
				t.Fatal(err)
			}

			opts := fastOptions
			opts.ShutdownTimeout = tt.timeout
			c := consume.New(e.cons, e.ns.JS, e.store, logging.Discard(), opts)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			e.publish(t, events.SubjectFetchedBook(xsw, "7"), bookEvent(xsw, "7", t0))
			testkit.Eventually(t, 15*time.Second, "the batch blocked on the lock", func() bool {
				var n int
				err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
					WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&n)
				return err == nil && n > 0
			})
			cancel()
			if tt.releaseAt == "before return" {
				if err := lock.Rollback(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("Run did not return")
			}
			if st := c.Stats(); st.Acked != tt.wantAcked || st.Failures != 0 {
				t.Errorf("stats %+v, want %d acked and no failure", st, tt.wantAcked)
			}
			if err := lock.Rollback(t.Context()); err != nil && tt.releaseAt != "before return" {
				t.Fatal(err)
			}
			// A handed-back batch is redelivered at once, long before the 30s ack wait.
			e.run(t, fastOptions)
			testkit.Eventually(t, 15*time.Second, "book 7 indexed", func() bool {
				_, err := e.store.Book(context.Background(), xsw, "7")
				return err == nil
			})
		})
	}
}

func dump(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"books", "chapters", "categories", "job_history"} {
		rows, err := pool.Query(t.Context(), `SELECT to_jsonb(t)::text FROM `+table+` t ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
