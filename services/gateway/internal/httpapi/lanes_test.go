package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
)

// fetchConsumers makes the fetch consumers of both test sites and the legacy ones, as
// the fetchers do when they start (legacy first), and returns them by name.
func (e *env) fetchConsumers() map[string]jetstream.Consumer {
	e.t.Helper()
	out := map[string]jetstream.Consumer{}
	add := func(spec events.ConsumerSpec) {
		c, err := broker.Consumer(e.t.Context(), e.ns.JS, spec)
		if err != nil {
			e.t.Fatal(err)
		}
		out[spec.Durable] = c
	}
	for _, l := range events.Lanes {
		add(events.LegacyFetcherConsumer(l, time.Minute, -1))
	}
	for _, site := range []string{"xsw", "toy"} {
		for _, l := range events.Lanes {
			add(events.FetcherConsumer(l, site, time.Minute, -1))
		}
	}
	return out
}

// paused reports whether JetStream says the consumer is paused.
func (e *env) paused(c jetstream.Consumer) bool {
	e.t.Helper()
	info, err := c.Info(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.Paused
}

// delivered fetches one message from c, waiting up to wait, and acknowledges it; "" when
// none came.
func delivered(t *testing.T, c jetstream.Consumer, wait time.Duration) string {
	t.Helper()
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := <-batch.Messages(); ok {
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		return m.Subject()
	}
	return ""
}

func names(cs []api.LaneConsumer) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Consumer
	}
	return out
}

// TestPauseLaneOfASite pauses the manual lane of one site: its consumers (the site's and,
// for the default site, the legacy one) report paused and deliver nothing, the other
// site's consumer of the lane delivers as before; resumed, the waiting request comes.
func TestPauseLaneOfASite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cs := e.fetchConsumers()
	expect(t, e.admin(http.MethodPost, "/xsw/api/admin/jobs/sync/1?priority=10"), http.StatusOK)
	expect(t, e.admin(http.MethodPost, "/xsw/api/admin/jobs/sync/abc?priority=10&site=toy"), http.StatusOK)

	until := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/pause?lane=manual&site=xsw&until="+url.QueryEscape(until.Format(time.RFC3339)))
	expect(t, r, http.StatusOK)
	var p api.LanePause
	r.decode(t, &p)
	if p.Status != "paused" || p.Lane != events.LaneManual || p.Site == nil || *p.Site != "xsw" || p.PauseUntil == nil || !p.PauseUntil.Equal(until) {
		t.Errorf("answer %s", r.body)
	}
	if got, want := names(p.Consumers), []string{"fetch-manual-xsw", "fetch-manual"}; !slices.Equal(got, want) {
		t.Errorf("paused %v, want %v", got, want)
	}
	for _, c := range p.Consumers {
		if !c.Paused || c.PauseUntil == nil || !c.PauseUntil.Equal(until) || c.Site != "xsw" {
			t.Errorf("consumer %+v, want paused until %v", c, until)
		}
	}
	if p.Consumers[0].Waiting != 1 {
		t.Errorf("%s: %d waiting, want 1", p.Consumers[0].Consumer, p.Consumers[0].Waiting)
	}
	for name, want := range map[string]bool{"fetch-manual-xsw": true, "fetch-manual": true, "fetch-manual-toy": false, "fetch-interactive-xsw": false} {
		if got := e.paused(cs[name]); got != want {
			t.Errorf("JetStream says %s paused %v, want %v", name, got, want)
		}
	}
	if got := delivered(t, cs["fetch-manual-xsw"], 500*time.Millisecond); got != "" {
		t.Errorf("the paused consumer delivered %s", got)
	}
	if got := delivered(t, cs["fetch-manual-toy"], 5*time.Second); got != events.RequestSubject(events.LaneManual, "toy", "abc") {
		t.Errorf("the other site's consumer delivered %q", got)
	}

	r = e.admin(http.MethodGet, "/xsw/api/admin/jobs/lanes")
	expect(t, r, http.StatusOK)
	var all api.Lanes
	r.decode(t, &all)
	if len(all.Consumers) != len(cs) || all.Consumers[0].Consumer != "fetch-interactive-toy" || all.Consumers[2].Consumer != "fetch-interactive" {
		t.Errorf("lanes list %v", names(all.Consumers))
	}
	for _, c := range all.Consumers {
		if want := c.Lane == events.LaneManual && c.Site == "xsw"; c.Paused != want {
			t.Errorf("listed %s paused %v, want %v", c.Consumer, c.Paused, want)
		}
	}

	r = e.admin(http.MethodPost, "/xsw/api/admin/jobs/resume?lane=manual&site=xsw")
	expect(t, r, http.StatusOK)
	r.decode(t, &p)
	if p.Status != "resumed" || p.PauseUntil != nil || len(p.Consumers) != 2 || p.Consumers[0].Paused || p.Consumers[0].PauseUntil != nil {
		t.Errorf("answer %s", r.body)
	}
	if e.paused(cs["fetch-manual-xsw"]) {
		t.Error("JetStream says fetch-manual-xsw is still paused")
	}
	if got := delivered(t, cs["fetch-manual-xsw"], 5*time.Second); got != events.RequestSubject(events.LaneManual, "xsw", "1") {
		t.Errorf("resumed, the consumer delivered %q", got)
	}
}

// TestPauseLaneUntil pauses a lane of every site for a moment: nothing is delivered until
// then, and the waiting request comes by itself once the pause ends.
func TestPauseLaneUntil(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cs := e.fetchConsumers()
	expect(t, e.admin(http.MethodPost, "/xsw/api/admin/jobs/sync/2?priority=0"), http.StatusOK)
	until := time.Now().Add(2 * time.Second).Truncate(time.Second).UTC()
	r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/pause?lane=prefetch&until="+until.Format(time.RFC3339))
	expect(t, r, http.StatusOK)
	var p api.LanePause
	r.decode(t, &p)
	if want := []string{"fetch-prefetch-toy", "fetch-prefetch-xsw", "fetch-prefetch"}; p.Site != nil || !slices.Equal(names(p.Consumers), want) {
		t.Errorf("site %v, paused %v, want every site's: %v", p.Site, names(p.Consumers), want)
	}
	if got := delivered(t, cs["fetch-prefetch-xsw"], 300*time.Millisecond); got != "" && time.Now().Before(until) {
		t.Errorf("the paused consumer delivered %s", got)
	}
	got := delivered(t, cs["fetch-prefetch-xsw"], 10*time.Second)
	if got != events.RequestSubject(events.LanePrefetch, "xsw", "2") {
		t.Fatalf("after the pause, the consumer delivered %q", got)
	}
	if now := time.Now(); now.Before(until) {
		t.Errorf("delivered at %v, before the pause ended at %v", now, until)
	}
}

// TestPauseLaneWithoutAnEnd pauses until resumed, and the pause outlives a restart of the
// fetchers (which create or update their consumers as they start).
func TestPauseLaneWithoutAnEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cs := e.fetchConsumers()
	r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/pause?lane=refresh&site=toy")
	expect(t, r, http.StatusOK)
	var p api.LanePause
	r.decode(t, &p)
	if p.PauseUntil == nil || !p.PauseUntil.Equal(api.NoEnd()) || !slices.Equal(names(p.Consumers), []string{"fetch-refresh-toy"}) {
		t.Errorf("answer %s", r.body)
	}
	if !e.paused(cs["fetch-refresh-toy"]) || e.paused(cs["fetch-refresh-xsw"]) {
		t.Error("JetStream does not say only fetch-refresh-toy is paused")
	}
	cs = e.fetchConsumers() // the fetchers restart
	if !e.paused(cs["fetch-refresh-toy"]) {
		t.Error("a restart of the fetchers resumed fetch-refresh-toy")
	}
}

func TestPauseLaneRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// No fetcher has made its consumers yet.
	for _, path := range []string{"/xsw/api/admin/jobs/pause?lane=manual", "/xsw/api/admin/jobs/resume?lane=manual&site=toy"} {
		r := e.admin(http.MethodPost, path)
		expect(t, r, http.StatusNotFound)
		if d := r.detail(t); d == "" {
			t.Errorf("%s: empty detail", path)
		}
	}
	e.fetchConsumers()
	for _, tt := range []struct {
		name, query string
		status      int
	}{
		{"no lane", "", http.StatusBadRequest},
		{"unknown lane", "lane=urgent", http.StatusBadRequest},
		{"unknown site", "lane=manual&site=nope", http.StatusNotFound},
		{"until malformed", "lane=manual&until=tomorrow", http.StatusBadRequest},
		{"until past", "lane=manual&until=2020-01-01T00:00:00Z", http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, e.admin(http.MethodPost, "/xsw/api/admin/jobs/pause?"+tt.query), tt.status)
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.admin(http.MethodGet, "/xsw/api/admin/version")
	expect(t, r, http.StatusOK)
	var v api.Version
	r.decode(t, &v)
	if v.Version == "" || v.GoVersion == "" {
		t.Errorf("version %s", r.body)
	}
}
