package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/xswtw/xsw/events"
)

func TestBatch(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, []string{"xsw", "czbooks"}, Counts{Poison: func() int64 { return 2 }, Failures: func() int64 { return 1 }})
	if err != nil {
		t.Fatal(err)
	}
	m.Batch([]events.Payload{&events.BookFetched{Site: "xsw"}, &events.TOCPageFetched{Site: "xsw"}, &events.TOCPageFetched{Site: "czbooks"},
		&events.JobEvent{Site: "xsw"}, &events.BooksRead{}, &events.BookShrinkAccepted{Site: "czbooks"}}, 20*time.Millisecond)
	m.Batch([]events.Payload{&events.ChapterFetched{Site: "czbooks"}}, 5*time.Millisecond)

	for _, tc := range []struct {
		kind, site string
		want       float64
	}{
		{KindBook, "xsw", 1}, {KindBook, "czbooks", 0},
		{KindTOCPage, "xsw", 1}, {KindTOCPage, "czbooks", 1},
		{KindJob, "xsw", 1}, {KindChapter, "czbooks", 1}, {KindChapter, "xsw", 0},
		{KindPurge, "xsw", 0}, {KindCategories, "czbooks", 0}, {KindOther, "", 1},
		{KindAcceptShrink, "czbooks", 1}, {KindAcceptShrink, "xsw", 0},
	} {
		if got := testutil.ToFloat64(m.indexed.WithLabelValues(tc.kind, tc.site)); got != tc.want {
			t.Errorf("events{%s,%s} = %v, want %v", tc.kind, tc.site, got, tc.want)
		}
	}
	// Every configured site's series exist before its first event.
	if got := testutil.CollectAndCount(m.indexed); got != 2*(len(kinds)-1)+1 {
		t.Errorf("%d event series, want %d", got, 2*(len(kinds)-1)+1)
	}
	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP xsw_indexer_batch_events Events in one committed batch.
# TYPE xsw_indexer_batch_events histogram
xsw_indexer_batch_events_bucket{le="1"} 1
xsw_indexer_batch_events_bucket{le="2"} 1
xsw_indexer_batch_events_bucket{le="4"} 1
xsw_indexer_batch_events_bucket{le="8"} 2
xsw_indexer_batch_events_bucket{le="16"} 2
xsw_indexer_batch_events_bucket{le="32"} 2
xsw_indexer_batch_events_bucket{le="64"} 2
xsw_indexer_batch_events_bucket{le="128"} 2
xsw_indexer_batch_events_bucket{le="256"} 2
xsw_indexer_batch_events_bucket{le="512"} 2
xsw_indexer_batch_events_bucket{le="1024"} 2
xsw_indexer_batch_events_bucket{le="4096"} 2
xsw_indexer_batch_events_bucket{le="+Inf"} 2
xsw_indexer_batch_events_sum 7
xsw_indexer_batch_events_count 2
# HELP xsw_indexer_poison_total Events terminated because they can never be indexed (undecodable, unknown version, refused by the database).
# TYPE xsw_indexer_poison_total counter
xsw_indexer_poison_total 2
# HELP xsw_indexer_batch_failures_total Batch attempts the database failed (retried with backoff).
# TYPE xsw_indexer_batch_failures_total counter
xsw_indexer_batch_failures_total 1
`), "xsw_indexer_batch_events", "xsw_indexer_poison_total", "xsw_indexer_batch_failures_total")
	if err != nil {
		t.Error(err)
	}
	if got := testutil.CollectAndCount(m.latency); got != 1 {
		t.Errorf("latency series = %d", got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
