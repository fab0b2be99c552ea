package worker

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/sites"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/site/xsw"
)

// TestPagePriority: a reader's job fetches the pages the reader needs to open the book
// at interactive priority and the rest demoted; any other job's pages are background work.
func TestPagePriority(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lane    events.Lane
		fetched int // pages the job fetched before
		want    politeness.Priority
	}{
		{events.LaneInteractive, 0, politeness.Interactive},
		{events.LaneInteractive, events.InteractivePagesPerBook - 1, politeness.Interactive},
		{events.LaneInteractive, events.InteractivePagesPerBook, politeness.Demoted},
		{events.LaneInteractive, 40, politeness.Demoted},
		{events.LaneManual, 0, politeness.Background},
		{events.LanePrefetch, 0, politeness.Background},
		{events.LaneRefresh, 7, politeness.Background},
	}
	for _, tt := range tests {
		j := &job{Request: req("1000001", tt.lane), Requests: tt.fetched}
		if got := j.priority(t.Context()); got != tt.want {
			t.Errorf("%s job after %d pages: priority %v, want %v", tt.lane, tt.fetched, got, tt.want)
		}
	}
}

// TestReadersJobIsNotBackgroundWork syncs a reader's book of four pages while the site's
// budget is booked further ahead than a reader may wait. The pages the reader needs
// (events.InteractivePagesPerBook) are tried at interactive priority and, told the site
// is busy, go on demoted; the others go demoted at once. None of them is background work
// for the share kept for it: the shared entry records no background slot.
func TestReadersJobIsNotBackgroundWork(t *testing.T) {
	t.Parallel()
	const interval = 100 * time.Millisecond
	ts := newTestSite(t)
	base, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketPoliteness)
	if err != nil {
		t.Fatal(err)
	}
	limiter := politeness.New(kv, sites.LimiterKey(xsw.ID), politeness.Config{Interval: interval, InteractiveMaxWait: interval / 5})
	st := &sites.Site{ID: xsw.ID, Source: xsw.New(base), Limiter: limiter, RateLimit: interval,
		Client: source.New(base, limiter, source.Config{Timeout: 5 * time.Second})}
	// The site asked us to slow down: every slot within a reader's wait is taken.
	if err := limiter.Report(t.Context(), politeness.Throttled, 3*interval); err != nil {
		t.Fatal(err)
	}
	logs := &records{}
	s := &Syncer{JS: ns.JS, Sites: sites.NewSet(st), Logger: slog.New(logs)}
	j := &job{ID: "test-1", Request: req("1000001", events.LaneInteractive), Site: st}
	res, err := s.Sync(t.Context(), j)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 3 || j.Requests != 4 || len(ts.requests()) != 4 {
		t.Fatalf("synced %d pages in %d requests (%d reached the site), want 3 in 4", res.Pages, j.Requests, len(ts.requests()))
	}
	if got := logs.count("reader's job goes on at background pace"); got != events.InteractivePagesPerBook {
		t.Errorf("%d pages were tried at interactive priority, want %d", got, events.InteractivePagesPerBook)
	}
	e, err := kv.Get(t.Context(), sites.LimiterKey(xsw.ID))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"last_bg"`, `"bg_waits"`, `"reserved"`} {
		if strings.Contains(string(e.Value()), field) {
			t.Errorf("a reader's job counted as background work: the shared entry %s has %s", e.Value(), field)
		}
	}
}

// records is a slog.Handler that keeps the messages logged.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }

func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

// count returns how many times msg was logged.
func (r *records) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}
