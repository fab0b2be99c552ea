// Command sitesim serves a simulated copy of a source site, m.xsw.tw or
// czbooks.net, for demos, manual testing and benchmarks (see package sitesim).
//
// Settings come from flags, whose defaults come from the environment:
//
//	-addr            SITESIM_ADDR                    127.0.0.1:8090
//	-site            SITESIM_SITE                    xsw (or czbooks)
//	-seed            SITESIM_SEED                    1
//	-categories      SITESIM_CATEGORIES              7
//	-books           SITESIM_BOOKS_PER_CATEGORY      60
//	-books-per-page  SITESIM_BOOKS_PER_PAGE          20
//	-chapters        SITESIM_CHAPTERS                20..300 (or a fixed number)
//	-toc-page-size   SITESIM_CHAPTERS_PER_TOC_PAGE   20 (xsw only)
//	-finished        SITESIM_FINISHED_RATIO          0.3
//	-latency         SITESIM_LATENCY                 0s
//	-jitter          SITESIM_LATENCY_JITTER          0s
//	-big5            SITESIM_BIG5                    false
//	-validators      SITESIM_VALIDATORS              false
//	-version         print the build and exit
//
// It prints the base URL on standard output and stops gracefully on SIGINT
// or SIGTERM. Control endpoints are under /_sim/ (faults, growth, request log).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xswtw/xsw/buildinfo"
	"github.com/xswtw/xsw/dev/sitesim"
)

// shutdownTimeout bounds how long requests in flight may take at shutdown.
const shutdownTimeout = 5 * time.Second

func main() {
	os.Exit(command(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// errVersion is loadOptions' answer to -version.
var errVersion = errors.New("version asked for")

// command is the command: it reads the environment through getenv and the flags in
// args, serves the site until SIGINT or SIGTERM, and returns the status to exit with: 0
// after -h or -version too, 2 for a bad flag or value.
func command(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "sitesim")
	opts, err := loadOptions(args, getenv, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errVersion):
		fmt.Fprintln(stdout, "sitesim", buildinfo.Get().String())
		return 0
	case err != nil:
		logger.Error("configuration", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts.site.Logger = logger
	if err := run(ctx, opts, logger, stdout); err != nil {
		logger.Error("sitesim stopped", "err", err)
		return 1
	}
	return 0
}

// options is the command's configuration.
type options struct {
	addr string
	site sitesim.Config
}

// loadOptions reads the environment through getenv for defaults, then the
// flags in args.
func loadOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	def := sitesim.DefaultConfig()
	env := envReader{getenv: getenv}
	opts := options{
		addr: env.str("SITESIM_ADDR", "127.0.0.1:8090"),
		site: def,
	}
	cfg := &opts.site
	cfg.Site = env.str("SITESIM_SITE", sitesim.SiteXSW)
	cfg.Seed = env.int64("SITESIM_SEED", def.Seed)
	cfg.Categories = env.int("SITESIM_CATEGORIES", def.Categories)
	cfg.BooksPerCategory = env.int("SITESIM_BOOKS_PER_CATEGORY", def.BooksPerCategory)
	cfg.BooksPerPage = env.int("SITESIM_BOOKS_PER_PAGE", def.BooksPerPage)
	chapters := env.str("SITESIM_CHAPTERS", fmt.Sprintf("%d..%d", def.MinChapters, def.MaxChapters))
	cfg.ChaptersPerTOCPage = env.int("SITESIM_CHAPTERS_PER_TOC_PAGE", def.ChaptersPerTOCPage)
	cfg.FinishedRatio = env.float("SITESIM_FINISHED_RATIO", def.FinishedRatio)
	cfg.Latency = env.duration("SITESIM_LATENCY", 0)
	cfg.LatencyJitter = env.duration("SITESIM_LATENCY_JITTER", 0)
	cfg.Big5 = env.bool("SITESIM_BIG5", false)
	cfg.Validators = env.bool("SITESIM_VALIDATORS", false)

	fs := flag.NewFlagSet("sitesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sitesim [flags]

Serves a simulated copy of a source site, m.xsw.tw or czbooks.net, and prints its base
URL. Each flag's default comes from the environment variable its help names.

`)
		fs.PrintDefaults()
	}
	version := fs.Bool("version", false, "print the build and exit")
	fs.StringVar(&opts.addr, "addr", opts.addr, "listen address (SITESIM_ADDR)")
	fs.StringVar(&cfg.Site, "site", cfg.Site, "site to simulate: xsw (m.xsw.tw) or czbooks (czbooks.net) (SITESIM_SITE)")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the generated site (SITESIM_SEED)")
	fs.IntVar(&cfg.Categories, "categories", cfg.Categories, "number of categories, 1..7 (SITESIM_CATEGORIES)")
	fs.IntVar(&cfg.BooksPerCategory, "books", cfg.BooksPerCategory, "books per category (SITESIM_BOOKS_PER_CATEGORY)")
	fs.IntVar(&cfg.BooksPerPage, "books-per-page", cfg.BooksPerPage, "books per listing page (SITESIM_BOOKS_PER_PAGE)")
	fs.StringVar(&chapters, "chapters", chapters, "chapters per book: MIN..MAX or N (SITESIM_CHAPTERS)")
	fs.IntVar(&cfg.ChaptersPerTOCPage, "toc-page-size", cfg.ChaptersPerTOCPage, "chapters per table of contents page, xsw only (SITESIM_CHAPTERS_PER_TOC_PAGE)")
	fs.Float64Var(&cfg.FinishedRatio, "finished", cfg.FinishedRatio, "share of finished books, 0..1 (SITESIM_FINISHED_RATIO)")
	fs.DurationVar(&cfg.Latency, "latency", cfg.Latency, "latency added to every page (SITESIM_LATENCY)")
	fs.DurationVar(&cfg.LatencyJitter, "jitter", cfg.LatencyJitter, "random extra latency, up to (SITESIM_LATENCY_JITTER)")
	fs.BoolVar(&cfg.Big5, "big5", cfg.Big5, "encode pages in Big5 instead of UTF-8 (SITESIM_BIG5)")
	fs.BoolVar(&cfg.Validators, "validators", cfg.Validators, "send ETag/Last-Modified and answer 304 (SITESIM_VALIDATORS)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if *version {
		return options{}, errVersion
	}
	if env.err != nil { // after the flags: -h and -version answer whatever the environment
		return options{}, env.err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if cfg.MinChapters, cfg.MaxChapters, err = parseRange(chapters); err != nil {
		return options{}, fmt.Errorf("chapters (SITESIM_CHAPTERS) %q: %w", chapters, err)
	}
	if err := cfg.Validate(); err != nil {
		return options{}, err
	}
	return opts, nil
}

// parseRange reads "MIN..MAX" or a single number.
func parseRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "..")
	if lo, err = strconv.Atoi(strings.TrimSpace(a)); err != nil {
		return 0, 0, errors.New("want MIN..MAX or N")
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = strconv.Atoi(strings.TrimSpace(b)); err != nil {
		return 0, 0, errors.New("want MIN..MAX or N")
	}
	return lo, hi, nil
}

// envReader reads typed variables, keeping the first error.
type envReader struct {
	getenv func(string) string
	err    error
}

func (e *envReader) str(name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

func parseEnv[T any](e *envReader, name string, def T, parse func(string) (T, error)) T {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	out, err := parse(v)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("%s=%q: %w", name, v, err)
	}
	return out
}

func (e *envReader) int(name string, def int) int { return parseEnv(e, name, def, strconv.Atoi) }

func (e *envReader) int64(name string, def int64) int64 {
	return parseEnv(e, name, def, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
}

func (e *envReader) float(name string, def float64) float64 {
	return parseEnv(e, name, def, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
}

func (e *envReader) duration(name string, def time.Duration) time.Duration {
	return parseEnv(e, name, def, time.ParseDuration)
}

func (e *envReader) bool(name string, def bool) bool {
	return parseEnv(e, name, def, strconv.ParseBool)
}

// run serves the site until ctx ends, printing its URL on stdout first.
func run(ctx context.Context, opts options, logger *slog.Logger, stdout io.Writer) error {
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.addr, err)
	}
	site := sitesim.New(opts.site)
	srv := sitesim.Serve(ln, site)
	logger.Info("serving", "url", srv.URL(), "site", site.Flavour(), "seed", opts.site.Seed, "books", len(site.Books()))
	if _, err := fmt.Fprintln(stdout, srv.URL()); err != nil {
		_ = srv.Close() // already failing
		return fmt.Errorf("print url: %w", err)
	}

	<-ctx.Done()
	logger.Info("shutting down", "requests", site.Count())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
