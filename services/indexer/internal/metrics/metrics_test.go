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
	m, err := New(reg, Counts{Poison: func() int64 { return 2 }, Failures: func() int64 { return 1 }})
	if err != nil {
		t.Fatal(err)
	}
	m.Batch([]events.Payload{&events.BookFetched{}, &events.TOCPageFetched{}, &events.TOCPageFetched{}, &events.JobEvent{}}, 20*time.Millisecond)
	m.Batch([]events.Payload{&events.ChapterFetched{}}, 5*time.Millisecond)

	for kind, want := range map[string]float64{KindBook: 1, KindTOCPage: 2, KindJob: 1, KindChapter: 1, KindPurge: 0, KindCategories: 0} {
		if got := testutil.ToFloat64(m.indexed.WithLabelValues(kind)); got != want {
			t.Errorf("events{%s} = %v, want %v", kind, got, want)
		}
	}
	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP xsw_indexer_batch_events Events in one committed batch.
# TYPE xsw_indexer_batch_events histogram
xsw_indexer_batch_events_bucket{le="1"} 1
xsw_indexer_batch_events_bucket{le="2"} 1
xsw_indexer_batch_events_bucket{le="4"} 2
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
xsw_indexer_batch_events_sum 5
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
