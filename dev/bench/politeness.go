package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	ns, err := e.embeddedNATS(fmt.Sprintf("polite%d", fetchers))
	if err != nil {
		return fig, err
	}
	defer stopNATS(ns)
	var procs []*process
	defer func() {
		for _, p := range procs {
			_ = p.stop(10 * time.Second)
		}
	}()
	for i := range fetchers {
		id := fmt.Sprintf("polite%d-%d", fetchers, i+1)
		p, err := e.start(id, "fetcher", map[string]string{
			"NATS_URL": ns.ClientURL(), "BASE_URL": siteURL, "FETCHER_HEALTH_ADDR": "127.0.0.1:0", "FETCHER_ID": id,
			"BG_JOB_RATE_LIMIT": o.politeInterval.String(), "BG_JOB_WORKERS": fmt.Sprint(politenessWorkers), "LOG_LEVEL": "info",
		}, "")
		if err != nil {
			return fig, err
		}
		procs = append(procs, p)
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("xsw-bench"))
	if err != nil {
		return fig, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fig, err
	}
	// Every process must be up (its heartbeat in the bucket) before work arrives.
	err = poll(ctx, 60*time.Second, 50*time.Millisecond, fmt.Sprintf("%d fetcher heartbeats", fetchers), func() (bool, error) {
		for _, p := range procs {
			if err := p.alive(); err != nil {
				return false, err
			}
		}
		kv, err := js.KeyValue(ctx, events.BucketFetchers)
		if err != nil {
			return false, nil
		}
		keys, err := kv.Keys(ctx)
		return err == nil && len(keys) >= fetchers, nil
	})
	if err != nil {
		return fig, err
	}
	site.Reset()
	if err := publishRequests(ctx, js, ids, events.LanePrefetch, false); err != nil {
		return fig, err
	}
	if err := poll(ctx, 30*time.Second, 10*time.Millisecond, "requests at the site", func() (bool, error) { return site.Count() > 0, nil }); err != nil {
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
