package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/config"
)

// The two-site run: three fetcher processes serve m.xsw.tw and czbooks.net, each site its
// own simulated site with its own interval (SOURCE_<SITE>_RATE_LIMIT) and plenty of work
// waiting for both.
const (
	sitesFetchers = 3
	// sitesChapters is every book's size: 1 + 5 requests to sync on m.xsw.tw (its home
	// page and 5 table-of-contents pages), 1 on czbooks.net (the whole list on the book
	// page).
	sitesChapters = 100
	// sitesLatency and sitesJitter are each simulated site's answer time, so that a
	// request holds its worker for a while, as a real site's would.
	sitesLatency, sitesJitter = 20 * time.Millisecond, 20 * time.Millisecond
	// sitesSettle is how long after both sites' first requests the first window starts:
	// past the first bookings.
	sitesSettle = time.Second
)

// sitesBudgets are the sites of the two-site run and their intervals.
var sitesBudgets = []struct {
	site     string
	interval time.Duration
}{
	{sitesim.SiteXSW, 50 * time.Millisecond},
	{sitesim.SiteCzbooks, 80 * time.Millisecond},
}

// runSites runs three fetcher processes serving two sites at once, each site with its own
// budget and enough books queued that neither runs dry, and reads each site's request log
// over the same windows: the rate achieved against the site's budget, the smallest gap,
// and the books synced.
func runSites(ctx context.Context, e *env, r *Results) error {
	o := e.opts
	fig := &TwoSites{Date: time.Now().UTC(), Load: loadAverage(), Fetchers: sitesFetchers, WorkersEach: politenessWorkers,
		WindowSeconds: o.politeWindow.Seconds(), SettleSeconds: sitesSettle.Seconds(), Chapters: sitesChapters, LatencyMS: ms(sitesLatency), JitterMS: ms(sitesJitter)}
	b, err := e.startBus("sites")
	if err != nil {
		return err
	}
	defer b.close()
	done, err := newTracker(b.nc)
	if err != nil {
		return err
	}
	defer done.close()

	// Each site gets books enough for the whole measurement at its full budget, half as
	// many again, and one per worker that may hold one when it ends.
	measured := sitesSettle + time.Duration(o.runs)*o.politeWindow + 2*time.Second
	vars := map[string]string{"NATS_URL": b.url(), "SOURCES": "", "BG_JOB_WORKERS": fmt.Sprint(politenessWorkers)}
	type simulated struct {
		budget   *SiteUtilisation
		interval time.Duration
		site     *sitesim.Site
		ids      []string
	}
	var sims []*simulated
	for _, sb := range sitesBudgets {
		cfg := sitesim.DefaultConfig()
		cfg.Site, cfg.Categories = sb.site, 1
		cfg.MinChapters, cfg.MaxChapters = sitesChapters, sitesChapters
		cfg.Latency, cfg.LatencyJitter = sitesLatency, sitesJitter
		perBook := 1
		if sb.site == sitesim.SiteXSW {
			perBook += (sitesChapters + cfg.ChaptersPerTOCPage - 1) / cfg.ChaptersPerTOCPage
		}
		cfg.BooksPerCategory = int(1.5*float64(measured)/float64(sb.interval))/perBook + sitesFetchers*politenessWorkers
		sim, err := sitesim.NewServer(cfg)
		if err != nil {
			return err
		}
		defer sim.Close()
		s := &simulated{interval: sb.interval, site: sim.Site(), ids: sitesim.BookIDs(cfg), budget: &SiteUtilisation{
			Site: sb.site, IntervalMS: ms(sb.interval), BudgetPerSecond: float64(time.Second) / float64(sb.interval), RequestsPerBook: perBook,
		}}
		s.budget.BooksQueued = len(s.ids)
		sims = append(sims, s)
		if vars["SOURCES"] != "" {
			vars["SOURCES"] += ","
		}
		vars["SOURCES"] += sb.site
		vars[config.SourceVar(sb.site, "URL")] = sim.URL()
		vars[config.SourceVar(sb.site, "RATE_LIMIT")] = sb.interval.String()
	}

	procs, err := startFetchers(ctx, e, b.js, "sites", sitesFetchers, vars)
	defer procs.stop()
	if err != nil {
		return err
	}
	for _, s := range sims {
		s.site.Reset()
		if err := publishRequests(ctx, b.js, s.budget.Site, s.ids); err != nil {
			return err
		}
	}
	err = proctest.Poll(ctx, 30*time.Second, "requests at both sites", func() (bool, error) {
		for _, s := range sims {
			if s.site.Count() == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	select {
	case <-time.After(sitesSettle):
	case <-ctx.Done():
		return ctx.Err()
	}

	// The windows follow each other; each site's requests are counted by their arrival
	// times in its own log.
	type window struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
	}
	var windows []window
	for range o.runs {
		w := window{From: time.Now()}
		select {
		case <-time.After(o.politeWindow):
		case <-ctx.Done():
			return ctx.Err()
		}
		w.To = time.Now()
		if late := w.To.Sub(w.From) - o.politeWindow; late > 50*time.Millisecond {
			// The harness's own timer was held up: so were the sites it serves and the
			// NATS server, and the window's figures show the machine, not the fetchers.
			e.log.Warn("two sites: the harness was held up; the machine is overloaded", "window", len(windows)+1, "late", late.Round(time.Millisecond))
		}
		windows = append(windows, w)
	}
	end := windows[len(windows)-1].To
	for _, p := range procs {
		if err := p.Alive(); err != nil {
			return err
		}
	}
	for _, s := range sims {
		all := s.site.Requests()
		f := s.budget
		// The site's whole log, windows marked, for a closer look at a figure.
		if err := writeJSON(filepath.Join(o.outDir, "sites-"+f.Site+"-requests.json"), map[string]any{"windows": windows, "requests": all}); err != nil {
			e.log.Warn("write the request log", "site", f.Site, "err", err)
		}
		var rate, util, gap, inInterval, books []float64
		for i, w := range windows {
			var in []sitesim.Request
			for _, q := range all {
				if !q.Time.Before(w.From) && q.Time.Before(w.To) {
					in = append(in, q)
				}
			}
			sp := spacing(in, w.To.Sub(w.From), s.interval)
			n := done.fetchedBetween(f.Site, w.From, w.To)
			rate, util, gap = append(rate, sp.PerSecond), append(util, sp.PerSecond/f.BudgetPerSecond), append(gap, ms(sp.MinGap))
			inInterval, books = append(inInterval, float64(sp.MaxInInterval)), append(books, float64(n))
			f.BooksSynced += n
			for _, q := range in {
				if q.Status != 200 {
					f.Errors++
				}
			}
			e.log.Info("two sites", "site", f.Site, "window", i+1, "requests", sp.Count, "per_s", round(sp.PerSecond, 2),
				"budget_per_s", round(f.BudgetPerSecond, 2), "utilisation", round(sp.PerSecond/f.BudgetPerSecond, 3),
				"min_gap_ms", round(ms(sp.MinGap), 1), "max_in_interval", sp.MaxInInterval, "books", n)
		}
		f.AchievedPerSecond, f.Utilisation, f.MinGapMS = newSample(rate), newSample(util), newSample(gap)
		f.MaxInInterval, f.BooksPerWindow = newSample(inInterval), newSample(books)
		// Work was waiting all along only if, when the last window ended, more books were
		// left than the workers could hold between them.
		f.BooksDoneAtEnd = done.fetchedBetween(f.Site, time.Time{}, end)
		if left := f.BooksQueued - f.BooksDoneAtEnd; left <= sitesFetchers*politenessWorkers {
			return fmt.Errorf("%s ran out of work: %d of %d books synced when the measurement ended", f.Site, f.BooksDoneAtEnd, f.BooksQueued)
		}
		if f.BooksSynced == 0 {
			return fmt.Errorf("%s: no book synced in the windows (%d requests at the site; see the logs in %s)", f.Site, len(all), o.outDir)
		}
		fig.Sites = append(fig.Sites, *f)
	}
	fig.TookSeconds = time.Since(fig.Date).Seconds()
	r.TwoSites = fig
	return nil
}
