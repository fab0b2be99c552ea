package httpapi

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/platform/pgtest"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.InsertBook(t, e.pool, "1", "One", true)
	testdb.InsertChapters(t, e.pool, "1", 3)
	testdb.Exec(t, e.pool, `UPDATE chapters SET text = 'x' WHERE num = 1`)
	testdb.Exec(t, e.pool, `INSERT INTO job_history (job_id, site, book_id, lane, status, finished_at) VALUES ('xsw.1-1', 'xsw', '1', 'prefetch', 'completed', now())`)
	e.putHeartbeat("fetcher-a", 2, "9")

	r := e.get("/xsw/api/health")
	expect(t, r, http.StatusOK)
	hasKeys(t, "health", r.body, "status", "base_url", "database", "cache_stats", "job_stats")
	var h struct {
		Status     string         `json:"status"`
		BaseURL    string         `json:"base_url"`
		Database   string         `json:"database"`
		CacheStats map[string]any `json:"cache_stats"`
		JobStats   map[string]any `json:"job_stats"`
	}
	r.decode(t, &h)
	if h.Status != "ok" || h.BaseURL != "https://m.xsw.tw" || h.Database == "" {
		t.Errorf("health = %s", r.body)
	}
	wantCache := map[string]any{"books_in_db": 1.0, "chapters_in_db": 3.0, "chapters_with_content": 1.0, "memory_cache_size": 0.0, "memory_cache_ttl": 60.0}
	for k, v := range wantCache {
		if h.CacheStats[k] != v {
			t.Errorf("cache_stats.%s = %v, want %v", k, h.CacheStats[k], v)
		}
	}
	wantJobs := map[string]any{"queue_size": 0.0, "active_jobs": 1.0, "completed_count": 1.0, "workers": 2.0, "running": true}
	for k, v := range wantJobs {
		if h.JobStats[k] != v {
			t.Errorf("job_stats.%s = %v, want %v", k, h.JobStats[k], v)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/xsw/api/healthz", "/xsw/api/readyz"} {
		expect(t, e.get(path), http.StatusOK)
	}
}

func TestHealthDegraded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		breakIt func(e *env)
	}{
		{"postgres down", func(e *env) { e.pool.Close() }},
		{"nats down", func(e *env) { e.ns.Shutdown() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tt.breakIt(e)
			r := e.get("/xsw/api/health")
			expect(t, r, http.StatusServiceUnavailable)
			var h struct {
				Status string `json:"status"`
			}
			r.decode(t, &h)
			if h.Status != "degraded" {
				t.Errorf("status = %q, want degraded", h.Status)
			}
			hasKeys(t, "degraded health", r.body, "cache_stats", "job_stats")
			r = e.get("/readyz")
			expect(t, r, http.StatusServiceUnavailable)
			if d := r.detail(t); d == "" {
				t.Error("readyz 503 without detail")
			}
			expect(t, e.get("/healthz"), http.StatusOK)
		})
	}
}

func TestUnknownRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/nope", "/xsw/api/nope", "/xsw/api/books/1/extra/2"} {
		r := e.get(path)
		expect(t, r, http.StatusNotFound)
		if d := r.detail(t); d == "" {
			t.Errorf("%s: empty detail", path)
		}
	}
}

// TestPanicRecovered checks that a panicking handler (here: a server built without its
// catalog and sites) answers 500 JSON and the server keeps serving.
func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv, err := New(testConfig(), e.ns.Conn, nil, nil, nil, slog.New(slog.NewTextHandler(e.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(time.Second) })
	e.srv = srv
	r := e.get("/xsw/api/books/1")
	expect(t, r, http.StatusInternalServerError)
	if d := r.detail(t); d != "internal error" {
		t.Errorf("detail %q", d)
	}
	if !strings.Contains(e.logs.String(), "panic in handler") {
		t.Error("panic not logged")
	}
	expect(t, e.get("/healthz"), http.StatusOK)
}

// TestReadyThroughDatabaseOutage cuts the gateway off Postgres (its connections dropped,
// new ones refused): /readyz stays 200 for ReadyDBGrace while a cached book is served,
// then answers 503; Postgres back, it is ready again, and a later outage gets the whole
// grace anew. Without NATS it is not ready, whatever the grace.
func TestReadyThroughDatabaseOutage(t *testing.T) {
	t.Parallel()
	_, dsn := testdb.Pool(t)
	proxy, proxied := pgtest.ProxyURL(t, dsn)
	pool, err := pgxpool.New(t.Context(), proxied)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	const grace = 2 * time.Second
	e := newEnvOn(t, pool, func(c *Config) { c.ReadyDBGrace = grace })
	testdb.InsertBook(t, pool, "1", "One", true)
	expect(t, e.get("/xsw/api/books/1"), http.StatusOK) // now cached
	expect(t, e.get("/readyz"), http.StatusOK)

	proxy.Cut()
	cutAt := time.Now()
	expect(t, e.get("/readyz"), http.StatusOK)
	expect(t, e.get("/xsw/api/books/1"), http.StatusOK)
	expect(t, e.get("/xsw/api/health"), http.StatusServiceUnavailable)
	if !strings.Contains(e.logs.String(), "still ready, serving from the cache") {
		t.Errorf("the outage within the grace is not logged:\n%s", e.logs.String())
	}
	var r response
	testkit.Eventually(t, 10*time.Second, "/readyz 503 once the grace is over", func() bool {
		r = e.get("/readyz")
		return r.status == http.StatusServiceUnavailable
	})
	if down := time.Since(cutAt); down < grace {
		t.Errorf("not ready %v into the outage, within the grace of %v", down, grace)
	}
	if d := r.detail(t); d != "database unavailable" {
		t.Errorf("readyz detail %q, want database unavailable", d)
	}

	proxy.Restore(t)
	testkit.Eventually(t, 10*time.Second, "/readyz 200 with Postgres back", func() bool { return e.get("/readyz").status == http.StatusOK })
	proxy.Cut()
	expect(t, e.get("/readyz"), http.StatusOK) // a new outage, a new grace
	proxy.Restore(t)

	e.ns.Shutdown()
	r = e.get("/readyz")
	expect(t, r, http.StatusServiceUnavailable)
	if d := r.detail(t); d != "message bus unavailable" {
		t.Errorf("readyz detail without NATS %q, want message bus unavailable", d)
	}
}

// TestReadyWhileDatabaseHangs: a Postgres host that stops answering (no reset: every
// check waits its whole time) is an outage like any other, and the NATS check, made
// beside it, still answers: the gateway stays ready through the grace.
func TestReadyWhileDatabaseHangs(t *testing.T) {
	t.Parallel()
	_, dsn := testdb.Pool(t)
	proxy, proxied := pgtest.ProxyURL(t, dsn)
	pool, err := pgxpool.New(t.Context(), proxied)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := newEnvOn(t, pool, func(c *Config) { c.ReadyDBGrace = time.Minute })
	testdb.InsertBook(t, pool, "1", "One", true)
	expect(t, e.get("/xsw/api/books/1"), http.StatusOK) // now cached
	proxy.Hang()
	defer proxy.Restore(t)
	r := e.get("/readyz")
	expect(t, r, http.StatusOK)
	expect(t, e.get("/xsw/api/books/1"), http.StatusOK)
	var h api.Health
	hr := e.get("/xsw/api/health")
	expect(t, hr, http.StatusServiceUnavailable)
	hr.decode(t, &h)
	if h.Checks["nats"] != "ok" {
		t.Errorf("/health says NATS is %q while only Postgres hangs", h.Checks["nats"])
	}
}

// TestNewWantsReplica: a server without a replica name would take every other replica's
// cache invalidations for its own; New refuses it.
func TestNewWantsReplica(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := testConfig()
	cfg.Replica = ""
	if _, err := New(cfg, e.ns.Conn, nil, nil, nil, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("New without a replica name: no error")
	}
}
