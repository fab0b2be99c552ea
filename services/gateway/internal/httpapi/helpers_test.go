package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/config"
	"github.com/xswtw/xsw/platform/logtest"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/gateway/internal/catalog"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
	"github.com/xswtw/xsw/services/gateway/internal/sites"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

func TestMain(m *testing.M) {
	// fasthttp starts one process-wide goroutine that refreshes the Date header every
	// second; it belongs to the library, not to a server, and never stops.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// fasthttp's idle-worker cleaner of a server that served a real listener notices
		// the shutdown only after its current sleep (up to 10s): it ends by itself.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
}

const adminToken = "s3cret-token"

// env is a gateway API on a real JetStream server and a fresh Postgres schema, with a
// test fetcher (a NATS peer answering the request/reply subjects) started on demand.
// It serves two sites: xsw, the default, and toy; both are described in the sites
// bucket as a fetcher would (see describeSites) unless the test forgets them.
type env struct {
	t     testing.TB
	ns    *natstest.Server
	pool  *pgxpool.Pool
	srv   *Server
	sites *sites.Registry
	logs  *logtest.Buffer
	peer  *nats.Conn
}

// testSources are the sites of every test gateway.
var testSources = config.Sources{
	{ID: "xsw", URL: "", RateLimit: 2 * time.Second},
	{ID: "toy", URL: "https://toy.example", RateLimit: time.Second},
}

// Patterns of the test sites' ids, as their fetchers describe them.
const (
	xswBookPattern     = `[1-9][0-9]{0,11}`
	xswCategoryPattern = `[1-9][0-9]?`
	toyBookPattern     = `[a-z0-9]{1,12}`
)

func testConfig() Config {
	return Config{
		Database: "postgres://postgres@127.0.0.1:5432/xsw?sslmode=disable",
		CacheTTL: time.Minute, ListingCacheTTL: time.Minute,
		InteractiveWait: 300 * time.Millisecond, ChapterWait: 300 * time.Millisecond, RPCTimeout: 300 * time.Millisecond,
		AdminToken: adminToken, Replica: "gateway-a",
	}
}

func newEnv(t testing.TB, tune ...func(*Config)) *env {
	t.Helper()
	pool, _ := testdb.Pool(t)
	return newEnvOn(t, pool, tune...)
}

// newEnvOn is newEnv on a database the test prepared.
func newEnvOn(t testing.TB, pool *pgxpool.Pool, tune ...func(*Config)) *env {
	t.Helper()
	ns := natstest.Start(t)
	e := &env{t: t, ns: ns, pool: pool, logs: &logtest.Buffer{}}
	e.describeSites()
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.sites = e.registry(ns.JS, logger)
	// The registry reads both descriptions now rather than when its watch delivers them,
	// so that a test that takes NATS away at once still finds the sites described.
	for _, id := range e.sites.IDs() {
		if st, _ := e.sites.Get(t.Context(), id); !st.Described {
			t.Fatalf("site %s is not described", id)
		}
	}
	jm, err := jobs.New(t.Context(), ns.JS, 5*time.Minute, logger)
	if err != nil {
		t.Fatal(err)
	}
	jm.SetCheck(e.sites.CheckBook)
	cfg := testConfig()
	for _, f := range tune {
		f(&cfg)
	}
	e.srv, err = New(cfg, ns.Conn, catalog.New(pool), jm, e.sites, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.srv.Shutdown(5 * time.Second); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return e
}

// registry returns a sites registry of testSources over the bucket of js, running until
// the test ends.
func (e *env) registry(js jetstream.JetStream, logger *slog.Logger) *sites.Registry {
	e.t.Helper()
	kv, err := js.KeyValue(e.t.Context(), events.BucketSites)
	if err != nil {
		e.t.Fatal(err)
	}
	reg := sites.New(testSources, kv, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = reg.Run(ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-done
	})
	return reg
}

// describeSites describes both test sites in the sites bucket, as their fetchers do.
func (e *env) describeSites() {
	e.t.Helper()
	e.describe(events.SiteInfo{ID: "xsw", Name: "m.xsw.tw", BaseURL: "https://m.xsw.tw", BookIDPattern: xswBookPattern,
		CategoryIDPattern: xswCategoryPattern, RateInterval: 2, Interval: 2, State: events.SiteOK})
	e.describe(events.SiteInfo{ID: "toy", Name: "Toy", BaseURL: "https://toy.example", BookIDPattern: toyBookPattern,
		RateInterval: 1, Interval: 1, State: events.SiteOK})
}

// describe writes info in the sites bucket.
func (e *env) describe(info events.SiteInfo) {
	e.t.Helper()
	info.Header, info.At = events.Header{Version: events.Version}, time.Now()
	data, err := events.Encode(&info)
	if err != nil {
		e.t.Fatal(err)
	}
	kv, err := e.ns.JS.KeyValue(e.t.Context(), events.BucketSites)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := kv.Put(e.t.Context(), info.ID, data); err != nil {
		e.t.Fatal(err)
	}
}

// forget deletes the description of site, as if no fetcher had ever described it, and
// waits until the gateway no longer knows it.
func (e *env) forget(site string) {
	e.t.Helper()
	kv, err := e.ns.JS.KeyValue(e.t.Context(), events.BucketSites)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := kv.Delete(e.t.Context(), site); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _ := e.sites.Get(e.t.Context(), site); !st.Described {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the gateway still knows site %s", site)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// published records every message published under xsw.> from now on.
type published struct {
	mu   sync.Mutex
	msgs []string
}

func (p *published) subjects() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs)
}

// record subscribes to xsw.> (every subject of the pipeline: requests, events, RPCs,
// cache invalidations) and records each subject published.
func (e *env) record() *published {
	e.t.Helper()
	p := &published{}
	sub, err := e.ns.Conn.Subscribe("xsw.>", func(m *nats.Msg) {
		p.mu.Lock()
		p.msgs = append(p.msgs, m.Subject)
		p.mu.Unlock()
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.ns.Conn.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// serve makes the test fetcher answer the call subject (a SubjectRPC* name), for every
// site, with answer's payload; a nil payload is no answer at all (the caller times out).
func (e *env) serve(subject string, answer func(data []byte) events.Payload) {
	e.t.Helper()
	if e.peer == nil {
		nc, err := nats.Connect(e.ns.URL, nats.Name("test-fetcher"))
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(nc.Close)
		e.peer = nc
	}
	// A test fetcher serves every site: the call's subject names its site.
	_, err := e.peer.QueueSubscribe(events.RPCSubject(subject, "*"), events.QueueFetchers, func(m *nats.Msg) {
		p := answer(m.Data)
		if p == nil {
			return
		}
		data, err := json.Marshal(p)
		if err != nil {
			panic(err)
		}
		_ = m.Respond(data)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.peer.Flush(); err != nil {
		e.t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// detail returns the body's "detail" field.
func (r response) detail(t testing.TB) string {
	t.Helper()
	var d struct {
		Detail *string `json:"detail"`
	}
	r.decode(t, &d)
	if d.Detail == nil {
		t.Fatalf("error body %s has no detail", r.body)
	}
	return *d.Detail
}

func (e *env) request(method, path string, header ...string) response {
	e.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.App().Test(req, -1)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		e.t.Errorf("%s %s: Content-Type %q, want JSON", method, path, ct)
	}
	conform(e.t, req, resp.StatusCode, resp.Header, body)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func (e *env) get(path string) response { return e.request(http.MethodGet, path) }

func (e *env) admin(method, path string) response {
	return e.request(method, path, "Authorization", "Bearer "+adminToken)
}

// expect checks the status of r.
func expect(t testing.TB, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

// expectAccepted checks a 202 with Retry-After.
func expectAccepted(t testing.TB, r response) {
	t.Helper()
	expect(t, r, http.StatusAccepted)
	if r.header.Get("Retry-After") == "" {
		t.Error("202 without Retry-After")
	}
}

// keys returns the sorted keys of a JSON object.
func keys(t testing.TB, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not an object: %s", raw)
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// hasKeys checks that the JSON object raw has every key of want.
func hasKeys(t testing.TB, what string, raw []byte, want ...string) {
	t.Helper()
	got := keys(t, raw)
	for _, k := range want {
		if !slices.Contains(got, k) {
			t.Errorf("%s lacks %q: has %v", what, k, got)
		}
	}
}

// waiting returns the request stored for the xsw book in each lane.
func (e *env) waiting(bookID string) map[events.Lane]events.BookRequested {
	e.t.Helper()
	return e.waitingSite("xsw", bookID)
}

// waitingSite returns the request stored for the book in each lane.
func (e *env) waitingSite(site, bookID string) map[events.Lane]events.BookRequested {
	e.t.Helper()
	out, err := e.lookup(site, bookID)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) lookup(site, bookID string) (map[events.Lane]events.BookRequested, error) {
	ctx := context.Background()
	s, err := e.ns.JS.Stream(ctx, events.StreamRequests)
	if err != nil {
		return nil, err
	}
	out := map[events.Lane]events.BookRequested{}
	for _, l := range events.Lanes {
		msg, err := s.GetLastMsgForSubject(ctx, events.RequestSubject(l, site, bookID))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r events.BookRequested
		if err := events.Decode(msg.Data, &r); err != nil {
			return nil, err
		}
		out[l] = r
	}
	return out, nil
}

// stored counts the requests in the request stream.
func (e *env) stored() uint64 {
	e.t.Helper()
	s, err := e.ns.JS.Stream(e.t.Context(), events.StreamRequests)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

// indexed announces, as the indexer does, that it wrote something about an xsw book.
func (e *env) indexed(bookID string, chapters int, complete bool) {
	e.t.Helper()
	e.indexedSite("xsw", bookID, chapters, complete)
}

// indexedSite is indexed for a book of site.
func (e *env) indexedSite(site, bookID string, chapters int, complete bool) {
	e.t.Helper()
	ev := events.BookIndexed{Header: events.Header{Version: events.Version}, Site: site, BookID: bookID, Chapters: chapters,
		Complete: complete, HasMeta: true, IndexedAt: time.Now()}
	if _, err := broker.Publish(e.t.Context(), e.ns.JS, ev.Subject(), "", &ev); err != nil {
		e.t.Fatal(err)
	}
}

// putHeartbeat writes the heartbeat of fetcher id syncing the books active (each an
// events.Key, or the bare id of an xsw book).
func (e *env) putHeartbeat(id string, workers int, active ...string) {
	e.t.Helper()
	kv, err := e.ns.JS.KeyValue(e.t.Context(), events.BucketFetchers)
	if err != nil {
		e.t.Fatal(err)
	}
	hb := events.FetcherHeartbeat{Header: events.Header{Version: events.Version}, FetcherID: id, Workers: workers,
		StartedAt: time.Now(), At: time.Now(), Interval: 2, Circuit: "closed", Active: []events.ActiveJob{}}
	for i, key := range active {
		site, b, _ := events.SplitKey(key)
		hb.Active = append(hb.Active, events.ActiveJob{JobID: events.JobID(site, b, uint64(i+1)), Site: site, BookID: b,
			Lane: events.LanePrefetch, Attempt: 1, StartedAt: time.Now()})
	}
	data, err := events.Encode(&hb)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := kv.Put(e.t.Context(), id, data); err != nil {
		e.t.Fatal(err)
	}
}

// putSynced records, as the fetchers do, that the xsw book was synced at at.
func (e *env) putSynced(bookID string, at time.Time) {
	e.t.Helper()
	kv, err := e.ns.JS.KeyValue(e.t.Context(), events.BucketSynced)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := kv.Put(e.t.Context(), events.Key("xsw", bookID), events.SyncedValue(at)); err != nil {
		e.t.Fatal(err)
	}
}

// onRequest runs fn once the xsw book is requested in the interactive lane, in a
// goroutine the test waits for, playing the fetcher and indexer of an interactive sync.
// fn reports failures with t.Errorf (it does not run on the test's goroutine).
func (e *env) onRequest(bookID string, fn func()) {
	e.t.Helper()
	done := make(chan struct{})
	e.t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			got, err := e.lookup("xsw", bookID)
			if err != nil {
				e.t.Errorf("look for the request of book %s: %v", bookID, err)
				return
			}
			if _, ok := got[events.LaneInteractive]; ok {
				fn()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		e.t.Errorf("book %s was never requested in the interactive lane", bookID)
	}()
}

// exec runs a statement, reporting a failure without stopping (safe off the test goroutine).
func (e *env) exec(sql string, args ...any) {
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		e.t.Errorf("%s: %v", sql, err)
	}
}

// publishIndexed is indexed for use off the test goroutine.
func (e *env) publishIndexed(bookID string, chapters int, complete bool) {
	ev := events.BookIndexed{Header: events.Header{Version: events.Version}, Site: "xsw", BookID: bookID, Chapters: chapters,
		Complete: complete, HasMeta: true, IndexedAt: time.Now()}
	if _, err := broker.Publish(context.Background(), e.ns.JS, ev.Subject(), "", &ev); err != nil {
		e.t.Errorf("publish indexed: %v", err)
	}
}
