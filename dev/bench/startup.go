package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/dev/sitesim"
)

// runAllInOne starts the xsw binary as a process several times, each on a fresh schema
// and JetStream store, against the simulated site served by the harness: its start-up
// time. The last start then syncs books queued through the admin API, and the process's
// peak RSS is read at the end.
func runAllInOne(ctx context.Context, e *env, r *Results) error {
	o := e.opts
	cfg := sitesim.DefaultConfig()
	cfg.Categories = 1
	cfg.BooksPerCategory = warmBooks + o.books50
	cfg.MinChapters, cfg.MaxChapters = 50, 50
	cfg.Validators = true
	sim, err := sitesim.NewServer(cfg)
	if err != nil {
		return err
	}
	defer sim.Close()
	var startedIn, toReady []float64
	for i := 1; i <= o.runs; i++ {
		last := i == o.runs
		s, err := startAllInOne(ctx, e, sim.URL(), i)
		if err != nil {
			return err
		}
		startedIn, toReady = append(startedIn, ms(s.startedIn)), append(toReady, ms(s.execToReady))
		e.log.Info("all-in-one process ready", "start", i, "started_in_ms", round(ms(s.startedIn), 1), "exec_to_ready_ms", round(ms(s.execToReady), 1))
		if last {
			err = s.pipeline(ctx, e, r, sitesim.BookIDs(cfg))
		}
		if stopErr := stop(s.proc, 15*time.Second); err == nil {
			err = stopErr
		}
		s.db.Close()
		if err != nil {
			return err
		}
	}
	r.Footprint.StartedInMS, r.Footprint.ExecToReadyMS = newSample(startedIn), newSample(toReady)
	return nil
}

type allInOneProcess struct {
	proc                   *proctest.Process
	url                    string
	db                     *pgxpool.Pool
	startedIn, execToReady time.Duration
}

// startAllInOne starts the xsw binary on a fresh schema and store and waits for its
// ready line, which says how long its start took (allinone.Running.StartedIn).
func startAllInOne(ctx context.Context, e *env, siteURL string, n int) (*allInOneProcess, error) {
	dsn, err := e.schema(ctx, "allinone")
	if err != nil {
		return nil, err
	}
	dataDir, err := e.dataDir("xsw")
	if err != nil {
		return nil, err
	}
	addr, err := proctest.LoopbackAddr()
	if err != nil {
		return nil, err
	}
	p, err := e.start(fmt.Sprintf("allinone-%d", n), "xsw", map[string]string{
		"DATABASE_URL": dsn, "DATA_DIR": dataDir, "HTTP_ADDR": addr, "BASE_URL": siteURL,
		"BG_JOB_RATE_LIMIT": "0", "BG_JOB_WORKERS": strconv.Itoa(e.opts.workers), "XSW_ADMIN_TOKEN": "bench",
		"API_RATE_LIMIT": "0", "API_SOURCE_RATE_LIMIT": "0", "LOG_FORMAT": "json", "LOG_LEVEL": "info",
	}, "run")
	if err != nil {
		return nil, err
	}
	s := &allInOneProcess{proc: p, url: "http://" + addr}
	line, err := p.WaitLog(ctx, 90*time.Second, `"msg":"xsw ready"`)
	if err == nil {
		var ready struct {
			Time      time.Time `json:"time"`
			StartedIn int64     `json:"started_in"` // slog writes durations as nanoseconds
		}
		if err = json.Unmarshal([]byte(line), &ready); err != nil {
			err = fmt.Errorf("ready line %q: %w", line, err)
		}
		s.startedIn, s.execToReady = time.Duration(ready.StartedIn), ready.Time.Sub(p.Started())
	}
	if err == nil {
		s.db, err = pgxpool.New(ctx, dsn)
	}
	if err != nil {
		_ = stop(p, 5*time.Second)
		return nil, err
	}
	return s, nil
}

// pipeline queues books through the admin API (manual lane), waits until Postgres holds
// them all, and reads the process's peak RSS.
func (s *allInOneProcess) pipeline(ctx context.Context, e *env, r *Results, ids []string) error {
	const chapters = 50
	client := newLoadClient(8)
	defer client.CloseIdleConnections()
	queue := func(ids []string) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for _, id := range ids {
			g.Go(func() error {
				req, err := http.NewRequestWithContext(gctx, http.MethodPost, s.url+"/xsw/api/admin/jobs/sync/"+id, nil)
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", "Bearer bench")
				_, err = hit(client, req)
				return err
			})
		}
		return g.Wait()
	}
	var queued time.Duration
	sync := func(ids []string) (float64, error) {
		began := time.Now()
		if err := queue(ids); err != nil {
			return 0, err
		}
		queued = time.Since(began)
		// A cheap poll (the sync's completion is indexed after all its pages), then the
		// full check.
		err := proctest.Poll(ctx, syncTimeout(len(ids), chapters), fmt.Sprintf("%d books stored", len(ids)), func() (bool, error) {
			n, err := syncedBooks(ctx, s.db, ids)
			return n == len(ids), err
		})
		secs := time.Since(began).Seconds()
		if err != nil {
			return 0, err
		}
		if n, err := incomplete(ctx, s.db, ids, chapters); err != nil || n > 0 {
			return 0, fmt.Errorf("synced but %d of %d books are not fully stored (%v)", n, len(ids), err)
		}
		return secs, nil
	}
	if _, err := sync(ids[:warmBooks]); err != nil {
		return fmt.Errorf("all-in-one process warm-up: %w", err)
	}
	run := ids[warmBooks:]
	meter := newCPUMeter()
	secs, err := sync(run)
	if err != nil {
		return fmt.Errorf("all-in-one process: %w", err)
	}
	_, busy := meter.read()
	n := float64(len(run))
	r.PipelineAllInOne = &Pipeline{
		Mode: "xsw all-in-one as a process, queued through the admin API (1 run)", Chapters: chapters, Books: len(run),
		Workers: e.opts.workers, BooksPerSecond: newSample([]float64{n / secs}), RefsPerSecond: newSample([]float64{n * chapters / secs}),
		Seconds: newSample([]float64{secs}), MachineBusy: newSample([]float64{busy}), QueueSeconds: queued.Seconds(),
	}
	e.log.Info("all-in-one process pipeline", "books", len(run), "seconds", round(secs, 3), "queued_in", queued.Round(time.Millisecond), "books_per_s", round(n/secs, 1))
	return peakRSS(r, "all-in-one", s.proc)
}
