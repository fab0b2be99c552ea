package worker

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/fetcher/internal/metrics"
	"github.com/xswtw/xsw/services/fetcher/site/xsw"
)

// outcomes records what Config.Observe is told.
type outcomes struct {
	mu  sync.Mutex
	got []string
}

func (o *outcomes) observe(lane events.Lane, outcome string, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if took < 0 {
		outcome += " (negative duration)"
	}
	o.got = append(o.got, string(lane)+" "+outcome)
}

func (o *outcomes) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := slices.Clone(o.got)
	slices.Sort(out)
	return out
}

func TestObserveReportsEveryOutcome(t *testing.T) {
	t.Parallel()
	var o outcomes
	h := newHarness(t, Config{Workers: 1, MaxAttempts: 2, MaxAge: time.Minute, RetryBase: 10 * time.Millisecond,
		RetryMax: 20 * time.Millisecond, Observe: o.observe})
	h.site.fail["1000404"] = http.StatusNotFound
	h.site.fail["1000500"] = http.StatusInternalServerError
	h.run(t)
	h.request(t, req("1000001", events.LanePrefetch))
	h.request(t, req("1000404", events.LaneManual))
	h.request(t, req("1000500", events.LaneRefresh))
	h.request(t, events.NewBookRequested(xsw.ID, "1000002", events.LanePrefetch, 0, false, "old", time.Now().Add(-time.Hour)))

	want := []string{
		"manual " + metrics.Failed,
		"prefetch " + metrics.Completed,
		"prefetch " + metrics.Skipped,
		"refresh " + metrics.Dead,
		"refresh " + metrics.Retrying,
	}
	testkit.Eventually(t, 10*time.Second, "every outcome observed", func() bool { return slices.Equal(o.list(), want) })
}
