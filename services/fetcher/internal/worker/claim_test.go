package worker

import (
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

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
	if !held.renew(ctx) || !held.readerWaits(ctx) {
		t.Error("renewing lost the claim or the reader's flag")
	}
	again, err := c2.take(ctx, prefetch) // the same request, delivered to another fetcher
	if err != nil || !again.readerWaits(ctx) {
		t.Fatalf("take-over by the same request: %v (reader waits: %v)", err, again != nil && again.readerWaits(ctx))
	}
	if held.renew(ctx) {
		t.Error("the first holder still thinks it holds the claim after the take-over")
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
