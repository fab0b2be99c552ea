package metrics

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newFetcher returns metrics probing two sites: xsw, whose circuit is in state circuit,
// and czbooks, slowed down to 8s with its circuit closed.
func newFetcher(t *testing.T, circuit string) (*Fetcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, Probes{
		Sites: []SiteProbe{
			{Site: "xsw", Interval: func() time.Duration { return 2500 * time.Millisecond }, Circuit: func() string { return circuit }},
			{Site: "czbooks", Interval: func() time.Duration { return 8 * time.Second }, Circuit: func() string { return "closed" }},
		},
		InFlight: func() int { return 3 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestJobsAndRequests(t *testing.T) {
	t.Parallel()
	m, reg := newFetcher(t, "half-open")
	m.Job(events.LanePrefetch, Completed, 1500*time.Millisecond)
	m.Job(events.LanePrefetch, Completed, time.Second)
	m.Job(events.LaneManual, Dead, time.Second)
	m.Job(events.LaneRefresh, Skipped, 0)
	m.SourceRequest("xsw", 200, 10*time.Millisecond)
	m.SourceRequest("xsw", 304, 10*time.Millisecond)
	m.SourceRequest("xsw", 404, 10*time.Millisecond)
	m.SourceRequest("xsw", 503, 10*time.Millisecond)
	m.SourceRequest("xsw", 0, time.Second)
	m.SourceRequest("czbooks", 403, 10*time.Millisecond)

	for _, c := range []struct {
		lane, outcome string
		want          float64
	}{
		{"prefetch", Completed, 2}, {"manual", Dead, 1}, {"refresh", Skipped, 1}, {"interactive", Failed, 0},
	} {
		if got := testutil.ToFloat64(m.jobs.WithLabelValues(c.lane, c.outcome)); got != c.want {
			t.Errorf("jobs{%s,%s} = %v, want %v", c.lane, c.outcome, got, c.want)
		}
	}
	// Every lane and outcome exists from the start, so rates of a quiet lane are 0, not absent.
	if n := testutil.CollectAndCount(m.jobs); n != len(events.Lanes)*len(Outcomes) {
		t.Errorf("%d job series, want %d", n, len(events.Lanes)*len(Outcomes))
	}
	// A skipped job is counted but not timed.
	if n := testutil.CollectAndCount(m.jobDuration); n != 2 {
		t.Errorf("%d duration series, want 2 (prefetch completed, manual dead)", n)
	}
	for _, c := range []struct {
		site, class string
		want        float64
	}{
		{"xsw", "2xx", 1}, {"xsw", "3xx", 1}, {"xsw", "4xx", 1}, {"xsw", "5xx", 1}, {"xsw", "error", 1},
		{"czbooks", "4xx", 1}, {"czbooks", "2xx", 0},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.site, c.class)); got != c.want {
			t.Errorf("source requests{%s,%s} = %v, want %v", c.site, c.class, got, c.want)
		}
	}
	// Every site and class exists from the start.
	if n := testutil.CollectAndCount(m.requests); n != 2*5 {
		t.Errorf("%d source request series, want 10", n)
	}
	// An answer is timed; no answer is not.
	if n := testutil.CollectAndCount(m.reqDuration); n != 2 {
		t.Errorf("%d request duration series, want 2 (one per site)", n)
	}
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP xsw_fetcher_circuit_state A source site's circuit as this fetcher last saw it, by site: 0 closed, 1 half-open, 2 open.
# TYPE xsw_fetcher_circuit_state gauge
xsw_fetcher_circuit_state{site="czbooks"} 0
xsw_fetcher_circuit_state{site="xsw"} 1
# HELP xsw_fetcher_politeness_interval_seconds Seconds between two requests to a source site in force now, cluster-wide (after any slow-down), by site.
# TYPE xsw_fetcher_politeness_interval_seconds gauge
xsw_fetcher_politeness_interval_seconds{site="czbooks"} 8
xsw_fetcher_politeness_interval_seconds{site="xsw"} 2.5
# HELP xsw_fetcher_jobs_in_flight Sync jobs this fetcher is working on now.
# TYPE xsw_fetcher_jobs_in_flight gauge
xsw_fetcher_jobs_in_flight 3
`), "xsw_fetcher_circuit_state", "xsw_fetcher_politeness_interval_seconds", "xsw_fetcher_jobs_in_flight")
	if err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestCircuitStates(t *testing.T) {
	t.Parallel()
	for state, want := range map[string]float64{"closed": 0, "half-open": 1, "open": 2, "unheard-of": 2} {
		_, reg := newFetcher(t, state)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "xsw_fetcher_circuit_state" {
				continue
			}
			for _, metric := range mf.GetMetric() {
				if metric.GetLabel()[0].GetValue() != "xsw" {
					continue
				}
				if got := metric.GetGauge().GetValue(); got != want {
					t.Errorf("circuit %q = %v, want %v", state, got, want)
				}
			}
		}
	}
}

func TestWatchReadsQueueAndDeadLetters(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	for _, l := range events.Lanes {
		if _, err := broker.Consumer(t.Context(), ns.JS, events.FetcherConsumer(l, "xsw", time.Minute, -1)); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(p interface {
		events.Payload
		Subject() string
		MsgID() string
	}) {
		t.Helper()
		if _, err := broker.Publish(t.Context(), ns.JS, p.Subject(), p.MsgID(), p); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"1000001", "1000002", "1000003"} {
		r := events.NewBookRequested("xsw", id, events.LanePrefetch, 0, false, "test", time.Now())
		publish(&r)
	}
	r := events.NewBookRequested("xsw", "1000004", events.LaneManual, 10, false, "test", time.Now())
	publish(&r)
	dl := events.DeadLetter{Header: events.Header{Version: events.Version}, Request: r, JobID: "xsw.1000004-1", Attempts: 1, Error: "gone", DiedAt: time.Now()}
	if _, err := broker.Publish(t.Context(), ns.JS, dl.Subject(), "", &dl); err != nil {
		t.Fatal(err)
	}

	m, _ := newFetcher(t, "closed")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- m.Watch(ctx, ns.JS, "f1", 10*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch = %v", err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.queue.WithLabelValues("prefetch")) != 3 || testutil.ToFloat64(m.dead) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("queue prefetch = %v, dead = %v; want 3 and 1",
				testutil.ToFloat64(m.queue.WithLabelValues("prefetch")), testutil.ToFloat64(m.dead))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(m.queue.WithLabelValues("manual")); got != 1 {
		t.Errorf("queue manual = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.queue.WithLabelValues("refresh")); got != 0 {
		t.Errorf("queue refresh = %v, want 0", got)
	}
}

func TestPoison(t *testing.T) {
	t.Parallel()
	m, _ := newFetcher(t, "closed")
	m.Poison(ConsumerRequests)
	m.Poison(ConsumerRequests)
	m.Poison(ConsumerCrawls)
	for consumer, want := range map[string]float64{ConsumerRequests: 2, ConsumerCrawls: 1} {
		if got := testutil.ToFloat64(m.poison.WithLabelValues(consumer)); got != want {
			t.Errorf("poison{%s} = %v, want %v", consumer, got, want)
		}
	}
}
