package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/services/indexer"
)

// env is what every scenario shares: a database of its own on the Postgres server, the
// service binaries, a scratch directory, and the processes started (stopped at close).
type env struct {
	opts options
	log  *slog.Logger
	// tmp holds the binaries, JetStream stores and data directories; removed at close.
	tmp string
	// adminURL reaches the server's maintenance database; dbURL the benchmark's own.
	adminURL, dbURL, dbName string
	bins                    map[string]string

	mu    sync.Mutex
	procs []*process
}

// newEnv creates the scratch directory and the database and builds the binaries.
func newEnv(ctx context.Context, o options, log *slog.Logger) (*env, error) {
	tmp, err := os.MkdirTemp("", "xsw-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{opts: o, log: log, tmp: tmp, adminURL: o.database}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		e.close()
		return nil, err
	}
	if err := e.createDatabase(ctx); err != nil {
		e.close()
		return nil, err
	}
	if err := e.build(ctx); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// close stops every process still running, drops the database and removes the scratch
// directory. It is safe to call after a failed newEnv, and more than once.
func (e *env) close() {
	e.mu.Lock()
	procs := e.procs
	e.procs = nil
	e.mu.Unlock()
	for _, p := range procs {
		_ = p.stop(5 * time.Second)
	}
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

// createDatabase creates xsw_bench_<random> on the server of the admin URL.
func (e *env) createDatabase(ctx context.Context) error {
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
	return nil
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
	if err := indexer.Migrate(ctx, cfg, quietLogger()); err != nil {
		return "", fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	return dsn, nil
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// binaries are the commands the scenarios run as processes, by name.
var binaries = map[string]string{
	"xsw":     "github.com/xswtw/xsw/dev/cmd/xsw",
	"gateway": "github.com/xswtw/xsw/services/gateway/cmd/gateway",
	"fetcher": "github.com/xswtw/xsw/services/fetcher/cmd/fetcher",
	"indexer": "github.com/xswtw/xsw/services/indexer/cmd/indexer",
}

// build compiles the binaries into the scratch directory, as `make build` would.
func (e *env) build(ctx context.Context) error {
	dir := filepath.Join(e.tmp, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	e.bins = map[string]string{}
	for name, pkg := range binaries {
		args = append(args, pkg)
		e.bins[name] = filepath.Join(dir, name)
	}
	began := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = e.opts.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	e.log.Info("binaries built", "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// dataDir returns a new directory under the scratch directory.
func (e *env) dataDir(name string) (string, error) {
	return os.MkdirTemp(e.tmp, name+"-")
}

// embeddedNATS starts a JetStream server in this process with its store under the
// scratch directory.
func (e *env) embeddedNATS(name string) (*server.Server, error) {
	dir, err := e.dataDir("nats-" + name)
	if err != nil {
		return nil, err
	}
	return broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: dir, Port: -1, ServerName: "bench-" + name})
}

func stopNATS(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	return poll(ctx, timeout, 20*time.Millisecond, "200 from "+url, func() (bool, error) {
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
	return poll(ctx, timeout, 50*time.Millisecond, "a fetcher answering", func() (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := nc.RequestWithContext(rctx, events.RPCSubject(events.SubjectRPCListing, events.LegacySite), []byte(`{}`))
		return err == nil, nil
	})
}

// poll calls cond every interval until it reports true or an error, ctx ends or timeout
// passes.
func poll(ctx context.Context, timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
