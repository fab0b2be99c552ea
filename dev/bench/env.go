package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/services/indexer"
)

// env is what every scenario shares: a database of its own on the Postgres server, the
// service binaries, a scratch directory, and the processes started (stopped at close).
type env struct {
	opts options
	log  *slog.Logger
	// tmp holds the JetStream stores and data directories; removed at close.
	tmp string
	// adminURL reaches the server's maintenance database; dbURL the benchmark's own.
	adminURL, dbURL, dbName string
	bins                    map[string]string
	procs                   []*proctest.Process
}

// binaries are the commands the scenarios run as processes, by name.
var binaries = map[string]string{
	"xsw":     "github.com/xswtw/xsw/dev/cmd/xsw",
	"gateway": "github.com/xswtw/xsw/services/gateway/cmd/gateway",
	"fetcher": "github.com/xswtw/xsw/services/fetcher/cmd/fetcher",
	"indexer": "github.com/xswtw/xsw/services/indexer/cmd/indexer",
}

// newEnv creates the scratch directory and the database and builds the binaries.
func newEnv(ctx context.Context, o options, log *slog.Logger) (*env, error) {
	tmp, err := os.MkdirTemp("", "xsw-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{opts: o, log: log, tmp: tmp, adminURL: o.database, bins: map[string]string{}}
	if err := e.setUp(ctx); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) setUp(ctx context.Context) error {
	if err := os.MkdirAll(e.opts.outDir, 0o755); err != nil {
		return err
	}
	name := "xsw_bench_" + randomHex(4)
	if err := e.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	e.dbName = name
	u, err := url.Parse(e.adminURL)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	u.Path = "/" + name
	e.dbURL = u.String()
	e.log.Info("database created", "database", name)

	began := time.Now()
	names := slices.Sorted(maps.Keys(binaries))
	var pkgs []string
	for _, n := range names {
		pkgs = append(pkgs, binaries[n])
	}
	paths, err := proctest.Build(pkgs...)
	if err != nil {
		return err
	}
	for i, n := range names {
		e.bins[n] = paths[i]
	}
	e.log.Info("binaries built", "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// close stops every process still running, drops the database and removes the scratch
// directory and the binaries. It is safe to call after a failed newEnv, and more than
// once.
func (e *env) close() {
	for _, p := range e.procs {
		_ = stop(p, 5*time.Second)
	}
	e.procs = nil
	if e.dbName != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{e.dbName}.Sanitize()+" WITH (FORCE)"); err != nil {
			e.log.Error("drop benchmark database", "database", e.dbName, "err", err)
		} else {
			e.log.Info("database dropped", "database", e.dbName)
		}
		e.dbName = ""
	}
	_ = os.RemoveAll(e.tmp)
	proctest.RemoveBinaries()
}

func (e *env) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err != nil {
		return fmt.Errorf("reach postgres at %s: %w", e.adminURL, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// schema creates a fresh schema in the benchmark database, applies the indexer's
// migrations to it and returns a URL whose search_path is that schema.
func (e *env) schema(ctx context.Context, name string) (string, error) {
	schema := "b_" + name + "_" + randomHex(3)
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		return "", err
	}
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	conn.Close(ctx)
	if err != nil {
		return "", fmt.Errorf("create schema %s: %w", schema, err)
	}
	u, _ := url.Parse(e.dbURL)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	dsn := u.String()
	cfg, err := indexer.ConfigFromEnv(config.Map(map[string]string{"DATABASE_URL": dsn, "INDEXER_HEALTH_ADDR": "127.0.0.1:0"}))
	if err != nil {
		return "", err
	}
	if err := indexer.Migrate(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		return "", fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	return dsn, nil
}

// dataDir returns a new directory under the scratch directory.
func (e *env) dataDir(name string) (string, error) {
	return os.MkdirTemp(e.tmp, name+"-")
}

// start runs the binary name with vars as its whole environment and args, in a
// directory of its own (so that no .env is read), logging to <out>/<label>.log.
func (e *env) start(label, name string, vars map[string]string, args ...string) (*proctest.Process, error) {
	dir, err := e.dataDir("cwd-" + label)
	if err != nil {
		return nil, err
	}
	log := filepath.Join(e.opts.outDir, label+".log")
	_ = os.Remove(log) // the last run's
	p, err := proctest.Run(proctest.Command{Name: label, Bin: e.bins[name], Args: args, Env: vars, Dir: dir, Log: log})
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	return p, nil
}

// stop stops p with SIGTERM, killing it after timeout.
func stop(p *proctest.Process, timeout time.Duration) error {
	if !p.Stop(timeout) {
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.Name, timeout)
	}
	return nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	return proctest.Poll(ctx, timeout, "200 from "+url, func() (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// waitFetcher waits until a fetcher serving m.xsw.tw (the only site the benchmarks use)
// answers on the bus: an empty listing call is refused at once by a live fetcher,
// without touching the site.
func waitFetcher(ctx context.Context, nc *nats.Conn, timeout time.Duration) error {
	return proctest.Poll(ctx, timeout, "a fetcher answering", func() (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := nc.RequestWithContext(rctx, events.RPCSubject(events.SubjectRPCListing, events.LegacySite), []byte(`{}`))
		return err == nil, nil
	})
}
