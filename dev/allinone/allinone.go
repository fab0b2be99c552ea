// Package allinone runs the whole pipeline in one process: an embedded NATS server with
// JetStream (unless NATS_URL names one), database creation and migrations, then the
// gateway, the fetcher and the indexer. In demo mode it also serves a simulated copy of
// each site SOURCES lists (m.xsw.tw and czbooks.net by default, m.xsw.tw the default
// site) and points the sites' URLs at them. The xsw command runs it (Run); the
// end-to-end tests and the benchmark harness start it in their own process (Start).
package allinone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/database"
	"github.com/xswtw/xsw/platform/metrics"
	"github.com/xswtw/xsw/platform/natsembed"
	"github.com/xswtw/xsw/services/fetcher"
	"github.com/xswtw/xsw/services/fetcher/site"
	"github.com/xswtw/xsw/services/gateway"
	"github.com/xswtw/xsw/services/indexer"
)

// DemoDatabaseURL is the database of `xsw demo` when DATABASE_URL is unset.
const DemoDatabaseURL = "postgres://postgres@127.0.0.1:5432/xsw_demo?sslmode=disable"

// Options choose what the all-in-one runs.
type Options struct {
	// Getenv reads the environment (os.Getenv in the command).
	Getenv func(string) string
	// Demo also serves a simulated copy of every site of SOURCES (DemoSources when
	// unset) and points the sites' URLs at them.
	Demo bool
	// Site configures the simulated m.xsw.tw in demo mode (sitesim.DefaultConfig when
	// nil); Sims configures the simulated copies of other sites, by site id (the
	// DefaultConfig of the site's flavour when absent).
	Site *sitesim.Config
	Sims map[string]sitesim.Config
	// Ready, when set, is called once everything serves, with the gateway's address.
	Ready func(Running)
	// Adapters are the site adapters the fetcher may serve (fetcher.Builtin when nil);
	// SOURCES chooses among them.
	Adapters site.Registry
}

// Running describes a started all-in-one.
type Running struct {
	// GatewayURL is the gateway's base URL (http://host:port).
	GatewayURL string
	// NATSURL is the NATS server in use.
	NATSURL string
	// DatabaseURL is the database in use.
	DatabaseURL string
	// SiteURL is the simulated m.xsw.tw, in demo mode.
	SiteURL string
	// Site is the simulated m.xsw.tw, in demo mode.
	Site *sitesim.Site
	// Sims are the simulated sites by site id, in demo mode (m.xsw.tw's among them).
	Sims map[string]*sitesim.Server
	// AdminToken is the admin token in force (generated when none was set).
	AdminToken string
	// StartedIn is how long start-up took.
	StartedIn time.Duration
}

// Run starts everything and blocks until ctx ends or a part fails.
func Run(ctx context.Context, opts Options, logger *slog.Logger) error {
	start := time.Now()
	env := overlay{get: opts.Getenv, set: map[string]string{}}
	if env.get == nil {
		env.get = os.Getenv
	}
	r := config.NewReader(env.Get)
	defaultDataDir := "./data"
	if opts.Demo {
		// The simulated site's books must not mix with a real run's.
		defaultDataDir = "./data/demo"
		if env.Get("DATABASE_URL") == "" {
			env.set["DATABASE_URL"] = DemoDatabaseURL
		}
	}
	dataDir := r.String("DATA_DIR", defaultDataDir)
	if err := r.Err(); err != nil {
		return err
	}
	run := Running{}

	// The database first: it is the step a newcomer's machine most often lacks.
	dsn := env.Get("DATABASE_URL")
	if dsn == "" {
		dsn = database.DefaultURL
		env.set["DATABASE_URL"] = dsn
	}
	if err := database.EnsureDatabase(ctx, dsn); err != nil {
		return fmt.Errorf("%w\n\nxsw needs PostgreSQL. Start one on 127.0.0.1:5432 (user postgres, trust auth), "+
			"or set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/xsw", err)
	}
	run.DatabaseURL = database.Redact(dsn)
	icfg, err := indexer.ConfigFromEnv(env.Get)
	if err != nil {
		return err
	}
	if err := indexer.Migrate(ctx, icfg, logger); err != nil {
		return err
	}

	// NATS: the one named, or an embedded server with its store under DATA_DIR.
	if env.Get("NATS_URL") == "" {
		srv, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(dataDir, "jetstream"), Port: -1})
		if err != nil {
			return err
		}
		defer func() {
			srv.Shutdown()
			srv.WaitForShutdown()
		}()
		env.set["NATS_URL"] = srv.ClientURL()
		logger.Info("embedded NATS started", "url", srv.ClientURL(), "store", filepath.Join(dataDir, "jetstream"))
	}
	run.NATSURL = env.Get("NATS_URL")

	if opts.Demo {
		sims, err := startSims(opts, &env, logger)
		for _, sim := range sims {
			defer sim.Close()
		}
		if err != nil {
			return err
		}
		run.Sims = sims
		if sim := sims[SiteXSW]; sim != nil {
			run.SiteURL, run.Site = sim.URL(), sim.Site()
		}
	}

	if env.Get("XSW_ADMIN_TOKEN") == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		env.set["XSW_ADMIN_TOKEN"] = hex.EncodeToString(b[:])
		logger.Warn("no XSW_ADMIN_TOKEN set; generated one for this run", "admin_token", env.set["XSW_ADMIN_TOKEN"])
	}
	run.AdminToken = env.Get("XSW_ADMIN_TOKEN")
	// The parts' own health listeners would collide in one process; the gateway's
	// /healthz, /readyz and /metrics speak for the whole.
	env.set["FETCHER_HEALTH_ADDR"] = "127.0.0.1:0"
	env.set["INDEXER_HEALTH_ADDR"] = "127.0.0.1:0"

	fcfg, err := fetcher.ConfigFromEnv(env.Get)
	if err != nil {
		return err
	}
	icfg, err = indexer.ConfigFromEnv(env.Get)
	if err != nil {
		return err
	}
	gcfg, err := gateway.ConfigFromEnv(env.Get)
	if err != nil {
		return err
	}
	// One registry for the three parts: the gateway's /metrics serves all of them (the
	// fetcher's and indexer's health listeners, on random ports here, serve it too).
	reg, err := metrics.NewRegistry()
	if err != nil {
		return err
	}
	fcfg.Registry, icfg.Registry, gcfg.Registry = reg, reg, reg
	if opts.Adapters != nil {
		fcfg.Adapters = opts.Adapters
		if err := fcfg.Validate(); err != nil {
			return err
		}
	}
	addr := gcfg.HTTPAddr
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR=%q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	run.GatewayURL = "http://" + net.JoinHostPort(host, port)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return indexer.Run(gctx, icfg, logger) })
	g.Go(func() error { return fetcher.Run(gctx, fcfg, logger) })
	g.Go(func() error { return gateway.Run(gctx, gcfg, logger) })
	g.Go(func() error {
		if err := waitReady(gctx, run.GatewayURL, run.NATSURL, gcfg.Sources.IDs()); err != nil {
			return nil // ctx ended or a part failed; the group reports which
		}
		run.StartedIn = time.Since(start)
		logger.Info("xsw ready", "api", run.GatewayURL+"/xsw/api", "started_in", run.StartedIn.Round(time.Millisecond))
		if opts.Ready != nil {
			opts.Ready(run)
		}
		return nil
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Site ids of the sites demo mode can simulate (sitesim's flavours).
const (
	SiteXSW     = sitesim.SiteXSW
	SiteCZBooks = sitesim.SiteCzbooks
)

// DemoSources is SOURCES in demo mode when none is set: both simulated sites, m.xsw.tw
// the default.
const DemoSources = SiteXSW + "," + SiteCZBooks

// startSims serves a simulated copy of every site of SOURCES (DemoSources when unset)
// and points its URL (SOURCE_<SITE>_URL, which BASE_URL does not override) at it.
// A simulated site listens on SITESIM_ADDR (m.xsw.tw) or SITESIM_CZBOOKS_ADDR, else on
// a free port. Another site is served where its SOURCE_<SITE>_URL says; without one it
// is an error.
func startSims(opts Options, env *overlay, logger *slog.Logger) (map[string]*sitesim.Server, error) {
	if env.Get("SOURCES") == "" {
		env.set["SOURCES"] = DemoSources
	}
	if env.Get("BG_JOB_RATE_LIMIT") == "" {
		// The simulated sites are ours: a demo need not wait two seconds a page, nor
		// hold a reader to a share of a real site's budget.
		env.set["BG_JOB_RATE_LIMIT"] = "0.05"
		if env.Get("API_SOURCE_RATE_LIMIT") == "" {
			env.set["API_SOURCE_RATE_LIMIT"] = "600"
		}
	}
	r := config.NewReader(env.Get)
	sources := config.ReadSources(r, events.ValidSiteID)
	if err := r.Err(); err != nil {
		return nil, err
	}
	sims := map[string]*sitesim.Server{}
	for _, src := range sources {
		var scfg sitesim.Config
		var addrVar string
		urlVar := config.SourceVar(src.ID, "URL")
		switch src.ID {
		case SiteXSW:
			scfg = sitesim.DefaultConfig()
			if opts.Site != nil {
				scfg = *opts.Site
			}
			addrVar = "SITESIM_ADDR"
		case SiteCZBooks:
			scfg = sitesim.DefaultConfig()
			scfg.Site = sitesim.SiteCzbooks
			addrVar = "SITESIM_CZBOOKS_ADDR"
		default:
			if src.URL != "" {
				continue // served where SOURCE_<SITE>_URL says
			}
			return sims, fmt.Errorf("demo: no simulated copy of site %q: set %s (the demo simulates %s)", src.ID, urlVar, DemoSources)
		}
		if c, ok := opts.Sims[src.ID]; ok {
			scfg = c
		}
		addr := env.Get(addrVar)
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return sims, fmt.Errorf("simulated site %s: %w", src.ID, err)
		}
		sim := sitesim.Serve(ln, sitesim.New(scfg))
		sims[src.ID] = sim
		env.set[urlVar] = sim.URL()
		logger.Info("simulated site serving", "site", src.ID, "url", sim.URL(), "rate_limit_seconds", env.Get("BG_JOB_RATE_LIMIT"))
	}
	return sims, nil
}

// overlay is the environment with the all-in-one's own settings on top.
type overlay struct {
	get func(string) string
	set map[string]string
}

// Get reads key from the overlay, then the environment.
func (o overlay) Get(key string) string {
	if v, ok := o.set[key]; ok {
		return v
	}
	return o.get(key)
}
