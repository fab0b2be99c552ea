// Package metrics holds the fetcher's Prometheus metrics: jobs by lane and outcome and
// their duration, source requests by site and status class, each site's politeness
// interval and circuit in force, the jobs in flight, and the queue per lane and the dead
// letters, which it refreshes from JetStream itself.
//
// The queue and the dead letters are the cluster's, not this fetcher's: one fetcher
// exports them, the one holding the cluster-metrics lease in events.BucketLeases, so
// that a sum over the fetchers is the truth, not as many times the truth as there are
// fetchers. The others export no series of them at all, and do not read them.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/lease"
	platformmetrics "github.com/xswtw/xsw/platform/metrics"
)

// Job outcomes, the values of the outcome label.
const (
	// Completed: the book was synced.
	Completed = "completed"
	// Unchanged: a resync found nothing new.
	Unchanged = "unchanged"
	// Retrying: the attempt failed with a transient error and will be retried.
	Retrying = "retrying"
	// Failed: the job failed with a permanent error (404, unparseable) and was
	// dead-lettered at once.
	Failed = "failed"
	// Dead: the job ran out of attempts and was dead-lettered.
	Dead = "dead"
	// Skipped: the job was dropped without fetching (recently synced, expired).
	Skipped = "skipped"
)

// Outcomes lists every outcome.
var Outcomes = []string{Completed, Unchanged, Retrying, Failed, Dead, Skipped}

// circuitValues maps the circuit states a limiter reports to the gauge's values.
var circuitValues = map[string]float64{"closed": 0, "half-open": 1, "open": 2}

// Probes read the state the gauges report at scrape time.
type Probes struct {
	// Sites probe each site served.
	Sites []SiteProbe
	// InFlight counts the jobs in progress in this process.
	InFlight func() int
}

// SiteProbe reads one site's politeness state.
type SiteProbe struct {
	// Site is the site id, the value of the site label.
	Site string
	// Interval is the site's politeness interval in force now.
	Interval func() time.Duration
	// Circuit is the site's circuit state: closed, half-open or open.
	Circuit func() string
	// Refused reports whether the site refuses us (a 403, a challenge page).
	Refused func() bool
}

// Fetcher is the fetcher's metrics.
type Fetcher struct {
	jobs        *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
	requests    *prometheus.CounterVec
	reqDuration *prometheus.HistogramVec
	queue       *prometheus.GaugeVec
	dead        prometheus.Gauge
	poison      *prometheus.CounterVec
	// exporting is true while this fetcher holds the cluster-metrics lease and has read
	// the cluster's gauges since it took it.
	exporting atomic.Bool
}

// Consumers whose poison messages are counted, the values of the consumer label.
const (
	// ConsumerRequests is the lanes' consumers of book requests.
	ConsumerRequests = "requests"
	// ConsumerCrawls is the consumer of crawl requests.
	ConsumerCrawls = "crawls"
)

// New registers the fetcher's metrics with reg.
func New(reg prometheus.Registerer, p Probes) (*Fetcher, error) {
	m := &Fetcher{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xsw_fetcher_jobs_total",
			Help: "Sync job attempts by lane and outcome (completed, unchanged, retrying, failed, dead, skipped).",
		}, []string{"lane", "outcome"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xsw_fetcher_job_duration_seconds",
			Help:    "Time a sync job attempt took, from start to its outcome, by lane and outcome.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
		}, []string{"lane", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xsw_fetcher_source_requests_total",
			Help: `Requests to each source site by status class: 2xx, 3xx, 4xx, 5xx, or "error" when no answer came.`,
		}, []string{"site", "status"}),
		reqDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xsw_fetcher_source_request_duration_seconds",
			Help:    "Time from sending a request to a source site to its answer's headers (politeness wait excluded), by site.",
			Buckets: prometheus.DefBuckets,
		}, []string{"site"}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "xsw_fetcher_queue_size",
			Help: "Book requests waiting in each lane (the lane consumer's pending count), cluster-wide, refreshed periodically; exported by one fetcher only.",
		}, []string{"lane"}),
		dead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xsw_fetcher_dead_letters",
			Help: "Messages in the dead-letter stream XSW_DEAD (one per book), refreshed periodically; exported by one fetcher only.",
		}),
		poison: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xsw_fetcher_poison_total",
			Help: "Messages terminated because they can never be run (undecodable, unknown version, invalid, for a site not served), by consumer: requests or crawls.",
		}, []string{"consumer"}),
	}
	for _, l := range events.Lanes {
		for _, o := range Outcomes {
			m.jobs.WithLabelValues(string(l), o)
		}
		m.queue.WithLabelValues(string(l))
	}
	for _, c := range []string{ConsumerRequests, ConsumerCrawls} {
		m.poison.WithLabelValues(c)
	}
	cs := []prometheus.Collector{m.jobs, m.jobDuration, m.requests, m.reqDuration, m.poison,
		&whileExporting{on: &m.exporting, cs: []prometheus.Collector{m.queue, m.dead}},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "xsw_fetcher_jobs_in_flight",
			Help: "Sync jobs this fetcher is working on now.",
		}, func() float64 { return float64(p.InFlight()) }),
	}
	for _, sp := range p.Sites {
		for _, s := range []string{"2xx", "3xx", "4xx", "5xx", "error"} {
			m.requests.WithLabelValues(sp.Site, s)
		}
		labels := prometheus.Labels{"site": sp.Site}
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "xsw_fetcher_politeness_interval_seconds",
				Help:        "Seconds between two requests to a source site in force now, cluster-wide (after any slow-down), by site.",
				ConstLabels: labels,
			}, func() float64 { return sp.Interval().Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "xsw_fetcher_circuit_state",
				Help:        "A source site's circuit as this fetcher last saw it, by site: 0 closed, 1 half-open, 2 open.",
				ConstLabels: labels,
			}, func() float64 {
				if v, ok := circuitValues[sp.Circuit()]; ok {
					return v
				}
				return 2
			}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "xsw_fetcher_site_refused",
				Help:        "1 while a source site refuses us (it answered 403 or a challenge page) and is only probed, by site; 0 otherwise.",
				ConstLabels: labels,
			}, func() float64 {
				if sp.Refused != nil && sp.Refused() {
					return 1
				}
				return 0
			}),
		)
	}
	return m, platformmetrics.Register(reg, cs...)
}

// Job records how a job attempt in lane ended and how long it took. Skipped jobs did no
// work, so they are counted but not timed.
func (m *Fetcher) Job(lane events.Lane, outcome string, took time.Duration) {
	m.jobs.WithLabelValues(string(lane), outcome).Inc()
	if outcome != Skipped {
		m.jobDuration.WithLabelValues(string(lane), outcome).Observe(took.Seconds())
	}
}

// Poison counts a message of consumer (ConsumerRequests or ConsumerCrawls) terminated
// because it can never be run.
func (m *Fetcher) Poison(consumer string) {
	m.poison.WithLabelValues(consumer).Inc()
}

// SourceRequest records a request to a source site: the status of its answer (0 when
// none came) and how long the answer took.
func (m *Fetcher) SourceRequest(site string, status int, took time.Duration) {
	class := "error"
	if status >= 100 && status < 600 {
		class = strconv.Itoa(status/100) + "xx"
	}
	m.requests.WithLabelValues(site, class).Inc()
	if status != 0 {
		m.reqDuration.WithLabelValues(site).Observe(took.Seconds())
	}
}

// whileExporting collects its collectors only while on is true: while it is false, their
// series are not exported at all.
type whileExporting struct {
	on *atomic.Bool
	cs []prometheus.Collector
}

func (w *whileExporting) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range w.cs {
		c.Describe(ch)
	}
}

func (w *whileExporting) Collect(ch chan<- prometheus.Metric) {
	if !w.on.Load() {
		return
	}
	for _, c := range w.cs {
		c.Collect(ch)
	}
}

// leaseKey names the lease, in events.BucketLeases, of the fetcher that exports the
// cluster's gauges.
const leaseKey = "fetcher-cluster-metrics"

// Watch competes, as the fetcher named holder, for the lease of the cluster's gauges
// (the queue per lane and the dead letters) every interval until ctx ends; while it
// holds the lease, it refreshes them from JetStream and exports them. A failed read keeps
// the last values and is logged once per failure streak. When ctx ends it gives the lease
// up, so that another fetcher takes over at its next try.
func (m *Fetcher) Watch(ctx context.Context, js jetstream.JetStream, holder string, every time.Duration, logger *slog.Logger) error {
	kv, err := js.KeyValue(ctx, events.BucketLeases)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil // stopped before it started
	case err != nil:
		return fmt.Errorf("bucket %s: %w", events.BucketLeases, err)
	}
	l := lease.New(kv, leaseKey, holder)
	defer func() {
		m.exporting.Store(false)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = l.Release(rctx)
	}()
	t := time.NewTicker(min(every, events.LeaseTTL/3)) // renewed well before it expires
	defer t.Stop()
	failing := false
	for {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		held := l.Hold(hctx)
		cancel()
		if held {
			// What was read is exported even when a part failed: the holder keeps its
			// lease, so no other fetcher would export the gauges instead.
			err := m.refresh(ctx, js)
			switch {
			case err != nil && !failing && ctx.Err() == nil:
				logger.Warn("refresh queue metrics", "err", err)
				failing = true
			case err == nil:
				failing = false
			}
			if ctx.Err() == nil && !m.exporting.Swap(true) {
				logger.Info("this fetcher exports the cluster's queue and dead-letter gauges")
			}
		} else if m.exporting.Swap(false) {
			logger.Info("another fetcher exports the cluster's queue and dead-letter gauges now")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (m *Fetcher) refresh(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []error
	requests, err := js.Stream(ctx, events.StreamRequests)
	if err != nil {
		return fmt.Errorf("stream %s: %w", events.StreamRequests, err)
	}
	for _, l := range events.Lanes {
		n, err := broker.WaitingInLane(ctx, requests, l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.queue.WithLabelValues(string(l)).Set(float64(n))
	}
	dead, err := js.Stream(ctx, events.StreamDead)
	if err == nil {
		var info *jetstream.StreamInfo
		if info, err = dead.Info(ctx); err == nil {
			m.dead.Set(float64(info.State.Msgs))
		}
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("stream %s: %w", events.StreamDead, err))
	}
	return errors.Join(errs...)
}
