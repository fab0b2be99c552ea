package e2e

import (
	"context"
	"fmt"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/testkit"
)

// startProcess runs a service command (fetcher, indexer or gateway) as a process of its
// own with env and debug logging, killed when the test ends if it is still running.
func startProcess(t *testing.T, name string, env map[string]string) *proctest.Process {
	t.Helper()
	vars := map[string]string{"LOG_LEVEL": "debug"}
	for k, v := range env {
		vars[k] = v
	}
	return proctest.Start(t, name, proctest.Binary(t, "github.com/xswtw/xsw/services/"+name+"/cmd/"+name), vars)
}

func fetcherEnv(natsURL, siteURL string, extra map[string]string) map[string]string {
	env := map[string]string{
		"NATS_URL": natsURL, "BASE_URL": siteURL, "FETCHER_HEALTH_ADDR": "127.0.0.1:0",
		"BG_JOB_WORKERS": "4", "SYNC_DEDUP_WINDOW": "0",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func publishRequests(t *testing.T, ns *natstest.Server, ids []string, lane events.Lane) {
	t.Helper()
	for _, id := range ids {
		r := events.NewBookRequested("xsw", id, lane, 0, false, "test", time.Now())
		if _, err := broker.Publish(t.Context(), ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPolitenessAcrossThreeFetcherProcesses runs three fetcher processes of four workers
// each against the simulated site with plenty of work waiting, and reads the site's own
// request log: no two requests closer than the limit (less network jitter), at least
// 90% of the allowed rate, and a 429 with Retry-After pauses every process.
func TestPolitenessAcrossThreeFetcherProcesses(t *testing.T) {
	const interval = 250 * time.Millisecond
	// Requests are booked a slot apart; what reaches the site may move by the time it
	// takes a process to wake up and connect. This is the allowance for that, far below
	// the interval.
	const jitter = 40 * time.Millisecond
	ns := natstest.Start(t)
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 1, 60
	cfg.MinChapters, cfg.MaxChapters = 100, 200
	sim, err := sitesim.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	site := sim.Site()
	var ids []string
	for _, b := range site.Books() {
		ids = append(ids, b.ID)
	}
	publishRequests(t, ns, ids, events.LanePrefetch)

	for i := 0; i < 3; i++ {
		startProcess(t, "fetcher", fetcherEnv(ns.URL, sim.URL(), map[string]string{
			"BG_JOB_RATE_LIMIT": interval.String(), "FETCHER_ID": fmt.Sprintf("f%d", i),
		}))
	}
	testkit.Eventually(t, 30*time.Second, "first request at the site", func() bool { return site.Count() > 0 })
	// Let every process join, then measure a steady stretch.
	time.Sleep(2 * time.Second)
	site.Reset()
	const measure = 8 * time.Second
	time.Sleep(measure)
	steady := site.Requests()

	// A 429 with Retry-After: 2s must pause all three processes.
	if err := site.SetFaults(sitesim.FaultRule{Kind: sitesim.FaultTooManyRequests, Next: 1, RetryAfter: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	site.Reset()
	testkit.Eventually(t, 10*time.Second, "the 429 answered and requests resumed", func() bool { return site.Count() >= 3 })
	after := site.Requests()

	gap, _ := sitesim.MinGap(steady)
	worst := sitesim.MaxInWindow(steady, interval-jitter)
	allowed := float64(measure) / float64(interval)
	t.Logf("allowed %.0f requests in %v, achieved %d (%.1f%%); min gap %v; most in any %v window: %d",
		allowed, measure, len(steady), 100*float64(len(steady))/allowed, gap, interval-jitter, worst)
	if worst > 1 {
		t.Errorf("%d requests within %v: the limit was exceeded", worst, interval-jitter)
	}
	if float64(len(steady)) < 0.9*allowed {
		t.Errorf("achieved %d requests in %v, want at least 90%% of %.0f", len(steady), measure, allowed)
	}
	sort.Slice(after, func(i, j int) bool { return after[i].Time.Before(after[j].Time) })
	if after[0].Status != 429 {
		t.Fatalf("first request after setting the fault answered %d, want 429", after[0].Status)
	}
	if pause := after[1].Time.Sub(after[0].Time); pause < 2*time.Second-jitter {
		t.Errorf("next request %v after a 429 with Retry-After 2s", pause)
	} else {
		t.Logf("pause after 429 with Retry-After 2s: %v", pause)
	}
}

// TestSIGTERMHandsJobsToAnotherFetcher stops a fetcher process with SIGTERM in the middle
// of its syncs: it exits within its drain time, its unfinished jobs are redelivered at
// once to the other process, and every book ends fully indexed, each job recorded once.
func TestSIGTERMHandsJobsToAnotherFetcher(t *testing.T) {
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 1, 6
	cfg.MinChapters, cfg.MaxChapters = 150, 200 // 8-10 table-of-contents pages each
	cfg.Latency = 60 * time.Millisecond
	s := startBare(t, cfg)
	env := fetcherEnv(s.natsURL, s.siteURL, map[string]string{"BG_JOB_RATE_LIMIT": "0", "BG_JOB_WORKERS": "2", "SHUTDOWN_TIMEOUT": "200ms"})
	env["FETCHER_ID"] = "doomed"
	doomed := startProcess(t, "fetcher", env)
	var ids []string
	for _, b := range s.site.Books() {
		ids = append(ids, b.ID)
	}
	publishRequests(t, s.ns, ids, events.LanePrefetch)
	testkit.Eventually(t, 20*time.Second, "the doomed fetcher at work", func() bool { return s.site.Count() >= 3 })
	began := time.Now()
	if err := doomed.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-doomed.Exited():
		if err := doomed.Err(); err != nil {
			t.Errorf("fetcher exited with %v after SIGTERM, want 0", err)
		}
		t.Logf("fetcher drained and exited %v after SIGTERM", time.Since(began).Round(time.Millisecond))
		if time.Since(began) > 3*time.Second {
			t.Errorf("drain took %v with SHUTDOWN_TIMEOUT=200ms", time.Since(began))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fetcher still running 10s after SIGTERM")
	}
	env["FETCHER_ID"] = "survivor"
	startProcess(t, "fetcher", env)
	s.waitAllSynced(t, ids, 60*time.Second)
	var completed, distinct int
	if err := s.db.QueryRow(context.Background(),
		`SELECT count(*), count(DISTINCT book_id) FROM job_history WHERE status = 'completed'`).Scan(&completed, &distinct); err != nil {
		t.Fatal(err)
	}
	if completed != len(ids) || distinct != len(ids) {
		t.Errorf("job history has %d completed jobs for %d books, want %d each", completed, distinct, len(ids))
	}
}

// TestOneSyncPerBookAcrossFetcherProcesses: a reader opens a book right after the listing
// that queued it, while an administrator and the refresh ask for it too: the book is
// requested in all four lanes at once, with two fetcher processes running. It is synced
// once: every page of it reaches the site once, and one job completes.
func TestOneSyncPerBookAcrossFetcherProcesses(t *testing.T) {
	t.Parallel()
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 1, 1
	cfg.MinChapters, cfg.MaxChapters = 100, 100 // five table-of-contents pages
	cfg.Latency = 50 * time.Millisecond
	s := startBare(t, cfg)
	env := fetcherEnv(s.natsURL, s.siteURL, map[string]string{"BG_JOB_RATE_LIMIT": "0", "SYNC_DEDUP_WINDOW": "1m"})
	for _, id := range []string{"f1", "f2"} {
		env["FETCHER_ID"] = id
		startProcess(t, "fetcher", env)
	}
	testkit.Eventually(t, 20*time.Second, "both fetchers consuming", func() bool {
		kv, err := s.ns.JS.KeyValue(t.Context(), events.BucketFetchers)
		if err != nil {
			return false
		}
		keys, _ := kv.Keys(t.Context())
		return len(keys) == 2
	})
	id := s.site.Books()[0].ID
	for _, lane := range []events.Lane{events.LanePrefetch, events.LaneInteractive, events.LaneManual, events.LaneRefresh} {
		publishRequests(t, s.ns, []string{id}, lane)
	}
	s.waitAllSynced(t, []string{id}, 30*time.Second)
	testkit.Eventually(t, 10*time.Second, "four jobs recorded", func() bool {
		var n int
		_ = s.db.QueryRow(context.Background(), `SELECT count(*) FROM job_history WHERE book_id = $1 AND status IN ('completed', 'skipped')`, id).Scan(&n)
		return n == 4
	})
	var completed int
	if err := s.db.QueryRow(context.Background(), `SELECT count(*) FROM job_history WHERE book_id = $1 AND status = 'completed'`, id).Scan(&completed); err != nil {
		t.Fatal(err)
	}
	if completed != 1 {
		t.Errorf("%d jobs completed, want 1", completed)
	}
	seen := map[string]int{}
	for _, r := range s.site.Requests() {
		seen[r.Path]++
	}
	for path, n := range seen {
		if n != 1 {
			t.Errorf("%s fetched %d times, want once", path, n)
		}
	}
	if len(seen) != 6 {
		t.Errorf("%d pages fetched, want the book home and its five table-of-contents pages: %v", len(seen), seen)
	}
}
