package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/fetcher/internal/checkpoint"
	"github.com/xswtw/xsw/services/fetcher/internal/sites"
	"github.com/xswtw/xsw/services/fetcher/site"
	"github.com/xswtw/xsw/services/fetcher/site/xsw"
)

// TestOneSyncPerBookAcrossFetchers: two fetcher processes (each its own connection and
// pool of four workers) and one book asked for in all four lanes at once, as a reader who
// opens a book right after the listing that queued it does. The book is synced once: each
// of its pages is fetched once, one job completes and the others end as already syncing;
// and the reader's request makes the sync in flight book its requests as a reader's.
func TestOneSyncPerBookAcrossFetchers(t *testing.T) {
	t.Parallel()
	ts := newTestSite(t)
	ts.delay = 150 * time.Millisecond // a sync takes about 0.6 s: long enough to race
	ns := natstest.Start(t)
	var pools []*harness
	for i := range 2 {
		nc, js, err := broker.Connect(ns.URL, "fetcher", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		kv, err := js.KeyValue(t.Context(), events.BucketCheckpoints)
		if err != nil {
			t.Fatal(err)
		}
		st := served(t, xsw.ID, func(base *url.URL) site.Source { return xsw.New(base) }, ts.URL)
		syncer := &Syncer{JS: js, Sites: sites.NewSet(st), Logger: slog.New(slog.DiscardHandler), Checkpoints: checkpoint.Store{KV: kv}}
		pool, err := NewPool(t.Context(), nc, js, syncer, Config{FetcherID: "f" + string(rune('1'+i)), Workers: 4, DedupWindow: time.Minute},
			slog.New(slog.NewTextHandler(testWriter{t}, nil)))
		if err != nil {
			t.Fatal(err)
		}
		h := &harness{ns: ns, pool: pool, site: ts}
		pools = append(pools, h)
	}
	for _, h := range pools {
		h.run(t)
	}
	// The listing's prefetch first; the reader a few milliseconds later; then the rest.
	h := pools[0]
	h.request(t, req("1000001", events.LanePrefetch))
	time.Sleep(5 * time.Millisecond)
	h.request(t, req("1000001", events.LaneInteractive))
	h.request(t, req("1000001", events.LaneManual))
	h.request(t, req("1000001", events.LaneRefresh))

	testkit.Eventually(t, 10*time.Second, "four jobs settled", func() bool {
		return len(h.jobEvents(t, events.JobCompleted))+len(h.jobEvents(t, events.JobSkipped)) == 4
	})
	if n := len(h.jobEvents(t, events.JobCompleted)); n != 1 {
		t.Errorf("%d jobs completed, want 1", n)
	}
	for _, e := range h.jobEvents(t, events.JobSkipped) {
		if !strings.Contains(e.Reason, "already_syncing") && !strings.Contains(e.Reason, "recently synced") {
			t.Errorf("skipped %s job: %q, want already syncing or recently synced", e.Lane, e.Reason)
		}
	}
	got := ts.requests()
	want := []string{"/1000001/", "/1000001/page-1.html", "/1000001/page-2.html", "/1000001/page-3.html"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("site requests %v, want each page once: %v", got, want)
	}
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketClaims)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the claim released", func() bool {
		_, err := kv.Get(t.Context(), events.Key(xsw.ID, "1000001"))
		return err != nil
	})
}

// TestClaims: a claim is one job's; another job is refused it, naming the holder, and a
// reader's job refused it tells the holder that a reader waits; the same request
// delivered again (its fetcher died) takes it over; a released claim is free.
func TestClaims(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketClaims)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c1, c2 := &claims{kv: kv, fetcher: "f1"}, &claims{kv: kv, fetcher: "f2"}
	jobOf := func(id string, lane events.Lane) *job {
		return &job{ID: id, Request: events.NewBookRequested("xsw", "42", lane, 0, false, "test", time.Now())}
	}
	prefetch := jobOf("xsw.42-1", events.LanePrefetch)
	held, err := c1.take(ctx, prefetch)
	if err != nil {
		t.Fatal(err)
	}
	if held.readerWaits(ctx) {
		t.Error("a prefetch job's claim says a reader waits")
	}
	_, err = c2.take(ctx, jobOf("xsw.42-2", events.LaneManual))
	if !errors.Is(err, errClaimed) || !strings.Contains(err.Error(), "xsw.42-1") || !strings.Contains(err.Error(), "f1") {
		t.Errorf("a second job's take = %v, want errClaimed naming job xsw.42-1 on f1", err)
	}
	if held.readerWaits(ctx) {
		t.Error("a manual job made the claim say a reader waits")
	}
	if _, err := c2.take(ctx, jobOf("xsw.42-3", events.LaneInteractive)); !errors.Is(err, errClaimed) {
		t.Errorf("a reader's take = %v, want errClaimed", err)
	}
	if !held.readerWaits(ctx) {
		t.Error("after a reader's request the holder does not know a reader waits")
	}
	if err := held.renew(ctx); err != nil || !held.readerWaits(ctx) {
		t.Errorf("renewing lost the claim (%v) or the reader's flag", err)
	}
	again, err := c2.take(ctx, prefetch) // the same request, delivered to another fetcher
	if err != nil || !again.readerWaits(ctx) {
		t.Fatalf("take-over by the same request: %v (reader waits: %v)", err, again != nil && again.readerWaits(ctx))
	}
	if err := held.renew(ctx); !errors.Is(err, errClaimLost) {
		t.Errorf("the first holder's renewal after the take-over = %v, want errClaimLost", err)
	}
	held.release(ctx, slog.New(slog.DiscardHandler)) // not its own any more: a no-op
	if _, err := c1.take(ctx, jobOf("xsw.42-4", events.LaneRefresh)); !errors.Is(err, errClaimed) {
		t.Errorf("after a stale release: %v, want the claim still held", err)
	}
	again.release(ctx, slog.New(slog.DiscardHandler))
	if _, err := c1.take(ctx, jobOf("xsw.42-5", events.LaneRefresh)); err != nil {
		t.Errorf("after the release: %v", err)
	}
}

// TestPoolStartsBesideAWholeLaneConsumer: on a stream an older build consumed with one
// consumer per whole lane, a fetcher (serving any site) narrows those before it adds the
// sites' own (the work queue would refuse them beside the old ones), and serves.
func TestPoolStartsBesideAWholeLaneConsumer(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	for _, l := range events.Lanes {
		old := events.LegacyFetcherConsumer(l, time.Minute, -1)
		old.FilterSubjects = []string{events.RequestSubjectLane(l)}
		if _, err := broker.Consumer(t.Context(), ns.JS, old); err != nil {
			t.Fatal(err)
		}
	}
	ts := newToySite(t, map[string]int{"ab-1": 2})
	h := newHarnessOn(t, ns, Config{Workers: 1},
		served(t, "toy", func(base *url.URL) site.Source { return toy{base: strings.TrimSuffix(base.String(), "/")} }, ts.URL))
	h.run(t)
	h.request(t, events.NewBookRequested("toy", "ab-1", events.LanePrefetch, 0, false, "test", time.Now()))
	testkit.Eventually(t, 10*time.Second, "the toy book synced", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 1 })
}

// TestClaimRenewal: renew reports the claim lost when its key is deleted, another job
// holds it, or it holds what no job wrote, and when the bus cannot be reached until the
// claim may have expired; while there is time left, an unreachable bus is worth another
// try, not a loss.
func TestClaimRenewal(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketClaims)
	if err != nil {
		t.Fatal(err)
	}
	other, err := events.Encode(&events.SyncClaim{Header: events.Header{Version: events.Version}, JobID: "xsw.other-9",
		Fetcher: "f2", Lane: events.LaneManual, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	const (
		renewed = "renewed"
		retry   = "a transient error"
		lost    = "lost"
	)
	for i, tc := range []struct {
		name string
		then func(t *testing.T, key string, cl *claim, nc *nats.Conn)
		want string
	}{
		{name: "untouched", want: renewed},
		{name: "a reader's flag written meanwhile", want: renewed, then: func(t *testing.T, key string, _ *claim, _ *nats.Conn) {
			e, err := kv.Get(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			var held events.SyncClaim
			if err := events.Decode(e.Value(), &held); err != nil {
				t.Fatal(err)
			}
			held.Interactive = true
			b, _ := events.Encode(&held)
			if _, err := kv.Update(t.Context(), key, b, e.Revision()); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "deleted", want: lost, then: func(t *testing.T, key string, _ *claim, _ *nats.Conn) {
			if err := kv.Delete(t.Context(), key); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "taken by another job", want: lost, then: func(t *testing.T, key string, _ *claim, _ *nats.Conn) {
			if _, err := kv.Put(t.Context(), key, other); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "overwritten with what no job wrote", want: lost, then: func(t *testing.T, key string, _ *claim, _ *nats.Conn) {
			if _, err := kv.Put(t.Context(), key, []byte("{")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "bus unreachable, time left", want: retry, then: func(_ *testing.T, _ string, _ *claim, nc *nats.Conn) {
			nc.Close()
		}},
		{name: "bus unreachable until the claim may have expired", want: lost, then: func(_ *testing.T, _ string, cl *claim, nc *nats.Conn) {
			nc.Close()
			expired := time.Now().Add(-events.ClaimTTL)
			cl.renewed.Store(&expired)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, js, err := broker.Connect(ns.URL, "fetcher", slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			own, err := js.KeyValue(t.Context(), events.BucketClaims)
			if err != nil {
				t.Fatal(err)
			}
			book := fmt.Sprint(100 + i)
			cl, err := (&claims{kv: own, fetcher: "f1"}).take(t.Context(), &job{ID: "xsw." + book + "-1",
				Request: events.NewBookRequested(xsw.ID, book, events.LanePrefetch, 0, false, "test", time.Now())})
			if err != nil {
				t.Fatal(err)
			}
			if tc.then != nil {
				tc.then(t, events.Key(xsw.ID, book), cl, nc)
			}
			before := cl.renewed.Load()
			err = cl.renew(t.Context())
			got := renewed
			switch {
			case errors.Is(err, errClaimLost):
				got = lost
			case err != nil:
				got = retry
			}
			if got != tc.want {
				t.Errorf("renew = %v (%s), want %s", err, got, tc.want)
			}
			if moved := cl.renewed.Load() != before; moved != (got == renewed) {
				t.Errorf("renewal time moved: %v, want %v", moved, got == renewed)
			}
		})
	}
}

// TestReaderMarkOutlivesHandBack: a reader's flag on a claim outlives the claim when its
// job hands the book back for a retry: the next claim of the book, in whatever lane,
// says a reader waits, and the mark is used up. Without a reader, or once the reader's
// wait is long over, the next claim is not a reader's.
func TestReaderMarkOutlivesHandBack(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketClaims)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	for i, tc := range []struct {
		name    string
		reader  bool          // a reader asked for the book while the first job synced it
		markTTL time.Duration // of the claims that take the book next
		want    bool          // the retry's claim says a reader waits
	}{
		{name: "a reader waits", reader: true, want: true},
		{name: "no reader", reader: false, want: false},
		{name: "the reader's wait is over", reader: true, markTTL: time.Nanosecond, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			book := fmt.Sprint(200 + i)
			jobOf := func(id string, lane events.Lane) *job {
				return &job{ID: "xsw." + book + "-" + id, Request: events.NewBookRequested(xsw.ID, book, lane, 0, false, "test", time.Now())}
			}
			c1, c2 := &claims{kv: kv, fetcher: "f1"}, &claims{kv: kv, fetcher: "f2", markTTL: tc.markTTL}
			prefetch := jobOf("1", events.LanePrefetch)
			first, err := c1.take(ctx, prefetch)
			if err != nil {
				t.Fatal(err)
			}
			if tc.reader {
				if _, err := c1.take(ctx, jobOf("2", events.LaneInteractive)); !errors.Is(err, errClaimed) {
					t.Fatalf("a reader's take = %v, want errClaimed", err)
				}
			}
			// The job fails and is handed back: mark, then release.
			if err := first.markReader(ctx); err != nil {
				t.Fatal(err)
			}
			first.release(ctx, log)

			retry, err := c2.take(ctx, prefetch) // delivered again, in its own lane
			if err != nil {
				t.Fatal(err)
			}
			if got := retry.readerWaits(ctx); got != tc.want {
				t.Errorf("the retry's claim says a reader waits: %v, want %v", got, tc.want)
			}
			e, err := kv.Get(ctx, events.Key(xsw.ID, book))
			if err != nil {
				t.Fatal(err)
			}
			var held events.SyncClaim
			if err := events.Decode(e.Value(), &held); err != nil || held.Interactive != tc.want {
				t.Errorf("the stored claim = %+v (%v), want interactive %v", held, err, tc.want)
			}
			if _, err := kv.Get(ctx, readerKey(events.Key(xsw.ID, book))); !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Errorf("the reader's mark after the retry took the book: %v, want it used up", err)
			}
			retry.release(ctx, log)
			later, err := c1.take(ctx, jobOf("3", events.LaneRefresh))
			if err != nil {
				t.Fatal(err)
			}
			if later.readerWaits(ctx) {
				t.Error("a claim after the retry's says a reader waits: the mark was not used up")
			}
			later.release(ctx, log)
		})
	}
}

// TestLostClaimStopsTheJob: a job whose claim is deleted (it expired in a bus outage) or
// taken by another job while it syncs stops making requests and is handed back for a
// retry, as a transient failure: neither completed nor dead-lettered.
func TestLostClaimStopsTheJob(t *testing.T) {
	t.Parallel()
	other, err := events.Encode(&events.SyncClaim{Header: events.Header{Version: events.Version}, JobID: "xsw.1000001-99",
		Fetcher: "f2", Lane: events.LaneManual, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		lose func(ctx context.Context, kv jetstream.KeyValue, key string) error
	}{
		{name: "deleted", lose: func(ctx context.Context, kv jetstream.KeyValue, key string) error {
			return kv.Delete(ctx, key)
		}},
		{name: "taken by another job", lose: func(ctx context.Context, kv jetstream.KeyValue, key string) error {
			_, err := kv.Put(ctx, key, other)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Renewals every 100ms; a retry not before half a minute, after the test.
			h := newHarness(t, Config{Workers: 1, AckWait: 300 * time.Millisecond, RetryBase: time.Minute})
			h.site.delay = 500 * time.Millisecond // the whole book: four requests, 2 s
			kv, err := h.ns.JS.KeyValue(t.Context(), events.BucketClaims)
			if err != nil {
				t.Fatal(err)
			}
			stop := h.run(t)
			h.request(t, req("1000001", events.LanePrefetch))
			testkit.Eventually(t, 10*time.Second, "the job's first request", func() bool { return len(h.site.requests()) > 0 })
			if err := tc.lose(t.Context(), kv, events.Key(xsw.ID, "1000001")); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 10*time.Second, "the job handed back", func() bool { return len(h.jobEvents(t, events.JobRetrying)) == 1 })
			stop()
			if got := h.site.requests(); len(got) >= 4 {
				t.Errorf("site requests %v: the job went on with the book after losing its claim", got)
			}
			if r := h.jobEvents(t, events.JobRetrying)[0]; !strings.Contains(r.Error, errClaimLost.Error()) || r.Attempt != 1 {
				t.Errorf("retrying event %+v, want attempt 1 saying the claim was lost", r)
			}
			if n, m := len(h.jobEvents(t, events.JobCompleted)), len(h.jobEvents(t, events.JobFailed)); n+m != 0 {
				t.Errorf("%d completed and %d failed jobs, want none", n, m)
			}
			if w := h.waiting(t); w != 1 {
				t.Errorf("%d requests waiting, want the one handed back", w)
			}
		})
	}
}

// TestReaderWaitsThroughRetry: a reader asks for a book that a prefetch job syncs (the
// gateway marks the claim and queues nothing); the job fails on a truncated page and is
// handed back. Its retry, still in the prefetch lane, syncs the book as a reader's.
func TestReaderWaitsThroughRetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 1, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	h.site.delay = 200 * time.Millisecond
	h.site.truncate["/1000001/page-2.html"] = 1
	kv, err := h.ns.JS.KeyValue(t.Context(), events.BucketClaims)
	if err != nil {
		t.Fatal(err)
	}
	key := events.Key(xsw.ID, "1000001")
	w, err := kv.Watch(t.Context(), key, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	h.run(t)
	h.request(t, req("1000001", events.LanePrefetch))
	testkit.Eventually(t, 10*time.Second, "the claim marked as a reader's, as the gateway does", func() bool {
		e, err := kv.Get(t.Context(), key)
		if err != nil {
			return false
		}
		var held events.SyncClaim
		if err := events.Decode(e.Value(), &held); err != nil {
			t.Fatal(err)
		}
		held.Interactive = true
		b, _ := events.Encode(&held)
		_, err = kv.Update(t.Context(), key, b, e.Revision())
		return err == nil
	})
	testkit.Eventually(t, 10*time.Second, "the retry completed", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 1 })
	if c := h.jobEvents(t, events.JobCompleted)[0]; c.Attempt != 2 || c.Lane != events.LanePrefetch {
		t.Errorf("completed %+v, want attempt 2 in the prefetch lane", c)
	}
	// The claim's history: the first job's, released; the retry's, released.
	var releases int
	var retryIsReaders bool
	var history []string
	testkit.Eventually(t, 10*time.Second, "the retry's claim released", func() bool {
		for {
			select {
			case e := <-w.Updates():
				if e == nil {
					continue
				}
				if e.Operation() != jetstream.KeyValuePut {
					releases++
					history = append(history, "released")
					continue
				}
				var held events.SyncClaim
				if err := events.Decode(e.Value(), &held); err != nil {
					t.Fatal(err)
				}
				history = append(history, fmt.Sprintf("%s interactive=%v", held.JobID, held.Interactive))
				retryIsReaders = retryIsReaders || releases == 1 && held.Interactive
			default:
				return releases == 2
			}
		}
	})
	if !retryIsReaders {
		t.Errorf("claim history %v: the retry's claim never said a reader waits", history)
	}
	if _, err := kv.Get(t.Context(), readerKey(key)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the reader's mark after the retry: %v, want it used up", err)
	}
}
