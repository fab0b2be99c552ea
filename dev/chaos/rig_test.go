// Package chaos breaks a running pipeline on purpose and checks that it keeps its
// promise: every requested book ends fully indexed (its metadata and every chapter
// reference, in the site's order, with no duplicate and no gap) or recorded as failed
// with its reason; none is silently lost or done twice.
//
// Every part runs as its own process, built from this repository: nats-server (one node,
// or three in a cluster), sitesim, the fetchers, the indexer and the gateway. Postgres is
// the machine's server, reached directly or through a proxy the test can cut. The tests
// start, kill and restart the processes themselves; all traffic stays on loopback and
// every wait is bounded.
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/dev/proctest"
	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/pgtest"
	"github.com/xswtw/xsw/platform/testkit"
)

// The programs the suite runs.
const (
	pkgNATS    = "github.com/nats-io/nats-server/v2"
	pkgSite    = "github.com/xswtw/xsw/dev/cmd/sitesim"
	pkgFetcher = "github.com/xswtw/xsw/services/fetcher/cmd/fetcher"
	pkgIndexer = "github.com/xswtw/xsw/services/indexer/cmd/indexer"
	pkgGateway = "github.com/xswtw/xsw/services/gateway/cmd/gateway"
)

const adminToken = "chaos-token"

// The sites sitesim can simulate, by their ids in SOURCES. xsw is the default site.
const (
	siteXSW     = "xsw"
	siteCzbooks = "czbooks"
)

// options shape a rig.
type options struct {
	// natsNodes is 1 (a single server) or 3 (a cluster; streams get three replicas).
	natsNodes int
	// site holds sitesim's flags.
	site []string
	// czbooks, when not nil, starts a second sitesim simulating czbooks.net with these
	// flags (besides -site czbooks); every service then serves both sites
	// (SOURCES=xsw,czbooks).
	czbooks []string
	// proxyPostgres routes the services' database connections through a proxy that
	// the test can cut.
	proxyPostgres bool
	// fetchers is the number of fetcher processes to start.
	fetchers int
	// fetcherEnv is added to every fetcher's environment.
	fetcherEnv map[string]string
	// gateway starts a gateway process.
	gateway bool
	// gatewayEnv is added to the gateway's environment, over the rig's settings.
	gatewayEnv map[string]string
}

// rig is a running pipeline.
type rig struct {
	t        *testing.T
	opts     options
	nats     []*natsNode
	natsURL  string
	replicas int
	nc       *nats.Conn
	js       jetstream.JetStream
	site     *site            // the default site, xsw
	sites    map[string]*site // every site, by id
	db       *pgxpool.Pool    // the test's own connection, never through the proxy
	dsn      string           // what the services connect to
	pg       *pgtest.Proxy    // nil unless options.proxyPostgres

	fetchers    []*proctest.Process
	indexer     *proctest.Process
	indexerAddr string
	gateway     *proctest.Process
	gatewayURL  string
}

func newRig(t *testing.T, o options) *rig {
	t.Helper()
	if o.natsNodes == 0 {
		o.natsNodes = 1
	}
	r := &rig{t: t, opts: o, replicas: 1}
	if o.natsNodes > 1 {
		r.replicas = 3
	}
	r.nats = startNATS(t, o.natsNodes)
	var urls []string
	for _, n := range r.nats {
		urls = append(urls, "nats://"+n.client)
	}
	r.natsURL = strings.Join(urls, ",")
	nc, err := nats.Connect(r.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r.nc = nc
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	r.site = startSite(t, "sitesim", o.site...)
	r.sites = map[string]*site{siteXSW: r.site}
	if o.czbooks != nil {
		r.sites[siteCzbooks] = startSite(t, "sitesim-czbooks", append([]string{"-site", siteCzbooks}, o.czbooks...)...)
	}

	direct := pgtest.Schema(t)
	if r.db, err = pgxpool.New(context.Background(), direct); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.db.Close)
	r.dsn = direct
	if o.proxyPostgres {
		u, err := url.Parse(direct)
		if err != nil {
			t.Fatal(err)
		}
		r.pg = pgtest.StartProxy(t, u.Host)
		u.Host = r.pg.Addr
		r.dsn = u.String()
	}
	migrate := proctest.Start(t, "migrate", proctest.Binary(t, pkgIndexer), r.indexerEnv(), "migrate")
	select {
	case <-migrate.Exited():
		if err := migrate.Err(); err != nil {
			t.Fatalf("indexer migrate: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("indexer migrate still running after a minute")
	}
	r.indexerAddr = proctest.FreeAddr(t)
	r.indexer = proctest.Start(t, "indexer", proctest.Binary(t, pkgIndexer), r.indexerEnv())
	waitHTTP(t, "http://"+r.indexerAddr+"/healthz", 30*time.Second)
	for i := 0; i < o.fetchers; i++ {
		r.startFetcher(fmt.Sprintf("fetcher-%d", i))
	}
	if o.gateway {
		addr := proctest.FreeAddr(t)
		r.gatewayURL = "http://" + addr + "/xsw/api"
		env := r.env(map[string]string{
			"HTTP_ADDR": addr, "DATABASE_URL": r.dsn, "BASE_URL": r.site.url,
			"XSW_ADMIN_TOKEN": adminToken, "SYNC_DEDUP_WINDOW": "1s", "READS_FLUSH_INTERVAL": "1s",
			"API_RATE_LIMIT": "100000", "API_SOURCE_RATE_LIMIT": "0",
		})
		for k, v := range o.gatewayEnv {
			env[k] = v
		}
		r.gateway = proctest.Start(t, "gateway", proctest.Binary(t, pkgGateway), env)
		waitHTTP(t, r.gatewayURL+"/healthz", 30*time.Second)
	}
	return r
}

// env is the environment every service shares, with extra on top.
func (r *rig) env(extra map[string]string) map[string]string {
	env := map[string]string{
		"NATS_URL": r.natsURL, "NATS_REPLICAS": strconv.Itoa(r.replicas),
		"LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "1s",
	}
	if cz, ok := r.sites[siteCzbooks]; ok {
		env["SOURCES"] = siteXSW + "," + siteCzbooks
		env["SOURCE_CZBOOKS_URL"] = cz.url
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func (r *rig) indexerEnv() map[string]string {
	return r.env(map[string]string{
		"DATABASE_URL": r.dsn, "INDEXER_HEALTH_ADDR": r.indexerAddr, "SYNC_DEDUP_WINDOW": "0",
	})
}

// startFetcher starts one more fetcher process named id.
func (r *rig) startFetcher(id string) *proctest.Process {
	r.t.Helper()
	env := r.env(map[string]string{
		"BASE_URL": r.site.url, "FETCHER_ID": id, "FETCHER_HEALTH_ADDR": proctest.FreeAddr(r.t),
		"BG_JOB_WORKERS": "4", "BG_JOB_RATE_LIMIT": "0", "SYNC_DEDUP_WINDOW": "0",
		"BG_JOB_ACK_WAIT": "3s", "BG_JOB_RETRY_BASE": "200ms", "HTTP_TIMEOUT": "2s",
	})
	for k, v := range r.opts.fetcherEnv {
		env[k] = v
	}
	p := proctest.Start(r.t, id, proctest.Binary(r.t, pkgFetcher), env)
	waitHTTP(r.t, "http://"+env["FETCHER_HEALTH_ADDR"]+"/healthz", 30*time.Second)
	r.fetchers = append(r.fetchers, p)
	return p
}

// request queues a sync of each book of xsw in the prefetch lane, as a listing would.
func (r *rig) request(ids []string) {
	r.t.Helper()
	r.requestOn(siteXSW, ids)
}

// requestOn is request for books of site.
func (r *rig) requestOn(site string, ids []string) {
	r.t.Helper()
	for _, id := range ids {
		req := events.NewBookRequested(site, id, events.LanePrefetch, 0, false, "chaos", time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := broker.Publish(ctx, r.js, req.Subject(), req.MsgID(), &req)
		cancel()
		if err != nil {
			r.t.Fatalf("request %s of %s: %v", id, site, err)
		}
	}
}

// indexedRefs counts the chapter references in the database.
func (r *rig) indexedRefs() int {
	var n int
	_ = r.db.QueryRow(context.Background(), `SELECT count(*) FROM chapters`).Scan(&n)
	return n
}

// natsNode is one nats-server process.
type natsNode struct {
	*proctest.Process
	name, client, cluster, monitor, dir string
}

// startNATS runs n nats-server processes with JetStream and file storage; with n > 1
// they form a cluster over loopback routes.
func startNATS(t *testing.T, n int) []*natsNode {
	t.Helper()
	bin := proctest.Binary(t, pkgNATS)
	nodes := make([]*natsNode, n)
	for i := range nodes {
		nodes[i] = &natsNode{
			name: fmt.Sprintf("nats-%d", i), client: proctest.FreeAddr(t), cluster: proctest.FreeAddr(t),
			monitor: proctest.FreeAddr(t), dir: filepath.Join(t.TempDir(), "jetstream"),
		}
	}
	for _, node := range nodes {
		host, port := splitAddr(t, node.client)
		_, mport := splitAddr(t, node.monitor)
		args := []string{"-a", host, "-p", port, "-m", mport, "-js", "-sd", node.dir, "-n", node.name}
		if n > 1 {
			var routes []string
			for _, other := range nodes {
				routes = append(routes, "nats://"+other.cluster)
			}
			args = append(args, "--cluster_name", "xsw-chaos", "--cluster", "nats://"+node.cluster,
				"--routes", strings.Join(routes, ","))
		}
		node.Process = proctest.Start(t, node.name, bin, nil, args...)
	}
	for _, node := range nodes {
		node.waitReady(t)
	}
	return nodes
}

// waitReady waits until the node's health endpoint says JetStream is ready.
func (n *natsNode) waitReady(t *testing.T) {
	t.Helper()
	waitHTTP(t, "http://"+n.monitor+"/healthz", 60*time.Second)
}

func splitAddr(t *testing.T, addr string) (host, port string) {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("address %q has no port", addr)
	}
	return addr[:i], addr[i+1:]
}

// site is a sitesim process and a client of its control endpoints.
type site struct {
	*proctest.Process
	url   string
	books map[string]sitesim.BookInfo // with chapters, read once at start
}

// startSite runs sitesim, as process name, with args.
func startSite(t *testing.T, name string, args ...string) *site {
	t.Helper()
	addr := proctest.FreeAddr(t)
	p := proctest.Start(t, name, proctest.Binary(t, pkgSite), nil, append([]string{"-addr", addr}, args...)...)
	s := &site{Process: p, url: "http://" + addr}
	waitHTTP(t, s.url+"/_sim/health", 30*time.Second)
	var books []sitesim.BookInfo
	s.control(t, http.MethodGet, "/_sim/books?chapters=true", nil, &books)
	s.books = map[string]sitesim.BookInfo{}
	for _, b := range books {
		s.books[b.ID] = b
	}
	return s
}

// ids lists the site's books in listing order, at most n of them (all when n is 0).
func (s *site) ids(t *testing.T, n int) []string {
	t.Helper()
	var books []sitesim.BookInfo
	s.control(t, http.MethodGet, "/_sim/books", nil, &books)
	var out []string
	for _, b := range books {
		if n > 0 && len(out) == n {
			break
		}
		out = append(out, b.ID)
	}
	return out
}

// setFaults replaces the site's fault rules.
func (s *site) setFaults(t *testing.T, rules ...sitesim.FaultRule) {
	t.Helper()
	if rules == nil {
		rules = []sitesim.FaultRule{}
	}
	s.control(t, http.MethodPost, "/_sim/faults", rules, nil)
}

// requests returns the site's request log.
func (s *site) requests(t *testing.T) []sitesim.Request {
	t.Helper()
	var log []sitesim.Request
	s.control(t, http.MethodGet, "/_sim/requests", nil, &log)
	return log
}

// control calls a /_sim/ endpoint with body as JSON and decodes the answer into out.
func (s *site) control(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sitesim %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("sitesim %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("sitesim %s %s: %v", method, path, err)
		}
	}
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	testkit.Eventually(t, timeout, "200 from "+url, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
