package main

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/events"
)

// politenessWorkers is BG_JOB_WORKERS of each fetcher process of the politeness runs.
const politenessWorkers = 4

// runPoliteness runs 1, then 3 fetcher processes with plenty of work waiting and a short
// interval, and reads the site's request log over windows of a few seconds: the rate
// achieved against the rate allowed, the smallest gap, the most requests in any interval.
func runPoliteness(ctx context.Context, e *env, r *Results) error {
	o := e.opts
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 1, 200
	cfg.MinChapters, cfg.MaxChapters = 100, 100
	sim, err := sitesim.NewServer(cfg)
	if err != nil {
		return err
	}
	defer sim.Close()
	site := sim.Site()
	ids := sitesim.BookIDs(cfg)
	for _, n := range []int{1, 3} {
		fig, err := politeness(ctx, e, sim.URL(), site, ids, n)
		if err != nil {
			return fmt.Errorf("%d fetchers: %w", n, err)
		}
		fig.IntervalMS, fig.WindowSeconds = ms(o.politeInterval), o.politeWindow.Seconds()
		r.Politeness = append(r.Politeness, fig)
	}
	return nil
}

func politeness(ctx context.Context, e *env, siteURL string, site *sitesim.Site, ids []string, fetchers int) (Politeness, error) {
	o := e.opts
	fig := Politeness{Fetchers: fetchers, WorkersEach: politenessWorkers, AllowedPerSecond: float64(time.Second) / float64(o.politeInterval)}
	b, err := e.startBus(fmt.Sprintf("polite%d", fetchers))
	if err != nil {
		return fig, err
	}
	defer b.close()
	procs, err := startFetchers(ctx, e, b.js, fmt.Sprintf("polite%d", fetchers), fetchers, map[string]string{
		"NATS_URL": b.url(), "BASE_URL": siteURL,
		"BG_JOB_RATE_LIMIT": o.politeInterval.String(), "BG_JOB_WORKERS": fmt.Sprint(politenessWorkers),
	})
	defer procs.stop()
	if err != nil {
		return fig, err
	}
	site.Reset()
	if err := publishRequests(ctx, b.js, events.LegacySite, ids); err != nil {
		return fig, err
	}
	if err := proctest.Poll(ctx, 30*time.Second, "requests at the site", func() (bool, error) { return site.Count() > 0, nil }); err != nil {
		return fig, err
	}
	time.Sleep(time.Second) // past the first bookings
	var rate, gap, inInterval, inSecond []float64
	for i := 0; i < o.runs; i++ {
		site.Reset()
		select {
		case <-time.After(o.politeWindow):
		case <-ctx.Done():
			return fig, ctx.Err()
		}
		sp := spacing(site.Requests(), o.politeWindow, o.politeInterval)
		rate, gap = append(rate, sp.PerSecond), append(gap, ms(sp.MinGap))
		inInterval, inSecond = append(inInterval, float64(sp.MaxInInterval)), append(inSecond, float64(sp.MaxInSecond))
		e.log.Info("politeness", "fetchers", fetchers, "window", i+1, "requests", sp.Count, "per_s", round(sp.PerSecond, 2),
			"allowed_per_s", fig.AllowedPerSecond, "min_gap_ms", round(ms(sp.MinGap), 1), "max_in_interval", sp.MaxInInterval)
	}
	fig.AchievedPerSecond, fig.MinGapMS = newSample(rate), newSample(gap)
	fig.MaxInInterval, fig.MaxInSecond = newSample(inInterval), newSample(inSecond)
	return fig, nil
}

// fleet is fetcher processes started together.
type fleet []*proctest.Process

// stop stops every process of f.
func (f fleet) stop() {
	for _, p := range f {
		_ = stop(p, 10*time.Second)
	}
}

// startFetchers starts n fetcher processes labelled <label>-1 … <label>-n, each with vars
// (NATS_URL, the sites and their limits, BG_JOB_WORKERS) plus its own FETCHER_ID, a free
// health address and LOG_LEVEL=info, and waits until every one has its heartbeat in the
// fetchers bucket of js, so that work published next finds them all up. The processes
// started are returned even with an error: the caller stops them.
func startFetchers(ctx context.Context, e *env, js jetstream.JetStream, label string, n int, vars map[string]string) (fleet, error) {
	var procs fleet
	for i := range n {
		id := fmt.Sprintf("%s-%d", label, i+1)
		env := map[string]string{"FETCHER_HEALTH_ADDR": "127.0.0.1:0", "FETCHER_ID": id, "LOG_LEVEL": "info"}
		maps.Copy(env, vars)
		p, err := e.start(id, "fetcher", env)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
	}
	err := proctest.Poll(ctx, 60*time.Second, fmt.Sprintf("%d fetcher heartbeats", n), func() (bool, error) {
		for _, p := range procs {
			if err := p.Alive(); err != nil {
				return false, err
			}
		}
		kv, err := js.KeyValue(ctx, events.BucketFetchers)
		if err != nil {
			return false, nil
		}
		keys, err := kv.Keys(ctx)
		return err == nil && len(keys) >= n, nil
	})
	return procs, err
}
