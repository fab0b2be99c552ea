package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/events"
)

// runServices runs gateway, fetcher and indexer as separate processes against NATS and
// the simulated site served by the harness, and measures the pipeline, the gateway's
// cached reads, listing latency with an empty and a deep queue, and each process's peak
// RSS.
func runServices(ctx context.Context, e *env, r *Results) error {
	o := e.opts
	b, err := e.startBus("services")
	if err != nil {
		return err
	}
	defer b.close()
	cfg := sitesim.DefaultConfig()
	cfg.Categories = 2
	cfg.BooksPerCategory = max(warmBooks+o.runs*o.books50, cfg.BooksPerPage) + 10
	cfg.MinChapters, cfg.MaxChapters = 50, 50
	cfg.Validators = true
	sim, err := sitesim.NewServer(cfg)
	if err != nil {
		return err
	}
	defer sim.Close()
	dsn, err := e.schema(ctx, "services")
	if err != nil {
		return err
	}
	addr, err := proctest.LoopbackAddr()
	if err != nil {
		return err
	}
	gatewayURL := "http://" + addr
	start := func(name string, vars map[string]string) (*proctest.Process, error) {
		maps.Copy(vars, map[string]string{"NATS_URL": b.url(), "DATABASE_URL": dsn, "BASE_URL": sim.URL(), "LOG_LEVEL": "info", "SHUTDOWN_TIMEOUT": "2s"})
		return e.start(name, name, vars)
	}
	ix, err := start("indexer", map[string]string{"INDEXER_HEALTH_ADDR": "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer stop(ix, 10*time.Second)
	gw, err := start("gateway", map[string]string{
		"HTTP_ADDR": addr, "API_RATE_LIMIT": "0", "API_SOURCE_RATE_LIMIT": "0", "LISTING_CACHE_TTL": "1h", "XSW_ADMIN_TOKEN": "bench",
	})
	if err != nil {
		return err
	}
	defer stop(gw, 10*time.Second)
	fe, err := start("fetcher", map[string]string{
		"FETCHER_HEALTH_ADDR": "127.0.0.1:0", "BG_JOB_RATE_LIMIT": "0", "BG_JOB_WORKERS": strconv.Itoa(o.workers), "FETCHER_ID": "bench-fetcher",
	})
	if err != nil {
		return err
	}
	defer stop(fe, 10*time.Second)
	if err := waitHTTP(ctx, gatewayURL+"/readyz", 60*time.Second); err != nil {
		return fmt.Errorf("gateway: %w (%v)", err, gw.Alive())
	}
	if err := waitFetcher(ctx, b.nc, 60*time.Second); err != nil {
		return fmt.Errorf("fetcher: %w (%v)", err, fe.Alive())
	}
	tr, err := newTracker(b.nc)
	if err != nil {
		return err
	}
	defer tr.close()
	db, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()

	// The pipeline takes books of category 2; the listing measured is category 1's
	// first page, whose books are never synced.
	var pipelineIDs []string
	for _, bk := range sim.Site().Books() {
		if bk.Category == 2 {
			pipelineIDs = append(pipelineIDs, bk.ID)
		}
	}
	procs := map[string]*proctest.Process{"fetcher": fe, "indexer": ix, "gateway": gw}
	if r.PipelineProcesses, err = processPipeline(ctx, e, tr, b.js, db, procs, pipelineIDs); err != nil {
		return err
	}
	e.settle(ctx, "gateway reads")
	if r.Reads, err = measureReads(ctx, e, gatewayURL, pipelineIDs[0]); err != nil {
		return err
	}

	listing := "/xsw/api/categories/1/books?page=1"
	if err := waitHTTP(ctx, gatewayURL+listing+"&bg_sync=false", 30*time.Second); err != nil {
		return fmt.Errorf("fill the listing cache: %w", err)
	}
	if err := peakRSS(r, "fetcher", fe); err != nil {
		return err
	}
	// No fetcher from here on: queued requests stay queued.
	if err := stop(fe, 10*time.Second); err != nil {
		return err
	}
	listingFig, profs, err := measureListing(ctx, e, b.js, b.url(), gatewayURL, listing)
	if err != nil {
		return err
	}
	r.Listing, r.Profiles = listingFig, append(r.Profiles, profs...)
	return errors.Join(peakRSS(r, "gateway", gw), peakRSS(r, "indexer", ix))
}

// peakRSS notes the peak RSS of p so far as the footprint of name.
func peakRSS(r *Results, name string, p *proctest.Process) error {
	rss, err := p.PeakRSS()
	if err != nil {
		return err
	}
	if r.Footprint.PeakRSSMB == nil {
		r.Footprint.PeakRSSMB = map[string]float64{}
	}
	r.Footprint.PeakRSSMB[name] = float64(rss) / (1 << 20)
	return nil
}

// processPipeline syncs books through the fetcher and indexer processes and measures
// throughput and each process's CPU time per book.
func processPipeline(ctx context.Context, e *env, tr *tracker, js jetstream.JetStream, db *pgxpool.Pool, procs map[string]*proctest.Process, ids []string) (*Pipeline, error) {
	o := e.opts
	const chapters = 50
	if len(ids) < warmBooks+o.runs*o.books50 {
		return nil, fmt.Errorf("only %d books for the pipeline", len(ids))
	}
	sync := func(ids []string) (secs, fetched float64, err error) {
		began := time.Now()
		if err := publishRequests(ctx, js, events.LegacySite, ids); err != nil {
			return 0, 0, err
		}
		end, err := tr.wait(ctx, ids, syncTimeout(len(ids), chapters))
		if err != nil {
			return 0, 0, err
		}
		if n, err := incomplete(ctx, db, ids, chapters); err != nil || n > 0 {
			return 0, 0, fmt.Errorf("announced complete but %d of %d books are not fully stored (%v)", n, len(ids), err)
		}
		if f := tr.lastFetched(ids); !f.IsZero() {
			fetched = f.Sub(began).Seconds()
		}
		return end.Sub(began).Seconds(), fetched, nil
	}
	if _, _, err := sync(ids[:warmBooks]); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	fig := &Pipeline{Mode: "gateway, fetcher and indexer as processes", Chapters: chapters, Books: o.books50, Workers: o.workers,
		CPUMsPerBook: map[string]Sample{}}
	var books, refs, secs, fetched, busy []float64
	cpu := map[string][]float64{}
	const harness, rest = "harness (NATS server, simulated site)", "rest of the machine (Postgres, anything else)"
	for i, run := range chunk(ids[warmBooks:warmBooks+o.runs*o.books50], o.books50) {
		before := map[string]time.Duration{}
		for name, p := range procs {
			if before[name], _ = p.CPUTime(); p.Alive() != nil {
				return nil, p.Alive()
			}
		}
		meter := newCPUMeter()
		s, f, err := sync(run)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		selfCores, machineBusy := meter.read()
		wall := time.Since(meter.began)
		n := float64(len(run))
		books, refs, secs, busy = append(books, n/s), append(refs, n*chapters/s), append(secs, s), append(busy, machineBusy)
		fetched = append(fetched, f)
		ours := selfCores * wall.Seconds()
		cpu[harness] = append(cpu[harness], 1000*ours/n)
		for name, p := range procs {
			after, _ := p.CPUTime()
			d := (after - before[name]).Seconds()
			ours += d
			cpu[name] = append(cpu[name], 1000*d/n)
		}
		all := machineBusy * wall.Seconds() * float64(runtime.NumCPU())
		cpu[rest] = append(cpu[rest], 1000*max(all-ours, 0)/n)
		e.log.Info("pipeline (processes)", "run", i+1, "books", len(run), "seconds", round(s, 3), "books_per_s", round(n/s, 1))
	}
	fig.BooksPerSecond, fig.RefsPerSecond, fig.Seconds, fig.MachineBusy = newSample(books), newSample(refs), newSample(secs), newSample(busy)
	fig.FetchedSeconds = newSample(fetched)
	for name, v := range cpu {
		fig.CPUMsPerBook[name] = newSample(v)
	}
	return fig, nil
}

// measureReads loads the gateway with cached reads of one synced book at a fixed
// concurrency.
func measureReads(ctx context.Context, e *env, gatewayURL, bookID string) ([]Reads, error) {
	o := e.opts
	cases := []struct{ name, path string }{
		{"book", "/xsw/api/books/" + bookID},
		{"chapter list page", "/xsw/api/books/" + bookID + "/chapters?page=2"},
		{"chapter text (stored)", "/xsw/api/books/" + bookID + "/chapters/1"},
	}
	client := newGenerator(o.concurrency)
	defer client.CloseIdleConnections()
	var out []Reads
	for _, c := range cases {
		url := gatewayURL + c.path
		// The first read fills the cache (the chapter text is fetched, then stored).
		if err := waitHTTP(ctx, url, 90*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		if _, err := closedLoop(ctx, client, url, o.concurrency, time.Second); err != nil {
			return nil, err
		}
		fig := Reads{Name: c.name, Path: c.path, Concurrency: o.concurrency, Seconds: o.readDuration.Seconds()}
		var rps, p50, p99 []float64
		for i := 0; i < o.runs; i++ {
			run, err := closedLoop(ctx, client, url, o.concurrency, o.readDuration)
			if err != nil {
				return nil, err
			}
			rps, p50, p99 = append(rps, run.PerSecond()), append(p50, ms(run.Latency.P50)), append(p99, ms(run.Latency.P99))
			fig.Errors += run.Errors
			if fig.FirstError == "" {
				fig.FirstError = run.FirstError
			}
			e.log.Info("gateway reads", "case", c.name, "run", i+1, "requests_per_s", round(run.PerSecond(), 0),
				"p50_ms", round(ms(run.Latency.P50), 3), "p99_ms", round(ms(run.Latency.P99), 3), "errors", run.Errors)
		}
		fig.PerSecond, fig.P50MS, fig.P99MS = newSample(rps), newSample(p50), newSample(p99)
		out = append(out, fig)
	}
	return out, nil
}

// measureListing measures the cached listing at a fixed arrival rate, first with an empty
// queue, then with QueueDepth requests waiting. No fetcher runs: nothing leaves the queue.
func measureListing(ctx context.Context, e *env, js jetstream.JetStream, natsURL, gatewayURL, path string) (fig *Listing, profs []ProfileSummary, err error) {
	o := e.opts
	url := gatewayURL + path
	client := newGenerator(64)
	defer client.CloseIdleConnections()
	fig = &Listing{Path: path, Rate: o.listingRate, Seconds: o.listingDuration.Seconds()}
	measure := func(label string, l *ListingLatency) error {
		e.settle(ctx, "listing, "+label+" queue")
		// Two seconds at the same rate first, for both queues alike: with the empty queue
		// the first requests queue the listed books (from then on each listing finds them
		// waiting); with the deep one the server settles after taking 10,000 messages.
		if _, err := openLoop(ctx, client, url, o.listingRate, 2*time.Second, 64); err != nil {
			return err
		}
		// The NATS server runs in this process: the profiles show what the gateway's
		// background requests cost it with and without the deep queue.
		prof, err := startProfiles(o.outDir, "listing-"+label+"-queue")
		if err != nil {
			return err
		}
		var p50, p99, mx []float64
		for i := 0; i < o.listingRuns; i++ {
			run, err := openLoop(ctx, client, url, o.listingRate, o.listingDuration, 64)
			if err != nil {
				_, _ = prof.stop()
				return err
			}
			p50, p99, mx = append(p50, ms(run.Latency.P50)), append(p99, ms(run.Latency.P99)), append(mx, ms(run.Latency.Max))
			l.Errors += run.Errors
			if l.FirstError == "" {
				l.FirstError = run.FirstError
			}
			e.log.Info("listing", "queue", label, "run", i+1, "p50_ms", round(ms(run.Latency.P50), 3),
				"p99_ms", round(ms(run.Latency.P99), 3), "errors", run.Errors)
		}
		summaries, err := prof.stop()
		if err != nil {
			return err
		}
		cpu := summaries[0] // CPU only
		cpu.Note = "The harness's process only: the embedded NATS server answering the gateway process's background requests, and the load generator. Compare the empty and the deep queue."
		profs = append(profs, cpu)
		l.P50MS, l.P99MS, l.MaxMS = newSample(p50), newSample(p99), newSample(mx)
		l.Waiting, err = requestsWaiting(ctx, js)
		return err
	}
	if err := measure("empty", &fig.Empty); err != nil {
		return nil, nil, err
	}
	deep := make([]published, o.queueDepth)
	now := time.Now()
	for i := range deep {
		req := events.NewBookRequested("xsw", strconv.Itoa(9_000_000+i), events.LanePrefetch, 0, false, "bench", now) // not on the site
		deep[i] = published{req.Subject(), req.MsgID(), &req}
	}
	// Queued by a connection of its own, closed before the measurement, as other
	// gateways would have queued them: nothing of the publishing stays in the server.
	began := time.Now()
	if err := fillQueue(ctx, natsURL, deep); err != nil {
		return nil, nil, err
	}
	waiting, err := requestsWaiting(ctx, js)
	if err != nil {
		return nil, nil, err
	}
	e.log.Info("queue filled", "requests_waiting", waiting, "took", time.Since(began).Round(time.Millisecond))
	if err := measure("deep", &fig.Queued); err != nil {
		return nil, nil, err
	}
	fig.QueueDepth = fig.Queued.Waiting
	if fig.Empty.P99MS.Median > 0 {
		fig.P99Ratio = fig.Queued.P99MS.Median / fig.Empty.P99MS.Median
	}
	return fig, profs, nil
}

// fillQueue publishes msgs through a connection of its own, then closes it.
func fillQueue(ctx context.Context, natsURL string, msgs []published) error {
	nc, err := nats.Connect(natsURL, nats.Name("xsw-bench-queue"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return publishAll(ctx, js, msgs)
}
