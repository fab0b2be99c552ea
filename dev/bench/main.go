// Command bench is xsw's end-to-end benchmark harness: it measures the pipeline, the
// indexer, the gateway, politeness, efficiency and footprint against the simulated site
// on loopback, and profiles the pipeline. It writes every run of every figure to
// dev/bench/out/results.json (not committed) and renders BENCHMARKS.md (committed: the
// record) and the README's headline figures from it. `make bench` runs the Go benchmarks
// first and hands their output to it (-gobench).
//
// It needs Go (it builds the service binaries) and a PostgreSQL server, on which it
// creates a database of its own and drops it at the end. Everything else runs on
// loopback: an embedded NATS server, the simulated site, the services in this process or
// as child processes, all stopped before it returns.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	root, outDir, mdPath, jsonPath, changesPath, goBench string
	hotspotsPath                                         string
	readme                                               string
	renderOnly                                           bool
	database                                             string
	only                                                 []string
	budget                                               time.Duration

	runs, listingRuns, workers, books50, books3000 int
	indexerBooks                                   int
	concurrency, queueDepth                        int
	readDuration, listingDuration                  time.Duration
	listingRate                                    float64
	politeInterval, politeWindow                   time.Duration
}

// scenario is one part of the harness; each fills its part of the results.
type scenario struct {
	name string
	run  func(context.Context, *env, *Results) error
}

var scenarios = []scenario{
	{"pipeline", runPipeline},
	{"indexer", runIndexerBacklog},
	{"services", runServices},
	{"politeness", runPoliteness},
	{"sites", runSites},
	{"allinone", runAllInOne},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2) //nolint:gocritic // the deferred stop only ends the signal notification, as exiting does
	}
	if o.renderOnly {
		if err := rerender(o, logger); err != nil {
			logger.Error("render failed", "err", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, o, logger); err != nil {
		logger.Error("bench failed", "err", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	root, _ := findRoot()
	fs.StringVar(&o.root, "root", root, "the repository (where go.work is)")
	fs.StringVar(&o.outDir, "out", "", "profiles and logs (default <root>/dev/bench/out)")
	fs.StringVar(&o.mdPath, "md", "", "the report to write (default <root>/BENCHMARKS.md)")
	fs.StringVar(&o.jsonPath, "json", "", "the results to write, or with -render to read (default <out>/results.json)")
	fs.StringVar(&o.changesPath, "changes", "", "notes on what changed, included in the report (default <root>/dev/bench/changes.md)")
	fs.StringVar(&o.hotspotsPath, "hotspots", "", "a reading of the profiles, included in the report (default <root>/dev/bench/hotspots.md)")
	fs.StringVar(&o.goBench, "gobench", "", "output of `go test -bench` to include in the report")
	fs.StringVar(&o.readme, "readme", "", "the README whose headline block ("+headlineStart+") to rewrite (default <root>/README.md; \"none\" leaves it)")
	fs.StringVar(&o.database, "database", defaultDatabase(), "a PostgreSQL server's maintenance database (BENCH_DATABASE_URL, TEST_DATABASE_URL, DATABASE_URL)")
	fs.BoolVar(&o.renderOnly, "render", false, "measure nothing: rewrite the report and the README's block from -json (after editing the notes)")
	only := fs.String("only", "", "comma-separated scenarios to run: "+scenarioNames()+" (default all; a partial run writes under <out>/partial unless -md and -json say otherwise, and leaves the README)")
	fs.DurationVar(&o.budget, "budget", 12*time.Minute, "give up on what is left after this long")
	fs.IntVar(&o.runs, "runs", 3, "runs per figure (the report shows the median)")
	fs.IntVar(&o.workers, "workers", 16, "BG_JOB_WORKERS of the fetchers in the throughput runs")
	fs.IntVar(&o.books50, "books50", 300, "books of 50 chapters per pipeline run")
	fs.IntVar(&o.books3000, "books3000", 8, "books of 3,000 chapters per pipeline run")
	fs.IntVar(&o.indexerBooks, "indexer-books", 30, "books of 3,000 chapters per indexer run")
	fs.IntVar(&o.concurrency, "concurrency", 32, "connections of the gateway read runs")
	fs.DurationVar(&o.readDuration, "read-duration", 3*time.Second, "length of one gateway read run")
	fs.Float64Var(&o.listingRate, "listing-rate", 50, "listing requests per second")
	fs.DurationVar(&o.listingDuration, "listing-duration", 8*time.Second, "length of one listing run")
	fs.IntVar(&o.listingRuns, "listing-runs", 5, "listing runs per queue (p99 of a short run is noisy)")
	fs.IntVar(&o.queueDepth, "queue", 10000, "requests waiting in the deep-queue listing runs")
	fs.DurationVar(&o.politeInterval, "polite-interval", 100*time.Millisecond, "BG_JOB_RATE_LIMIT of the politeness runs")
	fs.DurationVar(&o.politeWindow, "polite-window", 5*time.Second, "length of one politeness window (also of one two-site window)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.root == "" {
		return o, errors.New("no go.work found above the working directory: pass -root")
	}
	def := func(p *string, rel string) {
		if *p == "" {
			*p = filepath.Join(o.root, rel)
		}
	}
	def(&o.outDir, "dev/bench/out")
	def(&o.changesPath, "dev/bench/changes.md")
	def(&o.hotspotsPath, "dev/bench/hotspots.md")
	if *only != "" {
		// A partial run replaces neither the published figures nor the results they are
		// rendered from, unless told to.
		if o.mdPath == "" {
			o.mdPath = filepath.Join(o.outDir, "partial", "BENCHMARKS.md")
		}
		if o.jsonPath == "" {
			o.jsonPath = filepath.Join(o.outDir, "partial", "results.json")
		}
		if o.readme == "" {
			o.readme = "none"
		}
	}
	if o.jsonPath == "" {
		o.jsonPath = filepath.Join(o.outDir, "results.json")
	}
	def(&o.mdPath, "BENCHMARKS.md")
	def(&o.readme, "README.md")
	if *only != "" {
		o.only = strings.Split(*only, ",")
		for _, n := range o.only {
			if !slices.ContainsFunc(scenarios, func(s scenario) bool { return s.name == n }) {
				return o, fmt.Errorf("-only: no scenario %q (have %s)", n, scenarioNames())
			}
		}
	}
	if o.runs < 1 || o.listingRuns < 1 || o.books50 < 1 || o.books3000 < 1 || o.indexerBooks < 1 || o.concurrency < 1 || o.workers < 1 {
		return o, errors.New("-runs, -listing-runs, -books50, -books3000, -indexer-books, -concurrency and -workers must be positive")
	}
	return o, nil
}

func scenarioNames() string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

func defaultDatabase() string {
	for _, k := range []string{"BENCH_DATABASE_URL", "TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// findRoot walks up from the working directory to the directory holding go.work.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work")
		}
		dir = parent
	}
}

// run runs the scenarios chosen, each after the other, and writes the report. A scenario
// that fails (or runs out of the budget) is recorded in the report and the others still
// run; run then returns an error. An interrupted run writes nothing.
func run(sigCtx context.Context, o options, log *slog.Logger) error {
	began := time.Now()
	ctx, cancel := context.WithTimeout(sigCtx, o.budget)
	defer cancel()
	r := &Results{Settings: Settings{
		Runs: o.runs, FetcherWorkers: o.workers, Books50: o.books50, Books3000: o.books3000, IndexerBooks: o.indexerBooks,
		Concurrency: o.concurrency, ReadSeconds: o.readDuration.Seconds(), ListingRate: o.listingRate,
		ListingSeconds: o.listingDuration.Seconds(), QueueDepth: o.queueDepth,
		PolitenessInterval: o.politeInterval.Seconds(), PolitenessWindow: o.politeWindow.Seconds(),
	}}
	r.Machine = machine(ctx, o.database)
	if o.goBench != "" {
		f, err := os.Open(o.goBench)
		if err != nil {
			return err
		}
		var failed []string
		r.GoBench, failed, err = parseGoBench(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", o.goBench, err)
		}
		for _, f := range failed {
			r.Failures = append(r.Failures, "go test -bench: FAIL "+f)
		}
	}
	e, err := newEnv(ctx, o, log)
	if err != nil {
		return err
	}
	defer e.close()
	for _, s := range scenarios {
		if len(o.only) > 0 && !slices.Contains(o.only, s.name) {
			continue
		}
		if ctx.Err() != nil {
			r.Failures = append(r.Failures, fmt.Sprintf("%s: not run: %v", s.name, ctx.Err()))
			continue
		}
		e.settle(ctx, s.name)
		log.Info("scenario", "name", s.name)
		t := time.Now()
		if err := s.run(ctx, e, r); err != nil {
			log.Error("scenario failed", "name", s.name, "err", err)
			r.Failures = append(r.Failures, fmt.Sprintf("%s: %v", s.name, err))
			continue
		}
		log.Info("scenario done", "name", s.name, "took", time.Since(t).Round(time.Millisecond))
	}
	e.close()
	if sigCtx.Err() != nil {
		return errors.New("interrupted: nothing written")
	}
	r.Machine.LoadAfter = loadAverage()
	r.Targets = targets(r)
	r.TookSeconds = time.Since(began).Seconds()
	if err := write(o, r, log); err != nil {
		return err
	}
	if len(r.Failures) > 0 {
		return fmt.Errorf("%d scenarios failed: %s", len(r.Failures), strings.Join(r.Failures, "; "))
	}
	return nil
}

// write writes the results and renders the report from them, comparing the targets
// with those of the published report's run.
func write(o options, r *Results, log *slog.Logger) error {
	prev, err := readRecord(filepath.Join(o.root, "BENCHMARKS.md"))
	if err != nil {
		return err
	}
	r.Previous = prev
	if err := writeJSON(o.jsonPath, r); err != nil {
		return err
	}
	log.Info("written", "results", o.jsonPath)
	if err := publish(o, r, log); err != nil {
		return err
	}
	for _, t := range r.Targets {
		log.Info("target", "name", t.Name, "want", t.Want, "got", t.Got, "met", metText(t.Met))
	}
	return nil
}

// publish writes BENCHMARKS.md and the README's headline block from r.
func publish(o options, r *Results, log *slog.Logger) error {
	rep := report{Results: r}
	for p, path := range map[*string]string{&rep.Changes: o.changesPath, &rep.Hotspots: o.hotspotsPath} {
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		*p = string(b)
	}
	md, err := render("benchmarks", rep)
	if err != nil {
		return err
	}
	if err := writeFile(o.mdPath, md); err != nil {
		return err
	}
	log.Info("written", "report", o.mdPath)
	if o.readme == "none" {
		return nil
	}
	doc, err := os.ReadFile(o.readme)
	if err != nil {
		return err
	}
	block, err := render("headline", rep)
	if err != nil {
		return err
	}
	out, ok := replaceBlock(string(doc), string(block))
	if !ok {
		log.Warn("no headline markers in the README: its figures are left as they are", "readme", o.readme, "markers", headlineStart+" "+headlineEnd)
		return nil
	}
	if err := os.WriteFile(o.readme, []byte(out), 0o644); err != nil {
		return err
	}
	log.Info("headline figures written", "readme", o.readme)
	return nil
}

// rerender rewrites BENCHMARKS.md and the README's block from the results without
// measuring anything: after editing changes.md or hotspots.md.
func rerender(o options, log *slog.Logger) error {
	b, err := os.ReadFile(o.jsonPath)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no results at %s: BENCHMARKS.md is rendered from the results of the run that measured it, kept there; run `make bench`", o.jsonPath)
	}
	if err != nil {
		return err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", o.jsonPath, err)
	}
	return publish(o, &r, log)
}

// writeJSON writes v to path, indented, creating its directory.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'))
}

// writeFile writes b to path, creating its directory.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
