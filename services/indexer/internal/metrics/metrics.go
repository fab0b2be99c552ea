// Package metrics holds the indexer's Prometheus metrics: events indexed by kind and site,
// the latency and size of the batch transactions, and the events that could never be
// indexed.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xswtw/xsw/events"
	platformmetrics "github.com/xswtw/xsw/platform/metrics"
)

// Event kinds, the values of the kind label.
const (
	KindBook         = "book"
	KindTOCPage      = "toc_page"
	KindChapter      = "chapter"
	KindCategories   = "categories"
	KindPurge        = "purge"
	KindAcceptShrink = "accept_shrink"
	KindJob          = "job"
	KindOther        = "other"
)

var kinds = []string{KindBook, KindTOCPage, KindChapter, KindCategories, KindPurge, KindAcceptShrink, KindJob, KindOther}

// Counts reads the loop's running totals at scrape time.
type Counts struct {
	// Poison counts the events terminated because they can never be indexed.
	Poison func() int64
	// Failures counts the batch attempts the database failed.
	Failures func() int64
}

// Indexer is the indexer's metrics.
type Indexer struct {
	indexed   *prometheus.CounterVec
	latency   prometheus.Histogram
	batchSize prometheus.Histogram
}

// New registers the indexer's metrics with reg; the series of sites (the configured ones)
// start at zero.
func New(reg prometheus.Registerer, sites []string, c Counts) (*Indexer, error) {
	m := &Indexer{
		indexed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xsw_indexer_events_total",
			Help: "Events written to Postgres by kind (book, toc_page, chapter, categories, purge, accept_shrink, job) and site (none for read counts, which span sites).",
		}, []string{"kind", "site"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xsw_indexer_batch_duration_seconds",
			Help:    "Time one committed batch's transaction took.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25},
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xsw_indexer_batch_events",
			Help:    "Events in one committed batch.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096},
		}),
	}
	for _, site := range sites {
		for _, k := range kinds {
			if k != KindOther {
				m.indexed.WithLabelValues(k, site)
			}
		}
	}
	m.indexed.WithLabelValues(KindOther, "")
	return m, platformmetrics.Register(reg, m.indexed, m.latency, m.batchSize,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "xsw_indexer_poison_total",
			Help: "Events terminated because they can never be indexed (undecodable, unknown version, refused by the database).",
		}, func() float64 { return float64(c.Poison()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "xsw_indexer_batch_failures_total",
			Help: "Batch attempts the database failed (retried with backoff).",
		}, func() float64 { return float64(c.Failures()) }),
	)
}

// Batch records a committed batch: its events and how long its transaction took.
func (m *Indexer) Batch(evs []events.Payload, took time.Duration) {
	m.latency.Observe(took.Seconds())
	m.batchSize.Observe(float64(len(evs)))
	for _, ev := range evs {
		m.indexed.WithLabelValues(Kind(ev), Site(ev)).Inc()
	}
}

// Kind names the kind of an event.
func Kind(ev events.Payload) string {
	switch ev.(type) {
	case *events.BookFetched:
		return KindBook
	case *events.TOCPageFetched:
		return KindTOCPage
	case *events.ChapterFetched:
		return KindChapter
	case *events.CategoriesFetched:
		return KindCategories
	case *events.BookPurgeRequested:
		return KindPurge
	case *events.BookShrinkAccepted:
		return KindAcceptShrink
	case *events.JobEvent:
		return KindJob
	}
	return KindOther
}

// Site names the site of an event: "" for one of no site (read counts span sites).
func Site(ev events.Payload) string {
	switch e := ev.(type) {
	case *events.BookFetched:
		return e.Site
	case *events.TOCPageFetched:
		return e.Site
	case *events.ChapterFetched:
		return e.Site
	case *events.CategoriesFetched:
		return e.Site
	case *events.BookPurgeRequested:
		return e.Site
	case *events.BookShrinkAccepted:
		return e.Site
	case *events.JobEvent:
		return e.Site
	}
	return ""
}
