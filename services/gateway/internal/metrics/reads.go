package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	platformmetrics "github.com/xswtw/xsw/platform/metrics"
)

// Where a book read was served from: the values of the served_from label. A book read
// is a reader's GET of a book's page (/books/{book_id}) or of its chapter list
// (/books/{book_id}/chapters), what pre-caching promises to have ready; the text of a
// chapter, fetched when first read by design, is not one.
const (
	// ServedMemory: the gateway's memory cache held the answer.
	ServedMemory = "memory"
	// ServedDatabase: Postgres held it (pre-cached, or stored by an earlier read).
	ServedDatabase = "database"
	// ServedWaited: it was not stored; the reader waited for an interactive fetch (a
	// sync, or chapters fetched out of turn) and got it.
	ServedWaited = "waited"
	// ServedQueued: it was not stored and did not come within the wait; the reader got
	// 202 (or 503 while the site refuses us) and the book is queued.
	ServedQueued = "queued"
	// ServedFailed: the reader got an error instead: the source has no such book, the
	// source or the database failed, or nothing could be queued.
	ServedFailed = "failed"
)

// ServedFrom lists every served_from value.
var ServedFrom = []string{ServedMemory, ServedDatabase, ServedWaited, ServedQueued, ServedFailed}

// Reads counts book reads by site and where each was served from. The pre-cache hit
// rate is the share served from memory or the database.
type Reads struct {
	reads *prometheus.CounterVec
}

// NewReads registers the book read counter with reg; the series of sites (the served
// ones) start at zero.
func NewReads(reg prometheus.Registerer, sites []string) (*Reads, error) {
	m := &Reads{reads: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xsw_gateway_book_reads_total",
		Help: "Book reads (a book's page or chapter list, not a chapter's text) by site and where each was served from: " +
			"memory, database (pre-cached), waited (fetched while the reader waited), queued (202: not ready, queued) or failed.",
	}, []string{"site", "served_from"})}
	for _, site := range sites {
		for _, from := range ServedFrom {
			m.reads.WithLabelValues(site, from)
		}
	}
	return m, platformmetrics.Register(reg, m.reads)
}

// Read counts one book read of site served from from (one of ServedFrom).
func (m *Reads) Read(site, from string) {
	m.reads.WithLabelValues(site, from).Inc()
}
