package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// adminRoutes lists every admin route with the status it answers an authorized call on
// an empty system.
var adminRoutes = []struct {
	method, path string
	ok           int
}{
	{http.MethodGet, "/xsw/api/admin/stats", http.StatusOK},
	{http.MethodGet, "/xsw/api/admin/jobs/stats", http.StatusOK},
	{http.MethodPost, "/xsw/api/admin/jobs/sync/1", http.StatusOK},
	{http.MethodPost, "/xsw/api/admin/jobs/force-resync/1", http.StatusOK},
	{http.MethodPost, "/xsw/api/admin/jobs/clear_history", http.StatusOK},
	{http.MethodGet, "/xsw/api/admin/jobs/dead", http.StatusOK},
	{http.MethodPost, "/xsw/api/admin/jobs/dead/1/replay", http.StatusNotFound},
	{http.MethodPost, "/xsw/api/admin/books/1/accept-shrink", http.StatusNotFound}, // not stored
	{http.MethodPost, "/xsw/api/admin/jobs/dead/replay_all", http.StatusOK},
	{http.MethodPost, "/xsw/api/admin/jobs/purge?lane=refresh", http.StatusOK},
	{http.MethodGet, "/xsw/api/admin/jobs/lanes", http.StatusOK},
	{http.MethodPost, "/xsw/api/admin/jobs/pause?lane=refresh", http.StatusNotFound}, // no fetcher has made its consumers
	{http.MethodPost, "/xsw/api/admin/jobs/resume?lane=refresh", http.StatusNotFound},
	{http.MethodGet, "/xsw/api/admin/version", http.StatusOK},
	{http.MethodPost, "/xsw/api/admin/crawl/categories?categories=1", http.StatusAccepted},
	{http.MethodGet, "/xsw/api/admin/crawl", http.StatusOK},
	{http.MethodGet, "/xsw/api/admin/crawl/crawl-1", http.StatusNotFound},
	{http.MethodPost, "/xsw/api/admin/cache/clear", http.StatusOK},
	{http.MethodPost, "/xsw/api/admin/cache/invalidate/1", http.StatusOK},
	{http.MethodDelete, "/xsw/api/admin/cache/chapters/1", http.StatusNotFound},
}

func TestAdminAuth(t *testing.T) {
	t.Parallel()
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *Config) { c.AdminToken = "" })
		for _, rt := range adminRoutes {
			r := e.request(rt.method, rt.path, "Authorization", "Bearer ")
			expect(t, r, http.StatusForbidden)
			if d := r.detail(t); !strings.HasPrefix(d, "admin endpoints are disabled: set XSW_ADMIN_TOKEN") {
				t.Errorf("detail %q", d)
			}
		}
	})
	e := newEnv(t)
	for _, header := range [][]string{
		nil,
		{"Authorization", "Bearer wrong"},
		{"Authorization", "Bearer " + adminToken + "x"},
		{"Authorization", "Basic " + adminToken},
		{"Authorization", adminToken},
	} {
		for _, rt := range adminRoutes {
			r := e.request(rt.method, rt.path, header...)
			expect(t, r, http.StatusUnauthorized)
			if r.detail(t) == "" {
				t.Errorf("%s %s: empty detail", rt.method, rt.path)
			}
		}
	}
	for _, rt := range adminRoutes {
		expect(t, e.admin(rt.method, rt.path), rt.ok)
	}
	expect(t, e.admin(http.MethodGet, "/xsw/api/admin/nope"), http.StatusNotFound)
}

func TestAdminStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	at := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	testdb.Exec(t, e.pool, `INSERT INTO job_history (job_id, site, book_id, lane, status, finished_at, error, permanent) VALUES
		('xsw.1-1', 'xsw', '1', 'prefetch', 'completed', $1, '', false),
		('xsw.2-1', 'xsw', '2', 'prefetch', 'completed', $1, '', false),
		('xsw.1234567-7', 'xsw', '1234567', 'prefetch', 'failed', $1, 'Timeout error', false)`, at)
	e.putHeartbeat("fetcher-a", 2, "1721851")
	e.putHeartbeat("fetcher-b", 1)
	for _, p := range []string{"/xsw/api/admin/jobs/sync/11?priority=1", "/xsw/api/admin/jobs/sync/12?priority=1", "/xsw/api/admin/jobs/sync/13"} {
		expect(t, e.admin(http.MethodPost, p), http.StatusOK)
	}

	r := e.admin(http.MethodGet, "/xsw/api/admin/jobs/stats")
	expect(t, r, http.StatusOK)
	hasKeys(t, "stats", r.body, "queue_size", "active_jobs", "active_job_ids", "completed_count", "failed_count",
		"failed_jobs", "workers", "running", "queue_by_lane", "fetchers", "dead_letters", "rate_interval_seconds", "circuit")
	var got api.JobStats
	r.decode(t, &got)
	interval, circuit := 2.0, "closed"
	want := api.JobStats{
		RateInterval: &interval, Circuit: &circuit,
		QueueSize: 3, ActiveJobs: 1, ActiveJobIDs: []string{"1721851"}, CompletedCount: 2, FailedCount: 1,
		FailedJobs: map[string]api.FailedJob{"1234567": {FailedAt: "2026-01-21T12:00:00Z", Error: "Timeout error"}},
		Workers:    3, Running: true, Fetchers: 2,
		QueueByLane: map[events.Lane]int{events.LaneInteractive: 0, events.LaneManual: 1, events.LanePrefetch: 2, events.LaneRefresh: 0},
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("stats\n got %s\nwant %s", gotJSON, wantJSON)
	}
	var failed map[string]map[string]json.RawMessage
	var raw struct {
		FailedJobs json.RawMessage `json:"failed_jobs"`
	}
	r.decode(t, &raw)
	if err := json.Unmarshal(raw.FailedJobs, &failed); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"failed_at", "error"} {
		if _, ok := failed["1234567"][k]; !ok {
			t.Errorf("failed_jobs entry lacks %q", k)
		}
	}
}

type syncJSON struct {
	Status   string `json:"status"`
	BookID   string `json:"book_id"`
	Priority int    `json:"priority"`
}

func (e *env) sync(path string) syncJSON {
	e.t.Helper()
	r := e.admin(http.MethodPost, path)
	expect(e.t, r, http.StatusOK)
	hasKeys(e.t, "sync answer", r.body, "status", "book_id", "priority")
	var s syncJSON
	r.decode(e.t, &s)
	return s
}

func TestAdminSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	steps := []struct {
		name  string
		setup func()
		path  string
		want  syncJSON
	}{
		{"queued", nil, "/xsw/api/admin/jobs/sync/100?priority=10", syncJSON{"queued", "100", 10}},
		{"queued again", nil, "/xsw/api/admin/jobs/sync/100?priority=10", syncJSON{"already_queued", "100", 10}},
		{"lower lane while waiting higher", nil, "/xsw/api/admin/jobs/sync/100?priority=0", syncJSON{"already_queued", "100", 0}},
		{"default priority", nil, "/xsw/api/admin/jobs/sync/101", syncJSON{"queued", "101", 10}},
		{"syncing", func() { e.putHeartbeat("fetcher-a", 2, "200") }, "/xsw/api/admin/jobs/sync/200", syncJSON{"already_syncing", "200", 10}},
		{"recently synced", func() { e.putSynced("300", time.Now().Add(-time.Minute)) }, "/xsw/api/admin/jobs/sync/300", syncJSON{"recently_synced", "300", 10}},
		{"synced long ago", func() { e.putSynced("301", time.Now().Add(-time.Hour)) }, "/xsw/api/admin/jobs/sync/301", syncJSON{"queued", "301", 10}},
		{"forced past a recent sync", nil, "/xsw/api/admin/jobs/force-resync/300", syncJSON{"queued", "300", 10}},
		{"forced twice", nil, "/xsw/api/admin/jobs/force-resync/300", syncJSON{"already_queued", "300", 10}},
	}
	for _, s := range steps {
		if s.setup != nil {
			s.setup()
		}
		if got := e.sync(s.path); got != s.want {
			t.Errorf("%s: %+v, want %+v", s.name, got, s.want)
		}
	}
	if r, ok := e.waiting("101")[events.LaneManual]; !ok || r.Priority != 10 || r.Force {
		t.Errorf("book 101 in the manual lane: %+v (found %v)", r, ok)
	}
	if r, ok := e.waiting("300")[events.LaneManual]; !ok || !r.Force {
		t.Errorf("book 300 in the manual lane: %+v (found %v)", r, ok)
	}
}

func TestAdminSyncBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"sync/1?priority=101", "sync/1?priority=-1", "sync/1?priority=high", "sync/abc", "force-resync/1?priority=500"} {
		r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/"+p)
		expect(t, r, http.StatusBadRequest)
		if r.detail(t) == "" {
			t.Errorf("%s: empty detail", p)
		}
	}
	if n := e.stored(); n != 0 {
		t.Errorf("%d requests stored by bad calls", n)
	}
}

// TestAdminSyncUpgrades checks that a book waiting in the prefetch lane (queued by a
// listing) moves to the manual lane: stored there, purged from prefetch.
func TestAdminSyncUpgrades(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.serveListing(listed(3), nil)
	expect(t, e.get("/xsw/api/categories/1/books"), http.StatusOK)
	testkit.Eventually(t, 10*time.Second, "3 prefetch requests", func() bool { return e.stored() == 3 })

	if got := e.sync("/xsw/api/admin/jobs/sync/1000002?priority=10"); got.Status != "queued" {
		t.Fatalf("upgrade: %+v", got)
	}
	w := e.waiting("1000002")
	if _, ok := w[events.LanePrefetch]; ok {
		t.Error("upgraded book still waits in the prefetch lane")
	}
	if _, ok := w[events.LaneManual]; !ok {
		t.Error("upgraded book does not wait in the manual lane")
	}
	if n := e.stored(); n != 3 {
		t.Errorf("%d requests stored after the upgrade, want 3", n)
	}
}

func TestAdminSyncConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const calls = 50
	statuses := make([]string, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/sync/1721851?priority=10")
			var s syncJSON
			if err := json.Unmarshal(r.body, &s); err != nil || r.status != http.StatusOK {
				t.Errorf("call %d: %d %s", i, r.status, r.body)
				return
			}
			statuses[i] = s.Status
		})
	}
	wg.Wait()
	if n := e.stored(); n != 1 {
		t.Errorf("%d requests stored for 50 concurrent calls, want 1", n)
	}
	if n := slices.Index(statuses, "queued"); n < 0 || slices.Index(statuses[n+1:], "queued") >= 0 {
		t.Errorf("statuses %v: want exactly one queued", statuses)
	}
	for _, s := range statuses {
		if s != "queued" && s != "already_queued" {
			t.Errorf("status %q", s)
		}
	}
}

func TestAdminClearHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testdb.Exec(t, e.pool, `INSERT INTO job_history (job_id, site, book_id, lane, status, finished_at) VALUES ('xsw.1-1', 'xsw', '1', 'prefetch', 'completed', now())`)
	r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/clear_history")
	expect(t, r, http.StatusOK)
	var got map[string]any
	r.decode(t, &got)
	if len(got) != 2 || got["status"] != "cleared" || got["message"] != "Job history cleared" {
		t.Errorf("clear_history = %s", r.body)
	}
	var n int
	if err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM job_history`).Scan(&n); err != nil || n != 0 {
		t.Errorf("job_history holds %d rows (%v)", n, err)
	}
}

func TestAdminDependenciesDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.pool.Close()
	r := e.admin(http.MethodPost, "/xsw/api/admin/jobs/clear_history")
	expect(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" || r.detail(t) == "" {
		t.Errorf("503 without Retry-After or detail: %v %s", r.header, r.body)
	}
	expect(t, e.get("/xsw/api/books/1"), http.StatusServiceUnavailable)
}
