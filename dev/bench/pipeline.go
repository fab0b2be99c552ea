package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/dev/allinone"
	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/logging"
)

// dedupWindow is SYNC_DEDUP_WINDOW of the in-process all-in-one: short, so that a
// resync after the window can be measured.
const dedupWindow = 5 * time.Second

// warmBooks are synced before the measured runs of a scenario, to open connections and
// fill pools.
const warmBooks = 20

// pipelineRun is what one measured run of the pipeline saw.
type pipelineRun struct {
	seconds float64
	// fetched is when the last book's completed job event arrived.
	fetched      float64
	siteRequests int
	walBytes     int64
	selfCores    float64
	machineBusy  float64
	allocBytes   uint64
}

// inProcess is the all-in-one running in the harness's process, with what the harness
// needs to drive and watch it.
type inProcess struct {
	*allinone.Instance
	nc      *nats.Conn
	js      jetstream.JetStream
	db      *pgxpool.Pool
	tracker *tracker
	logFile *os.File
}

// startInProcess runs the all-in-one in demo mode on site with the politeness limit off.
func startInProcess(ctx context.Context, e *env, site sitesim.Config) (*inProcess, error) {
	dsn, err := e.schema(ctx, "pipeline")
	if err != nil {
		return nil, err
	}
	dataDir, err := e.dataDir("allinone")
	if err != nil {
		return nil, err
	}
	addr, err := proctest.LoopbackAddr()
	if err != nil {
		return nil, err
	}
	vars := map[string]string{
		"DATABASE_URL":      dsn,
		"DATA_DIR":          dataDir,
		"HTTP_ADDR":         addr,
		"BG_JOB_RATE_LIMIT": "0",
		"BG_JOB_WORKERS":    strconv.Itoa(e.opts.workers),
		"XSW_ADMIN_TOKEN":   "bench",
		"SYNC_DEDUP_WINDOW": dedupWindow.String(),
		"API_RATE_LIMIT":    "0", "API_SOURCE_RATE_LIMIT": "0",
		"LOG_LEVEL": "info",
	}
	p := &inProcess{}
	if p.logFile, err = os.Create(filepath.Join(e.opts.outDir, "pipeline-allinone.log")); err != nil {
		return nil, err
	}
	logger, err := logging.New(p.logFile, "info", "text")
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		p.Instance, err = allinone.Start(sctx, allinone.Options{Getenv: config.Map(vars), Demo: true, Site: &site}, logger)
		cancel()
	}
	if err == nil {
		p.nc, err = nats.Connect(p.NATSURL, nats.Name("xsw-bench"))
	}
	if err == nil {
		p.js, err = jetstream.New(p.nc)
	}
	if err == nil {
		p.tracker, err = newTracker(p.nc)
	}
	if err == nil {
		p.db, err = pgxpool.New(ctx, dsn)
	}
	if err != nil {
		_ = p.stop()
		return nil, err
	}
	return p, nil
}

// stop stops what startInProcess started.
func (p *inProcess) stop() error {
	if p.tracker != nil {
		p.tracker.close()
	}
	if p.nc != nil {
		p.nc.Close()
	}
	if p.db != nil {
		p.db.Close()
	}
	var err error
	if p.Instance != nil {
		err = p.Instance.Stop(30 * time.Second)
	}
	p.logFile.Close()
	return err
}

// syncBooks queues ids as prefetch requests and waits until every book is stored.
func (p *inProcess) syncBooks(ctx context.Context, ids []string, chapters int) (pipelineRun, error) {
	p.Site.Reset()
	lsn, err := walLSN(ctx, p.db)
	if err != nil {
		return pipelineRun{}, err
	}
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	meter := newCPUMeter()
	began := time.Now()
	if err := publishRequests(ctx, p.js, events.LegacySite, ids); err != nil {
		return pipelineRun{}, err
	}
	end, err := p.tracker.wait(ctx, ids, syncTimeout(len(ids), chapters))
	if err != nil {
		return pipelineRun{}, err
	}
	run := pipelineRun{seconds: end.Sub(began).Seconds(), siteRequests: p.Site.Count()}
	if f := p.tracker.lastFetched(ids); !f.IsZero() {
		run.fetched = f.Sub(began).Seconds()
	}
	run.selfCores, run.machineBusy = meter.read()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	run.allocBytes = ms1.TotalAlloc - ms0.TotalAlloc
	if n, err := incomplete(ctx, p.db, ids, chapters); err != nil || n > 0 {
		return run, fmt.Errorf("announced complete but %d of %d books are not fully stored (%v)", n, len(ids), err)
	}
	if run.walBytes, err = walSince(ctx, p.db, lsn); err != nil {
		return run, err
	}
	return run, nil
}

// syncTimeout bounds one run generously: a run this slow is broken, not slow.
func syncTimeout(books, chapters int) time.Duration {
	return 60*time.Second + time.Duration(books*chapters)*time.Millisecond
}

// resync asks the gateway's admin API again for books already synced (force-resync or
// sync), waits until every job it queued has completed, and counts what reached the site
// per book. It returns the answers the API gave, by status.
func (p *inProcess) resync(ctx context.Context, ids []string, force bool) (perBook float64, answers map[string]int, err error) {
	p.Site.Reset()
	since := time.Now().Add(-time.Millisecond)
	path := "/xsw/api/admin/jobs/sync/"
	if force {
		path = "/xsw/api/admin/jobs/force-resync/"
	}
	client := newLoadClient(1)
	defer client.CloseIdleConnections()
	answers = map[string]int{}
	var queued []string
	for _, id := range ids {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.GatewayURL+path+id, nil)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+p.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		var answer struct {
			Status string `json:"status"`
		}
		err = json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return 0, nil, fmt.Errorf("POST %s%s: %d %v", path, id, resp.StatusCode, err)
		}
		answers[answer.Status]++
		if answer.Status == "queued" {
			queued = append(queued, id)
		}
	}
	if len(queued) > 0 {
		err = proctest.Poll(ctx, 2*time.Minute, fmt.Sprintf("%d resyncs completed", len(queued)), func() (bool, error) {
			n, err := finishedJobs(ctx, p.db, queued, "completed", since)
			return n == len(queued), err
		})
		if err != nil {
			return 0, nil, err
		}
	} else {
		time.Sleep(500 * time.Millisecond) // nothing was queued: give a stray request the time to show
	}
	return float64(p.Site.Count()) / float64(len(ids)), answers, nil
}

// afterWindow waits until the de-duplication window has passed since every book of ids
// was announced complete.
func (p *inProcess) afterWindow(ctx context.Context, ids []string) error {
	_, last := p.tracker.count(ids, p.tracker.complete)
	wait := time.Until(last.Add(dedupWindow + 200*time.Millisecond))
	if wait <= 0 {
		return nil
	}
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runPipeline measures the all-in-one syncing books of 50 and of 3,000 chapters with the
// politeness limit off, profiles it, and measures what a book costs the site and the
// database.
func runPipeline(ctx context.Context, e *env, r *Results) error {
	o := e.opts
	cfg := sitesim.DefaultConfig()
	cfg.Categories = 1
	small := warmBooks + o.runs*o.books50
	big := 1 + o.runs*o.books3000
	cfg.BooksPerCategory = small + big
	cfg.MinChapters, cfg.MaxChapters = 50, 50
	cfg.Validators = true
	ids := sitesim.BookIDs(cfg)
	cfg.BigBooks = map[string]int{}
	for _, id := range ids[small:] {
		cfg.BigBooks[id] = 3000
	}
	p, err := startInProcess(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := p.stop(); err != nil {
			e.log.Error("stop all-in-one", "err", err)
		}
	}()
	e.log.Info("all-in-one started in process", "started_in", p.StartedIn.Round(time.Millisecond))
	eff := &Efficiency{
		RequestsNew: map[string]float64{}, MinimumNew: map[string]float64{}, RequestsForced: map[string]float64{},
		RequestsAfterWindow: map[string]float64{}, WALBytesPerRef: map[string]Sample{}, Answers: map[string]map[string]int{},
	}
	r.Efficiency = eff

	measure := func(chapters int, warm []string, runs [][]string) error {
		name := fmt.Sprintf("pipeline-%d", chapters)
		if _, err := p.syncBooks(ctx, warm, chapters); err != nil {
			return fmt.Errorf("%s warm-up: %w", name, err)
		}
		prof, err := startProfiles(e.opts.outDir, name)
		if err != nil {
			return err
		}
		var books, refs, secs, fetched, cores, busy, alloc, reqs, wal []float64
		for i, ids := range runs {
			run, err := p.syncBooks(ctx, ids, chapters)
			if err != nil {
				_, _ = prof.stop()
				return fmt.Errorf("%s run %d: %w", name, i+1, err)
			}
			n := float64(len(ids))
			books = append(books, n/run.seconds)
			refs = append(refs, n*float64(chapters)/run.seconds)
			secs = append(secs, run.seconds)
			fetched = append(fetched, run.fetched)
			cores = append(cores, run.selfCores)
			busy = append(busy, run.machineBusy)
			alloc = append(alloc, float64(run.allocBytes)/n/1024)
			reqs = append(reqs, float64(run.siteRequests)/n)
			wal = append(wal, float64(run.walBytes)/(n*float64(chapters)))
			e.log.Info(name, "run", i+1, "books", len(ids), "seconds", round(run.seconds, 3), "fetched_at", round(run.fetched, 3),
				"books_per_s", round(n/run.seconds, 1), "refs_per_s", round(n*float64(chapters)/run.seconds, 0),
				"process_cores", round(run.selfCores, 2), "machine_busy", round(run.machineBusy, 2))
		}
		summaries, err := prof.stop()
		if err != nil {
			return err
		}
		r.Profiles = append(r.Profiles, summaries...)
		r.Pipeline = append(r.Pipeline, Pipeline{
			Mode: "all-in-one, in the harness process", Chapters: chapters, Books: len(runs[0]), Workers: o.workers,
			BooksPerSecond: newSample(books), RefsPerSecond: newSample(refs), Seconds: newSample(secs), FetchedSeconds: newSample(fetched),
			ProcessCores: newSample(cores), MachineBusy: newSample(busy), AllocKBPerBook: newSample(alloc),
		})
		key := strconv.Itoa(chapters)
		eff.RequestsNew[key] = median(reqs)
		eff.MinimumNew[key] = float64(1 + (chapters+cfg.ChaptersPerTOCPage-1)/cfg.ChaptersPerTOCPage)
		eff.WALBytesPerRef[key] = newSample(wal)
		return nil
	}

	runs50 := chunk(ids[warmBooks:small], o.books50)
	if err := measure(50, ids[:warmBooks], runs50); err != nil {
		return err
	}
	// An unchanged book asked for again through the admin API: unforced within the
	// window (the last run's books), unforced after it (the first run's), forced.
	n := min(20, o.books50)
	resync := func(key string, ids []string, force, after bool) (float64, error) {
		if after {
			if err := p.afterWindow(ctx, ids); err != nil {
				return 0, err
			}
		}
		perBook, answers, err := p.resync(ctx, ids, force)
		if err != nil {
			return 0, fmt.Errorf("%s resync: %w", key, err)
		}
		eff.Answers[key] = answers
		return perBook, nil
	}
	if eff.RequestsRecent, err = resync("unforced, within the window", runs50[len(runs50)-1][:n], false, false); err != nil {
		return err
	}
	if eff.RequestsAfterWindow["50"], err = resync("unforced, after the window, 50 chapters", runs50[0][:n], false, true); err != nil {
		return err
	}
	if eff.RequestsForced["50"], err = resync("forced, 50 chapters", runs50[min(1, len(runs50)-1)][:n], true, false); err != nil {
		return err
	}

	runs3000 := chunk(ids[small+1:], o.books3000)
	if err := measure(3000, ids[small:small+1], runs3000); err != nil {
		return err
	}
	if eff.RequestsAfterWindow["3000"], err = resync("unforced, after the window, 3000 chapters", runs3000[0][:1], false, true); err != nil {
		return err
	}
	if eff.RequestsForced["3000"], err = resync("forced, 3000 chapters", runs3000[0][1:2], true, false); err != nil {
		return err
	}

	// Where a cached read's time goes: the gateway in this process, loaded as the reads
	// scenario loads the gateway process (the load generator is in the profile too).
	url := p.GatewayURL + "/xsw/api/books/" + runs50[0][0]
	if err := waitHTTP(ctx, url, 30*time.Second); err != nil {
		return err
	}
	client := newGenerator(o.concurrency)
	defer client.CloseIdleConnections()
	if _, err := closedLoop(ctx, client, url, o.concurrency, time.Second); err != nil {
		return err
	}
	prof, err := startProfiles(o.outDir, "gateway-book-read")
	if err != nil {
		return err
	}
	read, err := closedLoop(ctx, client, url, o.concurrency, o.readDuration)
	summaries, perr := prof.stop()
	if err = errors.Join(err, perr); err != nil {
		return err
	}
	generator := 0.0 // the load generator's share: its goroutines, which do its I/O too
	for _, c := range summaries[0].Components {
		if c.Name == "harness" {
			generator += c.Percent
		}
	}
	for i := range summaries {
		summaries[i].Note = fmt.Sprintf("Cached book reads (`GET /xsw/api/books/{id}`) from the all-in-one in the harness's process, %d connections: %s req/s, p99 %.2f ms here. The load generator shares the process: it took %.0f%% of the CPU samples (harness).",
			o.concurrency, num(read.PerSecond(), 0), ms(read.Latency.P99), generator)
	}
	r.Profiles = append(r.Profiles, summaries...)
	e.log.Info("gateway book reads, in process (profiled)", "requests_per_s", round(read.PerSecond(), 0), "p99_ms", round(ms(read.Latency.P99), 3))

	var heap, index, total, count int64
	err = p.db.QueryRow(ctx, `SELECT pg_relation_size('chapters'), pg_indexes_size('chapters'),
		pg_total_relation_size('chapters'), (SELECT count(*) FROM chapters)`).Scan(&heap, &index, &total, &count)
	if err != nil {
		return err
	}
	if count > 0 {
		eff.HeapBytesPerChapter = float64(heap) / float64(count)
		eff.IndexBytesPerChapter = float64(index) / float64(count)
		eff.TotalBytesPerChapter = float64(total) / float64(count)
	}
	return nil
}

// chunk splits ids into pieces of n.
func chunk(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) >= n && n > 0 {
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	return out
}

func round(v float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return f
}
